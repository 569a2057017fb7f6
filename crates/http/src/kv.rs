//! The key-value view of compacted topics: the latest value of a key, and
//! the live keys in byte order, served from [`crate::kv_index`] (never a
//! scan per request).
//!
//! Only topics whose `cleanup.policy` includes `compact` have a view; it
//! shows read_committed data (below the last stable offset, without
//! aborted transactions). Keys may live in any partition (clients'
//! partitioners differ), so a key is looked up in every partition this
//! broker leads and the newest record wins. Partitions led by other
//! brokers are not consulted: a lookup of one of them with `partition=N`
//! answers 503 naming its leader, and topic-wide answers list them in
//! `partitions_elsewhere` (a 404 names them too), so a client can ask their
//! leaders.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Caller, Operation, Resource};
use super::error::{ApiResult, ErrorBody, HttpError, Path, Query};
use super::kv_index::{Entry, KvIndexError, KvIndexes, Seen, Source};
use super::records::{Isolation, RecordOut, decode_b64, read_record_at, visit_visible};
use super::{AppState, blocking, unknown_topic};
use sluice_replica::Partition;

/// The indexes of every compacted partition this broker serves.
pub type PartitionIndexes = KvIndexes<Partition>;

/// Most keys one list returns.
pub const MAX_LIST_KEYS: usize = 1_000;

/// Keys a list returns by default.
pub const DEFAULT_LIST_KEYS: usize = 100;

/// Bytes the index asks the log for at a time while catching up; the
/// REST read's bound, so a catch-up holds no more than a read does.
const CATCH_UP_READ_BYTES: u32 = super::records::MAX_READ_BYTES;

impl Source for Partition {
    type Error = HttpError;

    fn epoch(&self) -> i32 {
        self.leader_epoch()
    }

    fn log_start_offset(&self) -> i64 {
        self.log().log_start_offset()
    }

    fn upper(&self) -> i64 {
        self.last_stable_offset()
    }

    fn visit(
        &self,
        from: i64,
        seen: &mut dyn FnMut(Seen<'_>) -> ControlFlow<()>,
    ) -> Result<i64, HttpError> {
        visit_visible(
            self,
            from,
            Isolation::ReadCommitted,
            CATCH_UP_READ_BYTES,
            |v| {
                seen(Seen {
                    offset: v.offset,
                    timestamp_ms: v.timestamp_ms,
                    key: v.record.key.as_deref(),
                    tombstone: v.record.value.is_none(),
                })
            },
        )
    }
}

/// How a key in the path or a `prefix` is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyEncoding {
    /// UTF-8 text (the default).
    #[default]
    Text,
    /// Standard base64 of the key's bytes.
    Base64,
}

/// Options of a key lookup.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct KeyParams {
    /// How the `{key}` segment is written: `text` (default) or `base64`.
    #[param(inline)]
    pub key_encoding: Option<KeyEncoding>,
    /// Look only in this partition.
    pub partition: Option<i32>,
    /// Decode keys and values in the schema registry's wire format, as
    /// reads do.
    pub decode: Option<bool>,
}

/// A key's latest record.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyRecord {
    /// Topic.
    pub topic: String,
    /// The record, as a read returns it.
    #[serde(flatten)]
    pub record: RecordOut,
}

/// Options of a key list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only keys starting with this text.
    pub prefix: Option<String>,
    /// Only keys starting with these bytes (standard base64).
    pub prefix_base64: Option<String>,
    /// Continue after this key (standard base64 of its bytes, as
    /// `next_after` gives it).
    pub after: Option<String>,
    /// Most keys to return (default 100, at most 1000).
    pub limit: Option<usize>,
    /// Include each key's latest record.
    pub values: Option<bool>,
    /// With `values`, decode keys and values in the schema registry's wire
    /// format, as reads do.
    pub decode: Option<bool>,
    /// List only this partition.
    pub partition: Option<i32>,
}

/// One live key.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyEntry {
    /// Key as UTF-8 text; null when not valid UTF-8.
    pub key: Option<String>,
    /// Key as base64.
    pub key_base64: String,
    /// Partition of its latest record.
    pub partition: i32,
    /// Offset of its latest record.
    pub offset: i64,
    /// Timestamp of its latest record, ms since the epoch.
    pub timestamp_ms: i64,
    /// The latest record (lists with `values=true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<RecordOut>,
}

/// Live keys in byte order.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    /// Topic.
    pub topic: String,
    /// Keys in byte order, each once (the newest record when a key is in
    /// several partitions).
    pub keys: Vec<KeyEntry>,
    /// Give as `after` to get the next page; null on the last page.
    pub next_after: Option<String>,
    /// Partitions led by other brokers, whose keys are not listed here.
    pub partitions_elsewhere: Vec<i32>,
}

