//! Partitions this broker hosts: each owns its [`Log`], leader epoch and
//! high watermark, and wakes fetchers when the high watermark moves.
//!
//! The [`ReplicaManager`] keeps the map from topic-partition to
//! [`Partition`] in step with the metadata image: it hosts (opens a log for)
//! exactly the partitions whose replicas include this node, keeps each one's
//! leader and leader epoch current, deletes the logs of partitions moved
//! off this node and of deleted topics, and on start removes
//! directories the metadata no longer knows (a delete interrupted by a crash).
//!
//! [`ReplicaManager::leader_partition`] is how the data-path handlers find
//! a partition: it answers Kafka's per-partition errors for one this broker
//! does not lead (NOT_LEADER_OR_FOLLOWER) or knows under another leader
//! epoch (FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use bytes::BytesMut;
use sluice_log::{AppendInfo, AppendOrigin, FlushPolicy, Log, LogConfig, LogError, ReadResult};
use tokio::sync::Notify;
use uuid::Uuid;

use sluice_metadata::config::LogDefaults;
use sluice_metadata::topic_config;
use sluice_metadata::{MetadataDelta, MetadataImage, MetadataListener, TopicImage};

mod group_commit;
mod replication;

pub use group_commit::GROUP_COMMIT_THREADS;

use replication::Replication;
pub use replication::{FollowerState, IsrChange};

/// How long [`Partition::commit`] waits for the ISR to hold a coordinator's
/// write before giving up: Kafka's `request.timeout.ms` default. A follower
/// that stops fetching leaves the ISR after `replica.lag.time.max.ms`
/// (30 s) and the wait then ends, so this only bounds a controller that
/// cannot commit the shrink.
pub const COMMIT_REPLICATION_TIMEOUT_MS: u64 = 30_000;

/// Why a write did not become committed (in the ISR and under the high
/// watermark).
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// Storing it on this broker failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// Leadership moved (or the leader epoch changed) before the ISR held
    /// it: the new leader may not have it.
    #[error("leadership changed before the write was replicated")]
    NotLeader,
    /// The ISR held it, but has fewer than `min.insync.replicas` members.
    #[error("the ISR has {isr} members, fewer than min.insync.replicas {min}")]
    NotEnoughReplicasAfterAppend {
        /// ISR size.
        isr: usize,
        /// The topic's `min.insync.replicas`.
        min: usize,
    },
    /// The ISR did not hold it in time.
    #[error("not replicated within {timeout_ms} ms")]
    TimedOut {
        /// The wait.
        timeout_ms: u64,
    },
}

impl CommitError {
    /// The Kafka error code for a per-partition response.
    pub fn kafka_error_code(&self) -> i16 {
        use sluice_protocol::error::codes as code;
        match self {
            CommitError::Log(e) => e.kafka_error_code(),
            CommitError::NotLeader => code::NOT_LEADER_OR_FOLLOWER,
            CommitError::NotEnoughReplicasAfterAppend { .. } => {
                code::NOT_ENOUGH_REPLICAS_AFTER_APPEND
            }
            CommitError::TimedOut { .. } => code::REQUEST_TIMED_OUT,
        }
    }
}

/// A partition's leader, replicas and ISR as one metadata change states them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    /// The leader's broker id, -1 for none.
    pub leader: i32,
    /// The leader epoch.
    pub leader_epoch: i32,
    /// Every replica.
    pub replicas: Vec<i32>,
    /// The in-sync replicas.
    pub isr: Vec<i32>,
    /// The partition epoch (bumped on every change).
    pub partition_epoch: i32,
    /// The topic's `min.insync.replicas`.
    pub min_insync_replicas: usize,
}

/// A led partition's replication shortfall, as the metrics count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplicationHealth {
    /// The ISR is smaller than the replica set (Kafka's
    /// `UnderReplicatedPartitions`).
    pub under_replicated: bool,
    /// The ISR is smaller than `min.insync.replicas`, so acks=all produces
    /// fail with NOT_ENOUGH_REPLICAS (Kafka's `UnderMinIsrPartitionCount`).
    pub under_min_isr: bool,
}

impl ReplicationHealth {
    /// The checks for a leader with `replicas` replicas, `isr` of them in
    /// sync, and `min_insync_replicas`.
    pub fn of(replicas: usize, isr: usize, min_insync_replicas: usize) -> ReplicationHealth {
        ReplicationHealth {
            under_replicated: isr < replicas,
            under_min_isr: isr < min_insync_replicas,
        }
    }
}

/// How often offline logs (a failed write or fsync, a full disk) are
/// reopened. A retry re-runs recovery on the partition, which reads its
/// unflushed tail, so it is not free; a few seconds brings writes back
/// soon after space is freed without spinning on a full disk.
pub const OFFLINE_RETRY_INTERVAL_MS: u64 = 2_000;

/// File in each partition directory naming the topic id it belongs to, so a
/// directory left over from a deleted topic of the same name is recognised.
const PARTITION_METADATA_FILE: &str = "partition.metadata";

/// Threads that open (or, at shutdown, flush) partition logs at once
/// (start-up, a large CreateTopics). Opening a new log is a few fsyncs and a clean reopen a
/// few small reads; overlapping them keeps the device queue busy, so
/// 10,000 partitions do not wait on 10,000 sequential round trips. Small,
/// because each thread is blocking work beside the async runtime.
const OPEN_THREADS: usize = 8;

/// A topic name and partition index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Why this broker cannot serve a partition's data (Kafka's
/// `ReplicaManager.getPartitionOrError` and `Partition.getLocalLog`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LeaderError {
    /// The metadata has no such topic or partition.
    #[error("unknown topic or partition")]
    UnknownTopicOrPartition,
    /// The partition exists, but this broker does not lead it: it is a
    /// follower, the partition has no leader (-1), or it is not hosted here.
    #[error("this broker is not the leader")]
    NotLeaderOrFollower,
    /// The client's leader epoch is older than this broker's.
    #[error("leader epoch {requested} is older than the current {current}")]
    FencedLeaderEpoch {
        /// The epoch the request carried.
        requested: i32,
        /// This broker's epoch for the partition.
        current: i32,
    },
    /// The client's leader epoch is newer than this broker's (it saw
    /// metadata this broker has not applied yet).
    #[error("leader epoch {requested} is newer than the current {current}")]
    UnknownLeaderEpoch {
        /// The epoch the request carried.
        requested: i32,
        /// This broker's epoch for the partition.
        current: i32,
    },
}

impl LeaderError {
    /// The Kafka error code a response carries for it.
    pub fn kafka_error_code(&self) -> i16 {
        use sluice_protocol::error::codes as code;
        match self {
            LeaderError::UnknownTopicOrPartition => code::UNKNOWN_TOPIC_OR_PARTITION,
            LeaderError::NotLeaderOrFollower => code::NOT_LEADER_OR_FOLLOWER,
            LeaderError::FencedLeaderEpoch { .. } => code::FENCED_LEADER_EPOCH,
            LeaderError::UnknownLeaderEpoch { .. } => code::UNKNOWN_LEADER_EPOCH,
        }
    }
}

/// A request's `current_leader_epoch` that asks for no check (Kafka's
/// `RecordBatch.NO_PARTITION_LEADER_EPOCH`, and the field's default).
pub const NO_LEADER_EPOCH: i32 = -1;

/// Packs a leader and its epoch into one word, so a reader never sees the
/// leader of one metadata change with the epoch of another.
fn pack_leadership(leader: i32, leader_epoch: i32) -> u64 {
    (u64::from(leader as u32) << 32) | u64::from(leader_epoch as u32)
}

/// The inverse of [`pack_leadership`].
fn unpack_leadership(word: u64) -> (i32, i32) {
    ((word >> 32) as u32 as i32, word as u32 as i32)
}

/// Shared wake-ups for waits over many partitions at once (a fetch of a
/// 10,000-partition session): partitions are spread over
/// [`WAKE_SHARD_COUNT`] shards, and every append or high watermark advance
/// wakes its shard as well as the partition's own waiters. A fetch waits on
/// the distinct shards of its partitions, so it registers at most
/// [`WAKE_SHARD_COUNT`] waits instead of one per partition (with a
/// heap-allocated future each, on every wake-up), at the cost of waking
/// for another partition of the same shard now and then, after which it
/// reads, finds nothing new, and waits again.
#[derive(Debug)]
pub struct WakeShards {
    /// Woken on any append in the shard (followers wait for data).
    pub appended: [Notify; WAKE_SHARD_COUNT],
    /// Woken on any high watermark advance in the shard (consumers).
    pub hw_advanced: [Notify; WAKE_SHARD_COUNT],
}

/// Shards of [`WAKE_SHARDS`]: enough that a fetch of a few partitions among
/// thousands of busy ones is rarely woken for others.
pub const WAKE_SHARD_COUNT: usize = 256;

/// The process's wake-up shards (every broker in a process shares them: a
/// wake-up from another one is only a spurious wake-up).
pub static WAKE_SHARDS: std::sync::LazyLock<WakeShards> = std::sync::LazyLock::new(|| WakeShards {
    appended: std::array::from_fn(|_| Notify::new()),
    hw_advanced: std::array::from_fn(|_| Notify::new()),
});

fn wake_shard_of(tp: &TopicPartition) -> usize {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    tp.hash(&mut hasher);
    (hasher.finish() % WAKE_SHARD_COUNT as u64) as usize
}

/// One hosted partition.
#[derive(Debug)]
pub struct Partition {
    /// Which partition this is.
    pub tp: TopicPartition,
    /// The topic's stable id.
    pub topic_id: Uuid,
    log: Arc<Log>,
    /// This broker's node id, to tell whether it leads the partition.
    node_id: i32,
    /// Leader (broker id, -1 for none) and leader epoch from the metadata,
    /// packed ([`pack_leadership`]) and replaced on every metadata change.
    /// The epoch is stamped on every appended batch.
    leadership: AtomicU64,
    /// Offset below which data is visible to consumers. With group commit it
    /// is the fsynced end, so no consumer ever sees data a crash could lose;
    /// with Kafka's interval flush it is the log end, as on a single Kafka
    /// broker.
    high_watermark: AtomicI64,
    /// Woken whenever the high watermark advances (long-polling fetches).
    hw_advanced: Notify,
    /// Woken on every append (followers long-poll for new data, not for
    /// the high watermark).
    appended: Notify,
    /// Woken when the leader or leader epoch changes (writes waiting for
    /// replication give up).
    leadership_changed: Notify,
    /// This partition's entry in [`WAKE_SHARDS`].
    wake_shard: usize,
    /// Replicas, ISR and, on the leader, what each follower holds.
    replication: Mutex<Replication>,
    /// True when appends must be fsynced before they become visible. It
    /// follows the topic's `flush.messages` / `flush.ms` live (see
    /// [`Partition::set_config`]). The lock makes "read the policy, then
    /// expose data without an fsync" one step with respect to a switch to
    /// group commit; it is held for no I/O and no `.await`.
    group_commit: Mutex<bool>,
    /// The offline state last reported in the broker log, so a partition
    /// that stays offline is logged once when it goes and once when it
    /// comes back, not on every retry.
    reported_offline: std::sync::atomic::AtomicBool,
}

