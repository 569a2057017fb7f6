//! The schema registry's REST API: Confluent Schema Registry's routes,
//! bodies, content type and error codes, served at the root of its own
//! listener (`schema_registry_listener`), so every serializer and tool
//! given this URL works unchanged.
//!
//! The handlers only translate: parse the path, query and body, call the
//! [`sluice_registry::Registry`] (which owns every rule), and shape the
//! answer. Errors are `{"error_code": <int>, "message": ...}` with the
//! status Confluent uses for each code.
//!
//! With `http_auth` on, every request must authenticate as on the HTTP
//! API. Reads need nothing more; a write to a subject needs `WRITE` on the
//! topic the subject is named after (TopicNameStrategy: the subject without
//! its `-key`/`-value` suffix) or `ALTER` on the cluster, and registry-wide
//! settings (`/config`, `/mode`) need `ALTER` on the cluster.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sluice_registry::state::{self, Record};
use sluice_registry::{
    Mode, NewSchema, RegisterOptions, Registry, RegistryError, SchemaReference, StoredSchema,
    SubjectVersion, VersionSpec,
};
use sluice_schema::SchemaType;
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::{self, Caller, Operation, Resource};

/// Content type of every answer, Confluent's.
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// Largest request body: a schema of [`sluice_schema::MAX_SCHEMA_BYTES`]
/// grows when escaped into a JSON string, and references ride along.
pub const MAX_REGISTRY_BODY_BYTES: usize = 4 * sluice_schema::MAX_SCHEMA_BYTES;

/// The registry's routes, each with its OpenAPI entry (a route cannot exist
/// without one: `routes!` takes both from the handler's `utoipa::path`).
fn registry_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(RegistryDoc::openapi())
        .routes(routes!(root))
        .routes(routes!(list_schemas))
        .routes(routes!(schema_types))
        .routes(routes!(schema_by_id))
        .routes(routes!(schema_text_by_id))
        .routes(routes!(subjects_by_id))
        .routes(routes!(versions_by_id))
        .routes(routes!(list_subjects))
        .routes(routes!(lookup, delete_subject))
        .routes(routes!(list_versions, register))
        .routes(routes!(get_version, delete_version))
        .routes(routes!(get_version_text))
        .routes(routes!(referenced_by))
        .routes(routes!(
            get_global_config,
            put_global_config,
            delete_global_config
        ))
        .routes(routes!(
            get_subject_config,
            put_subject_config,
            delete_subject_config
        ))
        .routes(routes!(
            get_global_mode,
            put_global_mode,
            delete_global_mode
        ))
        .routes(routes!(
            get_subject_mode,
            put_subject_mode,
            delete_subject_mode
        ))
        .routes(routes!(check_all_versions))
        .routes(routes!(check_one_version))
        .routes(routes!(contexts))
        .routes(routes!(metadata_id))
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sluice schema registry",
        description = "Confluent Schema Registry's REST API, served by the Sluice broker at the root of `schema_registry_listener`. Answers use the content type `application/vnd.schemaregistry.v1+json`; errors are `{error_code, message}` with Confluent's codes."
    ),
    components(schemas(
        SrErrorBody,
        SchemaBody,
        ReferenceDoc,
        RegisteredId,
        SubjectVersionDoc,
        SubjectVersionRef,
        SchemaDoc,
        CompatibilityDoc,
        ConfigDoc,
        ConfigRequest,
        ModeDoc
    ))
)]
struct RegistryDoc;

/// The registry's OpenAPI document as JSON, built once.
pub static REGISTRY_OPENAPI_JSON: LazyLock<String> = LazyLock::new(|| {
    registry_router()
        .into_openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\":\"cannot render spec: {e}\"}}"))
});

async fn openapi_json() -> Response {
    let mut response = REGISTRY_OPENAPI_JSON.clone().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The registry's routes for the HTTP listener, nested under
/// `/v1/registry`: how the console (served there) reaches the registry
/// without a second origin. Authentication and limits are the HTTP API's.
pub fn nested(state: AppState) -> Router<AppState> {
    let (router, _spec) = registry_router().split_for_parts();
    router
        .route("/openapi.json", get(openapi_json))
        .layer(middleware::from_fn_with_state(
            state,
            forward_without_replica,
        ))
}

/// The registry's router over `state` (authentication as on the HTTP API),
/// with its OpenAPI document at `/openapi.json`.
pub fn app(state: AppState) -> Router {
    let (router, _spec) = registry_router().split_for_parts();
    router
        .route("/openapi.json", get(openapi_json))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            forward_without_replica,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .layer(DefaultBodyLimit::max(MAX_REGISTRY_BODY_BYTES))
        .with_state(state)
}

// -- documented shapes ----------------------------------------------------

/// An error answer.
#[derive(Debug, Serialize, ToSchema)]
struct SrErrorBody {
    /// Confluent's code: 40401, 42201, 409, ...
    error_code: u32,
    /// What went wrong.
    message: String,
}

/// A register answer.
#[derive(Debug, Serialize, ToSchema)]
struct RegisteredId {
    /// The global schema id.
    id: i32,
}

/// One version of a subject.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct SubjectVersionDoc {
    subject: String,
    version: i32,
    id: i32,
    /// Absent for AVRO.
    schema_type: Option<String>,
    references: Option<Vec<ReferenceDoc>>,
    schema: String,
    /// Present (true) on a soft-deleted version read with `deleted=true`.
    deleted: Option<bool>,
}

/// A subject and version holding a schema.
#[derive(Debug, Serialize, ToSchema)]
struct SubjectVersionRef {
    subject: String,
    version: i32,
}

/// A schema by id.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct SchemaDoc {
    /// Absent for AVRO.
    schema_type: Option<String>,
    references: Option<Vec<ReferenceDoc>>,
    schema: String,
}

/// A reference from a schema to a registered one.
#[derive(Debug, Serialize, ToSchema)]
struct ReferenceDoc {
    /// The name the schema uses for it (Avro full name, `$ref`, import path).
    name: String,
    subject: String,
    version: i32,
}

/// A compatibility check answer.
#[derive(Debug, Serialize, ToSchema)]
struct CompatibilityDoc {
    is_compatible: bool,
    /// With `verbose=true`: why not.
    messages: Option<Vec<String>>,
}

