//! The transaction coordinator (KIP-98, KIP-360): transactional ids, their
//! producer ids and epochs, and the two-phase commit that writes commit or
//! abort markers to every partition of a transaction.
//!
//! Owns the `__transaction_state` partitions this broker leads and the
//! in-memory state replayed from them. It writes markers on the partitions
//! this broker leads itself and sends WriteTxnMarkers to the leaders of
//! the others ([`markers`]). A group's offsets join a transaction as the
//! group's `__consumer_offsets` partition (AddOffsetsToTxn); the group
//! coordinator holds them pending until that partition's marker.
//!
//! Ownership (Kafka's rule): a transactional id is coordinated by the
//! leader of partition `partition_for(id)` of `__transaction_state`. The
//! coordinator loads a partition when this broker becomes its leader
//! (finishing any `Prepare*` transaction found there) and drops its ids when
//! it stops leading ([`TransactionCoordinator::follow`], driven by committed
//! metadata). Requests for an id of a partition not owned here answer
//! NOT_COORDINATOR, and of one still loading COORDINATOR_LOAD_IN_PROGRESS.
//!
//! Layout:
//! - [`state_log`]: the record format of `__transaction_state`.
//!
//! Concurrency: a std `Mutex` over the map from transactional id to slot
//! (held only to look up or insert), and per slot a tokio `Mutex` over its
//! metadata, held across the awaits of one operation (persisting, writing
//! markers) so operations on one transactional id are serial. Lock order:
//! the map, then a slot; never two slots.
//!
//! Durability: every state change is appended to the id's partition of
//! `__transaction_state` and committed (fsynced under group commit) before
//! it takes effect or is acknowledged. A commit is decided once
//! `PrepareCommit` is durable; after a crash, load finishes every `Prepare*`
//! transaction (markers are idempotent) and the expiry task aborts open
//! transactions past their timeout.

pub mod markers;
pub mod state_log;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use sluice_protocol::error::codes as code;
use sluice_records::{Batches, NextBatch, decode_records};
use sluice_runtime::{Tasks, spawn_detached};
use tokio::sync::Notify;

use sluice_metadata::MetadataImage;

use crate::config::TransactionConfig;
use crate::group::offsets_log::OFFSETS_TOPIC;
use crate::group::{GroupCoordinator, OffsetToCommit};
use crate::internal_topics::InternalTopics;
use crate::ownership::Ownership;
use crate::producer_ids::ProducerIdManager;
use markers::{Marker, MarkerSender};
use state_log::{
    MAX_TRANSACTIONAL_ID_BYTES, PendingOffset, TRANSACTION_STATE_PARTITIONS,
    TRANSACTION_STATE_TOPIC, TxnRecord, partition_for,
};

/// Epochs stop short of `i16::MAX` so a bump can always be expressed; past
/// this the coordinator moves the transactional id to a fresh producer id.
const MAX_PRODUCER_EPOCH: i16 = i16::MAX - 1;

/// A transaction's state, Kafka's names and transitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnState {
    /// No transaction open.
    Empty,
    /// Partitions or offsets were added; data may be in the logs.
    Ongoing,
    /// Commit decided; markers being written.
    PrepareCommit,
    /// Abort decided; markers being written.
    PrepareAbort,
    /// Last transaction committed.
    CompleteCommit,
    /// Last transaction aborted.
    CompleteAbort,
    /// The transactional id expired.
    Dead,
}

impl TxnState {
    /// Kafka's name, as DescribeTransactions and ListTransactions report it.
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
        }
    }

    fn parse(name: &str) -> Option<TxnState> {
        Some(match name {
            "Empty" => TxnState::Empty,
            "Ongoing" => TxnState::Ongoing,
            "PrepareCommit" => TxnState::PrepareCommit,
            "PrepareAbort" => TxnState::PrepareAbort,
            "CompleteCommit" => TxnState::CompleteCommit,
            "CompleteAbort" => TxnState::CompleteAbort,
            "Dead" => TxnState::Dead,
            _ => return None,
        })
    }

    /// Every state name (ListTransactions filters).
    pub const NAMES: [&'static str; 7] = [
        "Empty",
        "Ongoing",
        "PrepareCommit",
        "PrepareAbort",
        "CompleteCommit",
        "CompleteAbort",
        "Dead",
    ];
}

/// One transactional id's state.
#[derive(Debug, Clone)]
pub struct TxnMetadata {
    /// Current producer id.
    pub producer_id: i64,
    /// Current epoch.
    pub producer_epoch: i16,
    /// Producer id before the last bump (-1 if none).
    pub last_producer_id: i64,
    /// Epoch before the last bump (-1 if none, or fenced by a timeout).
    pub last_producer_epoch: i16,
    /// The producer's `transaction.timeout.ms`.
    pub timeout_ms: i32,
    /// State.
    pub state: TxnState,
    /// Partitions in the open transaction.
    pub partitions: BTreeSet<(String, i32)>,
    /// Groups whose offsets are in the open transaction.
    pub groups: BTreeSet<String>,
    /// Offsets to commit with the transaction, by (group, topic, partition).
    pub pending_offsets: BTreeMap<(String, String, i32), PendingOffset>,
    /// Start of the open transaction (ms), -1 if none.
    pub start_ms: i64,
    /// Last state change (ms).
    pub last_update_ms: i64,
}

impl TxnMetadata {
    fn to_record(&self) -> TxnRecord {
        TxnRecord {
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            last_producer_id: self.last_producer_id,
            last_producer_epoch: self.last_producer_epoch,
            timeout_ms: self.timeout_ms,
            state: self.state.name().to_owned(),
            partitions: self.partitions.iter().cloned().collect(),
            groups: self.groups.iter().cloned().collect(),
            pending_offsets: self.pending_offsets.values().cloned().collect(),
            start_ms: self.start_ms,
            last_update_ms: self.last_update_ms,
        }
    }

    fn from_record(r: TxnRecord) -> Option<TxnMetadata> {
        Some(TxnMetadata {
            producer_id: r.producer_id,
            producer_epoch: r.producer_epoch,
            last_producer_id: r.last_producer_id,
            last_producer_epoch: r.last_producer_epoch,
            timeout_ms: r.timeout_ms,
            state: TxnState::parse(&r.state)?,
            partitions: r.partitions.into_iter().collect(),
            groups: r.groups.into_iter().collect(),
            pending_offsets: r
                .pending_offsets
                .into_iter()
                .map(|o| ((o.group.clone(), o.topic.clone(), o.partition), o))
                .collect(),
            start_ms: r.start_ms,
            last_update_ms: r.last_update_ms,
        })
    }

    /// When the open transaction times out (ms), if one is open.
    fn deadline_ms(&self) -> Option<i64> {
        (self.state == TxnState::Ongoing)
            .then(|| self.start_ms.saturating_add(i64::from(self.timeout_ms)))
    }
}

/// What a produce needs to verify a transactional batch (KIP-890 part 1)
/// without waiting for an operation in progress on the id: the last durable
/// state, republished after every successful persist.
#[derive(Debug, Clone)]
struct Published {
    producer_id: i64,
    producer_epoch: i16,
    state: TxnState,
    partitions: BTreeSet<(String, i32)>,
}

