//! Produce (0): append producers' batches to partition logs.
//!
//! Each partition's records must be exactly one whole v2 batch (Kafka's
//! `ProduceRequest.validateRecords`), else INVALID_RECORD and nothing is
//! appended. That batch is validated against its own records and the
//! topic's rules before it reaches the log ([`sluice_records::validate_producer_batch`],
//! Kafka's LogValidator): the header's counts must match the body, record
//! timestamps must lie in the topic's window, and maxTimestamp is corrected
//! to the largest record timestamp. A refused batch fails its partition
//! with the Kafka code, a message, and per-record errors (v8+).
//!
//! Only the partition's leader appends: a partition this broker does not
//! lead (a follower here, led elsewhere, or with no leader) is refused with
//! NOT_LEADER_OR_FOLLOWER, and from v10 (KIP-951) the refusal names the
//! current leader and epoch, with that leader's endpoint in
//! `node_endpoints`, so the producer can go there without asking Metadata.
//!
//! Appends happen when the request is dispatched, in request order, so two
//! pipelined produce requests on one connection land in the order they were
//! sent. The returned future waits for durability (group commit) and for
//! the high watermark, then builds the response. With acks=0 nothing is
//! sent back, but the data is still committed. The commits are started at
//! dispatch on their own tasks, so they finish even if the connection drops
//! the reply future.

use std::future::Future;
use std::sync::Arc;

use bytes::BytesMut;
use futures::future::join_all;
use sluice_log::{AppendInfo, LogError, ProducerError};
use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::produce::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse,
    ProduceRequest, ProduceResponse, TopicProduceResponse,
};
use sluice_records::{
    MAX_DECOMPRESSED_BYTES, RecordsError, ValidationConfig, validate_producer_batch,
};

use super::txn_verify::{self, TxnWrite, Verdict, Verifier};
use super::{RequestContext, cluster, now_ms};
use crate::authz::Authorizer;
use sluice_coordinator::TransactionCoordinator;
use sluice_metadata::MetadataImage;
use sluice_metadata::acl::AclOperation;
use sluice_registry::{Registry, TopicRules};
use sluice_replica::{CommitError, LeaderError, NO_LEADER_EPOCH, Partition, ReplicaManager};

/// Oldest Produce version we accept; v0-2 use message formats 0 and 1,
/// which Kafka 4 also refuses while still advertising them.
const MIN_ACCEPTED_VERSION: i16 = 3;

/// First Produce version that may carry zstd batches (KIP-110); older
/// requests using it get UNSUPPORTED_COMPRESSION_TYPE, as in Kafka.
const MIN_ZSTD_VERSION: i16 = 7;

/// First Produce version whose responses carry `CurrentLeader` and
/// `NodeEndpoints` (KIP-951).
const MIN_LEADER_HINT_VERSION: i16 = 10;

/// Longest an acks=all produce waits for the ISR, whatever its
/// `timeout_ms` says: a bound on how long a request can pin its
/// connection's response queue (Kafka's default is 30 s).
const MAX_ACK_TIMEOUT_MS: u64 = 300_000;

/// One partition's outcome after the append step.
enum Appended {
    /// Appended under the leader epoch given; waiting to become durable
    /// (and, for acks=all, replicated).
    Ok(Arc<Partition>, AppendInfo, i32),
    /// Refused before or during the append.
    Err(Refusal),
    /// A transactional batch waiting for its coordinator (on another
    /// broker) to confirm the transaction, or queued behind one that is;
    /// verified, appended and committed on its own task.
    Deferred(Arc<Partition>),
}

/// Why a partition's records were refused, as the response reports it.
struct Refusal {
    /// Kafka error code.
    error_code: i16,
    /// `error_message` (v8+).
    message: Option<String>,
    /// `record_errors` (v8+): (index of the record in its batch, message).
    record_errors: Vec<(i32, String)>,
    /// `current_leader` (v10+, KIP-951): the leader and epoch to go to
    /// instead, for NOT_LEADER_OR_FOLLOWER.
    current_leader: Option<(i32, i32)>,
}

impl Refusal {
    fn new(error_code: i16, message: Option<String>) -> Refusal {
        Refusal {
            error_code,
            message,
            record_errors: Vec::new(),
            current_leader: None,
        }
    }
}