/// A compatibility level.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ConfigDoc {
    /// BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL,
    /// FULL_TRANSITIVE or NONE.
    compatibility_level: String,
}

/// A level to set (and the answer to setting it).
#[derive(Debug, Serialize, ToSchema)]
struct ConfigRequest {
    compatibility: String,
}

// -- answers ------------------------------------------------------------

/// A JSON answer with Confluent's content type.
struct Sr<T>(StatusCode, T);

impl<T: Serialize> IntoResponse for Sr<T> {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.1).unwrap_or_else(|_| b"{}".to_vec());
        let mut response = (self.0, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        response
    }
}

fn ok<T: Serialize>(value: T) -> Sr<T> {
    Sr(StatusCode::OK, value)
}

/// An error answer: Confluent's `{error_code, message}`.
#[derive(Debug)]
struct SrError {
    status: StatusCode,
    error_code: u32,
    message: String,
}

impl From<RegistryError> for SrError {
    fn from(e: RegistryError) -> SrError {
        let status =
            StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::warn!(code = e.error_code(), "schema registry: {e}");
        }
        SrError {
            status,
            error_code: e.error_code(),
            message: e.to_string(),
        }
    }
}

impl From<crate::error::HttpError> for SrError {
    fn from(e: crate::error::HttpError) -> SrError {
        SrError {
            status: e.status,
            error_code: u32::from(e.status.as_u16()),
            message: e.body.message,
        }
    }
}

impl SrError {
    fn new(status: StatusCode, message: impl Into<String>) -> SrError {
        SrError {
            status,
            error_code: u32::from(status.as_u16()),
            message: message.into(),
        }
    }
}

impl IntoResponse for SrError {
    fn into_response(self) -> Response {
        Sr(
            self.status,
            json!({"error_code": self.error_code, "message": self.message}),
        )
        .into_response()
    }
}

type SrResult<T> = Result<Sr<T>, SrError>;

async fn not_found(uri: axum::http::Uri) -> SrError {
    SrError::new(
        StatusCode::NOT_FOUND,
        format!("HTTP 404 Not Found: {}", uri.path()),
    )
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> SrError {
    SrError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("HTTP 405 Method Not Allowed: {method} {}", uri.path()),
    )
}

// -- request pieces -----------------------------------------------------

type Params = Query<HashMap<String, String>>;

/// A boolean query parameter: `true`/`false` in any case (the Python
/// client sends `True`), absent means `false`.
fn flag(params: &HashMap<String, String>, name: &str) -> Result<bool, SrError> {
    match params.get(name).map(|v| v.to_ascii_lowercase()) {
        None => Ok(false),
        Some(v) if v == "true" => Ok(true),
        Some(v) if v == "false" || v.is_empty() => Ok(false),
        Some(v) => Err(SrError::new(
            StatusCode::BAD_REQUEST,
            format!("query parameter {name}={v:?} is not true or false"),
        )),
    }
}

/// `offset` and `limit` (-1 or absent: everything) applied to a list.
fn page<T>(params: &HashMap<String, String>, items: Vec<T>) -> Result<Vec<T>, SrError> {
    let number = |name: &str, default: i64| -> Result<i64, SrError> {
        params.get(name).map_or(Ok(default), |v| {
            v.parse().map_err(|_| {
                SrError::new(
                    StatusCode::BAD_REQUEST,
                    format!("query parameter {name}={v:?} is not a number"),
                )
            })
        })
    };
    let offset = usize::try_from(number("offset", 0)?.max(0)).unwrap_or(usize::MAX);
    let limit = number("limit", -1)?;
    let items = items.into_iter().skip(offset);
    Ok(match usize::try_from(limit) {
        Ok(limit) if limit > 0 => items.take(limit).collect(),
        _ => items.collect(),
    })
}

/// The body of register, lookup and compatibility requests.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct SchemaBody {
    schema: Option<String>,
    schema_type: Option<String>,
    #[schema(value_type = Option<Vec<ReferenceDoc>>)]
    references: Option<Vec<SchemaReference>>,
    id: Option<i32>,
    version: Option<i32>,
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, SrError> {
    serde_json::from_slice(body).map_err(|e| {
        let status = if e.is_data() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::BAD_REQUEST
        };
        SrError::new(status, format!("malformed request body: {e}"))
    })
}

fn new_schema(body: &SchemaBody) -> Result<NewSchema, SrError> {
    let text = body.schema.clone().unwrap_or_default();
    if text.trim().is_empty() {
        return Err(RegistryError::InvalidSchema("Empty schema".into()).into());
    }
    let schema_type = SchemaType::from_optional(body.schema_type.as_deref())
        .map_err(|e| RegistryError::InvalidSchema(e.to_string()))?;
    Ok(NewSchema {
        schema_type,
        text,
        references: body.references.clone().unwrap_or_default(),
    })
}

fn version_spec(text: &str) -> Result<VersionSpec, SrError> {
    Ok(VersionSpec::parse(text)?)
}

fn schema_id(text: &str) -> Result<i32, SrError> {
    text.parse()
        .map_err(|_| SrError::from(RegistryError::SchemaIdNotFound(-1)))
        .and_then(|id: i32| {
            if id < 1 {
                Err(RegistryError::SchemaIdNotFound(id).into())
            } else {
                Ok(id)
            }
        })
}

// -- authorization ------------------------------------------------------

/// The topic a TopicNameStrategy subject is named after.
fn subject_topic(subject: &str) -> &str {
    subject
        .strip_suffix("-value")
        .or_else(|| subject.strip_suffix("-key"))
        .unwrap_or(subject)
}

fn require_subject_write(caller: &Caller, subject: &str) -> Result<(), SrError> {
    if caller.allowed(Operation::Alter, Resource::Cluster)
        || caller.allowed(Operation::Write, Resource::Topic(subject_topic(subject)))
    {
        return Ok(());
    }
    Err(SrError {
        status: StatusCode::FORBIDDEN,
        error_code: 40301,
        message: format!(
            "{} may not write subject {subject}: it needs WRITE on topic {} or ALTER on the cluster",
            caller.principal.as_str(),
            subject_topic(subject)
        ),
    })
}

fn require_cluster_alter(caller: &Caller) -> Result<(), SrError> {
    caller
        .require(Operation::Alter, Resource::Cluster)
        .map_err(|e| SrError {
            status: StatusCode::FORBIDDEN,
            error_code: 40301,
            message: e.body.message,
        })
}

