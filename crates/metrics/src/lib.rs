//! Prometheus metrics: counters and histograms the request path feeds, and
//! gauges read from broker state at scrape time.
//!
//! Owns the process's metric families and nothing else. The hooks other
//! modules call ([`request_done`], [`connection_opened`], [`appended`],
//! [`fetched`], [`fsync_observed`], [`forget_topic`]) are cheap (an
//! atomic add, or a histogram bucket) and never fail.
//!
//! [`process`] reads the standard `process_*` figures from `/proc` at
//! scrape time; [`register_process`] exports them without the `sluice_`
//! prefix, under the names the Prometheus process collector uses.
//!
//! The families live in one process-wide [`LazyLock`] rather than on
//! the broker: `Partition::commit` (fsync latency) and the
//! connection loop would otherwise need a handle threaded through every
//! layer, and a process runs one broker. Unit tests that start several
//! brokers in one process share the counters, which no test asserts on.
//!
//! State that already lives in the broker (log end offsets, sizes, group
//! lag) is not mirrored into gauges that would have to be kept in step and
//! cleaned up: the HTTP crate reads it at scrape time, so a deleted partition's
//! label sets disappear with the partition. The per-topic counters are the
//! only label sets keyed by something that can be deleted; the replica
//! manager calls [`forget_topic`] when it drops a partition.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use sluice_protocol::ApiKey;
use sluice_protocol::error::ErrorCode;

pub mod process;

/// Labels of per-API request metrics; `api` is Kafka's name (`Produce`) or
/// `http` routes' method and template (`GET /v1/topics`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabels {
    /// Which API.
    pub api: String,
}

/// Labels of per-API, per-error-code response counts (Kafka's
/// `ErrorsPerSec{request, error}`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// Kafka's API name (`Produce`).
    pub api: String,
    /// Kafka's error name (`NONE`, `NOT_LEADER_OR_FOLLOWER`); codes Kafka
    /// does not name share `UNKNOWN`, so the label set is bounded by the
    /// error table.
    pub error: String,
}

/// Labels of group rebalance counts: the group protocol, not the group,
/// so the label set stays at two however many groups come and go.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GroupProtocolLabels {
    /// `classic` (JoinGroup/SyncGroup) or `consumer` (KIP-848).
    pub protocol: String,
}

/// Labels of per-task counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TaskLabels {
    /// The task's name as given when it was spawned (`housekeeping`,
    /// `group-timer`, ...); a fixed set chosen in code, never by a client.
    pub task: String,
}

/// Labels of per-topic counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabels {
    /// Topic name.
    pub topic: String,
}

/// Labels of per-partition gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: String,
}

/// Labels of per-data-directory disk gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirLabels {
    /// The data directory as configured (`data_dir`).
    pub dir: String,
}

/// Labels of per-group, per-partition lag.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LagLabels {
    /// Group id.
    pub group: String,
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: String,
}

/// Labels of per-entity client quota metrics: the entity whose quota
/// throttled (Kafka's `user` and `client-id` tags; empty when the quota's
/// entity does not name that part), and the quota's type.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QuotaLabels {
    /// `Produce`, `Fetch` or `Request` (Kafka's quota types).
    pub quota_type: String,
    /// The user, if the quota's entity names users.
    pub user: String,
    /// The client id, if the quota's entity names client ids.
    pub client_id: String,
}

