//! Produce and read records.
//!
//! Produce builds one record batch per partition and sends it through
//! `Partition::append` and `Partition::commit`, the Kafka Produce path, so
//! validation, offsets, timestamps, durability and metrics are the same.
//! Reads decode batches from `Partition::read` (never past the high
//! watermark) into JSON; this is the one place besides the group
//! coordinator where the broker decodes records, because JSON needs them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::extract::State;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sluice_records::{BatchBuilder, Batches, NewRecord, NextBatch, TimestampType, decode_records};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Caller, Operation, Resource};
use super::error::{ApiResult, ErrorBody, HttpError, Json, Path, Query};
use super::{AppState, blocking, unknown_partition, unknown_topic};
use sluice_replica::Partition;

/// Most records one produce request may carry: bounds the batches built
/// and the response size independently of the body limit.
pub const MAX_PRODUCE_RECORDS: usize = 10_000;

/// Most records one read returns.
pub const MAX_READ_RECORDS: usize = 1_000;

/// Default records per read.
pub const DEFAULT_READ_RECORDS: usize = 100;

/// Most record-batch bytes one read scans: a read of a partition full of
/// huge records stops here even when `limit` is not reached.
pub const MAX_READ_BYTES: u32 = 16 * 1024 * 1024;

/// A header of a produced record.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeaderIn {
    /// Header key.
    pub key: String,
    /// Header value as UTF-8 text; null for a null value.
    pub value: Option<String>,
}

/// Which registered schema a key or value is encoded with: a schema `id`,
/// or a `subject` and `version` (default `latest`); `{}` means the latest
/// version of `<topic>-value` (or `<topic>-key`), Confluent's
/// TopicNameStrategy.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SchemaChoiceIn {
    /// A schema id.
    pub id: Option<i32>,
    /// A subject.
    pub subject: Option<String>,
    /// A version of `subject`: a number or `latest`.
    #[schema(value_type = Option<String>)]
    pub version: Option<serde_json::Value>,
    /// For Protobuf, the message's full name (default: the schema's first
    /// message).
    pub message: Option<String>,
}

/// One record to produce. `value` is any JSON document, stored as its
/// compact JSON text; `value_base64` stores raw bytes instead. With
/// neither, the value is null (a tombstone). `key` is UTF-8 text,
/// `key_base64` raw bytes. With `value_schema` (`key_schema`), the value
/// (key) is JSON encoded with a registered schema in the schema registry's
/// wire format, as Confluent's serializers write it: Avro or Protobuf
/// binary, or JSON text for JSON Schema.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordIn {
    // Field order matters for one hostile case: serde also reads a struct
    // from a JSON array, element by element in this order, so a record
    // given as `[[[[...` must meet a string field first and fail at once
    // as a data error (422), not descend into a JSON `key` to the nesting
    // limit (a syntax error, 400).
    /// Key as base64 bytes.
    pub key_base64: Option<String>,
    /// Key as text; with `key_schema`, any JSON value.
    #[schema(value_type = Option<String>)]
    pub key: Option<serde_json::Value>,
    /// Value as a JSON document (any JSON value).
    #[schema(value_type = Value, required = false)]
    pub value: Option<serde_json::Value>,
    /// Value as base64 bytes.
    pub value_base64: Option<String>,
    /// Encode `key` with this registered schema.
    pub key_schema: Option<SchemaChoiceIn>,
    /// Encode `value` with this registered schema.
    pub value_schema: Option<SchemaChoiceIn>,
    /// Headers, in order; keys may repeat.
    #[serde(default)]
    pub headers: Vec<HeaderIn>,
    /// Partition; when absent, keyed records go where Kafka's default
    /// partitioner (murmur2 of the key) puts them, others round-robin.
    pub partition: Option<i32>,
    /// Create time in ms since the epoch; now when absent.
    pub timestamp_ms: Option<i64>,
}

/// A produce request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProduceRequest {
    /// Records, at least one.
    pub records: Vec<RecordIn>,
}

/// Where one produced record landed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProducedOffset {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Log append time when the topic uses LogAppendTime, else -1.
    pub log_append_time_ms: i64,
}

/// Produce result: one entry per record, in request order.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProduceResponse {
    /// Offsets in request order.
    pub offsets: Vec<ProducedOffset>,
}

/// A record header as read.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HeaderOut {
    /// Header key.
    pub key: String,
    /// Value as UTF-8 text, null when null or not valid UTF-8.
    pub value: Option<String>,
    /// Value as base64, null when null.
    pub value_base64: Option<String>,
}

