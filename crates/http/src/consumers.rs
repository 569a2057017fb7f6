//! Stateful consumer instances in the shape of Confluent REST Proxy v2, so
//! a client that speaks only HTTP can be a member of a consumer group.
//!
//! The paths are Confluent's, without the `/v1` prefix
//! (`/consumers/{group}/instances/{instance}/...`), so REST Proxy clients
//! work unchanged; bodies are accepted as `application/json` or Confluent's
//! `application/vnd.kafka.v2+json`, and records come back as
//! `application/vnd.kafka.binary.v2+json` or `...json.v2+json` by the
//! instance's format. Errors are this API's `{error_code, message}`.
//!
//! Each instance is a real Kafka consumer of our own client crate
//! (`sluice_client::Consumer`, classic group protocol, range assignor),
//! connected to this broker's Kafka listener over loopback, so membership,
//! rebalances and commits are exactly what any Kafka consumer gets. A
//! driver task per instance rejoins at once when the group rebalances
//! (an HTTP client may not poll for a while) and removes the instance,
//! leaving the group, after [`INSTANCE_IDLE_TIMEOUT`] without a request.
//! Instances live in memory: a broker restart ends them, as REST Proxy's.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{FromRequest, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sluice_client::{
    Client, ClientConfig, ClientError, Consumer, ConsumerConfig, ConsumerRecord, Offset,
};
use sluice_runtime::CancellationToken;
use tokio::sync::Notify;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::{Caller, Operation, Resource};
use super::error::{ApiResult, ErrorBody, HttpError, Path, Query};

/// Most consumer instances at once: each holds a group membership, Kafka
/// connections and a fetch buffer.
pub const MAX_CONSUMER_INSTANCES: usize = 64;

/// An instance nobody has used for this long is removed and leaves its
/// group (REST Proxy's `consumer.instance.timeout.ms`, 5 minutes).
pub const INSTANCE_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Longest `timeout` a records request may wait for records.
pub const MAX_RECORDS_TIMEOUT: Duration = Duration::from_secs(30);

/// Default wait for records (REST Proxy's `consumer.request.timeout.ms`).
const DEFAULT_RECORDS_TIMEOUT: Duration = Duration::from_secs(1);

/// Most record bytes (keys plus values) one records response carries, and
/// the default: bounds the response however much was fetched.
pub const MAX_RECORDS_BYTES: usize = 16 * 1024 * 1024;

/// Bytes one fetch of an instance asks for: bounds what an instance
/// buffers between requests (one fetch at most).
const FETCH_MAX_BYTES: i32 = 4 * 1024 * 1024;

/// Longest instance name.
const MAX_NAME_BYTES: usize = 255;

/// Most topics one subscription may name or match.
pub const MAX_SUBSCRIBED_TOPICS: usize = 1_000;

/// How records' keys and values are rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordFormat {
    /// Base64 of the bytes (REST Proxy's `binary`).
    #[default]
    Binary,
    /// Embedded JSON; bytes that are not JSON come as a JSON string of
    /// their text, or of their base64 when not UTF-8.
    Json,
}

/// The live instances. A std lock: held only to look up, insert or remove.
#[derive(Debug)]
pub struct Instances {
    map: Mutex<HashMap<(String, String), Arc<Instance>>>,
    /// Most instances at once.
    max_instances: usize,
    /// How long an unused instance lives.
    idle_timeout: Duration,
}

impl Default for Instances {
    fn default() -> Self {
        Instances::with_limits(MAX_CONSUMER_INSTANCES, INSTANCE_IDLE_TIMEOUT)
    }
}