impl Partition {
    /// The log.
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// The current leader epoch.
    pub fn leader_epoch(&self) -> i32 {
        self.leadership().1
    }

    /// The current leader (a broker id, -1 for none) and leader epoch, as
    /// of one metadata change.
    pub fn leadership(&self) -> (i32, i32) {
        unpack_leadership(self.leadership.load(Ordering::Acquire))
    }

    /// True if this broker leads the partition. A hosted partition that
    /// it does not lead is a follower replica: it serves no client reads
    /// or writes (its data arrives by replication, issue 13).
    pub fn is_leader(&self) -> bool {
        self.leadership().0 == self.node_id
    }

    /// Kafka's leader-epoch check (`Partition.checkCurrentLeaderEpoch`):
    /// a request carrying an epoch other than ours is refused, older as
    /// fenced and newer as unknown; [`NO_LEADER_EPOCH`] (or any negative
    /// epoch) is not checked.
    pub fn check_leader_epoch(&self, requested: i32) -> Result<(), LeaderError> {
        let current = self.leader_epoch();
        if requested < 0 || requested == current {
            Ok(())
        } else if requested < current {
            Err(LeaderError::FencedLeaderEpoch { requested, current })
        } else {
            Err(LeaderError::UnknownLeaderEpoch { requested, current })
        }
    }

    /// Applies the partition's state from a metadata change. Becoming the
    /// leader (or a new epoch of it) starts the epoch in the log's epoch
    /// cache at the log end and starts the follower states over; any
    /// change wakes writes waiting for replication, which re-check who
    /// leads. Blocking (the epoch cache is a small file): call it off the
    /// async threads.
    fn apply_state(&self, state: &PartitionState, now_ms: i64) {
        let (old_leader, old_epoch) = self.leadership();
        let leads = state.leader == self.node_id;
        let new_term = leads && (old_leader != self.node_id || old_epoch != state.leader_epoch);
        {
            // Leadership changes under the replication lock, which follower
            // appends also hold: a fetch from the old leader can never land
            // after this node starts its own epoch.
            let mut r = self.replication.lock().unwrap_or_else(|p| p.into_inner());
            if r.partition_epoch != state.partition_epoch || r.isr != state.isr {
                // The controller decided: whatever was in flight is answered.
                r.pending = None;
            }
            r.replicas = state.replicas.clone();
            r.isr = state.isr.clone();
            r.partition_epoch = state.partition_epoch;
            r.min_insync_replicas = state.min_insync_replicas;
            if new_term {
                let start = self.log.log_end_offset();
                r.reset(self.node_id, state.leader_epoch, start, now_ms);
                if let Err(e) = self.log.assign_epoch(state.leader_epoch) {
                    tracing::error!(partition = %self.tp, "cannot record leader epoch {}: {e}", state.leader_epoch);
                }
            }
            self.leadership.store(
                pack_leadership(state.leader, state.leader_epoch),
                Ordering::Release,
            );
        }
        let opening = (old_leader, old_epoch) == (-1, -1);
        if (old_leader, old_epoch) != (state.leader, state.leader_epoch) {
            if opening {
                tracing::debug!(partition = %self.tp, leader = state.leader, leader_epoch = state.leader_epoch, "opened");
            } else if leads {
                tracing::info!(partition = %self.tp, leader_epoch = state.leader_epoch, isr = ?state.isr, "leading");
            } else {
                tracing::info!(partition = %self.tp, leader = state.leader, leader_epoch = state.leader_epoch, "following");
            }
            self.leadership_changed.notify_waiters();
            // Long-polling fetches re-check who leads.
            self.notify_hw_advanced();
            self.notify_appended();
        }
        self.update_high_watermark();
    }

    /// Kafka's per-leader replication checks (`UnderReplicatedPartitions`,
    /// `UnderMinIsrPartitionCount`) for this partition. Only the leader
    /// reports a shortfall: a follower's view of the ISR may be stale, and
    /// one reporter per partition lets a sum over brokers count each once.
    pub fn replication_health(&self) -> ReplicationHealth {
        if !self.is_leader() {
            return ReplicationHealth::default();
        }
        let r = self.replication();
        ReplicationHealth::of(r.replicas.len(), r.isr.len(), r.min_insync_replicas)
    }

    /// The ISR as the metadata states it.
    pub fn isr(&self) -> Vec<i32> {
        self.replication().isr.clone()
    }

    /// Every replica.
    pub fn replicas(&self) -> Vec<i32> {
        self.replication().replicas.clone()
    }

    /// What the leader knows of each follower (empty off the leader).
    pub fn followers(&self) -> Vec<(i32, FollowerState)> {
        let mut out: Vec<_> = self
            .replication()
            .followers
            .iter()
            .map(|(&b, &f)| (b, f))
            .collect();
        out.sort_unstable_by_key(|(b, _)| *b);
        out
    }

    fn replication(&self) -> std::sync::MutexGuard<'_, Replication> {
        self.replication.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The end of this replica's own copy that counts towards the high
    /// watermark: the fsynced end under group commit (so an acknowledged
    /// write is on disk on every ISR member, the leader included), the log
    /// end under Kafka's interval flush. `group_commit` is the flag, held
    /// by the caller so a switch to group commit cannot slip between
    /// reading it and exposing data.
    fn own_end(&self, group_commit: bool) -> i64 {
        let end = self.log.log_end_offset();
        if group_commit {
            self.log.recovery_point().min(end)
        } else {
            end
        }
    }

    /// On the leader, moves the high watermark to what the maximal ISR
    /// holds (see [`replication`]). Followers learn theirs from the leader.
    fn update_high_watermark(&self) {
        if !self.is_leader() {
            return;
        }
        // Lock order: `group_commit`, then `replication`.
        let group_commit = self.group_commit.lock().unwrap_or_else(|p| p.into_inner());
        let own_end = self.own_end(*group_commit);
        let hw = self
            .replication()
            .high_watermark(self.node_id, own_end, self.high_watermark());
        self.advance_high_watermark(hw);
    }

    /// Records a follower's fetch from `fetch_offset` (the leader checked
    /// its leader epoch and that the fetch does not diverge), moves the
    /// high watermark, and returns an ISR expansion to propose if the
    /// follower has caught up. The change is marked in flight.
    pub fn record_follower_fetch(
        &self,
        follower: i32,
        fetch_offset: i64,
        now_ms: i64,
    ) -> Option<IsrChange> {
        let leader_end = self.log.log_end_offset();
        self.replication()
            .record_fetch(follower, fetch_offset, leader_end, now_ms);
        self.update_high_watermark();
        let change = {
            let mut r = self.replication();
            let change = r.expansion(follower, self.high_watermark());
            if change.is_some() {
                r.pending.clone_from(&change);
            }
            change
        };
        if let Some(c) = &change {
            tracing::info!(partition = %self.tp, follower, isr = ?c.new_isr, "follower caught up: asking to add it to the ISR");
        }
        change
    }

    /// On the leader, an ISR shrink removing followers that have not caught
    /// up within `lag_max_ms`, marked in flight; `None` if none lags.
    pub fn isr_shrink(&self, now_ms: i64, lag_max_ms: i64) -> Option<IsrChange> {
        if !self.is_leader() {
            return None;
        }
        let mut r = self.replication();
        let change = r.shrink(self.node_id, now_ms, lag_max_ms)?;
        tracing::warn!(partition = %self.tp, isr = ?r.isr, new_isr = ?change.new_isr,
            "followers fell behind for more than {lag_max_ms} ms: asking to shrink the ISR");
        r.pending = Some(change.clone());
        Some(change)
    }

    /// Forgets `change` as in flight (the controller refused it or could
    /// not be reached), so a later one can be proposed.
    pub fn isr_change_failed(&self, change: &IsrChange) {
        let mut r = self.replication();
        if r.pending.as_ref() == Some(change) {
            r.pending = None;
        }
        drop(r);
        self.update_high_watermark();
    }

    /// Refuses an `acks=all` write up front when the ISR is smaller than
    /// `min.insync.replicas` (Kafka's NOT_ENOUGH_REPLICAS): returns (ISR
    /// size, minimum) then.
    pub fn check_min_isr(&self) -> Result<(), (usize, usize)> {
        let r = self.replication();
        if r.isr.len() < r.min_insync_replicas {
            Err((r.isr.len(), r.min_insync_replicas))
        } else {
            Ok(())
        }
    }