/// A record as read.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecordOut {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Timestamp in ms since the epoch.
    pub timestamp_ms: i64,
    /// `CreateTime` or `LogAppendTime`.
    pub timestamp_type: String,
    /// Key as UTF-8 text; null when null or not valid UTF-8.
    pub key: Option<String>,
    /// Key as base64; null when null.
    pub key_base64: Option<String>,
    /// Value as UTF-8 text; null when null or not valid UTF-8.
    pub value: Option<String>,
    /// Value as base64; null when null.
    pub value_base64: Option<String>,
    /// Value size in bytes (0 when null).
    pub value_size: usize,
    /// Headers in order.
    pub headers: Vec<HeaderOut>,
    /// The key decoded with its schema (reads with `decode=true`, keys in
    /// the schema registry's wire format).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_schema: Option<SchemaDecoded>,
    /// The value decoded with its schema, as for `key_schema`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_schema: Option<SchemaDecoded>,
    /// With `format=json`: the key as a JSON value, when its bytes are one
    /// JSON document (absent otherwise; `key` and `key_base64` still hold
    /// the bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub key_json: Option<serde_json::Value>,
    /// With `format=json`: the value as a JSON value, as for `key_json`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub value_json: Option<serde_json::Value>,
}

/// How keys and values are rendered besides text and base64.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Text (when UTF-8) and base64 only.
    #[default]
    Text,
    /// Also `key_json` and `value_json`: keys and values that are one JSON
    /// document, embedded as JSON instead of an escaped string.
    Json,
}

/// Largest key or value [`embed_json`] parses: bounds the parse time and
/// the JSON tree one record can cost (larger documents stay text).
pub const MAX_EMBEDDED_JSON_BYTES: usize = 1024 * 1024;

/// Fills `key_json` and `value_json` of `records` with `format=json`:
/// each key or value whose text is one JSON document (at most
/// [`MAX_EMBEDDED_JSON_BYTES`]) is embedded as that JSON value.
pub fn embed_json(records: &mut [RecordOut], format: Format) {
    if format != Format::Json {
        return;
    }
    let parse = |text: &Option<String>| {
        text.as_deref()
            .filter(|t| t.len() <= MAX_EMBEDDED_JSON_BYTES)
            .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
    };
    for r in records {
        r.key_json = parse(&r.key);
        r.value_json = parse(&r.value);
    }
}

/// A key or value in the schema registry's wire format, decoded with the
/// schema its header names (reads with `decode=true`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SchemaDecoded {
    /// The schema id from the header.
    pub schema_id: i32,
    /// `AVRO`, `JSON` or `PROTOBUF`; absent when the id is unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_type: Option<String>,
    /// The Protobuf message's full name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The data as JSON (Avro unions unwrapped, Protobuf in its canonical
    /// JSON mapping); absent when it could not be decoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub data: Option<serde_json::Value>,
    /// Why it could not be decoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Most JSON values the decoded records of one read may hold: bounds the
/// memory a read with `decode=true` spends however the records are shaped.
/// Records past it carry an `error` instead of `data`.
pub const MAX_DECODED_VALUES_PER_READ: usize = 1_000_000;

/// Most values one read may spend decoding, counting records that failed
/// (their values are freed, but the time was spent): bounds the time a
/// read of hostile records takes.
pub const MAX_DECODE_WORK_PER_READ: usize = 8 * MAX_DECODED_VALUES_PER_READ;

/// Records read from a partition.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadResponse {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// First offset still in the log.
    pub log_start_offset: i64,
    /// Offset below which records are visible.
    pub high_watermark: i64,
    /// Offset below which no transaction is open.
    pub last_stable_offset: i64,
    /// Offset to read from next to continue after these records.
    pub next_offset: i64,
    /// Records in offset order.
    pub records: Vec<RecordOut>,
}

/// Where to start reading. Give exactly one of `offset`, `timestamp`,
/// `first` and `last`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReadParams {
    /// Read from this offset.
    pub offset: Option<i64>,
    /// Read from the first record with a timestamp at or after this (ms).
    pub timestamp: Option<i64>,
    /// Read the first N records still in the log.
    pub first: Option<usize>,
    /// Read the last N records.
    pub last: Option<usize>,
    /// Most records to return with `offset` or `timestamp` (default 100, at most 1000).
    pub limit: Option<usize>,
    /// `read_uncommitted` (default) or `read_committed`.
    #[param(inline)]
    pub isolation: Option<Isolation>,
    /// Decode keys and values written in the schema registry's wire format
    /// (Confluent's Avro, JSON Schema and Protobuf serializers) into
    /// `key_schema` and `value_schema`.
    pub decode: Option<bool>,
    /// `json` adds `key_json` and `value_json`: keys and values that are
    /// JSON documents, embedded as JSON (default `text`).
    #[param(inline)]
    pub format: Option<Format>,
}