fn latency_histogram() -> Histogram {
    // 100 µs .. ~13 s in powers of two: covers a cached metadata answer and
    // a 30 s long-poll fetch capped at the top bucket's +Inf.
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

fn queue_histogram() -> Histogram {
    // 10 µs .. ~1.3 s in powers of two: a request waits for its handler
    // only while the connection task is busy, so the interesting range
    // starts far below a request's latency.
    Histogram::new(exponential_buckets(0.00001, 2.0, 18))
}

/// Every family the request path writes to.
#[derive(Debug)]
pub struct Metrics {
    /// Kafka requests by API.
    pub kafka_requests: Family<ApiLabels, Counter>,
    /// Kafka request latency (dispatch to response ready) by API.
    pub kafka_request_seconds: Family<ApiLabels, Histogram, fn() -> Histogram>,
    /// Time from a request frame being fully read until its handler
    /// starts, by API (Kafka's RequestQueueTimeMs).
    pub kafka_request_queue_seconds: Family<ApiLabels, Histogram, fn() -> Histogram>,
    /// Error codes in responses, by API and error name, `NONE` included
    /// (Kafka's ErrorsPerSec): top-level and per-partition for Produce and
    /// Fetch.
    pub kafka_errors: Family<ErrorLabels, Counter>,
    /// Rebalances started, by group protocol.
    pub group_rebalances: Family<GroupProtocolLabels, Counter>,
    /// Request frame bytes received, by API.
    pub kafka_request_bytes: Family<ApiLabels, Counter>,
    /// Response frame bytes sent, by API.
    pub kafka_response_bytes: Family<ApiLabels, Counter>,
    /// HTTP requests by route.
    pub http_requests: Family<ApiLabels, Counter>,
    /// HTTP request latency by route (until the response head; a live tail
    /// counts until its stream starts).
    pub http_request_seconds: Family<ApiLabels, Histogram, fn() -> Histogram>,
    /// Record-batch bytes appended, by topic (Kafka's BytesInPerSec).
    pub topic_bytes_in: Family<TopicLabels, Counter>,
    /// Records appended, by topic (Kafka's MessagesInPerSec).
    pub topic_messages_in: Family<TopicLabels, Counter>,
    /// Record-batch bytes served to consumers, by topic (BytesOutPerSec).
    pub topic_bytes_out: Family<TopicLabels, Counter>,
    /// Open Kafka connections.
    pub connections: Gauge,
    /// Kafka connections accepted since start.
    pub connections_accepted: Counter,
    /// Open HTTP connections (API, console, live tails).
    pub http_connections: Gauge,
    /// Time `Partition::commit` spent making appends durable (group commit).
    pub fsync_seconds: Histogram,
    /// Retention passes over every log since start; lets operators (and
    /// tests) see that retention is running, not only when it deletes.
    pub retention_checks: Counter,
    /// Cleaner runs that rewrote a log (issue 17).
    pub cleaner_runs: Counter,
    /// Bytes the cleaner read from the logs it cleaned.
    pub cleaner_bytes_read: Counter,
    /// Bytes the cleaner removed from the logs it cleaned.
    pub cleaner_bytes_removed: Counter,
    /// Bytes of request frames holding the request budget
    /// (`limits.queued_max_request_bytes`).
    pub request_queued_bytes: Gauge,
    /// Bytes the key-value view's indexes account for
    /// (`kv.index_max_bytes` bounds it).
    pub kv_index_bytes: Gauge,
    /// Keys held by the key-value view's indexes.
    pub kv_index_keys: Gauge,
    /// Open incremental fetch sessions (KIP-227).
    pub fetch_sessions: Gauge,
    /// Partitions held by the open fetch sessions.
    pub fetch_session_partitions: Gauge,
    /// Spawned tasks that panicked, by task name: each is a bug, logged at
    /// error level when it happens; the counter lets alerts see it.
    pub task_panics: Family<TaskLabels, Counter>,
    /// Milliseconds of throttle time given to clients over a quota, by
    /// quota entity and type (Kafka's per-entity `throttle-time`).
    pub client_quota_throttle_ms: Family<QuotaLabels, Counter>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    kafka_requests: Family::default(),
    kafka_request_seconds: Family::new_with_constructor(latency_histogram),
    kafka_request_queue_seconds: Family::new_with_constructor(queue_histogram),
    kafka_errors: Family::default(),
    group_rebalances: Family::default(),
    kafka_request_bytes: Family::default(),
    kafka_response_bytes: Family::default(),
    http_requests: Family::default(),
    http_request_seconds: Family::new_with_constructor(latency_histogram),
    topic_bytes_in: Family::default(),
    topic_messages_in: Family::default(),
    topic_bytes_out: Family::default(),
    connections: Gauge::default(),
    connections_accepted: Counter::default(),
    http_connections: Gauge::default(),
    fsync_seconds: latency_histogram(),
    retention_checks: Counter::default(),
    cleaner_runs: Counter::default(),
    cleaner_bytes_read: Counter::default(),
    cleaner_bytes_removed: Counter::default(),
    request_queued_bytes: Gauge::default(),
    kv_index_bytes: Gauge::default(),
    kv_index_keys: Gauge::default(),
    fetch_sessions: Gauge::default(),
    fetch_session_partitions: Gauge::default(),
    task_panics: Family::default(),
    client_quota_throttle_ms: Family::default(),
});

