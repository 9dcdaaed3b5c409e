//! HTTP clients for tests: pooled HTTP/1.1, h2c by prior knowledge, and
//! raw bytes over TCP for framing tests.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::WAIT;

/// A whole response.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a gateway problem+json with `code` and returns it.
    pub fn problem(&self, code: &str) -> serde_json::Value {
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{self:?}"
        );
        let v = self.json();
        assert_eq!(v["code"], code, "{v}");
        assert_eq!(v["status"], self.status.as_u16());
        assert!(v["request_id"].as_str().is_some_and(|s| !s.is_empty()));
        v
    }
}

#[derive(Clone)]
pub struct Client {
    inner: HyperClient<HttpConnector, Full<Bytes>>,
}

impl Default for Client {
    fn default() -> Self {
        Self::http1()
    }
}

impl Client {
    pub fn http1() -> Client {
        Client {
            inner: HyperClient::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// HTTP/2 over cleartext, prior knowledge.
    pub fn h2c() -> Client {
        Client {
            inner: HyperClient::builder(TokioExecutor::new())
                .http2_only(true)
                .build_http(),
        }
    }

    /// Sends a request and reads the whole response (bounded by [`WAIT`]).
    pub async fn send(&self, req: Request<Full<Bytes>>) -> Reply {
        let fut = async {
            let resp = self.inner.request(req).await.expect("request failed");
            let (parts, body) = resp.into_parts();
            let body = body.collect().await.expect("body failed").to_bytes();
            Reply {
                status: parts.status,
                headers: parts.headers,
                body,
            }
        };
        tokio::time::timeout(WAIT, fut)
            .await
            .expect("request timed out")
    }

    pub async fn get(&self, url: &str) -> Reply {
        self.send(Request::get(url).body(Full::default()).unwrap())
            .await
    }

    pub async fn post(&self, url: &str, body: impl Into<Bytes>) -> Reply {
        self.send(
            Request::post(url)
                .header("content-type", "application/json")
                .body(Full::new(body.into()))
                .unwrap(),
        )
        .await
    }

    /// The response head only; the body is left to the caller.
    pub async fn open(&self, req: Request<Full<Bytes>>) -> http::Response<hyper::body::Incoming> {
        tokio::time::timeout(WAIT, self.inner.request(req))
            .await
            .expect("request timed out")
            .expect("request failed")
    }
}

/// Writes raw bytes to `addr` and returns everything read back until the
/// peer closes or `idle` passes without data.
pub async fn raw(addr: SocketAddr, bytes: &[u8], idle: Duration) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout(idle, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