impl Instances {
    /// Instances under other bounds than the defaults (tests).
    pub fn with_limits(max_instances: usize, idle_timeout: Duration) -> Instances {
        Instances {
            map: Mutex::default(),
            max_instances,
            idle_timeout,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Arc<Instance>>> {
        // A panic while holding the lock left a consistent map behind.
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, group: &str, name: &str) -> Option<Arc<Instance>> {
        self.lock()
            .get(&(group.to_owned(), name.to_owned()))
            .cloned()
    }

    fn remove(&self, group: &str, name: &str) -> Option<Arc<Instance>> {
        self.lock().remove(&(group.to_owned(), name.to_owned()))
    }

    /// Live instances (metrics, tests).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True with no instance.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug)]
struct Instance {
    group: String,
    name: String,
    /// Who created it; only they may use it.
    owner: String,
    format: RecordFormat,
    auto_commit: bool,
    auto_offset_reset: Offset,
    client: Client,
    /// Fired by the heartbeat when the group rebalances.
    rejoin: Arc<Notify>,
    /// Last request, for the idle timeout. A std lock around one instant.
    last_used: Mutex<Instant>,
    /// How long it may stay unused.
    idle_timeout: Duration,
    /// Ends the driver task.
    closed: CancellationToken,
    /// The consumer and what it fetched; a tokio lock, held across the
    /// consumer's awaits (one request of an instance at a time).
    state: tokio::sync::Mutex<ConsumerState>,
}

#[derive(Debug, Default)]
struct ConsumerState {
    /// `None` until subscribed.
    consumer: Option<Consumer>,
    topics: Vec<String>,
    /// Fetched, not yet returned, in fetch order.
    pending: VecDeque<ConsumerRecord>,
    /// Per partition, the offset after the last record returned: what a
    /// commit without a body commits.
    delivered: BTreeMap<(String, i32), i64>,
    /// The group generation `pending` and `delivered` belong to.
    generation: Option<i32>,
}

impl Instance {
    fn touch(&self) {
        *self
            .last_used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
    }

    fn idle_deadline(&self) -> Instant {
        *self
            .last_used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            + self.idle_timeout
    }
}

impl ConsumerState {
    /// Polls once into `pending`. A new generation (a rebalance) drops
    /// what was fetched or returned under the old one: the partitions
    /// restart from their committed offsets, wherever they went.
    async fn poll(&mut self) -> Result<(), ClientError> {
        let Some(consumer) = self.consumer.as_mut() else {
            return Ok(());
        };
        let records = consumer.poll().await?;
        let generation = consumer.membership().map(|(g, _)| g);
        if generation != self.generation {
            self.pending.clear();
            self.delivered.clear();
            self.generation = generation;
        }
        self.pending.extend(records);
        Ok(())
    }

    /// Commits what was returned (auto-commit, and before a rebalance).
    async fn commit_delivered(&mut self) -> Result<(), ClientError> {
        let Some(consumer) = self.consumer.as_mut() else {
            return Ok(());
        };
        if self.delivered.is_empty() {
            return Ok(());
        }
        consumer.commit_offsets(&self.delivered).await
    }

    /// Leaves the group, if subscribed.
    async fn leave(&mut self) {
        self.pending.clear();
        self.delivered.clear();
        if let Some(consumer) = self.consumer.take()
            && let Err(e) = consumer.close().await
        {
            tracing::debug!("rest consumer could not leave its group: {e}");
        }
    }
}

/// Keeps an instance a good group member while its client is away:
/// rejoins at once when the group rebalances, and removes the instance
/// after [`INSTANCE_IDLE_TIMEOUT`] without a request.
async fn drive(instances: Arc<Instances>, instance: Arc<Instance>, shutdown: CancellationToken) {
    loop {
        let deadline = tokio::time::Instant::from_std(instance.idle_deadline());
        tokio::select! {
            () = instance.rejoin.notified() => {
                let mut state = instance.state.lock().await;
                if state.consumer.as_ref().is_some_and(Consumer::needs_rejoin) {
                    if instance.auto_commit
                        && let Err(e) = state.commit_delivered().await
                    {
                        tracing::debug!(group = %instance.group, "commit before rebalance failed: {e}");
                    }
                    if let Err(e) = state.poll().await {
                        tracing::debug!(group = %instance.group, "rejoin failed: {e}");
                    }
                }
            }
            () = tokio::time::sleep_until(deadline) => {
                if Instant::now() < instance.idle_deadline() {
                    continue; // used meanwhile
                }
                tracing::info!(group = %instance.group, instance = %instance.name, "rest consumer idle; removing it");
                instances.remove(&instance.group, &instance.name);
                instance.state.lock().await.leave().await;
                return;
            }
            () = instance.closed.cancelled() => return,
            () = shutdown.cancelled() => {
                instance.state.lock().await.leave().await;
                return;
            }
        }
    }
}

fn client_error(what: &str, e: &ClientError) -> HttpError {
    match e {
        ClientError::Kafka { code, .. } => HttpError::kafka(code.code(), format!("{what}: {e}")),
        ClientError::UnknownTopic { .. } => HttpError::kafka(
            sluice_protocol::error::codes::UNKNOWN_TOPIC_OR_PARTITION,
            format!("{what}: {e}"),
        ),
        _ => HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            format!("{what}: {e}"),
        ),
    }
}

fn instance_not_found(group: &str, name: &str) -> HttpError {
    HttpError::new(
        StatusCode::NOT_FOUND,
        "CONSUMER_INSTANCE_NOT_FOUND",
        format!("consumer instance `{name}` of group `{group}` does not exist"),
    )
}

/// The caller's instance, after the group ACL check; another principal's
/// instance is refused as the group would be.
fn find(state: &AppState, caller: &Caller, group: &str, name: &str) -> ApiResult<Arc<Instance>> {
    caller.require(Operation::Read, Resource::Group(group))?;
    let instance = state
        .consumers
        .get(group, name)
        .ok_or_else(|| instance_not_found(group, name))?;
    if instance.owner != caller.principal.as_str() {
        return Err(HttpError::kafka(
            sluice_protocol::error::codes::GROUP_AUTHORIZATION_FAILED,
            format!("consumer instance `{name}` of group `{group}` belongs to another principal"),
        ));
    }
    instance.touch();
    Ok(instance)
}

/// A JSON body that may be empty (REST Proxy's commit and committed
/// offsets take one optionally), under the API's error shape.
#[derive(Debug)]
pub struct MaybeJson<T>(Option<T>);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for MaybeJson<T> {
    type Rejection = HttpError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, HttpError> {
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|e| HttpError::new(e.status(), "BAD_JSON", e.body_text()))?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(MaybeJson(None));
        }
        serde_json::from_slice(&body)
            .map(|v| MaybeJson(Some(v)))
            .map_err(|e| {
                HttpError::new(StatusCode::UNPROCESSABLE_ENTITY, "BAD_JSON", e.to_string())
            })
    }
}