/// Standard base64 `text` of the request field `field`, decoded; a 400
/// naming the field when it is not base64.
pub(crate) fn decode_b64(field: &str, text: &str) -> ApiResult<Bytes> {
    BASE64
        .decode(text)
        .map(Bytes::from)
        .map_err(|e| HttpError::bad_request(format!("`{field}` is not valid base64: {e}")))
}

fn record_bytes(
    index: usize,
    text: Option<String>,
    json: Option<serde_json::Value>,
    b64: Option<String>,
    name: &str,
) -> ApiResult<Option<Bytes>> {
    let both = || {
        HttpError::bad_request(format!(
            "record {index}: give at most one of `{name}` and `{name}_base64`"
        ))
    };
    match (text, json, b64) {
        (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => Err(both()),
        (Some(t), None, None) => Ok(Some(Bytes::from(t))),
        (None, Some(serde_json::Value::Null), None) => Ok(None),
        (None, Some(v), None) => Ok(Some(Bytes::from(v.to_string()))),
        (None, None, Some(b)) => {
            decode_b64(&format!("records[{index}].{name}_base64"), &b).map(Some)
        }
        (None, None, None) => Ok(None),
        (Some(_), Some(_), None) => Err(both()),
    }
}

/// Encodes the keys and values that name a schema (`key_schema`,
/// `value_schema`), all in one look at the registry; returns, by record
/// index, the encoded key and value. The JSON taken is removed from the
/// records. A null key or value stays null (a tombstone), as Confluent's
/// serializers leave it.
async fn encode_with_schemas(
    state: &AppState,
    topic: &str,
    records: &mut [RecordIn],
) -> ApiResult<BTreeMap<usize, (Option<Bytes>, Option<Bytes>)>> {
    struct Pending {
        index: usize,
        is_key: bool,
        choice: sluice_registry::SchemaChoice,
        value: serde_json::Value,
    }
    let mut pending = Vec::new();
    for (index, r) in records.iter_mut().enumerate() {
        let fields = [
            (true, &mut r.key_schema, &mut r.key, r.key_base64.is_some()),
            (
                false,
                &mut r.value_schema,
                &mut r.value,
                r.value_base64.is_some(),
            ),
        ];
        for (is_key, schema, json, has_base64) in fields {
            let name = if is_key { "key" } else { "value" };
            // Without a schema the JSON stays for the plain path.
            let Some(choice) = schema.take() else {
                continue;
            };
            if has_base64 {
                return Err(HttpError::bad_request(format!(
                    "record {index}: `{name}_schema` encodes `{name}`, not `{name}_base64`"
                )));
            }
            let version = match choice.version {
                None => None,
                Some(serde_json::Value::String(v)) => Some(v),
                Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                Some(other) => {
                    return Err(HttpError::bad_request(format!(
                        "record {index}: `{name}_schema.version` must be a number or \"latest\", not {other}"
                    )));
                }
            };
            match json.take() {
                None | Some(serde_json::Value::Null) => {} // stays null
                Some(value) => pending.push(Pending {
                    index,
                    is_key,
                    choice: sluice_registry::SchemaChoice {
                        id: choice.id,
                        subject: choice.subject,
                        version,
                        message: choice.message,
                    },
                    value,
                }),
            }
        }
    }
    let mut out: BTreeMap<usize, (Option<Bytes>, Option<Bytes>)> = BTreeMap::new();
    if pending.is_empty() {
        return Ok(out);
    }
    let topic = topic.to_owned();
    let results = state
        .broker
        .registry
        .read(move |registry| {
            Ok(pending
                .into_iter()
                .map(|p| {
                    let default_subject =
                        format!("{topic}-{}", if p.is_key { "key" } else { "value" });
                    let encoded = sluice_registry::codec::encode(
                        registry,
                        &p.choice,
                        &default_subject,
                        &p.value,
                    );
                    (p.index, p.is_key, encoded)
                })
                .collect::<Vec<_>>())
        })
        .await
        .map_err(|e| {
            HttpError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                e.to_string(),
            )
        })?;
    for (index, is_key, encoded) in results {
        let name = if is_key { "key" } else { "value" };
        let bytes = encoded.map_err(|e| schema_error(index, name, &e))?;
        let slot = out.entry(index).or_default();
        if is_key {
            slot.0 = Some(Bytes::from(bytes));
        } else {
            slot.1 = Some(Bytes::from(bytes));
        }
    }
    Ok(out)
}