impl Published {
    fn of(meta: &TxnMetadata) -> Published {
        Published {
            producer_id: meta.producer_id,
            producer_epoch: meta.producer_epoch,
            state: meta.state,
            // Only an open transaction's partitions can be written to.
            partitions: if meta.state == TxnState::Ongoing {
                meta.partitions.clone()
            } else {
                BTreeSet::new()
            },
        }
    }
}

/// A transactional id and its state.
#[derive(Debug)]
pub struct TxnSlot {
    /// The transactional id.
    pub id: String,
    /// `None` until the first InitProducerId persists an entry.
    meta: tokio::sync::Mutex<Option<TxnMetadata>>,
    /// The durable state produce verification reads. A std mutex, held
    /// only to copy in or read a few fields, never across an await.
    published: Mutex<Option<Published>>,
}

impl TxnSlot {
    fn new(id: &str, meta: Option<TxnMetadata>) -> TxnSlot {
        TxnSlot {
            id: id.to_owned(),
            published: Mutex::new(meta.as_ref().map(Published::of)),
            meta: tokio::sync::Mutex::new(meta),
        }
    }

    fn publish(&self, meta: &TxnMetadata) {
        *self.published.lock().unwrap_or_else(|p| p.into_inner()) = Some(Published::of(meta));
    }
}

/// Why a transactional batch was refused by produce verification; each
/// maps to a code Produce can carry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// No transactional id in the request, or one the coordinator does not
    /// know, or it belongs to another producer id.
    #[error("producer id {producer_id} has no transactional id {transactional_id:?} here")]
    UnknownProducer {
        /// From the request.
        transactional_id: Option<String>,
        /// From the batch.
        producer_id: i64,
    },
    /// The batch's epoch is not the transaction's (fenced or from the future).
    #[error("producer epoch {epoch} is not the transaction's current epoch {current}")]
    Epoch {
        /// From the batch.
        epoch: i16,
        /// The coordinator's.
        current: i16,
    },
    /// The transaction is being committed or aborted; retry.
    #[error("the transaction is completing")]
    Completing,
    /// The partition is not part of an ongoing transaction of this producer.
    #[error("{topic}-{partition} is not part of an ongoing transaction")]
    NotInTransaction {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
    },
}

impl VerifyError {
    /// The Produce error code, as Kafka answers: INVALID_TXN_STATE for a
    /// batch outside an ongoing transaction (UnifiedLog's "Record was not
    /// part of an ongoing transaction"); NOT_ENOUGH_REPLICAS, retriable, while
    /// the transaction completes (Kafka's conversion of the coordinator's
    /// CONCURRENT_TRANSACTIONS for produce).
    pub fn code(&self) -> i16 {
        match self {
            VerifyError::UnknownProducer { .. } => code::INVALID_PRODUCER_ID_MAPPING,
            VerifyError::Epoch { .. } => code::INVALID_PRODUCER_EPOCH,
            VerifyError::Completing => code::NOT_ENOUGH_REPLICAS,
            VerifyError::NotInTransaction { .. } => code::INVALID_TXN_STATE,
        }
    }
}

impl TxnSlot {
    /// A copy of the current state, for describe/list (waits for any
    /// operation in progress on this id).
    pub async fn snapshot(&self) -> Option<TxnMetadata> {
        self.meta.lock().await.clone()
    }
}

/// How a request's producer id and epoch compare with the transaction's.
fn check_producer(meta: &TxnMetadata, producer_id: i64, epoch: i16) -> Result<(), TxnError> {
    if producer_id != meta.producer_id {
        return Err(TxnError::InvalidProducerIdMapping);
    }
    if epoch != meta.producer_epoch {
        return Err(TxnError::Fenced);
    }
    Ok(())
}

/// Why a transactional request failed. Handlers turn it into a code for
/// the request's version ([`TxnError::code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnError {
    /// A newer producer instance (or a timeout) bumped the epoch.
    Fenced,
    /// The producer id does not belong to this transactional id.
    InvalidProducerIdMapping,
    /// The request does not fit the transaction's state.
    InvalidTxnState,
    /// A commit or abort is still being completed; retry.
    Concurrent,
    /// The transactional id is unknown.
    NotFound,
    /// The timeout is out of range.
    InvalidTimeout,
    /// The id is empty or too long.
    InvalidRequest,
    /// `__transaction_state` could not be written or created; retry.
    NotAvailable,
    /// Another broker leads the id's partition of `__transaction_state`.
    NotCoordinator,
    /// The id's partition is being loaded here; retry.
    LoadInProgress,
}

impl TxnError {
    /// The Kafka code. `fenced_as_epoch` selects INVALID_PRODUCER_EPOCH for
    /// request versions older than KIP-588's PRODUCER_FENCED.
    pub fn code(self, fenced_as_epoch: bool) -> i16 {
        match self {
            TxnError::Fenced if fenced_as_epoch => code::INVALID_PRODUCER_EPOCH,
            TxnError::Fenced => code::PRODUCER_FENCED,
            TxnError::InvalidProducerIdMapping => code::INVALID_PRODUCER_ID_MAPPING,
            TxnError::InvalidTxnState => code::INVALID_TXN_STATE,
            TxnError::Concurrent => code::CONCURRENT_TRANSACTIONS,
            TxnError::NotFound => code::TRANSACTIONAL_ID_NOT_FOUND,
            TxnError::InvalidTimeout => code::INVALID_TRANSACTION_TIMEOUT,
            TxnError::InvalidRequest => code::INVALID_REQUEST,
            TxnError::NotAvailable => code::COORDINATOR_NOT_AVAILABLE,
            TxnError::NotCoordinator => code::NOT_COORDINATOR,
            TxnError::LoadInProgress => code::COORDINATOR_LOAD_IN_PROGRESS,
        }
    }
}

/// The transaction coordinator.
pub struct TransactionCoordinator {
    /// Transactional id -> slot. Held only to look up or insert.
    txns: Mutex<HashMap<String, Arc<TxnSlot>>>,
    /// Open transactions' deadlines (ms) by id, for the expiry task.
    deadlines: Mutex<HashMap<String, i64>>,
    /// Wakes the expiry task when a deadline is added or moves earlier.
    expiry_wake: Arc<Notify>,
    /// Serialises creation of `__transaction_state`.
    create: tokio::sync::Mutex<()>,
    config: TransactionConfig,
    /// `__transaction_state`, and the data partitions markers go to.
    topics: InternalTopics,
    /// Offsets a committed transaction applies.
    groups: Arc<GroupCoordinator>,
    /// Producer ids for InitProducerId.
    producer_ids: Arc<ProducerIdManager>,
    /// The `__transaction_state` partitions this broker coordinates.
    ownership: Ownership,
    /// Sends markers to the leaders of partitions this broker does not
    /// lead; unset on a broker alone, where every partition is local.
    marker_sender: OnceLock<Arc<dyn MarkerSender>>,
    /// Set by [`TransactionCoordinator::load`]; before it, metadata is not
    /// followed (load reads the image current then).
    started: OnceLock<()>,
    /// Serialises loading and unloading partitions, and holds the metadata
    /// offset of the newest image followed, so an older image never undoes
    /// a newer one. Held across a replay, never across an await.
    followed_to: Mutex<i64>,
}

impl std::fmt::Debug for TransactionCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionCoordinator")
            .field("transactional_ids", &self.map().len())
            .finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    sluice_metadata::now_ms()
}

