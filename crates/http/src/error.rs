//! The HTTP API's one error shape, `{error_code, message}`, and extractors
//! that turn axum's plain-text rejections (bad JSON, too large, bad query or
//! path) into it.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sluice_protocol::error::{ErrorCode, codes as code};
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable code: Kafka's error name when the error
    /// comes from the broker (`UNKNOWN_TOPIC_OR_PARTITION`), otherwise one
    /// of `BAD_REQUEST`, `BAD_JSON`, `PAYLOAD_TOO_LARGE`, `NOT_FOUND`,
    /// `METHOD_NOT_ALLOWED`, `UNSUPPORTED_MEDIA_TYPE`, `UNAVAILABLE`,
    /// `INTERNAL`, `SCHEMA_NOT_FOUND` (404) and `SCHEMA_MISMATCH` (422)
    /// from REST produce with a schema, `TOPIC_NOT_COMPACTED` (400),
    /// `KEY_NOT_FOUND` (404) and `KV_INDEX_LIMIT` (503) from the key-value
    /// view, and with `http_auth` on `AUTHENTICATION_REQUIRED`,
    /// `AUTHENTICATION_FAILED` (401) and `TOO_MANY_FAILED_LOGINS` (429).
    #[schema(example = "UNKNOWN_TOPIC_OR_PARTITION")]
    pub error_code: String,
    /// What went wrong, for a person.
    pub message: String,
}

/// An error answer: a status and an [`ErrorBody`].
#[derive(Debug, Clone)]
pub struct HttpError {
    /// HTTP status.
    pub status: StatusCode,
    /// The body.
    pub body: ErrorBody,
}

impl HttpError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, error_code: &str, message: impl Into<String>) -> HttpError {
        HttpError {
            status,
            body: ErrorBody {
                error_code: error_code.to_owned(),
                message: message.into(),
            },
        }
    }

    /// 400 with `BAD_REQUEST`.
    pub fn bad_request(message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", message)
    }

    /// 404 with `NOT_FOUND`.
    pub fn not_found(message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }

    /// 500 with `INTERNAL`; logged, since it is a bug or a disk failure.
    pub fn internal(message: impl Into<String>) -> HttpError {
        let message = message.into();
        tracing::error!("http api internal error: {message}");
        HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", message)
    }

    /// A Kafka error code with the HTTP status that fits it.
    pub fn kafka(kafka_code: i16, message: impl Into<String>) -> HttpError {
        let status = match kafka_code {
            code::UNKNOWN_TOPIC_OR_PARTITION
            | code::GROUP_ID_NOT_FOUND
            | code::BROKER_ID_NOT_REGISTERED => StatusCode::NOT_FOUND,
            code::TOPIC_ALREADY_EXISTS | code::NON_EMPTY_GROUP => StatusCode::CONFLICT,
            code::TOPIC_AUTHORIZATION_FAILED
            | code::GROUP_AUTHORIZATION_FAILED
            | code::CLUSTER_AUTHORIZATION_FAILED
            | code::DELEGATION_TOKEN_REQUEST_NOT_ALLOWED => StatusCode::FORBIDDEN,
            code::DELEGATION_TOKEN_NOT_FOUND => StatusCode::NOT_FOUND,
            code::DELEGATION_TOKEN_AUTH_DISABLED => StatusCode::BAD_REQUEST,
            code::MESSAGE_TOO_LARGE | code::RECORD_LIST_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
            code::OFFSET_OUT_OF_RANGE => StatusCode::RANGE_NOT_SATISFIABLE,
            code::INVALID_TOPIC_EXCEPTION
            | code::INVALID_PARTITIONS
            | code::INVALID_REPLICATION_FACTOR
            | code::INVALID_CONFIG
            | code::INVALID_REQUEST
            | code::INVALID_RECORD
            | code::INVALID_TIMESTAMP
            | code::CORRUPT_MESSAGE
            | code::INVALID_GROUP_ID => StatusCode::BAD_REQUEST,
            // Retriable: in a cluster, a change this node cannot make until a
            // controller is elected, or that only the active controller makes.
            code::COORDINATOR_LOAD_IN_PROGRESS
            | code::COORDINATOR_NOT_AVAILABLE
            | code::NOT_CONTROLLER
            | code::NOT_LEADER_OR_FOLLOWER
            | code::LEADER_NOT_AVAILABLE => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = message.into();
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(kafka_code, "http api: {message}");
        }
        HttpError::new(status, ErrorCode::from_code(kafka_code).name(), message)
    }
}

impl From<sluice_metadata::ApiError> for HttpError {
    fn from(e: sluice_metadata::ApiError) -> HttpError {
        HttpError::kafka(e.code, e.message)
    }
}

impl From<sluice_log::LogError> for HttpError {
    fn from(e: sluice_log::LogError) -> HttpError {
        HttpError::kafka(e.kafka_error_code(), e.to_string())
    }
}

impl From<sluice_replica::CommitError> for HttpError {
    fn from(e: sluice_replica::CommitError) -> HttpError {
        HttpError::kafka(e.kafka_error_code(), e.to_string())
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body)).into_response()
    }
}

/// Result of an API handler.
pub type ApiResult<T> = Result<T, HttpError>;

fn rejection(status: StatusCode, text: String) -> HttpError {
    let error_code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "PAYLOAD_TOO_LARGE",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "UNSUPPORTED_MEDIA_TYPE",
        _ => "BAD_JSON",
    };
    // axum reports a body over the limit as a 400 "failed to buffer"
    // wrapping a length-limit error in some paths; keep the 413.
    let status = if status.is_client_error() {
        status
    } else {
        StatusCode::BAD_REQUEST
    };
    HttpError::new(status, error_code, text)
}

/// `axum::Json` whose rejections are [`HttpError`]s.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = HttpError;

    async fn from_request(req: Request, state: &S) -> Result<Self, HttpError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(e) => Err(json_rejection(e)),
        }
    }
}

fn json_rejection(e: JsonRejection) -> HttpError {
    rejection(e.status(), e.body_text())
}

/// `axum::extract::Query` whose rejections are [`HttpError`]s.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, HttpError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(e) => Err(query_rejection(e)),
        }
    }
}

fn query_rejection(e: QueryRejection) -> HttpError {
    HttpError::bad_request(e.body_text())
}

/// `axum::extract::Path` whose rejections are [`HttpError`]s.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, HttpError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(e) => Err(path_rejection(e)),
        }
    }
}

fn path_rejection(e: PathRejection) -> HttpError {
    HttpError::bad_request(e.body_text())
}