// -- shapes -------------------------------------------------------------

fn schema_fields(schema: &StoredSchema, out: &mut serde_json::Map<String, Value>) {
    if schema.schema_type != SchemaType::Avro {
        out.insert("schemaType".into(), json!(schema.schema_type.as_str()));
    }
    if !schema.references.is_empty() {
        out.insert("references".into(), json!(schema.references));
    }
    out.insert("schema".into(), json!(schema.text));
}

fn version_json(v: &SubjectVersion) -> Value {
    let mut out = serde_json::Map::new();
    out.insert("subject".into(), json!(v.subject));
    out.insert("version".into(), json!(v.version));
    out.insert("id".into(), json!(v.id));
    schema_fields(&v.schema, &mut out);
    if v.deleted {
        out.insert("deleted".into(), json!(true));
    }
    Value::Object(out)
}

fn registry(state: &AppState) -> &Arc<Registry> {
    &state.broker.registry
}

// -- forwarding writes to the leader -------------------------------------

/// Header marking a request one node forwarded to another, so it is never
/// forwarded twice (a leadership change in between answers 50004 instead).
const FORWARDED_HEADER: &str = "x-sluice-registry-forwarded";

/// Longest answer read back from the leader.
const MAX_FORWARDED_ANSWER_BYTES: u64 = 16 * 1024 * 1024;

/// How long a forwarded write may take.
const FORWARD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A write request as received, kept to forward it.
#[derive(Debug)]
struct Incoming {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl<S: Send + Sync> FromRequest<S> for Incoming {
    type Rejection = SrError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, SrError> {
        let (parts, body) = request.into_parts();
        let body = Bytes::from_request(
            axum::extract::Request::from_parts(parts.clone(), body),
            state,
        )
        .await
        .map_err(|e| SrError::new(e.status(), e.body_text()))?;
        Ok(Incoming {
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            body,
        })
    }
}

/// Most bytes of a request forwarded by [`forward_without_replica`]: the
/// registry's own body limit.
const MAX_FORWARDED_REQUEST_BYTES: usize = MAX_REGISTRY_BODY_BYTES;

/// Sends every request, reads included, to the leader of `_schemas-0` when
/// this node hosts no replica of it, so any node of a cluster serves the
/// whole registry API. A request already forwarded once is served here (and
/// answers 50004) rather than passed on again.
async fn forward_without_replica(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    let leader = match registry(&state).leader_elsewhere() {
        Some(leader) if !request.headers().contains_key(FORWARDED_HEADER) => leader,
        _ => return next.run(request).await,
    };
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_FORWARDED_REQUEST_BYTES).await {
        Ok(body) => body,
        Err(e) => {
            return SrError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()).into_response();
        }
    };
    let incoming = Incoming {
        method: parts.method,
        uri: parts.uri,
        headers: parts.headers,
        body,
    };
    forward(&state, leader, &incoming)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// Runs a registry write; if another node leads `_schemas-0`, forwards the
/// request there and answers with what the leader answered.
async fn write_here_or_forward<T, F>(
    state: &AppState,
    incoming: &Incoming,
    write: F,
) -> Result<Result<T, Response>, SrError>
where
    F: std::future::Future<Output = Result<T, RegistryError>>,
{
    match write.await {
        Ok(answer) => Ok(Ok(answer)),
        Err(RegistryError::NotLeader { leader }) => {
            if incoming.headers.contains_key(FORWARDED_HEADER) {
                return Err(RegistryError::Unavailable(format!(
                    "node {leader} leads _schemas now; this request was already forwarded once"
                ))
                .into());
            }
            forward(state, leader, incoming).await.map(Err)
        }
        Err(e) => Err(e.into()),
    }
}

/// Sends `incoming` to node `leader`'s registry listener (the
/// `_SCHEMA_REGISTRY` endpoint it registered) and returns its answer.
async fn forward(state: &AppState, leader: i32, incoming: &Incoming) -> Result<Response, SrError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let unavailable = |why: String| SrError::from(RegistryError::Unavailable(why));
    let image = state.broker.metadata.image();
    let endpoint = image
        .brokers
        .get(&leader)
        .and_then(|b| {
            b.endpoints
                .iter()
                .find(|e| e.name == sluice_registry::REGISTRY_ENDPOINT)
        })
        .ok_or_else(|| {
            unavailable(format!(
                "node {leader} leads _schemas but registered no schema registry listener"
            ))
        })?;
    let tls = if endpoint.security_protocol == 0 {
        None
    } else {
        let config = state.broker.registry_forward_tls.clone().ok_or_else(|| {
            unavailable(format!(
                "node {leader} leads _schemas and serves its registry over TLS, but this node has no CA to trust (tls.ca_file); send the request to {}:{}",
                endpoint.host, endpoint.port
            ))
        })?;
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from(endpoint.host.clone())
            .map_err(|e| {
                unavailable(format!(
                    "node {leader}'s registry host {:?} is not a TLS server name: {e}",
                    endpoint.host
                ))
            })?;
        Some((tokio_rustls::TlsConnector::from(config), name))
    };
    let addr = format!("{}:{}", endpoint.host, endpoint.port);
    let path = incoming.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut head = format!(
        "{} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n{FORWARDED_HEADER}: 1\r\n",
        incoming.method,
        incoming.body.len()
    );
    for name in [header::CONTENT_TYPE, header::AUTHORIZATION, header::ACCEPT] {
        if let Some(value) = incoming.headers.get(&name).and_then(|v| v.to_str().ok()) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str("\r\n");
    async fn exchange<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
        mut stream: S,
        head: &str,
        body: &[u8],
    ) -> std::io::Result<Vec<u8>> {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body).await?;
        stream.flush().await?;
        let mut raw = Vec::new();
        (&mut stream)
            .take(MAX_FORWARDED_ANSWER_BYTES)
            .read_to_end(&mut raw)
            .await?;
        Ok(raw)
    }
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(&addr).await?;
        match tls {
            None => exchange(stream, &head, &incoming.body).await,
            Some((connector, name)) => {
                let stream = connector.connect(name, stream).await?;
                exchange(stream, &head, &incoming.body).await
            }
        }
    };
    let raw = tokio::time::timeout(FORWARD_TIMEOUT, exchange)
        .await
        .map_err(|_| {
            unavailable(format!(
                "node {leader} ({addr}) did not answer a forwarded write in {FORWARD_TIMEOUT:?}"
            ))
        })?
        .map_err(|e| {
            unavailable(format!(
                "cannot forward the write to node {leader} ({addr}): {e}"
            ))
        })?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| unavailable(format!("malformed answer from node {leader} ({addr})")))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .ok_or_else(|| unavailable(format!("malformed answer from node {leader} ({addr})")))?;
    let body = Bytes::copy_from_slice(&raw[split + 4..]);
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    Ok(response)
}

