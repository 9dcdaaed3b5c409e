#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
//! HTTP/1 framing and path normalisation, with raw bytes on both sides:
//! what the caller sends and what the upstream actually receives.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use blastdoor_testkit::client::raw;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// An upstream that records the raw bytes it receives and answers each
/// request head with a fixed response.
struct RawUpstream {
    url: String,
    received: Arc<Mutex<Vec<u8>>>,
}

impl RawUpstream {
    async fn start() -> RawUpstream {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let rec = Arc::clone(&received);
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let rec = Arc::clone(&rec);
                tokio::spawn(async move {
                    let mut buf = [0u8; 65536];
                    let mut mine = Vec::new();
                    while let Ok(Ok(n)) =
                        tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await
                    {
                        if n == 0 {
                            break;
                        }
                        mine.extend_from_slice(&buf[..n]);
                        rec.lock().unwrap().extend_from_slice(&buf[..n]);
                        let complete_head = mine.windows(4).any(|w| w == b"\r\n\r\n");
                        let complete_body = !contains_ci(&mine, b"transfer-encoding: chunked")
                            || mine.ends_with(b"0\r\n\r\n");
                        if complete_head && complete_body {
                            mine.clear();
                            if s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                                .await
                                .is_err()
                            {
                                break;
                            }
                        }
                    }
                });
            }
        });
        RawUpstream { url, received }
    }

    fn received(&self) -> String {
        String::from_utf8_lossy(&self.received.lock().unwrap()).into_owned()
    }
}

fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

async fn setup() -> (RawUpstream, MockUpstream, GatewayProcess) {
    let up = RawUpstream::start().await;
    let admin = MockUpstream::echo().await;
    let gw = start(
        &[
            service("f", "/f", std::slice::from_ref(&up.url), ""),
            service("admin", "/admin", &[admin.url()], ""),
        ]
        .concat(),
    );
    (up, admin, gw)
}

async fn send(gw: &GatewayProcess, bytes: &[u8]) -> String {
    raw(gw.proxy, bytes, Duration::from_millis(1500)).await
}