/// The answer to a key or value that could not be encoded with a schema.
fn schema_error(index: usize, name: &str, e: &sluice_registry::RegistryError) -> HttpError {
    use axum::http::StatusCode;
    use sluice_registry::RegistryError as E;
    let message = format!("record {index} {name}: {e}");
    match e {
        E::SubjectNotFound(_) | E::VersionNotFound { .. } | E::SchemaIdNotFound(_) => {
            HttpError::new(StatusCode::NOT_FOUND, "SCHEMA_NOT_FOUND", message)
        }
        E::InvalidData(_) => {
            HttpError::new(StatusCode::UNPROCESSABLE_ENTITY, "SCHEMA_MISMATCH", message)
        }
        E::InvalidVersion(_) => HttpError::bad_request(message),
        _ => HttpError::new(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", message),
    }
}

/// Round-robin position for records with neither key nor partition.
static ROUND_ROBIN: AtomicU32 = AtomicU32::new(0);

/// Produces records; returns their offsets in request order.
#[utoipa::path(post, operation_id = "produce", path = "/v1/topics/{topic}/records", tag = "records",
    params(("topic" = String, Path, description = "Topic name")),
    request_body = ProduceRequest,
    responses(
        (status = 200, description = "Appended and durable", body = ProduceResponse),
        (status = 400, description = "Bad JSON, bad base64, no records, or a bad partition", body = ErrorBody),
        (status = 404, description = "No such topic or partition, or no such schema", body = ErrorBody),
        (status = 413, description = "Body or batch too large", body = ErrorBody),
        (status = 422, description = "A key or value does not fit its schema", body = ErrorBody),
    ))]
pub async fn produce(
    State(state): State<AppState>,
    caller: Caller,
    Path(topic): Path<String>,
    Json(mut request): Json<ProduceRequest>,
) -> ApiResult<axum::Json<ProduceResponse>> {
    caller.require(Operation::Write, Resource::Topic(&topic))?;
    let broker = &state.broker;
    if request.records.is_empty() {
        return Err(HttpError::bad_request("`records` is empty"));
    }
    if request.records.len() > MAX_PRODUCE_RECORDS {
        return Err(HttpError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!(
                "{} records in one request; at most {MAX_PRODUCE_RECORDS}",
                request.records.len()
            ),
        ));
    }
    let partition_count = broker
        .metadata
        .image()
        .topics
        .get(&topic)
        .map(|t| t.partitions.len())
        .ok_or_else(|| unknown_topic(&topic))?;
    let partition_count = i32::try_from(partition_count).unwrap_or(i32::MAX).max(1);
    let now = sluice_metadata::now_ms();
    let mut encoded = encode_with_schemas(&state, &topic, &mut request.records).await?;

    // Group by partition, remembering each record's place in the request.
    let mut by_partition: BTreeMap<i32, Vec<(usize, NewRecord)>> = BTreeMap::new();
    for (index, r) in request.records.into_iter().enumerate() {
        let (encoded_key, encoded_value) = encoded.remove(&index).unwrap_or_default();
        let key = match (encoded_key, r.key) {
            (Some(k), _) => Some(k),
            (None, None | Some(serde_json::Value::Null)) => {
                record_bytes(index, None, None, r.key_base64, "key")?
            }
            (None, Some(serde_json::Value::String(text))) => {
                record_bytes(index, Some(text), None, r.key_base64, "key")?
            }
            (None, Some(_)) => {
                return Err(HttpError::bad_request(format!(
                    "record {index}: `key` is text unless `key_schema` is given"
                )));
            }
        };
        let value = match encoded_value {
            Some(v) => Some(v),
            None => record_bytes(index, None, r.value, r.value_base64, "value")?,
        };
        let partition = match (r.partition, &key) {
            (Some(p), _) => p,
            (None, Some(k)) => sluice_records::keys::partition_for_key(k, partition_count),
            (None, None) => {
                let n = ROUND_ROBIN.fetch_add(1, Ordering::Relaxed);
                i32::try_from(n % partition_count as u32).unwrap_or(0)
            }
        };
        let headers = r
            .headers
            .into_iter()
            .map(|h| (h.key, h.value.map(Bytes::from)))
            .collect();
        by_partition.entry(partition).or_default().push((
            index,
            NewRecord {
                key,
                value,
                headers,
                timestamp_ms: r.timestamp_ms.unwrap_or(now),
            },
        ));
    }

    // Append every partition's batch first, then wait for all commits
    // together, so one group-commit fsync can cover them.
    // Every partition is looked up before anything is appended, so an
    // unknown partition fails the request with nothing written.
    let mut targets = Vec::with_capacity(by_partition.len());
    for (index, records) in by_partition {
        let partition = crate::led_partition(broker, &topic, index)?;
        targets.push((partition, records));
    }
    let mut appended = Vec::with_capacity(targets.len());
    let mut failed = None;
    for (partition, records) in targets {
        let mut builder = BatchBuilder::new();
        let places: Vec<usize> = records.iter().map(|(i, _)| *i).collect();
        for (_, record) in records {
            builder.push(record);
        }
        let batch = builder
            .build()
            .map_err(|e| HttpError::bad_request(format!("cannot build a record batch: {e}")));
        // The same checks as a Kafka Produce: timestamp window, keys on
        // compacted topics.
        let batch = batch.and_then(|mut b| {
            sluice_broker::handlers::check_client_batches(&partition, &mut b, now)
                .map_err(|(code, message)| HttpError::kafka(code, message))?;
            Ok(b)
        });
        match batch.and_then(|b| Ok(partition.append(b, now)?)) {
            Ok(info) => appended.push((partition, info, places)),
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    let mut offsets: Vec<Option<ProducedOffset>> = Vec::new();
    offsets.resize_with(appended.iter().map(|(_, _, p)| p.len()).sum(), || None);
    let commits = appended
        .iter()
        .map(|(partition, info, _)| partition.commit(info.last_offset + 1));
    // Batches already appended are committed even when a later one was
    // refused, so they do not wait in the log for someone else's commit.
    for result in futures::future::join_all(commits).await {
        result?;
    }
    if let Some(mut e) = failed {
        if !appended.is_empty() {
            e.body.message = format!(
                "{} (records for partitions {:?} were appended)",
                e.body.message,
                appended
                    .iter()
                    .map(|(p, _, _)| p.tp.partition)
                    .collect::<Vec<_>>()
            );
        }
        return Err(e);
    }
    for (partition, info, places) in &appended {
        for (delta, &place) in places.iter().enumerate() {
            if let Some(slot) = offsets.get_mut(place) {
                *slot = Some(ProducedOffset {
                    partition: partition.tp.partition,
                    offset: info.base_offset + delta as i64,
                    log_append_time_ms: info.log_append_time,
                });
            }
        }
    }
    let offsets = offsets.into_iter().flatten().collect();
    Ok(axum::Json(ProduceResponse { offsets }))
}

fn text_and_base64(bytes: &Option<Bytes>) -> (Option<String>, Option<String>) {
    match bytes {
        None => (None, None),
        Some(b) => (
            std::str::from_utf8(b).ok().map(str::to_owned),
            Some(BASE64.encode(b)),
        ),
    }
}

/// Which records a read returns, as Kafka's `isolation.level`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// Everything below the high watermark, including open and aborted
    /// transactions (Kafka's consumer default).
    #[default]
    ReadUncommitted,
    /// Only below the last stable offset, without aborted transactions.
    ReadCommitted,
}

