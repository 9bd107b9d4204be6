//! Errors as the API answers them, `{"error": {"code", "message"}}`, and
//! the helpers every route uses to read bodies and run blocking work.

use axum::extract::rejection::JsonRejection;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use because_events::StoreError;
use because_service::ServiceError;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The largest request body accepted, in bytes.
pub const MAX_BODY: usize = 1 << 20;

/// The time limit of one request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The code of an error response, kept on the response for the metrics.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ErrorCode(pub(crate) &'static str);

/// An error as the API answers it.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// Seconds after which the same request may succeed (`Retry-After`).
    retry_after: Option<u64>,
}

#[derive(Serialize, Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize, Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Tells the client to retry after `seconds` (`Retry-After`).
    pub(crate) fn retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after = Some(seconds.max(1));
        self
    }

    /// The error's code (`bad_request`, `database_unavailable`, ...).
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.into(),
                message: self.message,
            },
        };
        let mut res = (self.status, Json(body)).into_response();
        res.extensions_mut().insert(ErrorCode(self.code));
        if let Some(s) = self.retry_after {
            res.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, s.into());
        }
        res
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> ApiError {
        match &e {
            ServiceError::UnknownItem { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            _ if e.is_client_error() => {
                ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.to_string())
            }
            // The model or its files failed: say so without internals.
            _ => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the model could not answer this request",
            ),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Unavailable { .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "the event database is unavailable; nothing of this request was stored or read: retry later",
            )
            .retry_after(1),
            StoreError::Database { .. } | StoreError::Setting { .. } => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the event database failed; nothing of this batch was stored",
            ),
            other => ApiError::new(StatusCode::BAD_REQUEST, "bad_request", other.to_string()),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        let status = r.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::new(
                status,
                "payload_too_large",
                format!("the body is larger than {MAX_BODY} bytes"),
            );
        }
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", r.body_text())
    }
}

pub(crate) type ApiResult<T> = Result<Json<T>, ApiError>;

pub(crate) fn body<T>(json: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    json.map(|Json(v)| v).map_err(ApiError::from)
}

/// Runs blocking work (the model, the database) off the async threads.
pub(crate) async fn blocking<T: Send + 'static, E: Into<ApiError> + Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the request failed",
            )
        })?
        .map_err(Into::into)
}

pub(crate) fn query<T>(
    q: Result<Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, ApiError> {
    q.map(|Query(v)| v)
        .map_err(|r| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", r.body_text()))
}
