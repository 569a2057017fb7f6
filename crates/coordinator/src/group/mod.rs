//! The group coordinator: consumer groups (classic protocol and KIP-848)
//! and their committed offsets.
//!
//! Owns the in-memory state of the groups it coordinates and the contents
//! of the `__consumer_offsets` partitions this broker leads. It must not
//! touch other partitions' logs or the metadata image except to create
//! `__consumer_offsets` on first use.
//!
//! Ownership (Kafka's rule): a group is coordinated by the leader of
//! partition `partition_for(group_id)` of `__consumer_offsets`. The
//! coordinator loads a partition (replays it into memory) when this broker
//! becomes its leader and drops its groups when it stops leading
//! ([`GroupCoordinator::follow`], driven by committed metadata). A request
//! for a group of a partition not owned here is answered NOT_COORDINATOR,
//! and of one still loading COORDINATOR_LOAD_IN_PROGRESS.
//!
//! Layout:
//! - [`classic`]: the classic protocol's state machine (JoinGroup & co).
//! - [`consumer`]: the KIP-848 consumer protocol's state machine.
//! - [`assignor`]: server-side assignors for KIP-848 (uniform, range).
//! - [`offsets_log`]: the record format of `__consumer_offsets`.
//!
//! Concurrency: a map from group id to a [`GroupSlot`]; each slot has its
//! own std `Mutex` (held only for in-memory changes and the synchronous
//! page-cache append that persists them, never across an `.await`) and a
//! timer task that sleeps until the group's next deadline (session expiry,
//! end of a join phase), woken early by a `Notify` when deadlines move.
//! Lock order: the map, then a slot.
//!
//! Durability: an offset commit is appended to the group's partition of
//! `__consumer_offsets` under the slot lock (so log order is state order),
//! fsynced with `Partition::commit`, and only then applied in memory and
//! acknowledged. A classic group's assignment (the leader's SyncGroup) is
//! appended the same way and every member's SyncGroup is answered only after
//! it is fsynced; other group-metadata changes are appended but not waited
//! for (losing one costs a rebalance, never an offset or an assignment a
//! member acted on).
//!
//! Transactional offsets (TxnOffsetCommit), Kafka's model: they are written
//! to the group's partition in a transactional batch of the producer
//! ([`GroupCoordinator::txn_commit_offsets`]) and held as *pending* per
//! producer id, invisible to OffsetFetch, until that producer's COMMIT or
//! ABORT marker lands in the same partition
//! ([`GroupCoordinator::complete_txn`]): a commit makes them the committed
//! offsets, each unless a plain commit was written after it (the record
//! with the greater log offset wins), an abort drops them. Replay applies
//! the same rule at the marker's place in the log, so a reload rebuilds
//! committed, dropped and still-open transactional offsets alike.

pub mod assignor;
pub mod classic;
pub mod consumer;
pub mod offsets_log;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::join_group::JoinGroupResponse;
use sluice_protocol::messages::sync_group::SyncGroupResponse;
use tokio::sync::Notify;
use tokio::time::Instant;

use sluice_metadata::MetadataImage;
use sluice_replica::Partition;
use sluice_runtime::{Tasks, spawn_detached};

use crate::config::GroupConfig;
use crate::internal_topics::InternalTopics;
use crate::ownership::Ownership;
use classic::{ClassicGroup, ClassicLimits, ClassicState, JoinArgs, JoinOutcome, SyncOutcome};
use consumer::ConsumerGroup;
use offsets_log::{
    CONSUMER, GroupValue, LogRecord, OFFSETS_TOPIC, OffsetValue, OffsetsLogError, ReplayEntry,
    Replayed, TxnProducer,
};

use crate::coordinator_record::RecordError;

/// Longest group id accepted; ids are keys in the offsets log and in memory.
pub const MAX_GROUP_ID_BYTES: usize = 1024;

/// Either protocol's group.
#[derive(Debug)]
pub enum GroupKind {
    /// Classic protocol (JoinGroup/SyncGroup).
    Classic(ClassicGroup),
    /// KIP-848 consumer protocol (ConsumerGroupHeartbeat).
    Consumer(ConsumerGroup),
}

/// A committed offset and where in the log it was written.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The commit.
    pub value: OffsetValue,
    /// Offset of its record in `__consumer_offsets`; a commit only replaces
    /// one written before it.
    pub log_offset: i64,
}

/// Committed offsets by (topic, partition).
pub type CommittedOffsets = BTreeMap<(String, i32), Committed>;

/// A group's transactional offsets whose transaction has not ended yet, by
/// producer id (Kafka's pending transactional offset commits). Each
/// remembers the log offset of its record, for the rule in
/// [`PendingOffsets::complete`].
#[derive(Debug, Default, Clone)]
pub struct PendingOffsets {
    by_producer: BTreeMap<i64, CommittedOffsets>,
}

impl PendingOffsets {
    /// Holds `offset` for `producer_id` until its transaction ends; a later
    /// record of the same partition in the transaction replaces an earlier one.
    pub fn add(&mut self, producer_id: i64, key: (String, i32), offset: Committed) {
        let offsets = self.by_producer.entry(producer_id).or_default();
        if offsets
            .get(&key)
            .is_none_or(|c| c.log_offset < offset.log_offset)
        {
            offsets.insert(key, offset);
        }
    }

    /// Ends `producer_id`'s transaction. On commit its offsets become
    /// `committed`, each unless the committed offset of that partition was
    /// written after it (a plain OffsetCommit after the TxnOffsetCommit
    /// wins, as in Kafka, which compares record offsets so that compaction
    /// cannot change the outcome); on abort they are dropped. Returns how
    /// many became committed.
    pub fn complete(
        &mut self,
        producer_id: i64,
        commit: bool,
        committed: &mut CommittedOffsets,
    ) -> usize {
        let Some(offsets) = self.by_producer.remove(&producer_id) else {
            return 0;
        };
        if !commit {
            return 0;
        }
        let mut applied = 0;
        for (key, offset) in offsets {
            if committed
                .get(&key)
                .is_none_or(|c| c.log_offset < offset.log_offset)
            {
                committed.insert(key, offset);
                applied += 1;
            }
        }
        applied
    }

    /// Drops every producer's pending offset of `key`: an offset tombstone
    /// (OffsetDelete, DeleteGroups) removes them too, as in Kafka.
    pub fn remove_partition(&mut self, key: &(String, i32)) {
        for offsets in self.by_producer.values_mut() {
            offsets.remove(key);
        }
        self.by_producer.retain(|_, offsets| !offsets.is_empty());
    }

    /// True if some producer has a pending offset for `key`.
    pub fn contains_partition(&self, key: &(String, i32)) -> bool {
        self.by_producer.values().any(|o| o.contains_key(key))
    }

    /// The partitions with a pending offset from any producer.
    pub fn partitions(&self) -> BTreeSet<(String, i32)> {
        self.by_producer
            .values()
            .flat_map(|o| o.keys().cloned())
            .collect()
    }

    /// True if no transaction holds an offset of the group.
    pub fn is_empty(&self) -> bool {
        self.by_producer.is_empty()
    }

    /// Drops everything (the group was deleted).
    pub fn clear(&mut self) {
        self.by_producer.clear();
    }
}

/// One group's state, behind its slot's lock.
#[derive(Debug)]
pub struct GroupState {
    /// The protocol state machine.
    pub kind: GroupKind,
    /// Committed offsets by (topic, partition).
    pub offsets: CommittedOffsets,
    /// Transactional offsets waiting for their transaction's marker.
    pub pending: PendingOffsets,
    /// Set when the group was deleted; holders of the slot treat it as gone.
    pub removed: bool,
}

impl GroupState {
    fn next_deadline(&self) -> Option<Instant> {
        match &self.kind {
            GroupKind::Classic(g) => g.next_deadline(),
            GroupKind::Consumer(g) => g.next_deadline(),
        }
    }

    /// True if the group has no members (offsets may be deleted, group may be deleted).
    pub fn is_empty(&self) -> bool {
        match &self.kind {
            GroupKind::Classic(g) => g.state == ClassicState::Empty,
            GroupKind::Consumer(g) => g.members.is_empty(),
        }
    }

    /// Kafka's state name.
    pub fn state_name(&self) -> &'static str {
        match &self.kind {
            GroupKind::Classic(g) => g.state.name(),
            GroupKind::Consumer(g) => g.state_name(),
        }
    }

    /// "classic" or "consumer".
    pub fn group_type(&self) -> &'static str {
        match &self.kind {
            GroupKind::Classic(_) => "classic",
            GroupKind::Consumer(_) => "consumer",
        }
    }

    fn take_dirty(&mut self) -> bool {
        match &mut self.kind {
            GroupKind::Classic(g) => g.take_dirty(),
            GroupKind::Consumer(g) => g.take_dirty(),
        }
    }

    fn to_value(&self) -> GroupValue {
        match &self.kind {
            GroupKind::Classic(g) => g.to_value(),
            GroupKind::Consumer(g) => g.to_value(),
        }
    }
}

/// A group and its timer's wake-up.
#[derive(Debug)]
pub struct GroupSlot {
    /// Group id.
    pub id: String,
    state: Mutex<GroupState>,
    wake: Notify,
}

impl GroupSlot {
    /// Locks the group. Held for in-memory work and page-cache appends only.
    pub fn lock(&self) -> MutexGuard<'_, GroupState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One offset to commit.
#[derive(Debug, Clone)]
pub struct OffsetToCommit {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Next offset to consume.
    pub offset: i64,
    /// Leader epoch, -1 if unknown.
    pub leader_epoch: i32,
    /// Client metadata (`None` is stored as "").
    pub metadata: Option<String>,
}

/// Who is committing, checked against the group.
#[derive(Debug, Clone)]
pub struct CommitIdentity {
    /// Member id ("" for a client outside the group protocol).
    pub member_id: String,
    /// `group.instance.id`.
    pub instance_id: Option<String>,
    /// Classic generation, or KIP-848 member epoch; -1 for none.
    pub generation_or_epoch: i32,
}

/// A group's replayed metadata and offsets.
#[derive(Debug, Default)]
struct LoadedGroup {
    value: Option<GroupValue>,
    offsets: CommittedOffsets,
    pending: PendingOffsets,
}

/// A transaction's end reported by [`GroupCoordinator::complete_txn`] while
/// its partition was loading: applied once the partition is loaded, since
/// the replay may have stopped short of the marker.
#[derive(Debug, Clone, Copy)]
struct DeferredCompletion {
    partition: i32,
    producer_id: i64,
    commit: bool,
}

/// Committed offsets by topic, as OffsetFetch returns them.
pub type FetchedOffsets = Vec<(String, Vec<(i32, Option<OffsetValue>)>)>;

/// The group coordinator.
pub struct GroupCoordinator {
    config: GroupConfig,
    groups: Mutex<HashMap<String, Arc<GroupSlot>>>,
    /// The internal topic and metadata this coordinator reads and writes.
    topics: InternalTopics,
    /// Set by [`GroupCoordinator::load`]; timer tasks use it to persist
    /// without keeping the coordinator alive.
    this: OnceLock<Weak<GroupCoordinator>>,
    /// The process's background tasks, given at load: group timers and
    /// offset retention run there and stop on its shutdown signal.
    tasks: OnceLock<Tasks>,
    /// The `__consumer_offsets` partitions this broker coordinates.
    ownership: Ownership,
    /// Serialises loading and unloading partitions, and holds the metadata
    /// offset of the newest image followed, so an older image (two changes
    /// published at once) never undoes a newer one. Held across a replay,
    /// so only on blocking threads or at start-up.
    followed_to: Mutex<i64>,
    /// Transaction ends reported for partitions still loading. A std mutex
    /// held to check a partition's load state and queue, or to drain the
    /// queue and finish a load, so no end falls between the two. Lock
    /// order: this, then the ownership, the map or a slot. Bounded by the
    /// markers written to a partition while it loads.
    deferred_completions: Mutex<Vec<DeferredCompletion>>,
}

impl std::fmt::Debug for GroupCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCoordinator")
            .field("groups", &self.map().len())
            .finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    sluice_metadata::now_ms()
}

