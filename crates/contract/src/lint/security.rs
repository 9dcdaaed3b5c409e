//! Security rules: operations secured or explicitly public, security
//! schemes defined, no credentials in query strings, servers over https.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::Value;

use super::{
    DOCUMENT_VALID, Linter, NO_CREDENTIALS_IN_QUERY, OPERATION_SECURITY_DEFINED,
    SECURITY_SCHEME_DEFINED, SERVERS_HTTPS, child, entries,
};
use crate::document::{METHODS, Operation};

/// The extension that marks an operation as open to anonymous callers.
const PUBLIC_MARK: &str = "x-blastdoor-public";

/// Query parameter names (lower case, letters and digits only) that carry a
/// credential. Exact matches: `key` or `token` alone is a credential, while
/// `page_token` or `sort_key` is not.
const CREDENTIAL_NAMES: &[&str] = &[
    "apikey",
    "key",
    "token",
    "accesstoken",
    "authtoken",
    "idtoken",
    "refreshtoken",
    "bearer",
    "jwt",
    "password",
    "passwd",
    "pwd",
    "secret",
    "auth",
    "authorization",
    "credential",
    "credentials",
    "sessionid",
];

/// Name endings that carry a credential whatever comes before them
/// (`x-api-key`, `client_secret`, `admin_password`).
const CREDENTIAL_SUFFIXES: &[&str] = &[
    "apikey",
    "accesstoken",
    "authtoken",
    "password",
    "secret",
    "secretkey",
    "privatekey",
];

impl<'d> Linter<'d> {
    /// Reports an operation that lets anonymous callers in without saying
    /// so, or says so while still requiring credentials. Returns whether it
    /// requires credentials.
    pub(super) fn operation_security(&mut self, op: &Operation<'d>) -> bool {
        let own = op.node.get("security");
        if let Some(list) = own {
            self.requirement_schemes(list, &format!("{}/security", op.pointer));
        }
        let effective = own.or_else(|| self.doc.root.get("security"));
        let secured = requires_credentials(effective);
        let public = op.node.get(PUBLIC_MARK).and_then(Value::as_bool) == Some(true);
        if secured && public {
            let message = format!(
                "marked {PUBLIC_MARK}, but its security still requires credentials; add `security: []` to open it"
            );
            self.report(
                &OPERATION_SECURITY_DEFINED,
                format!("{}/{PUBLIC_MARK}", op.pointer),
                message,
            );
        } else if !secured && !public {
            let how = if allows_anonymous(effective) {
                "its security lets anonymous callers in (an empty requirement {})"
            } else {
                "it has no security requirement (here or at the top level)"
            };
            let message = format!(
                "{} {}: {how}; require credentials, or mark it `{PUBLIC_MARK}: true`",
                op.method, op.path
            );
            self.report(&OPERATION_SECURITY_DEFINED, op.pointer.as_str(), message);
        }
        secured
    }

    pub(super) fn top_level_security(&mut self) {
        if let Some(list) = self.doc.root.get("security") {
            self.requirement_schemes(list, "/security");
        }
    }

    /// Every scheme a requirement names must be defined: an unknown name
    /// cannot be enforced.
    fn requirement_schemes(&mut self, list: &'d Value, at: &str) {
        let Some(list) = list.as_array() else {
            let message = "security must be a list of requirement objects";
            self.report(&DOCUMENT_VALID, at, message);
            return;
        };
        for (i, requirement) in list.iter().enumerate() {
            let at = format!("{at}/{i}");
            let Some(requirement) = requirement.as_object() else {
                let message = "a security requirement must be an object";
                self.report(&DOCUMENT_VALID, at, message);
                continue;
            };
            for name in requirement.keys() {
                let scheme = child("/components", "securitySchemes", name);
                if self.doc.root.pointer(&scheme).is_none() {
                    let message = format!(
                        "security scheme {name:?} is not defined in components.securitySchemes"
                    );
                    self.report(&SECURITY_SCHEME_DEFINED, at.as_str(), message);
                }
            }
        }
    }

    /// An API key in the query string ends up in access logs, proxies and
    /// browser history.
    pub(super) fn security_schemes(&mut self) {
        let doc = self.doc;
        let Some(components) = doc.root.get("components") else {
            return;
        };
        for (name, scheme) in entries(components, "securitySchemes") {
            let at = child("/components", "securitySchemes", name);
            let Some((scheme, at)) = self.follow(scheme, &at) else {
                continue;
            };
            let field = |k: &str| scheme.get(k).and_then(Value::as_str);
            if field("type") == Some("apiKey") && field("in") == Some("query") {
                let message = format!(
                    "security scheme {name} sends its API key in the query string, where URLs are logged; use a header"
                );
                self.report(&NO_CREDENTIALS_IN_QUERY, format!("{at}/in"), message);
            }
        }
    }