/// Why a topic's partitions may not be written by this request, if they
/// may not (Kafka's order): a transactional id without WRITE fails every
/// partition, then WRITE on the topic, then internal topics, which only
/// super users may write (the coordinators write them directly).
fn produce_denial(
    authorizer: &Authorizer,
    ctx: &RequestContext,
    topic: &str,
    txn_denied: bool,
) -> Option<(i16, String)> {
    if txn_denied {
        return Some((
            code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
            "WRITE on the transactional id is required".to_owned(),
        ));
    }
    if !authorizer.topic(ctx, AclOperation::Write, topic) {
        return Some((
            code::TOPIC_AUTHORIZATION_FAILED,
            format!("WRITE on topic {topic} is required"),
        ));
    }
    if sluice_metadata::controller::is_internal_topic(topic) && !authorizer.is_super_user(ctx) {
        return Some((
            code::INVALID_TOPIC_EXCEPTION,
            format!("cannot append to internal topic {topic}"),
        ));
    }
    None
}

/// Handles Produce. Appends now; the future commits and answers.
/// Partitions resolve through `replicas` (this broker must lead them) and
/// `image` (what exists, and who leads what this broker does not).
/// Transactional batches are checked against `txn` (KIP-890) first.
// The narrow handles the handler uses plus the authorizer, ctx, header
// and request: one more than clippy's default, kept explicit by design
// (see the module docs of `handlers`).
#[allow(clippy::too_many_arguments)]
pub fn handle(
    replicas: &ReplicaManager,
    image: &MetadataImage,
    txn: &TransactionCoordinator,
    verifier: &Arc<Verifier>,
    authorizer: &Authorizer,
    registry: &Arc<Registry>,
    ctx: &RequestContext,
    header: &RequestHeader,
    request: ProduceRequest,
) -> impl Future<Output = Option<ProduceResponse>> + Send + 'static {
    let version = header.request_api_version;
    let acks = request.acks;
    let transactional_id = request.transactional_id.clone();
    let now = now_ms();
    let mut hints = cluster::LeaderHints::for_listener(&ctx.listener);
    let mut topics: Vec<(String, Vec<(i32, Appended)>)> =
        Vec::with_capacity(request.topic_data.len());
    let ack_timeout_ms = u64::try_from(request.timeout_ms.max(0))
        .unwrap_or(0)
        .min(MAX_ACK_TIMEOUT_MS);
    // Deferred partitions' tasks, in the order they appear in `topics`.
    let mut deferred = Vec::new();
    // Kafka checks the transactional id once for the whole request.
    let txn_denied = transactional_id
        .as_deref()
        .is_some_and(|id| !authorizer.transactional_id(ctx, AclOperation::Write, id));
    for topic in request.topic_data {
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        let denied = produce_denial(authorizer, ctx, &topic.name, txn_denied);
        let schemas = SchemaGate::for_topic(registry, image, &topic.name);
        for p in topic.partition_data {
            let outcome = if let Some((error_code, message)) = &denied {
                Appended::Err(Refusal::new(*error_code, Some(message.clone())))
            } else if version < MIN_ACCEPTED_VERSION {
                Appended::Err(Refusal::new(
                    code::UNSUPPORTED_VERSION,
                    Some("Produce v0-2 are not supported; use v3+".into()),
                ))
            } else if !matches!(acks, -1..=1) {
                Appended::Err(Refusal::new(
                    code::INVALID_REQUIRED_ACKS,
                    Some(format!("acks must be -1, 0 or 1, got {acks}")),
                ))
            } else {
                match replicas.leader_partition(image, &topic.name, p.index, NO_LEADER_EPOCH, true)
                {
                    Err(e) => {
                        let mut refusal = Refusal::new(
                            e.kafka_error_code(),
                            Some(format!("{}-{}: {e}", topic.name, p.index)),
                        );
                        if e == LeaderError::NotLeaderOrFollower
                            && version >= MIN_LEADER_HINT_VERSION
                        {
                            refusal.current_leader =
                                Some(hints.leader_of(replicas, image, &topic.name, p.index));
                        }
                        Appended::Err(refusal)
                    }
                    Ok(partition) => match verify_transactional(
                        txn,
                        verifier,
                        image,
                        &partition,
                        transactional_id.as_deref(),
                        &p.records,
                    ) {
                        Check::Refused(refusal) => Appended::Err(refusal),
                        Check::Verified => {
                            admit(partition, acks, p.records, version, now, schemas.as_ref())
                        }
                        Check::Defer { write, ask } => {
                            let link =
                                verifier.enqueue(&write.topic, write.partition, write.producer_id);
                            let job = DeferredWrite {
                                partition: Arc::clone(&partition),
                                schemas: schemas.clone(),
                                records: p.records,
                                write,
                                ask,
                                acks,
                                version,
                                ack_timeout_ms,
                            };
                            let verifier = Arc::clone(verifier);
                            deferred.push(sluice_runtime::spawn_detached(
                                "produce-verify",
                                job.run(verifier, link),
                            ));
                            Appended::Deferred(partition)
                        }
                    },
                }
            };
            if let Appended::Err(refusal) = &outcome {
                tracing::debug!(
                    peer = %ctx.peer, topic = %topic.name, partition = p.index,
                    error_code = refusal.error_code,
                    "produce refused: {}", refusal.message.as_deref().unwrap_or("")
                );
            }
            partitions.push((p.index, outcome));
        }
        topics.push((topic.name, partitions));
    }

    // Start every commit now, on its own task, rather than when the reply
    // is first polled: the connection may never poll it (a reply write to a
    // client that went away fails and drops the replies queued behind it),
    // and appended data must still become durable and visible. Partitions
    // commit concurrently; group commit merges their fsyncs.
    // acks=all then waits for the ISR to hold the data (the high
    // watermark), for at most the request's timeout.
    let commits: Vec<_> = topics
        .iter()
        .flat_map(|(_, ps)| ps.iter())
        .filter_map(|(_, outcome)| match outcome {
            Appended::Ok(partition, info, leader_epoch) => Some(commit_one(
                partition,
                info,
                *leader_epoch,
                acks,
                ack_timeout_ms,
            )),
            Appended::Err(..) | Appended::Deferred(..) => None,
        })
        .collect();
    let node_endpoints: Vec<NodeEndpoint> = hints
        .into_endpoints()
        .map(|b| NodeEndpoint {
            node_id: b.node_id,
            host: b.host,
            port: b.port,
            rack: b.rack,
        })
        .collect();
    async move {
        let committed = join_all(commits).await;
        let deferred = join_all(deferred).await;
        if acks == 0 {
            return None;
        }
        let mut commit_results = committed.into_iter();
        let mut deferred_results = deferred.into_iter();
        let responses = topics
            .into_iter()
            .map(|(name, partitions)| TopicProduceResponse {
                name,
                partition_responses: partitions
                    .into_iter()
                    .map(|(index, outcome)| {
                        let (outcome, commit) = match outcome {
                            Appended::Deferred(partition) => match deferred_results.next() {
                                Some(Ok(done)) => done,
                                Some(Err(e)) => {
                                    tracing::error!(partition = %partition.tp, "deferred produce task failed: {e}");
                                    (Appended::Err(Refusal::new(code::UNKNOWN_SERVER_ERROR, None)), None)
                                }
                                None => (Appended::Err(Refusal::new(code::UNKNOWN_SERVER_ERROR, None)), None),
                            },
                            Appended::Ok(..) => (outcome, commit_results.next()),
                            Appended::Err(..) => (outcome, None),
                        };
                        (index, outcome, commit)
                    })
                    .map(|(index, outcome, commit)| match outcome {
                        Appended::Ok(partition, info, _) => match commit {
                            Some(Ok(())) => PartitionProduceResponse {
                                index,
                                error_code: code::NONE,
                                base_offset: info.base_offset,
                                log_append_time_ms: info.log_append_time,
                                log_start_offset: partition.log().log_start_offset(),
                                ..Default::default()
                            },
                            Some(Err(CommitError::Log(e))) => {
                                error_response(index, storage_error(&partition, &e))
                            }
                            Some(Err(e)) => {
                                tracing::debug!(partition = %partition.tp, "produce not acknowledged: {e}");
                                error_response(
                                    index,
                                    Refusal::new(e.kafka_error_code(), Some(e.to_string())),
                                )
                            }
                            None => error_response(
                                index,
                                Refusal::new(code::UNKNOWN_SERVER_ERROR, None),
                            ),
                        },
                        Appended::Err(refusal) => error_response(index, refusal),
                        Appended::Deferred(..) => error_response(
                            index,
                            Refusal::new(code::UNKNOWN_SERVER_ERROR, None),
                        ),
                    })
                    .collect(),
                ..Default::default()
            })
            .collect();
        Some(ProduceResponse {
            responses,
            throttle_time_ms: 0,
            node_endpoints,
        })
    }
}