/// Unwraps encoded records for `group_id`. A record the format cannot carry
/// (a string over 32767 bytes; request decoding and config validation keep
/// every string below that) is logged and answered UNKNOWN_SERVER_ERROR, as
/// Kafka answers a write that fails for an unexpected reason.
fn encoded<T>(group_id: &str, records: Result<T, RecordError>) -> Result<T, i16> {
    records.map_err(|e| {
        tracing::error!(
            group = group_id,
            "cannot encode a __consumer_offsets record: {e}"
        );
        code::UNKNOWN_SERVER_ERROR
    })
}

/// The records of offset commits for `group_id`.
fn offset_records(
    group_id: &str,
    values: &[(String, i32, OffsetValue)],
) -> Result<Vec<LogRecord>, i16> {
    encoded(
        group_id,
        values
            .iter()
            .map(|(t, p, v)| LogRecord::offset(group_id, t, *p, Some(v)))
            .collect::<Result<Vec<_>, _>>(),
    )
}

/// Applies offsets whose records were written at `first`, `first + 1`, …
/// once they are durable. A commit whose record is older than the one in
/// memory (a late fsync) never overwrites it.
fn apply_committed(
    offsets: &mut CommittedOffsets,
    first: i64,
    values: Vec<(String, i32, OffsetValue)>,
) {
    for (i, (topic, p, value)) in values.into_iter().enumerate() {
        let log_offset = first + i as i64;
        let key = (topic, p);
        if offsets.get(&key).is_none_or(|c| c.log_offset < log_offset) {
            offsets.insert(key, Committed { value, log_offset });
        }
    }
}

impl GroupCoordinator {
    /// Appends `records` for `group_id` to its offsets partition, in
    /// `producer`'s transactional batches if given. Called with the group's
    /// lock held so the log order matches the state order. A producer the
    /// log fences (an older epoch) gets the log's code
    /// (INVALID_PRODUCER_EPOCH), as Kafka passes it through.
    fn append_locked(
        &self,
        group_id: &str,
        records: &[LogRecord],
        producer: Option<TxnProducer>,
    ) -> Result<(Arc<Partition>, i64), i16> {
        let index = offsets_log::partition_for(group_id, self.config.offsets_topic_num_partitions);
        let partition = self
            .topics
            .partition(OFFSETS_TOPIC, index)
            .ok_or(code::COORDINATOR_NOT_AVAILABLE)?;
        match offsets_log::append(&partition, records, producer, now_ms()) {
            Ok(end) => Ok((partition, end)),
            Err(OffsetsLogError::Log(sluice_log::LogError::Producer(e))) => {
                tracing::debug!(
                    group = group_id,
                    ?producer,
                    "transactional offset commit refused: {e}"
                );
                Err(e.kafka_error_code())
            }
            Err(e) => {
                tracing::error!(group = group_id, "cannot append to __consumer_offsets: {e}");
                Err(code::COORDINATOR_NOT_AVAILABLE)
            }
        }
    }

    /// Appends a classic group's assignment record (the leader's SyncGroup).
    /// Errors follow Kafka's `storeGroup` mapping: no partition to write is
    /// COORDINATOR_NOT_AVAILABLE, a failed write (a storage error) is
    /// NOT_COORDINATOR.
    fn append_assignment_locked(
        &self,
        group_id: &str,
        value: &GroupValue,
    ) -> Result<(Arc<Partition>, i64), i16> {
        let index = offsets_log::partition_for(group_id, self.config.offsets_topic_num_partitions);
        let partition = self
            .topics
            .partition(OFFSETS_TOPIC, index)
            .ok_or(code::COORDINATOR_NOT_AVAILABLE)?;
        let record = encoded(group_id, LogRecord::group(group_id, value))?;
        match offsets_log::append(&partition, &[record], None, now_ms()) {
            Ok(end) => Ok((partition, end)),
            Err(e) => {
                tracing::error!(group = group_id, "cannot append group assignment: {e}");
                Err(code::NOT_COORDINATOR)
            }
        }
    }

    /// Persists the group's metadata if it changed, without waiting for fsync.
    fn persist_if_dirty(&self, slot: &GroupSlot, state: &mut GroupState) {
        if !state.take_dirty() || state.removed {
            return;
        }
        let Ok(record) = encoded(&slot.id, LogRecord::group(&slot.id, &state.to_value())) else {
            return;
        };
        if let Ok((partition, end)) = self.append_locked(&slot.id, &[record], None) {
            // Nobody waits for this fsync; the handle is dropped, and a
            // panic is still reported by the task itself.
            drop(spawn_detached("group-metadata-fsync", async move {
                if let Err(e) = partition.commit(end).await {
                    tracing::error!("cannot fsync group metadata: {e}");
                }
            }));
        }
    }
}

async fn commit_durable(partition: Arc<Partition>, end: i64) -> Result<(), i16> {
    partition.commit(end).await.map_err(|e| {
        tracing::error!(partition = %partition.tp, "cannot fsync __consumer_offsets: {e}");
        code::COORDINATOR_NOT_AVAILABLE
    })
}

impl GroupCoordinator {
    /// A coordinator with no groups; call [`GroupCoordinator::load`] at start.
    pub fn new(config: GroupConfig, topics: InternalTopics) -> GroupCoordinator {
        GroupCoordinator {
            config,
            groups: Mutex::new(HashMap::new()),
            topics,
            this: OnceLock::new(),
            tasks: OnceLock::new(),
            ownership: Ownership::default(),
            followed_to: Mutex::new(-1),
            deferred_completions: Mutex::new(Vec::new()),
        }
    }

    fn deferred(&self) -> MutexGuard<'_, Vec<DeferredCompletion>> {
        self.deferred_completions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Is this broker `group_id`'s coordinator, with the group's partition
    /// loaded? The error is NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS.
    pub fn check_coordinator(&self, group_id: &str) -> Result<(), i16> {
        self.ownership.check(self.partition_for(group_id))
    }

    /// The `__consumer_offsets` partitions this broker coordinates.
    pub fn ownership(&self) -> &Ownership {
        &self.ownership
    }