    /// Waits until everything below `end_offset` is committed: under the
    /// high watermark of this broker as leader at `leader_epoch`, with at
    /// least `min.insync.replicas` in the ISR (Kafka's `DelayedProduce`
    /// check), for at most `timeout_ms`.
    pub async fn wait_replicated(
        &self,
        end_offset: i64,
        leader_epoch: i32,
        timeout_ms: u64,
    ) -> Result<(), CommitError> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(timeout_ms);
        loop {
            let hw = self.hw_advanced();
            let moved = self.leadership_changed.notified();
            tokio::pin!(hw, moved);
            hw.as_mut().enable();
            moved.as_mut().enable();
            if self.leadership() != (self.node_id, leader_epoch) {
                return Err(CommitError::NotLeader);
            }
            if self.high_watermark() >= end_offset {
                let r = self.replication();
                return if r.isr.len() < r.min_insync_replicas {
                    Err(CommitError::NotEnoughReplicasAfterAppend {
                        isr: r.isr.len(),
                        min: r.min_insync_replicas,
                    })
                } else {
                    Ok(())
                };
            }
            tokio::select! {
                _ = hw => {}
                _ = moved => {}
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(CommitError::TimedOut { timeout_ms });
                }
            }
        }
    }

    /// Appends batches fetched from the leader (see
    /// [`Log::append_replicated`]) and wakes anything waiting for data.
    /// Refused (`Ok(None)`, nothing written) unless `leader` still leads at
    /// `leader_epoch`: the fetch was answered under that leadership.
    pub fn append_as_follower(
        &self,
        records: &[u8],
        (leader, leader_epoch): (i32, i32),
    ) -> Result<Option<AppendInfo>, LogError> {
        let info = {
            let _r = self.replication();
            if leader == self.node_id || self.leadership() != (leader, leader_epoch) {
                return Ok(None);
            }
            self.log.append_replicated(records)?
        };
        if let Some(info) = &info {
            sluice_metrics::appended(&self.tp.topic, records.len(), info.record_count);
            self.notify_appended();
        }
        Ok(info)
    }

    /// On a follower, takes the leader's high watermark, capped by what this
    /// replica holds (durably, under group commit).
    pub fn follow_high_watermark(&self, leader_high_watermark: i64) {
        let group_commit = self.group_commit.lock().unwrap_or_else(|p| p.into_inner());
        let hw = leader_high_watermark.min(self.own_end(*group_commit));
        self.advance_high_watermark(hw);
    }

    /// Runs `change` on the log under the replication lock if `leader`
    /// still leads at `leader_epoch` and this node follows it (returns
    /// false otherwise): a fetch answer that arrives after a leadership
    /// change must not touch the log.
    fn change_as_follower(
        &self,
        (leader, leader_epoch): (i32, i32),
        change: impl FnOnce() -> Result<(), LogError>,
    ) -> Result<bool, LogError> {
        let _r = self.replication();
        if leader == self.node_id || self.leadership() != (leader, leader_epoch) {
            return Ok(false);
        }
        change()?;
        Ok(true)
    }

    /// Cuts the log back to `offset` (a follower's divergent tail) and the
    /// high watermark with it, if `leader` still leads at `leader_epoch`
    /// and this node follows it (returns false otherwise). Blocking.
    pub fn truncate_as_follower(
        &self,
        offset: i64,
        leadership: (i32, i32),
    ) -> Result<bool, LogError> {
        self.change_as_follower(leadership, || {
            tracing::info!(partition = %self.tp, offset, log_end_offset = self.log.log_end_offset(), "truncating a divergent tail");
            self.log.truncate_to(offset)?;
            self.high_watermark.fetch_min(offset, Ordering::AcqRel);
            Ok(())
        })
    }

    /// Empties the log and restarts it at `offset`, the leader's log start,
    /// which lies past this log's end (everything this follower lacks was
    /// deleted on the leader), if `leader` still leads at `leader_epoch` and
    /// this node follows it (returns false otherwise). Blocking.
    pub fn restart_as_follower_at(
        &self,
        offset: i64,
        leadership: (i32, i32),
    ) -> Result<bool, LogError> {
        self.change_as_follower(leadership, || {
            tracing::info!(partition = %self.tp, offset, log_end_offset = self.log.log_end_offset(), "the leader's log starts past this log's end; starting over there");
            self.log.truncate_fully_and_start_at(offset)?;
            self.high_watermark.fetch_max(offset, Ordering::AcqRel);
            Ok(())
        })
    }

    /// A future that resolves at the next append. Create it (and `enable`
    /// it) before checking the condition it waits for.
    pub fn appended(&self) -> tokio::sync::futures::Notified<'_> {
        self.appended.notified()
    }

    /// The [`WAKE_SHARDS`] entry this partition's appends and high
    /// watermark advances also wake.
    pub fn wake_shard(&self) -> usize {
        self.wake_shard
    }

    fn notify_appended(&self) {
        self.appended.notify_waiters();
        WAKE_SHARDS.appended[self.wake_shard].notify_waiters();
    }

    fn notify_hw_advanced(&self) {
        self.hw_advanced.notify_waiters();
        WAKE_SHARDS.hw_advanced[self.wake_shard].notify_waiters();
    }

    /// The high watermark.
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    /// A future that resolves when the high watermark next advances. Create
    /// it (and `enable` it) before checking the condition it waits for.
    pub fn hw_advanced(&self) -> tokio::sync::futures::Notified<'_> {
        self.hw_advanced.notified()
    }

    /// Appends a producer's batches. The data is in the page cache, not yet
    /// visible to consumers; call [`Partition::commit`] next.
    pub fn append(&self, records: BytesMut, now_ms: i64) -> Result<AppendInfo, LogError> {
        self.append_as(records, now_ms, AppendOrigin::Client)
    }

    /// [`Partition::append`] for a given origin (a coordinator writing
    /// markers or offsets). Refused with [`LogError::NotLeader`] unless
    /// this replica leads: the check, the epoch stamped into the batches
    /// and the write happen under the replication lock, which a leadership
    /// change also takes (Kafka's `leaderIsrUpdateLock`), so a deposed
    /// leader cannot write under its successor's epoch. Such a batch would
    /// look like the new leader's own to the follower's divergence check
    /// and stay in its log for good.
    pub fn append_as(
        &self,
        records: BytesMut,
        now_ms: i64,
        origin: AppendOrigin,
    ) -> Result<AppendInfo, LogError> {
        let bytes = records.len();
        let info = {
            let _r = self.replication();
            let (leader, leader_epoch) = self.leadership();
            if leader != self.node_id {
                return Err(LogError::NotLeader {
                    leader,
                    leader_epoch,
                });
            }
            self.log.append_as(records, leader_epoch, now_ms, origin)?
        };
        sluice_metrics::appended(&self.tp.topic, bytes, info.record_count);
        self.notify_appended();
        Ok(info)
    }

    /// Makes everything up to `end_offset` durable on this broker (group
    /// commit) and counts it towards the high watermark; with no followers
    /// that makes it visible. Concurrent callers share one fsync.
    ///
    /// The work is queued now on the group-commit pool ([`group_commit`])
    /// and runs to completion even if the returned future is dropped: once
    /// data is appended, whether it becomes durable and visible must not
    /// depend on the caller (a client connection that went away) still
    /// waiting. The future only reports the outcome.
    pub fn commit_local(
        self: &Arc<Self>,
        end_offset: i64,
    ) -> impl std::future::Future<Output = Result<(), LogError>> + Send + use<> {
        // Followers long-poll on appends; coordinators append through the
        // log directly and come here next.
        self.notify_appended();
        let outcome = if self.is_group_commit() {
            Some(group_commit::pool().submit(self, end_offset))
        } else {
            // Interval flush: nothing to wait for, the data is visible now.
            self.update_high_watermark();
            None
        };
        let dir = self.log.dir().to_owned();
        async move {
            let Some(outcome) = outcome else {
                return Ok(());
            };
            // The pool answers every commit it takes; a closed channel
            // means its thread died, which the caller sees as this
            // partition's storage failure.
            outcome.await.map_err(|e| LogError::Io {
                op: "commit task",
                path: dir,
                source: std::io::Error::other(e),
            })?
        }
    }

    /// [`Partition::commit_local`], then waits until the ISR holds
    /// everything below `end_offset` ([`Partition::wait_replicated`], at
    /// most [`COMMIT_REPLICATION_TIMEOUT_MS`]): what a coordinator needs
    /// before it answers, like Kafka's acks=all writes to internal topics.
    pub fn commit(
        self: &Arc<Self>,
        end_offset: i64,
    ) -> impl std::future::Future<Output = Result<(), CommitError>> + Send + use<> {
        let leader_epoch = self.leader_epoch();
        let local = self.commit_local(end_offset);
        let this = Arc::clone(self);
        async move {
            local.await?;
            this.wait_replicated(end_offset, leader_epoch, COMMIT_REPLICATION_TIMEOUT_MS)
                .await
        }
    }

    /// Group commit's unit of work, run on the pool
    /// ([`group_commit`]): fsyncs up to `end_offset`, then moves the high
    /// watermark.
    fn sync_and_expose(&self, end_offset: i64) -> Result<(), LogError> {
        let started = std::time::Instant::now();
        self.log.sync_until(end_offset)?;
        sluice_metrics::fsync_observed(started.elapsed());
        self.update_high_watermark();
        Ok(())
    }

    fn advance_high_watermark(&self, to: i64) {
        let previous = self.high_watermark.fetch_max(to, Ordering::AcqRel);
        if to > previous {
            self.notify_hw_advanced();
        }
    }

    /// Applies a new log config live. Switching to group commit first flips
    /// the flag (so no later commit exposes unsynced data) and then fsyncs
    /// the whole log, so when this returns the high watermark is at or below
    /// the durable offset and stays so; data exposed under the old interval
    /// policy is made durable here rather than left exposed. Blocking: call
    /// it off the async threads.
    pub fn set_config(&self, config: LogConfig) -> Result<(), LogError> {
        let group_commit = matches!(config.flush, FlushPolicy::GroupCommit);
        let was_group_commit = {
            let mut flag = self.group_commit.lock().unwrap_or_else(|p| p.into_inner());
            self.log.update_config(config);
            std::mem::replace(&mut *flag, group_commit)
        };
        if group_commit && !was_group_commit {
            self.log.flush()?;
        }
        Ok(())
    }

    /// True while the log refuses writes (a write, fsync or delete failed,
    /// or it opened read-only on a full disk). Reported in Metadata and
    /// `/ready`; [`ReplicaManager::reopen_offline`] retries it.
    pub fn is_offline(&self) -> bool {
        self.log.is_offline()
    }

    /// Retries an offline log (see [`Log::reopen`]); returns true if it is
    /// online afterwards. The high watermark is reset to the durable end of
    /// the recovered log: everything left is fsynced, and anything past it
    /// (only possible under an interval flush) is gone.
    pub fn reopen(&self) -> Result<bool, LogError> {
        if !self.log.is_offline() {
            return Ok(true);
        }
        let online = self.log.reopen()?;
        let hw = self.log.recovery_point().min(self.log.log_end_offset());
        let previous = self.high_watermark.swap(hw, Ordering::AcqRel);
        if hw > previous {
            self.notify_hw_advanced();
        }
        Ok(online)
    }

    /// True when commits fsync before exposing data (group commit).
    pub fn is_group_commit(&self) -> bool {
        *self.group_commit.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads whole batches from `offset`, never past the high watermark.
    pub fn read(&self, offset: i64, max_bytes: u32) -> Result<ReadResult, LogError> {
        self.log.read(offset, max_bytes, self.high_watermark())
    }

    /// Moves the log start offset forward (DeleteRecords).
    pub fn delete_records_before(&self, offset: i64) -> Result<i64, LogError> {
        self.log.advance_log_start_offset(offset)?;
        Ok(self.log.log_start_offset())
    }

    /// The last stable offset: the high watermark, held back to the first
    /// offset of the oldest open transaction. `read_committed` never reads past it.
    pub fn last_stable_offset(&self) -> i64 {
        let high_watermark = self.high_watermark();
        self.log()
            .first_unstable_offset()
            .map_or(high_watermark, |first| first.min(high_watermark))
    }

    /// Fetch's `aborted_transactions` for batches read from `from` up to
    /// `upper` (the offset after the last one): every aborted transaction
    /// overlapping them, read from the partition's `.txnindex` files.
    pub fn aborted_transactions(
        &self,
        from: i64,
        upper: i64,
    ) -> Result<Vec<sluice_protocol::messages::fetch::AbortedTransaction>, sluice_log::LogError>
    {
        if upper <= from {
            return Ok(Vec::new());
        }
        Ok(self
            .log()
            .read_aborted_transactions(from, upper)?
            .into_iter()
            .map(|a| sluice_protocol::messages::fetch::AbortedTransaction {
                producer_id: a.producer_id,
                first_offset: a.first_offset,
                ..Default::default()
            })
            .collect())
    }
}