/// The process's metric families.
pub fn global() -> &'static Metrics {
    &METRICS
}

/// Kafka's name for the API; one shared label for keys we do not know, so
/// a client cannot grow the label sets.
fn api_name(api_key: i16) -> String {
    ApiKey::try_from(api_key).map_or_else(|_| "unknown".to_owned(), |k| k.name().to_owned())
}

/// A Kafka request finished: its API, how long it took, and frame sizes.
pub fn request_done(api_key: i16, elapsed: Duration, request_bytes: usize, response_bytes: usize) {
    let labels = ApiLabels {
        api: api_name(api_key),
    };
    let m = global();
    m.kafka_requests.get_or_create(&labels).inc();
    m.kafka_request_seconds
        .get_or_create(&labels)
        .observe(elapsed.as_secs_f64());
    m.kafka_request_bytes
        .get_or_create(&labels)
        .inc_by(request_bytes as u64);
    m.kafka_response_bytes
        .get_or_create(&labels)
        .inc_by(response_bytes as u64);
}

/// A Kafka request of `api_key` waited `queued` between being fully read
/// and its handler starting.
pub fn request_dequeued(api_key: i16, queued: Duration) {
    global()
        .kafka_request_queue_seconds
        .get_or_create(&ApiLabels {
            api: api_name(api_key),
        })
        .observe(queued.as_secs_f64());
}

/// A response of `api_key` carried `codes` (one per partition, plus the
/// top-level code where the response has one).
pub fn response_errors(api_key: i16, codes: impl IntoIterator<Item = i16>) {
    let mut tally = ErrorTally::default();
    codes.into_iter().for_each(|code| tally.add(code));
    tally.record(api_key);
}

/// One response's error codes, counted per distinct code, so a response
/// naming 1,000 partitions touches the metric family a few times, not
/// 1,000, and allocates only per distinct code.
#[derive(Debug, Default)]
pub struct ErrorTally {
    /// (code, how many times); few distinct codes per response, so a
    /// linear scan beats a map.
    counts: Vec<(i16, u64)>,
}

impl ErrorTally {
    /// One more occurrence of `code`.
    pub fn add(&mut self, code: i16) {
        match self.counts.iter_mut().find(|(c, _)| *c == code) {
            Some((_, n)) => *n += 1,
            None => self.counts.push((code, 1)),
        }
    }

    /// Adds the tally to `sluice_kafka_errors_total` under `api_key`.
    pub fn record(self, api_key: i16) {
        if self.counts.is_empty() {
            return;
        }
        let api = api_name(api_key);
        let m = global();
        for (code, n) in self.counts {
            m.kafka_errors
                .get_or_create(&ErrorLabels {
                    api: api.clone(),
                    error: ErrorCode::from_code(code).name().to_owned(),
                })
                .inc_by(n);
        }
    }
}

/// The group protocol a rebalance belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupProtocol {
    /// JoinGroup/SyncGroup groups.
    Classic,
    /// KIP-848 (ConsumerGroupHeartbeat) groups.
    Consumer,
}