/// Validates `records` and appends them to `partition`, which this broker leads.
fn append_one(
    partition: Arc<Partition>,
    records: bytes::Bytes,
    version: i16,
    now: i64,
    schemas: Option<&SchemaGate>,
) -> Appended {
    if let Err(refusal) = check_produce_records(&records, version) {
        tracing::info!(partition = %partition.tp, error_code = refusal.error_code,
            "records refused: {}", refusal.message.as_deref().unwrap_or(""));
        return Appended::Err(refusal);
    }
    // The log rewrites offsets and epochs in place, and validation
    // corrects maxTimestamp there. The request's buffer is taken over when
    // nothing else holds it (a request for one partition, the usual case);
    // otherwise, or when the schema gate must still read the batch as
    // received, the records are copied.
    let (mut records, received) = match schemas {
        Some(_) => (BytesMut::from(records.as_ref()), Some(records)),
        None => (
            records
                .try_into_mut()
                .unwrap_or_else(|shared| BytesMut::from(shared.as_ref())),
            None,
        ),
    };
    let config = validation_config(&partition, version);
    if let Err(refusal) = validate_batches(&mut records, &config, now) {
        tracing::info!(partition = %partition.tp, error_code = refusal.error_code,
            "batch refused: {}", refusal.message.as_deref().unwrap_or(""));
        return Appended::Err(refusal);
    }
    if let (Some(gate), Some(received)) = (schemas, &received)
        // The batch as received: validation changed only its maxTimestamp,
        // and the records checked here are the same, without a copy.
        && let Err(refusal) = gate.check(received)
    {
        tracing::info!(partition = %partition.tp, "batch refused by schema validation: {}",
            refusal.message.as_deref().unwrap_or(""));
        return Appended::Err(refusal);
    }
    match partition.append(records, now) {
        Ok(info) => {
            let leader_epoch = info.leader_epoch;
            Appended::Ok(partition, info, leader_epoch)
        }
        // A producer retry of a batch already in the log: Kafka answers
        // success with the original offsets, and so do we. The commit
        // step still waits until those offsets are durable and visible.
        Err(LogError::Producer(ProducerError::Duplicate {
            base_offset,
            last_offset,
        })) => {
            tracing::debug!(partition = %partition.tp, base_offset, "duplicate batch from an idempotent producer");
            let info = AppendInfo {
                base_offset,
                last_offset,
                log_append_time: -1,
                log_start_offset: partition.log().log_start_offset(),
                record_count: 0,
                leader_epoch: partition.leader_epoch(),
            };
            let leader_epoch = info.leader_epoch;
            Appended::Ok(partition, info, leader_epoch)
        }
        Err(e) => Appended::Err(storage_error(&partition, &e)),
    }
}