/// The set of partitions this broker hosts.
#[derive(Debug)]
pub struct ReplicaManager {
    data_dir: PathBuf,
    defaults: LogDefaults,
    node_id: i32,
    /// Lock held only to look up or swap entries, never across I/O waits.
    partitions: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    /// Serialises [`ReplicaManager::sync_with`] and holds the metadata
    /// offset of the newest image applied. Two admin changes finishing at
    /// once must not both open (or both delete) the same partition
    /// directory, and an older image must never undo a newer one. Held
    /// across file I/O, so only on blocking threads.
    synced_to: Mutex<i64>,
    /// Where proposed ISR changes go (the broker sends them to the
    /// controller). Each partition has at most one change in flight, so
    /// the queue never holds more than one entry per hosted partition.
    isr_sink: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<(Arc<Partition>, IsrChange)>>,
    /// Woken after every metadata change applied (the follower fetchers
    /// re-plan who they fetch from).
    leadership_changed: Notify,
    /// Set while this broker has lost the controller for long enough that
    /// the controller has certainly fenced it and moved its leadership
    /// (see [`ReplicaManager::suspend_leadership`]).
    leadership_suspended: AtomicBool,
}

impl ReplicaManager {
    /// Creates an empty manager; call [`ReplicaManager::sync_with`] next.
    pub fn new(data_dir: &Path, defaults: LogDefaults, node_id: i32) -> ReplicaManager {
        ReplicaManager {
            data_dir: data_dir.to_owned(),
            defaults,
            node_id,
            partitions: RwLock::new(HashMap::new()),
            synced_to: Mutex::new(-1),
            isr_sink: std::sync::OnceLock::new(),
            leadership_changed: Notify::new(),
            leadership_suspended: AtomicBool::new(false),
        }
    }

    /// Suspends (or resumes) this broker's leadership as clients see it:
    /// while suspended, requests that need the leader get
    /// NOT_LEADER_OR_FOLLOWER, so clients refresh their metadata and find
    /// the leader the rest of the cluster elected. The broker sets it when
    /// it has not reached the controller for twice the broker session:
    /// by then the controller has fenced it, and its view of who leads is
    /// stale. Returns the previous state.
    pub fn suspend_leadership(&self, suspended: bool) -> bool {
        self.leadership_suspended.swap(suspended, Ordering::AcqRel)
    }

    /// Whether leadership is suspended ([`ReplicaManager::suspend_leadership`]).
    pub fn leadership_suspended(&self) -> bool {
        self.leadership_suspended.load(Ordering::Acquire)
    }

