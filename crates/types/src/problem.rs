//! RFC 9457 problem details: the body of every gateway-made error.

use serde::Serialize;

use crate::ErrorCode;

/// The media type of a problem document.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem document. `detail` is meant for the caller: it never carries
/// internal causes or secrets (those are logged instead).
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    pub code: &'static str,
    pub request_id: String,
}

impl Problem {
    pub fn new(code: ErrorCode, detail: impl Into<String>, request_id: impl Into<String>) -> Self {
        Problem {
            type_uri: format!("https://blastdoor.dev/errors/{}", code.as_str()),
            title: code.title(),
            status: code.status().as_u16(),
            detail: detail.into(),
            code: code.as_str(),
            request_id: request_id.into(),
        }
    }

    /// The serialized body. Serializing this struct cannot fail (only
    /// strings and integers), but fall back to a fixed document rather than
    /// panic if it ever did.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_else(|_| {
            br#"{"title":"Internal gateway error","status":500,"code":"internal_error"}"#.to_vec()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_rfc9457_members_plus_code_and_request_id() {
        let p = Problem::new(ErrorCode::RouteNotFound, "no service for /x", "req-1");
        let v: serde_json::Value = serde_json::from_slice(&p.to_json()).unwrap();
        assert_eq!(v["type"], "https://blastdoor.dev/errors/route_not_found");
        assert_eq!(v["title"], "No service matches this route");
        assert_eq!(v["status"], 404);
        assert_eq!(v["detail"], "no service for /x");
        assert_eq!(v["code"], "route_not_found");
        assert_eq!(v["request_id"], "req-1");
    }
}
