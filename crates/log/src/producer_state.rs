//! Per-partition producer state: idempotent-producer sequence checks and
//! ongoing transactions (for the last stable offset). Aborted transactions
//! are not kept here: each ABORT marker yields an [`AbortedTxn`] that the log
//! writes to the segment's `.txnindex` (see [`crate::txn_index`]).
//!
//! Owned by [`crate::Log`] and mutated only under its `inner` lock, in the
//! same critical section as the append it describes, so "check the sequence"
//! and "append the batch" are one atomic step per partition.
//!
//! Persistence: a snapshot file, `producer-state-checkpoint`, written
//! atomically through the log's store (see [`crate::store`]) when the log flushes. It records
//! the offset it covers; on open the log replays every batch from that
//! offset to the end, so a crash between snapshots loses nothing. The
//! format is in `docs/design.md` ("Idempotence and transactions").

/// Version of the snapshot format written. Version 0 also listed the aborted
/// transactions, which now live in `.txnindex` files; a version 0 file is
/// ignored and the state rebuilt from the log (which also rebuilds the
/// missing `.txnindex` files).
pub const SNAPSHOT_VERSION: i64 = 1;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::path::Path;

use bytes::Bytes;
use sluice_records::{BatchHeader, decode_records};

/// File holding the producer state snapshot.
pub const PRODUCER_STATE_FILE: &str = "producer-state-checkpoint";

/// Batches remembered per producer for duplicate detection. Kafka keeps 5,
/// matching the most in-flight requests an idempotent producer may have
/// (`max.in.flight.requests.per.connection` <= 5).
pub const BATCHES_TO_RETAIN: usize = 5;

/// Bound on producer entries read from a snapshot: a corrupt count must not
/// make us allocate without limit. Far above any real partition.
const MAX_SNAPSHOT_ENTRIES: usize = 10_000_000;

/// Kafka's `producer.id.expiration.ms` default (1 day): producers idle this
/// long with no open transaction are forgotten, bounding the map.
pub const PRODUCER_ID_EXPIRATION_MS: i64 = 86_400_000;

/// Why a producer's batch was refused. Nothing was appended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProducerError {
    /// The batch carries an epoch older than the producer's current one: a
    /// zombie, fenced by a newer instance or an epoch bump.
    #[error("producer {producer_id} epoch {epoch} is older than the current epoch {current}")]
    InvalidEpoch {
        /// The producer id.
        producer_id: i64,
        /// The batch's epoch.
        epoch: i16,
        /// The partition's current epoch for that producer.
        current: i16,
    },
    /// The batch's first sequence is not the next one expected: a gap.
    #[error("producer {producer_id}: expected sequence {expected}, got {found}")]
    OutOfOrderSequence {
        /// The producer id.
        producer_id: i64,
        /// The sequence that would have been in order (-1: unknown, only 0 is accepted).
        expected: i32,
        /// The batch's base sequence.
        found: i32,
    },
    /// The batch was appended before (a producer retry). Kafka answers
    /// success with the original offsets; so does the produce handler.
    #[error("duplicate of the batch at offsets {base_offset}..={last_offset}")]
    Duplicate {
        /// Offset of the original batch's first record.
        base_offset: i64,
        /// Offset of its last record.
        last_offset: i64,
    },
    /// A client sent a control batch; only the transaction coordinator may.
    #[error("control batches may only be written by the transaction coordinator")]
    ControlBatchFromClient,
    /// A control batch that is not a well-formed transaction marker.
    #[error("invalid transaction marker: {reason}")]
    InvalidMarker {
        /// What is wrong.
        reason: &'static str,
    },
}

/// Kafka error codes for [`ProducerError`].
impl ProducerError {
    /// The per-partition error code.
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            ProducerError::InvalidEpoch { .. } => 47, // INVALID_PRODUCER_EPOCH
            ProducerError::OutOfOrderSequence { .. } => 45, // OUT_OF_ORDER_SEQUENCE_NUMBER
            ProducerError::Duplicate { .. } => 46,    // DUPLICATE_SEQUENCE_NUMBER
            ProducerError::ControlBatchFromClient | ProducerError::InvalidMarker { .. } => 87,
        }
    }
}