// -- handlers: schemas --------------------------------------------------

#[utoipa::path(get,
    operation_id = "registry_root",
    path = "/",
    tag = "schema registry",
    responses((status = 200, description = "An empty object", body = Object)))]
async fn root() -> Sr<Value> {
    ok(json!({}))
}

#[utoipa::path(get,
    operation_id = "list_contexts",
    path = "/contexts",
    tag = "schema registry",
    responses((status = 200, description = "The default context only: [\".\"]", body = [String])))]
async fn contexts() -> Sr<Value> {
    ok(json!(["."]))
}

#[utoipa::path(get,
    operation_id = "registry_metadata_id",
    path = "/v1/metadata/id",
    tag = "schema registry",
    responses((status = 200, description = "The Kafka cluster id", body = Object)))]
async fn metadata_id(State(state): State<AppState>) -> Sr<Value> {
    ok(json!({"scope": {"path": [], "clusters": {
        "kafka-cluster": state.broker.cluster_id(),
        "schema-registry-cluster": "schema-registry",
    }}}))
}

#[utoipa::path(get,
    operation_id = "schema_types",
    path = "/schemas/types",
    tag = "schema registry",
    responses((status = 200, description = "AVRO, JSON, PROTOBUF", body = [String])))]
async fn schema_types() -> Sr<Value> {
    ok(json!(["JSON", "PROTOBUF", "AVRO"]))
}

#[utoipa::path(get,
    operation_id = "list_schemas",
    path = "/schemas",
    tag = "schema registry",
    params(("deleted" = Option<String>, Query, description = "true: include soft-deleted"), ("latestOnly" = Option<String>, Query, description = "true: only each subject's latest version"), ("subjectPrefix" = Option<String>, Query, description = "Only subjects starting with this"), ("offset" = Option<String>, Query, description = "Skip this many"), ("limit" = Option<String>, Query, description = "At most this many")),
    responses((status = 200, description = "Every version of every subject", body = [SubjectVersionDoc])))]
async fn list_schemas(State(state): State<AppState>, Query(params): Params) -> SrResult<Value> {
    let deleted = flag(&params, "deleted")?;
    let latest_only = flag(&params, "latestOnly")?;
    let prefix = params.get("subjectPrefix").cloned().unwrap_or_default();
    let all = registry(&state)
        .read(move |s| {
            let mut out = Vec::new();
            for subject in s.subjects(deleted, &prefix) {
                let versions = s.versions(&subject, deleted)?;
                let chosen = if latest_only {
                    versions.last().copied().into_iter().collect()
                } else {
                    versions
                };
                for v in chosen {
                    out.push(version_json(&s.version(
                        &subject,
                        VersionSpec::Number(v),
                        deleted,
                    )?));
                }
            }
            Ok(out)
        })
        .await?;
    Ok(ok(json!(page(&params, all)?)))
}

#[utoipa::path(get,
    operation_id = "schema_by_id",
    path = "/schemas/ids/{id}",
    tag = "schema registry",
    params(("id" = String, Path, description = "Global schema id"), ("subject" = Option<String>, Query, description = "Ignored; accepted as Confluent does"), ("format" = Option<String>, Query, description = "serialized: a Protobuf schema as base64 FileDescriptorProto")),
    responses((status = 200, description = "The schema", body = SchemaDoc), (status = 404, description = "Not found (40401 subject, 40402 version, 40403 schema)", body = SrErrorBody)))]
async fn schema_by_id(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Params,
) -> SrResult<Value> {
    let id = schema_id(&id)?;
    let format = params.get("format").cloned();
    let schema = registry(&state)
        .read(move |s| s.schema_in_format(id, format.as_deref()))
        .await?;
    let mut out = serde_json::Map::new();
    schema_fields(&schema, &mut out);
    Ok(ok(Value::Object(out)))
}

#[utoipa::path(get,
    operation_id = "schema_text_by_id",
    path = "/schemas/ids/{id}/schema",
    tag = "schema registry",
    params(("id" = String, Path, description = "Global schema id")),
    responses((status = 200, description = "The schema text itself", body = String), (status = 404, description = "Not found (40401 subject, 40402 version, 40403 schema)", body = SrErrorBody)))]
async fn schema_text_by_id(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, SrError> {
    let id = schema_id(&id)?;
    let schema = registry(&state).read(move |s| s.schema(id)).await?;
    Ok(raw_schema(&schema))
}

/// The schema text itself as the body (Confluent's `/schema` routes): JSON
/// text for Avro and JSON Schema, `.proto` text for Protobuf.
fn raw_schema(schema: &StoredSchema) -> Response {
    let mut response = schema.text.clone().into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

#[utoipa::path(get,
    operation_id = "subjects_by_id",
    path = "/schemas/ids/{id}/subjects",
    tag = "schema registry",
    params(("id" = String, Path, description = "Global schema id"), ("deleted" = Option<String>, Query, description = "true: include soft-deleted")),
    responses((status = 200, description = "Subjects holding the schema", body = [String]), (status = 404, description = "Not found (40401 subject, 40402 version, 40403 schema)", body = SrErrorBody)))]
async fn subjects_by_id(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Params,
) -> SrResult<Value> {
    let id = schema_id(&id)?;
    let deleted = flag(&params, "deleted")?;
    let versions = registry(&state)
        .read(move |s| s.versions_of_id(id, deleted))
        .await?;
    let mut subjects: Vec<String> = versions.into_iter().map(|(s, _)| s).collect();
    subjects.dedup();
    Ok(ok(json!(page(&params, subjects)?)))
}

