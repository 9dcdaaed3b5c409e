//! The `/v1` API in process: auth on every route, keys, catalog, audit.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use blastdoor_auth::KeyCache;
use blastdoor_config::Secret;
use blastdoor_proxy::Gateway;
use blastdoor_store::{SqlStore, now_ms};
use blastdoor_telemetry::{AccessLog, Metrics};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::{AdminState, Api, router, v1};

const TOKEN: &str = "admin-token-0123456789";

struct Fixture {
    _dir: tempfile::TempDir,
    state: AdminState,
    keys: Arc<KeyCache>,
}

async fn fixture(token: Option<&str>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::connect(&format!("sqlite://{}", dir.path().join("a.db").display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let config = blastdoor_config::load_str(
        &dir.path().join("bd.toml"),
        "[[service]]\nname = \"img\"\nowner = \"media\"\nroute = { prefix = \"/img\" }\nupstreams = [\"http://127.0.0.1:9\"]\n",
        &|_| None,
    )
    .unwrap();
    let metrics = Arc::new(Metrics::new());
    let keys = Arc::new(KeyCache::new());
    let gateway = Gateway::new(
        config,
        Arc::clone(&metrics),
        blastdoor_proxy::Signals {
            access_log: AccessLog::disabled(),
            tracer: None,
            consumer_label: false,
        },
        Default::default(),
        Arc::clone(&keys),
        Default::default(),
    );
    let api = Api {
        token: token.map(|t| Secret::new(t.to_string())),
        store,
        keys: Arc::clone(&keys),
        gateway,
    };
    let state = AdminState {
        metrics,
        ready: Arc::new(AtomicBool::new(true)),
        api: Some(Arc::new(api)),
    };
    Fixture {
        _dir: dir,
        state,
        keys,
    }
}

async fn call(
    state: &AdminState,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let body = match body {
        Some(v) => {
            req = req.header("content-type", "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    let resp = router(state.clone())
        .oneshot(req.body(body).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn every_v1_route_requires_the_admin_token() {
    let f = fixture(Some(TOKEN)).await;
    for (path, _) in v1::routes() {
        let path = format!("/v1{}", path.replace("{id}", "someid"));
        let mut saw_auth = false;
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
            for token in [None, Some("wrong-token"), Some("admin-token-012345678")] {
                let (status, body) = call(&f.state, method, &path, token, None).await;
                assert!(
                    status == StatusCode::UNAUTHORIZED || status == StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} with {token:?} answered {status} {body}"
                );
                if status == StatusCode::UNAUTHORIZED {
                    assert_eq!(body["code"], "unauthorized");
                    saw_auth = true;
                }
            }
        }
        assert!(saw_auth, "{path} never asked for the token");
    }
    // No admin token configured: the API is closed, not open.
    let closed = fixture(None).await;
    let (status, body) = call(&closed.state, "GET", "/v1/keys", Some(""), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["detail"].as_str().unwrap().contains("disabled"));
    // The open endpoints stay open.
    assert_eq!(
        call(&f.state, "GET", "/healthz", None, None).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn keys_through_the_admin_api_take_effect_at_once() {
    let f = fixture(Some(TOKEN)).await;
    let t = Some(TOKEN);
    let (status, created) = call(
        &f.state,
        "POST",
        "/v1/keys",
        t,
        Some(
            json!({"name": "renderer", "team": "media", "services": ["img"], "expires_in": "30d"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = created["key"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap().to_string();
    assert!(key.starts_with("bd_") && key.contains(&id));
    assert_eq!(created["status"], "active");
    assert!(
        f.keys.authenticate(Some(&key), now_ms()).is_ok(),
        "usable on this node at once"
    );

    let (_, listed) = call(&f.state, "GET", "/v1/keys", t, None).await;
    assert_eq!(listed[0]["id"], id.as_str());
    let text = listed.to_string();
    assert!(
        !text.contains(&key[15..]) && !text.contains("hash"),
        "no secrets or hashes: {text}"
    );
    assert_eq!(
        call(&f.state, "GET", &format!("/v1/keys/{id}"), t, None)
            .await
            .1["name"],
        "renderer"
    );

    let (status, rotated) = call(
        &f.state,
        "POST",
        &format!("/v1/keys/{id}/rotate"),
        t,
        Some(json!({"grace": "1h"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new_key = rotated["key"].as_str().unwrap().to_string();
    assert!(f.keys.authenticate(Some(&new_key), now_ms()).is_ok());
    assert!(
        f.keys.authenticate(Some(&key), now_ms()).is_ok(),
        "grace period"
    );

    let (status, revoked) = call(&f.state, "POST", &format!("/v1/keys/{id}/revoke"), t, None).await;
    assert_eq!(
        (status, revoked["status"].as_str()),
        (StatusCode::OK, Some("revoked"))
    );
    assert!(
        f.keys.authenticate(Some(&new_key), now_ms()).is_err(),
        "refused on this node at once"
    );
    assert_eq!(
        call(&f.state, "POST", &format!("/v1/keys/{id}/revoke"), t, None)
            .await
            .0,
        StatusCode::CONFLICT
    );

    let (status, missing) = call(&f.state, "POST", "/v1/keys/nosuchkey/revoke", t, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(missing["status"], 404);
    let (status, bad) = call(
        &f.state,
        "POST",
        "/v1/keys",
        t,
        Some(json!({"name": "x", "colour": "red"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    assert_eq!(bad["code"], "bad_request");
    let (status, bad) = call(
        &f.state,
        "POST",
        "/v1/keys",
        t,
        Some(json!({"name": "x", "expires_in": "soon"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");

    let (_, audit) = call(&f.state, "GET", "/v1/audit?limit=10", t, None).await;
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        &actions[..4],
        &["key.revoke", "key.revoke", "key.revoke", "key.rotate"],
        "{audit}"
    );
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"] == "admin-api")
    );
}

#[tokio::test]
async fn the_catalog_lists_services_and_upstream_health() {
    let f = fixture(Some(TOKEN)).await;
    let (status, services) = call(&f.state, "GET", "/v1/services", Some(TOKEN), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(services[0]["name"], "img");
    assert_eq!(services[0]["owner"], "media");
    assert_eq!(services[0]["route"]["prefix"], "/img");
    assert_eq!(services[0]["public"], false);
    assert_eq!(services[0]["upstreams"][0]["url"], "http://127.0.0.1:9");
    assert_eq!(services[0]["upstreams"][0]["healthy"], true);
}