/// The partitions of a compacted topic to consult.
struct Led {
    partitions: Vec<Arc<Partition>>,
    /// Partitions led by other brokers.
    elsewhere: Vec<i32>,
}

/// The partitions of `topic` this broker leads (only `only` when given),
/// after checking that the topic is compacted.
fn led_compacted(state: &AppState, topic: &str, only: Option<i32>) -> ApiResult<Led> {
    let mut led = Led {
        partitions: Vec::new(),
        elsewhere: Vec::new(),
    };
    if let Some(index) = only {
        led.partitions
            .push(crate::led_partition(&state.broker, topic, index)?);
    } else {
        let image = state.broker.metadata.image();
        let t = image
            .topics
            .get(topic)
            .ok_or_else(|| unknown_topic(topic))?;
        for &index in t.partitions.keys() {
            match crate::led_partition(&state.broker, topic, index) {
                Ok(p) => led.partitions.push(p),
                Err(e) if e.status == StatusCode::SERVICE_UNAVAILABLE => {
                    led.elsewhere.push(index);
                }
                Err(e) => return Err(e),
            }
        }
    }
    let Some(first) = led.partitions.first() else {
        return Err(HttpError::kafka(
            sluice_protocol::error::codes::NOT_LEADER_OR_FOLLOWER,
            format!(
                "this broker leads no partition of topic `{topic}`; ask the leaders of partitions {:?}",
                led.elsewhere
            ),
        ));
    };
    if !first.log().config().compact {
        return Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            "TOPIC_NOT_COMPACTED",
            format!(
                "topic `{topic}` is not compacted: the key-value view needs cleanup.policy to include compact"
            ),
        ));
    }
    Ok(led)
}

fn index_error(e: KvIndexError<HttpError>) -> HttpError {
    match e {
        KvIndexError::Limit { max_bytes } => HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "KV_INDEX_LIMIT",
            format!(
                "the key index of this partition needs more than kv.index_max_bytes = {max_bytes} bytes; raise kv.index_max_bytes"
            ),
        ),
        KvIndexError::Read(e) => e,
    }
}

fn decode_key(field: &str, text: &str, encoding: KeyEncoding) -> ApiResult<Vec<u8>> {
    match encoding {
        KeyEncoding::Text => Ok(text.as_bytes().to_vec()),
        KeyEncoding::Base64 => decode_b64(field, text).map(|b| b.to_vec()),
    }
}

/// Catches up `partition`'s index and runs `read` on it.
fn with_index<R>(
    indexes: &PartitionIndexes,
    partition: &Arc<Partition>,
    read: impl FnOnce(&super::kv_index::PartitionIndex) -> R,
) -> ApiResult<R> {
    indexes
        .with_index(&partition.tp.topic, partition.tp.partition, partition, read)
        .map_err(index_error)
}

/// The latest record of a key of a compacted topic.
#[utoipa::path(get, operation_id = "get_key", path = "/v1/topics/{topic}/keys/{key}", tag = "records",
    params(
        ("topic" = String, Path, description = "Topic name"),
        ("key" = String, Path, description = "The key: UTF-8 text, or base64 with key_encoding=base64"),
        KeyParams,
    ),
    responses(
        (status = 200, description = "The key's latest record", body = KeyRecord),
        (status = 400, description = "Topic not compacted (TOPIC_NOT_COMPACTED), or bad base64", body = ErrorBody),
        (status = 404, description = "No such topic, or the key is absent or tombstoned (KEY_NOT_FOUND)", body = ErrorBody),
        (status = 503, description = "Partition led elsewhere, or its index exceeds kv.index_max_bytes (KV_INDEX_LIMIT)", body = ErrorBody),
    ))]