/// A topic's broker-side schema validation (`confluent.*.schema.validation`,
/// [`sluice_registry::validation`]): resolved once per topic of a request,
/// `None` when the topic checks nothing, so the produce path of every
/// other topic does no work for it.
#[derive(Clone)]
struct SchemaGate {
    registry: Arc<Registry>,
    topic: String,
    rules: TopicRules,
}

impl SchemaGate {
    fn for_topic(
        registry: &Arc<Registry>,
        image: &MetadataImage,
        topic: &str,
    ) -> Option<SchemaGate> {
        let rules = TopicRules::from_configs(&image.topics.get(topic)?.configs)?;
        Some(SchemaGate {
            registry: Arc::clone(registry),
            topic: topic.to_owned(),
            rules,
        })
    }

    /// Checks every record of the (already validated) batch: INVALID_RECORD
    /// with one KIP-467 record error per refused record, and nothing of the
    /// batch appended, if any fails.
    fn check(&self, bytes: &bytes::Bytes) -> Result<(), Refusal> {
        let mut refused = Vec::new();
        let mut total = 0;
        for item in sluice_records::Batches::new(bytes) {
            let sluice_records::NextBatch::Complete {
                position, header, ..
            } = item
            else {
                break;
            };
            if header.is_control() {
                continue;
            }
            let batch = bytes.slice(position..position + header.total_size());
            let decoded = sluice_records::decode_records(&batch)
                .map_err(|e| Refusal::new(e.kafka_error_code(), Some(e.to_string())))?;
            total += decoded.len();
            refused.extend(
                self.registry
                    .validate_records(&self.topic, self.rules, &decoded),
            );
        }
        let Some((_, first)) = refused.first() else {
            return Ok(());
        };
        Err(Refusal {
            error_code: code::INVALID_RECORD,
            message: Some(format!(
                "{} of {total} records refused by schema validation on topic {}; the first: {first}",
                refused.len(),
                self.topic
            )),
            record_errors: refused,
            current_leader: None,
        })
    }
}