/// A REST Proxy setting given as a string or as JSON's own type.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Flag {
    Bool(bool),
    Text(String),
}

/// A new consumer instance.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConsumerRequest {
    /// Instance name, unique in the group (default: a generated one).
    pub name: Option<String>,
    /// `binary` (default) or `json`.
    pub format: Option<RecordFormat>,
    /// `earliest` or `latest` (default): where partitions without a
    /// committed offset start.
    #[serde(rename = "auto.offset.reset")]
    pub auto_offset_reset: Option<String>,
    /// `true` (default) commits what a records request returned at the
    /// next records request and before a rebalance; `false` leaves
    /// commits to the client.
    #[serde(rename = "auto.commit.enable")]
    #[schema(value_type = Option<String>)]
    auto_commit_enable: Option<Flag>,
}

/// A created instance.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreateConsumerResponse {
    /// Its name.
    pub instance_id: String,
    /// Its URL; the other operations are under it.
    pub base_uri: String,
}

/// Creates a consumer instance in a group; it joins the group when it
/// subscribes.
#[utoipa::path(post, operation_id = "create_consumer", path = "/consumers/{group}", tag = "consumers",
    params(("group" = String, Path, description = "Consumer group")),
    request_body = CreateConsumerRequest,
    responses(
        (status = 200, description = "Created", body = CreateConsumerResponse),
        (status = 400, description = "A bad name or setting", body = ErrorBody),
        (status = 409, description = "An instance of that name exists in the group", body = ErrorBody),
        (status = 429, description = "Too many instances", body = ErrorBody),
        (status = 503, description = "The Kafka listener cannot be reached", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(group): Path<String>,
    super::error::Json(request): super::error::Json<CreateConsumerRequest>,
) -> ApiResult<Response> {
    caller.require(Operation::Read, Resource::Group(&group))?;
    if group.is_empty() {
        return Err(HttpError::kafka(
            sluice_protocol::error::codes::INVALID_GROUP_ID,
            "the group id must not be empty",
        ));
    }
    let name = match request.name {
        Some(n) => n,
        None => format!("rest-consumer-{}", uuid::Uuid::new_v4()),
    };
    let valid_name = !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !valid_name {
        return Err(HttpError::bad_request(format!(
            "`name` must be 1 to {MAX_NAME_BYTES} of A-Z, a-z, 0-9, `.`, `_`, `-`"
        )));
    }
    let auto_offset_reset = match request.auto_offset_reset.as_deref() {
        None | Some("latest") => Offset::Latest,
        Some("earliest") => Offset::Earliest,
        Some(other) => {
            return Err(HttpError::bad_request(format!(
                "`auto.offset.reset` must be `earliest` or `latest`, not `{other}`"
            )));
        }
    };
    let auto_commit = match request.auto_commit_enable {
        None => true,
        Some(Flag::Bool(b)) => b,
        Some(Flag::Text(t)) if t == "true" => true,
        Some(Flag::Text(t)) if t == "false" => false,
        Some(Flag::Text(t)) => {
            return Err(HttpError::bad_request(format!(
                "`auto.commit.enable` must be true or false, not `{t}`"
            )));
        }
    };
    if state.broker.config.kafka_security_protocol
        != sluice_broker::config::SecurityProtocol::Plaintext
    {
        return Err(HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "REST consumers connect to this broker's Kafka listener, which must be PLAINTEXT",
        ));
    }
    let key = (group.clone(), name.clone());
    {
        let map = state.consumers.lock();
        if map.contains_key(&key) {
            return Err(conflict(&group, &name));
        }
        if map.len() >= state.consumers.max_instances {
            return Err(too_many(state.consumers.max_instances));
        }
    }
    let mut addr = state.broker.config.kafka_addr().map_err(|e| {
        HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            e.to_string(),
        )
    })?;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let mut config = ClientConfig::new(&addr.to_string());
    config.conn.client_id = format!("sluice-rest-{name}");
    let client = Client::connect(config)
        .await
        .map_err(|e| client_error("cannot reach the Kafka listener", &e))?;
    let instance = Arc::new(Instance {
        group: group.clone(),
        name: name.clone(),
        owner: caller.principal.as_str().to_owned(),
        format: request.format.unwrap_or_default(),
        auto_commit,
        auto_offset_reset,
        client,
        rejoin: Arc::new(Notify::new()),
        last_used: Mutex::new(Instant::now()),
        idle_timeout: state.consumers.idle_timeout,
        closed: CancellationToken::new(),
        state: tokio::sync::Mutex::default(),
    });
    {
        // Checked again: another create may have won while we connected.
        let mut map = state.consumers.lock();
        if map.contains_key(&key) {
            return Err(conflict(&group, &name));
        }
        if map.len() >= state.consumers.max_instances {
            return Err(too_many(state.consumers.max_instances));
        }
        map.insert(key, Arc::clone(&instance));
    }
    tokio::spawn(drive(
        Arc::clone(&state.consumers),
        Arc::clone(&instance),
        state.shutdown.clone(),
    ));
    let scheme = if state.broker.config.http_tls {
        "https"
    } else {
        "http"
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map_or_else(|| state.broker.config.http_listener.clone(), str::to_owned);
    Ok(v2(axum::Json(CreateConsumerResponse {
        base_uri: format!("{scheme}://{host}/consumers/{group}/instances/{name}"),
        instance_id: name,
    })))
}