    fn map(&self) -> MutexGuard<'_, HashMap<String, Arc<GroupSlot>>> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn classic_limits(&self) -> ClassicLimits {
        ClassicLimits {
            initial_rebalance_delay_ms: self.config.group_initial_rebalance_delay_ms,
            min_session_timeout_ms: self.config.group_min_session_timeout_ms,
            max_session_timeout_ms: self.config.group_max_session_timeout_ms,
        }
    }

    /// The settings.
    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    /// The `__consumer_offsets` partition that coordinates `group_id`.
    pub fn partition_for(&self, group_id: &str) -> i32 {
        offsets_log::partition_for(group_id, self.config.offsets_topic_num_partitions)
    }

    /// An existing group.
    pub fn get(&self, group_id: &str) -> Option<Arc<GroupSlot>> {
        self.map().get(group_id).cloned()
    }

    /// Every group.
    pub fn all(&self) -> Vec<Arc<GroupSlot>> {
        self.map().values().cloned().collect()
    }

    fn insert(&self, group_id: &str, state: GroupState) -> Arc<GroupSlot> {
        let slot = Arc::new(GroupSlot {
            id: group_id.to_owned(),
            state: Mutex::new(state),
            wake: Notify::new(),
        });
        self.map().insert(group_id.to_owned(), Arc::clone(&slot));
        self.spawn_timer(&slot);
        slot
    }

    /// The group, created with `make` if it does not exist.
    pub fn get_or_create(
        &self,
        group_id: &str,
        make: impl FnOnce() -> GroupKind,
    ) -> Arc<GroupSlot> {
        let mut map = self.map();
        if let Some(slot) = map.get(group_id) {
            return Arc::clone(slot);
        }
        let slot = Arc::new(GroupSlot {
            id: group_id.to_owned(),
            state: Mutex::new(GroupState {
                kind: make(),
                offsets: BTreeMap::new(),
                pending: PendingOffsets::default(),
                removed: false,
            }),
            wake: Notify::new(),
        });
        map.insert(group_id.to_owned(), Arc::clone(&slot));
        drop(map);
        self.spawn_timer(&slot);
        slot
    }

    fn spawn_timer(&self, slot: &Arc<GroupSlot>) {
        let (Some(this), Some(tasks)) = (self.this.get().cloned(), self.tasks.get()) else {
            return; // not loaded (unit tests): nothing expires
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        tasks.spawn("group-timer", run_timer(Arc::clone(slot), this));
    }

    /// Creates `__consumer_offsets` if it does not exist yet.
    pub async fn ensure_offsets_topic(&self) -> Result<(), i16> {
        let partitions = self.config.offsets_topic_num_partitions;
        self.topics
            .ensure(OFFSETS_TOPIC, partitions)
            .await
            .map_err(|_| code::COORDINATOR_NOT_AVAILABLE)
    }

    /// Loads the `__consumer_offsets` partitions this broker leads (every
    /// one on a single node) and starts the timers and the offset-retention
    /// task in `tasks`, where they stop on its shutdown signal. Runs once,
    /// before the listener opens; from then on [`GroupCoordinator::follow`]
    /// keeps the owned partitions in step with the metadata.
    pub fn load(self: &Arc<Self>, tasks: &Tasks) -> Result<(), offsets_log::OffsetsLogError> {
        {
            let mut followed_to = self.followed();
            let _ = self.this.set(Arc::downgrade(self));
            let _ = self.tasks.set(tasks.clone());
            let image = self.topics.image();
            *followed_to = image.next_offset;
            self.reconcile(&image)?;
        }
        tasks.spawn("offset-retention", run_retention(Arc::downgrade(self)));
        Ok(())
    }

    fn followed(&self) -> MutexGuard<'_, i64> {
        self.followed_to.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Follows committed metadata: loads the `__consumer_offsets` partitions
    /// this broker now leads and drops the groups of those it no longer
    /// leads. Blocking (replays partition logs); called after the replica
    /// manager applied the same image, so a newly led partition's log is
    /// open. Does nothing before [`GroupCoordinator::load`], which loads
    /// from the image current then, or for an image older than one
    /// already followed.
    pub fn follow(&self, image: &MetadataImage) {
        let mut followed_to = self.followed();
        if self.tasks.get().is_none() || image.next_offset < *followed_to {
            return;
        }
        *followed_to = image.next_offset;
        if let Err(e) = self.reconcile(image) {
            tracing::error!(
                "cannot load __consumer_offsets; its groups answer NOT_COORDINATOR until the next leadership change: {e}"
            );
        }
    }

    /// Brings the owned partitions in line with `image`. Called with
    /// `followed_to` held.
    fn reconcile(&self, image: &MetadataImage) -> Result<(), offsets_log::OffsetsLogError> {
        let wanted = self.topics.led_here(image, OFFSETS_TOPIC);
        let owned = self.ownership.owned();
        let gone: BTreeSet<i32> = owned.difference(&wanted).copied().collect();
        if !gone.is_empty() {
            for &index in &gone {
                self.ownership.unload(index);
            }
            let dropped = self.drop_groups(&gone);
            tracing::info!(partitions = ?gone, groups = dropped, "no longer leading __consumer_offsets partitions; their groups are unloaded");
        }
        let new: BTreeSet<i32> = wanted.difference(&owned).copied().collect();
        if new.is_empty() {
            return Ok(());
        }
        self.load_partitions(&new)
    }

    /// Removes from memory every group of the partitions in `indices`;
    /// their timers stop. Returns how many were removed.
    fn drop_groups(&self, indices: &BTreeSet<i32>) -> usize {
        let removed: Vec<Arc<GroupSlot>> = {
            let mut map = self.map();
            let ids: Vec<String> = map
                .keys()
                .filter(|id| indices.contains(&self.partition_for(id)))
                .cloned()
                .collect();
            ids.iter().filter_map(|id| map.remove(id)).collect()
        };
        for slot in &removed {
            slot.lock().removed = true;
            slot.wake.notify_one();
        }
        removed.len()
    }

    /// Replays the partitions in `indices` and installs their groups,
    /// answering LOAD_IN_PROGRESS for them meanwhile. A failed replay
    /// leaves them unowned.
    fn load_partitions(&self, indices: &BTreeSet<i32>) -> Result<(), offsets_log::OffsetsLogError> {
        for &index in indices {
            self.ownership.begin_load(index);
        }
        let started = Instant::now();
        let replayed = self.replay_partitions(indices);
        let (groups, records) = match replayed {
            Ok(r) => r,
            Err(e) => {
                let mut deferred = self.deferred();
                for &index in indices {
                    self.ownership.unload(index);
                }
                // Replayed again on the next load, markers included.
                deferred.retain(|d| !indices.contains(&d.partition));
                return Err(e);
            }
        };
        // Whatever is in memory for these partitions is older than the log.
        self.drop_groups(indices);
        let now = Instant::now();
        let loaded = groups.len();
        for (id, group) in groups {
            let LoadedGroup {
                value,
                offsets,
                pending,
            } = group;
            if value.is_none() && offsets.is_empty() && pending.is_empty() {
                continue;
            }
            let kind = match &value {
                Some(v) if v.group_type == CONSUMER => {
                    GroupKind::Consumer(ConsumerGroup::from_value(&id, v))
                }
                Some(v) => GroupKind::Classic(ClassicGroup::from_value(&id, v, now)),
                None => GroupKind::Classic(ClassicGroup::new(&id, now_ms())),
            };
            self.insert(
                &id,
                GroupState {
                    kind,
                    offsets,
                    pending,
                    removed: false,
                },
            );
        }
        {
            // Transactions that ended while loading: the replay may have
            // read their markers already, and then there is nothing left
            // to complete (a producer's next transaction cannot write here
            // while its partition loads).
            let mut deferred = self.deferred();
            let (due, rest): (Vec<_>, Vec<_>) = deferred
                .drain(..)
                .partition(|d| indices.contains(&d.partition));
            *deferred = rest;
            for d in due {
                self.complete_loaded(d.partition, d.producer_id, d.commit);
            }
            for &index in indices {
                self.ownership.finish_load(index);
            }
        }
        let elapsed_ms = started.elapsed().as_millis();
        tracing::info!(partitions = ?indices, groups = loaded, records, elapsed_ms, "group coordinator loaded __consumer_offsets partitions");
        Ok(())
    }

    /// Reads the partitions in `indices`, keeping the last value of each
    /// key. Returns the groups found and how many records were read.
    fn replay_partitions(
        &self,
        indices: &BTreeSet<i32>,
    ) -> Result<(HashMap<String, LoadedGroup>, usize), offsets_log::OffsetsLogError> {
        let mut groups: HashMap<String, LoadedGroup> = HashMap::new();
        let mut records = 0;
        for &index in indices {
            let Some(partition) = self.topics.partition(OFFSETS_TOPIC, index) else {
                continue;
            };
            // Groups of this partition with transactional offsets, by
            // producer: what that producer's next marker completes.
            let mut open: HashMap<i64, BTreeSet<String>> = HashMap::new();
            records += offsets_log::replay(&partition, |entry| match entry {
                ReplayEntry::Record {
                    record:
                        Replayed::Offset {
                            group,
                            topic,
                            partition,
                            value,
                        },
                    log_offset,
                    producer_id,
                } => {
                    let key = (topic, partition);
                    match (value, producer_id) {
                        (Some(value), None) => {
                            let entry = groups.entry(group).or_default();
                            entry.offsets.insert(key, Committed { value, log_offset });
                        }
                        (Some(value), Some(producer_id)) => {
                            let entry = groups.entry(group.clone()).or_default();
                            entry
                                .pending
                                .add(producer_id, key, Committed { value, log_offset });
                            open.entry(producer_id).or_default().insert(group);
                        }
                        (None, _) => {
                            let entry = groups.entry(group).or_default();
                            entry.offsets.remove(&key);
                            entry.pending.remove_partition(&key);
                        }
                    }
                }
                ReplayEntry::Record {
                    record: Replayed::Group { group, value },
                    ..
                } => {
                    groups.entry(group).or_default().value = value;
                }
                ReplayEntry::Marker {
                    producer_id,
                    commit,
                } => {
                    for group in open.remove(&producer_id).unwrap_or_default() {
                        if let Some(g) = groups.get_mut(&group) {
                            g.pending.complete(producer_id, commit, &mut g.offsets);
                        }
                    }
                }
            })?;
        }
        Ok((groups, records))
    }

    // ---- classic protocol -------------------------------------------------

    /// JoinGroup.
    pub async fn join_group(&self, group_id: &str, args: JoinArgs) -> JoinGroupResponse {
        let error = |c: i16| JoinGroupResponse {
            error_code: c,
            member_id: args.member_id.clone(),
            protocol_name: None,
            ..Default::default()
        };
        if group_id.is_empty() || group_id.len() > MAX_GROUP_ID_BYTES {
            return error(code::INVALID_GROUP_ID);
        }
        if args.protocol_type.is_empty() || args.protocols.is_empty() {
            return error(code::INCONSISTENT_GROUP_PROTOCOL);
        }
        let limits = self.classic_limits();
        if args.session_timeout_ms < limits.min_session_timeout_ms
            || args.session_timeout_ms > limits.max_session_timeout_ms
        {
            return error(code::INVALID_SESSION_TIMEOUT);
        }
        if let Err(c) = self.ensure_offsets_topic().await {
            return error(c);
        }
        if let Err(c) = self.check_coordinator(group_id) {
            return error(c);
        }
        let slot = if args.member_id.is_empty() {
            self.get_or_create(group_id, || {
                GroupKind::Classic(ClassicGroup::new(group_id, now_ms()))
            })
        } else {
            match self.get(group_id) {
                Some(slot) => slot,
                None => return error(code::UNKNOWN_MEMBER_ID),
            }
        };
        let outcome = {
            let mut state = slot.lock();
            if state.removed {
                return error(code::COORDINATOR_NOT_AVAILABLE);
            }
            let outcome = match &mut state.kind {
                GroupKind::Classic(g) => g.join(args.clone(), &limits, Instant::now(), now_ms()),
                GroupKind::Consumer(_) => {
                    JoinOutcome::Done(error(code::INCONSISTENT_GROUP_PROTOCOL))
                }
            };
            self.persist_if_dirty(&slot, &mut state);
            outcome
        };
        slot.wake.notify_one();
        match outcome {
            JoinOutcome::Done(r) => r,
            JoinOutcome::Wait(rx) => rx
                .await
                .unwrap_or_else(|_| error(code::UNKNOWN_SERVER_ERROR)),
        }
    }

    /// SyncGroup.
    #[allow(clippy::too_many_arguments)]
    pub async fn sync_group(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
    ) -> SyncGroupResponse {
        let error = |c: i16| SyncGroupResponse {
            error_code: c,
            ..Default::default()
        };
        if group_id.is_empty() {
            return error(code::INVALID_GROUP_ID);
        }
        if let Err(c) = self.check_coordinator(group_id) {
            return error(c);
        }
        let Some(slot) = self.get(group_id) else {
            return error(code::UNKNOWN_MEMBER_ID);
        };
        let (outcome, store) = {
            let mut state = slot.lock();
            if state.removed {
                return error(code::COORDINATOR_NOT_AVAILABLE);
            }
            let outcome = match &mut state.kind {
                GroupKind::Classic(g) => g.sync(
                    member_id,
                    instance_id,
                    generation_id,
                    protocol_type,
                    protocol_name,
                    assignments,
                    Instant::now(),
                    now_ms(),
                ),
                GroupKind::Consumer(_) => {
                    SyncOutcome::Done(error(code::INCONSISTENT_GROUP_PROTOCOL))
                }
            };
            self.persist_if_dirty(&slot, &mut state);
            match outcome {
                SyncOutcome::Store {
                    rx,
                    generation_id,
                    value,
                } => {
                    // Appended under the lock so the log order is the state
                    // order; fsynced below without it.
                    let write = self.append_assignment_locked(group_id, &value);
                    (SyncOutcome::Wait(rx), Some((generation_id, write)))
                }
                other => (other, None),
            }
        };
        if let Some((generation_id, write)) = store {
            // A task of its own: the members' answers must not depend on
            // the leader's connection staying open while the fsync runs.
            drop(spawn_detached(
                "group-assignment-store",
                finish_assignment_store(
                    self.this.get().cloned(),
                    Arc::clone(&slot),
                    generation_id,
                    write,
                ),
            ));
        }
        slot.wake.notify_one();
        match outcome {
            SyncOutcome::Done(r) => r,
            SyncOutcome::Wait(rx) => rx
                .await
                .unwrap_or_else(|_| error(code::UNKNOWN_SERVER_ERROR)),
            SyncOutcome::Store { rx, .. } => rx
                .await
                .unwrap_or_else(|_| error(code::UNKNOWN_SERVER_ERROR)),
        }
    }

    /// Heartbeat; returns the error code.
    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
    ) -> i16 {
        if group_id.is_empty() {
            return code::INVALID_GROUP_ID;
        }
        if let Err(c) = self.check_coordinator(group_id) {
            return c;
        }
        let Some(slot) = self.get(group_id) else {
            return code::UNKNOWN_MEMBER_ID;
        };
        let mut state = slot.lock();
        if state.removed {
            return code::COORDINATOR_NOT_AVAILABLE;
        }
        match &mut state.kind {
            GroupKind::Classic(g) => {
                g.heartbeat(member_id, instance_id, generation_id, Instant::now())
            }
            GroupKind::Consumer(_) => code::UNKNOWN_MEMBER_ID,
        }
    }

    /// LeaveGroup: one error code per (member id, instance id), or a
    /// group-level error.
    pub fn leave_group(
        &self,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Result<Vec<i16>, i16> {
        if group_id.is_empty() {
            return Err(code::INVALID_GROUP_ID);
        }
        self.check_coordinator(group_id)?;
        let Some(slot) = self.get(group_id) else {
            return Ok(vec![code::UNKNOWN_MEMBER_ID; members.len()]);
        };
        let codes = {
            let mut state = slot.lock();
            if state.removed {
                return Err(code::COORDINATOR_NOT_AVAILABLE);
            }
            let codes = match &mut state.kind {
                GroupKind::Classic(g) => members
                    .iter()
                    .map(|(m, i)| g.leave(m, i.as_deref(), Instant::now(), now_ms()))
                    .collect(),
                GroupKind::Consumer(_) => vec![code::UNKNOWN_MEMBER_ID; members.len()],
            };
            self.persist_if_dirty(&slot, &mut state);
            codes
        };
        slot.wake.notify_one();
        Ok(codes)
    }

    // ---- KIP-848 consumer protocol -------------------------------------------

    /// ConsumerGroupHeartbeat.
    pub async fn consumer_heartbeat(
        &self,
        group_id: &str,
        args: consumer::HeartbeatArgs,
    ) -> Result<consumer::HeartbeatReply, i16> {
        if group_id.is_empty() || group_id.len() > MAX_GROUP_ID_BYTES {
            return Err(code::INVALID_GROUP_ID);
        }
        tracing::debug!(group = group_id, ?args, "ConsumerGroupHeartbeat");
        if args.member_epoch == 0
            && args.subscribed_topic_names.is_none()
            && args
                .subscribed_topic_regex
                .as_ref()
                .is_some_and(|r| !r.is_empty())
        {
            // Regex subscriptions need a regex engine we do not ship yet.
            return Err(code::INVALID_REQUEST);
        }
        self.ensure_offsets_topic().await?;
        self.check_coordinator(group_id)?;
        let slot = if args.member_epoch == 0 {
            self.get_or_create(group_id, || {
                GroupKind::Consumer(ConsumerGroup::new(group_id, now_ms()))
            })
        } else {
            self.get(group_id).ok_or(code::UNKNOWN_MEMBER_ID)?
        };
        let image = self.topics.image();
        let topics: assignor::TopicsView = image
            .topics
            .values()
            .map(|t| (t.name.clone(), (t.topic_id, t.partitions.len() as i32)))
            .collect();
        let limits = consumer::ConsumerLimits {
            session_timeout_ms: self.config.consumer_session_timeout_ms,
            heartbeat_interval_ms: self.config.consumer_heartbeat_interval_ms,
        };
        let reply = {
            let mut state = slot.lock();
            if state.removed {
                return Err(code::COORDINATOR_NOT_AVAILABLE);
            }
            // An empty classic group (offsets only) becomes a consumer group.
            if let GroupKind::Classic(g) = &state.kind {
                if g.state != ClassicState::Empty {
                    return Err(code::GROUP_ID_NOT_FOUND);
                }
                state.kind = GroupKind::Consumer(ConsumerGroup::new(group_id, now_ms()));
            }
            let reply = match &mut state.kind {
                GroupKind::Consumer(g) => {
                    g.heartbeat(args, &topics, &limits, Instant::now(), now_ms())
                }
                GroupKind::Classic(_) => Err(code::GROUP_ID_NOT_FOUND),
            };
            self.persist_if_dirty(&slot, &mut state);
            reply
        };
        slot.wake.notify_one();
        reply
    }

    // ---- offsets ------------------------------------------------------------

    /// Commits offsets for a group member (or a client outside the group
    /// protocol when the identity is empty and the group has no members).
    /// Durable before it returns. Per-partition results, in request order;
    /// `Err` is a request-level error for every partition. Transactional
    /// commits go through [`GroupCoordinator::txn_commit_offsets`].
    pub async fn commit_offsets(
        &self,
        group_id: &str,
        who: &CommitIdentity,
        offsets: Vec<OffsetToCommit>,
    ) -> Result<Vec<i16>, i16> {
        if group_id.is_empty() || group_id.len() > MAX_GROUP_ID_BYTES {
            return Err(code::INVALID_GROUP_ID);
        }
        self.ensure_offsets_topic().await?;
        self.check_coordinator(group_id)?;
        let (results, values) = self.check_offsets(offsets);
        let simple = who.generation_or_epoch < 0 && who.member_id.is_empty();
        let slot = if simple {
            self.get_or_create(group_id, || {
                GroupKind::Classic(ClassicGroup::new(group_id, now_ms()))
            })
        } else {
            match self.get(group_id) {
                Some(slot) => slot,
                None => return Err(code::ILLEGAL_GENERATION),
            }
        };
        let (partition, end, first) = {
            let mut state = slot.lock();
            if state.removed {
                return Err(code::COORDINATOR_NOT_AVAILABLE);
            }
            match &mut state.kind {
                GroupKind::Classic(g) => g.validate_commit(
                    &who.member_id,
                    who.instance_id.as_deref(),
                    who.generation_or_epoch,
                    Instant::now(),
                )?,
                GroupKind::Consumer(g) => {
                    g.validate_commit(&who.member_id, who.generation_or_epoch, Instant::now())?
                }
            }
            if values.is_empty() {
                return Ok(results);
            }
            let records = offset_records(group_id, &values)?;
            let (partition, end) = self.append_locked(group_id, &records, None)?;
            (partition, end, end - records.len() as i64)
        };
        // Appended: the fsync and the in-memory apply run on their own task,
        // so a caller that goes away (a closed connection) cannot leave the
        // commit in the log but missing from the group's offsets.
        let finished = spawn_detached("offset-commit", async move {
            commit_durable(partition, end).await?;
            apply_committed(&mut slot.lock().offsets, first, values);
            Ok::<(), i16>(())
        });
        match finished.await {
            Ok(done) => done?,
            Err(e) => {
                tracing::error!(group = group_id, "offset commit task failed: {e}");
                return Err(code::UNKNOWN_SERVER_ERROR);
            }
        }
        Ok(results)
    }

    /// Applies the offsets of a committed transaction held by the
    /// transaction coordinator: the legacy path, for transactions prepared
    /// before [`GroupCoordinator::txn_commit_offsets`] existed. The member was checked when the offsets were sent; by the
    /// time the transaction commits the group may have rebalanced, and
    /// Kafka applies them anyway. Durable before it returns.
    pub async fn commit_transactional_offsets(
        &self,
        group_id: &str,
        offsets: Vec<OffsetToCommit>,
    ) -> Result<(), i16> {
        if offsets.is_empty() {
            return Ok(());
        }
        self.ensure_offsets_topic().await?;
        let slot = self.get_or_create(group_id, || {
            GroupKind::Classic(ClassicGroup::new(group_id, now_ms()))
        });
        let now = now_ms();
        let values: Vec<(String, i32, OffsetValue)> = offsets
            .into_iter()
            .map(|o| {
                let value = OffsetValue {
                    offset: o.offset,
                    leader_epoch: o.leader_epoch,
                    metadata: o.metadata.unwrap_or_default(),
                    commit_timestamp_ms: now,
                };
                (o.topic, o.partition, value)
            })
            .collect();
        let (partition, end, first) = {
            let state = slot.lock();
            if state.removed {
                return Err(code::COORDINATOR_NOT_AVAILABLE);
            }
            let records = offset_records(group_id, &values)?;
            let (partition, end) = self.append_locked(group_id, &records, None)?;
            (partition, end, end - records.len() as i64)
        };
        commit_durable(partition, end).await?;
        apply_committed(&mut slot.lock().offsets, first, values);
        Ok(())
    }

    /// The per-partition checks of an offset commit (OffsetCommit and
    /// TxnOffsetCommit alike): codes in request order, and the values to
    /// write for the partitions accepted.
    fn check_offsets(
        &self,
        offsets: Vec<OffsetToCommit>,
    ) -> (Vec<i16>, Vec<(String, i32, OffsetValue)>) {
        let image = self.topics.image();
        let max_metadata = self.config.offset_metadata_max_bytes as usize;
        let now = now_ms();
        let mut results = Vec::with_capacity(offsets.len());
        let mut accepted = Vec::new();
        for o in offsets {
            let known = image
                .topics
                .get(&o.topic)
                .is_some_and(|t| t.partitions.contains_key(&o.partition));
            let c = if !known {
                code::UNKNOWN_TOPIC_OR_PARTITION
            } else if o.metadata.as_ref().is_some_and(|m| m.len() > max_metadata) {
                code::OFFSET_METADATA_TOO_LARGE
            } else {
                let value = OffsetValue {
                    offset: o.offset,
                    leader_epoch: o.leader_epoch,
                    metadata: o.metadata.unwrap_or_default(),
                    commit_timestamp_ms: now,
                };
                accepted.push((o.topic, o.partition, value));
                code::NONE
            };
            results.push(c);
        }
        (results, accepted)
    }

    /// TxnOffsetCommit, Kafka's model: appends the offsets to the group's
    /// partition in a transactional batch of `producer_id` (no sequence;
    /// the log refuses an epoch older than the partition's) and holds them
    /// as pending for that producer, invisible to OffsetFetch until
    /// [`GroupCoordinator::complete_txn`] reports its transaction's marker.
    /// Durable before it returns. Per-partition results in request order;
    /// `Err` is a request-level error. The caller has checked the member
    /// and generation.
    pub async fn txn_commit_offsets(
        &self,
        group_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        offsets: Vec<OffsetToCommit>,
    ) -> Result<Vec<i16>, i16> {
        if group_id.is_empty() || group_id.len() > MAX_GROUP_ID_BYTES {
            return Err(code::INVALID_GROUP_ID);
        }
        self.ensure_offsets_topic().await?;
        self.check_coordinator(group_id)?;
        let (results, values) = self.check_offsets(offsets);
        if values.is_empty() {
            return Ok(results);
        }
        // Kafka creates a group it does not know for a TxnOffsetCommit, as
        // for a simple consumer's OffsetCommit.
        let slot = self.get_or_create(group_id, || {
            GroupKind::Classic(ClassicGroup::new(group_id, now_ms()))
        });
        let producer = TxnProducer {
            producer_id,
            producer_epoch,
        };
        let (partition, end) = {
            let mut state = slot.lock();
            if state.removed {
                return Err(code::COORDINATOR_NOT_AVAILABLE);
            }
            let records = offset_records(group_id, &values)?;
            let (partition, end) = self.append_locked(group_id, &records, Some(producer))?;
            // Pending from the append on, under the same lock: the marker
            // that ends this transaction is written after this record, so
            // `complete_txn` must find the offsets however late the fsync.
            // Were the write lost, the offsets stay pending and invisible
            // until the producer's marker (or abort) or a reload, which
            // follows the log either way.
            let first = end - records.len() as i64;
            for (i, (topic, p, value)) in values.into_iter().enumerate() {
                let log_offset = first + i as i64;
                state
                    .pending
                    .add(producer_id, (topic, p), Committed { value, log_offset });
            }
            (partition, end)
        };
        // Its own task, so the fsync runs to the end whoever waits.
        match spawn_detached("txn-offset-commit", commit_durable(partition, end)).await {
            Ok(done) => done?,
            Err(e) => {
                tracing::error!(
                    group = group_id,
                    "transactional offset commit task failed: {e}"
                );
                return Err(code::UNKNOWN_SERVER_ERROR);
            }
        }
        Ok(results)
    }

    /// Ends `producer_id`'s transaction for the groups of
    /// `__consumer_offsets` partition `offsets_partition`, once its COMMIT
    /// (`commit`) or ABORT marker is durable there: their pending offsets
    /// from it are committed (see [`PendingOffsets::complete`]) or dropped.
    /// In memory only; the marker is the durable record. A partition not
    /// owned here is left alone (its next load replays the marker); one
    /// still loading gets the change once loaded.
    pub fn complete_txn(&self, offsets_partition: i32, producer_id: i64, commit: bool) {
        {
            let mut deferred = self.deferred();
            match self.ownership.check(offsets_partition) {
                Ok(()) => {}
                Err(code::COORDINATOR_LOAD_IN_PROGRESS) => {
                    deferred.push(DeferredCompletion {
                        partition: offsets_partition,
                        producer_id,
                        commit,
                    });
                    return;
                }
                Err(_) => return,
            }
        }
        self.complete_loaded(offsets_partition, producer_id, commit);
    }

    /// [`GroupCoordinator::complete_txn`] on a loaded partition. Walks the
    /// groups in memory: a marker on `__consumer_offsets` comes once per
    /// transaction that committed offsets, not per record.
    fn complete_loaded(&self, index: i32, producer_id: i64, commit: bool) {
        let slots: Vec<Arc<GroupSlot>> = self
            .map()
            .iter()
            .filter(|(id, _)| self.partition_for(id) == index)
            .map(|(_, slot)| Arc::clone(slot))
            .collect();
        for slot in slots {
            let mut state = slot.lock();
            if state.removed {
                continue;
            }
            let GroupState {
                offsets, pending, ..
            } = &mut *state;
            pending.complete(producer_id, commit, offsets);
        }
    }

    /// The partitions of `group_id` with transactional offsets whose
    /// transaction has not ended, from any producer: OffsetFetch with
    /// `require_stable` (KIP-447) answers UNSTABLE_OFFSET_COMMIT for them.
    pub fn pending_offset_partitions(&self, group_id: &str) -> BTreeSet<(String, i32)> {
        let Some(slot) = self.get(group_id) else {
            return BTreeSet::new();
        };
        let state = slot.lock();
        if state.removed {
            return BTreeSet::new();
        }
        state.pending.partitions()
    }

    /// Committed offsets: for the named partitions, or all when `None`.
    /// A partition without a commit has `None`.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        topics: Option<Vec<(String, Vec<i32>)>>,
    ) -> FetchedOffsets {
        let slot = self.get(group_id);
        let state = slot.as_ref().map(|s| s.lock());
        let offsets = state.as_ref().filter(|s| !s.removed).map(|s| &s.offsets);
        match topics {
            Some(topics) => topics
                .into_iter()
                .map(|(topic, parts)| {
                    let parts = parts
                        .into_iter()
                        .map(|p| {
                            let v = offsets
                                .and_then(|o| o.get(&(topic.clone(), p)))
                                .map(|c| c.value.clone());
                            (p, v)
                        })
                        .collect();
                    (topic, parts)
                })
                .collect(),
            None => {
                let mut out: FetchedOffsets = Vec::new();
                for ((topic, p), c) in offsets.into_iter().flatten() {
                    match out.last_mut() {
                        Some((t, v)) if t == topic => v.push((*p, Some(c.value.clone()))),
                        _ => out.push((topic.clone(), vec![(*p, Some(c.value.clone()))])),
                    }
                }
                out
            }
        }
    }

    /// Checks a KIP-848 member in OffsetFetch v9 (member id and epoch).
    pub fn validate_fetch(
        &self,
        group_id: &str,
        member_id: &str,
        member_epoch: i32,
    ) -> Result<(), i16> {
        let Some(slot) = self.get(group_id) else {
            return Ok(());
        };
        let state = slot.lock();
        match &state.kind {
            GroupKind::Consumer(g) => g.validate_fetch(member_id, member_epoch),
            GroupKind::Classic(_) => Ok(()),
        }
    }

    /// OffsetDelete: removes offsets of partitions the group does not consume.
    pub async fn delete_offsets(
        &self,
        group_id: &str,
        partitions: Vec<(String, i32)>,
    ) -> Result<Vec<i16>, i16> {
        if group_id.is_empty() {
            return Err(code::INVALID_GROUP_ID);
        }
        self.check_coordinator(group_id)?;
        let slot = self.get(group_id).ok_or(code::GROUP_ID_NOT_FOUND)?;
        let (results, write) = {
            let mut state = slot.lock();
            if state.removed {
                return Err(code::GROUP_ID_NOT_FOUND);
            }
            let subscribed: Option<Vec<String>> = match &state.kind {
                GroupKind::Classic(g) if g.state == ClassicState::Empty => Some(Vec::new()),
                GroupKind::Classic(g) => g.subscribed_topics(),
                GroupKind::Consumer(g) => Some(g.subscribed_topics()),
            };
            let Some(subscribed) = subscribed else {
                return Err(code::NON_EMPTY_GROUP);
            };
            let mut results = Vec::with_capacity(partitions.len());
            let mut records = Vec::new();
            for (topic, p) in &partitions {
                if subscribed.contains(topic) {
                    results.push(code::GROUP_SUBSCRIBED_TO_TOPIC);
                    continue;
                }
                let key = (topic.clone(), *p);
                // The tombstone removes pending transactional offsets of the
                // partition too (Kafka writes one for either).
                if state.offsets.contains_key(&key) || state.pending.contains_partition(&key) {
                    records.push(encoded(
                        group_id,
                        LogRecord::offset(group_id, topic, *p, None),
                    )?);
                    state.offsets.remove(&key);
                    state.pending.remove_partition(&key);
                }
                results.push(code::NONE);
            }
            let write = if records.is_empty() {
                None
            } else {
                Some(self.append_locked(group_id, &records, None)?)
            };
            (results, write)
        };
        if let Some((partition, end)) = write {
            commit_durable(partition, end).await?;
        }
        Ok(results)
    }

    /// DeleteGroups for one group.
    pub async fn delete_group(&self, group_id: &str) -> i16 {
        if let Err(c) = self.check_coordinator(group_id) {
            return c;
        }
        let write = {
            let mut map = self.map();
            let Some(slot) = map.get(group_id).cloned() else {
                return code::GROUP_ID_NOT_FOUND;
            };
            let mut state = slot.lock();
            if !state.is_empty() {
                return code::NON_EMPTY_GROUP;
            }
            // Tombstones for committed and pending offsets alike, as Kafka
            // writes them: replay then drops both.
            let mut keys: BTreeSet<(String, i32)> = state.pending.partitions();
            keys.extend(state.offsets.keys().cloned());
            let records = keys
                .iter()
                .map(|(t, p)| LogRecord::offset(group_id, t, *p, None))
                .collect::<Result<Vec<_>, _>>()
                .and_then(|mut records| {
                    records.extend(LogRecord::group_deleted(group_id)?);
                    Ok(records)
                });
            let records = match encoded(group_id, records) {
                Ok(r) => r,
                Err(c) => return c,
            };
            let write = match self.append_locked(group_id, &records, None) {
                Ok(w) => w,
                Err(c) => return c,
            };
            state.offsets.clear();
            state.pending.clear();
            state.removed = true;
            if let GroupKind::Classic(g) = &mut state.kind {
                g.state = ClassicState::Dead;
            }
            map.remove(group_id);
            drop(state);
            slot.wake.notify_one();
            write
        };
        match commit_durable(write.0, write.1).await {
            Ok(()) => code::NONE,
            Err(c) => c,
        }
    }

    /// Removes offsets of empty groups older than the retention, and empty
    /// groups left with nothing. Kafka's rule: a group that uses the group
    /// protocol keeps its offsets for the retention period after it became
    /// empty; a group used only to store offsets expires each offset
    /// retention after its commit.
    pub fn expire_offsets(&self, now_ms: i64) -> usize {
        let retention_ms = self.config.offsets_retention_ms();
        let mut expired_total = 0;
        let mut map = self.map();
        let ids: Vec<String> = map.keys().cloned().collect();
        for id in ids {
            let Some(slot) = map.get(&id).cloned() else {
                continue;
            };
            let mut state = slot.lock();
            let expired = expired_offsets(&state, now_ms, retention_ms);
            // A group with an open transaction's offsets stays (Kafka).
            let delete_group = state.is_empty()
                && state.offsets.len() == expired.len()
                && state.pending.is_empty();
            if expired.is_empty() && !delete_group {
                continue;
            }
            let records = expired
                .iter()
                .map(|(t, p)| LogRecord::offset(&id, t, *p, None))
                .collect::<Result<Vec<_>, _>>()
                .and_then(|mut records| {
                    if delete_group {
                        records.extend(LogRecord::group_deleted(&id)?);
                    }
                    Ok(records)
                });
            let Ok(records) = encoded(&id, records) else {
                continue;
            };
            let Ok((partition, end)) = self.append_locked(&id, &records, None) else {
                continue;
            };
            drop(spawn_detached(
                "offset-expiry-fsync",
                commit_durable(partition, end),
            ));
            for key in &expired {
                state.offsets.remove(key);
            }
            expired_total += expired.len();
            if delete_group {
                state.removed = true;
                map.remove(&id);
                drop(state);
                slot.wake.notify_one();
            }
        }
        expired_total
    }
}