/// Who is appending: a client (Produce) or a coordinator (transaction
/// markers; the group coordinator's transactional offset commits). Only a
/// coordinator may write control batches, and its transactional batches
/// without a sequence are not sequence-checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOrigin {
    /// A producer, through Produce (or an internal writer acting like one).
    Client,
    /// A coordinator: the transaction coordinator writing commit/abort
    /// markers, or the group coordinator writing transactional offsets.
    Coordinator,
}

/// The kind of a transaction marker (the control record's key type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerType {
    /// ABORT (type 0).
    Abort,
    /// COMMIT (type 1).
    Commit,
}

impl MarkerType {
    /// The control record key type.
    pub fn key_type(self) -> i16 {
        match self {
            MarkerType::Abort => 0,
            MarkerType::Commit => 1,
        }
    }
}

/// Control record key: `[version i16 = 0][type i16]`.
pub fn marker_key(marker: MarkerType) -> Bytes {
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&0i16.to_be_bytes());
    key.extend_from_slice(&marker.key_type().to_be_bytes());
    Bytes::from(key)
}

/// Control record value: `[version i16 = 0][coordinator_epoch i32]`.
pub fn marker_value(coordinator_epoch: i32) -> Bytes {
    let mut value = Vec::with_capacity(6);
    value.extend_from_slice(&0i16.to_be_bytes());
    value.extend_from_slice(&coordinator_epoch.to_be_bytes());
    Bytes::from(value)
}

/// Reads the marker type and coordinator epoch of one control batch.
pub fn parse_marker(batch: &Bytes) -> Result<(MarkerType, i32), ProducerError> {
    let records = decode_records(batch).map_err(|_| ProducerError::InvalidMarker {
        reason: "records do not decode",
    })?;
    let [record] = records.as_slice() else {
        return Err(ProducerError::InvalidMarker {
            reason: "a marker batch holds exactly one record",
        });
    };
    let key = record.key.as_deref().unwrap_or_default();
    if key.len() < 4 {
        return Err(ProducerError::InvalidMarker {
            reason: "control record key shorter than 4 bytes",
        });
    }
    let marker = match i16::from_be_bytes([key[2], key[3]]) {
        0 => MarkerType::Abort,
        1 => MarkerType::Commit,
        _ => {
            return Err(ProducerError::InvalidMarker {
                reason: "unknown control record type",
            });
        }
    };
    let coordinator_epoch = match record.value.as_deref() {
        Some(v) if v.len() >= 6 => i32::from_be_bytes([v[2], v[3], v[4], v[5]]),
        _ => -1,
    };
    Ok((marker, coordinator_epoch))
}

/// One appended batch of a producer, remembered for duplicate detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMeta {
    /// First sequence number.
    pub first_seq: i32,
    /// Last sequence number.
    pub last_seq: i32,
    /// Offset of the first record.
    pub first_offset: i64,
    /// Offset of the last record.
    pub last_offset: i64,
}

/// What a partition knows about one producer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerEntry {
    /// Current epoch.
    pub epoch: i16,
    /// Last batches of this epoch, oldest first, at most [`BATCHES_TO_RETAIN`].
    pub batches: VecDeque<BatchMeta>,
    /// Max timestamp of the last batch (or marker).
    pub last_timestamp: i64,
    /// Coordinator epoch of the last marker, -1 if none.
    pub coordinator_epoch: i32,
    /// First offset of the open transaction, if one is open.
    pub current_txn_first_offset: Option<i64>,
}

impl ProducerEntry {
    fn new(epoch: i16) -> ProducerEntry {
        ProducerEntry {
            epoch,
            batches: VecDeque::new(),
            last_timestamp: -1,
            coordinator_epoch: -1,
            current_txn_first_offset: None,
        }
    }

    /// Last sequence number appended in this epoch, -1 if none.
    pub fn last_seq(&self) -> i32 {
        self.batches.back().map_or(-1, |b| b.last_seq)
    }
}

/// An aborted transaction: its producer, first offset and the offset of the
/// ABORT marker that ended it. Fetch returns (producer id, first offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    /// The producer id.
    pub producer_id: i64,
    /// Offset of the transaction's first batch in this partition.
    pub first_offset: i64,
    /// Offset of the ABORT marker.
    pub last_offset: i64,
}

/// Sequence numbers wrap from `i32::MAX` to 0, as in Kafka.
fn seq_add(seq: i32, delta: i32) -> i32 {
    ((i64::from(seq) + i64::from(delta)) % (i64::from(i32::MAX) + 1)) as i32
}

