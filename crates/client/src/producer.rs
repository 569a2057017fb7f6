//! [`Producer`]: batching (linger, batch size), compression, acks, retries
//! with backoff, idempotence (InitProducerId + per-partition sequences) and
//! murmur2 key partitioning.
//!
//! `send` picks the partition in the caller's task and hands the record to
//! one accumulator task. The accumulator groups records into one open batch
//! per partition, seals a batch when it is full or its linger expires, and
//! sends sealed batches to partition leaders, at most `max_in_flight`
//! requests per broker. A sealed batch keeps its bytes, so a retry resends
//! exactly what was sent before and the broker can drop duplicates by
//! sequence number.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use sluice_protocol::messages::init_producer_id::InitProducerIdRequest;
use sluice_protocol::messages::produce::{
    PartitionProduceData, ProduceRequest, ProduceResponse, TopicProduceData,
};
use sluice_records::{BatchBuilder, Compression, Header, NewRecord};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::client::Client;
use crate::error::{ClientError, Result};
use crate::partitioner::{NullKeys, Partitioner};

/// Records queued between `send` and the accumulator. Bounded, so a caller
/// that produces faster than the broker accepts waits in `send`.
const SEND_QUEUE_DEPTH: usize = 8192;

/// Kafka's DUPLICATE_SEQUENCE_NUMBER: the broker already has this batch.
const DUPLICATE_SEQUENCE_NUMBER: i16 = 46;

/// Which acknowledgement the producer waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// acks=0: fire and forget; offsets are unknown (-1).
    None,
    /// acks=1: the leader wrote it.
    Leader,
    /// acks=all (-1): all in-sync replicas wrote it.
    All,
}

impl Acks {
    /// The wire value.
    pub fn wire(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

impl std::str::FromStr for Acks {
    type Err = ClientError;
    fn from_str(s: &str) -> Result<Acks> {
        match s {
            "0" => Ok(Acks::None),
            "1" => Ok(Acks::Leader),
            "all" | "-1" => Ok(Acks::All),
            other => Err(ClientError::Invalid {
                what: "acks",
                reason: format!("'{other}' is not one of 0, 1, all"),
            }),
        }
    }
}

/// Producer settings. Defaults follow the Java client where it makes sense.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// Acknowledgement level.
    pub acks: Acks,
    /// How long an open batch waits for more records (`linger.ms`).
    pub linger: Duration,
    /// Seal a batch once its records reach this many bytes (`batch.size`).
    pub batch_size_bytes: usize,
    /// Also seal a batch once it holds this many records, if set.
    pub batch_max_records: Option<usize>,
    /// Compression codec.
    pub compression: Compression,
    /// Retries per batch for retriable errors.
    pub retries: u32,
    /// Backoff between retries of one batch.
    pub retry_backoff: Duration,
    /// Idempotent producer: InitProducerId plus sequence numbers.
    pub idempotent: bool,
    /// In-flight Produce requests per broker (Kafka allows at most 5 with idempotence).
    pub max_in_flight: usize,
    /// Broker-side timeout for acks=all, sent in the request.
    pub request_timeout: Duration,
    /// How records with neither a key nor a partition are spread: sticky
    /// for `batch_size_bytes` by default, as the Java client does.
    pub null_keys: NullKeys,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            acks: Acks::All,
            linger: Duration::from_millis(5),
            batch_size_bytes: 16 * 1024,
            batch_max_records: None,
            compression: Compression::None,
            retries: 5,
            retry_backoff: Duration::from_millis(100),
            idempotent: false,
            max_in_flight: 5,
            request_timeout: Duration::from_secs(30),
            null_keys: NullKeys::default(),
        }
    }
}

/// A record to send.
#[derive(Debug, Clone, Default)]
pub struct ProducerRecord {
    /// Topic.
    pub topic: String,
    /// Explicit partition; otherwise chosen by key.
    pub partition: Option<i32>,
    /// Key.
    pub key: Option<Bytes>,
    /// Value.
    pub value: Option<Bytes>,
    /// Headers, in order.
    pub headers: Vec<Header>,
    /// CreateTime in ms; now when `None`.
    pub timestamp_ms: Option<i64>,
}

/// Where a record was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset, or -1 with acks=0 or for a duplicate the broker dropped.
    pub offset: i64,
    /// Timestamp (LogAppendTime if the topic uses it, else CreateTime).
    pub timestamp_ms: i64,
}