/// The rebalance counter of `protocol`'s groups.
fn group_rebalance_counter(protocol: GroupProtocol) -> Counter {
    let protocol = match protocol {
        GroupProtocol::Classic => "classic",
        GroupProtocol::Consumer => "consumer",
    };
    global()
        .group_rebalances
        .get_or_create(&GroupProtocolLabels {
            protocol: protocol.to_owned(),
        })
        .clone()
}

/// A group of `protocol` started a rebalance: a classic group entered
/// PreparingRebalance, or a consumer group's epoch advanced (Kafka's
/// `classic-group-rebalance-count` and `consumer-group-rebalance-count`).
pub fn group_rebalanced(protocol: GroupProtocol) {
    group_rebalance_counter(protocol).inc();
}

/// Rebalances of `protocol` since start (tests).
pub fn group_rebalances(protocol: GroupProtocol) -> u64 {
    group_rebalance_counter(protocol).get()
}

/// An HTTP request on `route` (method and path template) finished.
pub fn http_request_done(route: String, elapsed: Duration) {
    let labels = ApiLabels { api: route };
    let m = global();
    m.http_requests.get_or_create(&labels).inc();
    m.http_request_seconds
        .get_or_create(&labels)
        .observe(elapsed.as_secs_f64());
}

/// Counts a request frame's bytes against the queued-bytes gauge until the
/// guard drops.
#[derive(Debug)]
pub struct QueuedRequestGuard(i64);

impl Drop for QueuedRequestGuard {
    fn drop(&mut self) {
        global().request_queued_bytes.dec_by(self.0);
    }
}

/// A request frame of `bytes` took its share of the request budget.
pub fn request_queued(bytes: usize) -> QueuedRequestGuard {
    let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
    global().request_queued_bytes.inc_by(bytes);
    QueuedRequestGuard(bytes)
}

/// Counts an open connection until the guard drops.
#[derive(Debug)]
pub struct ConnectionGuard(());

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        global().connections.dec();
    }
}

/// A Kafka connection was accepted; hold the guard while it is open.
pub fn connection_opened() -> ConnectionGuard {
    let m = global();
    m.connections.inc();
    m.connections_accepted.inc();
    ConnectionGuard(())
}

/// Counts an open HTTP connection until the guard drops.
#[derive(Debug)]
pub struct HttpConnectionGuard(());

impl Drop for HttpConnectionGuard {
    fn drop(&mut self) {
        global().http_connections.dec();
    }
}

/// An HTTP connection was accepted; hold the guard while it is open.
pub fn http_connection_opened() -> HttpConnectionGuard {
    global().http_connections.inc();
    HttpConnectionGuard(())
}

/// A spawned task named `task` panicked.
pub fn task_panicked(task: &str) {
    global()
        .task_panics
        .get_or_create(&TaskLabels {
            task: task.to_owned(),
        })
        .inc();
}

/// How many tasks named `task` have panicked since start.
pub fn task_panics(task: &str) -> u64 {
    global()
        .task_panics
        .get_or_create(&TaskLabels {
            task: task.to_owned(),
        })
        .get()
}

/// One retention pass over every log finished.
pub fn retention_checked() {
    global().retention_checks.inc();
}

/// The cleaner compacted a log: it read `bytes_read` and the log shrank by
/// `bytes_removed`.
pub fn log_cleaned(bytes_read: u64, bytes_removed: u64) {
    let m = global();
    m.cleaner_runs.inc();
    m.cleaner_bytes_read.inc_by(bytes_read);
    m.cleaner_bytes_removed.inc_by(bytes_removed);
}

/// The fetch session cache now holds `sessions` sessions of `partitions`
/// partitions in all.
pub fn fetch_session_cache(sessions: usize, partitions: usize) {
    let m = global();
    m.fetch_sessions
        .set(i64::try_from(sessions).unwrap_or(i64::MAX));
    m.fetch_session_partitions
        .set(i64::try_from(partitions).unwrap_or(i64::MAX));
}