/// Offsets of `state` due to expire at `now_ms`. An offset with a pending
/// transactional offset for its partition does not expire yet (Kafka).
pub fn expired_offsets(state: &GroupState, now_ms: i64, retention_ms: i64) -> Vec<(String, i32)> {
    if !state.is_empty() {
        return Vec::new();
    }
    let uses_protocol = match &state.kind {
        GroupKind::Classic(g) => g.protocol_type.is_some(),
        GroupKind::Consumer(_) => true,
    };
    let empty_since = match &state.kind {
        GroupKind::Classic(g) => g.state_timestamp_ms,
        GroupKind::Consumer(g) => g.state_timestamp_ms,
    };
    state
        .offsets
        .iter()
        .filter(|(_, c)| {
            let base = if uses_protocol {
                empty_since.max(c.value.commit_timestamp_ms)
            } else {
                c.value.commit_timestamp_ms
            };
            base.saturating_add(retention_ms) <= now_ms
        })
        .filter(|(k, _)| !state.pending.contains_partition(k))
        .map(|(k, _)| k.clone())
        .collect()
}

/// Waits for a classic group's assignment record to be durable, then lets
/// the group answer its members (or fail them and rebalance).
async fn finish_assignment_store(
    coordinator: Option<Weak<GroupCoordinator>>,
    slot: Arc<GroupSlot>,
    generation_id: i32,
    write: Result<(Arc<Partition>, i64), i16>,
) {
    let result = match write {
        Ok((partition, end)) => partition.commit(end).await.map_err(|e| {
            tracing::error!(partition = %partition.tp, "cannot fsync group assignment: {e}");
            code::NOT_COORDINATOR
        }),
        Err(c) => Err(c),
    };
    {
        let mut state = slot.lock();
        if !state.removed
            && let GroupKind::Classic(g) = &mut state.kind
        {
            g.assignment_stored(generation_id, result, Instant::now(), now_ms());
        }
        if let Some(coordinator) = coordinator.and_then(|c| c.upgrade()) {
            coordinator.persist_if_dirty(&slot, &mut state);
        }
    }
    slot.wake.notify_one();
}