/// The producer state of one partition.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ProducerStateManager {
    producers: HashMap<i64, ProducerEntry>,
    /// Open transactions by first offset -> producer id; the smallest key
    /// bounds the last stable offset.
    ongoing: BTreeMap<i64, i64>,
    /// Every batch below this offset is reflected in the state.
    end_offset: i64,
}

/// Staged changes of one append: applied only after the write succeeded.
#[derive(Debug, Default)]
pub struct Staged {
    entries: HashMap<i64, ProducerEntry>,
    aborted: Vec<AbortedTxn>,
    /// Transactions ended by markers in this append (producer id).
    ended: Vec<i64>,
    /// Transactions started in this append (first offset, producer id).
    started: Vec<(i64, i64)>,
}

impl ProducerStateManager {
    /// Offset up to which the state reflects the log.
    pub fn end_offset(&self) -> i64 {
        self.end_offset
    }

    /// Records that the state reflects the log up to `offset` (nothing
    /// below it is left to replay).
    pub fn advance_end_offset(&mut self, offset: i64) {
        self.end_offset = self.end_offset.max(offset);
    }

    /// The entry for a producer.
    pub fn producer(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    /// Every producer (DescribeProducers).
    pub fn producers(&self) -> impl Iterator<Item = (i64, &ProducerEntry)> {
        self.producers.iter().map(|(&id, e)| (id, e))
    }

    /// First offset of the oldest open transaction.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.ongoing.keys().next().copied()
    }