/// The key-value view's indexes now hold `keys` keys accounted as `bytes`.
pub fn kv_index_size(bytes: u64, keys: u64) {
    let m = global();
    m.kv_index_bytes
        .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    m.kv_index_keys.set(i64::try_from(keys).unwrap_or(i64::MAX));
}

/// Process-wide sums of the per-topic throughput counters, kept apart so
/// the console's history sampler reads three atomics instead of walking
/// every topic's label set.
static THROUGHPUT_TOTALS: [AtomicU64; 3] =
    [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];

/// Sums over every topic since start: what [`appended`] and [`fetched`]
/// counted (topics deleted since are still in the sums, as rates need).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ThroughputTotals {
    /// Record-batch bytes appended.
    pub bytes_in: u64,
    /// Records appended.
    pub messages_in: u64,
    /// Record-batch bytes served to consumers.
    pub bytes_out: u64,
}

/// The sums now.
pub fn throughput_totals() -> ThroughputTotals {
    ThroughputTotals {
        bytes_in: THROUGHPUT_TOTALS[0].load(Ordering::Relaxed),
        messages_in: THROUGHPUT_TOTALS[1].load(Ordering::Relaxed),
        bytes_out: THROUGHPUT_TOTALS[2].load(Ordering::Relaxed),
    }
}

/// Batches were appended to a partition of `topic`.
pub fn appended(topic: &str, bytes: usize, records: u32) {
    THROUGHPUT_TOTALS[0].fetch_add(bytes as u64, Ordering::Relaxed);
    THROUGHPUT_TOTALS[1].fetch_add(u64::from(records), Ordering::Relaxed);
    let labels = TopicLabels {
        topic: topic.to_owned(),
    };
    let m = global();
    m.topic_bytes_in.get_or_create(&labels).inc_by(bytes as u64);
    m.topic_messages_in
        .get_or_create(&labels)
        .inc_by(u64::from(records));
}

/// Record-batch bytes of `topic` were served to a consumer.
pub fn fetched(topic: &str, bytes: usize) {
    if bytes == 0 {
        return;
    }
    THROUGHPUT_TOTALS[2].fetch_add(bytes as u64, Ordering::Relaxed);
    global()
        .topic_bytes_out
        .get_or_create(&TopicLabels {
            topic: topic.to_owned(),
        })
        .inc_by(bytes as u64);
}

/// One commit's wait for durability.
pub fn fsync_observed(elapsed: Duration) {
    global().fsync_seconds.observe(elapsed.as_secs_f64());
}

/// A partition was deleted: drop its topic's label sets, so a deleted
/// topic stops being exported (a re-created topic starts again from zero).
pub fn forget_topic(topic: &str) {
    let labels = TopicLabels {
        topic: topic.to_owned(),
    };
    let m = global();
    m.topic_bytes_in.remove(&labels);
    m.topic_messages_in.remove(&labels);
    m.topic_bytes_out.remove(&labels);
}

/// A client over its quota was given `throttle_ms` of throttle time.
pub fn quota_throttled(labels: &QuotaLabels, throttle_ms: u64) {
    global()
        .client_quota_throttle_ms
        .get_or_create(labels)
        .inc_by(throttle_ms);
}

/// A quota entity's state expired: stop exporting it, so client ids that
/// come and go do not grow the scrape without bound.
pub fn forget_quota_entity(labels: &QuotaLabels) {
    global().client_quota_throttle_ms.remove(labels);
}

