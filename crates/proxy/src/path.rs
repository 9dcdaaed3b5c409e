//! Request path normalisation, done before routing so that what is routed
//! is exactly what is forwarded.
//!
//! Encoded dot segments, double slashes and backslashes can never reach a
//! route the literal path would not: unreserved escapes are decoded
//! (`%2e` becomes `.`), empty and `.` segments are dropped, `..` is resolved
//! (never above the root), and a path that would still climb a level once
//! fully decoded by a permissive upstream (`..%2f`, `%5c..`) is refused.

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPath(pub &'static str);

/// Normalises an origin-form path (no query). Keeps a trailing slash.
pub fn normalize(raw: &str) -> Result<String, BadPath> {
    if !raw.starts_with('/') {
        return Err(BadPath("the request path must start with '/'"));
    }
    let decoded = decode_unreserved(raw)?;
    let trailing_slash = decoded.len() > 1 && decoded.ends_with('/');
    let mut segments: Vec<&str> = Vec::new();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if segments.pop().is_none() {
                    return Err(BadPath("the path climbs above the root"));
                }
            }
            s => {
                if hides_dot_segment(s) {
                    return Err(BadPath(
                        "the path hides a dot segment behind an encoded separator",
                    ));
                }
                segments.push(s);
            }
        }
    }
    let mut out = String::with_capacity(decoded.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty() || (trailing_slash && !segments.is_empty()) {
        out.push('/');
    }
    Ok(out)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Decodes `%XX` of unreserved characters, upper-cases the other escapes,
/// and refuses bytes that have no business in a path.
fn decode_unreserved(raw: &str) -> Result<String, BadPath> {
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'%' => {
                let (hi, lo) = match (
                    bytes.get(i + 1).copied().and_then(hex),
                    bytes.get(i + 2).copied().and_then(hex),
                ) {
                    (Some(hi), Some(lo)) => (hi, lo),
                    _ => return Err(BadPath("the path has an invalid percent-escape")),
                };
                let decoded = hi * 16 + lo;
                if decoded < 0x20 || decoded == 0x7f {
                    return Err(BadPath("the path encodes a control character"));
                }
                if decoded == b'\\' {
                    return Err(BadPath("the path encodes a backslash"));
                }
                if is_unreserved(decoded) {
                    out.push(char::from(decoded));
                } else {
                    out.push('%');
                    out.push(char::from(b"0123456789ABCDEF"[usize::from(hi)]));
                    out.push(char::from(b"0123456789ABCDEF"[usize::from(lo)]));
                }
                i += 3;
            }
            b'\\' => return Err(BadPath("the path contains a backslash")),
            0x00..=0x20 | 0x7f..=0xff => {
                return Err(BadPath(
                    "the path contains a byte that must be percent-encoded",
                ));
            }
            _ => {
                out.push(char::from(b));
                i += 1;
            }
        }
    }
    Ok(out)
}

/// True if a segment, fully decoded and split on `/` and `\` as a
/// permissive upstream might, contains a `.` or `..` segment.
fn hides_dot_segment(seg: &str) -> bool {
    if !seg.contains('%') {
        return false;
    }
    let lower = seg.to_ascii_lowercase();
    let unified = lower.replace("%2f", "/");
    unified.split('/').any(|s| s == "." || s == "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_are_unchanged() {
        for p in [
            "/",
            "/a",
            "/a/b",
            "/a/b/",
            "/v1/chat/completions",
            "/a%20b",
            "/x%2Fy",
        ] {
            assert_eq!(normalize(p).unwrap(), p, "{p}");
        }
    }

    #[test]
    fn normalises_dots_slashes_and_escapes() {
        let cases = [
            ("//a//b", "/a/b"),
            ("/a/./b", "/a/b"),
            ("/a/../b", "/b"),
            ("/a/%2e%2e/b", "/b"),
            ("/a/%2E/b", "/a/b"),
            ("/%61dmin", "/admin"),
            ("/a%2fb", "/a%2Fb"),
            ("/a/b/..", "/a"),
            ("/a/", "/a/"),
            ("//", "/"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(input).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn refuses_traversal_and_ambiguous_bytes() {
        for p in [
            "/..",
            "/a/../..",
            "/%2e%2e/x",
            "/a\\b",
            "/a%5cb",
            "/a/..%2fadmin",
            "/a/%2e%2e%2Fadmin",
            "/a%00b",
            "/a%zz",
            "/a%2",
            "relative",
            "/a b",
        ] {
            assert!(normalize(p).is_err(), "{p} should be refused");
        }
    }

    mod properties {
        use super::super::normalize;
        use proptest::prelude::*;

        /// Paths made of the characters that matter here.
        fn tricky_path() -> impl Strategy<Value = String> {
            proptest::collection::vec(
                prop_oneof![
                    Just("/"),
                    Just("."),
                    Just(".."),
                    Just("%2e"),
                    Just("%2E"),
                    Just("%2f"),
                    Just("%5c"),
                    Just("\\"),
                    Just("a"),
                    Just("b"),
                    Just("%41"),
                    Just("%"),
                    Just("%zz"),
                    Just("~"),
                    Just("%00"),
                ],
                0..16,
            )
            .prop_map(|parts| format!("/{}", parts.concat()))
        }

        proptest! {
            #[test]
            fn normalising_twice_changes_nothing(p in tricky_path()) {
                if let Ok(once) = normalize(&p) {
                    prop_assert_eq!(normalize(&once), Ok(once.clone()));
                }
            }

            #[test]
            fn normal_paths_hold_no_dot_segments_or_backslashes(p in tricky_path()) {
                if let Ok(n) = normalize(&p) {
                    prop_assert!(n.starts_with('/'));
                    prop_assert!(!n.contains("//"), "{}", n);
                    prop_assert!(!n.contains('\\'));
                    let lower = n.to_ascii_lowercase().replace("%2f", "/");
                    prop_assert!(!lower.split('/').any(|s| s == "." || s == ".."), "{} from {}", n, p);
                }
            }

            #[test]
            fn any_bytes_never_panic(p in "\\PC{0,64}") {
                let _ = normalize(&p);
            }
        }
    }
}