fn conflict(group: &str, name: &str) -> HttpError {
    HttpError::new(
        StatusCode::CONFLICT,
        "CONSUMER_INSTANCE_EXISTS",
        format!("consumer instance `{name}` already exists in group `{group}`"),
    )
}

fn too_many(max: usize) -> HttpError {
    HttpError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "TOO_MANY_CONSUMER_INSTANCES",
        format!("at most {max} consumer instances; delete one first"),
    )
}

/// A success answer with REST Proxy's content type.
fn v2(body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/vnd.kafka.v2+json"),
    );
    response
}

/// Removes an instance; it leaves its group (its partitions go to the
/// other members at once). Nothing is committed.
#[utoipa::path(delete, operation_id = "delete_consumer", path = "/consumers/{group}/instances/{instance}", tag = "consumers",
    params(("group" = String, Path, description = "Consumer group"), ("instance" = String, Path, description = "Instance name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such instance", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((group, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let instance = find(&state, &caller, &group, &name)?;
    state.consumers.remove(&group, &name);
    instance.closed.cancel();
    instance.state.lock().await.leave().await;
    Ok(StatusCode::NO_CONTENT)
}

/// What to subscribe to: `topics`, or `topic_pattern` (a regular
/// expression matched against whole topic names, internal topics left out).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscribeRequest {
    /// Topic names.
    pub topics: Option<Vec<String>>,
    /// A regular expression over whole topic names.
    pub topic_pattern: Option<String>,
}

/// The instance's subscription.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionResponse {
    /// Subscribed topics.
    pub topics: Vec<String>,
}

/// Subscribes the instance (replacing its subscription): it joins the
/// group and is assigned partitions of these topics.
#[utoipa::path(post, operation_id = "subscribe_consumer", path = "/consumers/{group}/instances/{instance}/subscription", tag = "consumers",
    params(("group" = String, Path, description = "Consumer group"), ("instance" = String, Path, description = "Instance name")),
    request_body = SubscribeRequest,
    responses(
        (status = 204, description = "Subscribed and joined"),
        (status = 400, description = "Neither or both of topics and topic_pattern, or a bad pattern", body = ErrorBody),
        (status = 404, description = "No such instance or topic", body = ErrorBody),
    ))]