    /// A future that resolves after the next metadata change is applied.
    /// Create it (and `enable` it) before reading the partitions.
    pub fn leadership_changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.leadership_changed.notified()
    }

    /// This broker's node id.
    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// Where ISR changes proposed from now on are sent; set once, at start.
    pub fn set_isr_sink(
        &self,
        sink: tokio::sync::mpsc::UnboundedSender<(Arc<Partition>, IsrChange)>,
    ) {
        if self.isr_sink.set(sink).is_err() {
            tracing::warn!("the ISR change sink is already set");
        }
    }

    /// Sends `change` of `partition` (marked in flight by the partition)
    /// to the controller; without a sink, or if it is gone, the change is
    /// dropped and unmarked so a later one can be proposed.
    pub fn propose_isr_change(&self, partition: &Arc<Partition>, change: IsrChange) {
        let sent = self
            .isr_sink
            .get()
            .is_some_and(|sink| sink.send((Arc::clone(partition), change.clone())).is_ok());
        if !sent {
            partition.isr_change_failed(&change);
        }
    }

    /// Proposes an ISR shrink for every partition led here whose followers
    /// have not caught up within `lag_max_ms` (Kafka's `maybeShrinkIsr`).
    pub fn shrink_isrs(&self, now_ms: i64, lag_max_ms: i64) {
        for partition in self.all() {
            if let Some(change) = partition.isr_shrink(now_ms, lag_max_ms) {
                self.propose_isr_change(&partition, change);
            }
        }
    }

    /// A hosted partition.
    pub fn get(&self, tp: &TopicPartition) -> Option<Arc<Partition>> {
        self.read_map().get(tp).cloned()
    }

    /// A hosted partition by topic name and index.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        self.get(&TopicPartition {
            topic: topic.to_owned(),
            partition,
        })
    }

    /// The hosted partition `topic`-`index` if this broker may serve its
    /// data to clients, checking `current_leader_epoch` (a request's, or
    /// [`NO_LEADER_EPOCH`]) first, as Kafka does. `require_leader` false
    /// lets a follower answer too (ListOffsets from a debugging client).
    ///
    /// A partition that is not hosted here is NOT_LEADER_OR_FOLLOWER when
    /// `image` knows it (led elsewhere, or created but not opened yet) and
    /// UNKNOWN_TOPIC_OR_PARTITION otherwise.
    pub fn leader_partition(
        &self,
        image: &MetadataImage,
        topic: &str,
        index: i32,
        current_leader_epoch: i32,
        require_leader: bool,
    ) -> Result<Arc<Partition>, LeaderError> {
        let Some(partition) = self.partition(topic, index) else {
            let known = image
                .topics
                .get(topic)
                .is_some_and(|t| t.partitions.contains_key(&index));
            return Err(if known {
                LeaderError::NotLeaderOrFollower
            } else {
                LeaderError::UnknownTopicOrPartition
            });
        };
        partition.check_leader_epoch(current_leader_epoch)?;
        if require_leader && (!partition.is_leader() || self.leadership_suspended()) {
            return Err(LeaderError::NotLeaderOrFollower);
        }
        Ok(partition)
    }

    /// Every hosted partition.
    pub fn all(&self) -> Vec<Arc<Partition>> {
        self.read_map().values().cloned().collect()
    }

    fn read_map(&self) -> std::sync::RwLockReadGuard<'_, HashMap<TopicPartition, Arc<Partition>>> {
        self.partitions.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_map(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, HashMap<TopicPartition, Arc<Partition>>> {
        self.partitions.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Brings the hosted partitions in line with `image`: opens logs for
    /// partitions with a replica on this node, updates configs, leaders and
    /// epochs, closes partitions moved off this node, deletes the logs of
    /// topics that are gone. `startup` also removes stray directories.
    pub fn sync_with(&self, image: &MetadataImage, startup: bool) -> Result<(), LogError> {
        self.sync_topics(image, None, startup)
    }

    /// [`ReplicaManager::sync_with`] limited to the topics named in `scope`
    /// (all topics when `None`): a delta touches only its own topics, so an
    /// admin change costs the partitions it changed, not every hosted one.
    fn sync_topics(
        &self,
        image: &MetadataImage,
        scope: Option<&BTreeSet<&str>>,
        startup: bool,
    ) -> Result<(), LogError> {
        let in_scope = |topic: &str| scope.is_none_or(|s| s.contains(topic));
        let mut synced_to = self.synced_to.lock().unwrap_or_else(|p| p.into_inner());
        if image.next_offset < *synced_to {
            return Ok(()); // a newer image was applied already
        }
        *synced_to = image.next_offset;
        let mut wanted = HashMap::new();
        let topics: Vec<&TopicImage> = match scope {
            Some(names) => names.iter().filter_map(|n| image.topics.get(*n)).collect(),
            None => image.topics.values().collect(),
        };
        for topic in topics {
            for (&index, p) in &topic.partitions {
                if p.replicas.contains(&self.node_id) {
                    wanted.insert(
                        TopicPartition {
                            topic: topic.name.clone(),
                            partition: index,
                        },
                        (topic, p),
                    );
                }
            }
        }
        // Stop hosting partitions no longer wanted: deleted topics, and
        // replicas moved off this node.
        let removed: Vec<Arc<Partition>> = {
            let mut map = self.write_map();
            let gone: Vec<TopicPartition> = map
                .keys()
                .filter(|tp| in_scope(&tp.topic) && !wanted.contains_key(*tp))
                .cloned()
                .collect();
            gone.iter().filter_map(|tp| map.remove(tp)).collect()
        };
        for partition in removed {
            let topic_lives = image
                .topics
                .get(&partition.tp.topic)
                .is_some_and(|t| t.topic_id == partition.topic_id);
            let dir = self.partition_dir(&partition.tp);
            if topic_lives {
                // The replica left this node (a reassignment completed or
                // was cancelled): the partition's data lives on its other
                // replicas, which the controller moved it to only once they
                // were in sync, so this copy goes, as Kafka's StopReplica
                // with delete does. Keeping it would leave a stale log that
                // a later move back would have to truncate anyway.
                tracing::info!(partition = %partition.tp, "no longer a replica here: deleting the partition log");
            } else {
                tracing::info!(partition = %partition.tp, "deleting partition log");
                sluice_metrics::forget_topic(&partition.tp.topic);
            }
            drop(partition);
            remove_dir(&dir);
        }
        // Refresh existing ones; collect new ones.
        let mut to_open = Vec::new();
        let now = now_ms();
        for (tp, (topic, p)) in wanted {
            let config = self.log_config(topic);
            if let Some(existing) = self.get(&tp) {
                if let Err(e) = existing.set_config(config) {
                    // The log is now offline (failed); it says so itself.
                    tracing::error!(partition = %tp, "applying a flush policy change failed: {e}");
                }
                existing.apply_state(&partition_state(topic, p), now);
                continue;
            }
            to_open.push((tp, topic.topic_id, config, partition_state(topic, p)));
        }
        let opened = self.open_partitions(to_open, startup);
        self.leadership_changed.notify_waiters();
        if startup {
            self.remove_strays(image, None);
        } else {
            // A deleted topic's partitions that were closed here earlier
            // without deleting their data (by a broker before reassignment
            // deleted moved replicas) go with the topic.
            let deleted: BTreeSet<&str> = scope
                .into_iter()
                .flatten()
                .copied()
                .filter(|name| !image.topics.contains_key(*name))
                .collect();
            if !deleted.is_empty() {
                self.remove_strays(image, Some(&deleted));
            }
        }
        opened
    }

    /// Opens (recovering) new partitions on up to [`OPEN_THREADS`] threads
    /// and hosts every one that opened; returns the first failure.
    ///
    /// A new partition that opened read-only because it could not write its
    /// first files (a full disk) is hosted but reported as a failure, so a
    /// topic creation is undone; at start-up (`startup`) a read-only
    /// partition is not a failure: it still serves reads.
    fn open_partitions(
        &self,
        mut to_open: Vec<(TopicPartition, Uuid, LogConfig, PartitionState)>,
        startup: bool,
    ) -> Result<(), LogError> {
        if to_open.is_empty() {
            return Ok(());
        }
        let threads = OPEN_THREADS.min(to_open.len());
        let per_thread = to_open.len().div_ceil(threads);
        let mut chunks = Vec::with_capacity(threads);
        while !to_open.is_empty() {
            let rest = to_open.split_off(to_open.len().saturating_sub(per_thread));
            chunks.push(rest);
        }
        let first_error = std::thread::scope(|scope| {
            let workers: Vec<_> = chunks
                .into_iter()
                .map(|chunk| {
                    scope.spawn(move || -> Option<LogError> {
                        let mut first_failure = None;
                        for (tp, topic_id, config, state) in chunk {
                            match self.open_partition(&tp, topic_id, config, &state) {
                                Ok(partition) => {
                                    let offline = partition.is_offline() && !startup;
                                    let dir = self.partition_dir(&tp);
                                    self.write_map().insert(tp, Arc::new(partition));
                                    if offline {
                                        first_failure.get_or_insert(LogError::Failed { dir });
                                    }
                                }
                                Err(e) => {
                                    tracing::error!(partition = %tp, "cannot open partition log: {e}");
                                    return Some(e);
                                }
                            }
                        }
                        first_failure
                    })
                })
                .collect();
            workers
                .into_iter()
                .filter_map(|w| match w.join() {
                    Ok(result) => result,
                    Err(_) => Some(LogError::Io {
                        op: "open partition",
                        path: self.data_dir.clone(),
                        source: std::io::Error::other("partition open thread panicked"),
                    }),
                })
                .next()
        });
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Stops hosting every partition of `topic` and deletes their
    /// directories, ahead of the metadata (DeleteTopics on a full disk,
    /// where deleting the data is what makes room for the record).
    pub fn drop_topic_logs(&self, topic: &str) {
        let dropped: Vec<Arc<Partition>> = {
            let mut map = self.write_map();
            let doomed: Vec<TopicPartition> =
                map.keys().filter(|tp| tp.topic == topic).cloned().collect();
            doomed.iter().filter_map(|tp| map.remove(tp)).collect()
        };
        for partition in dropped {
            tracing::info!(partition = %partition.tp, "deleting partition log to free space");
            sluice_metrics::forget_topic(&partition.tp.topic);
            let dir = self.partition_dir(&partition.tp);
            drop(partition);
            remove_dir(&dir);
        }
        if let Err(e) = sluice_log::checkpoint::sync_dir(&self.data_dir) {
            tracing::warn!("cannot fsync the data directory: {e}");
        }
    }

    /// Removes the directories `<topic>-0` … `<topic>-<partitions - 1>`
    /// that no hosted partition owns (what a failed topic creation left).
    pub fn remove_unhosted_dirs(&self, topic: &str, partitions: i32) {
        for partition in 0..partitions {
            let tp = TopicPartition {
                topic: topic.to_owned(),
                partition,
            };
            if self.get(&tp).is_none() {
                remove_dir(&self.partition_dir(&tp));
            }
        }
        if let Err(e) = sluice_log::checkpoint::sync_dir(&self.data_dir) {
            tracing::warn!("cannot fsync the data directory: {e}");
        }
    }

    fn log_config(&self, topic: &TopicImage) -> LogConfig {
        topic_config::log_config(&self.defaults, &topic.configs)
    }

    fn partition_dir(&self, tp: &TopicPartition) -> PathBuf {
        self.data_dir.join(tp.to_string())
    }

    fn open_partition(
        &self,
        tp: &TopicPartition,
        topic_id: Uuid,
        config: LogConfig,
        state: &PartitionState,
    ) -> Result<Partition, LogError> {
        let dir = self.partition_dir(tp);
        // A directory of an older topic with the same name is not ours.
        if let Some(existing) = read_partition_topic_id(&dir)
            && existing != topic_id
        {
            tracing::warn!(partition = %tp, %existing, "removing log of a deleted topic with the same name");
            remove_dir(&dir);
        }
        let group_commit = matches!(config.flush, FlushPolicy::GroupCommit);
        let log = Log::open(&dir, config)?;
        write_partition_topic_id(&dir, topic_id)?;
        let end = log.log_end_offset();
        let durable = log.recovery_point();
        // Alone, recovery fsynced what it kept, and all of it is visible
        // (if that fsync failed and the log opened read-only, only what is
        // known durable is). With other replicas, the tail may be a write
        // the ISR never held, which a new leader would not have: nothing is
        // visible until the leader's high watermark says so again.
        let high_watermark = if state.replicas.len() <= 1 {
            durable.min(end)
        } else {
            log.log_start_offset()
        };
        let partition = Partition {
            tp: tp.clone(),
            topic_id,
            log: Arc::new(log),
            node_id: self.node_id,
            leadership: AtomicU64::new(pack_leadership(-1, -1)),
            high_watermark: AtomicI64::new(high_watermark),
            hw_advanced: Notify::new(),
            appended: Notify::new(),
            leadership_changed: Notify::new(),
            wake_shard: wake_shard_of(tp),
            replication: Mutex::new(Replication::default()),
            group_commit: Mutex::new(group_commit),
            reported_offline: std::sync::atomic::AtomicBool::new(false),
        };
        partition.apply_state(state, now_ms());
        Ok(partition)
    }

    /// Removes partition directories of topics `image` does not know (a
    /// delete interrupted by a crash, or a deleted topic whose replica had
    /// moved off this node), of every topic or only of the `topics` named
    /// (one pass over the data directory however many). A directory of a
    /// live topic that is not hosted is kept: a replica moved off this node
    /// while it ran is deleted then (see `sync_topics`), and one moved
    /// while it was down once this node has caught up
    /// ([`ReplicaManager::remove_stray_replicas`]).
    fn remove_strays(&self, image: &MetadataImage, topics: Option<&BTreeSet<&str>>) {
        let of_topic = |dir_name: &str| {
            topics.is_none_or(|names| {
                dir_name.rsplit_once('-').is_some_and(|(topic, index)| {
                    names.contains(topic) && index.parse::<i32>().is_ok()
                })
            })
        };
        let Ok(entries) = std::fs::read_dir(&self.data_dir) else {
            return;
        };
        let hosted: std::collections::HashSet<String> =
            self.read_map().keys().map(|tp| tp.to_string()).collect();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if !is_dir
                || name.starts_with("__cluster_metadata")
                || hosted.contains(&name)
                || !of_topic(&name)
            {
                continue;
            }
            // Only directories that look like partitions and carry our
            // marker, of a topic id the metadata no longer has.
            if let Some(topic_id) = read_partition_topic_id(&entry.path())
                && !image.topic_names.contains_key(&topic_id)
            {
                tracing::info!(dir = %name, "removing partition directory the metadata does not host");
                remove_dir(&entry.path());
            }
        }
    }

    /// Deletes the logs of partitions this node is no longer a replica of
    /// (Kafka's stray replicas): a partition of a live topic, under that
    /// topic's id, that this node does not host and `image` places
    /// elsewhere, because it moved off this node while the node was down (a
    /// decommission or a lost broker's replicas re-created elsewhere).
    /// Returns how many it deleted.
    ///
    /// Call it only with an image caught up with the cluster's: an older one
    /// could place elsewhere a partition since moved back here. Serialized
    /// with image application, and skipped if `image` is older than the one
    /// applied last; a partition hosted here, or that `image` places here,
    /// is never touched.
    pub fn remove_stray_replicas(&self, image: &MetadataImage) -> usize {
        let synced_to = self.synced_to.lock().unwrap_or_else(|p| p.into_inner());
        if image.next_offset < *synced_to {
            return 0;
        }
        let Ok(entries) = std::fs::read_dir(&self.data_dir) else {
            return 0;
        };
        let hosted: std::collections::HashSet<String> =
            self.read_map().keys().map(|tp| tp.to_string()).collect();
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if hosted.contains(&name) || !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let Some((topic, index)) = name.rsplit_once('-') else {
                continue;
            };
            let (Some(t), Ok(index)) = (image.topics.get(topic), index.parse::<i32>()) else {
                continue;
            };
            let placed_here = t
                .partitions
                .get(&index)
                .is_some_and(|p| p.replicas.contains(&self.node_id));
            if placed_here || read_partition_topic_id(&entry.path()) != Some(t.topic_id) {
                continue;
            }
            tracing::info!(dir = %name, "removing a stray replica: the partition moved off this node while it was down");
            remove_dir(&entry.path());
            removed += 1;
        }
        drop(synced_to);
        removed
    }

    /// Flushes every log (shutdown), on up to [`OPEN_THREADS`] threads: each
    /// flush is a few fsyncs, and 10,000 of them in a row take half a minute.
    /// Every log is tried; the first error is returned, so a shutdown that
    /// could not make everything durable is reported (the binary exits
    /// non-zero) rather than only logged.
    pub fn flush_all(&self) -> Result<(), LogError> {
        let all = self.all();
        let per_thread = all.len().div_ceil(OPEN_THREADS).max(1);
        let first = std::sync::Mutex::new(None);
        std::thread::scope(|scope| {
            for chunk in all.chunks(per_thread) {
                let first = &first;
                scope.spawn(move || {
                    for partition in chunk {
                        if let Err(e) = partition.log.flush() {
                            tracing::error!(partition = %partition.tp, "flush at shutdown failed: {e}");
                            first.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
                        }
                    }
                });
            }
        });
        first
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .map_or(Ok(()), Err)
    }

    /// Hosted partitions whose log is offline, sorted.
    pub fn offline(&self) -> Vec<TopicPartition> {
        let mut out: Vec<TopicPartition> = self
            .all()
            .into_iter()
            .filter(|p| p.is_offline())
            .map(|p| p.tp.clone())
            .collect();
        out.sort();
        out
    }

    /// Retries every offline log (see [`Partition::reopen`]) and logs each
    /// partition's transitions once: offline when first seen (the log
    /// itself logged the cause), online when it comes back. Blocking.
    pub fn reopen_offline(&self) {
        for partition in self.all() {
            let was_reported = partition.reported_offline.load(Ordering::Acquire);
            if !partition.is_offline() {
                if was_reported {
                    partition.reported_offline.store(false, Ordering::Release);
                    tracing::info!(partition = %partition.tp, "partition is back online");
                }
                continue;
            }
            if !was_reported {
                partition.reported_offline.store(true, Ordering::Release);
                tracing::error!(partition = %partition.tp, "partition is offline: writes are refused; retrying every {} ms", OFFLINE_RETRY_INTERVAL_MS);
            }
            match partition.reopen() {
                Ok(true) => {
                    partition.reported_offline.store(false, Ordering::Release);
                    tracing::info!(partition = %partition.tp, "partition is back online");
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::debug!(partition = %partition.tp, "reopening the offline log failed: {e}")
                }
            }
        }
    }

    /// Applies retention and time-based rolls to every log.
    pub fn apply_retention(&self, now_ms: i64) {
        // An offline log refuses retention; its state is reported by
        // `reopen_offline`, not once per pass here.
        for partition in self.all().into_iter().filter(|p| !p.is_offline()) {
            match partition.log.apply_retention(now_ms) {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(partition = %partition.tp, segments = n, "retention deleted segments")
                }
                Err(e) => tracing::error!(partition = %partition.tp, "retention failed: {e}"),
            }
        }
        sluice_metrics::retention_checked();
        self.flush_on_timer(now_ms);
    }

    /// Cleans the dirtiest compacted log (Kafka's `grabFilthiestCompactedLog`):
    /// among the online partitions with `cleanup.policy=compact`, the one
    /// with the highest dirty ratio at or above its `min.cleanable.dirty.ratio`,
    /// or whose oldest dirty record is older than `max.compaction.lag.ms`.
    /// Returns what was cleaned, `None` when no log needs it. Runs on the
    /// calling thread, which may read and write for a while.
    pub fn clean_dirtiest(
        &self,
        map: &mut sluice_log::cleaner::OffsetMap,
        throttle: &mut sluice_log::compaction::IoThrottle,
        now_ms: i64,
    ) -> Option<(TopicPartition, sluice_log::compaction::CleanReport)> {
        let mut best: Option<(u16, Arc<Partition>)> = None;
        for partition in self.all().into_iter().filter(|p| !p.is_offline()) {
            let config = partition.log.config();
            if !config.compact {
                continue;
            }
            let range = match partition
                .log
                .cleanable_range(now_ms, partition.high_watermark())
            {
                Ok(range) => range,
                Err(e) => {
                    tracing::warn!(partition = %partition.tp, "cannot size the dirty part: {e}");
                    continue;
                }
            };
            if range.dirty_bytes == 0 {
                continue;
            }
            let ratio = range.dirty_ratio_permille();
            let overdue = range
                .first_dirty_timestamp
                .is_some_and(|ts| now_ms.saturating_sub(ts) > config.max_compaction_lag_ms);
            let due = ratio >= config.min_cleanable_dirty_ratio_permille || overdue;
            // An overdue log goes first whatever its ratio.
            let rank = if overdue { u16::MAX } else { ratio };
            if due && best.as_ref().is_none_or(|(r, _)| rank > *r) {
                best = Some((rank, partition));
            }
        }
        let (_, partition) = best?;
        let high_watermark = partition.high_watermark();
        match sluice_log::compaction::clean_log(
            &partition.log,
            map,
            throttle,
            now_ms,
            high_watermark,
        ) {
            Ok(Some(report)) => {
                sluice_metrics::log_cleaned(
                    report.stats.bytes_in,
                    report.size_before.saturating_sub(report.size_after),
                );
                tracing::info!(
                    partition = %partition.tp,
                    cleaned_to = report.cleaned_to,
                    segments = report.segments_rewritten,
                    records_kept = report.stats.records_kept,
                    records_read = report.stats.records_read,
                    size_before = report.size_before,
                    size_after = report.size_after,
                    "log cleaned"
                );
                Some((partition.tp.clone(), report))
            }
            Ok(None) => None,
            Err(e) => {
                tracing::error!(partition = %partition.tp, "log cleaning failed: {e}");
                None
            }
        }
    }

    /// Runs Kafka's `flush.ms` timer on every log.
    ///
    /// On up to [`OPEN_THREADS`] threads: a pass that falls due on many
    /// partitions at once (a recovery-point checkpoint is two fsyncs each)
    /// would otherwise hold up retention for the whole pass.
    pub fn flush_on_timer(&self, now_ms: i64) {
        let online: Vec<Arc<Partition>> =
            self.all().into_iter().filter(|p| !p.is_offline()).collect();
        let per_thread = online.len().div_ceil(OPEN_THREADS).max(1);
        std::thread::scope(|scope| {
            for chunk in online.chunks(per_thread) {
                scope.spawn(move || {
                    for partition in chunk {
                        if let Err(e) = partition.log.maybe_flush_on_timer(now_ms) {
                            tracing::error!(partition = %partition.tp, "timed flush failed: {e}");
                        }
                    }
                });
            }
        });
    }
}