    fn staged_entry<'a>(&self, staged: &'a mut Staged, id: i64) -> Option<&'a mut ProducerEntry> {
        match staged.entries.entry(id) {
            std::collections::hash_map::Entry::Occupied(o) => Some(o.into_mut()),
            std::collections::hash_map::Entry::Vacant(v) => {
                Some(v.insert(self.producers.get(&id)?.clone()))
            }
        }
    }

    /// Checks one batch about to be appended at `header.base_offset` and
    /// records its effect in `staged`. `batch` is the batch's bytes (read
    /// only for control batches). `only_batch` says whether the append holds
    /// just this batch (duplicates are recognised only then, as Kafka v3+
    /// produce requests carry one batch per partition).
    pub fn check_and_stage(
        &self,
        staged: &mut Staged,
        header: &BatchHeader,
        batch: &[u8],
        origin: AppendOrigin,
        only_batch: bool,
    ) -> Result<(), ProducerError> {
        if header.is_control() {
            if origin != AppendOrigin::Coordinator {
                return Err(ProducerError::ControlBatchFromClient);
            }
            if header.producer_id < 0 || !header.is_transactional() {
                return Err(ProducerError::InvalidMarker {
                    reason: "markers carry a producer id and the transactional bit",
                });
            }
            let (marker, coordinator_epoch) = parse_marker(&Bytes::copy_from_slice(batch))?;
            if let Some(e) = self.staged_entry(staged, header.producer_id)
                && header.producer_epoch < e.epoch
            {
                return Err(ProducerError::InvalidEpoch {
                    producer_id: header.producer_id,
                    epoch: header.producer_epoch,
                    current: e.epoch,
                });
            }
            self.stage_marker(staged, header, marker, coordinator_epoch);
            return Ok(());
        }
        if header.producer_id < 0 {
            return Ok(());
        }
        let id = header.producer_id;
        let first_seq = header.base_sequence;
        let last_seq = seq_add(first_seq, header.last_offset_delta);
        match self.staged_entry(staged, id) {
            None => {}
            Some(e) if header.producer_epoch < e.epoch => {
                return Err(ProducerError::InvalidEpoch {
                    producer_id: id,
                    epoch: header.producer_epoch,
                    current: e.epoch,
                });
            }
            // The group coordinator writes transactional offset commits
            // with no sequence (Kafka's NO_SEQUENCE, -1), as Kafka's does:
            // a coordinator retries by writing again, not by resending a
            // batch, so there is nothing to order or deduplicate. The
            // epoch check above still fences a stale producer.
            Some(_) if origin == AppendOrigin::Coordinator && first_seq < 0 => {}
            // A new epoch restarts sequences at 0.
            Some(e) if header.producer_epoch > e.epoch && first_seq != 0 => {
                return Err(ProducerError::OutOfOrderSequence {
                    producer_id: id,
                    expected: 0,
                    found: first_seq,
                });
            }
            Some(e) if header.producer_epoch > e.epoch => {}
            Some(e) => {
                if let Some(dup) = e
                    .batches
                    .iter()
                    .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
                    && only_batch
                {
                    return Err(ProducerError::Duplicate {
                        base_offset: dup.first_offset,
                        last_offset: dup.last_offset,
                    });
                }
                let last = e.last_seq();
                // Only a marker was written in this epoch: the next
                // sequence is unknown, so only a fresh start (0) is safe.
                let expected = if last < 0 { 0 } else { seq_add(last, 1) };
                if first_seq != expected {
                    return Err(ProducerError::OutOfOrderSequence {
                        producer_id: id,
                        expected,
                        found: first_seq,
                    });
                }
            }
        }
        let meta = BatchMeta {
            first_seq,
            last_seq,
            first_offset: header.base_offset,
            last_offset: header.last_offset(),
        };
        self.stage_data(staged, header, meta);
        Ok(())
    }

    fn stage_data(&self, staged: &mut Staged, header: &BatchHeader, meta: BatchMeta) {
        let id = header.producer_id;
        if self.staged_entry(staged, id).is_none() {
            staged
                .entries
                .insert(id, ProducerEntry::new(header.producer_epoch));
        }
        let Some(e) = staged.entries.get_mut(&id) else {
            return;
        };
        if header.producer_epoch != e.epoch {
            e.epoch = header.producer_epoch;
            e.batches.clear();
        }
        // Sequence -1 means "not idempotent" (a transactional writer that
        // does not number its batches); nothing to remember for dedup.
        if header.base_sequence >= 0 {
            e.batches.push_back(meta);
            while e.batches.len() > BATCHES_TO_RETAIN {
                e.batches.pop_front();
            }
        }
        e.last_timestamp = header.max_timestamp;
        if header.is_transactional() && e.current_txn_first_offset.is_none() {
            e.current_txn_first_offset = Some(header.base_offset);
            staged.started.push((header.base_offset, id));
        }
    }

    fn stage_marker(
        &self,
        staged: &mut Staged,
        header: &BatchHeader,
        marker: MarkerType,
        coordinator_epoch: i32,
    ) {
        let id = header.producer_id;
        if self.staged_entry(staged, id).is_none() {
            staged
                .entries
                .insert(id, ProducerEntry::new(header.producer_epoch));
        }
        let Some(e) = staged.entries.get_mut(&id) else {
            return;
        };
        if header.producer_epoch > e.epoch {
            e.epoch = header.producer_epoch;
            e.batches.clear();
        }
        e.coordinator_epoch = coordinator_epoch;
        e.last_timestamp = header.max_timestamp;
        if let Some(first_offset) = e.current_txn_first_offset.take() {
            staged.ended.push(id);
            if marker == MarkerType::Abort {
                staged.aborted.push(AbortedTxn {
                    producer_id: id,
                    first_offset,
                    last_offset: header.base_offset,
                });
            }
        }
    }

    /// Applies what [`Self::check_and_stage`] staged, now that the batches
    /// are written and the log ends at `end_offset`. Returns the
    /// transactions the append aborted, in marker order, for the `.txnindex`.
    pub fn apply(&mut self, staged: Staged, end_offset: i64) -> Vec<AbortedTxn> {
        for id in &staged.ended {
            self.ongoing.retain(|_, pid| pid != id);
        }
        for (first_offset, id) in staged.started {
            self.ongoing.insert(first_offset, id);
        }
        self.producers.extend(staged.entries);
        self.end_offset = end_offset;
        staged.aborted
    }

    /// Replays one batch found in the log (recovery): no checks, just the
    /// state change. `batch` is the batch's bytes for control batches.
    /// Returns the transaction an ABORT marker ended, if any.
    pub fn replay(&mut self, header: &BatchHeader, batch: Option<&Bytes>) -> Option<AbortedTxn> {
        let mut staged = Staged::default();
        if header.is_control() {
            let bytes = batch?;
            match parse_marker(bytes) {
                Ok((marker, coordinator_epoch)) => {
                    self.stage_marker(&mut staged, header, marker, coordinator_epoch)
                }
                Err(e) => {
                    tracing::warn!(offset = header.base_offset, error = %e, "skipping unreadable marker in recovery");
                }
            }
        } else if header.producer_id >= 0 {
            let meta = BatchMeta {
                first_seq: header.base_sequence,
                last_seq: seq_add(header.base_sequence, header.last_offset_delta),
                first_offset: header.base_offset,
                last_offset: header.last_offset(),
            };
            self.stage_data(&mut staged, header, meta);
        }
        self.apply(staged, header.next_offset()).pop()
    }

    /// Forgets producers idle past [`PRODUCER_ID_EXPIRATION_MS`] with no
    /// open transaction. (Aborted transactions go with their segment's
    /// `.txnindex`.)
    pub fn prune(&mut self, now_ms: i64) {
        self.producers.retain(|_, e| {
            e.current_txn_first_offset.is_some()
                || e.last_timestamp < 0
                || now_ms.saturating_sub(e.last_timestamp) < PRODUCER_ID_EXPIRATION_MS
        });
    }

    /// Serialises the state (see `docs/design.md` for the format).
    pub fn to_snapshot(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "version {SNAPSHOT_VERSION}");
        let _ = writeln!(out, "end_offset {}", self.end_offset);
        let _ = writeln!(out, "producers {}", self.producers.len());
        let mut ids: Vec<_> = self.producers.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let Some(e) = self.producers.get(&id) else {
                continue;
            };
            let _ = write!(
                out,
                "p {id} {} {} {} {} {}",
                e.epoch,
                e.last_timestamp,
                e.coordinator_epoch,
                e.current_txn_first_offset.unwrap_or(-1),
                e.batches.len()
            );
            for b in &e.batches {
                let _ = write!(
                    out,
                    " {} {} {} {}",
                    b.first_seq, b.last_seq, b.first_offset, b.last_offset
                );
            }
            out.push('\n');
        }
        out.push_str("end\n");
        out
    }

    /// Parses a snapshot; `None` if it is malformed in any way.
    pub fn from_snapshot(text: &str) -> Option<ProducerStateManager> {
        let mut lines = text.lines();
        let mut field =
            |name: &str| -> Option<i64> { lines.next()?.strip_prefix(name)?.trim().parse().ok() };
        if field("version ")? != SNAPSHOT_VERSION {
            return None;
        }
        let end_offset = field("end_offset ")?;
        let n = usize::try_from(field("producers ")?).ok()?;
        if n > MAX_SNAPSHOT_ENTRIES {
            return None;
        }
        let mut state = ProducerStateManager {
            end_offset,
            ..ProducerStateManager::default()
        };
        let mut lines = text.lines().skip(3);
        for _ in 0..n {
            let mut it = lines.next()?.strip_prefix("p ")?.split(' ');
            let mut num = || -> Option<i64> { it.next()?.parse().ok() };
            let id = num()?;
            let epoch = i16::try_from(num()?).ok()?;
            let last_timestamp = num()?;
            let coordinator_epoch = i32::try_from(num()?).ok()?;
            let txn = num()?;
            let count = usize::try_from(num()?).ok()?;
            if count > BATCHES_TO_RETAIN {
                return None;
            }
            let mut e = ProducerEntry::new(epoch);
            e.last_timestamp = last_timestamp;
            e.coordinator_epoch = coordinator_epoch;
            for _ in 0..count {
                e.batches.push_back(BatchMeta {
                    first_seq: i32::try_from(num()?).ok()?,
                    last_seq: i32::try_from(num()?).ok()?,
                    first_offset: num()?,
                    last_offset: num()?,
                });
            }
            if num().is_some() {
                return None;
            }
            if txn >= 0 {
                e.current_txn_first_offset = Some(txn);
                state.ongoing.insert(txn, id);
            }
            state.producers.insert(id, e);
        }
        (lines.next()? == "end").then_some(state)
    }

    /// Parses a snapshot's text read from `dir`; `None` if it is malformed
    /// or of an old version (logged; the caller rebuilds from the log).
    pub fn parse_snapshot(dir: &Path, text: &str) -> Option<ProducerStateManager> {
        let parsed = ProducerStateManager::from_snapshot(text);
        if parsed.is_none() && text.starts_with("version 0\n") {
            // The upgrade path from before `.txnindex` files: see SNAPSHOT_VERSION.
            tracing::info!(dir = %dir.display(), "producer state snapshot has the old version 0 format; rebuilding from the log");
        } else if parsed.is_none() {
            tracing::warn!(dir = %dir.display(), "ignoring malformed producer state snapshot; rebuilding from the log");
        }
        parsed
    }
}