#[tokio::test]
async fn ambiguous_framing_is_refused_before_reaching_the_upstream() {
    let (up, _admin, gw) = setup().await;
    let cases: &[(&str, &[u8])] = &[
        (
            "conflicting CL",
            b"POST /f/x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        ),
        (
            "CL list",
            b"POST /f/x HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc",
        ),
        (
            "signed CL",
            b"POST /f/x HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc",
        ),
        (
            "TE not chunked",
            b"POST /f/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        ),
        (
            "TE identity",
            b"POST /f/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n",
        ),
        (
            "TE in HTTP/1.0",
            b"POST /f/x HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
        (
            "obs-fold",
            b"GET /f/x HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n  folded\r\n\r\n",
        ),
        (
            "space before colon",
            b"GET /f/x HTTP/1.1\r\nHost : a\r\n\r\n",
        ),
        (
            "control char in value",
            b"GET /f/x HTTP/1.1\r\nHost: a\r\nX-A: a\x01b\r\n\r\n",
        ),
        (
            "NUL in value",
            b"GET /f/x HTTP/1.1\r\nHost: a\r\nX-A: a\x00b\r\n\r\n",
        ),
        ("bare CR", b"GET /f/x HTTP/1.1\r\nHost: a\rX-B: c\r\n\r\n"),
        (
            "two hosts",
            b"GET /f/x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        ),
        (
            "CONNECT",
            b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n",
        ),
    ];
    for (name, bytes) in cases {
        let reply = send(&gw, bytes).await;
        assert!(
            reply.starts_with("HTTP/1.1 400"),
            "{name}: expected 400, got {reply:?}"
        );
        assert_eq!(up.received(), "", "{name}: the upstream must see nothing");
    }
}

/// Content-Length together with Transfer-Encoding: hyper's parser drops
/// the Content-Length, reads the body as chunked (RFC 9112 §6.3) and closes
/// the connection after the response, so bytes smuggled after the chunked
/// body can never become a second request. The upstream sees one request
/// with one framing.
#[tokio::test]
async fn content_length_with_transfer_encoding_is_normalised_and_the_connection_closed() {
    let (up, _admin, gw) = setup().await;
    for bytes in [
        &b"POST /f/x HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /f/smuggled HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        &b"POST /f/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n0\r\n\r\nGET /f/smuggled HTTP/1.1\r\nHost: a\r\n\r\n"[..],
    ] {
        let reply = send(&gw, bytes).await;
        assert!(reply.starts_with("HTTP/1.1 200") || reply.starts_with("HTTP/1.1 400"), "{reply:?}");
        assert_eq!(reply.matches("HTTP/1.1 ").count(), 1, "exactly one response: {reply:?}");
        if reply.starts_with("HTTP/1.1 200") {
            assert!(reply.to_ascii_lowercase().contains("connection: close"), "{reply:?}");
        }
    }
    let seen = up.received().to_ascii_lowercase();
    assert!(!seen.contains("smuggled"), "{seen:?}");
    for head in seen
        .split("\r\n\r\n")
        .filter(|h| h.contains("http/1.1\r\n"))
    {
        assert!(
            !(head.contains("content-length:") && head.contains("transfer-encoding:")),
            "{head:?}"
        );
    }
}

#[tokio::test]
async fn oversized_heads_are_refused() {
    let (up, _admin, gw) = setup().await;
    let mut req = b"GET /f/x HTTP/1.1\r\nHost: a\r\nX-Big: ".to_vec();
    req.extend(std::iter::repeat_n(b'a', 200 * 1024));
    req.extend_from_slice(b"\r\n\r\n");
    let reply = send(&gw, &req).await;
    assert!(
        reply.starts_with("HTTP/1.1 431") || reply.starts_with("HTTP/1.1 400"),
        "{reply:?}"
    );
    let mut many = b"GET /f/x HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 0..200 {
        many.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    let reply = send(&gw, &many).await;
    assert!(
        reply.starts_with("HTTP/1.1 431") || reply.starts_with("HTTP/1.1 400"),
        "{reply:?}"
    );
    assert_eq!(up.received(), "");
}

#[tokio::test]
async fn invalid_chunks_never_make_a_complete_request_upstream() {
    let (up, _admin, gw) = setup().await;
    let reply = send(&gw, b"POST /f/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n").await;
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply:?}");
    assert!(!up.received().contains("hello"), "{:?}", up.received());
    assert!(!up.received().ends_with("0\r\n\r\n"), "{:?}", up.received());
}

#[tokio::test]
async fn upstreams_see_exactly_one_clean_framing() {
    let (up, _admin, gw) = setup().await;
    let reply = send(&gw, b"POST /f/chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n").await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply:?}");
    let reply = send(
        &gw,
        b"POST /f/sized HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply:?}");
    // Bare LF line endings are either refused or re-framed with CRLF.
    let reply = send(&gw, b"GET /f/lf HTTP/1.1\nHost: a\nConnection: close\n\n").await;
    assert!(
        reply.starts_with("HTTP/1.1 200") || reply.starts_with("HTTP/1.1 400"),
        "{reply:?}"
    );

    // Identical duplicate Content-Length values are merged into one by
    // hyper's parser (RFC 9112 §6.3 allows it); the upstream sees one.
    let reply = send(&gw, b"POST /f/dup HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello").await;
    assert!(
        reply.starts_with("HTTP/1.1 200") || reply.starts_with("HTTP/1.1 400"),
        "{reply:?}"
    );

    let seen = up.received();
    for request in seen
        .split("POST ")
        .chain(seen.split("GET "))
        .filter(|r| r.contains("HTTP/1.1\r\n"))
    {
        let head = request
            .split("\r\n\r\n")
            .next()
            .unwrap()
            .to_ascii_lowercase();
        let cl = head.matches("content-length:").count();
        let te = head.matches("transfer-encoding:").count();
        assert!(
            cl + te <= 1,
            "more than one framing header upstream: {head:?}"
        );
    }
    assert!(seen.contains("POST /chunked HTTP/1.1\r\n"), "{seen:?}");
    assert!(seen.contains("hello\r\n0\r\n\r\n"), "{seen:?}");
    assert!(seen.contains("POST /sized HTTP/1.1\r\n"), "{seen:?}");
    let bare_lf = seen
        .as_bytes()
        .windows(2)
        .any(|w| w[1] == b'\n' && w[0] != b'\r');
    assert!(
        !bare_lf,
        "every line the upstream sees ends with CRLF: {seen:?}"
    );
}

#[tokio::test]
async fn paths_are_normalised_before_routing() {
    let (up, admin, gw) = setup().await;
    let c = Client::http1();
    // Dot segments, encoded or not, resolve the same way; the upstream gets
    // the normalised path.
    for path in [
        "/f/../admin/x",
        "/f/%2e%2e/admin/x",
        "/f/%2E%2E/admin/x",
        "//admin//x",
        "/admin/./x",
        "/%61dmin/x",
    ] {
        let r = raw(
            gw.proxy,
            format!("GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").as_bytes(),
            Duration::from_millis(1500),
        )
        .await;
        assert!(r.starts_with("HTTP/1.1 200"), "{path}: {r:?}");
        assert!(r.contains("\"path\":\"/x\""), "{path}: {r:?}");
    }
    assert_eq!(admin.hits(), 6);
    // Traversal hidden behind encoded separators, backslashes and escapes
    // above the root are refused.
    for path in [
        "/admin/..%2ff/x",
        "/f/..%2F..%2Fadmin",
        "/f\\..\\admin",
        "/f/%5c..%5cadmin",
        "/..",
        "/f/../../admin",
        "/f/%00",
    ] {
        let r = raw(
            gw.proxy,
            format!("GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").as_bytes(),
            Duration::from_millis(1500),
        )
        .await;
        assert!(r.starts_with("HTTP/1.1 400"), "{path}: {r:?}");
    }
    assert_eq!(admin.hits(), 6);
    assert_eq!(up.received(), "");
    let _ = c;
}