/// Smallest legacy (magic 0/1) message after its 12-byte offset and size
/// prefix: crc, magic, attributes, key and value lengths. A shorter size
/// cannot be a message, so it is left to the corruption checks.
const LEGACY_RECORD_OVERHEAD_V0_BYTES: usize = 14;

/// The shape Kafka requires of one partition's records in a Produce (v3+),
/// checked before the batch itself (Kafka's `ProduceRequest.validateRecords`):
/// exactly one whole batch, of magic 2. Zero batches, a legacy (magic 0/1)
/// message, or a second batch are INVALID_RECORD with Kafka's wording. zstd
/// before v7, which Kafka checks between magic and batch count, and a
/// corrupt header are left to [`validate_batches`], which reports them
/// with their own codes. The HTTP API builds its own batches and does not
/// come through here.
fn check_produce_records(records: &[u8], version: i16) -> Result<(), Refusal> {
    let refuse = |message: String| Err(Refusal::new(code::INVALID_RECORD, Some(message)));
    if is_legacy_message(records) {
        return refuse(format!(
            "Produce requests with version {version} are only allowed to contain \
             record batches with magic version 2"
        ));
    }
    let mut batches = sluice_records::Batches::without_crc(records);
    let first = match batches.next() {
        None | Some(sluice_records::NextBatch::TruncatedTail { .. }) => {
            return refuse(format!(
                "Produce requests with version {version} must have at least one \
                 record batch per partition"
            ));
        }
        Some(sluice_records::NextBatch::Corrupt { .. }) => return Ok(()),
        Some(sluice_records::NextBatch::Complete { header, .. }) => header,
    };
    if version < MIN_ZSTD_VERSION
        && matches!(first.compression(), Ok(sluice_records::Compression::Zstd))
    {
        return Ok(());
    }
    if let Some(sluice_records::NextBatch::Complete { .. }) = batches.next() {
        return refuse(format!(
            "Produce requests with version {version} are only allowed to contain \
             exactly one record batch per partition"
        ));
    }
    Ok(())
}

