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
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sluice_registry::state::{self, Record};
use sluice_registry::{
    Mode, NewSchema, RegisterOptions, RegisterPlan, Registry, RegistryError, SchemaReference,
    StoredSchema, SubjectVersion, VersionSpec,
};
use sluice_schema::SchemaType;

use crate::AppState;
use crate::auth::{self, Caller, Operation, Resource};

/// Content type of every answer, Confluent's.
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// Largest request body: a schema of [`sluice_schema::MAX_SCHEMA_BYTES`]
/// grows when escaped into a JSON string, and references ride along.
pub const MAX_REGISTRY_BODY_BYTES: usize = 4 * sluice_schema::MAX_SCHEMA_BYTES;

/// The registry's router over `state` (authentication as on the HTTP API).
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/schemas", get(list_schemas))
        .route("/schemas/types", get(schema_types))
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route("/schemas/ids/{id}/schema", get(schema_text_by_id))
        .route("/schemas/ids/{id}/subjects", get(subjects_by_id))
        .route("/schemas/ids/{id}/versions", get(versions_by_id))
        .route("/subjects", get(list_subjects))
        .route("/subjects/{subject}", post(lookup).delete(delete_subject))
        .route(
            "/subjects/{subject}/versions",
            get(list_versions).post(register),
        )
        .route(
            "/subjects/{subject}/versions/{version}",
            get(get_version).delete(delete_version),
        )
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(get_version_text),
        )
        .route(
            "/subjects/{subject}/versions/{version}/referencedby",
            get(referenced_by),
        )
        .route(
            "/config",
            get(get_global_config)
                .put(put_global_config)
                .delete(delete_global_config),
        )
        .route(
            "/config/{subject}",
            get(get_subject_config)
                .put(put_subject_config)
                .delete(delete_subject_config),
        )
        .route(
            "/mode",
            get(get_global_mode)
                .put(put_global_mode)
                .delete(delete_global_mode),
        )
        .route(
            "/mode/{subject}",
            get(get_subject_mode)
                .put(put_subject_mode)
                .delete(delete_subject_mode),
        )
        .route(
            "/compatibility/subjects/{subject}/versions",
            post(check_all_versions),
        )
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(check_one_version),
        )
        .route("/contexts", get(contexts))
        .route("/v1/metadata/id", get(metadata_id))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .layer(DefaultBodyLimit::max(MAX_REGISTRY_BODY_BYTES))
        .with_state(state)
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
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchemaBody {
    schema: Option<String>,
    schema_type: Option<String>,
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

// -- handlers: schemas --------------------------------------------------

async fn root() -> Sr<Value> {
    ok(json!({}))
}

async fn contexts() -> Sr<Value> {
    ok(json!(["."]))
}

async fn metadata_id(State(state): State<AppState>) -> Sr<Value> {
    ok(json!({"scope": {"path": [], "clusters": {
        "kafka-cluster": state.broker.cluster_id(),
        "schema-registry-cluster": "schema-registry",
    }}}))
}

async fn schema_types() -> Sr<Value> {
    ok(json!(["JSON", "PROTOBUF", "AVRO"]))
}

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

async fn register(
    State(state): State<AppState>,
    caller: Caller,
    Path(subject): Path<String>,
    Query(params): Params,
    body: Bytes,
) -> SrResult<Value> {
    require_subject_write(&caller, &subject)?;
    let body: SchemaBody = parse_body(&body)?;
    let schema = new_schema(&body)?;
    let options = RegisterOptions {
        normalize: flag(&params, "normalize")?,
        id: body.id,
        version: body.version,
    };
    let id = registry(&state)
        .write(move |s| {
            Ok(match s.plan_register(&subject, &schema, options)? {
                RegisterPlan::Existing(id) => (id, Vec::new()),
                RegisterPlan::Write { id, records } => (id, records),
            })
        })
        .await?;
    Ok(ok(json!({"id": id})))
}

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

async fn delete_subject(
    State(state): State<AppState>,
    caller: Caller,
    Path(subject): Path<String>,
    Query(params): Params,
) -> SrResult<Value> {
    require_subject_write(&caller, &subject)?;
    let permanent = flag(&params, "permanent")?;
    let versions = registry(&state)
        .write(move |s| s.plan_delete_subject(&subject, permanent))
        .await?;
    Ok(ok(json!(versions)))
}

async fn delete_version(
    State(state): State<AppState>,
    caller: Caller,
    Path((subject, version)): Path<(String, String)>,
    Query(params): Params,
) -> SrResult<Value> {
    require_subject_write(&caller, &subject)?;
    let spec = version_spec(&version)?;
    let permanent = flag(&params, "permanent")?;
    let version = registry(&state)
        .write(move |s| s.plan_delete_version(&subject, spec, permanent))
        .await?;
    Ok(ok(json!(version)))
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

async fn check_all_versions(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    Query(params): Params,
    body: Bytes,
) -> SrResult<Value> {
    check(&state, subject, None, &params, &body).await
}

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

#[derive(Debug, Deserialize)]
struct ModeBody {
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

async fn put_config(state: &AppState, subject: Option<String>, body: &Bytes) -> SrResult<Value> {
    let body: ConfigBody = parse_body(body)?;
    let name = body
        .compatibility
        .or(body.compatibility_level)
        .ok_or(RegistryError::InvalidCompatibilityLevel)?;
    let level = state::parse_level(&name)?;
    registry(state)
        .write(move |s| Ok(((), s.plan_set_level(subject.as_deref(), Some(level))?)))
        .await?;
    Ok(ok(json!({"compatibility": level.as_str()})))
}

async fn delete_config(state: &AppState, subject: Option<String>) -> SrResult<Value> {
    let level = registry(state)
        .write(move |s| {
            let previous = match &subject {
                Some(name) => s
                    .level(Some(name), false)
                    .map_err(|_| RegistryError::SubjectNotFound(name.clone()))?,
                None => s.level(None, true)?,
            };
            let records: Vec<Record> = s.plan_set_level(subject.as_deref(), None)?;
            Ok((previous, records))
        })
        .await?;
    Ok(ok(json!({"compatibilityLevel": level.as_str()})))
}

async fn get_global_config(
    State(state): State<AppState>,
    Query(params): Params,
) -> SrResult<Value> {
    get_config(&state, None, &params).await
}

async fn put_global_config(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> SrResult<Value> {
    require_cluster_alter(&caller)?;
    put_config(&state, None, &body).await
}

async fn delete_global_config(State(state): State<AppState>, caller: Caller) -> SrResult<Value> {
    require_cluster_alter(&caller)?;
    delete_config(&state, None).await
}

async fn get_subject_config(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    Query(params): Params,
) -> SrResult<Value> {
    get_config(&state, Some(subject), &params).await
}

async fn put_subject_config(
    State(state): State<AppState>,
    caller: Caller,
    Path(subject): Path<String>,
    body: Bytes,
) -> SrResult<Value> {
    require_subject_write(&caller, &subject)?;
    put_config(&state, Some(subject), &body).await
}

async fn delete_subject_config(
    State(state): State<AppState>,
    caller: Caller,
    Path(subject): Path<String>,
) -> SrResult<Value> {
    require_subject_write(&caller, &subject)?;
    delete_config(&state, Some(subject)).await
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
    body: &Bytes,
) -> SrResult<Value> {
    let body: ModeBody = parse_body(body)?;
    let mode = Mode::parse(body.mode.as_deref().unwrap_or_default())?;
    let force = flag(params, "force")?;
    registry(state)
        .write(move |s| Ok(((), s.plan_set_mode(subject.as_deref(), Some(mode), force)?)))
        .await?;
    Ok(ok(json!({"mode": mode.as_str()})))
}

async fn delete_mode(state: &AppState, subject: Option<String>) -> SrResult<Value> {
    let mode = registry(state)
        .write(move |s| {
            let previous = s.mode(subject.as_deref(), subject.is_none())?;
            Ok((previous, s.plan_set_mode(subject.as_deref(), None, true)?))
        })
        .await?;
    Ok(ok(json!({"mode": mode.as_str()})))
}

async fn get_global_mode(State(state): State<AppState>, Query(params): Params) -> SrResult<Value> {
    get_mode(&state, None, &params).await
}

async fn put_global_mode(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Params,
    body: Bytes,
) -> SrResult<Value> {
    require_cluster_alter(&caller)?;
    put_mode(&state, None, &params, &body).await
}

async fn delete_global_mode(State(state): State<AppState>, caller: Caller) -> SrResult<Value> {
    require_cluster_alter(&caller)?;
    delete_mode(&state, None).await
}

async fn get_subject_mode(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    Query(params): Params,
) -> SrResult<Value> {
    get_mode(&state, Some(subject), &params).await
}

async fn put_subject_mode(
    State(state): State<AppState>,
    caller: Caller,
    Path(subject): Path<String>,
    Query(params): Params,
    body: Bytes,
) -> SrResult<Value> {
    require_subject_write(&caller, &subject)?;
    put_mode(&state, Some(subject), &params, &body).await
}

async fn delete_subject_mode(
    State(state): State<AppState>,
    caller: Caller,
    Path(subject): Path<String>,
) -> SrResult<Value> {
    require_subject_write(&caller, &subject)?;
    delete_mode(&state, Some(subject)).await
}