/// The offset a read with `isolation` stops before.
pub fn read_upper_bound(partition: &Partition, isolation: Isolation) -> i64 {
    match isolation {
        Isolation::ReadUncommitted => partition.high_watermark(),
        Isolation::ReadCommitted => partition.last_stable_offset(),
    }
}

/// Decodes the visible records of `partition` from `offset`, at most
/// `limit` of them. Returns the records and the offset to continue from.
/// With a `registry`, keys and values in its wire format are decoded with
/// their schemas too.
pub fn read_records(
    partition: &Partition,
    offset: i64,
    limit: usize,
    isolation: Isolation,
    registry: Option<&sluice_registry::Registry>,
) -> Result<(Vec<RecordOut>, i64), HttpError> {
    read_records_within(
        partition,
        offset,
        limit,
        isolation,
        registry,
        MAX_READ_BYTES,
    )
}

/// Bytes a read of one record asks the log for: its batch comes whole
/// however large it is, and a small bound keeps the read from pulling in
/// the batches after it.
const ONE_RECORD_READ_BYTES: u32 = 64 * 1024;

/// The record at `offset` if it is still in the log and visible under
/// `isolation`, rendered as a read renders it.
pub(crate) fn read_record_at(
    partition: &Partition,
    offset: i64,
    isolation: Isolation,
    registry: Option<&sluice_registry::Registry>,
) -> Result<Option<RecordOut>, HttpError> {
    let (records, _) = read_records_within(
        partition,
        offset,
        1,
        isolation,
        registry,
        ONE_RECORD_READ_BYTES,
    )?;
    Ok(records.into_iter().find(|r| r.offset == offset))
}

/// [`read_records`] asking the log for `read_bytes` at a time.
fn read_records_within(
    partition: &Partition,
    offset: i64,
    limit: usize,
    isolation: Isolation,
    registry: Option<&sluice_registry::Registry>,
    read_bytes: u32,
) -> Result<(Vec<RecordOut>, i64), HttpError> {
    let mut raw = Vec::new();
    let (mut out, next) = read_visible(
        partition,
        offset,
        limit,
        isolation,
        read_bytes,
        registry.is_some().then_some(&mut raw),
    )?;
    if let Some(registry) = registry {
        decode_with_schemas(registry, &mut out, &raw);
    }
    Ok((out, next))
}