#[utoipa::path(get,
    operation_id = "versions_by_id",
    path = "/schemas/ids/{id}/versions",
    tag = "schema registry",
    params(("id" = String, Path, description = "Global schema id"), ("deleted" = Option<String>, Query, description = "true: include soft-deleted")),
    responses((status = 200, description = "Subject and version pairs holding the schema", body = [SubjectVersionRef]), (status = 404, description = "Not found (40401 subject, 40402 version, 40403 schema)", body = SrErrorBody)))]
async fn versions_by_id(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Params,
) -> SrResult<Value> {
    let id = schema_id(&id)?;
    let deleted = flag(&params, "deleted")?;
    let versions = registry(&state)
        .read(move |s| s.versions_of_id(id, deleted))
        .await?;
    let out: Vec<Value> = versions
        .into_iter()
        .map(|(subject, version)| json!({"subject": subject, "version": version}))
        .collect();
    Ok(ok(json!(page(&params, out)?)))
}

// -- handlers: subjects -------------------------------------------------

#[utoipa::path(get,
    operation_id = "list_subjects",
    path = "/subjects",
    tag = "schema registry",
    params(("deleted" = Option<String>, Query, description = "true: include soft-deleted"), ("deletedOnly" = Option<String>, Query, description = "true: only soft-deleted subjects"), ("subjectPrefix" = Option<String>, Query, description = "Only subjects starting with this"), ("offset" = Option<String>, Query, description = "Skip this many"), ("limit" = Option<String>, Query, description = "At most this many")),
    responses((status = 200, description = "Subjects", body = [String])))]
async fn list_subjects(State(state): State<AppState>, Query(params): Params) -> SrResult<Value> {
    let deleted = flag(&params, "deleted")?;
    let deleted_only = flag(&params, "deletedOnly")?;
    let prefix = params.get("subjectPrefix").cloned().unwrap_or_default();
    let subjects = registry(&state)
        .read(move |s| {
            let all = s.subjects(deleted || deleted_only, &prefix);
            if !deleted_only {
                return Ok(all);
            }
            let live = s.subjects(false, &prefix);
            Ok(all.into_iter().filter(|x| !live.contains(x)).collect())
        })
        .await?;
    Ok(ok(json!(page(&params, subjects)?)))
}

#[utoipa::path(get,
    operation_id = "list_versions",
    path = "/subjects/{subject}/versions",
    tag = "schema registry",
    params(("subject" = String, Path, description = "Subject name"), ("deleted" = Option<String>, Query, description = "true: include soft-deleted"), ("deletedOnly" = Option<String>, Query, description = "true: only soft-deleted versions"), ("offset" = Option<String>, Query, description = "Skip this many"), ("limit" = Option<String>, Query, description = "At most this many")),
    responses((status = 200, description = "Versions", body = [i32]), (status = 404, description = "Not found (40401 subject, 40402 version, 40403 schema)", body = SrErrorBody)))]
async fn list_versions(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    Query(params): Params,
) -> SrResult<Value> {
    let deleted = flag(&params, "deleted")?;
    let deleted_only = flag(&params, "deletedOnly")?;
    let versions = registry(&state)
        .read(move |s| {
            let all = s.versions(&subject, deleted || deleted_only)?;
            if !deleted_only {
                return Ok(all);
            }
            let live = s.versions(&subject, false).unwrap_or_default();
            Ok(all.into_iter().filter(|v| !live.contains(v)).collect())
        })
        .await?;
    Ok(ok(json!(page(&params, versions)?)))
}

#[utoipa::path(get,
    operation_id = "get_version",
    path = "/subjects/{subject}/versions/{version}",
    tag = "schema registry",
    params(("subject" = String, Path, description = "Subject name"), ("version" = String, Path, description = "Version number, or latest"), ("deleted" = Option<String>, Query, description = "true: include soft-deleted"), ("format" = Option<String>, Query, description = "serialized: a Protobuf schema as base64 FileDescriptorProto")),
    responses((status = 200, description = "The version", body = SubjectVersionDoc), (status = 404, description = "Not found (40401 subject, 40402 version, 40403 schema)", body = SrErrorBody), (status = 422, description = "Invalid (42201 schema, 42202 version, 42203 level, 42204 mode, 42205 not permitted, 42206 referenced, 42207 id in use, 42208 subject)", body = SrErrorBody)))]
async fn get_version(
    State(state): State<AppState>,
    Path((subject, version)): Path<(String, String)>,
    Query(params): Params,
) -> SrResult<Value> {
    let spec = version_spec(&version)?;
    let deleted = flag(&params, "deleted")?;
    let format = params.get("format").cloned();
    let found = registry(&state)
        .read(move |s| {
            let mut found = s.version(&subject, spec, deleted)?;
            found.schema = s.schema_in_format(found.id, format.as_deref())?;
            Ok(found)
        })
        .await?;
    Ok(ok(version_json(&found)))
}

#[utoipa::path(get,
    operation_id = "get_version_schema",
    path = "/subjects/{subject}/versions/{version}/schema",
    tag = "schema registry",
    params(("subject" = String, Path, description = "Subject name"), ("version" = String, Path, description = "Version number, or latest"), ("deleted" = Option<String>, Query, description = "true: include soft-deleted")),
    responses((status = 200, description = "The schema text itself", body = String), (status = 404, description = "Not found (40401 subject, 40402 version, 40403 schema)", body = SrErrorBody)))]
async fn get_version_text(
    State(state): State<AppState>,
    Path((subject, version)): Path<(String, String)>,
    Query(params): Params,
) -> Result<Response, SrError> {
    let spec = version_spec(&version)?;
    let deleted = flag(&params, "deleted")?;
    let found = registry(&state)
        .read(move |s| s.version(&subject, spec, deleted))
        .await?;
    Ok(raw_schema(&found.schema))
}

#[utoipa::path(get,
    operation_id = "referenced_by",
    path = "/subjects/{subject}/versions/{version}/referencedby",
    tag = "schema registry",
    params(("subject" = String, Path, description = "Subject name"), ("version" = String, Path, description = "Version number, or latest")),
    responses((status = 200, description = "Ids of live schemas referencing this version", body = [i32]), (status = 404, description = "Not found (40401 subject, 40402 version, 40403 schema)", body = SrErrorBody)))]