/// Whether `records` starts with a whole legacy (magic 0 or 1) message.
fn is_legacy_message(records: &[u8]) -> bool {
    const OFF_SIZE: usize = 8;
    const OFF_MAGIC: usize = 16;
    let Some(&magic) = records.get(OFF_MAGIC) else {
        return false;
    };
    let Some(size) = records
        .get(OFF_SIZE..OFF_SIZE + 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .and_then(|b| usize::try_from(i32::from_be_bytes(b)).ok())
    else {
        return false;
    };
    matches!(magic, 0 | 1)
        && size >= LEGACY_RECORD_OVERHEAD_V0_BYTES
        && sluice_records::batch::LOG_OVERHEAD_BYTES.saturating_add(size) <= records.len()
}

/// The topic rules a produce to `partition` at `version` is checked against.
fn validation_config(partition: &Partition, version: i16) -> ValidationConfig {
    let log = partition.log().config();
    ValidationConfig {
        timestamp_type: log.timestamp_type,
        timestamp_before_max_ms: log.message_timestamp_before_max_ms,
        timestamp_after_max_ms: log.message_timestamp_after_max_ms,
        compacted: log.compact,
        max_batch_bytes: log.max_message_bytes as usize,
        max_decompressed_bytes: MAX_DECOMPRESSED_BYTES,
        zstd_allowed: version >= MIN_ZSTD_VERSION,
    }
}

/// Validates a client's batches for `partition` exactly as Produce does
/// (any codec allowed); shared with the HTTP API so both write paths obey
/// the topic's timestamp and key rules. Err is (Kafka code, message).
pub fn check_client_batches(
    partition: &Partition,
    records: &mut [u8],
    now_ms: i64,
) -> Result<(), (i16, String)> {
    validate_batches(records, &validation_config(partition, i16::MAX), now_ms)
        .map_err(|r| (r.error_code, r.message.unwrap_or_default()))
}

/// Validates every batch in `records` in place; the first bad one refuses all.
fn validate_batches(
    records: &mut [u8],
    config: &ValidationConfig,
    now_ms: i64,
) -> Result<(), Refusal> {
    let mut position = 0;
    let mut batch_index = 0usize;
    while position < records.len() {
        match validate_producer_batch(&mut records[position..], config, now_ms) {
            Ok(validated) => {
                // Checked framing makes this at least a header's worth of progress.
                position += validated.header.total_size();
                batch_index += 1;
            }
            Err(e) => return Err(batch_refusal(batch_index, &e)),
        }
    }
    Ok(())
}

/// How a partition's records stand with KIP-890 before the append.
enum Check {
    /// No transactional batch, or each belongs to its transaction.
    Verified,
    /// Refused.
    Refused(Refusal),
    /// Must wait: for the coordinator on broker `ask` to answer (`None`:
    /// only for an earlier write of the producer, queued, to be appended).
    Defer { write: TxnWrite, ask: Option<i32> },
}

/// KIP-890 part 1: every transactional batch must belong to an ongoing
/// transaction of its producer that includes this partition
/// ([`txn_verify`]). A producer with a transaction already open here at
/// this epoch needs no check; one with a write still queued queues behind
/// it. Framing errors are left to the append, which reports them.
fn verify_transactional(
    txn: &TransactionCoordinator,
    verifier: &Verifier,
    image: &MetadataImage,
    partition: &Partition,
    transactional_id: Option<&str>,
    records: &[u8],
) -> Check {
    for batch in sluice_records::Batches::without_crc(records) {
        let sluice_records::NextBatch::Complete { header, .. } = batch else {
            break;
        };
        if !header.is_transactional() {
            continue;
        }
        let write = TxnWrite {
            transactional_id: transactional_id.map(str::to_owned),
            producer_id: header.producer_id,
            producer_epoch: header.producer_epoch,
            topic: partition.tp.topic.clone(),
            partition: partition.tp.partition,
        };
        if verifier.is_queued(&write.topic, write.partition, write.producer_id) {
            return Check::Defer { write, ask: None };
        }
        if partition
            .log()
            .has_ongoing_transaction(header.producer_id, header.producer_epoch)
        {
            continue;
        }
        match txn_verify::verify_here(txn, image, &write) {
            Verdict::Verified => {}
            Verdict::Refused(c, message) => return Check::Refused(Refusal::new(c, Some(message))),
            Verdict::AskCoordinator(node) => {
                return Check::Defer {
                    write,
                    ask: Some(node),
                };
            }
        }
    }
    Check::Verified
}

/// A transactional write waiting on its coordinator (or on an earlier
/// write of its producer).
struct DeferredWrite {
    partition: Arc<Partition>,
    schemas: Option<SchemaGate>,
    records: bytes::Bytes,
    write: TxnWrite,
    ask: Option<i32>,
    acks: i16,
    version: i16,
    ack_timeout_ms: u64,
}

impl DeferredWrite {
    /// Waits its turn, verifies, appends, lets the next write go, then
    /// commits. Returns the outcome and, if appended, the commit's result.
    async fn run(
        self,
        verifier: Arc<Verifier>,
        mut link: txn_verify::Link,
    ) -> (Appended, Option<Result<(), CommitError>>) {
        link.wait_turn().await;
        let log = self.partition.log();
        let verified =
            if log.has_ongoing_transaction(self.write.producer_id, self.write.producer_epoch) {
                Ok(())
            } else if let Some(node) = self.ask {
                txn_verify::verify_remote(&verifier.peers, node, &self.write).await
            } else {
                // Queued behind a write that was refused: this one needs its
                // own answer, from whoever coordinates the id now.
                let image = verifier.peers.image();
                match txn_verify::verify_here(verifier.txn(), &image, &self.write) {
                    Verdict::Verified => Ok(()),
                    Verdict::Refused(c, m) => Err((c, m)),
                    Verdict::AskCoordinator(node) => {
                        txn_verify::verify_remote(&verifier.peers, node, &self.write).await
                    }
                }
            };
        let outcome = match verified {
            Ok(()) => admit(
                Arc::clone(&self.partition),
                self.acks,
                self.records,
                self.version,
                now_ms(),
                self.schemas.as_ref(),
            ),
            Err((c, message)) => Appended::Err(Refusal::new(c, Some(message))),
        };
        drop(link);
        let commit = match &outcome {
            Appended::Ok(partition, info, leader_epoch) => Some(
                commit_one(
                    partition,
                    info,
                    *leader_epoch,
                    self.acks,
                    self.ack_timeout_ms,
                )
                .await,
            ),
            _ => None,
        };
        (outcome, commit)
    }
}

/// Starts making an append durable (and, for acks=all, replicated); the
/// local commit runs on its own task from now on.
fn commit_one(
    partition: &Arc<Partition>,
    info: &AppendInfo,
    leader_epoch: i32,
    acks: i16,
    ack_timeout_ms: u64,
) -> impl Future<Output = Result<(), CommitError>> + Send + use<> {
    let end = info.last_offset + 1;
    let local = partition.commit_local(end);
    let partition = Arc::clone(partition);
    async move {
        local.await?;
        if acks == -1 {
            partition
                .wait_replicated(end, leader_epoch, ack_timeout_ms)
                .await?;
        }
        Ok(())
    }
}

/// The min ISR check for acks=all, then the append.
fn admit(
    partition: Arc<Partition>,
    acks: i16,
    records: bytes::Bytes,
    version: i16,
    now: i64,
    schemas: Option<&SchemaGate>,
) -> Appended {
    match (acks, partition.check_min_isr()) {
        (-1, Err((isr, min))) => Appended::Err(Refusal::new(
            code::NOT_ENOUGH_REPLICAS,
            Some(format!(
                "{}: the ISR has {isr} members, fewer than min.insync.replicas {min}",
                partition.tp
            )),
        )),
        _ => append_one(partition, records, version, now, schemas),
    }
}

fn batch_refusal(batch_index: usize, e: &RecordsError) -> Refusal {
    Refusal {
        error_code: e.kafka_error_code(),
        message: Some(format!("batch {batch_index}: {e}")),
        record_errors: e.record_errors(),
        current_leader: None,
    }
}

fn storage_error(partition: &Partition, e: &LogError) -> Refusal {
    let error_code = e.kafka_error_code();
    if matches!(e, LogError::Failed { .. }) {
        // Already offline: the failure and the recovery are logged once each.
        tracing::debug!(partition = %partition.tp, "append refused: {e}");
    } else if error_code == code::KAFKA_STORAGE_ERROR {
        tracing::error!(partition = %partition.tp, "append failed: {e}");
    } else {
        tracing::info!(partition = %partition.tp, "batch refused: {e}");
    }
    Refusal::new(error_code, Some(e.to_string()))
}

fn error_response(index: i32, refusal: Refusal) -> PartitionProduceResponse {
    PartitionProduceResponse {
        index,
        error_code: refusal.error_code,
        base_offset: -1,
        log_append_time_ms: -1,
        log_start_offset: -1,
        error_message: refusal.message,
        record_errors: refusal
            .record_errors
            .into_iter()
            .map(|(batch_index, message)| BatchIndexAndErrorMessage {
                batch_index,
                batch_index_error_message: Some(message),
            })
            .collect(),
        current_leader: refusal.current_leader.map_or_else(
            LeaderIdAndEpoch::default,
            |(leader_id, leader_epoch)| LeaderIdAndEpoch {
                leader_id,
                leader_epoch,
            },
        ),
    }
}

#[cfg(test)]
#[path = "produce_tests.rs"]
mod tests;

#[cfg(test)]
mod validation_tests {
    use bytes::Bytes;
    use sluice_records::{BatchBuilder, BatchHeader, Compression, NewRecord, TimestampType};

    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    fn config(zstd_allowed: bool) -> ValidationConfig {
        ValidationConfig {
            timestamp_type: TimestampType::CreateTime,
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: 3_600_000,
            compacted: false,
            max_batch_bytes: 1 << 20,
            max_decompressed_bytes: MAX_DECOMPRESSED_BYTES,
            zstd_allowed,
        }
    }

    fn batch(codec: Compression, timestamps: &[i64]) -> BytesMut {
        let mut b = BatchBuilder::new().compression(codec);
        for &ts in timestamps {
            b.push(NewRecord {
                key: Some(Bytes::from_static(b"k")),
                value: Some(Bytes::from_static(b"v")),
                headers: vec![],
                timestamp_ms: ts,
            });
        }
        b.build().expect("batch builds")
    }

    /// Sets maxTimestamp to -1 and re-seals the CRC: what some clients send.
    fn lie_about_max_timestamp(b: &mut BytesMut) {
        b[35..43].copy_from_slice(&(-1i64).to_be_bytes());
        let crc = sluice_records::batch::compute_crc(b);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
    }

    #[test]
    fn every_batch_of_a_partition_gets_its_true_max_timestamp() {
        let mut first = batch(Compression::None, &[NOW - 10, NOW - 20]);
        let mut second = batch(Compression::Lz4, &[NOW - 5]);
        lie_about_max_timestamp(&mut first);
        lie_about_max_timestamp(&mut second);
        let mut records = first.clone();
        records.extend_from_slice(&second);
        validate_batches(&mut records, &config(true), NOW).unwrap_or_else(|r| {
            panic!("refused: {:?}", r.message);
        });
        let h1 = BatchHeader::parse(&records).expect("header");
        let h2 = BatchHeader::parse(&records[first.len()..]).expect("header");
        assert_eq!(h1.max_timestamp, NOW - 10);
        assert_eq!(h2.max_timestamp, NOW - 5);
        sluice_records::check_batch(&records[first.len()..]).expect("CRC valid");
    }

    #[test]
    fn a_bad_second_batch_refuses_the_partition_and_names_the_batch() {
        let mut records = batch(Compression::None, &[NOW]);
        records.extend_from_slice(&batch(Compression::None, &[NOW + 2 * 3_600_000]));
        let refusal = validate_batches(&mut records, &config(true), NOW)
            .expect_err("future timestamp refused");
        assert_eq!(refusal.error_code, code::INVALID_TIMESTAMP);
        assert!(
            refusal
                .message
                .as_deref()
                .is_some_and(|m| m.starts_with("batch 1:"))
        );
        let response = error_response(0, refusal);
        assert_eq!(response.record_errors.len(), 1);
        assert_eq!(response.record_errors[0].batch_index, 0);
        assert!(
            response.record_errors[0]
                .batch_index_error_message
                .is_some()
        );
    }

    #[test]
    fn zstd_before_produce_v7_is_unsupported_compression_type() {
        let mut records = batch(Compression::Zstd, &[NOW]);
        let refusal =
            validate_batches(&mut records, &config(false), NOW).expect_err("zstd refused");
        assert_eq!(refusal.error_code, code::UNSUPPORTED_COMPRESSION_TYPE);
        let mut records = batch(Compression::Zstd, &[NOW]);
        assert!(validate_batches(&mut records, &config(true), NOW).is_ok());
    }

    #[test]
    fn a_batch_claiming_more_records_than_it_holds_is_invalid_record() {
        let mut records = batch(Compression::None, &[NOW]);
        // recordCount and lastOffsetDelta agree with each other, not with the body.
        records[23..27].copy_from_slice(&(i32::MAX - 1).to_be_bytes());
        records[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
        let crc = sluice_records::batch::compute_crc(&records);
        records[17..21].copy_from_slice(&crc.to_be_bytes());
        let refusal = validate_batches(&mut records, &config(true), NOW).expect_err("refused");
        assert_eq!(refusal.error_code, code::INVALID_RECORD);
    }
}