/// Fills `key_schema` and `value_schema` of `records` from their raw keys
/// and values, in order, under one budget and one look at the registry.
pub(crate) fn decode_with_schemas(
    registry: &sluice_registry::Registry,
    records: &mut [RecordOut],
    raw: &[(Option<Bytes>, Option<Bytes>)],
) {
    let mut values_left = MAX_DECODED_VALUES_PER_READ;
    let mut work_left = MAX_DECODE_WORK_PER_READ;
    let decoded = registry.with_state(|state| {
        for (record, (key, value)) in records.iter_mut().zip(raw) {
            let mut one = |data: &Option<Bytes>| {
                let data = data.as_deref()?;
                let id = sluice_registry::validation::schema_id(data)?;
                let allowed = values_left.min(work_left);
                let mut budget = sluice_schema::DecodeBudget::new(allowed);
                let result = sluice_registry::codec::decode(state, data, &mut budget)?;
                let spent = allowed - budget.remaining();
                work_left -= spent;
                if result.is_ok() {
                    values_left -= spent;
                }
                Some(match result {
                    Ok(d) => SchemaDecoded {
                        schema_id: d.schema_id,
                        schema_type: Some(d.schema_type.as_str().to_owned()),
                        message: d.message,
                        data: Some(d.value),
                        error: None,
                    },
                    Err(why) => SchemaDecoded {
                        schema_id: id,
                        schema_type: None,
                        message: None,
                        data: None,
                        error: Some(why),
                    },
                })
            };
            record.key_schema = one(key);
            record.value_schema = one(value);
        }
    });
    if let Err(e) = decoded {
        tracing::warn!("cannot decode records with the schema registry: {e}");
    }
}

/// [`read_records`] without decoding; `raw` collects each record's key and
/// value when given.
fn read_visible(
    partition: &Partition,
    offset: i64,
    limit: usize,
    isolation: Isolation,
    read_bytes: u32,
    mut raw: Option<&mut Vec<(Option<Bytes>, Option<Bytes>)>>,
) -> Result<(Vec<RecordOut>, i64), HttpError> {
    let mut out = Vec::new();
    if limit == 0 {
        return Ok((out, offset));
    }
    let next = visit_visible(partition, offset, isolation, read_bytes, |seen| {
        out.push(render(partition.tp.partition, &seen));
        let r = seen.record;
        if let Some(raw) = raw.as_deref_mut() {
            raw.push((r.key, r.value));
        }
        if out.len() >= limit {
            std::ops::ControlFlow::Break(())
        } else {
            std::ops::ControlFlow::Continue(())
        }
    })?;
    Ok((out, next))
}

/// Renders one visible record of partition `index` as reads return it
/// (without the schema-decoded and JSON forms, which are filled after).
pub(crate) fn render(index: i32, seen: &Visible) -> RecordOut {
    let r = &seen.record;
    let (key, key_base64) = text_and_base64(&r.key);
    let (value, value_base64) = text_and_base64(&r.value);
    RecordOut {
        partition: index,
        offset: seen.offset,
        timestamp_ms: seen.timestamp_ms,
        timestamp_type: if seen.log_append_time {
            "LogAppendTime"
        } else {
            "CreateTime"
        }
        .to_owned(),
        key,
        key_base64,
        value_size: r.value.as_ref().map_or(0, Bytes::len),
        value,
        value_base64,
        headers: r
            .headers
            .iter()
            .map(|(k, v)| {
                let (value, value_base64) = text_and_base64(v);
                HeaderOut {
                    key: k.clone(),
                    value,
                    value_base64,
                }
            })
            .collect(),
        key_schema: None,
        value_schema: None,
        key_json: None,
        value_json: None,
    }
}

/// One visible record handed to a [`visit_visible`] visitor.
pub(crate) struct Visible {
    /// Its offset.
    pub offset: i64,
    /// Its timestamp: the create time, or the batch's append time.
    pub timestamp_ms: i64,
    /// True when the topic stamps log append times.
    pub log_append_time: bool,
    /// The decoded record.
    pub record: sluice_records::Record,
}

