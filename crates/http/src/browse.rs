//! Reads across every partition of a topic, merged by timestamp, with
//! server-side filters: what the console's message browser pages through.
//!
//! Each partition is a lane with a small buffer of decoded records; the
//! merge repeatedly takes the head with the smallest timestamp (ties by
//! partition), so records of one partition keep their offset order even
//! when their timestamps do not. The page ends at `limit` matching records
//! or after `max_scan` records were looked at, whichever comes first. The
//! cursor is, per partition, the offset of the first record not yet looked
//! at, so the next page continues exactly where this one stopped: no
//! record is skipped and none is returned twice.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::sync::Arc;

use axum::extract::State;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Caller, Operation, Resource};
use super::error::{ApiResult, ErrorBody, HttpError, Path, Query};
use super::records::{
    Format, Isolation, MAX_READ_RECORDS, RecordOut, Visible, decode_with_schemas, embed_json,
    read_upper_bound, render, visit_visible,
};
use super::{AppState, blocking, unknown_topic};
use sluice_replica::Partition;

/// Records a page looks at by default before it stops, matching or not.
pub const DEFAULT_SCAN_RECORDS: usize = 10_000;

/// Most records one page may look at (`max_scan`): bounds the disk reads
/// and decoding one request costs however selective its filters are.
pub const MAX_SCAN_RECORDS: usize = 100_000;

/// Records decoded into a lane's buffer at a time: small, so a topic of
/// many partitions holds little per partition, and large enough that a
/// batch is not decoded again for every few records taken from it.
const LANE_RECORDS: usize = 256;

/// Log bytes a lane asks for at a time (at least one whole batch comes).
const LANE_READ_BYTES: u32 = 256 * 1024;

/// Longest `key_contains`, `value_contains` or `header` filter: the
/// filters run over every scanned record.
pub const MAX_FILTER_BYTES: usize = 1024;

/// A topic-wide read.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TopicReadParams {
    /// Where to start when there is no `cursor`: `beginning` (default),
    /// `end` (the newest matching records: the last `limit` of them among
    /// the newest records of each partition), or a time in ms since the
    /// epoch (each partition from its first record at or after it).
    pub from: Option<String>,
    /// The `cursor` of the previous page: continue exactly after it.
    /// Partitions it does not name start at their first record.
    pub cursor: Option<String>,
    /// Most matching records to return (default 100, at most 1000).
    pub limit: Option<usize>,
    /// Most records to look at, matching or not (default 10000, at most
    /// 100000); past it the page ends with `truncated` set.
    pub max_scan: Option<usize>,
    /// Only records whose key contains this text (byte-wise, case-sensitive).
    pub key_contains: Option<String>,
    /// Only records whose value contains this text.
    pub value_contains: Option<String>,
    /// Only records with a header of this name (`name`), or of this name
    /// with this exact value (`name=value`).
    pub header: Option<String>,
    /// Only records with a timestamp at or after this (ms). Without `from`
    /// and `cursor`, reading starts there too.
    pub from_ts: Option<i64>,
    /// Only records with a timestamp at or before this (ms).
    pub to_ts: Option<i64>,
    /// `read_uncommitted` (default) or `read_committed`.
    #[param(inline)]
    pub isolation: Option<Isolation>,
    /// Decode keys and values in the schema registry's wire format into
    /// `key_schema` and `value_schema`, as partition reads do.
    pub decode: Option<bool>,
    /// `json` adds `key_json` and `value_json`, as partition reads do.
    #[param(inline)]
    pub format: Option<Format>,
}

/// Where one partition stands after a page.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartitionPosition {
    /// Partition.
    pub partition: i32,
    /// The next offset the cursor reads from.
    pub next_offset: i64,
    /// First offset still in the log.
    pub log_start_offset: i64,
    /// Offset below which records are visible (the last stable offset with
    /// `read_committed`).
    pub high_watermark: i64,
}