impl TransactionCoordinator {
    /// An empty coordinator; [`TransactionCoordinator::load`] fills it.
    pub fn new(
        config: TransactionConfig,
        topics: InternalTopics,
        groups: Arc<GroupCoordinator>,
        producer_ids: Arc<ProducerIdManager>,
    ) -> TransactionCoordinator {
        TransactionCoordinator {
            txns: Mutex::new(HashMap::new()),
            deadlines: Mutex::new(HashMap::new()),
            expiry_wake: Arc::new(Notify::new()),
            create: tokio::sync::Mutex::new(()),
            config,
            topics,
            groups,
            producer_ids,
            ownership: Ownership::default(),
            marker_sender: OnceLock::new(),
            started: OnceLock::new(),
            followed_to: Mutex::new(-1),
        }
    }

    /// Is this broker the coordinator of transactional id `id`, with its
    /// partition loaded?
    pub fn check_coordinator(&self, id: &str) -> Result<(), TxnError> {
        self.ownership
            .check(partition_for(id))
            .map_err(|c| match c {
                code::COORDINATOR_LOAD_IN_PROGRESS => TxnError::LoadInProgress,
                _ => TxnError::NotCoordinator,
            })
    }

    /// Sends markers for partitions led elsewhere through `sender` from
    /// now on. A second call is ignored.
    pub fn set_marker_sender(&self, sender: Arc<dyn MarkerSender>) {
        let _ = self.marker_sender.set(sender);
    }

    /// This broker's `node.id`.
    pub fn node_id(&self) -> i32 {
        self.topics.node_id()
    }

    /// The `__transaction_state` partitions this broker coordinates.
    pub fn ownership(&self) -> &Ownership {
        &self.ownership
    }