/// Walks the records of `partition` visible under `isolation` from
/// `offset` (below the high watermark, or the last stable offset without
/// aborted transactions and control batches), decoding batches but
/// rendering nothing, and hands each to `visit`, which stops the walk with
/// `Break` after taking a record. Asks the log for `read_bytes` at a time
/// (at least one whole batch). Returns the offset to continue from.
/// The REST read and the key-value index both read through it.
pub(crate) fn visit_visible(
    partition: &Partition,
    offset: i64,
    isolation: Isolation,
    read_bytes: u32,
    mut visit: impl FnMut(Visible) -> std::ops::ControlFlow<()>,
) -> Result<i64, HttpError> {
    let mut next = offset;
    let upper = read_upper_bound(partition, isolation);
    while next < upper {
        let aborted = match isolation {
            Isolation::ReadCommitted => partition.log().aborted_transactions(next, upper),
            Isolation::ReadUncommitted => Vec::new(),
        };
        let read = partition.read(next, read_bytes)?;
        let bytes = read
            .to_bytes()
            .map_err(|e| HttpError::internal(format!("cannot read {}: {e}", partition.tp)))?;
        if bytes.is_empty() {
            break;
        }
        sluice_metrics::fetched(&partition.tp.topic, bytes.len());
        let before = next;
        for item in Batches::without_crc(&bytes) {
            let NextBatch::Complete {
                header,
                position,
                bytes: batch,
            } = item
            else {
                break;
            };
            let batch = bytes.slice(position..position + batch.len());
            let last = header.last_offset();
            if header.base_offset >= upper {
                return Ok(next);
            }
            let aborted_batch = header.is_transactional()
                && aborted.iter().any(|a| {
                    a.producer_id == header.producer_id
                        && (a.first_offset..=a.last_offset).contains(&header.base_offset)
                });
            if header.is_control() || aborted_batch {
                next = next.max(last + 1);
                continue;
            }
            let records = decode_records(&batch).map_err(|e| {
                HttpError::internal(format!(
                    "cannot decode batch at offset {} of {}: {e}",
                    header.base_offset, partition.tp
                ))
            })?;
            let log_append_time = header.timestamp_type() == TimestampType::LogAppendTime;
            let mut records = records.into_iter().peekable();
            while let Some(record) = records.next() {
                let offset = header.base_offset + i64::from(record.offset_delta);
                if offset < next {
                    continue;
                }
                let timestamp_ms = if log_append_time {
                    header.max_timestamp
                } else {
                    header.base_timestamp + record.timestamp_delta
                };
                next = offset + 1;
                let seen = Visible {
                    offset,
                    timestamp_ms,
                    log_append_time,
                    record,
                };
                if visit(seen).is_break() {
                    // The rest of the batch waits for the next walk, unless
                    // nothing of it is left.
                    if records.peek().is_none() {
                        next = next.max(last + 1);
                    }
                    return Ok(next);
                }
            }
            next = next.max(last + 1);
        }
        if next == before {
            break; // no progress: a batch we cannot parse
        }
    }
    Ok(next)
}

/// Reads records of one partition: from an offset, from a timestamp, the
/// first N or the last N.
#[utoipa::path(get, operation_id = "read_records", path = "/v1/topics/{topic}/partitions/{partition}/records", tag = "records",
    params(
        ("topic" = String, Path, description = "Topic name"),
        ("partition" = i32, Path, description = "Partition index"),
        ReadParams,
    ),
    responses(
        (status = 200, description = "Records", body = ReadResponse),
        (status = 400, description = "Not exactly one of offset, timestamp, first, last", body = ErrorBody),
        (status = 404, description = "No such topic or partition", body = ErrorBody),
        (status = 416, description = "Offset outside the log", body = ErrorBody),
    ))]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path((topic, index)): Path<(String, i32)>,
    Query(params): Query<ReadParams>,
) -> ApiResult<axum::Json<ReadResponse>> {
    caller.require(Operation::Read, Resource::Topic(&topic))?;
    let partition = crate::led_partition(&state.broker, &topic, index)?;
    let chosen = [
        params.offset.is_some(),
        params.timestamp.is_some(),
        params.first.is_some(),
        params.last.is_some(),
    ]
    .iter()
    .filter(|&&b| b)
    .count();
    if chosen != 1 {
        return Err(HttpError::bad_request(
            "give exactly one of `offset`, `timestamp`, `first` and `last`",
        ));
    }
    let limit = params
        .limit
        .or(params.first)
        .or(params.last)
        .unwrap_or(DEFAULT_READ_RECORDS);
    if limit == 0 || limit > MAX_READ_RECORDS {
        return Err(HttpError::bad_request(format!(
            "`limit`, `first` and `last` must be between 1 and {MAX_READ_RECORDS}"
        )));
    }
    let isolation = params.isolation.unwrap_or_default();
    let format = params.format.unwrap_or_default();
    let registry = params
        .decode
        .unwrap_or(false)
        .then(|| state.broker.registry.clone());
    let response = blocking(move || {
        let start = partition.log().log_start_offset();
        let hw = partition.high_watermark();
        let upper = read_upper_bound(&partition, isolation);
        let from = if let Some(offset) = params.offset {
            if offset < start || offset > hw {
                return Err(HttpError::kafka(
                    sluice_protocol::error::codes::OFFSET_OUT_OF_RANGE,
                    format!(
                        "offset {offset} is outside [{start}, {hw}] of {}",
                        partition.tp
                    ),
                ));
            }
            Some(offset)
        } else if let Some(ts) = params.timestamp {
            if ts < 0 {
                return Err(HttpError::bad_request("`timestamp` must not be negative"));
            }
            partition
                .log()
                .lookup_timestamp(ts)?
                .map(|(offset, _)| offset)
        } else if params.first.is_some() {
            Some(start)
        } else {
            Some((upper - limit as i64).max(start))
        };
        let (records, next_offset) = match from {
            Some(from) if from < upper => {
                read_records(&partition, from, limit, isolation, registry.as_deref())?
            }
            Some(from) => (Vec::new(), from),
            None => (Vec::new(), hw),
        };
        let mut records = records;
        embed_json(&mut records, format);
        Ok(ReadResponse {
            topic: partition.tp.topic.clone(),
            partition: partition.tp.partition,
            log_start_offset: start,
            high_watermark: hw,
            last_stable_offset: partition.last_stable_offset(),
            next_offset,
            records,
        })
    })
    .await?;
    Ok(axum::Json(response))
}