/// A page of a topic-wide read.
#[derive(Debug, Serialize, ToSchema)]
pub struct TopicReadResponse {
    /// Topic.
    pub topic: String,
    /// Matching records, merged by timestamp (ties by partition), each
    /// partition's in offset order.
    pub records: Vec<RecordOut>,
    /// Pass as `cursor` to read the next page: `partition:offset` pairs,
    /// comma-separated, one per partition.
    pub cursor: String,
    /// The cursor per partition, with its bounds.
    pub partitions: Vec<PartitionPosition>,
    /// Records looked at, matching or not.
    pub scanned: usize,
    /// True when the page stopped at `max_scan` before `limit` matching
    /// records were found and records were left to look at.
    pub truncated: bool,
    /// True when every partition's cursor is at its end: a next page only
    /// finds records produced after this one.
    pub end_reached: bool,
}

/// The filters of a page, checked on the raw bytes.
#[derive(Debug, Default)]
struct Filter {
    key_contains: Option<String>,
    value_contains: Option<String>,
    header: Option<(String, Option<String>)>,
    from_ts: Option<i64>,
    to_ts: Option<i64>,
}

impl Filter {
    fn is_empty(&self) -> bool {
        self.key_contains.is_none()
            && self.value_contains.is_none()
            && self.header.is_none()
            && self.from_ts.is_none()
            && self.to_ts.is_none()
    }

    fn matches(&self, seen: &Visible) -> bool {
        let r = &seen.record;
        self.from_ts.is_none_or(|ts| seen.timestamp_ms >= ts)
            && self.to_ts.is_none_or(|ts| seen.timestamp_ms <= ts)
            && self
                .key_contains
                .as_deref()
                .is_none_or(|needle| contains(r.key.as_ref(), needle))
            && self
                .value_contains
                .as_deref()
                .is_none_or(|needle| contains(r.value.as_ref(), needle))
            && self.header.as_ref().is_none_or(|(name, value)| {
                r.headers.iter().any(|(k, v)| {
                    k == name
                        && value
                            .as_deref()
                            .is_none_or(|want| v.as_deref() == Some(want.as_bytes()))
                })
            })
    }
}

/// Whether `haystack` holds the bytes of `needle`. Through `str` when the
/// bytes are UTF-8, whose search is linear; other bytes go through a lossy
/// copy, where invalid sequences become U+FFFD and cannot match text.
fn contains(haystack: Option<&Bytes>, needle: &str) -> bool {
    let Some(haystack) = haystack else {
        return false;
    };
    match std::str::from_utf8(haystack) {
        Ok(text) => text.contains(needle),
        Err(_) => String::from_utf8_lossy(haystack).contains(needle),
    }
}

/// One partition being merged.
struct Lane {
    partition: Arc<Partition>,
    /// The next offset to decode into `buffered`.
    fetch_from: i64,
    /// Records are not read at or past this (the bound when the page began).
    upper: i64,
    /// Decoded records not yet looked at, in offset order.
    buffered: VecDeque<Visible>,
    /// Where the page began reading this partition.
    began: i64,
}

impl Lane {
    /// The offset of the first record not yet looked at.
    fn cursor(&self) -> i64 {
        self.buffered.front().map_or(self.fetch_from, |r| r.offset)
    }

    /// Decodes the next records into an empty buffer; false when the lane
    /// has nothing more below `upper`.
    fn refill(&mut self, isolation: Isolation) -> Result<bool, HttpError> {
        while self.buffered.is_empty() && self.fetch_from < self.upper {
            let before = self.fetch_from;
            let upper = self.upper;
            let buffered = &mut self.buffered;
            let next = visit_visible(
                &self.partition,
                before,
                isolation,
                LANE_READ_BYTES,
                |seen| {
                    if seen.offset >= upper {
                        return std::ops::ControlFlow::Break(());
                    }
                    buffered.push_back(seen);
                    if buffered.len() >= LANE_RECORDS {
                        std::ops::ControlFlow::Break(())
                    } else {
                        std::ops::ControlFlow::Continue(())
                    }
                },
            )?;
            // A record at or past `upper` was handed over and dropped: the
            // cursor stays at `upper`, where the next page reads it.
            self.fetch_from = next.min(upper);
            if self.buffered.is_empty() && next <= before {
                // No progress: a batch that cannot be parsed, or the log
                // ends below `upper` (the high watermark moved back).
                self.fetch_from = self.upper;
            }
        }
        Ok(!self.buffered.is_empty())
    }
}