pub async fn subscribe(
    State(state): State<AppState>,
    caller: Caller,
    Path((group, name)): Path<(String, String)>,
    super::error::Json(request): super::error::Json<SubscribeRequest>,
) -> ApiResult<StatusCode> {
    let instance = find(&state, &caller, &group, &name)?;
    let image = state.broker.metadata.image();
    let topics: Vec<String> = match (request.topics, request.topic_pattern) {
        (Some(topics), None) if !topics.is_empty() => {
            for t in &topics {
                if !image.topics.contains_key(t) {
                    return Err(super::unknown_topic(t));
                }
            }
            topics
        }
        (None, Some(pattern)) => {
            let re = regex::Regex::new(&format!("^(?:{pattern})$"))
                .map_err(|e| HttpError::bad_request(format!("bad `topic_pattern`: {e}")))?;
            image
                .topics
                .keys()
                .filter(|t| !sluice_metadata::controller::is_internal_topic(t) && re.is_match(t))
                .cloned()
                .collect()
        }
        _ => {
            return Err(HttpError::bad_request(
                "give one of `topics` (not empty) and `topic_pattern`",
            ));
        }
    };
    if topics.is_empty() {
        return Err(HttpError::bad_request("`topic_pattern` matches no topic"));
    }
    if topics.len() > MAX_SUBSCRIBED_TOPICS {
        return Err(HttpError::bad_request(format!(
            "at most {MAX_SUBSCRIBED_TOPICS} topics per subscription"
        )));
    }
    for t in &topics {
        caller.require(Operation::Read, Resource::Topic(t))?;
    }
    let mut s = instance.state.lock().await;
    s.leave().await;
    let mut consumer = Consumer::new(
        instance.client.clone(),
        ConsumerConfig {
            group_id: Some(group.clone()),
            auto_offset_reset: instance.auto_offset_reset,
            max_bytes: FETCH_MAX_BYTES,
            heartbeat_interval: Duration::from_secs(1),
            rejoin_signal: Some(Arc::clone(&instance.rejoin)),
            ..ConsumerConfig::default()
        },
    );
    consumer
        .subscribe(&topics)
        .await
        .map_err(|e| client_error(&format!("cannot join group `{group}`"), &e))?;
    s.generation = consumer.membership().map(|(g, _)| g);
    s.consumer = Some(consumer);
    s.topics = topics;
    Ok(StatusCode::NO_CONTENT)
}

/// The instance's subscription.
#[utoipa::path(get, operation_id = "consumer_subscription", path = "/consumers/{group}/instances/{instance}/subscription", tag = "consumers",
    params(("group" = String, Path, description = "Consumer group"), ("instance" = String, Path, description = "Instance name")),
    responses(
        (status = 200, description = "Subscribed topics", body = SubscriptionResponse),
        (status = 404, description = "No such instance", body = ErrorBody),
    ))]
pub async fn subscription(
    State(state): State<AppState>,
    caller: Caller,
    Path((group, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let instance = find(&state, &caller, &group, &name)?;
    let topics = instance.state.lock().await.topics.clone();
    Ok(v2(axum::Json(SubscriptionResponse { topics })))
}

/// A topic partition.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TopicPartition {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
}

/// Partitions assigned to the instance.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssignmentResponse {
    /// Assigned partitions.
    pub partitions: Vec<TopicPartition>,
}

/// The partitions the group assigned to the instance.
#[utoipa::path(get, operation_id = "consumer_assignments", path = "/consumers/{group}/instances/{instance}/assignments", tag = "consumers",
    params(("group" = String, Path, description = "Consumer group"), ("instance" = String, Path, description = "Instance name")),
    responses(
        (status = 200, description = "Assigned partitions", body = AssignmentResponse),
        (status = 404, description = "No such instance", body = ErrorBody),
    ))]