pub async fn get_key(
    State(state): State<AppState>,
    caller: Caller,
    Path((topic, key)): Path<(String, String)>,
    Query(params): Query<KeyParams>,
) -> ApiResult<axum::Json<KeyRecord>> {
    caller.require(Operation::Read, Resource::Topic(&topic))?;
    let key = decode_key("key", &key, params.key_encoding.unwrap_or_default())?;
    let led = led_compacted(&state, &topic, params.partition)?;
    let registry = params
        .decode
        .unwrap_or(false)
        .then(|| Arc::clone(&state.broker.registry));
    let indexes = Arc::clone(&state.kv);
    let record = blocking(move || {
        let mut newest: Option<(&Arc<Partition>, Entry)> = None;
        for p in &led.partitions {
            let Some(found) = with_index(&indexes, p, |i| i.get(&key))? else {
                continue;
            };
            if newest.is_none_or(|(_, e)| found.timestamp_ms > e.timestamp_ms) {
                newest = Some((p, found));
            }
        }
        let record = match newest {
            // Gone meanwhile (retention) reads as absent.
            Some((p, entry)) => read_record_at(
                p,
                entry.offset,
                Isolation::ReadCommitted,
                registry.as_deref(),
            )?,
            None => None,
        };
        record
            .ok_or_else(|| {
                let elsewhere = if led.elsewhere.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; partitions {:?} are led by other brokers and were not searched",
                        led.elsewhere
                    )
                };
                HttpError::new(
                    StatusCode::NOT_FOUND,
                    "KEY_NOT_FOUND",
                    format!("no live record with this key in topic `{topic}`{elsewhere}"),
                )
            })
            .map(|record| KeyRecord { topic, record })
    })
    .await?;
    Ok(axum::Json(record))
}

/// The live keys of a compacted topic in byte order, by prefix, a page at
/// a time.
#[utoipa::path(get, operation_id = "list_keys", path = "/v1/topics/{topic}/keys", tag = "records",
    params(("topic" = String, Path, description = "Topic name"), ListParams),
    responses(
        (status = 200, description = "Keys in byte order", body = KeyList),
        (status = 400, description = "Topic not compacted (TOPIC_NOT_COMPACTED), bad base64, or limit out of range", body = ErrorBody),
        (status = 404, description = "No such topic or partition", body = ErrorBody),
        (status = 503, description = "No partition led here, or an index exceeds kv.index_max_bytes (KV_INDEX_LIMIT)", body = ErrorBody),
    ))]
pub async fn list_keys(
    State(state): State<AppState>,
    caller: Caller,
    Path(topic): Path<String>,
    Query(params): Query<ListParams>,
) -> ApiResult<axum::Json<KeyList>> {
    caller.require(Operation::Read, Resource::Topic(&topic))?;
    let limit = params.limit.unwrap_or(DEFAULT_LIST_KEYS);
    if limit == 0 || limit > MAX_LIST_KEYS {
        return Err(HttpError::bad_request(format!(
            "`limit` must be between 1 and {MAX_LIST_KEYS}"
        )));
    }
    let prefix = match (params.prefix, params.prefix_base64) {
        (Some(_), Some(_)) => {
            return Err(HttpError::bad_request(
                "give at most one of `prefix` and `prefix_base64`",
            ));
        }
        (Some(text), None) => text.into_bytes(),
        (None, Some(b64)) => decode_key("prefix_base64", &b64, KeyEncoding::Base64)?,
        (None, None) => Vec::new(),
    };
    let after = params
        .after
        .map(|a| decode_key("after", &a, KeyEncoding::Base64))
        .transpose()?;
    let led = led_compacted(&state, &topic, params.partition)?;
    let values = params.values.unwrap_or(false);
    let registry =
        (values && params.decode.unwrap_or(false)).then(|| Arc::clone(&state.broker.registry));
    let indexes = Arc::clone(&state.kv);
    let list = blocking(move || {
        // The first `limit` keys overall are among each partition's first
        // `limit`; one more tells whether a next page exists.
        let mut merged: BTreeMap<Box<[u8]>, (&Arc<Partition>, Entry)> = BTreeMap::new();
        for p in &led.partitions {
            let page = with_index(&indexes, p, |i| {
                i.scan(&prefix, after.as_deref(), limit + 1)
            })?;
            for (key, entry) in page {
                let slot = merged.entry(key).or_insert((p, entry));
                if entry.timestamp_ms > slot.1.timestamp_ms {
                    *slot = (p, entry);
                }
            }
        }
        let more = merged.len() > limit;
        let mut keys = Vec::with_capacity(limit.min(merged.len()));
        for (key, (p, entry)) in merged.into_iter().take(limit) {
            let record = if values {
                read_record_at(
                    p,
                    entry.offset,
                    Isolation::ReadCommitted,
                    registry.as_deref(),
                )?
            } else {
                None
            };
            keys.push(KeyEntry {
                key: std::str::from_utf8(&key).ok().map(str::to_owned),
                key_base64: BASE64.encode(&key),
                partition: p.tp.partition,
                offset: entry.offset,
                timestamp_ms: entry.timestamp_ms,
                record,
            });
        }
        let next_after = if more {
            keys.last().map(|k| k.key_base64.clone())
        } else {
            None
        };
        Ok(KeyList {
            topic,
            keys,
            next_after,
            partitions_elsewhere: led.elsewhere,
        })
    })
    .await?;
    Ok(axum::Json(list))
}
