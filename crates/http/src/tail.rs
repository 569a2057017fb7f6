//! Live tail over Server-Sent Events: follow one partition or every
//! partition of a topic.
//!
//! Each stream waits on the partitions' high-watermark notifications (the
//! same ones long-polling fetches use), reads what became visible, and
//! sends one `record` event per record (only those with the key asked for,
//! with `key` or `key_base64`). It ends when the broker shuts down
//! or the topic is deleted. The existence check runs when no record has
//! arrived for [`LIVENESS_CHECK`]; it is a deadline, not a poll for data.
//!
//! Each event's id is the stream's position after it: `partition:offset`
//! pairs (the next offset of every followed partition), as a topic read's
//! cursor. A reconnecting `EventSource` sends it back as `Last-Event-ID`
//! (or a client passes `last_event_id`), and the stream resumes exactly
//! there: no record is missed and none is sent twice.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures::Stream;
use futures::future::select_all;
use serde::Deserialize;
use sluice_runtime::CancellationToken;
use utoipa::IntoParams;

use super::auth::{Caller, Operation, Resource};
use super::browse::{parse_positions, positions_text};
use super::error::{ApiResult, ErrorBody, HttpError, Path, Query};
use super::records::{
    Format, Isolation, RecordOut, decode_b64, embed_json, partition_arc, read_records,
    read_upper_bound,
};
use super::{AppState, unknown_topic};
use sluice_broker::Broker;
use sluice_replica::Partition;

/// How long a quiet stream waits before checking that its topic still
/// exists (a deleted topic's partitions never notify again).
const LIVENESS_CHECK: Duration = Duration::from_secs(5);

/// Records read per partition per wake-up; bounds the memory one stream
/// buffers while its client is slow.
const RECORDS_PER_ROUND: usize = 500;

/// Most records a tail may replay before going live.
const MAX_BACKFILL: i64 = 1_000;

/// Where a partition tail starts.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PartitionTailParams {
    /// Start at this offset (default: the high watermark, new records only).
    pub offset: Option<i64>,
    /// Start with the last N records (at most 1000).
    pub last: Option<i64>,
    /// `read_uncommitted` (default) or `read_committed`.
    #[param(inline)]
    pub isolation: Option<Isolation>,
    /// Decode keys and values in the schema registry's wire format into
    /// `key_schema` and `value_schema`, as reads do.
    pub decode: Option<bool>,
    /// Send only records with this key (UTF-8 text); `last` counts records
    /// before this filter.
    pub key: Option<String>,
    /// Send only records with this key (standard base64 of its bytes).
    pub key_base64: Option<String>,
    /// Resume after this event id (what `Last-Event-ID` carries; the
    /// header wins when both are given). Overrides where the tail starts.
    pub last_event_id: Option<String>,
    /// `json` adds `key_json` and `value_json`, as reads do.
    #[param(inline)]
    pub format: Option<Format>,
}

/// Where a topic tail starts.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TopicTailParams {
    /// Start with the last N records of each partition (at most 1000).
    pub last: Option<i64>,
    /// `read_uncommitted` (default) or `read_committed`.
    #[param(inline)]
    pub isolation: Option<Isolation>,
    /// Decode keys and values in the schema registry's wire format into
    /// `key_schema` and `value_schema`, as reads do.
    pub decode: Option<bool>,
    /// Send only records with this key (UTF-8 text); `last` counts records
    /// before this filter.
    pub key: Option<String>,
    /// Send only records with this key (standard base64 of its bytes).
    pub key_base64: Option<String>,
    /// Resume after this event id (what `Last-Event-ID` carries; the
    /// header wins when both are given). Overrides where the tail starts.
    pub last_event_id: Option<String>,
    /// `json` adds `key_json` and `value_json`, as reads do.
    #[param(inline)]
    pub format: Option<Format>,
}

struct Follow {
    broker: Arc<Broker>,
    /// Each followed partition and the next offset to send.
    partitions: Vec<(Arc<Partition>, i64)>,
    buffered: VecDeque<RecordOut>,
    /// The process's shutdown signal: the stream ends when it fires.
    shutdown: CancellationToken,
    isolation: Isolation,
    /// Decode with the schema registry.
    decode: bool,
    /// Send only records whose key is this (standard base64, which is
    /// canonical, so it compares as the bytes do).
    key_base64: Option<String>,
    /// Embed JSON keys and values.
    format: Format,
    /// Per partition, the offset after the last record sent (or where the
    /// stream started): each event's id.
    sent: BTreeMap<i32, i64>,
}