async fn referenced_by(
    State(state): State<AppState>,
    Path((subject, version)): Path<(String, String)>,
    Query(params): Params,
) -> SrResult<Value> {
    let spec = version_spec(&version)?;
    let ids = registry(&state)
        .read(move |s| {
            let found = s.version(&subject, spec, true)?;
            Ok(s.referenced_by(&subject, found.version))
        })
        .await?;
    Ok(ok(json!(page(&params, ids)?)))
}

#[utoipa::path(post,
    operation_id = "register_schema",
    path = "/subjects/{subject}/versions",
    tag = "schema registry",
    params(("subject" = String, Path, description = "Subject name"), ("normalize" = Option<String>, Query, description = "true: store the normalised form")),
    request_body = SchemaBody,
    responses((status = 200, description = "The schema id", body = RegisteredId), (status = 409, description = "Incompatible with the subject's level", body = SrErrorBody), (status = 422, description = "Invalid (42201 schema, 42202 version, 42203 level, 42204 mode, 42205 not permitted, 42206 referenced, 42207 id in use, 42208 subject)", body = SrErrorBody)))]
async fn register(
    State(state): State<AppState>,
    caller: Caller,
    Path(subject): Path<String>,
    Query(params): Params,
    incoming: Incoming,
) -> Result<Response, SrError> {
    require_subject_write(&caller, &subject)?;
    let body: SchemaBody = parse_body(&incoming.body)?;
    let schema = new_schema(&body)?;
    let options = RegisterOptions {
        normalize: flag(&params, "normalize")?,
        id: body.id,
        version: body.version,
    };
    let write = registry(&state).register(subject, schema, options);
    Ok(
        match write_here_or_forward(&state, &incoming, write).await? {
            Ok(id) => ok(json!({"id": id})).into_response(),
            Err(forwarded) => forwarded,
        },
    )
}

#[utoipa::path(post,
    operation_id = "lookup_schema",
    path = "/subjects/{subject}",
    tag = "schema registry",
    params(("subject" = String, Path, description = "Subject name"), ("deleted" = Option<String>, Query, description = "true: include soft-deleted"), ("normalize" = Option<String>, Query, description = "Accepted")),
    request_body = SchemaBody,
    responses((status = 200, description = "The version holding this schema", body = SubjectVersionDoc), (status = 404, description = "Not found (40401 subject, 40402 version, 40403 schema)", body = SrErrorBody), (status = 422, description = "Invalid (42201 schema, 42202 version, 42203 level, 42204 mode, 42205 not permitted, 42206 referenced, 42207 id in use, 42208 subject)", body = SrErrorBody)))]
async fn lookup(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    Query(params): Params,
    body: Bytes,
) -> SrResult<Value> {
    let body: SchemaBody = parse_body(&body)?;
    let schema = new_schema(&body)?;
    let deleted = flag(&params, "deleted")?;
    let found = registry(&state)
        .read(move |s| s.lookup(&subject, &schema, deleted))
        .await?;
    Ok(ok(version_json(&found)))
}

#[utoipa::path(delete,
    operation_id = "delete_subject",
    path = "/subjects/{subject}",
    tag = "schema registry",
    params(("subject" = String, Path, description = "Subject name"), ("permanent" = Option<String>, Query, description = "true: delete for good (soft delete first)")),
    responses((status = 200, description = "The versions deleted", body = [i32]), (status = 404, description = "Not found (40401 subject, 40402 version, 40403 schema)", body = SrErrorBody)))]
async fn delete_subject(
    State(state): State<AppState>,
    caller: Caller,
    Path(subject): Path<String>,
    Query(params): Params,
    incoming: Incoming,
) -> Result<Response, SrError> {
    require_subject_write(&caller, &subject)?;
    let permanent = flag(&params, "permanent")?;
    let write = registry(&state).write(move |s| s.plan_delete_subject(&subject, permanent));
    Ok(
        match write_here_or_forward(&state, &incoming, write).await? {
            Ok(versions) => ok(json!(versions)).into_response(),
            Err(forwarded) => forwarded,
        },
    )
}

#[utoipa::path(delete,
    operation_id = "delete_version",
    path = "/subjects/{subject}/versions/{version}",
    tag = "schema registry",
    params(("subject" = String, Path, description = "Subject name"), ("version" = String, Path, description = "Version number, or latest"), ("permanent" = Option<String>, Query, description = "true: delete for good (soft delete first)")),
    responses((status = 200, description = "The version deleted", body = i32), (status = 404, description = "Not found (40401 subject, 40402 version, 40403 schema)", body = SrErrorBody), (status = 422, description = "Invalid (42201 schema, 42202 version, 42203 level, 42204 mode, 42205 not permitted, 42206 referenced, 42207 id in use, 42208 subject)", body = SrErrorBody)))]
async fn delete_version(
    State(state): State<AppState>,
    caller: Caller,
    Path((subject, version)): Path<(String, String)>,
    Query(params): Params,
    incoming: Incoming,
) -> Result<Response, SrError> {
    require_subject_write(&caller, &subject)?;
    let spec = version_spec(&version)?;
    let permanent = flag(&params, "permanent")?;
    let write = registry(&state).write(move |s| s.plan_delete_version(&subject, spec, permanent));
    Ok(
        match write_here_or_forward(&state, &incoming, write).await? {
            Ok(version) => ok(json!(version)).into_response(),
            Err(forwarded) => forwarded,
        },
    )
}

// -- handlers: compatibility --------------------------------------------

async fn check(
    state: &AppState,
    subject: String,
    version: Option<VersionSpec>,
    params: &HashMap<String, String>,
    body: &Bytes,
) -> SrResult<Value> {
    let body: SchemaBody = parse_body(body)?;
    let schema = new_schema(&body)?;
    let verbose = flag(params, "verbose")?;
    let result = registry(state)
        .read(move |s| s.check_compatibility(&subject, &schema, version))
        .await?;
    let mut out = json!({"is_compatible": result.is_compatible});
    if verbose {
        out["messages"] = json!(result.messages);
    }
    Ok(ok(out))
}

#[utoipa::path(post,
    operation_id = "check_compatibility",
    path = "/compatibility/subjects/{subject}/versions",
    tag = "schema registry",
    params(("subject" = String, Path, description = "Subject name"), ("verbose" = Option<String>, Query, description = "true: include the reasons")),
    request_body = SchemaBody,
    responses((status = 200, description = "Whether it could be registered", body = CompatibilityDoc), (status = 422, description = "Invalid (42201 schema, 42202 version, 42203 level, 42204 mode, 42205 not permitted, 42206 referenced, 42207 id in use, 42208 subject)", body = SrErrorBody)))]