/// Parses positions written by [`positions_text`] (the parameter `name`):
/// `partition:offset,...`; every partition must be one of `known`.
pub(crate) fn parse_positions(
    name: &str,
    text: &str,
    known: &BTreeMap<i32, ()>,
) -> ApiResult<BTreeMap<i32, i64>> {
    let bad = |why: String| HttpError::bad_request(format!("bad `{name}`: {why}"));
    let mut out = BTreeMap::new();
    if text.is_empty() {
        return Ok(out);
    }
    for (i, entry) in text.split(',').enumerate() {
        if i >= known.len() {
            return Err(bad(format!(
                "more entries than the topic's {} partitions",
                known.len()
            )));
        }
        let (p, o) = entry
            .split_once(':')
            .ok_or_else(|| bad(format!("`{entry}` is not partition:offset")))?;
        let partition: i32 = p
            .parse()
            .map_err(|_| bad(format!("`{p}` is not a partition")))?;
        let offset: i64 = o
            .parse()
            .ok()
            .filter(|o| *o >= 0)
            .ok_or_else(|| bad(format!("`{o}` is not an offset")))?;
        if !known.contains_key(&partition) {
            return Err(bad(format!("the topic has no partition {partition}")));
        }
        if out.insert(partition, offset).is_some() {
            return Err(bad(format!("partition {partition} appears twice")));
        }
    }
    Ok(out)
}

/// `partition:offset` pairs, comma-separated: a page's cursor and a live
/// tail's event id.
pub(crate) fn positions_text(positions: impl Iterator<Item = (i32, i64)>) -> String {
    let mut out = String::new();
    for (partition, offset) in positions {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(&format!("{partition}:{offset}"));
    }
    out
}

/// Where reading starts without a cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    Beginning,
    End,
    Timestamp(i64),
}

fn parse_from(from: Option<&str>, from_ts: Option<i64>) -> ApiResult<Start> {
    match from {
        None => Ok(from_ts.map_or(Start::Beginning, Start::Timestamp)),
        Some("beginning") => Ok(Start::Beginning),
        Some("end") => Ok(Start::End),
        Some(text) => match text.parse::<i64>() {
            Ok(ts) if ts >= 0 => Ok(Start::Timestamp(ts)),
            _ => Err(HttpError::bad_request(format!(
                "`from` must be `beginning`, `end` or a time in ms, not `{text}`"
            ))),
        },
    }
}

fn bounded_filter(name: &str, value: Option<String>) -> ApiResult<Option<String>> {
    match value {
        Some(v) if v.len() > MAX_FILTER_BYTES => Err(HttpError::bad_request(format!(
            "`{name}` is longer than {MAX_FILTER_BYTES} bytes"
        ))),
        Some(v) if v.is_empty() => Err(HttpError::bad_request(format!(
            "`{name}` must not be empty"
        ))),
        other => Ok(other),
    }
}

/// Reads records across every partition of a topic, merged by timestamp,
/// optionally filtered, a page at a time.
#[utoipa::path(get, operation_id = "read_topic_records", path = "/v1/topics/{topic}/records", tag = "records",
    params(("topic" = String, Path, description = "Topic name"), TopicReadParams),
    responses(
        (status = 200, description = "A page of records and the cursor to the next", body = TopicReadResponse),
        (status = 400, description = "A bad parameter or cursor", body = ErrorBody),
        (status = 404, description = "No such topic", body = ErrorBody),
        (status = 503, description = "A partition is led by another broker", body = ErrorBody),
    ))]