    pub(super) fn query_credentials(&mut self, op: &Operation<'d>) {
        for p in &op.parameters {
            if p.location == "query" && is_credential_name(&p.name) {
                let at = self.parameter_pointer(&p.pointer);
                let message = format!(
                    "query parameter {} looks like a credential; URLs are logged, send it in a header",
                    p.name
                );
                self.report(&NO_CREDENTIALS_IN_QUERY, at, message);
            }
        }
    }

    /// Servers at the top level, on path items and on operations.
    pub(super) fn servers(&mut self) {
        let doc = self.doc;
        self.server_urls(doc.root.get("servers"), "/servers");
        for (template, item) in entries(&doc.root, "paths") {
            // A broken path item $ref is reported when operations are listed.
            let Ok((item, at)) = self.locate(item, &child("", "paths", template)) else {
                continue;
            };
            self.server_urls(item.get("servers"), &format!("{at}/servers"));
            for method in METHODS {
                if let Some(op) = item.get(method) {
                    self.server_urls(op.get("servers"), &format!("{at}/{method}/servers"));
                }
            }
        }
    }

    fn server_urls(&mut self, servers: Option<&'d Value>, at: &str) {
        let list = servers.and_then(Value::as_array).into_iter().flatten();
        for (i, server) in list.enumerate() {
            let Some(url) = server.get("url").and_then(Value::as_str) else {
                continue;
            };
            if !is_secure_url(&expand_variables(url, server.get("variables"))) {
                let message =
                    format!("server URL {url:?} is not https (plain http is only for localhost)");
                self.report(&SERVERS_HTTPS, format!("{at}/{i}/url"), message);
            }
        }
    }
}

/// A non-empty list of requirements, none of them empty: every way in needs
/// a credential.
fn requires_credentials(security: Option<&Value>) -> bool {
    security.and_then(Value::as_array).is_some_and(|list| {
        !list.is_empty()
            && list
                .iter()
                .all(|r| r.as_object().is_some_and(|r| !r.is_empty()))
    })
}

/// Whether the list holds `{}`, which makes credentials optional.
fn allows_anonymous(security: Option<&Value>) -> bool {
    security.and_then(Value::as_array).is_some_and(|list| {
        list.iter()
            .any(|r| r.as_object().is_some_and(|r| r.is_empty()))
    })
}

fn is_credential_name(name: &str) -> bool {
    let folded: String = name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    CREDENTIAL_NAMES.contains(&folded.as_str())
        || CREDENTIAL_SUFFIXES.iter().any(|s| folded.ends_with(s))
}

/// Replaces `{name}` with the server variable's default, where it has one.
fn expand_variables(url: &str, variables: Option<&Value>) -> String {
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            rest = &rest[open..];
            break;
        };
        let name = &after[..close];
        let default = variables
            .and_then(|v| v.get(name))
            .and_then(|v| v.get("default"))
            .and_then(Value::as_str);
        match default {
            Some(value) => out.push_str(value),
            None => out.push_str(&rest[open..open + close + 2]),
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// https (or wss) anywhere; http only to this machine. A relative URL is
/// served from wherever the document is, so it is not judged here.
fn is_secure_url(url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once("://") else {
        return true;
    };
    scheme.eq_ignore_ascii_case("https")
        || scheme.eq_ignore_ascii_case("wss")
        || is_local_host(host(rest))
}

/// The host of `host:port/path`, `user@host`, `[::1]:80`.
fn host(rest: &str) -> &str {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit('@').next().unwrap_or_default();
    match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    }
}

fn is_local_host(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
        || host.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_names_match_exactly_or_by_ending() {
        for name in [
            "api_key",
            "X-API-Key",
            "token",
            "access_token",
            "client_secret",
            "key",
        ] {
            assert!(is_credential_name(name), "{name}");
        }
        for name in [
            "page_token",
            "sort_key",
            "idempotency_key",
            "keyword",
            "limit",
        ] {
            assert!(!is_credential_name(name), "{name}");
        }
    }

    #[test]
    fn only_loopback_may_use_plain_http() {
        for url in [
            "https://api.example.com",
            "HTTPS://api.example.com",
            "http://localhost:8080/v1",
            "http://127.0.0.1:7001",
            "http://[::1]:80/",
            "http://svc.localhost",
            "/v1",
        ] {
            assert!(is_secure_url(url), "{url}");
        }
        for url in [
            "http://api.example.com",
            "http://localhost.example.com",
            "http://user@10.0.0.1/",
            "ftp://127.0.0.2.example",
            "{scheme}://api.example.com",
        ] {
            assert!(!is_secure_url(url), "{url}");
        }
    }

    #[test]
    fn server_variables_take_their_defaults() {
        let vars = serde_json::json!({"scheme": {"default": "https"}, "port": {}});
        assert_eq!(
            expand_variables("{scheme}://h:{port}/{x", Some(&vars)),
            "https://h:{port}/{x"
        );
    }
}