/// Registers every request-path family in `registry` (the scrape adds the
/// gauges it reads from broker state after these).
pub fn register(registry: &mut Registry) {
    let m = global();
    registry.register(
        "kafka_requests",
        "Kafka requests handled, by API",
        m.kafka_requests.clone(),
    );
    registry.register(
        "kafka_request_duration_seconds",
        "Kafka request latency from dispatch to response, by API",
        m.kafka_request_seconds.clone(),
    );
    registry.register(
        "kafka_request_queue_duration_seconds",
        "Time from a Kafka request being fully read until its handler starts, by API",
        m.kafka_request_queue_seconds.clone(),
    );
    registry.register(
        "kafka_errors",
        "Error codes in Kafka responses (NONE included), by API and error name; Produce and Fetch count per partition",
        m.kafka_errors.clone(),
    );
    registry.register(
        "group_rebalances",
        "Consumer group rebalances started, by group protocol (classic, consumer)",
        m.group_rebalances.clone(),
    );
    registry.register(
        "kafka_request_bytes",
        "Kafka request frame bytes received, by API",
        m.kafka_request_bytes.clone(),
    );
    registry.register(
        "kafka_response_bytes",
        "Kafka response frame bytes sent, by API",
        m.kafka_response_bytes.clone(),
    );
    registry.register(
        "http_requests",
        "HTTP API requests, by route",
        m.http_requests.clone(),
    );
    registry.register(
        "http_request_duration_seconds",
        "HTTP API latency until the response head, by route",
        m.http_request_seconds.clone(),
    );
    registry.register(
        "topic_bytes_in",
        "Record-batch bytes appended, by topic",
        m.topic_bytes_in.clone(),
    );
    registry.register(
        "topic_messages_in",
        "Records appended, by topic",
        m.topic_messages_in.clone(),
    );
    registry.register(
        "topic_bytes_out",
        "Record-batch bytes served to consumers, by topic",
        m.topic_bytes_out.clone(),
    );
    registry.register(
        "connections",
        "Open Kafka connections",
        m.connections.clone(),
    );
    registry.register(
        "connections_accepted",
        "Kafka connections accepted since start",
        m.connections_accepted.clone(),
    );
    registry.register(
        "http_connections",
        "Open HTTP connections (API, console, live tails)",
        m.http_connections.clone(),
    );
    registry.register(
        "log_cleaner_runs",
        "Cleaner runs that compacted a log (cleanup.policy=compact) since start",
        m.cleaner_runs.clone(),
    );
    registry.register(
        "log_cleaner_read_bytes",
        "Bytes the log cleaner read from the logs it compacted",
        m.cleaner_bytes_read.clone(),
    );
    registry.register(
        "log_cleaner_removed_bytes",
        "Bytes the log cleaner removed from the logs it compacted",
        m.cleaner_bytes_removed.clone(),
    );
    registry.register(
        "kv_index_bytes",
        "Bytes the key-value view's key indexes account for (bounded by kv.index_max_bytes)",
        m.kv_index_bytes.clone(),
    );
    registry.register(
        "kv_index_keys",
        "Keys held by the key-value view's key indexes",
        m.kv_index_keys.clone(),
    );
    registry.register(
        "fetch_sessions",
        "Open incremental fetch sessions (KIP-227; bounded at 1,000)",
        m.fetch_sessions.clone(),
    );
    registry.register(
        "fetch_session_partitions",
        "Partitions held by the open fetch sessions (bounded at 500,000)",
        m.fetch_session_partitions.clone(),
    );
    registry.register(
        "log_retention_checks",
        "Retention passes over every partition log since start",
        m.retention_checks.clone(),
    );
    registry.register(
        "kafka_request_queued_bytes",
        "Bytes of Kafka request frames being read or handled (limits.queued_max_request_bytes)",
        m.request_queued_bytes.clone(),
    );
    registry.register(
        "task_panics",
        "Background or detached tasks that panicked (a bug), by task name",
        m.task_panics.clone(),
    );
    registry.register(
        "client_quota_throttle_time_ms",
        "Throttle time given to clients over their quota, by quota type, user and client id",
        m.client_quota_throttle_ms.clone(),
    );
    registry.register(
        "log_fsync_duration_seconds",
        "Time a produce waited for its appends to be fsynced (group commit)",
        m.fsync_seconds.clone(),
    );
}