pub async fn assignments(
    State(state): State<AppState>,
    caller: Caller,
    Path((group, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let instance = find(&state, &caller, &group, &name)?;
    let s = instance.state.lock().await;
    let partitions = s
        .consumer
        .as_ref()
        .map(|c| {
            c.positions()
                .keys()
                .map(|(topic, partition)| TopicPartition {
                    topic: topic.clone(),
                    partition: *partition,
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(v2(axum::Json(AssignmentResponse { partitions })))
}

/// How long to wait and how much to return.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RecordsParams {
    /// Longest wait for records, in ms (default 1000, at most 30000).
    pub timeout: Option<u64>,
    /// Most key and value bytes to return (default and most 16 MiB); at
    /// least one record is returned when there is one.
    pub max_bytes: Option<usize>,
}

/// A consumed record, as REST Proxy v2 renders it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsumedRecord {
    /// Topic.
    pub topic: String,
    /// Key: base64 (`binary`) or JSON (`json`); null when null.
    #[schema(value_type = Object)]
    pub key: serde_json::Value,
    /// Value, as the key.
    #[schema(value_type = Object)]
    pub value: serde_json::Value,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Timestamp in ms since the epoch.
    pub timestamp: i64,
}

fn render(format: RecordFormat, bytes: Option<&Bytes>) -> serde_json::Value {
    let Some(bytes) = bytes else {
        return serde_json::Value::Null;
    };
    match format {
        RecordFormat::Binary => serde_json::Value::String(BASE64.encode(bytes)),
        RecordFormat::Json => serde_json::from_slice(bytes).unwrap_or_else(|_| {
            serde_json::Value::String(match std::str::from_utf8(bytes) {
                Ok(text) => text.to_owned(),
                Err(_) => BASE64.encode(bytes),
            })
        }),
    }
}

/// Fetches records for the instance: what it buffered, else what arrives
/// within `timeout`. With auto-commit, what the previous request returned
/// is committed first.
#[utoipa::path(get, operation_id = "consumer_records", path = "/consumers/{group}/instances/{instance}/records", tag = "consumers",
    params(("group" = String, Path, description = "Consumer group"), ("instance" = String, Path, description = "Instance name"), RecordsParams),
    responses(
        (status = 200, description = "Records, possibly none", body = [ConsumedRecord]),
        (status = 400, description = "A bad timeout or max_bytes", body = ErrorBody),
        (status = 404, description = "No such instance", body = ErrorBody),
        (status = 409, description = "Not subscribed", body = ErrorBody),
    ))]
pub async fn records(
    State(state): State<AppState>,
    caller: Caller,
    Path((group, name)): Path<(String, String)>,
    Query(params): Query<RecordsParams>,
) -> ApiResult<Response> {
    let timeout = params
        .timeout
        .map_or(DEFAULT_RECORDS_TIMEOUT, Duration::from_millis);
    if timeout > MAX_RECORDS_TIMEOUT {
        return Err(HttpError::bad_request(format!(
            "`timeout` must be at most {} ms",
            MAX_RECORDS_TIMEOUT.as_millis()
        )));
    }
    let max_bytes = params.max_bytes.unwrap_or(MAX_RECORDS_BYTES);
    if max_bytes == 0 || max_bytes > MAX_RECORDS_BYTES {
        return Err(HttpError::bad_request(format!(
            "`max_bytes` must be between 1 and {MAX_RECORDS_BYTES}"
        )));
    }
    let instance = find(&state, &caller, &group, &name)?;
    let mut s = instance.state.lock().await;
    if s.consumer.is_none() {
        return Err(HttpError::new(
            StatusCode::CONFLICT,
            "NOT_SUBSCRIBED",
            format!("consumer instance `{name}` has no subscription"),
        ));
    }
    if instance.auto_commit
        && let Err(e) = s.commit_delivered().await
    {
        tracing::debug!(%group, "auto-commit failed: {e}");
    }
    let deadline = Instant::now() + timeout;
    while s.pending.is_empty() {
        s.poll()
            .await
            .map_err(|e| client_error(&format!("cannot fetch for `{group}`"), &e))?;
        if Instant::now() >= deadline {
            break;
        }
    }
    let mut out = Vec::new();
    let mut bytes = 0;
    while let Some(r) = s.pending.front() {
        let size = r.key.as_ref().map_or(0, Bytes::len) + r.value.as_ref().map_or(0, Bytes::len);
        if !out.is_empty() && bytes + size > max_bytes {
            break;
        }
        bytes += size;
        let Some(r) = s.pending.pop_front() else {
            break;
        };
        s.delivered
            .insert((r.topic.clone(), r.partition), r.offset + 1);
        out.push(ConsumedRecord {
            key: render(instance.format, r.key.as_ref()),
            value: render(instance.format, r.value.as_ref()),
            topic: r.topic,
            partition: r.partition,
            offset: r.offset,
            timestamp: r.timestamp_ms,
        });
    }
    drop(s);
    let mut response = axum::Json(out).into_response();
    let content_type = match instance.format {
        RecordFormat::Binary => "application/vnd.kafka.binary.v2+json",
        RecordFormat::Json => "application/vnd.kafka.json.v2+json",
    };
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    Ok(response)
}

/// An offset to commit: the next offset to read, as Kafka commits it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OffsetOut {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset (-1 when nothing is committed).
    pub offset: i64,
    /// Commit metadata (always empty).
    #[serde(default)]
    pub metadata: String,
}

/// Offsets to commit.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommitRequest {
    /// Offsets; the next offset to read of each partition.
    pub offsets: Vec<OffsetOut>,
}

