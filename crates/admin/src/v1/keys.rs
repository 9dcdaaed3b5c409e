//! `/v1/keys`: the same key operations as `blastdoor keys`.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use blastdoor_auth::{CreateKey, KeyOps};
use blastdoor_store::{KeyRecord, KeyStore, now_ms};
use serde::{Deserialize, Serialize};

use super::Api;
use crate::problem::{ApiError, ApiJson};

const ACTOR: &str = "admin-api";

/// A key as the API shows it: never its secret or hash.
#[derive(Debug, Serialize)]
pub struct KeyView {
    id: String,
    name: String,
    team: Option<String>,
    services: Vec<String>,
    methods: Vec<String>,
    created_at: i64,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    /// The previous secret is accepted until then (after a rotation).
    previous_until: Option<i64>,
    status: &'static str,
}

impl From<KeyRecord> for KeyView {
    fn from(k: KeyRecord) -> KeyView {
        let status = if k.revoked_at.is_some() {
            "revoked"
        } else if k.expires_at.is_some_and(|at| now_ms() >= at) {
            "expired"
        } else {
            "active"
        };
        KeyView {
            id: k.id,
            name: k.name,
            team: k.team,
            services: k.services,
            methods: k.methods,
            created_at: k.created_at,
            expires_at: k.expires_at,
            revoked_at: k.revoked_at,
            previous_until: k.previous_until,
            status,
        }
    }
}

/// A new or rotated key: the only response that carries the full key.
#[derive(Debug, Serialize)]
pub struct IssuedKey {
    key: String,
    #[serde(flatten)]
    view: KeyView,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    name: String,
    team: Option<String>,
    #[serde(default)]
    services: Vec<String>,
    #[serde(default)]
    methods: Vec<String>,
    /// Lifetime, e.g. "30d".
    expires_in: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    /// How long the old secret keeps working, e.g. "1h".
    grace: Option<String>,
}

fn duration(field: &str, s: Option<&str>) -> Result<Option<Duration>, ApiError> {
    s.map(|s| {
        blastdoor_config::parse_duration(s)
            .map_err(|e| ApiError::bad_request(format!("{field}: {e}")))
    })
    .transpose()
}

fn ops(api: &Api) -> KeyOps<'_, blastdoor_store::SqlStore> {
    KeyOps::new(&api.store, Some(&api.keys), ACTOR)
}

pub async fn list(State(api): State<Arc<Api>>) -> Result<Json<Vec<KeyView>>, ApiError> {
    Ok(Json(
        ops(&api)
            .list()
            .await?
            .into_iter()
            .map(KeyView::from)
            .collect(),
    ))
}

pub async fn show(
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
) -> Result<Json<KeyView>, ApiError> {
    let record = api
        .store
        .get_key(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no key with id {id}")))?;
    Ok(Json(record.into()))
}

pub async fn create(
    State(api): State<Arc<Api>>,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<(StatusCode, Json<IssuedKey>), ApiError> {
    let req = CreateKey {
        name: body.name,
        team: body.team,
        services: body.services,
        methods: body.methods,
        expires_in: duration("expires_in", body.expires_in.as_deref())?,
    };
    let (key, record) = ops(&api).create(req).await?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedKey {
            key: key.reveal(),
            view: record.into(),
        }),
    ))
}

pub async fn revoke(
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
) -> Result<Json<KeyView>, ApiError> {
    Ok(Json(ops(&api).revoke(&id).await?.into()))
}

pub async fn rotate(
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<IssuedKey>, ApiError> {
    // The body is optional: no body rotates without grace.
    let body: RotateBody = if body.is_empty() {
        RotateBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?
    };
    let grace = duration("grace", body.grace.as_deref())?;
    let (key, record) = ops(&api).rotate(&id, grace).await?;
    Ok(Json(IssuedKey {
        key: key.reveal(),
        view: record.into(),
    }))
}