    /// The producer id manager InitProducerId draws from.
    pub fn producer_ids(&self) -> &Arc<ProducerIdManager> {
        &self.producer_ids
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<TxnSlot>>> {
        self.txns.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn deadlines(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        self.deadlines.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot by id.
    pub fn get(&self, id: &str) -> Option<Arc<TxnSlot>> {
        self.map().get(id).cloned()
    }

    /// Every slot.
    pub fn all(&self) -> Vec<Arc<TxnSlot>> {
        self.map().values().cloned().collect()
    }

    fn get_or_create(&self, id: &str) -> Arc<TxnSlot> {
        Arc::clone(
            self.map()
                .entry(id.to_owned())
                .or_insert_with(|| Arc::new(TxnSlot::new(id, None))),
        )
    }

    fn set_deadline(&self, id: &str, meta: &TxnMetadata) {
        match meta.deadline_ms() {
            Some(d) => {
                self.deadlines().insert(id.to_owned(), d);
                self.expiry_wake.notify_one();
            }
            None => {
                self.deadlines().remove(id);
            }
        }
    }

    /// Creates `__transaction_state` if it does not exist yet.
    pub async fn ensure_topic(&self) -> Result<(), TxnError> {
        // One creator at a time; the others find the topic made.
        let _guard = self.create.lock().await;
        self.topics
            .ensure(TRANSACTION_STATE_TOPIC, TRANSACTION_STATE_PARTITIONS)
            .await
            .map_err(|_| TxnError::NotAvailable)
    }

    /// Appends `meta` (or a tombstone) for `id` and waits until it is durable.
    async fn persist(&self, id: &str, meta: &mut TxnMetadata) -> Result<(), TxnError> {
        meta.last_update_ms = now_ms();
        let partition = self
            .topics
            .partition(TRANSACTION_STATE_TOPIC, partition_for(id))
            .ok_or(TxnError::NotAvailable)?;
        let batch =
            state_log::batch(id, Some(&meta.to_record()), meta.last_update_ms).map_err(|e| {
                tracing::error!(
                    transactional_id = id,
                    "cannot encode transaction state: {e}"
                );
                TxnError::NotAvailable
            })?;
        let info = partition.append(batch, meta.last_update_ms).map_err(|e| {
            tracing::error!(
                transactional_id = id,
                "cannot append transaction state: {e}"
            );
            TxnError::NotAvailable
        })?;
        partition.commit(info.last_offset + 1).await.map_err(|e| {
            tracing::error!(transactional_id = id, "cannot fsync transaction state: {e}");
            TxnError::NotAvailable
        })?;
        self.set_deadline(id, meta);
        if let Some(slot) = self.get(id) {
            slot.publish(meta);
        }
        Ok(())
    }

    /// KIP-890 part 1: may `producer_id` at `producer_epoch` append a
    /// transactional batch to `topic`-`partition`? Only if the request's
    /// transactional id has an Ongoing transaction with that producer id
    /// and epoch that includes the partition (AddPartitionsToTxn first).
    /// Otherwise a client could write transactional data no coordinator
    /// will ever mark, pinning the partition's last stable offset forever.
    /// Reads the last durable state, so it never waits; markers, which the
    /// coordinator writes with `AppendOrigin::Coordinator`, do not come here.
    pub fn verify_transactional_append(
        &self,
        transactional_id: Option<&str>,
        producer_id: i64,
        producer_epoch: i16,
        topic: &str,
        partition: i32,
    ) -> Result<(), VerifyError> {
        let unknown = || VerifyError::UnknownProducer {
            transactional_id: transactional_id.map(str::to_owned),
            producer_id,
        };
        let slot = transactional_id
            .filter(|id| !id.is_empty())
            .and_then(|id| self.get(id))
            .ok_or_else(unknown)?;
        let published = slot.published.lock().unwrap_or_else(|p| p.into_inner());
        let txn = published.as_ref().ok_or_else(unknown)?;
        if txn.producer_id != producer_id {
            return Err(unknown());
        }
        if txn.producer_epoch != producer_epoch {
            return Err(VerifyError::Epoch {
                epoch: producer_epoch,
                current: txn.producer_epoch,
            });
        }
        match txn.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => Err(VerifyError::Completing),
            TxnState::Ongoing if txn.partitions.contains(&(topic.to_owned(), partition)) => Ok(()),
            _ => Err(VerifyError::NotInTransaction {
                topic: topic.to_owned(),
                partition,
            }),
        }
    }

    /// Writes `marker` for the transaction to each of its partitions, on
    /// this broker for those it leads and by WriteTxnMarkers for the rest,
    /// and waits until every marker is on its ISR. A partition whose leader
    /// moved or is unreachable is retried against the newest metadata for
    /// up to [`MARKER_TIMEOUT_MS`]; a deleted topic has nothing left to mark.
    async fn write_markers(
        &self,
        id: &str,
        meta: &TxnMetadata,
        commit: bool,
    ) -> Result<(), TxnError> {
        let marker = Marker {
            producer_id: meta.producer_id,
            producer_epoch: meta.producer_epoch,
            commit,
            coordinator_epoch: self
                .topics
                .partition(TRANSACTION_STATE_TOPIC, partition_for(id))
                .map_or(0, |p| p.leader_epoch().max(0)),
        };
        let deadline = tokio::time::Instant::now() + Duration::from_millis(MARKER_TIMEOUT_MS);
        let mut pending: BTreeSet<(String, i32)> = meta.partitions.clone();
        loop {
            let image = self.topics.image();
            let mut local = Vec::new();
            let mut remote: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
            pending.retain(|(topic, index)| {
                let Some(p) = image
                    .topics
                    .get(topic)
                    .and_then(|t| t.partitions.get(index))
                else {
                    return false;
                };
                if p.leader == self.topics.node_id() {
                    local.push((topic.clone(), *index));
                } else if p.leader >= 0 {
                    remote
                        .entry(p.leader)
                        .or_default()
                        .push((topic.clone(), *index));
                }
                true
            });
            let local_writes = local.iter().map(|(topic, index)| async move {
                let partition = self.topics.partition(topic, *index);
                let r = markers::write_local(partition, &self.groups, marker).await;
                vec![((topic.clone(), *index), r.err().unwrap_or(code::NONE))]
            });
            let remote_sends = remote.into_iter().map(|(node, partitions)| async move {
                let Some(sender) = self.marker_sender.get() else {
                    tracing::warn!(
                        node,
                        "no marker sender on this broker; cannot reach another leader"
                    );
                    return Vec::new();
                };
                match sender.send(node, marker, partitions).await {
                    Ok(results) => results,
                    Err(e) => {
                        tracing::info!(
                            node,
                            producer_id = marker.producer_id,
                            "cannot send transaction markers: {e}; retrying"
                        );
                        Vec::new()
                    }
                }
            });
            let (local_results, remote_results) = futures::future::join(
                futures::future::join_all(local_writes),
                futures::future::join_all(remote_sends),
            )
            .await;
            for (tp, c) in local_results.into_iter().chain(remote_results).flatten() {
                if c == code::NONE {
                    pending.remove(&tp);
                } else {
                    tracing::debug!(partition = ?tp, producer_id = marker.producer_id, code = c, "transaction marker not written; retrying");
                }
            }
            if pending.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(transactional_id = id, partitions = ?pending, "transaction markers not written in time; the completion is retried");
                return Err(TxnError::NotAvailable);
            }
            tokio::time::sleep_until(
                (tokio::time::Instant::now() + Duration::from_millis(MARKER_RETRY_BACKOFF_MS))
                    .min(deadline),
            )
            .await;
        }
    }

    /// Second phase: markers, offsets, then `Complete*`. `meta` is in a
    /// `Prepare*` state, durable. A completion that fails is retried by
    /// the expiry task, so a transaction whose client gave up still ends.
    async fn complete(&self, id: &str, meta: &mut TxnMetadata) -> Result<(), TxnError> {
        let result = self.complete_once(id, meta).await;
        if result.is_err() {
            self.deadlines()
                .insert(id.to_owned(), now_ms() + EXPIRY_RETRY_MS);
            self.expiry_wake.notify_one();
        }
        result
    }

    async fn complete_once(&self, id: &str, meta: &mut TxnMetadata) -> Result<(), TxnError> {
        let commit = match meta.state {
            TxnState::PrepareCommit => true,
            TxnState::PrepareAbort => false,
            _ => return Ok(()),
        };
        self.write_markers(id, meta, commit).await?;
        // Offsets of a transaction prepared before the group coordinator
        // held them (older Sluice kept them in the transaction's record);
        // new transactions carry none here.
        if commit {
            let mut by_group: BTreeMap<&str, Vec<OffsetToCommit>> = BTreeMap::new();
            for o in meta.pending_offsets.values() {
                by_group.entry(&o.group).or_default().push(OffsetToCommit {
                    topic: o.topic.clone(),
                    partition: o.partition,
                    offset: o.offset,
                    leader_epoch: o.leader_epoch,
                    metadata: o.metadata.clone(),
                });
            }
            for (group, offsets) in by_group {
                self.groups
                    .commit_transactional_offsets(group, offsets)
                    .await
                    .map_err(|c| {
                        tracing::error!(
                            transactional_id = id,
                            group,
                            code = c,
                            "cannot commit transactional offsets"
                        );
                        TxnError::NotAvailable
                    })?;
            }
        }
        meta.state = if commit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        meta.partitions.clear();
        meta.groups.clear();
        meta.pending_offsets.clear();
        meta.start_ms = -1;
        self.persist(id, meta).await?;
        tracing::debug!(
            transactional_id = id,
            producer_id = meta.producer_id,
            commit,
            "transaction completed"
        );
        Ok(())
    }

    /// Aborts the open transaction with a bumped epoch, fencing the
    /// producer that holds the old one.
    async fn fence_and_abort(&self, id: &str, meta: &mut TxnMetadata) -> Result<(), TxnError> {
        if meta.state != TxnState::Ongoing {
            return self.complete(id, meta).await;
        }
        if meta.producer_epoch >= MAX_PRODUCER_EPOCH {
            // Markers must carry an epoch above the producer's; at the limit,
            // abort with the current one and move to a new id at the next bump.
        } else {
            meta.producer_epoch += 1;
        }
        // The fenced producer must not be able to claim the bump as its own.
        meta.last_producer_epoch = -1;
        meta.last_producer_id = -1;
        meta.state = TxnState::PrepareAbort;
        self.persist(id, meta).await?;
        self.complete(id, meta).await
    }

    // ---- requests -------------------------------------------------------

    /// InitProducerId with a transactional id (KIP-98, KIP-360 bumps).
    pub async fn init_producer_id(
        &self,
        id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> Result<(i64, i16), TxnError> {
        if id.is_empty() || id.len() > MAX_TRANSACTIONAL_ID_BYTES {
            return Err(TxnError::InvalidRequest);
        }
        // Kafka's transaction.max.timeout.ms: an abandoned transaction holds
        // back its partitions' last stable offset at most this long.
        if timeout_ms <= 0 || timeout_ms > self.config.max_timeout_ms {
            return Err(TxnError::InvalidTimeout);
        }
        self.ensure_topic().await?;
        self.check_coordinator(id)?;
        let slot = self.get_or_create(id);
        let mut guard = slot.meta.lock().await;
        let Some(meta) = guard.as_mut() else {
            let producer_id = self.producer_ids.next_id().await.map_err(|e| {
                tracing::error!("cannot allocate a producer id: {}", e.message);
                TxnError::NotAvailable
            })?;
            let mut meta = TxnMetadata {
                producer_id,
                producer_epoch: 0,
                last_producer_id: -1,
                last_producer_epoch: -1,
                timeout_ms,
                state: TxnState::Empty,
                partitions: BTreeSet::new(),
                groups: BTreeSet::new(),
                pending_offsets: BTreeMap::new(),
                start_ms: -1,
                last_update_ms: now_ms(),
            };
            self.persist(id, &mut meta).await?;
            *guard = Some(meta);
            return Ok((producer_id, 0));
        };
        if let Some((pid, epoch)) = expected {
            let current = pid == meta.producer_id && epoch == meta.producer_epoch;
            let retry = pid == meta.last_producer_id
                && epoch == meta.last_producer_epoch
                && meta.state == TxnState::Empty;
            if retry {
                // The bump this producer asked for already happened.
                return Ok((meta.producer_id, meta.producer_epoch));
            }
            if !current {
                return Err(TxnError::Fenced);
            }
        }
        match meta.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => {
                self.complete(id, meta).await?;
            }
            TxnState::Ongoing => {
                tracing::info!(
                    transactional_id = id,
                    "new producer instance: aborting the open transaction"
                );
                self.fence_and_abort(id, meta).await?;
            }
            _ => {}
        }
        let (old_id, old_epoch) = (meta.producer_id, meta.producer_epoch);
        if meta.producer_epoch >= MAX_PRODUCER_EPOCH {
            meta.producer_id = self.producer_ids.next_id().await.map_err(|e| {
                tracing::error!("cannot allocate a producer id: {}", e.message);
                TxnError::NotAvailable
            })?;
            meta.producer_epoch = 0;
        } else {
            meta.producer_epoch += 1;
        }
        meta.last_producer_id = old_id;
        meta.last_producer_epoch = old_epoch;
        meta.timeout_ms = timeout_ms;
        meta.state = TxnState::Empty;
        meta.partitions.clear();
        meta.groups.clear();
        meta.pending_offsets.clear();
        meta.start_ms = -1;
        if let Err(e) = self.persist(id, meta).await {
            // Not durable: hand out nothing, keep what is on disk.
            meta.producer_id = old_id;
            meta.producer_epoch = old_epoch;
            return Err(e);
        }
        Ok((meta.producer_id, meta.producer_epoch))
    }

    /// Validates a request against a transactional id and moves it to
    /// `Ongoing`, adding `partitions` and `group`; persists if anything changed.
    pub async fn add_to_txn(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
        group: Option<&str>,
    ) -> Result<(), TxnError> {
        self.check_coordinator(id)?;
        let slot = self.get(id).ok_or(TxnError::InvalidProducerIdMapping)?;
        let mut guard = slot.meta.lock().await;
        let meta = guard.as_mut().ok_or(TxnError::InvalidProducerIdMapping)?;
        check_producer(meta, producer_id, epoch)?;
        match meta.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => return Err(TxnError::Concurrent),
            TxnState::Dead => return Err(TxnError::InvalidTxnState),
            _ => {}
        }
        let mut next = meta.clone();
        if next.state != TxnState::Ongoing {
            next.state = TxnState::Ongoing;
            next.start_ms = now_ms();
            next.partitions.clear();
            next.groups.clear();
            next.pending_offsets.clear();
        }
        next.partitions.extend(partitions.iter().cloned());
        if let Some(g) = group {
            // The group's offsets ride on its partition of
            // `__consumer_offsets`, which gets a marker like any other.
            next.partitions
                .insert((OFFSETS_TOPIC.to_owned(), self.groups.partition_for(g)));
            next.groups.insert(g.to_owned());
        }
        if next.state == meta.state
            && next.partitions == meta.partitions
            && next.groups == meta.groups
        {
            return Ok(());
        }
        self.persist(id, &mut next).await?;
        *meta = next;
        Ok(())
    }

