#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
//! The provider backend against OpenAI-compatible images endpoints: a
//! recording stand-in (the wire: path, key, body; the errors) and another
//! mediagen with the local renderer (the pictures pass through unchanged).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use blastdoor_testkit::upstream::json as json_reply;
use blastdoor_testkit::{Client, MockUpstream};
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use mediagen::backend::{Backend, ImageSpec, Local, VideoSpec};
use mediagen::provider::{Provider, ProviderConfig};
use serde_json::{Value, json};

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

fn provider(base_url: String, model: &str) -> Provider {
    Provider::new(ProviderConfig {
        base_url,
        api_key: "sk-provider-key".into(),
        model: model.into(),
        timeout: Duration::from_secs(10),
    })
}

fn spec(n: u32) -> ImageSpec {
    ImageSpec {
        prompt: "a red kite".into(),
        n,
        side: 256,
        seed: 0,
    }
}

/// A provider that records each request (path, authorization, body) and
/// answers with `status` and `answer`.
async fn recording(status: StatusCode, answer: Value) -> (MockUpstream, Arc<Mutex<Vec<Value>>>) {
    let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
    let log = Arc::clone(&seen);
    let up = MockUpstream::start(move |req: Request<hyper::body::Incoming>| {
        let (log, answer) = (Arc::clone(&log), answer.clone());
        async move {
            let (parts, body) = req.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            log.lock().unwrap().push(json!({
                "path": parts.uri.path(),
                "authorization": parts.headers.get("authorization").unwrap().to_str().unwrap(),
                "body": serde_json::from_slice::<Value>(&body).unwrap(),
            }));
            json_reply(status, &answer)
        }
    })
    .await;
    (up, seen)
}

#[tokio::test]
async fn speaks_the_openai_images_wire() {
    let png = mediagen::render::image("kite", 1, 64).unwrap();
    let answer = json!({ "created": 1, "data": [{ "b64_json": B64.encode(&png) }, { "b64_json": B64.encode(&png) }] });
    let (up, seen) = recording(StatusCode::OK, answer).await;

    let images = provider(format!("{}/v1/", up.url()), "dall-e-2")
        .images(&spec(2))
        .await
        .unwrap();
    assert_eq!(
        images,
        vec![B64.encode(&png); 2],
        "the provider's pictures, as they came"
    );
    let got = seen.lock().unwrap()[0].clone();
    assert_eq!(got["path"], "/v1/images/generations");
    assert_eq!(got["authorization"], "Bearer sk-provider-key");
    assert_eq!(
        got["body"],
        json!({"model": "dall-e-2", "prompt": "a red kite", "n": 2, "size": "256x256", "response_format": "b64_json"}),
        "no seed: it is not part of the OpenAI API"
    );

    // gpt-image models always answer base64 and take no response_format.
    provider(up.url(), "gpt-image-1")
        .images(&spec(1))
        .await
        .unwrap_err();
    let body = &seen.lock().unwrap()[1]["body"];
    assert_eq!(body.get("response_format"), None, "{body}");
    assert_eq!(body["model"], "gpt-image-1");
}

#[tokio::test]
async fn provider_failures_become_clear_problems() {
    let (up, _) = recording(
        StatusCode::UNAUTHORIZED,
        json!({ "error": { "message": "Incorrect API key provided", "type": "invalid_request_error" } }),
    )
    .await;
    let err = provider(up.url(), "dall-e-2")
        .images(&spec(1))
        .await
        .unwrap_err();
    let p = err.problem();
    assert_eq!(
        (p.status, p.code),
        (StatusCode::BAD_GATEWAY, "provider_error")
    );
    assert!(
        p.detail.contains("401") && p.detail.contains("Incorrect API key"),
        "{}",
        p.detail
    );

    // Fewer pictures than asked for is the provider's fault, said so.
    let (short, _) = recording(StatusCode::OK, json!({ "data": [] })).await;
    let p = provider(short.url(), "dall-e-2")
        .images(&spec(1))
        .await
        .unwrap_err()
        .problem();
    assert!(
        p.detail.contains("asked for 1 pictures, got 0"),
        "{}",
        p.detail
    );

    // Nobody listening.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let p = provider(dead, "dall-e-2")
        .images(&spec(1))
        .await
        .unwrap_err()
        .problem();
    assert_eq!(p.status, StatusCode::BAD_GATEWAY, "{}", p.detail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mediagen_in_front_of_mediagen_passes_pictures_through() {
    // The provider: mediagen rendering locally.
    let upstream = serve(mediagen::router(Local::new(2), mediagen::Config::default())).await;
    // The service under test: mediagen asking that provider.
    let front = serve(mediagen::router(
        provider(format!("{upstream}/v1"), "dall-e-2"),
        mediagen::Config::default(),
    ))
    .await;

    let c = Client::http1();
    let req = Request::post(format!("{front}/v1/images/generations"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(
            r#"{"prompt":"a red kite","size":"256x256","n":2}"#,
        )))
        .unwrap();
    let reply = c.send(req).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["usage"], json!({"images": 2, "video_seconds": 0}));
    let local = Local::new(1).images(&spec(2)).await.unwrap();
    let got: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["b64_json"].as_str().unwrap())
        .collect();
    assert_eq!(got, local, "the provider's pictures, byte for byte");
    assert_eq!(
        c.get(&format!("{front}/healthz")).await.json()["backend"],
        "provider"
    );

    // A video from a provider: its picture for the prompt, animated here.
    let video = provider(format!("{upstream}/v1"), "dall-e-2")
        .video(
            &VideoSpec {
                prompt: "a red kite".into(),
                seconds: 1,
                side: 128,
                seed: 0,
            },
            Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(video.media_type, "image/apng");
    let mut reader = png::Decoder::new(std::io::Cursor::new(&video.bytes))
        .read_info()
        .unwrap();
    assert_eq!(reader.info().size(), (128, 128));
    assert_eq!(
        reader.info().animation_control().unwrap().num_frames,
        u32::from(mediagen::render::FPS)
    );
    let mut first = vec![0; reader.output_buffer_size().unwrap()];
    reader.next_frame(&mut first).unwrap();
    // The provider drew a 256x256 still (its smallest size); the video
    // opens on it at half scale.
    let still = mediagen::render::image("a red kite", 0, 256).unwrap();
    let mut still_reader = png::Decoder::new(std::io::Cursor::new(&still))
        .read_info()
        .unwrap();
    let mut still_pixels = vec![0; still_reader.output_buffer_size().unwrap()];
    still_reader.next_frame(&mut still_pixels).unwrap();
    let half: Vec<u8> = still_pixels
        .chunks_exact(256 * 3)
        .step_by(2)
        .flat_map(|row| {
            row.chunks_exact(3)
                .step_by(2)
                .flatten()
                .copied()
                .collect::<Vec<u8>>()
        })
        .collect();
    assert_eq!(first, half, "the video opens on the provider's picture");
}
