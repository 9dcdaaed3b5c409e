//! `${VAR}` interpolation in string values.

/// Replaces each `${NAME}` in `s` with `env(NAME)`. `$${` is a literal `${`.
/// Fails on an unset variable or an unterminated reference, naming it.
pub fn interpolate(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        if let Some(escaped) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = escaped;
        } else if let Some(body) = after.strip_prefix("${") {
            let end = body
                .find('}')
                .ok_or_else(|| format!("unterminated ${{...}} in {s:?}"))?;
            let name = &body[..end];
            let valid =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(format!("invalid variable name {name:?}"));
            }
            let value =
                env(name).ok_or_else(|| format!("environment variable {name} is not set"))?;
            out.push_str(&value);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("s3cret".into()),
            "PORT" => Some("8080".into()),
            _ => None,
        }
    }

    #[test]
    fn replaces_variables() {
        assert_eq!(
            interpolate("Bearer ${TOKEN}", &env).unwrap(),
            "Bearer s3cret"
        );
        assert_eq!(
            interpolate("127.0.0.1:${PORT}", &env).unwrap(),
            "127.0.0.1:8080"
        );
        assert_eq!(interpolate("no vars $5", &env).unwrap(), "no vars $5");
        assert_eq!(interpolate("lit $${TOKEN}", &env).unwrap(), "lit ${TOKEN}");
    }

    #[test]
    fn reports_missing_and_malformed() {
        assert!(
            interpolate("${NOPE}", &env)
                .unwrap_err()
                .contains("NOPE is not set")
        );
        assert!(
            interpolate("${TOKEN", &env)
                .unwrap_err()
                .contains("unterminated")
        );
        assert!(
            interpolate("${A-B}", &env)
                .unwrap_err()
                .contains("invalid variable")
        );
    }
}
