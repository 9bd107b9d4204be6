//! What the dashboard reads besides recommendations: histories, item
//! search and details, and maps of the model and of an explanation.

use crate::error::{blocking, body, query, ApiResult};
use crate::routes::recommend::{stored_events, ten};
use crate::state::State;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State as Extract};
use axum::Json;
use because_service::MapRequest;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HistoryQuery {
    #[serde(default = "fifty")]
    limit: usize,
}

fn fifty() -> usize {
    50
}

pub(crate) async fn user_history(
    Extract(s): Extract<State>,
    Path(user): Path<String>,
    q: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<because_service::UserHistory> {
    let q = query(q)?;
    let h = s.model();
    blocking(move || h.history(&user, q.limit)).await.map(Json)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SearchQuery {
    q: String,
    #[serde(default = "ten")]
    limit: usize,
}

pub(crate) async fn search_items(
    Extract(s): Extract<State>,
    q: Result<Query<SearchQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<because_service::ItemSearch> {
    let q = query(q)?;
    let h = s.model();
    blocking(move || h.search_items(&q.q, q.limit))
        .await
        .map(Json)
}

pub(crate) async fn item_info(
    Extract(s): Extract<State>,
    Path(item): Path<String>,
) -> ApiResult<because_service::ItemInfo> {
    let h = s.model();
    blocking(move || h.item_info(&item)).await.map(Json)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MapQuery {
    #[serde(default = "three_hundred")]
    limit: usize,
}

fn three_hundred() -> usize {
    300
}

pub(crate) async fn model_map(
    Extract(s): Extract<State>,
    q: Result<Query<MapQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<because_service::EmbeddingMap> {
    let q = query(q)?;
    let h = s.model();
    blocking(move || h.embedding_map(q.limit)).await.map(Json)
}

pub(crate) async fn explain_map(
    Extract(s): Extract<State>,
    json: Result<Json<MapRequest>, JsonRejection>,
) -> ApiResult<because_service::ExplanationMap> {
    let req = body(json)?;
    let (extra, degraded) = stored_events(&s, &req.subject).await?;
    let h = s.model();
    let mut out = blocking(move || h.explanation_map_with_events(&req, &extra)).await?;
    out.degraded = degraded;
    Ok(Json(out))
}
