//! Recommendations, explanations and similar items: the model in use, with
//! a user's stored events folded in.

use crate::error::{blocking, body, ApiError, ApiResult};
use crate::state::State;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State as Extract};
use axum::http::StatusCode;
use axum::Json;
use because_events::Event;
use because_service::{ExplainRequest, RecommendRequest, ServiceError, SimilarRequest, Subject};
use serde::Deserialize;

/// The most stored events folded into one user's recommendations.
pub const MAX_FOLDED: usize = 10_000;

/// What an answer says when it was made without the user's stored events.
pub(crate) const DEGRADED: &str = "the event database is unavailable: the user's stored feedback events are not folded in, and the answer comes from the model's training history alone";

/// A user's stored events, oldest first, as sequence events (none for
/// other subjects), and whether they could not be read: when the event
/// database is unavailable, reads go on without them (counted, and the
/// answer says so) rather than fail.
pub(crate) async fn stored_events(
    s: &State,
    subject: &Subject,
) -> Result<(Vec<because_service::SequenceEvent>, Option<String>), ApiError> {
    let Subject::User { user } = subject else {
        return Ok((Vec::new(), None));
    };
    let (events, user) = (s.events.clone(), user.clone());
    match tokio::task::spawn_blocking(move || events.history(&user, MAX_FOLDED)).await {
        Ok(Ok(stored)) => Ok((stored.iter().map(Event::as_sequence_event).collect(), None)),
        Ok(Err(e)) if e.is_unavailable() => {
            s.metrics.degraded();
            Ok((Vec::new(), Some(DEGRADED.to_string())))
        }
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the request failed",
        )),
    }
}

/// Recommends, folding the user's stored events in.
async fn recommend_folded(
    s: State,
    req: RecommendRequest,
) -> Result<because_service::Recommendations, ApiError> {
    let (extra, degraded) = stored_events(&s, &req.subject).await?;
    let h = s.model();
    let mut out = blocking(move || h.recommend_with_events(&req, &extra)).await?;
    out.degraded = degraded;
    Ok(out)
}

pub(crate) async fn recommend(
    Extract(s): Extract<State>,
    json: Result<Json<RecommendRequest>, JsonRejection>,
) -> ApiResult<because_service::Recommendations> {
    let req = body(json)?;
    recommend_folded(s, req).await.map(Json)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    #[serde(default = "ten")]
    k: usize,
    #[serde(default)]
    explain: bool,
    #[serde(default)]
    counterfactuals: bool,
    #[serde(default)]
    method: Option<because_explain::Method>,
}

pub(crate) fn ten() -> usize {
    10
}

pub(crate) async fn user_recommendations(
    Extract(s): Extract<State>,
    Path(user): Path<String>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<because_service::Recommendations> {
    let Query(q) =
        query.map_err(|r| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", r.body_text()))?;
    let req = RecommendRequest {
        explain: q.explain,
        counterfactuals: q.counterfactuals,
        method: q.method,
        ..RecommendRequest::new(Subject::User { user }, q.k)
    };
    recommend_folded(s, req).await.map(Json)
}

pub(crate) async fn explain(
    Extract(s): Extract<State>,
    json: Result<Json<ExplainRequest>, JsonRejection>,
) -> ApiResult<because_service::ExplainResponse> {
    let req = body(json)?;
    let (extra, degraded) = stored_events(&s, &req.subject).await?;
    let h = s.model();
    let mut out = blocking(move || h.explain_with_events(&req, &extra)).await?;
    out.degraded = degraded;
    Ok(Json(out))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SimilarQuery {
    #[serde(default = "ten")]
    k: usize,
}

pub(crate) async fn similar(
    Extract(s): Extract<State>,
    Path(item): Path<String>,
    query: Result<Query<SimilarQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<because_service::SimilarItems> {
    let Query(q) =
        query.map_err(|r| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", r.body_text()))?;
    let h = s.model();
    blocking(move || h.similar(&SimilarRequest { item, k: q.k }))
        .await
        .map(Json)
}

pub(crate) async fn model_fidelity(
    Extract(s): Extract<State>,
) -> ApiResult<because_service::ModelFidelity> {
    let h = s.model();
    blocking(move || Ok::<_, ServiceError>(h.fidelity()))
        .await
        .map(Json)
}

pub(crate) async fn model_info(Extract(s): Extract<State>) -> Json<because_service::ModelInfo> {
    Json(s.model().info())
}