/// The state of partition `p` of `topic` as [`Partition`] applies it.
fn partition_state(topic: &TopicImage, p: &sluice_metadata::PartitionImage) -> PartitionState {
    let min_insync_replicas = topic
        .configs
        .get("min.insync.replicas")
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(1);
    PartitionState {
        leader: p.leader,
        leader_epoch: p.leader_epoch,
        replicas: p.replicas.clone(),
        isr: p.isr.clone(),
        partition_epoch: p.partition_epoch,
        min_insync_replicas,
    }
}

/// Wall-clock milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn read_partition_topic_id(dir: &Path) -> Option<Uuid> {
    let text = std::fs::read_to_string(dir.join(PARTITION_METADATA_FILE)).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("topic_id: "))
        .and_then(|s| s.trim().parse().ok())
}

fn write_partition_topic_id(dir: &Path, topic_id: Uuid) -> Result<(), LogError> {
    let path = dir.join(PARTITION_METADATA_FILE);
    if read_partition_topic_id(dir) == Some(topic_id) {
        return Ok(());
    }
    let tmp = dir.join(format!("{PARTITION_METADATA_FILE}.tmp"));
    let io = |op: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| LogError::Io { op, path, source }
    };
    std::fs::write(&tmp, format!("version: 0\ntopic_id: {topic_id}\n"))
        .map_err(io("write", &tmp))?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io("fsync", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(io("rename", &path))?;
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io("fsync", dir))?;
    Ok(())
}

fn remove_dir(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::error!(dir = %dir.display(), "cannot remove partition directory: {e}");
    }
}

/// The replica manager follows committed metadata: each delta opens,
/// reconfigures or deletes the partitions it names.
impl MetadataListener for ReplicaManager {
    fn apply(&self, delta: &MetadataDelta, image: &MetadataImage) -> Result<(), LogError> {
        let scope: BTreeSet<&str> = delta
            .created
            .iter()
            .chain(&delta.changed)
            .chain(delta.removed.keys())
            .map(String::as_str)
            .collect();
        self.sync_topics(image, Some(&scope), false)
    }

    fn discard_topic(&self, topic: &str) {
        self.drop_topic_logs(topic);
    }

    fn remove_unhosted_dirs(&self, topic: &str, partitions: i32) {
        ReplicaManager::remove_unhosted_dirs(self, topic, partitions);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn replication_health_compares_the_isr_with_replicas_and_min_isr() {
        let h = ReplicationHealth::of;
        // Single node: one replica, in sync, min.insync.replicas 1.
        assert_eq!(h(1, 1, 1), ReplicationHealth::default());
        // Three replicas, one down, min ISR 2: under-replicated only.
        assert_eq!(
            h(3, 2, 2),
            ReplicationHealth {
                under_replicated: true,
                under_min_isr: false
            }
        );
        // Two down: below min ISR as well.
        assert_eq!(
            h(3, 1, 2),
            ReplicationHealth {
                under_replicated: true,
                under_min_isr: true
            }
        );
        // min.insync.replicas above the replica count: every write fails,
        // though every replica is in sync.
        assert_eq!(
            h(2, 2, 3),
            ReplicationHealth {
                under_replicated: false,
                under_min_isr: true
            }
        );
    }

    use std::collections::BTreeMap;

    use super::*;
    use sluice_metadata::{PartitionImage, TopicImage};

    fn image_with(topics: &[(&str, Uuid)], next_offset: i64) -> MetadataImage {
        image_with_configs(topics, next_offset, &[])
    }

    fn image_with_configs(
        topics: &[(&str, Uuid)],
        next_offset: i64,
        configs: &[(&str, &str)],
    ) -> MetadataImage {
        let mut image = MetadataImage {
            next_offset,
            ..MetadataImage::default()
        };
        for (name, id) in topics {
            let mut partitions = BTreeMap::new();
            partitions.insert(
                0,
                PartitionImage {
                    leader: 1,
                    replicas: vec![1],
                    isr: vec![1],
                    leader_epoch: 0,
                    partition_epoch: 0,
                    adding_replicas: Vec::new(),
                    removing_replicas: Vec::new(),
                },
            );
            image.topic_names.insert(*id, (*name).to_owned());
            image.topics.insert(
                (*name).to_owned(),
                TopicImage {
                    name: (*name).to_owned(),
                    topic_id: *id,
                    partitions,
                    configs: configs
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                },
            );
        }
        image
    }

    #[test]
    fn a_replica_moved_off_this_node_while_it_was_down_is_removed_once_caught_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let id = Uuid::new_v4();
        let before = cluster_image(id, &[(1, &[1, 2], 0), (1, &[1, 2], 0)], 1);
        {
            let replicas = ReplicaManager::new(dir.path(), LogDefaults::default(), 1);
            replicas.sync_with(&before, true).expect("sync");
        }
        assert!(dir.path().join("t-1").exists());
        // While this node was down, t-1 moved to brokers 2 and 3.
        let after = cluster_image(id, &[(1, &[1, 2], 0), (2, &[2, 3], 1)], 5);
        let replicas = ReplicaManager::new(dir.path(), LogDefaults::default(), 1);
        replicas.sync_with(&after, true).expect("sync");
        assert!(dir.path().join("t-1").exists(), "start-up keeps it");
        // An older image changes nothing.
        assert_eq!(replicas.remove_stray_replicas(&before), 0);
        assert!(dir.path().join("t-1").exists());
        assert_eq!(replicas.remove_stray_replicas(&after), 1);
        assert!(
            !dir.path().join("t-1").exists(),
            "the stray replica is gone"
        );
        assert!(dir.path().join("t-0").exists(), "the hosted one stays");
        assert!(replicas.partition("t", 0).is_some());
        // A directory of another incarnation of the topic (another id) is
        // not this topic's replica: left to the stray-directory rule.
        std::fs::create_dir(dir.path().join("t-1")).expect("dir");
        write_partition_topic_id(&dir.path().join("t-1"), Uuid::new_v4()).expect("marker");
        assert_eq!(replicas.remove_stray_replicas(&after), 0);
    }