/// Commits offsets for the group: those given, or without a body the
/// offsets after everything this instance returned.
#[utoipa::path(post, operation_id = "commit_consumer_offsets", path = "/consumers/{group}/instances/{instance}/offsets", tag = "consumers",
    params(("group" = String, Path, description = "Consumer group"), ("instance" = String, Path, description = "Instance name")),
    request_body(content = CommitRequest, description = "Offsets; with no body, the offsets after what was returned"),
    responses(
        (status = 204, description = "Committed"),
        (status = 404, description = "No such instance", body = ErrorBody),
        (status = 409, description = "Not subscribed, or the group rebalanced", body = ErrorBody),
    ))]
pub async fn commit(
    State(state): State<AppState>,
    caller: Caller,
    Path((group, name)): Path<(String, String)>,
    MaybeJson(request): MaybeJson<CommitRequest>,
) -> ApiResult<StatusCode> {
    let instance = find(&state, &caller, &group, &name)?;
    let mut s = instance.state.lock().await;
    let offsets = match request {
        Some(r) => r
            .offsets
            .into_iter()
            .map(|o| ((o.topic, o.partition), o.offset))
            .collect(),
        None => s.delivered.clone(),
    };
    if offsets.is_empty() {
        return Ok(StatusCode::NO_CONTENT);
    }
    let Some(consumer) = s.consumer.as_mut() else {
        return Err(HttpError::new(
            StatusCode::CONFLICT,
            "NOT_SUBSCRIBED",
            format!("consumer instance `{name}` has no subscription"),
        ));
    };
    consumer
        .commit_offsets(&offsets)
        .await
        .map_err(|e| client_error(&format!("cannot commit for `{group}`"), &e))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Which committed offsets to show.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommittedRequest {
    /// Partitions.
    pub partitions: Vec<TopicPartition>,
}

/// Committed offsets.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommittedResponse {
    /// One per partition asked for.
    pub offsets: Vec<OffsetOut>,
}

/// The group's committed offsets of the given partitions (REST Proxy takes
/// them as a body), or without a body of the instance's assignment.
#[utoipa::path(get, operation_id = "consumer_committed_offsets", path = "/consumers/{group}/instances/{instance}/offsets", tag = "consumers",
    params(("group" = String, Path, description = "Consumer group"), ("instance" = String, Path, description = "Instance name")),
    responses(
        (status = 200, description = "Committed offsets", body = CommittedResponse),
        (status = 404, description = "No such instance", body = ErrorBody),
    ))]