impl Follow {
    /// The next event, or `None` when the stream should end.
    async fn next(&mut self) -> Option<RecordOut> {
        loop {
            if let Some(r) = self.buffered.pop_front() {
                return Some(r);
            }
            if self.shutdown.is_cancelled() {
                return None;
            }
            // Register before reading so an append in between is not missed.
            let partitions: Vec<Arc<Partition>> =
                self.partitions.iter().map(|(p, _)| Arc::clone(p)).collect();
            let mut waits: Vec<_> = partitions
                .iter()
                .map(|p| Box::pin(p.hw_advanced()))
                .collect();
            for w in &mut waits {
                w.as_mut().enable();
            }
            let positions = self.partitions.clone();
            let isolation = self.isolation;
            let registry = self.decode.then(|| Arc::clone(&self.broker.registry));
            let read = sluice_runtime::blocking("tail-read", move || {
                let mut out = Vec::new();
                let mut next = Vec::with_capacity(positions.len());
                for (p, from) in positions {
                    let from = from.max(p.log().log_start_offset());
                    if from < read_upper_bound(&p, isolation) {
                        match read_records(
                            &p,
                            from,
                            RECORDS_PER_ROUND,
                            isolation,
                            registry.as_deref(),
                        ) {
                            Ok((records, n)) => {
                                out.extend(records);
                                next.push(n);
                                continue;
                            }
                            Err(e) => {
                                tracing::debug!(partition = %p.tp, "tail read failed: {}", e.body.message);
                                return None;
                            }
                        }
                    }
                    next.push(from);
                }
                Some((out, next))
            })
            .await;
            let Ok(Some((records, next))) = read else {
                return None;
            };
            let mut progressed = false;
            for ((_, from), n) in self.partitions.iter_mut().zip(next) {
                progressed |= n > *from;
                *from = n;
            }
            let filter = self.key_base64.as_deref();
            let mut records = records;
            embed_json(&mut records, self.format);
            self.buffered.extend(
                records
                    .into_iter()
                    .filter(|r| filter.is_none_or(|k| r.key_base64.as_deref() == Some(k))),
            );
            // Filtered records moved the positions without an event: read
            // on rather than wait for an append that may never come.
            if !self.buffered.is_empty() || (progressed && self.key_base64.is_some()) {
                continue;
            }
            tokio::select! {
                _ = select_all(waits) => {}
                () = self.shutdown.cancelled() => return None,
                _ = tokio::time::sleep(LIVENESS_CHECK) => {
                    if !self.still_hosted() {
                        return None;
                    }
                }
            }
        }
    }

    fn still_hosted(&self) -> bool {
        self.partitions.iter().all(|(p, _)| {
            self.broker
                .replicas
                .get(&p.tp)
                .is_some_and(|now| Arc::ptr_eq(&now, p))
        })
    }
}

fn stream(follow: Follow) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold(follow, |mut follow| async move {
        let record = follow.next().await?;
        follow.sent.insert(record.partition, record.offset + 1);
        let event = Event::default()
            .event("record")
            .id(positions_text(follow.sent.iter().map(|(&p, &o)| (p, o))))
            .json_data(&record)
            .unwrap_or_else(|_| Event::default().event("error").data("cannot encode record"));
        Some((Ok(event), follow))
    })
}

/// The key filter of a tail, as canonical base64.
fn key_filter(key: Option<String>, key_base64: Option<String>) -> ApiResult<Option<String>> {
    match (key, key_base64) {
        (Some(_), Some(_)) => Err(HttpError::bad_request(
            "give at most one of `key` and `key_base64`",
        )),
        (Some(text), None) => Ok(Some(BASE64.encode(text))),
        (None, Some(b64)) => Ok(Some(BASE64.encode(decode_b64("key_base64", &b64)?))),
        (None, None) => Ok(None),
    }
}

/// Where a reconnecting client left off: the `Last-Event-ID` header, else
/// the `last_event_id` parameter, as positions of the `known` partitions.
fn resume_positions(
    headers: &HeaderMap,
    param: Option<String>,
    known: &BTreeMap<i32, ()>,
) -> ApiResult<Option<BTreeMap<i32, i64>>> {
    let header = match headers.get("last-event-id") {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| HttpError::bad_request("`Last-Event-ID` is not text"))?
                .to_owned(),
        ),
        None => None,
    };
    // An EventSource sends an empty id before it has seen one.
    match header.or(param).filter(|id| !id.is_empty()) {
        Some(id) => parse_positions("Last-Event-ID", &id, known).map(Some),
        None => Ok(None),
    }
}

/// Tailed partitions, each with the next offset to send.
type Positions = Vec<(Arc<Partition>, i64)>;

/// The first offset of each tailed partition, and the event-id positions
/// the stream starts with.
fn start_positions(
    partitions: Positions,
    resume: Option<&BTreeMap<i32, i64>>,
) -> (Positions, BTreeMap<i32, i64>) {
    let partitions: Positions = partitions
        .into_iter()
        .map(|(p, start)| {
            let start = resume
                .and_then(|r| r.get(&p.tp.partition).copied())
                .unwrap_or(start)
                .max(p.log().log_start_offset());
            (p, start)
        })
        .collect();
    let sent = partitions
        .iter()
        .map(|(p, start)| (p.tp.partition, *start))
        .collect();
    (partitions, sent)
}