    /// Checks that every partition is already in the transaction
    /// (AddPartitionsToTxn v4+ `verify_only`).
    pub async fn verify_partitions(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<Vec<bool>, TxnError> {
        self.check_coordinator(id)?;
        let slot = self.get(id).ok_or(TxnError::InvalidProducerIdMapping)?;
        let guard = slot.meta.lock().await;
        let meta = guard.as_ref().ok_or(TxnError::InvalidProducerIdMapping)?;
        check_producer(meta, producer_id, epoch)?;
        Ok(partitions
            .iter()
            .map(|tp| meta.state == TxnState::Ongoing && meta.partitions.contains(tp))
            .collect())
    }

    /// EndTxn: commit or abort.
    pub async fn end_txn(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<(), TxnError> {
        self.check_coordinator(id)?;
        let slot = self.get(id).ok_or(TxnError::InvalidProducerIdMapping)?;
        let mut guard = slot.meta.lock().await;
        let meta = guard.as_mut().ok_or(TxnError::InvalidProducerIdMapping)?;
        check_producer(meta, producer_id, epoch)?;
        match (meta.state, commit) {
            (TxnState::Ongoing, _) => {
                let previous = meta.state;
                meta.state = if commit {
                    TxnState::PrepareCommit
                } else {
                    TxnState::PrepareAbort
                };
                if let Err(e) = self.persist(id, meta).await {
                    meta.state = previous;
                    return Err(e);
                }
                self.complete(id, meta).await
            }
            // A retry of an EndTxn whose completion failed half-way.
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                self.complete(id, meta).await
            }
            // A retry of an EndTxn that completed.
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => Ok(()),
            _ => Err(TxnError::InvalidTxnState),
        }
    }

    // ---- load and expiry ---------------------------------------------------

    /// Loads the `__transaction_state` partitions this broker leads (every
    /// one on a single node), finishes their `Prepare*` transactions and
    /// starts the expiry task in `tasks`, where it stops on its shutdown
    /// signal. Runs once, before the listener opens; from then on
    /// [`TransactionCoordinator::follow`] keeps the owned partitions in step
    /// with the metadata. Load the group coordinator first: finishing a
    /// commit applies its offsets there.
    pub async fn load(self: &Arc<Self>, tasks: &Tasks) -> Result<(), sluice_log::LogError> {
        let unfinished = {
            let mut followed_to = self.followed();
            let _ = self.started.set(());
            let image = self.topics.image();
            *followed_to = image.next_offset;
            self.reconcile(&image)?
        };
        self.finish_loaded(unfinished).await;
        tasks.spawn("txn-expiry", expire_transactions(Arc::downgrade(self)));
        Ok(())
    }

    fn followed(&self) -> std::sync::MutexGuard<'_, i64> {
        self.followed_to.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Follows committed metadata: loads the `__transaction_state`
    /// partitions this broker now leads (their `Prepare*` transactions are
    /// finished on a task of their own) and drops the ids of those it no
    /// longer leads. Blocking (replays partition logs); called after the
    /// replica manager applied the same image. Does nothing before
    /// [`TransactionCoordinator::load`], or for an image older than one
    /// already followed.
    pub fn follow(self: &Arc<Self>, image: &MetadataImage) {
        let unfinished = {
            let mut followed_to = self.followed();
            if self.started.get().is_none() || image.next_offset < *followed_to {
                return;
            }
            *followed_to = image.next_offset;
            match self.reconcile(image) {
                Ok(unfinished) => unfinished,
                Err(e) => {
                    tracing::error!(
                        "cannot load __transaction_state; its ids answer NOT_COORDINATOR until the next leadership change: {e}"
                    );
                    return;
                }
            }
        };
        if unfinished.is_empty() {
            return;
        }
        if tokio::runtime::Handle::try_current().is_err() {
            // Metadata is followed from the runtime's blocking threads; with
            // no runtime the expiry task finishes them once one runs.
            let mut deadlines = self.deadlines();
            for id in unfinished {
                deadlines.insert(id, now_ms());
            }
            return;
        }
        let this = Arc::clone(self);
        // Markers and state writes; once begun they run to the end.
        drop(spawn_detached("txn-finish-loaded", async move {
            this.finish_loaded(unfinished).await
        }));
    }

    /// Brings the owned partitions in line with `image`; returns the ids
    /// of newly loaded `Prepare*` transactions, to finish. Called with
    /// `followed_to` held.
    fn reconcile(&self, image: &MetadataImage) -> Result<Vec<String>, sluice_log::LogError> {
        let wanted = self.topics.led_here(image, TRANSACTION_STATE_TOPIC);
        let owned = self.ownership.owned();
        let gone: BTreeSet<i32> = owned.difference(&wanted).copied().collect();
        if !gone.is_empty() {
            for &index in &gone {
                self.ownership.unload(index);
            }
            let dropped = self.drop_ids(&gone);
            tracing::info!(partitions = ?gone, transactional_ids = dropped, "no longer leading __transaction_state partitions; their ids are unloaded");
        }
        let new: BTreeSet<i32> = wanted.difference(&owned).copied().collect();
        if new.is_empty() {
            return Ok(Vec::new());
        }
        self.load_partitions(&new)
    }

    /// Removes from memory every id of the partitions in `indices`, with
    /// its expiry deadline. Returns how many were removed.
    fn drop_ids(&self, indices: &BTreeSet<i32>) -> usize {
        let ids: Vec<String> = {
            let mut map = self.map();
            let ids: Vec<String> = map
                .keys()
                .filter(|id| indices.contains(&partition_for(id)))
                .cloned()
                .collect();
            for id in &ids {
                map.remove(id);
            }
            ids
        };
        let mut deadlines = self.deadlines();
        for id in &ids {
            deadlines.remove(id);
        }
        ids.len()
    }

    /// Replays the partitions in `indices` and installs their ids,
    /// answering LOAD_IN_PROGRESS for them meanwhile. Returns the ids whose
    /// transaction is in a `Prepare*` state. A failed replay leaves the
    /// partitions unowned.
    fn load_partitions(
        &self,
        indices: &BTreeSet<i32>,
    ) -> Result<Vec<String>, sluice_log::LogError> {
        for &index in indices {
            self.ownership.begin_load(index);
        }
        let mut loaded = LoadedIds::default();
        for &index in indices {
            let Some(partition) = self.topics.partition(TRANSACTION_STATE_TOPIC, index) else {
                continue;
            };
            if let Err(e) = replay_state_partition(&partition, index, &mut loaded) {
                for &index in indices {
                    self.ownership.unload(index);
                }
                return Err(e);
            }
        }
        // Whatever is in memory for these partitions is older than the log.
        self.drop_ids(indices);
        let mut count = 0;
        let mut unfinished = Vec::new();
        for (id, (_, meta)) in loaded.ids {
            // A record in another partition (written before the id's
            // partition matched Kafka's) is this coordinator's only when the
            // id's own partition is one loaded here now.
            let Some(meta) = meta.filter(|_| indices.contains(&partition_for(&id))) else {
                continue;
            };
            self.set_deadline(&id, &meta);
            if matches!(meta.state, TxnState::PrepareCommit | TxnState::PrepareAbort) {
                unfinished.push(id.clone());
            }
            self.map()
                .insert(id.clone(), Arc::new(TxnSlot::new(&id, Some(meta))));
            count += 1;
        }
        for &index in indices {
            self.ownership.finish_load(index);
        }
        tracing::info!(
            partitions = ?indices,
            transactional_ids = count,
            unfinished = unfinished.len(),
            "transaction state loaded"
        );
        Ok(unfinished)
    }

    /// Finishes transactions found in a `Prepare*` state at load (markers
    /// are idempotent); one that fails is left to the expiry task's retry.
    async fn finish_loaded(&self, unfinished: Vec<String>) {
        for id in unfinished {
            let Some(slot) = self.get(&id) else { continue };
            let mut guard = slot.meta.lock().await;
            if let Some(meta) = guard.as_mut()
                && let Err(e) = self.complete(&id, meta).await
            {
                tracing::error!(transactional_id = %id, "cannot complete transaction after load: {e:?}; the expiry task retries");
                self.deadlines().insert(id.clone(), now_ms());
            }
        }
    }

    /// Aborts `id`'s transaction if it is still open past its deadline (or
    /// completes it if it is stuck in `Prepare*`).
    async fn expire(&self, id: &str) {
        let Some(slot) = self.get(id) else {
            self.deadlines().remove(id);
            return;
        };
        let mut guard = slot.meta.lock().await;
        let Some(meta) = guard.as_mut() else { return };
        let result = match meta.state {
            TxnState::Ongoing if meta.deadline_ms().is_some_and(|d| d <= now_ms()) => {
                tracing::info!(
                    transactional_id = id,
                    producer_id = meta.producer_id,
                    "transaction timed out; aborting"
                );
                self.fence_and_abort(id, meta).await
            }
            TxnState::Ongoing => {
                self.set_deadline(id, meta);
                Ok(())
            }
            TxnState::PrepareCommit | TxnState::PrepareAbort => self.complete(id, meta).await,
            _ => {
                self.deadlines().remove(id);
                Ok(())
            }
        };
        if let Err(e) = result {
            // Retry soon: an open transaction must not hold back the LSO forever.
            tracing::warn!(
                transactional_id = id,
                "transaction expiry failed ({e:?}); retrying"
            );
            self.deadlines()
                .insert(id.to_owned(), now_ms() + EXPIRY_RETRY_MS);
        }
    }
}

/// Delay before retrying a failed abort or completion.
const EXPIRY_RETRY_MS: i64 = 1_000;

/// How long one completion keeps retrying markers whose leader moved or
/// cannot be reached before it gives up (the client's EndTxn gets a
/// retriable error; the expiry task retries the completion). Below the
/// clients' default request timeout of 30 s.
const MARKER_TIMEOUT_MS: u64 = 15_000;

/// Pause between rounds of marker retries, so a leader election has time
/// to reach the metadata.
const MARKER_RETRY_BACKOFF_MS: u64 = 100;

/// Bytes read per step when replaying a `__transaction_state` partition.
const REPLAY_READ_BYTES: u32 = 1 << 20;

/// Ids replayed from `__transaction_state`: the last state of each (`None`
/// after a tombstone), and whether it came from the id's own partition.
#[derive(Debug, Default)]
struct LoadedIds {
    ids: HashMap<String, (bool, Option<TxnMetadata>)>,
}

impl LoadedIds {
    /// Records `value` for `id`, read from partition `index`. A record in
    /// the id's own partition replaces anything; one from elsewhere (the
    /// partition Sluice used before it hashed ids as Kafka does, see
    /// [`state_log::legacy_partition_for`]) only fills a gap, since every
    /// write since then went to the id's own partition.
    fn put(&mut self, id: String, index: i32, value: Option<TxnMetadata>) {
        let own = partition_for(&id) == index;
        match self.ids.get(&id) {
            Some((true, _)) if !own => {}
            _ => {
                self.ids.insert(id, (own, value));
            }
        }
    }
}

/// Reads every record of `partition` (index `index`) up to its log
/// end into `loaded`, in offset order. Undecodable records and
/// batches are logged and skipped.
fn replay_state_partition(
    partition: &sluice_replica::Partition,
    index: i32,
    loaded: &mut LoadedIds,
) -> Result<(), sluice_log::LogError> {
    // To the log end, not the high watermark: on a leader that just took
    // over, records above its high watermark may already be committed
    // (the old leader's ISR held them), and this log is now the one that
    // counts. Kafka's coordinators load to the log end too.
    let mut offset = partition.log().log_start_offset();
    let end = partition.log().log_end_offset();
    while offset < end {
        let read = partition.log().read(offset, REPLAY_READ_BYTES, end)?;
        let bytes = read.to_bytes().map_err(|source| sluice_log::LogError::Io {
            op: "read",
            path: partition.log().dir().to_owned(),
            source,
        })?;
        let before = offset;
        for item in Batches::new(&bytes) {
            let NextBatch::Complete { header, bytes, .. } = item else {
                break;
            };
            offset = header.next_offset();
            if header.is_control() {
                continue;
            }
            let Ok(records) = decode_records(&Bytes::copy_from_slice(bytes)) else {
                tracing::warn!(partition = %partition.tp, offset = header.base_offset, "skipping undecodable batch");
                continue;
            };
            for r in records {
                let Some(key) = r.key.as_deref() else {
                    continue;
                };
                let Ok(id) = state_log::decode_key(key) else {
                    continue;
                };
                match r.value.as_deref().map(state_log::decode_value) {
                    None => loaded.put(id, index, None),
                    Some(Ok(rec)) => {
                        if let Some(meta) = TxnMetadata::from_record(rec) {
                            loaded.put(id, index, Some(meta));
                        }
                    }
                    Some(Err(e)) => {
                        tracing::warn!(transactional_id = %id, "skipping bad transaction state: {e}")
                    }
                }
            }
        }
        if offset == before {
            break;
        }
    }
    Ok(())
}

/// Sleeps until the earliest transaction deadline (or a wake-up when one is
/// added), then aborts what expired. Holds only a weak handle while
/// sleeping, and ends when the coordinator is dropped.
async fn expire_transactions(coordinator: Weak<TransactionCoordinator>) {
    let Some(wake) = coordinator.upgrade().map(|c| Arc::clone(&c.expiry_wake)) else {
        return;
    };
    loop {
        // Register interest before reading the deadlines, so one added
        // after the read still wakes us.
        let notified = wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let next = {
            let Some(c) = coordinator.upgrade() else {
                return;
            };
            c.deadlines().values().min().copied()
        };
        let sleep = match next {
            Some(d) => Duration::from_millis(d.saturating_sub(now_ms()).max(0) as u64),
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            () = &mut notified => {}
            () = tokio::time::sleep(sleep) => {}
        }
        let Some(c) = coordinator.upgrade() else {
            return;
        };
        let now = now_ms();
        // Taken out of the map: `expire` puts back whatever still needs a
        // deadline (not yet due, or a retry after a failure).
        let due: Vec<String> = {
            let mut deadlines = c.deadlines();
            let due: Vec<String> = deadlines
                .iter()
                .filter(|&(_, &d)| d <= now)
                .map(|(id, _)| id.clone())
                .collect();
            for id in &due {
                deadlines.remove(id);
            }
            due
        };
        for id in due {
            let c2 = Arc::clone(&c);
            // An abort writes markers and state; once begun it runs to the
            // end, even past shutdown's signal.
            drop(spawn_detached(
                "txn-expire",
                async move { c2.expire(&id).await },
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    fn tp(topic: &str, partition: i32) -> (String, i32) {
        (topic.to_owned(), partition)
    }

    #[tokio::test]
    async fn transactional_appends_need_the_partition_in_an_ongoing_transaction() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = testing::node_in(dir.path()).await;
        testing::create_topic(&broker, "t", 2).await;
        let txn = &broker.txn;
        let (pid, epoch) = txn
            .init_producer_id("tx", 60_000, None)
            .await
            .expect("init");
        let verify = |id: Option<&str>, pid: i64, epoch: i16, p: i32| {
            txn.verify_transactional_append(id, pid, epoch, "t", p)
        };
        // No transaction yet.
        assert!(matches!(
            verify(Some("tx"), pid, epoch, 0),
            Err(VerifyError::NotInTransaction { .. })
        ));
        txn.add_to_txn("tx", pid, epoch, &[tp("t", 0)], None)
            .await
            .expect("add");
        assert_eq!(verify(Some("tx"), pid, epoch, 0), Ok(()));
        // Another partition, another epoch, producer id or transactional id.
        let not_added = verify(Some("tx"), pid, epoch, 1).expect_err("not added");
        assert_eq!(not_added.code(), code::INVALID_TXN_STATE);
        assert!(matches!(
            verify(Some("tx"), pid, epoch + 1, 0),
            Err(VerifyError::Epoch { .. })
        ));
        for (id, producer) in [(Some("tx"), pid + 1), (Some("other"), pid), (None, pid)] {
            assert!(matches!(
                verify(id, producer, epoch, 0),
                Err(VerifyError::UnknownProducer { .. })
            ));
        }
        // Once the transaction ends, its partitions are closed to it.
        txn.end_txn("tx", pid, epoch, true).await.expect("commit");
        assert!(matches!(
            verify(Some("tx"), pid, epoch, 0),
            Err(VerifyError::NotInTransaction { .. })
        ));
        // A new producer instance fences the old epoch.
        let (_, bumped) = txn
            .init_producer_id("tx", 60_000, None)
            .await
            .expect("re-init");
        txn.add_to_txn("tx", pid, bumped, &[tp("t", 0)], None)
            .await
            .expect("add");
        assert!(matches!(
            verify(Some("tx"), pid, epoch, 0),
            Err(VerifyError::Epoch { .. })
        ));
        assert_eq!(verify(Some("tx"), pid, bumped, 0), Ok(()));
    }

    /// Kafka's rule: a transactional id is coordinated by the leader of its
    /// `__transaction_state` partition. When leadership moves away the id
    /// is dropped and every transactional API answers NOT_COORDINATOR;
    /// when it comes back the open transaction is replayed and can commit.
    #[tokio::test]
    async fn transactional_ids_follow_the_leadership_of_their_state_partition() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        testing::create_topic(&node, "t", 1).await;
        let txn = &node.txn;
        let (pid, epoch) = txn
            .init_producer_id("tx", 60_000, None)
            .await
            .expect("init");
        // Registered after the topics exist, so this node leads all of them
        // (placement spreads partitions over registered brokers).
        testing::register_brokers(&node, &[1, 2, 3]).await;
        txn.add_to_txn("tx", pid, epoch, &[tp("t", 0)], None)
            .await
            .expect("add");
        let index = partition_for("tx");

        testing::move_leader(&node, TRANSACTION_STATE_TOPIC, index, 2).await;
        assert!(txn.get("tx").is_none(), "unloaded");
        let not_here = Err(TxnError::NotCoordinator);
        assert_eq!(txn.check_coordinator("tx"), not_here);
        assert_eq!(
            txn.init_producer_id("tx", 60_000, None).await.map(|_| ()),
            not_here
        );
        assert_eq!(
            txn.add_to_txn("tx", pid, epoch, &[tp("t", 0)], None).await,
            not_here
        );
        assert_eq!(
            txn.verify_partitions("tx", pid, epoch, &[tp("t", 0)])
                .await
                .map(|_| ()),
            not_here
        );
        assert_eq!(
            txn.add_to_txn("tx", pid, epoch, &[], Some("g")).await,
            not_here
        );
        assert_eq!(txn.end_txn("tx", pid, epoch, true).await, not_here);
        assert_eq!(TxnError::NotCoordinator.code(false), code::NOT_COORDINATOR);
        // An id of another partition is still served.
        let other = (0..)
            .map(|i| format!("tx-{i}"))
            .find(|id| partition_for(id) != index)
            .expect("an id elsewhere");
        txn.init_producer_id(&other, 60_000, None)
            .await
            .expect("served here");

        testing::move_leader(&node, TRANSACTION_STATE_TOPIC, index, 1).await;
        let meta = txn
            .get("tx")
            .expect("loaded again")
            .snapshot()
            .await
            .expect("state");
        assert_eq!(
            (meta.producer_id, meta.producer_epoch, meta.state),
            (pid, epoch, TxnState::Ongoing)
        );
        assert!(meta.partitions.contains(&tp("t", 0)));
        txn.end_txn("tx", pid, epoch, true)
            .await
            .expect("the replayed transaction commits");
    }

    /// A commit decided (`PrepareCommit` durable) while another broker led
    /// the id's partition is finished by this broker once it leads the
    /// partition again: the markers are written and the state completes.
    #[tokio::test]
    async fn a_prepared_commit_found_on_gaining_leadership_is_completed() {
        const BOUND: Duration = Duration::from_secs(10);
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        testing::create_topic(&node, "t", 1).await;
        let txn = &node.txn;
        let (pid, epoch) = txn
            .init_producer_id("tx", 60_000, None)
            .await
            .expect("init");
        // Registered after the topics exist, so this node leads all of them
        // (placement spreads partitions over registered brokers).
        testing::register_brokers(&node, &[1, 2]).await;
        txn.add_to_txn("tx", pid, epoch, &[tp("t", 0)], None)
            .await
            .expect("add");
        let mut prepared = txn
            .get("tx")
            .expect("slot")
            .snapshot()
            .await
            .expect("state");
        let index = partition_for("tx");
        testing::move_leader(&node, TRANSACTION_STATE_TOPIC, index, 2).await;
        // What broker 2 wrote before failing: the decision, no markers.
        prepared.state = TxnState::PrepareCommit;
        let state_partition = node
            .replicas
            .partition(TRANSACTION_STATE_TOPIC, index)
            .expect("still a replica here");
        let batch = state_log::batch("tx", Some(&prepared.to_record()), now_ms()).expect("batch");
        // Set-up: the record as if replicated here from broker 2 (a
        // follower's log, written directly).
        let info = state_partition
            .log()
            .append(batch, state_partition.leader_epoch(), now_ms())
            .expect("append");
        state_partition
            .commit_local(info.last_offset + 1)
            .await
            .expect("commit");
        let data = node.replicas.partition("t", 0).expect("data partition");
        let before = data.high_watermark();

        testing::move_leader(&node, TRANSACTION_STATE_TOPIC, index, 1).await;
        tokio::time::timeout(BOUND, async {
            loop {
                let advanced = data.hw_advanced();
                tokio::pin!(advanced);
                advanced.as_mut().enable();
                if data.high_watermark() > before {
                    return;
                }
                advanced.await;
            }
        })
        .await
        .expect("the commit marker is written");
        // The completion holds the id until its state is durable.
        let meta = txn
            .get("tx")
            .expect("loaded")
            .snapshot()
            .await
            .expect("state");
        assert_eq!(meta.state, TxnState::CompleteCommit);
        assert!(meta.partitions.is_empty());
    }

    /// While a partition is being loaded its ids answer
    /// COORDINATOR_LOAD_IN_PROGRESS.
    #[tokio::test]
    async fn a_state_partition_being_loaded_answers_load_in_progress() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        let (pid, epoch) = node
            .txn
            .init_producer_id("tx", 60_000, None)
            .await
            .expect("init");
        node.txn.ownership().begin_load(partition_for("tx"));
        assert_eq!(
            node.txn.add_to_txn("tx", pid, epoch, &[], None).await,
            Err(TxnError::LoadInProgress)
        );
        assert_eq!(
            TxnError::LoadInProgress.code(false),
            code::COORDINATOR_LOAD_IN_PROGRESS
        );
        node.txn.ownership().finish_load(partition_for("tx"));
        assert_eq!(
            node.txn.add_to_txn("tx", pid, epoch, &[], None).await,
            Ok(())
        );
    }

    /// Before Sluice hashed ids as Kafka does, "txn-20" (hash -859841407)
    /// was written to partition 41 (sign bit masked); its partition is now
    /// 7 (absolute value). A record left in 41 loads when 7 has none, and
    /// once the id is written to 7, that record wins although partition 41
    /// is replayed after it.
    #[tokio::test]
    async fn state_written_where_sluice_used_to_hash_an_id_still_loads() {
        const ID: &str = "txn-20";
        assert_eq!(
            (partition_for(ID), state_log::legacy_partition_for(ID)),
            (7, 41)
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let old = TxnMetadata {
            producer_id: 7,
            producer_epoch: 3,
            last_producer_id: -1,
            last_producer_epoch: -1,
            timeout_ms: 60_000,
            state: TxnState::CompleteCommit,
            partitions: BTreeSet::new(),
            groups: BTreeSet::new(),
            pending_offsets: BTreeMap::new(),
            start_ms: -1,
            last_update_ms: 1,
        };
        {
            let node = testing::bare_node(
                dir.path(),
                testing::group_config(),
                crate::config::TransactionConfig::default(),
            );
            node.controller
                .ensure_internal_topic(TRANSACTION_STATE_TOPIC, TRANSACTION_STATE_PARTITIONS)
                .await
                .expect("topic");
            let partition = node
                .replicas
                .partition(TRANSACTION_STATE_TOPIC, 41)
                .expect("partition");
            let batch = state_log::batch(ID, Some(&old.to_record()), 1).expect("batch");
            let info = partition.append(batch, 1).expect("append");
            partition
                .commit(info.last_offset + 1)
                .await
                .expect("commit");
            node.replicas.flush_all().expect("flush");
        }
        let state = |node: Arc<testing::Node>| async move {
            let slot = node.txn.get(ID).expect("loaded");
            let meta = slot.snapshot().await.expect("state");
            (meta.producer_id, meta.producer_epoch)
        };
        {
            let node = testing::node_in(dir.path()).await;
            assert_eq!(
                state(Arc::clone(&node)).await,
                (7, 3),
                "the old record loads"
            );
            let (pid, epoch) = node
                .txn
                .init_producer_id(ID, 60_000, None)
                .await
                .expect("bump");
            assert_eq!((pid, epoch), (7, 4));
            node.replicas.flush_all().expect("flush");
        }
        let node = testing::node_in(dir.path()).await;
        assert_eq!(
            state(node).await,
            (7, 4),
            "the id's own partition wins over the old one"
        );
    }

    #[tokio::test]
    async fn transaction_timeouts_above_the_configured_max_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = crate::config::TransactionConfig {
            max_timeout_ms: 5_000,
            ..Default::default()
        };
        let broker = testing::node_with(dir.path(), testing::group_config(), config).await;
        for bad in [0, -1, 5_001, i32::MAX] {
            assert_eq!(
                broker
                    .txn
                    .init_producer_id("tx", bad, None)
                    .await
                    .expect_err("refused"),
                TxnError::InvalidTimeout,
                "{bad}"
            );
        }
        assert_eq!(
            TxnError::InvalidTimeout.code(false),
            code::INVALID_TRANSACTION_TIMEOUT
        );
        broker
            .txn
            .init_producer_id("tx", 5_000, None)
            .await
            .expect("the max itself is allowed");
    }
}