async fn check_all_versions(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    Query(params): Params,
    body: Bytes,
) -> SrResult<Value> {
    check(&state, subject, None, &params, &body).await
}

#[utoipa::path(post,
    operation_id = "check_compatibility_with_version",
    path = "/compatibility/subjects/{subject}/versions/{version}",
    tag = "schema registry",
    params(("subject" = String, Path, description = "Subject name"), ("version" = String, Path, description = "Version number, or latest"), ("verbose" = Option<String>, Query, description = "true: include the reasons")),
    request_body = SchemaBody,
    responses((status = 200, description = "Whether it is compatible with that version", body = CompatibilityDoc), (status = 404, description = "Not found (40401 subject, 40402 version, 40403 schema)", body = SrErrorBody), (status = 422, description = "Invalid (42201 schema, 42202 version, 42203 level, 42204 mode, 42205 not permitted, 42206 referenced, 42207 id in use, 42208 subject)", body = SrErrorBody)))]
async fn check_one_version(
    State(state): State<AppState>,
    Path((subject, version)): Path<(String, String)>,
    Query(params): Params,
    body: Bytes,
) -> SrResult<Value> {
    let spec = version_spec(&version)?;
    check(&state, subject, Some(spec), &params, &body).await
}

// -- handlers: config and mode ------------------------------------------

#[derive(Debug, Deserialize)]
struct ConfigBody {
    compatibility: Option<String>,
    #[serde(rename = "compatibilityLevel")]
    compatibility_level: Option<String>,
}

/// A mode: READWRITE, READONLY or IMPORT.
#[derive(Debug, Deserialize, ToSchema)]
struct ModeDoc {
    mode: Option<String>,
}

async fn get_config(
    state: &AppState,
    subject: Option<String>,
    params: &HashMap<String, String>,
) -> SrResult<Value> {
    let default_to_global = flag(params, "defaultToGlobal")?;
    let level = registry(state)
        .read(move |s| s.level(subject.as_deref(), default_to_global))
        .await?;
    Ok(ok(json!({"compatibilityLevel": level.as_str()})))
}

async fn put_config(
    state: &AppState,
    subject: Option<String>,
    incoming: &Incoming,
) -> Result<Response, SrError> {
    let body: ConfigBody = parse_body(&incoming.body)?;
    let name = body
        .compatibility
        .or(body.compatibility_level)
        .ok_or(RegistryError::InvalidCompatibilityLevel)?;
    let level = state::parse_level(&name)?;
    let write = registry(state)
        .write(move |s| Ok(((), s.plan_set_level(subject.as_deref(), Some(level))?)));
    Ok(match write_here_or_forward(state, incoming, write).await? {
        Ok(()) => ok(json!({"compatibility": level.as_str()})).into_response(),
        Err(forwarded) => forwarded,
    })
}

async fn delete_config(
    state: &AppState,
    subject: Option<String>,
    incoming: &Incoming,
) -> Result<Response, SrError> {
    let write = registry(state).write(move |s| {
        let previous = match &subject {
            Some(name) => s
                .level(Some(name), false)
                .map_err(|_| RegistryError::SubjectNotFound(name.clone()))?,
            None => s.level(None, true)?,
        };
        let records: Vec<Record> = s.plan_set_level(subject.as_deref(), None)?;
        Ok((previous, records))
    });
    Ok(match write_here_or_forward(state, incoming, write).await? {
        Ok(level) => ok(json!({"compatibilityLevel": level.as_str()})).into_response(),
        Err(forwarded) => forwarded,
    })
}

#[utoipa::path(get,
    operation_id = "get_global_config",
    path = "/config",
    tag = "schema registry",
    responses((status = 200, description = "The global level", body = ConfigDoc)))]
async fn get_global_config(
    State(state): State<AppState>,
    Query(params): Params,
) -> SrResult<Value> {
    get_config(&state, None, &params).await
}

#[utoipa::path(put,
    operation_id = "set_global_config",
    path = "/config",
    tag = "schema registry",
    request_body = ConfigRequest,
    responses((status = 200, description = "The level set", body = ConfigRequest), (status = 422, description = "Invalid (42201 schema, 42202 version, 42203 level, 42204 mode, 42205 not permitted, 42206 referenced, 42207 id in use, 42208 subject)", body = SrErrorBody)))]
async fn put_global_config(
    State(state): State<AppState>,
    caller: Caller,
    incoming: Incoming,
) -> Result<Response, SrError> {
    require_cluster_alter(&caller)?;
    put_config(&state, None, &incoming).await
}

#[utoipa::path(delete,
    operation_id = "reset_global_config",
    path = "/config",
    tag = "schema registry",
    responses((status = 200, description = "The level before", body = ConfigDoc)))]
async fn delete_global_config(
    State(state): State<AppState>,
    caller: Caller,
    incoming: Incoming,
) -> Result<Response, SrError> {
    require_cluster_alter(&caller)?;
    delete_config(&state, None, &incoming).await
}

#[utoipa::path(get,
    operation_id = "get_subject_config",
    path = "/config/{subject}",
    tag = "schema registry",
    params(("subject" = String, Path, description = "Subject name"), ("defaultToGlobal" = Option<String>, Query, description = "true: the global level when the subject has none")),
    responses((status = 200, description = "The level", body = ConfigDoc), (status = 404, description = "Not found (40401 subject, 40402 version, 40403 schema)", body = SrErrorBody)))]
async fn get_subject_config(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    Query(params): Params,
) -> SrResult<Value> {
    get_config(&state, Some(subject), &params).await
}

#[utoipa::path(put,
    operation_id = "set_subject_config",
    path = "/config/{subject}",
    tag = "schema registry",
    params(("subject" = String, Path, description = "Subject name")),
    request_body = ConfigRequest,
    responses((status = 200, description = "The level set", body = ConfigRequest), (status = 422, description = "Invalid (42201 schema, 42202 version, 42203 level, 42204 mode, 42205 not permitted, 42206 referenced, 42207 id in use, 42208 subject)", body = SrErrorBody)))]