fn check_last(last: Option<i64>) -> ApiResult<i64> {
    match last {
        None => Ok(0),
        Some(n) if (0..=MAX_BACKFILL).contains(&n) => Ok(n),
        Some(_) => Err(HttpError::bad_request(format!(
            "`last` must be between 0 and {MAX_BACKFILL}"
        ))),
    }
}

/// Follows one partition: an SSE stream of `record` events.
#[utoipa::path(get, operation_id = "tail_partition", path = "/v1/topics/{topic}/partitions/{partition}/tail", tag = "records",
    params(
        ("topic" = String, Path, description = "Topic name"),
        ("partition" = i32, Path, description = "Partition index"),
        PartitionTailParams,
    ),
    responses(
        (status = 200, description = "`text/event-stream` of `record` events, each a RecordOut with an id to resume after (`Last-Event-ID`)", content_type = "text/event-stream", body = RecordOut),
        (status = 400, description = "Both offset and last, last out of range, or both key and key_base64", body = ErrorBody),
        (status = 404, description = "No such topic or partition", body = ErrorBody),
    ))]
pub async fn tail_partition(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((topic, index)): Path<(String, i32)>,
    Query(params): Query<PartitionTailParams>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    caller.require(Operation::Read, Resource::Topic(&topic))?;
    let partition = partition_arc(&state, &topic, index)?;
    if params.offset.is_some() && params.last.is_some() {
        return Err(HttpError::bad_request(
            "give at most one of `offset` and `last`",
        ));
    }
    let last = check_last(params.last)?;
    let key_base64 = key_filter(params.key, params.key_base64)?;
    let start = match params.offset {
        Some(offset) if offset < 0 => {
            return Err(HttpError::bad_request("`offset` must not be negative"));
        }
        Some(offset) => offset,
        None => partition.high_watermark() - last,
    };
    let known = BTreeMap::from([(index, ())]);
    let resume = resume_positions(&headers, params.last_event_id, &known)?;
    let (partitions, sent) = start_positions(vec![(partition, start)], resume.as_ref());
    let follow = Follow {
        broker: Arc::clone(&state.broker),
        partitions,
        sent,
        format: params.format.unwrap_or_default(),
        buffered: VecDeque::new(),
        shutdown: state.shutdown.clone(),
        isolation: params.isolation.unwrap_or_default(),
        decode: params.decode.unwrap_or(false),
        key_base64,
    };
    Ok(Sse::new(stream(follow)).keep_alive(KeepAlive::default()))
}

/// Follows every partition of a topic: an SSE stream of `record` events.
#[utoipa::path(get, operation_id = "tail_topic", path = "/v1/topics/{topic}/tail", tag = "records",
    params(("topic" = String, Path, description = "Topic name"), TopicTailParams),
    responses(
        (status = 200, description = "`text/event-stream` of `record` events, each a RecordOut with an id to resume after (`Last-Event-ID`)", content_type = "text/event-stream", body = RecordOut),
        (status = 400, description = "last out of range, or both key and key_base64", body = ErrorBody),
        (status = 404, description = "No such topic", body = ErrorBody),
    ))]
pub async fn tail_topic(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(topic): Path<String>,
    Query(params): Query<TopicTailParams>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    caller.require(Operation::Read, Resource::Topic(&topic))?;
    let last = check_last(params.last)?;
    let key_base64 = key_filter(params.key, params.key_base64)?;
    let image = state.broker.metadata.image();
    let t = image
        .topics
        .get(&topic)
        .ok_or_else(|| unknown_topic(&topic))?;
    let known: BTreeMap<i32, ()> = t.partitions.keys().map(|&i| (i, ())).collect();
    let resume = resume_positions(&headers, params.last_event_id, &known)?;
    let partitions = t
        .partitions
        .keys()
        .filter_map(|&i| state.broker.replicas.partition(&topic, i))
        .map(|p| {
            let start = p.high_watermark() - last;
            (p, start)
        })
        .collect();
    let (partitions, sent) = start_positions(partitions, resume.as_ref());
    let follow = Follow {
        broker: Arc::clone(&state.broker),
        partitions,
        sent,
        format: params.format.unwrap_or_default(),
        buffered: VecDeque::new(),
        shutdown: state.shutdown.clone(),
        isolation: params.isolation.unwrap_or_default(),
        decode: params.decode.unwrap_or(false),
        key_base64,
    };
    Ok(Sse::new(stream(follow)).keep_alive(KeepAlive::default()))
}