/// Resolves when the record is acknowledged (or finally fails).
#[derive(Debug)]
pub struct DeliveryFuture {
    rx: oneshot::Receiver<Result<RecordMetadata>>,
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(ClientError::Closed)))
    }
}

enum Command {
    Record(PendingRecord),
    Flush(oneshot::Sender<()>),
}

struct PendingRecord {
    topic: String,
    partition: i32,
    record: NewRecord,
    size: usize,
    done: oneshot::Sender<Result<RecordMetadata>>,
}

/// An async producer. Clone-free: share it behind an `Arc`; `send` takes `&self`.
#[derive(Debug)]
pub struct Producer {
    client: Client,
    tx: mpsc::Sender<Command>,
    partitioner: Partitioner,
    task: tokio::task::JoinHandle<()>,
}

/// Current wall-clock time in ms since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Producer {
    /// Starts a producer. With `idempotent`, obtains a producer id first.
    pub async fn new(client: Client, config: ProducerConfig) -> Result<Producer> {
        if config.idempotent && config.acks != Acks::All {
            return Err(ClientError::Invalid {
                what: "producer config",
                reason: "idempotence requires acks=all".to_owned(),
            });
        }
        if config.max_in_flight == 0 || (config.idempotent && config.max_in_flight > 5) {
            return Err(ClientError::Invalid {
                what: "max_in_flight",
                reason: "must be 1..=5 with idempotence, >= 1 otherwise".to_owned(),
            });
        }
        let producer_id = if config.idempotent {
            let request = InitProducerIdRequest {
                transactional_id: None,
                transaction_timeout_ms: -1,
                ..Default::default()
            };
            let (resp, _) = client.send_any("InitProducerId", &request, 0, 4).await?;
            if resp.error_code != 0 {
                return Err(ClientError::kafka("InitProducerId", resp.error_code, None));
            }
            Some((resp.producer_id, resp.producer_epoch))
        } else {
            None
        };
        let (tx, rx) = mpsc::channel(SEND_QUEUE_DEPTH);
        let partitioner = Partitioner::new(config.null_keys, config.batch_size_bytes);
        let accumulator = Accumulator {
            client: client.clone(),
            config,
            producer_id,
            open: HashMap::new(),
            lingering: VecDeque::new(),
            next_open_id: 0,
            ready: BTreeMap::new(),
            next_seal_id: 0,
            in_flight_per_broker: HashMap::new(),
            sequences: HashMap::new(),
            flush_waiters: Vec::new(),
            dirty: false,
            retrying: 0,
        };
        let task = tokio::spawn(accumulator.run(rx));
        Ok(Producer {
            client,
            tx,
            partitioner,
            task,
        })
    }

    /// Queues a record; the returned future resolves when it is acknowledged.
    /// Waits only when the internal queue is full.
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        let count = self.client.partition_count(&record.topic).await?;
        let size = record.key.as_ref().map_or(0, |k| k.len())
            + record.value.as_ref().map_or(0, |v| v.len())
            + record
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.as_ref().map_or(0, |v| v.len()))
                .sum::<usize>()
            + 16;
        let partition = match record.partition {
            Some(p) if p < 0 || p >= count => {
                return Err(ClientError::UnknownPartition {
                    topic: record.topic,
                    partition: p,
                    partitions: count as usize,
                });
            }
            Some(p) => p,
            None => self
                .partitioner
                .partition(&record.topic, record.key.as_deref(), size, count),
        };
        let (done, rx) = oneshot::channel();
        let pending = PendingRecord {
            topic: record.topic,
            partition,
            record: NewRecord {
                key: record.key,
                value: record.value,
                headers: record.headers,
                timestamp_ms: record.timestamp_ms.unwrap_or_else(now_ms),
            },
            size,
            done,
        };
        self.tx
            .send(Command::Record(pending))
            .await
            .map_err(|_| ClientError::Closed)?;
        Ok(DeliveryFuture { rx })
    }

    /// Sends every queued record now and waits until all are acknowledged
    /// or have failed.
    pub async fn flush(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Flush(tx))
            .await
            .map_err(|_| ClientError::Closed)?;
        rx.await.map_err(|_| ClientError::Closed)
    }

    /// Flushes and stops the accumulator.
    pub async fn close(self) -> Result<()> {
        self.flush().await?;
        drop(self.tx);
        let _ = self.task.await;
        Ok(())
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

struct OpenBatch {
    /// Which entry of [`Accumulator::lingering`] is this batch's.
    id: u64,
    records: Vec<PendingRecord>,
    bytes: usize,
    created: Instant,
}

struct SealedBatch {
    topic: String,
    partition: i32,
    bytes: Bytes,
    waiters: Vec<(oneshot::Sender<Result<RecordMetadata>>, i64)>,
    attempts: u32,
    not_before: Instant,
}

type InFlight = Pin<
    Box<
        dyn Future<
                Output = (
                    i32,
                    Vec<(u64, SealedBatch)>,
                    Result<Option<ProduceResponse>>,
                ),
            > + Send,
    >,
>;

struct Accumulator {
    client: Client,
    config: ProducerConfig,
    producer_id: Option<(i64, i16)>,
    open: HashMap<(String, i32), OpenBatch>,
    /// Open batches in the order they were opened, so oldest first: every
    /// batch lingers equally long, so the front holds the next deadline.
    /// Entries of batches sealed early (full, flushed) stay until they
    /// reach the front and are skipped there; the queue holds at most the
    /// batches opened within one linger. Without it, each record scanned
    /// every open batch for the deadline: with 1,000 partitions, a
    /// thousand steps per record.
    lingering: VecDeque<(u64, (String, i32))>,
    next_open_id: u64,
    /// Sealed batches by seal order, so retries keep per-partition order.
    ready: BTreeMap<u64, SealedBatch>,
    next_seal_id: u64,
    in_flight_per_broker: HashMap<i32, usize>,
    sequences: HashMap<(String, i32), i32>,
    flush_waiters: Vec<oneshot::Sender<()>>,
    /// Set when a batch may have become sendable (sealed, a request
    /// finished, a backoff expired); dispatch scans only then, so adding a
    /// record to an open batch costs no scan of the ready queue.
    dirty: bool,
    /// Retried batches now in `ready` (they may be waiting for a backoff).
    retrying: usize,
}

impl Accumulator {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut in_flight: FuturesUnordered<InFlight> = FuturesUnordered::new();
        let mut closed = false;
        loop {
            let deadline = self.next_deadline();
            tokio::select! {
                cmd = rx.recv(), if !closed => match cmd {
                    Some(Command::Record(r)) => self.add(r),
                    Some(Command::Flush(tx)) => {
                        self.seal_all();
                        self.flush_waiters.push(tx);
                    }
                    None => {
                        closed = true;
                        self.seal_all();
                    }
                },
                Some((leader, batches, result)) = in_flight.next(), if !in_flight.is_empty() => {
                    if let Some(n) = self.in_flight_per_broker.get_mut(&leader) {
                        *n = n.saturating_sub(1);
                    }
                    self.complete(batches, result).await;
                    self.dirty = true;
                }
                _ = sleep_until_opt(deadline), if deadline.is_some() => {
                    self.seal_expired();
                    self.dirty = true;
                }
            }
            if self.dirty {
                self.dirty = false;
                self.dispatch(&mut in_flight).await;
            }
            let idle = self.open.is_empty() && self.ready.is_empty() && in_flight.is_empty();
            if idle {
                for w in self.flush_waiters.drain(..) {
                    let _ = w.send(());
                }
                if closed {
                    return;
                }
            }
        }
    }

    fn next_deadline(&mut self) -> Option<Instant> {
        let linger_for = self.config.linger;
        let linger = self.oldest_open().map(|b| b.created + linger_for);
        // Only retried batches wait for a backoff; skip the scan otherwise.
        let backoff = if self.retrying > 0 {
            self.ready.values().map(|b| b.not_before).min()
        } else {
            None
        };
        match (linger, backoff) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The oldest open batch, after dropping the queue entries of batches
    /// already sealed.
    fn oldest_open(&mut self) -> Option<&OpenBatch> {
        while let Some((id, key)) = self.lingering.front() {
            if self.open.get(key).is_some_and(|b| b.id == *id) {
                break;
            }
            self.lingering.pop_front();
        }
        let (_, key) = self.lingering.front()?;
        self.open.get(key)
    }

    fn add(&mut self, record: PendingRecord) {
        let key = (record.topic.clone(), record.partition);
        let batch = match self.open.entry(key.clone()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let id = self.next_open_id;
                self.next_open_id += 1;
                self.lingering.push_back((id, key.clone()));
                e.insert(OpenBatch {
                    id,
                    records: Vec::new(),
                    bytes: 0,
                    created: Instant::now(),
                })
            }
        };
        batch.bytes += record.size;
        batch.records.push(record);
        let full = batch.bytes >= self.config.batch_size_bytes
            || self
                .config
                .batch_max_records
                .is_some_and(|n| batch.records.len() >= n);
        if full && let Some(batch) = self.open.remove(&key) {
            self.seal(key, batch);
        }
    }

    fn seal_all(&mut self) {
        let keys: Vec<_> = self.open.keys().cloned().collect();
        for key in keys {
            if let Some(batch) = self.open.remove(&key) {
                self.seal(key, batch);
            }
        }
    }

    fn seal_expired(&mut self) {
        let now = Instant::now();
        let linger = self.config.linger;
        while let Some(batch) = self.oldest_open() {
            if batch.created + linger > now {
                break;
            }
            if let Some((_, key)) = self.lingering.pop_front()
                && let Some(batch) = self.open.remove(&key)
            {
                self.seal(key, batch);
            }
        }
    }

    fn seal(&mut self, key: (String, i32), batch: OpenBatch) {
        let mut builder = BatchBuilder::new().compression(self.config.compression);
        if let Some((producer_id, producer_epoch)) = self.producer_id {
            let seq = self.sequences.entry(key.clone()).or_insert(0);
            builder = builder.producer(producer_id, producer_epoch, *seq);
            // Sequences wrap at i32::MAX, as in Kafka.
            *seq = seq.wrapping_add(batch.records.len() as i32) & i32::MAX;
        }
        let mut waiters = Vec::with_capacity(batch.records.len());
        for r in batch.records {
            waiters.push((r.done, r.record.timestamp_ms));
            builder.push(r.record);
        }
        match builder.build() {
            Ok(bytes) => {
                let id = self.next_seal_id;
                self.next_seal_id += 1;
                self.dirty = true;
                self.ready.insert(
                    id,
                    SealedBatch {
                        topic: key.0,
                        partition: key.1,
                        bytes: bytes.freeze(),
                        waiters,
                        attempts: 0,
                        not_before: Instant::now(),
                    },
                );
            }
            Err(e) => {
                let msg = e.to_string();
                for (w, _) in waiters {
                    let _ = w.send(Err(ClientError::Invalid {
                        what: "record batch",
                        reason: msg.clone(),
                    }));
                }
            }
        }
    }

    /// Sends ready batches, one request per leader, each partition at most
    /// once per request, in seal order.
    async fn dispatch(&mut self, in_flight: &mut FuturesUnordered<InFlight>) {
        if self.ready.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut per_leader: HashMap<i32, Vec<u64>> = HashMap::new();
        let mut need_refresh = false;
        {
            // Partitions skipped this round (so a later batch of theirs
            // cannot overtake), and those already in a request.
            let mut blocked: HashSet<(&str, i32)> = HashSet::new();
            let mut in_request: HashSet<(&str, i32)> = HashSet::new();
            let metadata = self.client.metadata();
            for (id, batch) in &self.ready {
                let key = (batch.topic.as_str(), batch.partition);
                if blocked.contains(&key) || in_request.contains(&key) {
                    continue;
                }
                let leader = metadata
                    .topics
                    .get(&batch.topic)
                    .and_then(|t| t.partitions.iter().find(|p| p.partition == batch.partition))
                    .map(|p| p.leader_id)
                    .filter(|l| *l >= 0);
                let Some(leader) = leader else {
                    need_refresh = true;
                    blocked.insert(key);
                    continue;
                };
                let busy = self.in_flight_per_broker.get(&leader).copied().unwrap_or(0)
                    >= self.config.max_in_flight;
                if batch.not_before > now || busy {
                    blocked.insert(key);
                    continue;
                }
                in_request.insert(key);
                per_leader.entry(leader).or_default().push(*id);
            }
        }
        if need_refresh {
            let _ = self.client.refresh_metadata(None).await;
        }
        for (leader, ids) in per_leader {
            let batches: Vec<(u64, SealedBatch)> = ids
                .into_iter()
                .filter_map(|id| self.ready.remove(&id).map(|b| (id, b)))
                .collect();
            self.retrying -= batches.iter().filter(|(_, b)| b.attempts > 0).count();
            *self.in_flight_per_broker.entry(leader).or_insert(0) += 1;
            let mut topics: BTreeMap<&str, Vec<PartitionProduceData>> = BTreeMap::new();
            for (_, b) in &batches {
                topics
                    .entry(b.topic.as_str())
                    .or_default()
                    .push(PartitionProduceData {
                        index: b.partition,
                        records: b.bytes.clone(),
                        ..Default::default()
                    });
            }
            let request = ProduceRequest {
                transactional_id: None,
                acks: self.config.acks.wire(),
                timeout_ms: self
                    .config
                    .request_timeout
                    .as_millis()
                    .min(i32::MAX as u128) as i32,
                topic_data: topics
                    .into_iter()
                    .map(|(name, partition_data)| TopicProduceData {
                        name: name.to_owned(),
                        partition_data,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            };
            let client = self.client.clone();
            let acks = self.config.acks;
            in_flight.push(Box::pin(async move {
                let result = async {
                    let conn = client.broker(leader).await?;
                    let version = conn.pick_version(sluice_protocol::ApiKey::Produce, 3, 9)?;
                    if acks == Acks::None {
                        conn.send_no_response(&request, version).await?;
                        Ok(None)
                    } else {
                        Ok(Some(conn.send_at(&request, version).await?))
                    }
                }
                .await;
                (leader, batches, result)
            }));
        }
    }

    async fn complete(
        &mut self,
        batches: Vec<(u64, SealedBatch)>,
        result: Result<Option<ProduceResponse>>,
    ) {
        let response = match result {
            Ok(r) => r,
            Err(e) => {
                let refresh = e.needs_metadata_refresh();
                for (id, b) in batches {
                    let err = ClientError::kafka(
                        format!("produce to {}-{}", b.topic, b.partition),
                        sluice_protocol::error::codes::NETWORK_EXCEPTION,
                        Some(e.to_string()),
                    );
                    self.retry_or_fail(id, b, err, e.is_retriable());
                }
                if refresh {
                    let _ = self.client.refresh_metadata(None).await;
                }
                return;
            }
        };
        let Some(response) = response else {
            for (_, b) in batches {
                finish(b, -1, -1);
            }
            return;
        };
        let mut refresh = false;
        for (id, b) in batches {
            let part = response
                .responses
                .iter()
                .filter(|t| t.name == b.topic)
                .flat_map(|t| t.partition_responses.iter())
                .find(|p| p.index == b.partition);
            let Some(part) = part else {
                let err = ClientError::Invalid {
                    what: "produce response",
                    reason: format!("no result for {}-{}", b.topic, b.partition),
                };
                self.retry_or_fail(id, b, err, false);
                continue;
            };
            match part.error_code {
                0 => finish(b, part.base_offset, part.log_append_time_ms),
                DUPLICATE_SEQUENCE_NUMBER => finish(b, -1, -1),
                code => {
                    let err = ClientError::kafka(
                        format!("produce to {}-{}", b.topic, b.partition),
                        code,
                        part.error_message.clone(),
                    );
                    refresh |= err.needs_metadata_refresh();
                    // OUT_OF_ORDER_SEQUENCE (45) follows a retried earlier batch.
                    let retriable = err.is_retriable() || code == 45;
                    self.retry_or_fail(id, b, err, retriable);
                }
            }
        }
        if refresh {
            let _ = self.client.refresh_metadata(None).await;
        }
    }

    fn retry_or_fail(&mut self, id: u64, mut b: SealedBatch, err: ClientError, retriable: bool) {
        if retriable && b.attempts < self.config.retries {
            b.attempts += 1;
            b.not_before = Instant::now() + self.config.retry_backoff * b.attempts;
            tracing::debug!(topic = %b.topic, partition = b.partition, attempt = b.attempts, "retrying batch: {err}");
            self.ready.insert(id, b);
            self.retrying += 1;
            return;
        }
        for (w, _) in b.waiters {
            let _ = w.send(Err(for_waiter(&err)));
        }
    }
}

/// A copy of a batch's failure for each record's waiter. Kafka errors keep
/// their context, code and message as they are: wrapping the whole text in
/// a new error would print the context twice.
fn for_waiter(err: &ClientError) -> ClientError {
    match err {
        ClientError::Kafka {
            context,
            code,
            message,
        } => ClientError::Kafka {
            context: context.clone(),
            code: *code,
            message: message.clone(),
        },
        ClientError::Invalid { what, reason } => ClientError::Invalid {
            what,
            reason: reason.clone(),
        },
        other => ClientError::Invalid {
            what: "produce",
            reason: other.to_string(),
        },
    }
}

fn finish(b: SealedBatch, base_offset: i64, log_append_time_ms: i64) {
    for (i, (w, ts)) in b.waiters.into_iter().enumerate() {
        let _ = w.send(Ok(RecordMetadata {
            topic: b.topic.clone(),
            partition: b.partition,
            offset: if base_offset >= 0 {
                base_offset + i as i64
            } else {
                -1
            },
            timestamp_ms: if log_append_time_ms >= 0 {
                log_append_time_ms
            } else {
                ts
            },
        }));
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
