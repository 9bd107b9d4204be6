//! Feedback events (stored with the API key), the live view of them, and
//! reloading the model.

use crate::auth::Access;
use crate::error::{blocking, body, ApiResult};
use crate::metrics;
use crate::routes::recommend::MAX_FOLDED;
use crate::state::{authorized, State};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State as Extract};
use axum::http::HeaderMap;
use axum::Json;
use because_events::{Event, StoreError};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventBatch {
    events: Vec<Event>,
}

/// What `POST /v1/events` did.
#[derive(Serialize, Deserialize, schemars::JsonSchema)]
pub struct EventsStored {
    /// Events written (durably: the answer comes after the commit).
    pub stored: usize,
    /// Events whose idempotency key was already stored (not written again).
    pub duplicates: usize,
    /// Events of the batch on items the model served now does not know:
    /// stored all the same, they enter at the next retrain.
    pub unknown_items: usize,
}

pub(crate) async fn post_events(
    Extract(s): Extract<State>,
    headers: HeaderMap,
    json: Result<Json<EventBatch>, JsonRejection>,
) -> ApiResult<EventsStored> {
    authorized(&s, &headers, Access::Write)?;
    let batch = body(json)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let store = s.events.clone();
    let model = s.model();
    let (stored, unknown_items) = blocking(move || {
        let stored = store.insert(&batch.events, now)?;
        let unknown = batch
            .events
            .iter()
            .filter(|e| model.items().get(&e.item).is_none())
            .count();
        Ok::<_, StoreError>((stored, unknown))
    })
    .await?;
    s.metrics.unknown_items(unknown_items as u64);
    Ok(Json(EventsStored {
        stored: stored.stored,
        duplicates: stored.duplicates,
        unknown_items,
    }))
}

/// A user's stored events.
#[derive(Serialize, Deserialize, schemars::JsonSchema)]
pub struct UserEvents {
    /// The user's ID.
    pub user: String,
    /// Their events, oldest first (at most [`MAX_FOLDED`], the latest).
    pub events: Vec<Event>,
}

pub(crate) async fn user_events(
    Extract(s): Extract<State>,
    headers: HeaderMap,
    Path(user): Path<String>,
) -> ApiResult<UserEvents> {
    // A person's raw events are theirs: listing them always needs the key.
    authorized(&s, &headers, Access::Write)?;
    let store = s.events.clone();
    let u = user.clone();
    let events = blocking(move || store.history(&u, MAX_FOLDED)).await?;
    Ok(Json(UserEvents { user, events }))
}

/// Events stored in one minute.
#[derive(Serialize, Deserialize, schemars::JsonSchema)]
pub struct MinuteCount {
    /// Start of the minute, milliseconds since the epoch.
    pub start: i64,
    /// Events received in it.
    pub events: u64,
}

/// What the server is doing now: for the dashboard's live view.
#[derive(Serialize, Deserialize, schemars::JsonSchema)]
pub struct Live {
    /// The model served, as a full spec.
    pub model: String,
    /// Seconds since the server started.
    pub uptime_seconds: f64,
    /// Feedback events stored in all.
    pub events_stored: u64,
    /// Events received in each of the last [`LIVE_MINUTES`] minutes, oldest first.
    pub events_per_minute: Vec<MinuteCount>,
    /// Requests and latency per route since the server started.
    pub routes: Vec<metrics::RouteStats>,
}

/// The minutes of events `GET /v1/live` counts.
pub const LIVE_MINUTES: usize = 15;

pub(crate) async fn live(Extract(s): Extract<State>) -> ApiResult<Live> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let store = s.events.clone();
    let (stored, minutes) = blocking(move || {
        Ok::<_, StoreError>((
            store.count()?,
            store.received_per_minute(now, LIVE_MINUTES)?,
        ))
    })
    .await?;
    Ok(Json(Live {
        model: s.model().info().spec,
        uptime_seconds: s.metrics.uptime_seconds(),
        events_stored: stored,
        events_per_minute: minutes
            .into_iter()
            .map(|(start, events)| MinuteCount { start, events })
            .collect(),
        routes: s.metrics.routes(),
    }))
}

/// The model a reload swapped in.
#[derive(Serialize, Deserialize, schemars::JsonSchema)]
pub struct Reloaded {
    /// The model, as a full spec.
    pub model: String,
    /// Fingerprint of its training data.
    pub data_fingerprint: String,
}

pub(crate) async fn reload(Extract(s): Extract<State>, headers: HeaderMap) -> ApiResult<Reloaded> {
    authorized(&s, &headers, Access::Write)?;
    let fresh = blocking(move || s.reload()).await?;
    let info = fresh.info();
    Ok(Json(Reloaded {
        model: info.spec,
        data_fingerprint: info.data_fingerprint,
    }))
}