/// Where a DeleteRecords moves the log start offset.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteRecordsParams {
    /// Delete every record below this offset: a number up to the high
    /// watermark, or `end` for the high watermark (everything visible).
    pub before: String,
}

/// The log after a DeleteRecords.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeleteRecordsResponse {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The new first offset still in the log (Kafka's low watermark).
    pub log_start_offset: i64,
    /// The partition's high watermark.
    pub high_watermark: i64,
}

/// Deletes the records of one partition below an offset, as Kafka's
/// DeleteRecords: the log start offset moves there, and whole segments
/// below it are removed.
#[utoipa::path(delete, operation_id = "delete_records", path = "/v1/topics/{topic}/partitions/{partition}/records", tag = "records",
    params(
        ("topic" = String, Path, description = "Topic name"),
        ("partition" = i32, Path, description = "Partition index"),
        DeleteRecordsParams,
    ),
    responses(
        (status = 200, description = "The new log start offset", body = DeleteRecordsResponse),
        (status = 400, description = "`before` is not an offset or `end`, or the topic is internal", body = ErrorBody),
        (status = 404, description = "No such topic or partition", body = ErrorBody),
        (status = 416, description = "`before` is past the high watermark or negative", body = ErrorBody),
    ))]
pub async fn delete_records(
    State(state): State<AppState>,
    caller: Caller,
    Path((topic, index)): Path<(String, i32)>,
    Query(params): Query<DeleteRecordsParams>,
) -> ApiResult<axum::Json<DeleteRecordsResponse>> {
    // Kafka's DeleteRecords: DELETE on the topic.
    caller.require(Operation::Delete, Resource::Topic(&topic))?;
    let before = match params.before.as_str() {
        "end" => None,
        text => Some(text.parse::<i64>().map_err(|_| {
            HttpError::bad_request(format!("`before` must be an offset or `end`, not `{text}`"))
        })?),
    };
    // Kafka's ReplicaManager refuses this for internal topics too.
    if sluice_metadata::controller::is_internal_topic(&topic) {
        return Err(HttpError::kafka(
            sluice_protocol::error::codes::INVALID_TOPIC_EXCEPTION,
            format!("records of the internal topic `{topic}` cannot be deleted"),
        ));
    }
    let partition = crate::led_partition(&state.broker, &topic, index)?;
    let response = blocking(move || {
        let hw = partition.high_watermark();
        let target = before.unwrap_or(hw);
        if target < 0 || target > hw {
            return Err(HttpError::kafka(
                sluice_protocol::error::codes::OFFSET_OUT_OF_RANGE,
                format!("`before` {target} is outside [0, {hw}] of {}", partition.tp),
            ));
        }
        let log_start_offset = partition.delete_records_before(target)?;
        Ok(DeleteRecordsResponse {
            topic: partition.tp.topic.clone(),
            partition: partition.tp.partition,
            log_start_offset,
            high_watermark: partition.high_watermark(),
        })
    })
    .await?;
    Ok(axum::Json(response))
}

/// Used by the tail to share the reading code.
pub(crate) fn partition_arc(
    state: &AppState,
    topic: &str,
    index: i32,
) -> ApiResult<Arc<Partition>> {
    state
        .broker
        .replicas
        .partition(topic, index)
        .ok_or_else(|| unknown_partition(topic, index))
}
