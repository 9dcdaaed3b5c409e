//! Request paths to operations: each operation's path template compiled to
//! segments; a request matches the most specific template (a literal
//! segment beats a parameter at the first place they differ, as OpenAPI
//! asks), and a trailing slash is not a different path.

use std::collections::HashMap;

/// One compiled template.
#[derive(Debug, Clone)]
struct Template {
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// A whole-segment parameter, `{id}`.
    Param(String),
    /// A parameter with literal text around it, `{name}.png`.
    Mixed {
        prefix: String,
        name: String,
        suffix: String,
    },
}

/// Templates by method and number of segments (a path can only match a
/// template of its own length); `T` is what a match hands back (an
/// operation's index).
#[derive(Debug, Clone, Default)]
pub struct Matcher<T> {
    routes: HashMap<(String, usize), Vec<(Template, T)>>,
}

/// A matched request: what the template stood for and its parameters'
/// values (percent-decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched<'m, T> {
    pub target: &'m T,
    pub params: Vec<(String, String)>,
}

impl<T> Matcher<T> {
    pub fn new() -> Self {
        Matcher {
            routes: HashMap::new(),
        }
    }

    /// Adds a template (`/v1/videos/{id}`) for an upper-case method.
    pub fn add(&mut self, method: &str, template: &str, target: T) {
        let segments: Vec<Segment> = split(template).map(parse_segment).collect();
        self.routes
            .entry((method.to_string(), segments.len()))
            .or_default()
            .push((Template { segments }, target));
    }

    /// The best template for `method` and `path`; None if no template of
    /// that method matches.
    pub fn find(&self, method: &str, path: &str) -> Option<Matched<'_, T>> {
        let parts: Vec<&str> = split(path).collect();
        let candidates = self.routes.get(&(method.to_string(), parts.len()))?;
        let mut best: Option<&(Template, T)> = None;
        for route in candidates {
            if route.0.fits(&parts) && best.is_none_or(|(b, _)| route.0.more_specific_than(b)) {
                best = Some(route);
            }
        }
        best.map(|(template, target)| Matched {
            target,
            params: template.capture(&parts).unwrap_or_default(),
        })
    }

    /// Whether any method has a template matching `path` (to tell an
    /// undocumented method from an undocumented path).
    pub fn knows_path(&self, path: &str) -> bool {
        let parts: Vec<&str> = split(path).collect();
        self.routes
            .iter()
            .filter(|((_, len), _)| *len == parts.len())
            .any(|(_, routes)| routes.iter().any(|(t, _)| t.fits(&parts)))
    }
}

/// Path segments, ignoring a trailing slash (and so `//` at the end).
fn split(path: &str) -> impl Iterator<Item = &str> {
    let trimmed = path.trim_end_matches('/');
    trimmed.split('/').skip(1)
}

fn parse_segment(s: &str) -> Segment {
    if let (Some(open), Some(close)) = (s.find('{'), s.rfind('}'))
        && open < close
    {
        let name = s[open + 1..close].to_string();
        if open == 0 && close == s.len() - 1 {
            return Segment::Param(name);
        }
        return Segment::Mixed {
            prefix: s[..open].to_string(),
            name,
            suffix: s[close + 1..].to_string(),
        };
    }
    Segment::Literal(s.to_string())
}

impl Template {
    /// Whether the path's segments fit, without collecting parameters.
    fn fits(&self, parts: &[&str]) -> bool {
        parts.len() == self.segments.len()
            && self
                .segments
                .iter()
                .zip(parts)
                .all(|(seg, part)| match seg {
                    Segment::Literal(l) => l == part,
                    Segment::Param(_) => !part.is_empty(),
                    Segment::Mixed { prefix, suffix, .. } => {
                        part.len() > prefix.len() + suffix.len()
                            && part.starts_with(prefix.as_str())
                            && part.ends_with(suffix.as_str())
                    }
                })
    }

    fn capture(&self, parts: &[&str]) -> Option<Vec<(String, String)>> {
        if parts.len() != self.segments.len() {
            return None;
        }
        let mut params = Vec::new();
        for (seg, part) in self.segments.iter().zip(parts) {
            match seg {
                Segment::Literal(l) => {
                    if l != part {
                        return None;
                    }
                }
                Segment::Param(name) => {
                    if part.is_empty() {
                        return None;
                    }
                    params.push((name.clone(), decode(part)));
                }
                Segment::Mixed {
                    prefix,
                    name,
                    suffix,
                } => {
                    let value = part
                        .strip_prefix(prefix.as_str())
                        .and_then(|r| r.strip_suffix(suffix.as_str()))
                        .filter(|v| !v.is_empty())?;
                    params.push((name.clone(), decode(value)));
                }
            }
        }
        Some(params)
    }

    /// At the first segment where they differ in kind, a literal beats a
    /// mixed segment, which beats a bare parameter.
    fn more_specific_than(&self, other: &Template) -> bool {
        let rank = |s: &Segment| match s {
            Segment::Literal(_) => 2,
            Segment::Mixed { .. } => 1,
            Segment::Param(_) => 0,
        };
        for (a, b) in self.segments.iter().zip(&other.segments) {
            match rank(a).cmp(&rank(b)) {
                std::cmp::Ordering::Greater => return true,
                std::cmp::Ordering::Less => return false,
                std::cmp::Ordering::Equal => {}
            }
        }
        false
    }
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher() -> Matcher<&'static str> {
        let mut m = Matcher::new();
        m.add("GET", "/v1/videos/{id}", "get");
        m.add("GET", "/v1/videos/latest", "latest");
        m.add("GET", "/v1/{kind}/latest", "kind-latest");
        m.add("GET", "/files/{name}.png", "png");
        m.add("POST", "/v1/videos", "create");
        m
    }

    #[test]
    fn templates_capture_decoded_parameters() {
        let m = matcher();
        let hit = m.find("GET", "/v1/videos/v%20123").unwrap();
        assert_eq!(*hit.target, "get");
        assert_eq!(hit.params, vec![("id".to_string(), "v 123".to_string())]);
        let png = m.find("GET", "/files/cat.png").unwrap();
        assert_eq!((*png.target, png.params[0].1.as_str()), ("png", "cat"));
        assert!(m.find("GET", "/files/.png").is_none(), "empty parameter");
        assert!(
            m.find("GET", "/v1/videos/").is_none(),
            "no GET on the collection"
        );
    }

    #[test]
    fn literal_segments_win_over_parameters() {
        let m = matcher();
        assert_eq!(
            *m.find("GET", "/v1/videos/latest").unwrap().target,
            "latest"
        );
        assert_eq!(
            *m.find("GET", "/v1/images/latest").unwrap().target,
            "kind-latest"
        );
    }

    #[test]
    fn trailing_slashes_and_methods() {
        let m = matcher();
        assert_eq!(*m.find("POST", "/v1/videos/").unwrap().target, "create");
        assert!(m.find("DELETE", "/v1/videos/1").is_none());
        assert!(m.knows_path("/v1/videos/1"), "a path with other methods");
        assert!(!m.knows_path("/v2/videos"));
        assert!(m.find("GET", "/v1/videos/1/extra").is_none());
    }
}