/// Sleeps until the group's next deadline (or a change), then runs its
/// timers. Exits when the group is removed or the broker is gone.
async fn run_timer(slot: Arc<GroupSlot>, coordinator: Weak<GroupCoordinator>) {
    loop {
        let wake = slot.wake.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        let deadline = {
            let state = slot.lock();
            if state.removed {
                return;
            }
            state.next_deadline()
        };
        match deadline {
            Some(d) => {
                tokio::select! {
                    () = tokio::time::sleep_until(d) => {}
                    () = &mut wake => {}
                }
            }
            None => wake.await,
        }
        let Some(coordinator) = coordinator.upgrade() else {
            return;
        };
        let mut state = slot.lock();
        if state.removed {
            return;
        }
        let now = Instant::now();
        match &mut state.kind {
            GroupKind::Classic(g) => g.on_timer(now, now_ms()),
            GroupKind::Consumer(g) => g.on_timer(now, now_ms()),
        }
        coordinator.persist_if_dirty(&slot, &mut state);
    }
}

/// Kafka's offset expiration task, every `offsets_retention_check_interval_ms`.
async fn run_retention(coordinator: Weak<GroupCoordinator>) {
    let interval = match coordinator.upgrade() {
        Some(c) => Duration::from_millis(c.config.offsets_retention_check_interval_ms),
        None => return,
    };
    loop {
        tokio::time::sleep(interval).await;
        let Some(c) = coordinator.upgrade() else {
            return;
        };
        let n = c.expire_offsets(now_ms());
        if n > 0 {
            tracing::info!(offsets = n, "expired committed offsets of empty groups");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A broker over a temp dir with a one-partition `__consumer_offsets`
    /// and no initial rebalance delay, loaded but not listening.
    fn broker_in(dir: &std::path::Path) -> Arc<crate::testing::Node> {
        let broker = crate::testing::bare_node(
            dir,
            crate::testing::group_config(),
            crate::config::TransactionConfig::default(),
        );
        broker.groups.load(&Tasks::new()).expect("load");
        broker
    }

    fn join_args() -> JoinArgs {
        JoinArgs {
            member_id: String::new(),
            instance_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 10_000,
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), Bytes::from_static(b"sub"))],
            require_known_member_id: false,
        }
    }

    /// The group's latest metadata record in the durable (below the high
    /// watermark) part of `__consumer_offsets`.
    fn durable_group_value(broker: &crate::testing::Node, group: &str) -> Option<GroupValue> {
        let partition = broker.replicas.partition(OFFSETS_TOPIC, 0)?;
        let mut last = None;
        offsets_log::replay(&partition, |r| {
            if let ReplayEntry::Record {
                record: Replayed::Group { group: g, value },
                ..
            } = r
                && g == group
            {
                last = value;
            }
        })
        .expect("replay");
        last
    }

    /// Replays `records` offset commits over `keys` distinct keys (the last
    /// tenth of the groups deleted by tombstones) and returns how long
    /// [`GroupCoordinator::load`] took after a restart.
    async fn replay_commits(records: usize, keys: usize) -> Duration {
        const PARTITIONS_PER_GROUP: usize = 10;
        let dir = tempfile::tempdir().expect("tempdir");
        let groups = keys / PARTITIONS_PER_GROUP;
        {
            let broker = broker_in(dir.path());
            broker
                .groups
                .ensure_offsets_topic()
                .await
                .expect("offsets topic");
            let partition = broker
                .replicas
                .partition(OFFSETS_TOPIC, 0)
                .expect("partition");
            let mut batch = Vec::with_capacity(1000);
            for i in 0..records {
                let key = i % keys;
                let value = OffsetValue {
                    offset: i as i64,
                    leader_epoch: 0,
                    metadata: String::new(),
                    commit_timestamp_ms: now_ms(),
                };
                batch.push(
                    LogRecord::offset(
                        &format!("group-{}", key / PARTITIONS_PER_GROUP),
                        "topic",
                        (key % PARTITIONS_PER_GROUP) as i32,
                        Some(&value),
                    )
                    .expect("encode"),
                );
                if batch.len() == 1000 {
                    offsets_log::append(&partition, &batch, None, now_ms()).expect("append");
                    batch.clear();
                }
            }
            for g in groups - groups / 10..groups {
                for p in 0..PARTITIONS_PER_GROUP {
                    batch.push(
                        LogRecord::offset(&format!("group-{g}"), "topic", p as i32, None)
                            .expect("encode"),
                    );
                }
            }
            let end = offsets_log::append(&partition, &batch, None, now_ms()).expect("append");
            partition.commit(end).await.expect("fsync");
            broker.replicas.flush_all().expect("flush");
        }
        let started = std::time::Instant::now();
        let broker = broker_in(dir.path());
        let took = started.elapsed();
        // Only the latest value of each key is held, and tombstones win.
        let kept = groups - groups / 10;
        assert_eq!(broker.groups.all().len(), kept);
        for g in [0, kept - 1] {
            let fetched = broker.groups.fetch_offsets(&format!("group-{g}"), None);
            assert_eq!(fetched.len(), 1);
            assert_eq!(fetched[0].1.len(), PARTITIONS_PER_GROUP);
            for (p, v) in &fetched[0].1 {
                let key = g * PARTITIONS_PER_GROUP + *p as usize;
                let last = (records - 1 - key) / keys * keys + key;
                assert_eq!(v.as_ref().map(|v| v.offset), Some(last as i64));
            }
        }
        assert!(
            broker
                .groups
                .get(&format!("group-{}", groups - 1))
                .is_none()
        );
        took
    }

    fn committed(offset: i64) -> OffsetValue {
        OffsetValue {
            offset,
            leader_epoch: 2,
            metadata: format!("m{offset}"),
            commit_timestamp_ms: 1_000 + offset,
        }
    }

    fn fetched(broker: &crate::testing::Node, group: &str) -> Vec<(String, i32, i64, String)> {
        broker
            .groups
            .fetch_offsets(group, None)
            .into_iter()
            .flat_map(|(t, ps)| {
                ps.into_iter()
                    .filter_map(move |(p, v)| v.map(|v| (t.clone(), p, v.offset, v.metadata)))
            })
            .collect()
    }

    /// A data directory written by Sluice before Kafka's formats (JSON
    /// records, tombstones included) loads with every offset and group, and
    /// later records in Kafka's format win over older JSON ones.
    #[tokio::test]
    async fn legacy_json_offsets_log_loads_without_losing_an_offset() {
        use offsets_log::legacy::writer;
        let dir = tempfile::tempdir().expect("tempdir");
        let classic = GroupValue {
            group_type: offsets_log::CLASSIC.into(),
            protocol_type: Some("consumer".into()),
            generation: 3,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            state_timestamp_ms: 5,
            members: vec![offsets_log::MemberValue {
                member_id: "m1".into(),
                instance_id: Some("i1".into()),
                client_id: "c".into(),
                client_host: "/h".into(),
                session_timeout_ms: 30_000,
                rebalance_timeout_ms: 60_000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        let consumer = GroupValue {
            group_type: CONSUMER.into(),
            protocol_type: Some(CONSUMER.into()),
            generation: 7,
            protocol: Some("uniform".into()),
            leader: None,
            state_timestamp_ms: 6,
            members: vec![],
        };
        {
            let broker = broker_in(dir.path());
            broker
                .groups
                .ensure_offsets_topic()
                .await
                .expect("offsets topic");
            let partition = broker
                .replicas
                .partition(OFFSETS_TOPIC, 0)
                .expect("partition");
            let new = |g: &str, p: i32, v: Option<&OffsetValue>| {
                LogRecord::offset(g, "t", p, v).expect("encode")
            };
            let records = vec![
                writer::offset("classic", "t", 0, Some(&committed(10))),
                writer::offset("classic", "t", 1, Some(&committed(11))),
                writer::offset("classic", "t", 1, None),
                writer::offset("classic", "t", 2, Some(&committed(12))),
                writer::group("classic", Some(&classic)),
                writer::group("kip848", Some(&consumer)),
                writer::offset("kip848", "t", 0, Some(&committed(20))),
                writer::offset("deleted", "t", 0, Some(&committed(30))),
                writer::group("deleted", Some(&classic)),
                writer::offset("deleted", "t", 0, None),
                writer::group("deleted", None),
                // Old JSON first, then Kafka's format for the same keys.
                writer::offset("mixed", "t", 0, Some(&committed(40))),
                new("mixed", 0, Some(&committed(41))),
                writer::offset("mixed", "t", 1, Some(&committed(42))),
                new("mixed", 1, None),
                new("mixed", 2, Some(&committed(43))),
                writer::offset("mixed", "t", 2, None),
            ];
            let end = offsets_log::append(&partition, &records, None, now_ms()).expect("append");
            partition.commit(end).await.expect("fsync");
            broker.replicas.flush_all().expect("flush");
        }
        let broker = broker_in(dir.path());
        assert_eq!(
            fetched(&broker, "classic"),
            vec![
                ("t".into(), 0, 10, "m10".into()),
                ("t".into(), 2, 12, "m12".into())
            ]
        );
        {
            let slot = broker.groups.get("classic").expect("classic group");
            let state = slot.lock();
            assert_eq!(state.state_name(), "Stable");
            assert_eq!(
                state.to_value(),
                classic,
                "members and assignments are back"
            );
        }
        assert_eq!(
            fetched(&broker, "kip848"),
            vec![("t".into(), 0, 20, "m20".into())]
        );
        {
            let slot = broker.groups.get("kip848").expect("KIP-848 group");
            let state = slot.lock();
            assert_eq!(state.group_type(), CONSUMER);
            let GroupKind::Consumer(g) = &state.kind else {
                panic!("not a KIP-848 group");
            };
            assert_eq!(g.group_epoch, 7);
        }
        assert!(broker.groups.get("deleted").is_none());
        assert_eq!(
            fetched(&broker, "mixed"),
            vec![("t".into(), 0, 41, "m41".into())]
        );

        // The next write of a key is in Kafka's format, and wins on reload.
        let offsets = vec![OffsetToCommit {
            topic: "t".into(),
            partition: 0,
            offset: 99,
            leader_epoch: 2,
            metadata: Some("m99".into()),
        }];
        broker
            .groups
            .commit_transactional_offsets("classic", offsets)
            .await
            .expect("commit");
        let partition = broker
            .replicas
            .partition(OFFSETS_TOPIC, 0)
            .expect("partition");
        let mut last_key = None;
        offsets_log::replay(&partition, |r| last_key = Some(r)).expect("replay");
        assert!(matches!(
            last_key,
            Some(ReplayEntry::Record { record: Replayed::Offset { ref group, .. }, producer_id: None, .. })
                if group == "classic"
        ));
        let read = partition
            .read(partition.high_watermark() - 1, 1 << 20)
            .expect("read");
        let bytes = read.to_bytes().expect("bytes");
        let record = sluice_records::decode_records(&bytes)
            .expect("records")
            .pop()
            .expect("one record");
        assert_eq!(
            record.key.as_deref().map(|k| &k[..2]),
            Some(&[0u8, 1][..]),
            "written as an OffsetCommitKey"
        );
        drop(broker);
        let broker = broker_in(dir.path());
        assert_eq!(
            fetched(&broker, "classic"),
            vec![
                ("t".into(), 0, 99, "m99".into()),
                ("t".into(), 2, 12, "m12".into())
            ]
        );
    }

    #[tokio::test]
    async fn load_keeps_only_the_latest_value_of_each_key() {
        let took = replay_commits(20_000, 1_000).await;
        eprintln!("replayed 20k commits in {took:?}");
    }

    /// Startup cost of replaying 100k commits (docs/design.md quotes it):
    /// `cargo test --release -p sluice-broker --lib replay_of_100k -- --ignored --nocapture`.
    #[tokio::test]
    #[ignore = "measurement"]
    async fn replay_of_100k_commits_is_measured() {
        let took = replay_commits(100_000, 1_000).await;
        eprintln!("replayed 100k commits in {took:?}");
    }

    #[tokio::test]
    async fn sync_group_answers_only_after_the_assignment_is_durable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = broker_in(dir.path());
        let joined = broker.groups.join_group("g", join_args()).await;
        assert_eq!(joined.error_code, code::NONE);
        assert_eq!(joined.leader, joined.member_id);
        let synced = broker
            .groups
            .sync_group(
                "g",
                &joined.member_id,
                None,
                joined.generation_id,
                Some("consumer"),
                Some("range"),
                vec![(joined.member_id.clone(), Bytes::from_static(b"mine"))],
            )
            .await;
        assert_eq!(synced.error_code, code::NONE);
        assert_eq!(synced.assignment, Bytes::from_static(b"mine"));
        // Answered, so the record is already fsynced and below the high
        // watermark: a crash now would bring the assignment back.
        let value = durable_group_value(&broker, "g").expect("group record is durable");
        assert_eq!(value.generation, joined.generation_id);
        assert_eq!(value.members.len(), 1);
        assert_eq!(value.members[0].member_id, joined.member_id);
        assert_eq!(value.members[0].assignment, Bytes::from_static(b"mine"));
        let slot = broker.groups.get("g").expect("group");
        assert_eq!(slot.lock().state_name(), "Stable");
    }

    #[tokio::test]
    async fn a_failed_assignment_write_fails_sync_group_and_rebalances() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = broker_in(dir.path());
        let joined = broker.groups.join_group("g", join_args()).await;
        assert_eq!(joined.error_code, code::NONE);
        // With the coordinator's partition gone the assignment cannot be
        // written (Kafka: UNKNOWN_TOPIC_OR_PARTITION -> COORDINATOR_NOT_AVAILABLE).
        // Clients cannot delete an internal topic, so remove it underneath.
        crate::testing::remove_topic_bypassing_checks(&broker, OFFSETS_TOPIC).await;
        assert!(broker.replicas.partition(OFFSETS_TOPIC, 0).is_none());
        let synced = broker
            .groups
            .sync_group(
                "g",
                &joined.member_id,
                None,
                joined.generation_id,
                None,
                None,
                vec![(joined.member_id.clone(), Bytes::from_static(b"mine"))],
            )
            .await;
        assert_eq!(synced.error_code, code::COORDINATOR_NOT_AVAILABLE);
        assert!(synced.assignment.is_empty());
        let slot = broker.groups.get("g").expect("group");
        assert_eq!(slot.lock().state_name(), "PreparingRebalance");
    }

    fn offset(ts: i64) -> Committed {
        Committed {
            value: OffsetValue {
                offset: 1,
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp_ms: ts,
            },
            log_offset: 0,
        }
    }

    #[test]
    fn offsets_of_empty_groups_expire_after_retention() {
        let mut g = ClassicGroup::new("g", 1_000);
        g.protocol_type = Some("consumer".into());
        let mut state = GroupState {
            kind: GroupKind::Classic(g),
            offsets: BTreeMap::new(),
            pending: PendingOffsets::default(),
            removed: false,
        };
        state.offsets.insert(("t".into(), 0), offset(500));
        state.offsets.insert(("t".into(), 1), offset(5_000));
        // Protocol groups: retention counts from when the group became empty,
        // or the commit if later.
        assert!(expired_offsets(&state, 1_999, 1_000).is_empty());
        assert_eq!(
            expired_offsets(&state, 2_000, 1_000),
            vec![("t".to_owned(), 0)]
        );
        assert_eq!(expired_offsets(&state, 6_000, 1_000).len(), 2);
        // A group used only for storage expires offsets one by one.
        if let GroupKind::Classic(g) = &mut state.kind {
            g.protocol_type = None;
        }
        assert_eq!(
            expired_offsets(&state, 1_500, 1_000),
            vec![("t".to_owned(), 0)]
        );
    }

    /// The first of `g0`, `g1`, … that `__consumer_offsets` partition
    /// `index` holds.
    fn group_in(groups: &GroupCoordinator, index: i32) -> String {
        (0..)
            .map(|i| format!("g{i}"))
            .find(|g| groups.partition_for(g) == index)
            .expect("some group id hashes there")
    }

    fn simple_commit(offset: i64) -> Vec<OffsetToCommit> {
        vec![OffsetToCommit {
            topic: "t".into(),
            partition: 0,
            offset,
            leader_epoch: -1,
            metadata: None,
        }]
    }

    fn outsider() -> CommitIdentity {
        CommitIdentity {
            member_id: String::new(),
            instance_id: None,
            generation_or_epoch: -1,
        }
    }

    /// Kafka's rule: a group is coordinated by the leader of its
    /// `__consumer_offsets` partition. When leadership moves away the
    /// group is dropped from memory and every group API answers
    /// NOT_COORDINATOR; when it comes back the partition is replayed and
    /// the group's offsets are served again. Groups of other partitions
    /// are untouched throughout.
    #[tokio::test]
    async fn groups_follow_the_leadership_of_their_offsets_partition() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = GroupConfig {
            offsets_topic_num_partitions: 3,
            ..crate::testing::group_config()
        };
        let node = crate::testing::node_with(
            dir.path(),
            config,
            crate::config::TransactionConfig::default(),
        )
        .await;
        crate::testing::create_topic(&node, "t", 1).await;
        node.groups
            .ensure_offsets_topic()
            .await
            .expect("offsets topic");
        // Registered after the topics exist, so this node leads all of them
        // (placement spreads partitions over registered brokers).
        crate::testing::register_brokers(&node, &[1, 2, 3]).await;
        let groups = &node.groups;
        let (staying, moving) = (group_in(groups, 0), group_in(groups, 1));
        for g in [&staying, &moving] {
            groups
                .commit_offsets(g, &outsider(), simple_commit(5))
                .await
                .expect("commit");
        }

        crate::testing::move_leader(&node, OFFSETS_TOPIC, 1, 2).await;
        assert!(groups.get(&moving).is_none(), "unloaded");
        assert_eq!(
            groups.check_coordinator(&moving),
            Err(code::NOT_COORDINATOR)
        );
        let join = groups.join_group(&moving, join_args()).await;
        assert_eq!(join.error_code, code::NOT_COORDINATOR);
        let sync = groups
            .sync_group(&moving, "m", None, 1, None, None, Vec::new())
            .await;
        assert_eq!(sync.error_code, code::NOT_COORDINATOR);
        assert_eq!(
            groups.heartbeat(&moving, "m", None, 1),
            code::NOT_COORDINATOR
        );
        assert_eq!(
            groups.leave_group(&moving, &[("m".into(), None)]),
            Err(code::NOT_COORDINATOR)
        );
        assert_eq!(
            groups
                .commit_offsets(&moving, &outsider(), simple_commit(6))
                .await,
            Err(code::NOT_COORDINATOR)
        );
        assert_eq!(
            groups.delete_offsets(&moving, vec![("t".into(), 0)]).await,
            Err(code::NOT_COORDINATOR)
        );
        assert_eq!(groups.delete_group(&moving).await, code::NOT_COORDINATOR);
        let heartbeat = consumer::HeartbeatArgs {
            member_id: String::new(),
            member_epoch: 0,
            instance_id: None,
            rack_id: None,
            rebalance_timeout_ms: 10_000,
            subscribed_topic_names: Some(vec!["t".into()]),
            subscribed_topic_regex: None,
            server_assignor: None,
            owned: None,
            client_id: "c".into(),
            client_host: "/h".into(),
        };
        assert_eq!(
            groups
                .consumer_heartbeat(&moving, heartbeat)
                .await
                .map(|_| ()),
            Err(code::NOT_COORDINATOR)
        );
        // The other partition's group is still served.
        assert_eq!(groups.check_coordinator(&staying), Ok(()));
        assert_eq!(
            fetched(&node, &staying),
            vec![("t".into(), 0, 5, String::new())]
        );

        crate::testing::move_leader(&node, OFFSETS_TOPIC, 1, 1).await;
        assert_eq!(groups.check_coordinator(&moving), Ok(()));
        assert_eq!(
            fetched(&node, &moving),
            vec![("t".into(), 0, 5, String::new())],
            "replayed from the partition on becoming its leader again"
        );

        // A partition with no leader has no coordinator.
        crate::testing::move_leader(&node, OFFSETS_TOPIC, 1, -1).await;
        assert_eq!(
            groups.check_coordinator(&moving),
            Err(code::NOT_COORDINATOR)
        );
    }

    /// While a partition is being loaded its groups answer
    /// COORDINATOR_LOAD_IN_PROGRESS, and once loaded they are served.
    #[tokio::test]
    async fn a_partition_being_loaded_answers_load_in_progress() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = crate::testing::node_in(dir.path()).await;
        node.groups
            .ensure_offsets_topic()
            .await
            .expect("offsets topic");
        node.groups.ownership().begin_load(0);
        let join = node.groups.join_group("g", join_args()).await;
        assert_eq!(join.error_code, code::COORDINATOR_LOAD_IN_PROGRESS);
        assert_eq!(
            node.groups.heartbeat("g", "m", None, 1),
            code::COORDINATOR_LOAD_IN_PROGRESS
        );
        node.groups.ownership().finish_load(0);
        let join = node.groups.join_group("g", join_args()).await;
        assert_eq!(join.error_code, code::NONE);
    }

    #[tokio::test]
    async fn group_timers_offset_retention_and_txn_expiry_stop_on_the_shutdown_signal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = crate::testing::bare_node(
            dir.path(),
            crate::testing::group_config(),
            crate::config::TransactionConfig::default(),
        );
        let tasks = Tasks::new();
        node.groups.load(&tasks).expect("load groups");
        node.txn.load(&tasks).await.expect("load transactions");
        let joined = node.groups.join_group("g", join_args()).await;
        assert_eq!(joined.error_code, code::NONE);
        // Offset retention, transaction expiry, and the group's timer.
        assert_eq!(tasks.running(), 3);
        tasks
            .shutdown(Duration::from_secs(10))
            .await
            .expect("every coordinator task stops on the signal");
        assert_eq!(tasks.running(), 0);
        // The coordinators are still alive: the tasks stopped because of
        // the signal, not because a weak handle failed to upgrade.
        assert!(node.groups.get("g").is_some());
    }

    // ---- transactional offsets (Kafka's model) ---------------------------

    /// A node with topic `t` (2 partitions) and `__consumer_offsets` (one
    /// partition), both led here.
    async fn txn_node(dir: &std::path::Path) -> Arc<crate::testing::Node> {
        let node = crate::testing::node_in(dir).await;
        crate::testing::create_topic(&node, "t", 2).await;
        node.groups
            .ensure_offsets_topic()
            .await
            .expect("offsets topic");
        node
    }

    fn offset_to(partition: i32, offset: i64) -> OffsetToCommit {
        OffsetToCommit {
            topic: "t".into(),
            partition,
            offset,
            leader_epoch: -1,
            metadata: None,
        }
    }

    async fn txn_commit(
        node: &crate::testing::Node,
        group: &str,
        producer_id: i64,
        producer_epoch: i16,
        offsets: &[(i32, i64)],
    ) -> Result<Vec<i16>, i16> {
        node.groups
            .txn_commit_offsets(
                group,
                producer_id,
                producer_epoch,
                offsets.iter().map(|&(p, o)| offset_to(p, o)).collect(),
            )
            .await
    }

    async fn plain_commit(node: &crate::testing::Node, group: &str, partition: i32, offset: i64) {
        node.groups
            .commit_offsets(group, &outsider(), vec![offset_to(partition, offset)])
            .await
            .expect("commit");
    }

    /// Writes the producer's COMMIT or ABORT marker to `__consumer_offsets`
    /// as the transaction coordinator does, waits until it is durable, and
    /// reports it with `complete_txn`.
    async fn end_txn(
        node: &crate::testing::Node,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) {
        use sluice_log::producer_state::{AppendOrigin, MarkerType, marker_key, marker_value};
        let partition = node
            .replicas
            .partition(OFFSETS_TOPIC, 0)
            .expect("partition");
        let marker = if commit {
            MarkerType::Commit
        } else {
            MarkerType::Abort
        };
        let batch = sluice_records::BatchBuilder::new()
            .producer(producer_id, producer_epoch, -1)
            .transactional(true)
            .control(true)
            .record(sluice_records::NewRecord {
                key: Some(marker_key(marker)),
                value: Some(marker_value(0)),
                headers: vec![],
                timestamp_ms: now_ms(),
            })
            .build()
            .expect("marker");
        let info = partition
            .log()
            .append_as(
                batch,
                partition.leader_epoch(),
                now_ms(),
                AppendOrigin::Coordinator,
            )
            .expect("append marker");
        partition
            .commit(info.last_offset + 1)
            .await
            .expect("marker durable");
        node.groups.complete_txn(0, producer_id, commit);
    }

    fn offsets_of(node: &crate::testing::Node, group: &str) -> Vec<(i32, i64)> {
        fetched(node, group)
            .into_iter()
            .map(|(_, p, o, _)| (p, o))
            .collect()
    }

    fn pending_of(node: &crate::testing::Node, group: &str) -> Vec<i32> {
        node.groups
            .pending_offset_partitions(group)
            .into_iter()
            .map(|(_, p)| p)
            .collect()
    }

    #[tokio::test]
    async fn txn_offsets_are_pending_until_their_commit_marker_and_dropped_by_abort() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = txn_node(dir.path()).await;
        plain_commit(&node, "g", 0, 1).await;
        assert_eq!(
            txn_commit(&node, "g", 7, 0, &[(0, 5)]).await,
            Ok(vec![code::NONE])
        );
        assert_eq!(offsets_of(&node, "g"), [(0, 1)], "not visible yet");
        assert_eq!(pending_of(&node, "g"), [0]);
        end_txn(&node, 7, 0, true).await;
        assert_eq!(offsets_of(&node, "g"), [(0, 5)]);
        assert!(pending_of(&node, "g").is_empty());

        assert_eq!(
            txn_commit(&node, "g", 7, 0, &[(0, 9), (1, 9)]).await,
            Ok(vec![code::NONE; 2])
        );
        assert_eq!(pending_of(&node, "g"), [0, 1]);
        end_txn(&node, 7, 0, false).await;
        assert_eq!(offsets_of(&node, "g"), [(0, 5)], "aborted: dropped");
        assert!(pending_of(&node, "g").is_empty());
        // Nothing is left to commit by a later marker of that producer.
        end_txn(&node, 7, 0, true).await;
        assert_eq!(offsets_of(&node, "g"), [(0, 5)]);
    }

    #[tokio::test]
    async fn txn_offset_commits_check_each_partition_and_the_producer_epoch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = txn_node(dir.path()).await;
        let too_large = OffsetToCommit {
            metadata: Some("x".repeat(node.groups.config().offset_metadata_max_bytes as usize + 1)),
            ..offset_to(1, 3)
        };
        let unknown = OffsetToCommit {
            topic: "nope".into(),
            ..offset_to(0, 3)
        };
        let results = node
            .groups
            .txn_commit_offsets("g", 7, 1, vec![unknown, offset_to(0, 3), too_large])
            .await;
        assert_eq!(
            results,
            Ok(vec![
                code::UNKNOWN_TOPIC_OR_PARTITION,
                code::NONE,
                code::OFFSET_METADATA_TOO_LARGE
            ])
        );
        assert_eq!(pending_of(&node, "g"), [0]);
        assert_eq!(
            txn_commit(&node, "", 7, 1, &[(0, 3)]).await,
            Err(code::INVALID_GROUP_ID)
        );
        // The log fences an epoch older than the producer's in the partition.
        assert_eq!(
            txn_commit(&node, "g", 7, 0, &[(1, 4)]).await,
            Err(code::INVALID_PRODUCER_EPOCH)
        );
        assert_eq!(
            pending_of(&node, "g"),
            [0],
            "nothing held for the fenced write"
        );
    }

    /// Kafka's format: a transactional batch of the producer with no
    /// sequence, which its marker ends in the partition's producer state.
    #[tokio::test]
    async fn txn_offsets_are_written_as_a_transactional_batch_of_the_producer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = txn_node(dir.path()).await;
        txn_commit(&node, "g", 7, 3, &[(0, 1)])
            .await
            .expect("txn 7");
        let partition = node
            .replicas
            .partition(OFFSETS_TOPIC, 0)
            .expect("partition");
        let end = partition.log().log_end_offset();
        let read = partition
            .log()
            .read(end - 1, 1 << 20, end)
            .expect("read")
            .to_bytes()
            .expect("bytes");
        let sluice_records::NextBatch::Complete { header, .. } =
            sluice_records::Batches::new(&read).next().expect("a batch")
        else {
            panic!("incomplete batch");
        };
        assert!(header.is_transactional() && !header.is_control());
        assert_eq!(
            (
                header.producer_id,
                header.producer_epoch,
                header.base_sequence
            ),
            (7, 3, -1)
        );
        assert_eq!(partition.log().first_unstable_offset(), Some(end - 1));
        end_txn(&node, 7, 3, true).await;
        assert_eq!(partition.log().first_unstable_offset(), None);
    }

    /// Two TxnOffsetCommits in one transaction, and another in the next
    /// transaction of the same producer epoch, all go in: the group
    /// coordinator writes them without a sequence, and the log checks only
    /// the epoch of such batches.
    #[tokio::test]
    async fn several_txn_offset_commits_of_one_producer_epoch_all_succeed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = txn_node(dir.path()).await;
        assert_eq!(
            txn_commit(&node, "g", 7, 0, &[(0, 1)]).await,
            Ok(vec![code::NONE])
        );
        assert_eq!(
            txn_commit(&node, "g", 7, 0, &[(0, 2), (1, 2)]).await,
            Ok(vec![code::NONE; 2])
        );
        end_txn(&node, 7, 0, true).await;
        assert_eq!(offsets_of(&node, "g"), [(0, 2), (1, 2)]);
        assert_eq!(
            txn_commit(&node, "g", 7, 0, &[(1, 3)]).await,
            Ok(vec![code::NONE])
        );
        end_txn(&node, 7, 0, true).await;
        assert_eq!(offsets_of(&node, "g"), [(0, 2), (1, 3)]);
    }

    /// Kafka's rule: a transaction's commit makes its offset the committed
    /// one only if no plain commit of that partition was written after it.
    #[tokio::test]
    async fn a_plain_commit_written_after_a_txn_offset_outlives_the_txn_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = txn_node(dir.path()).await;
        plain_commit(&node, "g", 1, 10).await; // before the txn offset
        txn_commit(&node, "g", 7, 0, &[(0, 20), (1, 20)])
            .await
            .expect("txn commit");
        plain_commit(&node, "g", 0, 30).await; // after it
        end_txn(&node, 7, 0, true).await;
        assert_eq!(offsets_of(&node, "g"), [(0, 30), (1, 20)]);
    }

    #[tokio::test]
    async fn pending_offset_partitions_lists_every_open_transactions_partitions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = txn_node(dir.path()).await;
        assert!(pending_of(&node, "g").is_empty(), "unknown group");
        txn_commit(&node, "g", 7, 0, &[(0, 1)])
            .await
            .expect("txn 7");
        txn_commit(&node, "g", 8, 0, &[(1, 1)])
            .await
            .expect("txn 8");
        txn_commit(&node, "h", 9, 0, &[(1, 1)])
            .await
            .expect("txn 9");
        assert_eq!(
            node.groups.pending_offset_partitions("g"),
            BTreeSet::from([("t".to_owned(), 0), ("t".to_owned(), 1)])
        );
        end_txn(&node, 7, 0, true).await;
        assert_eq!(pending_of(&node, "g"), [1]);
        assert_eq!(pending_of(&node, "h"), [1], "other groups untouched");
        end_txn(&node, 8, 0, false).await;
        assert!(pending_of(&node, "g").is_empty());
        assert_eq!(pending_of(&node, "h"), [1]);
    }

    /// Dropping the partition and loading it again rebuilds every kind of
    /// transactional offset from the log: committed (the marker is in the
    /// log), aborted (gone), open (still pending, and its marker still
    /// completes it), the newer-record-wins rule against plain commits, and
    /// offset tombstones that removed pending offsets.
    #[tokio::test]
    async fn reload_rebuilds_committed_aborted_and_open_txn_offsets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = txn_node(dir.path()).await;
        // Registered after the topics exist, so this node leads them.
        crate::testing::register_brokers(&node, &[1, 2]).await;
        plain_commit(&node, "g", 0, 1).await;
        txn_commit(&node, "g", 7, 0, &[(0, 2)])
            .await
            .expect("txn 7");
        end_txn(&node, 7, 0, true).await;
        txn_commit(&node, "g", 8, 0, &[(1, 3)])
            .await
            .expect("txn 8");
        end_txn(&node, 8, 0, false).await;
        txn_commit(&node, "g", 10, 0, &[(1, 5)])
            .await
            .expect("txn 10");
        plain_commit(&node, "g", 1, 6).await; // after txn 10's offset: wins
        end_txn(&node, 10, 0, true).await;
        txn_commit(&node, "g", 9, 0, &[(0, 4)])
            .await
            .expect("txn 9");
        // Offset and group deletion remove pending offsets too.
        txn_commit(&node, "d", 11, 0, &[(0, 7)])
            .await
            .expect("txn 11");
        plain_commit(&node, "d", 1, 8).await;
        assert_eq!(node.groups.delete_group("d").await, code::NONE);
        txn_commit(&node, "e", 12, 0, &[(0, 7)])
            .await
            .expect("txn 12");
        plain_commit(&node, "e", 1, 8).await;
        assert_eq!(
            node.groups.delete_offsets("e", vec![("t".into(), 0)]).await,
            Ok(vec![code::NONE])
        );
        let check = |when: &str| {
            assert_eq!(offsets_of(&node, "g"), [(0, 2), (1, 6)], "{when}");
            assert_eq!(pending_of(&node, "g"), [0], "{when}: txn 9 is open");
            assert!(node.groups.get("d").is_none(), "{when}");
            assert!(pending_of(&node, "d").is_empty(), "{when}");
            assert_eq!(offsets_of(&node, "e"), [(1, 8)], "{when}");
            assert!(pending_of(&node, "e").is_empty(), "{when}");
        };
        check("before the reload");

        crate::testing::move_leader(&node, OFFSETS_TOPIC, 0, 2).await;
        assert!(node.groups.get("g").is_none(), "unloaded");
        crate::testing::move_leader(&node, OFFSETS_TOPIC, 0, 1).await;
        assert_eq!(node.groups.check_coordinator("g"), Ok(()));
        check("after the reload");

        // The open transaction's marker, written after the reload, still
        // completes it.
        end_txn(&node, 9, 0, true).await;
        assert_eq!(offsets_of(&node, "g"), [(0, 4), (1, 6)]);
        assert!(pending_of(&node, "g").is_empty());
    }

    /// A transaction that ends while its partition loads is applied once
    /// the load finishes: the replay may have stopped before the marker.
    #[tokio::test]
    async fn a_txn_ended_while_its_partition_loads_is_applied_once_loaded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = txn_node(dir.path()).await;
        txn_commit(&node, "g", 7, 0, &[(0, 5)])
            .await
            .expect("txn 7");
        node.groups.ownership().begin_load(0);
        // No marker in the log: as if it landed after the replay's end.
        node.groups.complete_txn(0, 7, true);
        node.groups
            .load_partitions(&BTreeSet::from([0]))
            .expect("load");
        assert_eq!(node.groups.check_coordinator("g"), Ok(()));
        assert_eq!(offsets_of(&node, "g"), [(0, 5)]);
        assert!(pending_of(&node, "g").is_empty());
        // A partition not owned here ignores it (its load replays the marker).
        txn_commit(&node, "g", 8, 0, &[(0, 6)])
            .await
            .expect("txn 8");
        node.groups.ownership().unload(0);
        node.groups.complete_txn(0, 8, true);
        assert!(node.groups.deferred().is_empty());
        assert_eq!(pending_of(&node, "g"), [0]);
    }

    /// Kafka keeps an offset while a transaction holds a pending one for its
    /// partition, and a group while it has an open transaction's offsets.
    #[tokio::test]
    async fn pending_txn_offsets_hold_back_expiry_of_their_partition_and_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = txn_node(dir.path()).await;
        plain_commit(&node, "g", 0, 1).await;
        plain_commit(&node, "g", 1, 1).await;
        txn_commit(&node, "g", 7, 0, &[(0, 2)])
            .await
            .expect("txn 7");
        txn_commit(&node, "h", 8, 0, &[(0, 2)])
            .await
            .expect("txn 8");
        let later = now_ms() + node.groups.config().offsets_retention_ms() + 1_000;
        assert_eq!(node.groups.expire_offsets(later), 1);
        assert_eq!(offsets_of(&node, "g"), [(0, 1)]);
        assert!(
            node.groups.get("h").is_some(),
            "group with only pending offsets stays"
        );
        end_txn(&node, 8, 0, true).await;
        assert_eq!(offsets_of(&node, "h"), [(0, 2)]);
    }
}