pub async fn committed(
    State(state): State<AppState>,
    caller: Caller,
    Path((group, name)): Path<(String, String)>,
    MaybeJson(request): MaybeJson<CommittedRequest>,
) -> ApiResult<Response> {
    let instance = find(&state, &caller, &group, &name)?;
    caller.require(Operation::Describe, Resource::Group(&group))?;
    let keys: Vec<(String, i32)> = match request {
        Some(r) => r
            .partitions
            .into_iter()
            .map(|p| (p.topic, p.partition))
            .collect(),
        None => instance
            .state
            .lock()
            .await
            .consumer
            .as_ref()
            .map(|c| c.positions().keys().cloned().collect())
            .unwrap_or_default(),
    };
    let found = sluice_client::admin::fetch_committed(&instance.client, &group, Some(&keys))
        .await
        .map_err(|e| client_error(&format!("cannot fetch offsets of `{group}`"), &e))?;
    let offsets = keys
        .into_iter()
        .map(|(topic, partition)| OffsetOut {
            offset: found
                .get(&(topic.clone(), partition))
                .copied()
                .unwrap_or(-1),
            topic,
            partition,
            metadata: String::new(),
        })
        .collect();
    Ok(v2(axum::Json(CommittedResponse { offsets })))
}

#[cfg(test)]
mod tests {
    use axum::http::Method;
    use serde_json::{Value, json};

    use super::*;
    use crate::test_support;

    /// A broker with its Kafka listener up, and the HTTP app over
    /// `instances`.
    struct Fixture {
        _dir: tempfile::TempDir,
        app: axum::Router,
        shutdown: CancellationToken,
        instances: Arc<Instances>,
    }

    impl Fixture {
        async fn new(instances: Instances) -> Fixture {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let port = listener.local_addr().expect("addr").port();
            let (dir, broker) = test_support::temp_broker(
                |config| {
                    config.kafka_listener = format!("127.0.0.1:{port}");
                    config.groups.offsets_topic_num_partitions = 1;
                    config.groups.group_initial_rebalance_delay_ms = 0;
                },
                port,
            );
            broker
                .load_coordinators(&sluice_runtime::Tasks::new())
                .await
                .expect("coordinators");
            let shutdown = CancellationToken::new();
            let instances = Arc::new(instances);
            tokio::spawn(sluice_broker::server::serve(
                listener,
                Arc::clone(&broker),
                shutdown.clone(),
            ));
            let state = AppState {
                shutdown: shutdown.clone(),
                consumers: Arc::clone(&instances),
                ..test_support::app_state(broker)
            };
            Fixture {
                _dir: dir,
                app: crate::app(state),
                shutdown,
                instances,
            }
        }

        async fn call(
            &self,
            method: Method,
            uri: &str,
            body: Option<Value>,
        ) -> (StatusCode, Value) {
            let (status, _, value) = test_support::call(
                &self.app,
                "127.0.0.1:40000",
                method,
                uri,
                &[],
                "application/vnd.kafka.v2+json",
                body,
            )
            .await;
            (status, value)
        }

        async fn members(&self, group: &str) -> usize {
            let (_, g) = self
                .call(Method::GET, &format!("/v1/groups/{group}"), None)
                .await;
            g["members"].as_array().map_or(0, Vec::len)
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            self.shutdown.cancel();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn instances_are_bounded_and_idle_ones_leave_their_group() {
        let f = Fixture::new(Instances::with_limits(2, Duration::from_millis(300))).await;
        let (status, body) = f
            .call(
                Method::POST,
                "/v1/topics",
                Some(json!({"name": "t", "partitions": 2})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        for name in ["a", "b"] {
            let (status, body) = f
                .call(Method::POST, "/consumers/g", Some(json!({"name": name})))
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        let (status, body) = f
            .call(Method::POST, "/consumers/g", Some(json!({"name": "c"})))
            .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert_eq!(body["error_code"], "TOO_MANY_CONSUMER_INSTANCES");
        let (status, body) = f
            .call(
                Method::POST,
                "/consumers/g/instances/a/subscription",
                Some(json!({"topics": ["t"]})),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        assert_eq!(f.members("g").await, 1);
        // Unused past the idle timeout: removed, and `a` left the group with
        // LeaveGroup (well before its 10 s session would have expired).
        // Watched from the side: a request would keep them alive.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !f.instances.is_empty() {
            assert!(
                Instant::now() < deadline,
                "idle instances were never removed"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while f.members("g").await != 0 {
            assert!(Instant::now() < deadline, "a never left the group");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (status, body) = f
            .call(Method::GET, "/consumers/g/instances/a/records", None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(body["error_code"], "CONSUMER_INSTANCE_NOT_FOUND");
        // Room again under the bound.
        let (status, body) = f
            .call(Method::POST, "/consumers/g", Some(json!({"name": "c"})))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(
            body["base_uri"]
                .as_str()
                .is_some_and(|u| u.ends_with("/consumers/g/instances/c"))
        );
    }
}