pub async fn read_topic(
    State(state): State<AppState>,
    caller: Caller,
    Path(topic): Path<String>,
    Query(params): Query<TopicReadParams>,
) -> ApiResult<axum::Json<TopicReadResponse>> {
    caller.require(Operation::Read, Resource::Topic(&topic))?;
    let limit = params.limit.unwrap_or(super::records::DEFAULT_READ_RECORDS);
    if limit == 0 || limit > MAX_READ_RECORDS {
        return Err(HttpError::bad_request(format!(
            "`limit` must be between 1 and {MAX_READ_RECORDS}"
        )));
    }
    let max_scan = params.max_scan.unwrap_or(DEFAULT_SCAN_RECORDS);
    if max_scan == 0 || max_scan > MAX_SCAN_RECORDS {
        return Err(HttpError::bad_request(format!(
            "`max_scan` must be between 1 and {MAX_SCAN_RECORDS}"
        )));
    }
    if params.cursor.is_some() && params.from.is_some() {
        return Err(HttpError::bad_request(
            "give at most one of `cursor` and `from`",
        ));
    }
    let header = bounded_filter("header", params.header)?.map(|h| match h.split_once('=') {
        Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
        None => (h, None),
    });
    let filter = Filter {
        key_contains: bounded_filter("key_contains", params.key_contains)?,
        value_contains: bounded_filter("value_contains", params.value_contains)?,
        header,
        from_ts: params.from_ts,
        to_ts: params.to_ts,
    };
    let start = parse_from(params.from.as_deref(), params.from_ts)?;
    let image = state.broker.metadata.image();
    let indexes: BTreeMap<i32, ()> = image
        .topics
        .get(&topic)
        .ok_or_else(|| unknown_topic(&topic))?
        .partitions
        .keys()
        .map(|&p| (p, ()))
        .collect();
    let cursor = params
        .cursor
        .as_deref()
        .map(|c| parse_positions("cursor", c, &indexes))
        .transpose()?;
    let partitions = indexes
        .keys()
        .map(|&i| crate::led_partition(&state.broker, &topic, i))
        .collect::<Result<Vec<_>, _>>()?;
    let isolation = params.isolation.unwrap_or_default();
    let format = params.format.unwrap_or_default();
    let registry = params
        .decode
        .unwrap_or(false)
        .then(|| state.broker.registry.clone());
    let response = blocking(move || {
        let mut lanes = Vec::with_capacity(partitions.len());
        for p in partitions {
            let log_start = p.log().log_start_offset();
            let upper = read_upper_bound(&p, isolation);
            let from = match (&cursor, start) {
                (Some(c), _) => c.get(&p.tp.partition).copied().unwrap_or(log_start),
                (None, Start::Beginning) => log_start,
                (None, Start::End) => {
                    // The newest records: enough of each partition for the
                    // page, within an equal share of the scan budget (all
                    // of the share with filters).
                    let share = (max_scan / indexes.len().max(1)).max(1);
                    let window = if filter.is_empty() {
                        limit.min(share)
                    } else {
                        share
                    };
                    upper - i64::try_from(window).unwrap_or(i64::MAX).min(upper)
                }
                (None, Start::Timestamp(ts)) => p
                    .log()
                    .lookup_timestamp(ts)?
                    .map_or(upper, |(offset, _)| offset),
            };
            let from = from.clamp(log_start, upper.max(log_start));
            lanes.push(Lane {
                fetch_from: from,
                began: from,
                upper,
                partition: p,
                buffered: VecDeque::new(),
            });
        }
        let newest = start == Start::End && cursor.is_none();
        page(lanes, &filter, limit, max_scan, newest, isolation).map(|page| {
            let mut records = page.records;
            if let Some(registry) = registry.as_deref() {
                decode_with_schemas(registry, &mut records, &page.raw);
            }
            embed_json(&mut records, format);
            TopicReadResponse {
                topic: topic.clone(),
                records,
                cursor: positions_text(page.positions.iter().map(|p| (p.partition, p.next_offset))),
                end_reached: page
                    .positions
                    .iter()
                    .all(|p| p.next_offset >= p.high_watermark),
                partitions: page.positions,
                scanned: page.scanned,
                truncated: page.truncated,
            }
        })
    })
    .await?;
    Ok(axum::Json(response))
}

/// A record's raw key and value, kept for schema decoding.
type RawKeyValue = (Option<Bytes>, Option<Bytes>);

/// What [`page`] found.
struct Page {
    records: Vec<RecordOut>,
    /// Each record's raw key and value, for schema decoding.
    raw: Vec<RawKeyValue>,
    positions: Vec<PartitionPosition>,
    scanned: usize,
    truncated: bool,
}