    /// An image of one topic `t` (id `id`) whose partition `i` has
    /// `(leader, replicas, leader_epoch)` = `partitions[i]`.
    fn cluster_image(
        id: Uuid,
        partitions: &[(i32, &[i32], i32)],
        next_offset: i64,
    ) -> MetadataImage {
        let mut image = image_with(&[("t", id)], next_offset);
        let topic = image.topics.get_mut("t").expect("t");
        topic.partitions = (0..)
            .zip(partitions)
            .map(|(index, &(leader, replicas, leader_epoch))| {
                let partition = PartitionImage {
                    leader,
                    replicas: replicas.to_vec(),
                    isr: if leader < 0 { vec![] } else { vec![leader] },
                    leader_epoch,
                    partition_epoch: 0,
                    adding_replicas: Vec::new(),
                    removing_replicas: Vec::new(),
                };
                (index, partition)
            })
            .collect();
        image
    }

    /// The delta of a change to `t`'s partitions.
    fn t_changed() -> MetadataDelta {
        MetadataDelta {
            changed: BTreeSet::from(["t".to_owned()]),
            ..MetadataDelta::default()
        }
    }

    #[test]
    fn only_replicas_on_this_node_are_hosted_and_each_knows_its_leader_and_epoch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let replicas = ReplicaManager::new(dir.path(), LogDefaults::default(), 1);
        let id = Uuid::new_v4();
        // Led here; a follower here; led by 3 with no replica here.
        let image = cluster_image(id, &[(1, &[1, 2], 4), (2, &[2, 1], 7), (3, &[3], 0)], 1);
        replicas.sync_with(&image, true).expect("sync");
        let leader = replicas.partition("t", 0).expect("leader hosted");
        let follower = replicas.partition("t", 1).expect("follower hosted");
        assert!(replicas.partition("t", 2).is_none(), "not a replica here");
        assert!(!dir.path().join("t-2").exists(), "no log opened for it");
        assert_eq!((leader.is_leader(), leader.leadership()), (true, (1, 4)));
        assert_eq!(
            (follower.is_leader(), follower.leadership()),
            (false, (2, 7))
        );

