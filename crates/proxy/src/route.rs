//! Longest-prefix routing with an optional host match.
//!
//! Prefixes match whole segments ("/img" matches "/img" and "/img/x", not
//! "/imgx"). Lookup walks the path's segment boundaries from the longest
//! candidate down, one hash probe each, so its cost depends on the path's
//! depth, not on the number of routes. Host-specific routes are tried
//! before routes without a host.

// foldhash: these maps are read on every request; SipHash costs more than
// the rest of the lookup.
use foldhash::HashMap;

/// Maps (host, prefix) to a value (the service index in a snapshot).
#[derive(Debug, Default)]
pub struct RouteTable<T> {
    any_host: HashMap<String, T>,
    by_host: HashMap<String, HashMap<String, T>>,
}

impl<T> RouteTable<T> {
    pub fn new() -> Self {
        RouteTable {
            any_host: HashMap::default(),
            by_host: HashMap::default(),
        }
    }

    /// Adds a route. `prefix` is normalised ("/" or no trailing slash);
    /// `host` lower-case. Returns the previous value for the same route.
    pub fn insert(&mut self, host: Option<&str>, prefix: &str, value: T) -> Option<T> {
        let table = match host {
            Some(h) => self.by_host.entry(h.to_string()).or_default(),
            None => &mut self.any_host,
        };
        table.insert(prefix.to_string(), value)
    }

    /// The value of the longest prefix of `path` (normalised) for `host`,
    /// with the matched prefix.
    pub fn lookup<'a>(&'a self, host: Option<&str>, path: &'a str) -> Option<(&'a T, &'a str)> {
        if let Some(table) = host.and_then(|h| self.by_host.get(h))
            && let Some(hit) = longest_prefix(table, path)
        {
            return Some(hit);
        }
        longest_prefix(&self.any_host, path)
    }
}

fn longest_prefix<'a, T>(table: &'a HashMap<String, T>, path: &'a str) -> Option<(&'a T, &'a str)> {
    let mut candidate = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    loop {
        if let Some(v) = table.get(candidate) {
            return Some((v, candidate));
        }
        if candidate == "/" {
            return None;
        }
        candidate = match candidate.rfind('/') {
            Some(0) => "/",
            Some(i) => &candidate[..i],
            None => return None,
        };
    }
}

/// The path forwarded upstream: `path` without the matched `prefix`,
/// always starting with '/'.
pub fn strip_prefix<'a>(path: &'a str, prefix: &str) -> &'a str {
    if prefix == "/" {
        return path;
    }
    match path.get(prefix.len()..) {
        Some("") | None => "/",
        Some(rest) => rest,
    }
}

/// The host a request is for, lower-case and without port.
pub fn request_host(authority: &str) -> String {
    let host = match authority.strip_prefix('[') {
        // IPv6 literal: keep the brackets, drop the port.
        Some(rest) => {
            return rest
                .split(']')
                .next()
                .map(|h| format!("[{h}]"))
                .unwrap_or_default();
        }
        None => authority.rsplit_once(':').map_or(authority, |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                authority
            }
        }),
    };
    host.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RouteTable<&'static str> {
        let mut t = RouteTable::new();
        t.insert(None, "/", "root");
        t.insert(None, "/img", "img");
        t.insert(None, "/img/v2", "img-v2");
        t.insert(Some("api.example.com"), "/img", "img-api");
        t
    }

    #[test]
    fn longest_prefix_on_segment_boundaries() {
        let t = table();
        let get = |p| t.lookup(None, p).map(|(v, prefix)| (*v, prefix));
        assert_eq!(get("/img"), Some(("img", "/img")));
        assert_eq!(get("/img/"), Some(("img", "/img")));
        assert_eq!(get("/img/x"), Some(("img", "/img")));
        assert_eq!(get("/img/v2/gen"), Some(("img-v2", "/img/v2")));
        assert_eq!(get("/imgx"), Some(("root", "/")));
        assert_eq!(get("/"), Some(("root", "/")));
    }

    #[test]
    fn host_routes_win_then_fall_back() {
        let t = table();
        assert_eq!(
            t.lookup(Some("api.example.com"), "/img/x").map(|h| *h.0),
            Some("img-api")
        );
        assert_eq!(
            t.lookup(Some("api.example.com"), "/other").map(|h| *h.0),
            Some("root")
        );
        assert_eq!(
            t.lookup(Some("else.example.com"), "/img").map(|h| *h.0),
            Some("img")
        );
    }

    #[test]
    fn no_match_without_root() {
        let mut t = RouteTable::new();
        t.insert(None, "/a", 1);
        assert!(t.lookup(None, "/b").is_none());
        assert!(t.lookup(None, "/").is_none());
    }

    #[test]
    fn strips_prefix() {
        assert_eq!(strip_prefix("/img", "/img"), "/");
        assert_eq!(strip_prefix("/img/", "/img"), "/");
        assert_eq!(strip_prefix("/img/a/b", "/img"), "/a/b");
        assert_eq!(strip_prefix("/x", "/"), "/x");
    }

    #[test]
    fn host_without_port() {
        assert_eq!(request_host("API.example.com:8080"), "api.example.com");
        assert_eq!(request_host("example.com"), "example.com");
        assert_eq!(request_host("[::1]:80"), "[::1]");
    }
}