async fn put_subject_config(
    State(state): State<AppState>,
    caller: Caller,
    Path(subject): Path<String>,
    incoming: Incoming,
) -> Result<Response, SrError> {
    require_subject_write(&caller, &subject)?;
    put_config(&state, Some(subject), &incoming).await
}

#[utoipa::path(delete,
    operation_id = "delete_subject_config",
    path = "/config/{subject}",
    tag = "schema registry",
    params(("subject" = String, Path, description = "Subject name")),
    responses((status = 200, description = "The level before", body = ConfigDoc), (status = 404, description = "Not found (40401 subject, 40402 version, 40403 schema)", body = SrErrorBody)))]
async fn delete_subject_config(
    State(state): State<AppState>,
    caller: Caller,
    Path(subject): Path<String>,
    incoming: Incoming,
) -> Result<Response, SrError> {
    require_subject_write(&caller, &subject)?;
    delete_config(&state, Some(subject), &incoming).await
}

async fn get_mode(
    state: &AppState,
    subject: Option<String>,
    params: &HashMap<String, String>,
) -> SrResult<Value> {
    let default_to_global = flag(params, "defaultToGlobal")?;
    let mode = registry(state)
        .read(move |s| s.mode(subject.as_deref(), default_to_global))
        .await?;
    Ok(ok(json!({"mode": mode.as_str()})))
}

async fn put_mode(
    state: &AppState,
    subject: Option<String>,
    params: &HashMap<String, String>,
    incoming: &Incoming,
) -> Result<Response, SrError> {
    let body: ModeDoc = parse_body(&incoming.body)?;
    let mode = Mode::parse(body.mode.as_deref().unwrap_or_default())?;
    let force = flag(params, "force")?;
    let write = registry(state)
        .write(move |s| Ok(((), s.plan_set_mode(subject.as_deref(), Some(mode), force)?)));
    Ok(match write_here_or_forward(state, incoming, write).await? {
        Ok(()) => ok(json!({"mode": mode.as_str()})).into_response(),
        Err(forwarded) => forwarded,
    })
}

async fn delete_mode(
    state: &AppState,
    subject: Option<String>,
    incoming: &Incoming,
) -> Result<Response, SrError> {
    let write = registry(state).write(move |s| {
        let previous = s.mode(subject.as_deref(), subject.is_none())?;
        Ok((previous, s.plan_set_mode(subject.as_deref(), None, true)?))
    });
    Ok(match write_here_or_forward(state, incoming, write).await? {
        Ok(mode) => ok(json!({"mode": mode.as_str()})).into_response(),
        Err(forwarded) => forwarded,
    })
}

#[utoipa::path(get,
    operation_id = "get_global_mode",
    path = "/mode",
    tag = "schema registry",
    responses((status = 200, description = "The global mode", body = ModeDoc)))]
async fn get_global_mode(State(state): State<AppState>, Query(params): Params) -> SrResult<Value> {
    get_mode(&state, None, &params).await
}

#[utoipa::path(put,
    operation_id = "set_global_mode",
    path = "/mode",
    tag = "schema registry",
    params(("force" = Option<String>, Query, description = "true: IMPORT even with schemas registered")),
    request_body = ModeDoc,
    responses((status = 200, description = "The mode set", body = ModeDoc), (status = 422, description = "Invalid (42201 schema, 42202 version, 42203 level, 42204 mode, 42205 not permitted, 42206 referenced, 42207 id in use, 42208 subject)", body = SrErrorBody)))]
async fn put_global_mode(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Params,
    incoming: Incoming,
) -> Result<Response, SrError> {
    require_cluster_alter(&caller)?;
    put_mode(&state, None, &params, &incoming).await
}

#[utoipa::path(delete,
    operation_id = "reset_global_mode",
    path = "/mode",
    tag = "schema registry",
    responses((status = 200, description = "The mode before", body = ModeDoc)))]
async fn delete_global_mode(
    State(state): State<AppState>,
    caller: Caller,
    incoming: Incoming,
) -> Result<Response, SrError> {
    require_cluster_alter(&caller)?;
    delete_mode(&state, None, &incoming).await
}

#[utoipa::path(get,
    operation_id = "get_subject_mode",
    path = "/mode/{subject}",
    tag = "schema registry",
    params(("subject" = String, Path, description = "Subject name"), ("defaultToGlobal" = Option<String>, Query, description = "true: the global mode when the subject has none")),
    responses((status = 200, description = "The mode", body = ModeDoc), (status = 404, description = "Not found (40401 subject, 40402 version, 40403 schema)", body = SrErrorBody)))]
async fn get_subject_mode(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    Query(params): Params,
) -> SrResult<Value> {
    get_mode(&state, Some(subject), &params).await
}

#[utoipa::path(put,
    operation_id = "set_subject_mode",
    path = "/mode/{subject}",
    tag = "schema registry",
    params(("subject" = String, Path, description = "Subject name"), ("force" = Option<String>, Query, description = "true: IMPORT even with schemas registered")),
    request_body = ModeDoc,
    responses((status = 200, description = "The mode set", body = ModeDoc), (status = 422, description = "Invalid (42201 schema, 42202 version, 42203 level, 42204 mode, 42205 not permitted, 42206 referenced, 42207 id in use, 42208 subject)", body = SrErrorBody)))]
async fn put_subject_mode(
    State(state): State<AppState>,
    caller: Caller,
    Path(subject): Path<String>,
    Query(params): Params,
    incoming: Incoming,
) -> Result<Response, SrError> {
    require_subject_write(&caller, &subject)?;
    put_mode(&state, Some(subject), &params, &incoming).await
}

#[utoipa::path(delete,
    operation_id = "delete_subject_mode",
    path = "/mode/{subject}",
    tag = "schema registry",
    params(("subject" = String, Path, description = "Subject name")),
    responses((status = 200, description = "The mode before", body = ModeDoc), (status = 404, description = "Not found (40401 subject, 40402 version, 40403 schema)", body = SrErrorBody)))]
async fn delete_subject_mode(
    State(state): State<AppState>,
    caller: Caller,
    Path(subject): Path<String>,
    incoming: Incoming,
) -> Result<Response, SrError> {
    require_subject_write(&caller, &subject)?;
    delete_mode(&state, Some(subject), &incoming).await
}