        // A leadership change reaches the hosted partition on the delta.
        let moved = cluster_image(id, &[(2, &[1, 2], 5), (1, &[2, 1], 8), (3, &[3], 0)], 2);
        MetadataListener::apply(&replicas, &t_changed(), &moved).expect("leaders move");
        assert_eq!((leader.is_leader(), leader.leader_epoch()), (false, 5));
        assert_eq!((follower.is_leader(), follower.leader_epoch()), (true, 8));
        let hosted = replicas.partition("t", 1).expect("still hosted");
        assert!(
            Arc::ptr_eq(&hosted, &follower),
            "the same partition, not reopened"
        );
    }

    #[test]
    fn a_deposed_leader_refuses_appends_and_stamps_no_successor_epoch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let replicas = ReplicaManager::new(dir.path(), LogDefaults::default(), 1);
        let id = Uuid::new_v4();
        replicas
            .sync_with(&cluster_image(id, &[(1, &[1, 2], 4)], 1), true)
            .expect("sync");
        let p = replicas.partition("t", 0).expect("hosted");
        let info = p.append(one_record(), 1).expect("the leader appends");
        assert_eq!((info.base_offset, info.leader_epoch), (0, 4));

        // Node 2 takes over at epoch 5 while a produce is between its
        // leader check and its append.
        let moved = cluster_image(id, &[(2, &[1, 2], 5)], 2);
        MetadataListener::apply(&replicas, &t_changed(), &moved).expect("leader moves");
        match p.append(one_record(), 2) {
            Err(LogError::NotLeader {
                leader: 2,
                leader_epoch: 5,
            }) => {}
            other => panic!("a follower appended as leader: {other:?}"),
        }
        assert_eq!(
            LogError::NotLeader {
                leader: 2,
                leader_epoch: 5
            }
            .kafka_error_code(),
            6,
            "NOT_LEADER_OR_FOLLOWER, which clients retry on the new leader"
        );
        assert_eq!(p.log().log_end_offset(), 1, "nothing was written");
        assert_eq!(
            p.log().leader_epochs(),
            vec![(4, 0)],
            "the successor's epoch must not enter this log from a local write"
        );
        let marker = p.append_as(one_record(), 2, AppendOrigin::Coordinator);
        assert!(
            matches!(marker, Err(LogError::NotLeader { .. })),
            "coordinator writes are checked the same way: {marker:?}"
        );
    }

    /// `image` with partition `index` of `t` mid-reassignment: `replicas`
    /// with `adding` and `removing`.
    fn reassigning(
        mut image: MetadataImage,
        index: i32,
        replicas: &[i32],
        adding: &[i32],
        removing: &[i32],
    ) -> MetadataImage {
        let p = image
            .topics
            .get_mut("t")
            .and_then(|t| t.partitions.get_mut(&index))
            .expect("partition exists");
        p.replicas = replicas.to_vec();
        p.adding_replicas = adding.to_vec();
        p.removing_replicas = removing.to_vec();
        image
    }

    #[tokio::test]
    async fn a_replica_reassigned_off_this_node_is_deleted_and_one_added_here_starts_hosting() {
        let dir = tempfile::tempdir().expect("tempdir");
        let replicas = ReplicaManager::new(dir.path(), LogDefaults::default(), 1);
        let id = Uuid::new_v4();
        replicas
            .sync_with(&cluster_image(id, &[(1, &[1], 0), (1, &[1], 0)], 1), true)
            .expect("open");
        let p0 = replicas.partition("t", 0).expect("hosted");
        produce_one(&p0).await;

        // t-0 moving from 1 to 2: while it runs, this node still hosts and
        // leads it (a removing replica serves until completion).
        let moving = reassigning(
            cluster_image(id, &[(1, &[2, 1], 0), (1, &[1], 0)], 2),
            0,
            &[2, 1],
            &[2],
            &[1],
        );
        MetadataListener::apply(&replicas, &t_changed(), &moving).expect("reassign t-0");
        let hosted = replicas.partition("t", 0).expect("still hosted");
        assert!(Arc::ptr_eq(&hosted, &p0) && hosted.is_leader());
        drop((hosted, p0));

        // Completed: 1 is no longer a replica, so its copy is deleted.
        let done = cluster_image(id, &[(2, &[2], 1), (1, &[1], 0)], 3);
        MetadataListener::apply(&replicas, &t_changed(), &done).expect("complete");
        assert!(replicas.partition("t", 0).is_none(), "no longer hosted");
        assert!(
            !dir.path().join("t-0").exists(),
            "a reassigned-away replica's data stayed"
        );
        assert!(
            dir.path().join("t-1").exists(),
            "another partition went too"
        );
        assert!(replicas.partition("t", 1).is_some());

        // Reassigned back onto this node as an adding replica: hosted
        // again, as a follower of 2, with an empty log to fetch into.
        let back = reassigning(
            cluster_image(id, &[(2, &[2, 1], 1), (1, &[1], 0)], 4),
            0,
            &[2, 1],
            &[1],
            &[],
        );
        MetadataListener::apply(&replicas, &t_changed(), &back).expect("add back");
        let p0 = replicas.partition("t", 0).expect("hosted again");
        assert_eq!((p0.is_leader(), p0.leadership()), (false, (2, 1)));
        assert_eq!(p0.log().log_end_offset(), 0, "starts empty");
        drop(p0);

        // The move back is cancelled: the adding replica's copy goes too.
        let cancelled = cluster_image(id, &[(2, &[2], 1), (1, &[1], 0)], 5);
        MetadataListener::apply(&replicas, &t_changed(), &cancelled).expect("cancel");
        assert!(replicas.partition("t", 0).is_none());
        assert!(!dir.path().join("t-0").exists());

        // A replica moved while this node was down is not deleted at
        // start-up: only a change this node applies deletes a live
        // topic's data.
        drop(replicas);
        let moved_while_down = cluster_image(id, &[(2, &[2], 1), (2, &[2], 1)], 6);
        let restarted = ReplicaManager::new(dir.path(), LogDefaults::default(), 1);
        restarted
            .sync_with(&moved_while_down, true)
            .expect("restart");
        assert!(restarted.partition("t", 1).is_none());
        assert!(
            dir.path().join("t-1").exists(),
            "start-up removed a live topic's data"
        );
    }

    #[test]
    fn leader_partition_answers_kafkas_errors_for_what_this_node_does_not_lead() {
        let dir = tempfile::tempdir().expect("tempdir");
        let replicas = ReplicaManager::new(dir.path(), LogDefaults::default(), 1);
        let image = cluster_image(
            Uuid::new_v4(),
            &[(1, &[1], 3), (2, &[2, 1], 3), (3, &[3], 3), (-1, &[1], 3)],
            1,
        );
        replicas.sync_with(&image, true).expect("sync");
        let get = |index, epoch, require_leader| {
            replicas
                .leader_partition(&image, "t", index, epoch, require_leader)
                .map(|p| p.tp.partition)
        };
        assert_eq!(get(0, NO_LEADER_EPOCH, true), Ok(0));
        assert_eq!(get(0, 3, true), Ok(0));
        assert_eq!(
            get(0, 2, true),
            Err(LeaderError::FencedLeaderEpoch {
                requested: 2,
                current: 3
            })
        );
        assert_eq!(
            get(0, 4, true),
            Err(LeaderError::UnknownLeaderEpoch {
                requested: 4,
                current: 3
            })
        );
        // A follower here, a partition led elsewhere, one with no leader.
        assert_eq!(
            get(1, NO_LEADER_EPOCH, true),
            Err(LeaderError::NotLeaderOrFollower)
        );
        assert_eq!(
            get(2, NO_LEADER_EPOCH, true),
            Err(LeaderError::NotLeaderOrFollower)
        );
        assert_eq!(
            get(3, NO_LEADER_EPOCH, true),
            Err(LeaderError::NotLeaderOrFollower)
        );
        // A follower may answer when the caller allows it.
        assert_eq!(get(1, NO_LEADER_EPOCH, false), Ok(1));
        assert_eq!(
            get(9, NO_LEADER_EPOCH, true),
            Err(LeaderError::UnknownTopicOrPartition)
        );
        assert_eq!(
            replicas
                .leader_partition(&image, "nope", 0, NO_LEADER_EPOCH, true)
                .map(|p| p.tp.partition),
            Err(LeaderError::UnknownTopicOrPartition)
        );
    }

    #[test]
    fn a_suspended_leader_refuses_what_needs_the_leader_until_resumed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let replicas = ReplicaManager::new(dir.path(), LogDefaults::default(), 1);
        let image = cluster_image(Uuid::new_v4(), &[(1, &[1, 2], 3), (2, &[2, 1], 3)], 1);
        replicas.sync_with(&image, true).expect("sync");
        let get = |index, require_leader| {
            replicas
                .leader_partition(&image, "t", index, NO_LEADER_EPOCH, require_leader)
                .map(|p| p.tp.partition)
        };
        assert!(!replicas.suspend_leadership(true), "not suspended before");
        assert!(replicas.leadership_suspended());
        assert_eq!(get(0, true), Err(LeaderError::NotLeaderOrFollower));
        // What a follower may answer still is answered.
        assert_eq!(get(0, false), Ok(0));
        assert_eq!(get(1, false), Ok(1));
        assert!(replicas.suspend_leadership(false), "suspended before");
        assert_eq!(get(0, true), Ok(0));
    }

    #[test]
    fn an_older_image_never_undoes_a_newer_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let replicas = ReplicaManager::new(dir.path(), LogDefaults::default(), 1);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let older = image_with(&[("a", a)], 5);
        let newer = image_with(&[("a", a), ("b", b)], 9);
        replicas.sync_with(&newer, false).expect("newer");
        // The older image finishes its sync late: it must not delete `b`.
        replicas.sync_with(&older, false).expect("older");
        assert!(
            replicas.partition("b", 0).is_some(),
            "older image deleted a newer topic"
        );
        assert!(dir.path().join("b-0").exists());
        // A newer image without `a` does delete it.
        replicas
            .sync_with(&image_with(&[("b", b)], 12), false)
            .expect("delete a");
        assert!(replicas.partition("a", 0).is_none());
        assert!(!dir.path().join("a-0").exists());
    }

    #[test]
    fn a_delta_touches_only_the_topics_it_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let replicas = ReplicaManager::new(dir.path(), LogDefaults::default(), 1);
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        replicas
            .sync_with(&image_with(&[("a", a), ("b", b)], 5), false)
            .expect("initial");
        // An image without `b`, but a delta that only created `c`: `b` is
        // not the delta's business and stays (a full sync would delete it).
        let image = image_with(&[("a", a), ("c", c)], 9);
        let created = MetadataDelta {
            created: BTreeSet::from(["c".to_owned()]),
            ..MetadataDelta::default()
        };
        MetadataListener::apply(&replicas, &created, &image).expect("create c");
        assert!(
            replicas.partition("c", 0).is_some(),
            "the delta's topic opens"
        );
        assert!(
            replicas.partition("b", 0).is_some(),
            "a topic outside the delta stays"
        );
        // The delta that removes `b` deletes it.
        let removed = MetadataDelta {
            removed: BTreeMap::from([("b".to_owned(), b)]),
            ..MetadataDelta::default()
        };
        MetadataListener::apply(&replicas, &removed, &image_with(&[("a", a), ("c", c)], 12))
            .expect("remove b");
        assert!(replicas.partition("b", 0).is_none());
        assert!(!dir.path().join("b-0").exists());
        assert!(replicas.partition("a", 0).is_some());
    }

    fn one_record() -> BytesMut {
        sluice_records::BatchBuilder::new()
            .record(sluice_records::NewRecord {
                key: None,
                value: Some(bytes::Bytes::from_static(b"v")),
                headers: vec![],
                timestamp_ms: 1,
            })
            .build()
            .expect("batch")
    }

    /// Appends one record and commits it; returns the new log end.
    async fn produce_one(p: &Arc<Partition>) -> i64 {
        let info = p.append(one_record(), 1).expect("append");
        p.commit(info.last_offset + 1).await.expect("commit");
        info.last_offset + 1
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commits_over_many_partitions_share_a_bounded_pool_and_all_complete() {
        let dir = tempfile::tempdir().expect("tempdir");
        let replicas = ReplicaManager::new(dir.path(), LogDefaults::default(), 1);
        let names: Vec<(String, Uuid)> =
            (0..64).map(|i| (format!("t{i}"), Uuid::new_v4())).collect();
        let topics: Vec<(&str, Uuid)> = names.iter().map(|(n, id)| (n.as_str(), *id)).collect();
        replicas
            .sync_with(&image_with(&topics, 1), false)
            .expect("open");
        let partitions: Vec<Arc<Partition>> = topics
            .iter()
            .map(|(n, _)| replicas.partition(n, 0).expect("hosted"))
            .collect();
        // Three appends per partition, each committed; every other commit's
        // future is dropped at once: its fsync and high watermark move must
        // happen anyway.
        let mut waiting = Vec::new();
        for round in 0..3 {
            for (i, p) in partitions.iter().enumerate() {
                let info = p.append(one_record(), 1).expect("append");
                let commit = p.commit_local(info.last_offset + 1);
                if (i + round) % 2 == 0 {
                    waiting.push(commit);
                }
            }
        }
        for commit in waiting {
            commit.await.expect("commit");
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        for p in &partitions {
            while p.high_watermark() < 3 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{} never committed",
                    p.tp
                );
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            assert_eq!(p.high_watermark(), 3);
            assert_eq!(
                p.log().recovery_point(),
                3,
                "{}: exposed without an fsync",
                p.tp
            );
        }
        let fsync_threads = std::fs::read_dir("/proc/self/task")
            .expect("/proc")
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|name| name.starts_with("sluice-fsync"))
            .count();
        assert!(
            (1..=GROUP_COMMIT_THREADS).contains(&fsync_threads),
            "{fsync_threads} fsync threads"
        );
    }

    #[tokio::test]
    async fn a_flush_policy_change_takes_effect_live_both_ways() {
        let dir = tempfile::tempdir().expect("tempdir");
        let replicas = ReplicaManager::new(dir.path(), LogDefaults::default(), 1);
        let id = Uuid::new_v4();
        // flush.ms takes the topic off group commit: commits do not fsync.
        replicas
            .sync_with(
                &image_with_configs(&[("t", id)], 1, &[("flush.ms", "600000")]),
                false,
            )
            .expect("open");
        let p = replicas.partition("t", 0).expect("hosted");
        let end = produce_one(&p).await;
        assert_eq!(p.high_watermark(), end);
        assert!(
            p.log().recovery_point() < end,
            "interval flush must not fsync on commit"
        );
        // Deleting the override puts the partition back on group commit at
        // once: everything visible is durable when the change is applied...
        replicas
            .sync_with(&image_with(&[("t", id)], 2), false)
            .expect("reset");
        assert!(p.is_group_commit());
        assert_eq!(p.log().recovery_point(), p.high_watermark());
        // ...and every later commit fsyncs before it exposes data.
        let end = produce_one(&p).await;
        assert_eq!(p.high_watermark(), end);
        assert_eq!(p.log().recovery_point(), end, "commit did not fsync");
        // Setting it again goes the other way, also live.
        replicas
            .sync_with(
                &image_with_configs(&[("t", id)], 3, &[("flush.messages", "1000")]),
                false,
            )
            .expect("set again");
        assert!(!p.is_group_commit());
        let end = produce_one(&p).await;
        assert_eq!(p.high_watermark(), end);
        assert!(
            p.log().recovery_point() < end,
            "interval flush fsynced anyway"
        );
    }

    #[test]
    fn flush_all_reports_a_failed_flush() {
        let dir = tempfile::tempdir().expect("tempdir");
        let replicas = ReplicaManager::new(dir.path(), LogDefaults::default(), 1);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        replicas
            .sync_with(&image_with(&[("a", a), ("b", b)], 1), false)
            .expect("open");
        assert!(replicas.flush_all().is_ok());
        let p = replicas.partition("a", 0).expect("hosted");
        p.append(one_record(), 1).expect("append");
        p.log().inject_sync_failure();
        assert!(
            replicas.flush_all().is_err(),
            "a failed fsync went unreported"
        );
    }

    #[tokio::test]
    async fn an_offline_partition_is_listed_and_comes_back_at_its_durable_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let replicas = ReplicaManager::new(dir.path(), LogDefaults::default(), 1);
        replicas
            .sync_with(&image_with(&[("t", Uuid::new_v4())], 1), false)
            .expect("open");
        let p = replicas.partition("t", 0).expect("hosted");
        let end = produce_one(&p).await;
        // An append reaches the page cache, then its fsync fails.
        let info = p.append(one_record(), 1).expect("append");
        p.log().inject_sync_failure();
        assert!(p.commit(info.last_offset + 1).await.is_err());
        assert_eq!(p.high_watermark(), end, "unsynced data became visible");
        assert_eq!(replicas.offline(), vec![p.tp.clone()]);
        replicas.reopen_offline();
        assert!(
            replicas.offline().is_empty(),
            "the partition did not come back"
        );
        assert_eq!(
            p.log().log_end_offset(),
            end,
            "data past the failed fsync survived"
        );
        assert_eq!(p.high_watermark(), end);
        assert_eq!(produce_one(&p).await, end + 1);
    }
}