/// The version this binary was built from.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The Rust compiler's version (`1.89.0`), found by `build.rs`; empty if
/// it could not be asked.
const RUSTC_VERSION: &str = env!("SLUICE_RUSTC_VERSION");

/// The source commit, when the build sets `SLUICE_COMMIT` (a release
/// build from a checkout); a dev build leaves the label out rather than
/// guess, since `build.rs` is not re-run on every commit.
const COMMIT: Option<&str> = option_env!("SLUICE_COMMIT");

/// `sluice_build_info`'s labels: version, and rustc and commit when known.
pub fn build_info_labels() -> Vec<(String, String)> {
    let mut labels = vec![("version".to_owned(), VERSION.to_owned())];
    if let Some(commit) = COMMIT.filter(|c| !c.is_empty()) {
        labels.push(("commit".to_owned(), commit.to_owned()));
    }
    if !RUSTC_VERSION.is_empty() {
        labels.push(("rustc".to_owned(), RUSTC_VERSION.to_owned()));
    }
    labels
}

/// Registers `build_info` (a gauge of 1 whose labels carry the version)
/// in `registry`, which adds the `sluice_` prefix.
pub fn register_build_info(registry: &mut Registry) {
    let info = Family::<Vec<(String, String)>, Gauge>::default();
    info.get_or_create(&build_info_labels()).set(1);
    registry.register(
        "build_info",
        "Always 1; the labels name the version (and the compiler and commit when known)",
        info,
    );
}

/// Registers the standard `process_*` metrics read from `/proc` now in
/// `registry`, which must have no prefix: these are the names the
/// Prometheus process collector exports, which dashboards expect as is.
/// A figure `/proc` would not give is left out.
pub fn register_process(registry: &mut Registry) {
    use std::sync::atomic::AtomicU64;
    let stats = process::read();
    if let Some(cpu) = stats.cpu_seconds {
        let counter = Counter::<f64, AtomicU64>::default();
        counter.inc_by(cpu);
        registry.register(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            counter,
        );
    }
    let gauges = [
        (
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            stats.resident_memory_bytes,
        ),
        (
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            stats.virtual_memory_bytes,
        ),
        (
            "process_open_fds",
            "Number of open file descriptors",
            stats.open_fds,
        ),
        (
            "process_max_fds",
            "Maximum number of open file descriptors",
            stats.max_fds,
        ),
        ("process_threads", "Number of OS threads", stats.threads),
    ];
    for (name, help, value) in gauges {
        if let Some(value) = value {
            let gauge = Gauge::<i64>::default();
            gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
            registry.register(name, help, gauge);
        }
    }
    if let Some(start) = stats.start_time_seconds {
        let gauge = Gauge::<f64, AtomicU64>::default();
        gauge.set(start);
        registry.register(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds",
            gauge,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_errors_are_counted_per_code_with_kafkas_names() {
        let labels = |error: &str| ErrorLabels {
            api: "Produce".to_owned(),
            error: error.to_owned(),
        };
        let get = |error: &str| global().kafka_errors.get_or_create(&labels(error)).get();
        let (none, not_leader, unknown) =
            (get("NONE"), get("NOT_LEADER_OR_FOLLOWER"), get("UNKNOWN"));
        // Produce is API key 0; 6 is NOT_LEADER_OR_FOLLOWER; 999 is unnamed.
        response_errors(0, [0, 6, 0, 0, 999]);
        assert_eq!(get("NONE") - none, 3);
        assert_eq!(get("NOT_LEADER_OR_FOLLOWER") - not_leader, 1);
        assert_eq!(get("UNKNOWN") - unknown, 1);
    }

    #[test]
    fn build_info_names_the_version() {
        let labels = build_info_labels();
        assert_eq!(labels[0], ("version".to_owned(), VERSION.to_owned()));
        let mut registry = Registry::with_prefix("sluice");
        register_build_info(&mut registry);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).expect("encodes");
        assert!(
            out.contains(&format!("sluice_build_info{{version=\"{VERSION}\"")),
            "{out}"
        );
    }
}