/// Merges `lanes` by timestamp and keeps the records `filter` matches: the
/// first `limit` of them, or with `newest` the last `limit` (then every
/// lane is read to its end and the cursor is the end).
fn page(
    mut lanes: Vec<Lane>,
    filter: &Filter,
    limit: usize,
    max_scan: usize,
    newest: bool,
    isolation: Isolation,
) -> Result<Page, HttpError> {
    // Min-heap of lane heads by (timestamp, partition).
    let mut heads = BinaryHeap::new();
    for (i, lane) in lanes.iter_mut().enumerate() {
        if lane.refill(isolation)? {
            let head = &lane.buffered[0];
            heads.push(Reverse((head.timestamp_ms, lane.partition.tp.partition, i)));
        }
    }
    let mut kept: VecDeque<(RecordOut, RawKeyValue)> = VecDeque::new();
    let mut scanned = 0;
    // With `newest` the lanes' windows already bound the scan.
    while newest || (scanned < max_scan && kept.len() < limit) {
        let Some(Reverse((_, _, i))) = heads.pop() else {
            break;
        };
        let lane = &mut lanes[i];
        let Some(seen) = lane.buffered.pop_front() else {
            continue;
        };
        scanned += 1;
        if filter.matches(&seen) {
            let out = render(lane.partition.tp.partition, &seen);
            kept.push_back((out, (seen.record.key, seen.record.value)));
            if kept.len() > limit {
                kept.pop_front(); // only with `newest`
            }
        }
        if lane.buffered.is_empty() && !lane.refill(isolation)? {
            continue;
        }
        let head = &lane.buffered[0];
        heads.push(Reverse((head.timestamp_ms, lane.partition.tp.partition, i)));
    }
    let truncated = kept.len() < limit
        && if newest {
            // Older records were left unread.
            lanes
                .iter()
                .any(|l| l.began > l.partition.log().log_start_offset())
        } else {
            !heads.is_empty() && scanned >= max_scan
        };
    let positions = lanes
        .iter()
        .map(|lane| PartitionPosition {
            partition: lane.partition.tp.partition,
            // Reading the newest records reads up to the end; whatever
            // was not looked at is older than the page.
            next_offset: if newest { lane.upper } else { lane.cursor() },
            log_start_offset: lane.partition.log().log_start_offset(),
            high_watermark: lane.upper,
        })
        .collect();
    let (records, raw) = kept.into_iter().unzip();
    Ok(Page {
        records,
        raw,
        positions,
        scanned,
        truncated,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use axum::http::{Method, StatusCode};
    use serde_json::{Value, json};

    use crate::test_support;

    struct Fixture {
        _dir: tempfile::TempDir,
        app: axum::Router,
    }

    impl Fixture {
        fn new() -> Fixture {
            let (dir, broker) = test_support::temp_broker(|_| {}, 9092);
            Fixture {
                _dir: dir,
                app: crate::app(test_support::app_state(broker)),
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
                "application/json",
                body,
            )
            .await;
            (status, value)
        }

        async fn get(&self, uri: &str) -> Value {
            let (status, body) = self.call(Method::GET, uri, None).await;
            assert_eq!(status, StatusCode::OK, "{uri}: {body}");
            body
        }

        /// Topic `t` with 3 partitions; record i goes to partition i % 3
        /// at time 1000 + i, with value `{"n": i}`, key `k<i>`, and a
        /// header `even` on even records.
        async fn topic_of(&self, count: usize) {
            let (status, body) = self
                .call(
                    Method::POST,
                    "/v1/topics",
                    Some(json!({"name": "t", "partitions": 3})),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            let records: Vec<Value> = (0..count)
                .map(|i| {
                    let mut r = json!({
                        "key": format!("k{i}"),
                        "value": {"n": i},
                        "partition": i % 3,
                        "timestamp_ms": 1000 + i,
                    });
                    if i % 2 == 0 {
                        r["headers"] = json!([{"key": "even", "value": "yes"}]);
                    }
                    r
                })
                .collect();
            let (status, body) = self
                .call(
                    Method::POST,
                    "/v1/topics/t/records",
                    Some(json!({"records": records})),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    }

    fn numbers(page: &Value) -> Vec<i64> {
        page["records"]
            .as_array()
            .expect("records")
            .iter()
            .map(|r| {
                let v: Value =
                    serde_json::from_str(r["value"].as_str().expect("text")).expect("json");
                v["n"].as_i64().expect("n")
            })
            .collect()
    }

    #[tokio::test]
    async fn pages_merge_partitions_by_time_and_continue_exactly() {
        let f = Fixture::new();
        f.topic_of(50).await;
        let mut seen = Vec::new();
        let mut uri = "/v1/topics/t/records?limit=7".to_owned();
        for _ in 0..20 {
            let page = f.get(&uri).await;
            let got = numbers(&page);
            assert!(got.len() <= 7);
            seen.extend(got);
            assert_eq!(page["truncated"], false);
            if page["end_reached"] == true {
                break;
            }
            uri = format!(
                "/v1/topics/t/records?limit=7&cursor={}",
                page["cursor"].as_str().expect("cursor")
            );
        }
        assert_eq!(
            seen,
            (0..50).collect::<Vec<i64>>(),
            "every record once, in time order"
        );
        // At the end, the cursor points past every record.
        let page = f.get(&uri).await;
        assert_eq!(page["end_reached"], true);
        let ends: BTreeSet<(i64, i64)> = page["partitions"]
            .as_array()
            .expect("partitions")
            .iter()
            .map(|p| {
                (
                    p["next_offset"].as_i64().expect("o"),
                    p["high_watermark"].as_i64().expect("hw"),
                )
            })
            .collect();
        assert!(ends.iter().all(|(next, hw)| next == hw), "{ends:?}");
    }

    #[tokio::test]
    async fn filters_scan_bounds_and_starting_points() {
        let f = Fixture::new();
        f.topic_of(60).await;
        let page = f
            .get("/v1/topics/t/records?key_contains=k1&limit=100")
            .await;
        assert_eq!(
            numbers(&page),
            vec![1, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]
        );
        assert_eq!(page["scanned"], 60);
        let page = f
            .get("/v1/topics/t/records?value_contains=%22n%22:5&limit=100")
            .await;
        assert_eq!(
            numbers(&page),
            vec![5, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59]
        );
        let page = f
            .get("/v1/topics/t/records?header=even&from_ts=1010&to_ts=1015")
            .await;
        assert_eq!(numbers(&page), vec![10, 12, 14]);
        let page = f.get("/v1/topics/t/records?header=even=no").await;
        assert_eq!(numbers(&page), Vec::<i64>::new());
        let page = f.get("/v1/topics/t/records?from=1055").await;
        assert_eq!(numbers(&page), vec![55, 56, 57, 58, 59]);
        let page = f.get("/v1/topics/t/records?from=end&limit=4").await;
        assert_eq!(numbers(&page), vec![56, 57, 58, 59]);
        assert_eq!(page["end_reached"], true);

        // A scan bound: 10 records looked at, 1 of them matching; the
        // cursor continues after the 10 and the next page finds the rest.
        let page = f
            .get("/v1/topics/t/records?key_contains=k1&max_scan=10")
            .await;
        assert_eq!(numbers(&page), vec![1]);
        assert_eq!(
            (page["scanned"].as_i64(), page["truncated"].as_bool()),
            (Some(10), Some(true))
        );
        let cursor = page["cursor"].as_str().expect("cursor").to_owned();
        let page = f
            .get(&format!(
                "/v1/topics/t/records?key_contains=k1&max_scan=100&cursor={cursor}"
            ))
            .await;
        assert_eq!(numbers(&page), vec![10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
        assert_eq!(page["truncated"], false);

        // `format=json` embeds the JSON values.
        let page = f.get("/v1/topics/t/records?limit=1&format=json").await;
        assert_eq!(page["records"][0]["value_json"], json!({"n": 0}));
        assert!(
            page["records"][0].get("key_json").is_none(),
            "k0 is not JSON"
        );

        for bad in [
            "limit=0",
            "max_scan=100001",
            "from=yesterday",
            "cursor=0:1&from=end",
            "cursor=7:1",
            "cursor=0:1,0:2",
            "cursor=0:-1",
            "cursor=zero",
            "key_contains=",
        ] {
            let (status, err) = f
                .call(Method::GET, &format!("/v1/topics/t/records?{bad}"), None)
                .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {err}");
            assert_eq!(err["error_code"], "BAD_REQUEST", "{bad}");
        }
        let (status, err) = f.call(Method::GET, "/v1/topics/nope/records", None).await;
        assert_eq!(
            (status, err["error_code"].as_str()),
            (StatusCode::NOT_FOUND, Some("UNKNOWN_TOPIC_OR_PARTITION"))
        );
    }
}
