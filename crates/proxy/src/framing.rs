//! HTTP/1 request framing checks, on top of what hyper's parser already
//! refuses (bare CR, obs-fold, whitespace before the colon, control bytes,
//! invalid chunk sizes, oversized heads).
//!
//! blastdoor re-frames every request it forwards, so an upstream only ever
//! sees hyper's own, unambiguous framing. What is left is to refuse
//! requests whose framing the gateway itself would have to guess at.

use http::header::{CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, Method, Version};

/// Why a request's framing was refused (sent to the caller as the detail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadFraming(pub &'static str);

/// Checks the framing headers of a request as received.
pub fn check(method: &Method, version: Version, headers: &HeaderMap) -> Result<(), BadFraming> {
    if method == Method::CONNECT {
        return Err(BadFraming("CONNECT is not supported"));
    }
    let mut content_lengths = headers.get_all(CONTENT_LENGTH).iter();
    let content_length = content_lengths.next();
    if content_lengths.next().is_some() {
        return Err(BadFraming("more than one Content-Length header"));
    }
    if let Some(cl) = content_length
        && (cl.is_empty() || !cl.as_bytes().iter().all(u8::is_ascii_digit) || cl.len() > 19)
    {
        return Err(BadFraming("Content-Length must be a single decimal number"));
    }
    let mut te = headers.get_all(TRANSFER_ENCODING).iter();
    if let Some(first) = te.next() {
        if version == Version::HTTP_2 || version == Version::HTTP_3 {
            return Err(BadFraming("Transfer-Encoding is not allowed in HTTP/2"));
        }
        if content_length.is_some() {
            return Err(BadFraming(
                "both Content-Length and Transfer-Encoding are present",
            ));
        }
        if te.next().is_some() || !first.as_bytes().eq_ignore_ascii_case(b"chunked") {
            return Err(BadFraming(
                "the only accepted Transfer-Encoding is a single \"chunked\"",
            ));
        }
    }
    let mut hosts = headers.get_all(HOST).iter();
    if hosts.next().is_some() && hosts.next().is_some() {
        return Err(BadFraming("more than one Host header"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn check11(pairs: &[(&'static str, &'static str)]) -> Result<(), BadFraming> {
        check(&Method::POST, Version::HTTP_11, &headers(pairs))
    }

    #[test]
    fn accepts_unambiguous_framing() {
        assert!(check11(&[]).is_ok());
        assert!(check11(&[("content-length", "12")]).is_ok());
        assert!(check11(&[("transfer-encoding", "chunked")]).is_ok());
        assert!(check11(&[("transfer-encoding", "Chunked")]).is_ok());
    }

    #[test]
    fn refuses_ambiguous_framing() {
        for bad in [
            vec![("content-length", "5"), ("transfer-encoding", "chunked")],
            vec![("content-length", "5"), ("content-length", "5")],
            vec![("content-length", "5, 5")],
            vec![("content-length", "+5")],
            vec![("content-length", "")],
            vec![("transfer-encoding", "gzip, chunked")],
            vec![
                ("transfer-encoding", "chunked"),
                ("transfer-encoding", "chunked"),
            ],
            vec![("transfer-encoding", "identity")],
            vec![("host", "a"), ("host", "b")],
        ] {
            assert!(check11(&bad).is_err(), "{bad:?}");
        }
        assert!(check(&Method::CONNECT, Version::HTTP_11, &HeaderMap::new()).is_err());
    }
}
