//! [`Log`]: one partition's segmented log. Owns the partition directory and
//! everything in it; knows nothing about the network, replication or the
//! data-dir lock.
//!
//! Every lifecycle operation on the directory's files (create, list,
//! delete, checkpoints, directory fsync) goes through the log's
//! [`SegmentStore`]; appends, reads and fsyncs use handles from the store's
//! file cache directly (see [`crate::store`]).
//!
//! Locking: `inner` (a std `Mutex`) guards the segment list and offsets and is
//! held only for in-memory work plus the append's page-cache `pwrite` — never
//! across an fsync or an `.await`. `flush_lock` serialises fsyncs so that one
//! fsync covers every append waiting at that moment (group commit).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use sluice_records::{
    BatchHeader, Batches, NextBatch, RecordsError, TimestampType, check_producer_batch,
    decode_records, set_base_offset, set_log_append_time, set_partition_leader_epoch,
};

use crate::checkpoint::{
    self, CLEANER_OFFSET_FILE, LEADER_EPOCH_FILE, LOG_START_FILE, RECOVERY_POINT_FILE,
};
use crate::config::{FlushPolicy, LogConfig};
use crate::encryption::{self, EncryptionError, Keyring};
use crate::error::LogError;
use crate::error::io_err;
use crate::file_cache::FileCache;
use crate::producer_state::{
    AbortedTxn, AppendOrigin, PRODUCER_STATE_FILE, ProducerEntry, ProducerStateManager, Staged,
};
use crate::segment::{self, ScanEnd, Segment, read_header};
use crate::store::{
    DeleteReason, LocalStore, SealOrigin, SealedSegment, SegmentFile, SegmentStore,
};
use crate::txn_index::{TXN_ENTRY_BYTES, TxnIndexEntry};

/// The part of a log the cleaner may compact now
/// ([`Log::cleanable_range`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanableRange {
    /// Everything below it was compacted already.
    pub first_dirty_offset: i64,
    /// The cleaner must not touch this offset or above.
    pub first_uncleanable_offset: i64,
    /// Bytes of the cleanable segments below the first dirty offset.
    pub clean_bytes: u64,
    /// Bytes of the cleanable segments from the first dirty offset up.
    pub dirty_bytes: u64,
    /// The cleanable sealed segments, ascending.
    pub segments: Vec<SegmentSpan>,
    /// The first batch timestamp of the oldest dirty segment, for
    /// `max.compaction.lag.ms`.
    pub first_dirty_timestamp: Option<i64>,
}

/// Where `replaced` (ascending base offsets) sit in the log: the index of
/// the first and the base offset of the segment after the last, if they
/// are consecutive sealed segments (the active one excluded).
fn consecutive_sealed(inner: &Inner, replaced: &[i64]) -> Option<(usize, i64)> {
    let base = *replaced.first()?;
    let first = inner.segments.iter().position(|s| s.base_offset == base)?;
    let after = first + replaced.len();
    let consecutive = after < inner.segments.len()
        && inner.segments[first..after]
            .iter()
            .map(|s| s.base_offset)
            .eq(replaced.iter().copied());
    consecutive.then(|| (first, inner.segments[after].base_offset))
}

/// A sealed segment's offsets and size, as the cleaner plans with them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentSpan {
    /// Its base offset.
    pub base: i64,
    /// The base offset of the segment after it.
    pub end: i64,
    /// Bytes of its `.log`.
    pub size: u64,
}

/// A segment the cleaner is writing, staged beside the log until
/// [`Log::install_staged_segment`] swaps it in ([`Log::stage_segment`]).
#[derive(Debug)]
pub struct StagedSegment {
    /// The segments it replaces; the first is its base.
    replaced: Vec<i64>,
    /// The base offset of the segment after the replaced ones.
    end: i64,
    /// The keyring that seals its batches under encryption at rest, taken
    /// once at staging rather than under the log's lock for every chunk.
    encryption: Option<Arc<Keyring>>,
    /// The staged `.log`.
    log: File,
    /// Bytes written to it.
    written: u64,
    /// The offset the next batch written must start at or above.
    next_offset: i64,
}

impl CleanableRange {
    /// The share of the cleanable bytes that is dirty, in thousandths
    /// (compared with `min.cleanable.dirty.ratio`).
    pub fn dirty_ratio_permille(&self) -> u16 {
        let total = self.clean_bytes + self.dirty_bytes;
        if total == 0 {
            return 0;
        }
        u16::try_from(self.dirty_bytes * 1000 / total).unwrap_or(1000)
    }

    /// Dirty bytes over cleanable bytes, 0.0 to 1.0 (Kafka's
    /// `cleanableRatio`); 0.0 when nothing is cleanable.
    pub fn dirty_ratio(&self) -> f64 {
        let total = self.clean_bytes + self.dirty_bytes;
        if total == 0 {
            return 0.0;
        }
        self.dirty_bytes as f64 / total as f64
    }
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset assigned to the first record.
    pub base_offset: i64,
    /// Offset of the last record.
    pub last_offset: i64,
    /// The broker time stamped into the batches, -1 under CreateTime.
    pub log_append_time: i64,
    /// Log start offset after the append.
    pub log_start_offset: i64,
    /// Records appended.
    pub record_count: u32,
    /// The leader epoch the batches carry (of the last one, for a
    /// replicated append).
    pub leader_epoch: i32,
}

/// A byte range of a segment file holding whole batches.
///
/// Today it is read with `pread`; a later change can hand the same
/// (file, position, len) to `sendfile` for a zero-copy Fetch.
#[derive(Debug, Clone)]
pub struct FileSlice {
    file: Arc<File>,
    position: u64,
    len: u32,
}

impl FileSlice {
    /// The underlying segment file.
    pub fn file(&self) -> &Arc<File> {
        &self.file
    }
    /// Byte position in the file.
    pub fn position(&self) -> u64 {
        self.position
    }
    /// Length in bytes.
    pub fn len(&self) -> u32 {
        self.len
    }
    /// True if the slice is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Reads the bytes with `pread`.
    pub fn read_to_bytes(&self) -> std::io::Result<Bytes> {
        let mut buf = BytesMut::with_capacity(self.len as usize);
        self.read_into(&mut buf)?;
        Ok(buf.freeze())
    }
    /// Appends the bytes to `out` with `pread`; on an error `out` may hold
    /// part of them.
    pub fn read_into(&self, out: &mut BytesMut) -> std::io::Result<()> {
        let start = out.len();
        out.resize(start + self.len as usize, 0);
        self.file.read_exact_at(&mut out[start..], self.position)
    }
}

/// Result of [`Log::read`].
#[derive(Debug, Clone)]
pub struct ReadResult {
    /// Whole batches, in offset order; contiguous batches share one slice.
    pub slices: Vec<FileSlice>,
    /// Log start offset when the read was planned.
    pub log_start_offset: i64,
    /// Log end offset when the read was planned.
    pub log_end_offset: i64,
    /// The offset after the last batch in the slices (the read's start
    /// offset when they are empty).
    pub next_offset: i64,
    /// Whether any batch in the slices is an encryption envelope: such a
    /// read must go through [`ReadResult::to_bytes`], never to a client
    /// as stored.
    pub envelopes: bool,
    /// The keyring envelopes in the slices are opened with (the log's when
    /// the read was planned); `None` means envelopes cannot be served.
    pub encryption: Option<Arc<Keyring>>,
}

impl ReadResult {
    /// Total bytes in the slices.
    pub fn len_bytes(&self) -> u64 {
        self.slices.iter().map(|s| u64::from(s.len)).sum()
    }
    /// Concatenates the slices into one buffer of plain Kafka batches:
    /// encryption envelopes are opened (a copy; plain reads copy nothing
    /// more). A missing key or a failed tag is an `InvalidData` error whose
    /// inner error is the typed [`crate::EncryptionError`]; no byte of the
    /// read is returned then.
    pub fn to_bytes(&self) -> std::io::Result<Bytes> {
        let stored = if let [one] = self.slices.as_slice() {
            one.read_to_bytes()?
        } else {
            let mut out = BytesMut::with_capacity(self.len_bytes() as usize);
            for s in &self.slices {
                s.read_into(&mut out)?;
            }
            out.freeze()
        };
        encryption::decrypt_batches(self.encryption.as_deref(), stored)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }
}

/// Seals each batch of `records` (at the positions in `batches`) in an
/// envelope with the keyring's active key; returns the stored bytes and
/// the batches' positions and headers in them.
#[allow(clippy::type_complexity)]
fn seal_batches(
    keyring: &Keyring,
    records: &[u8],
    batches: &[(usize, BatchHeader)],
) -> Result<(Vec<u8>, Vec<(usize, BatchHeader)>), LogError> {
    let mut out =
        Vec::with_capacity(records.len() + batches.len() * encryption::ENVELOPE_OVERHEAD_BYTES);
    let mut stored = Vec::with_capacity(batches.len());
    for (position, header) in batches {
        let at = out.len();
        keyring.encrypt_batch(
            &records[*position..*position + header.total_size()],
            &mut out,
        )?;
        let mut h = *header;
        h.batch_length = (out.len() - at - sluice_records::batch::LOG_OVERHEAD_BYTES) as i32;
        stored.push((at, h));
    }
    Ok((out, stored))
}

/// Test-only fault switches: make the next write or fsync fail like a disk would.
#[derive(Debug, Default)]
struct Faults {
    #[cfg(any(test, feature = "fault-injection"))]
    fail_write: AtomicBool,
    #[cfg(any(test, feature = "fault-injection"))]
    fail_sync: AtomicBool,
    #[cfg(any(test, feature = "fault-injection"))]
    fail_delete: AtomicBool,
}

impl Faults {
    #[allow(unused_variables)]
    fn check(&self, sync: bool) -> std::io::Result<()> {
        #[cfg(any(test, feature = "fault-injection"))]
        {
            let flag = if sync {
                &self.fail_sync
            } else {
                &self.fail_write
            };
            if flag.swap(false, Ordering::SeqCst) {
                return Err(std::io::Error::other("injected fault"));
            }
        }
        Ok(())
    }

    fn check_delete(&self) -> std::io::Result<()> {
        #[cfg(any(test, feature = "fault-injection"))]
        if self.fail_delete.swap(false, Ordering::SeqCst) {
            return Err(std::io::Error::other("injected fault"));
        }
        Ok(())
    }
}

/// `fdatasync`s `file`, failing first if a fault was injected.
fn sync_file(faults: &Faults, file: &File, path: &Path) -> Result<(), LogError> {
    faults
        .check(true)
        .and_then(|()| file.sync_data())
        .map_err(io_err("fsync", path))?;
    #[cfg(test)]
    checkpoint::synced::record(path);
    Ok(())
}

/// Mutable state guarded by `Log::inner`.
#[derive(Debug)]
struct Inner {
    config: LogConfig,
    /// Sorted by base offset; the last one is the active segment. Never empty.
    segments: Vec<Segment>,
    log_start_offset: i64,
    log_end_offset: i64,
    size_bytes: u64,
    /// Leader epoch cache: (epoch, start offset), both increasing.
    epochs: Vec<(i32, i64)>,
    /// Recovery point last written to the checkpoint file.
    checkpointed_recovery_point: i64,
    /// A segment file was created since the last directory fsync.
    dir_dirty: bool,
    /// When `flush.ms` last fired.
    last_flush_ms: i64,
    /// Producer ids, sequences and open transactions.
    producers: ProducerStateManager,
    /// `producers.end_offset()` when the snapshot was last written.
    snapshot_end_offset: i64,
    /// When the timer last considered a producer state snapshot.
    last_snapshot_ms: i64,
    /// When the flush timer last wrote the recovery-point checkpoint.
    last_recovery_checkpoint_ms: i64,
    /// The cleaner's first dirty offset, read from its checkpoint on first
    /// use (most logs are never compacted).
    first_dirty_offset: Option<i64>,
    /// When a clean last moved the checkpoint, in this process.
    last_clean_ms: Option<i64>,
}

impl Inner {
    fn active(&mut self) -> &mut Segment {
        self.segments
            .last_mut()
            .expect("invariant: a log always has an active segment")
    }

    fn roll(&mut self, dir: &Path, store: &Arc<dyn SegmentStore>) -> Result<(), LogError> {
        self.active().seal()?;
        let segment = Segment::create(dir, self.log_end_offset, store)?;
        self.segments.push(segment);
        self.dir_dirty = true;
        let sealed = &self.segments[self.segments.len() - 2];
        store.segment_sealed(&sealed_segment(dir, sealed), SealOrigin::Rolled);
        Ok(())
    }

    /// Writes an aborted transaction to the `.txnindex` of the segment
    /// holding its marker, unless that segment already indexes it (replay
    /// re-derives ranges that may be partly indexed).
    fn index_aborted(
        &mut self,
        aborted: &AbortedTxn,
        last_stable_offset: i64,
    ) -> Result<(), LogError> {
        let k = self.segment_index_for(aborted.last_offset);
        let seg = &mut self.segments[k];
        if aborted.last_offset <= seg.last_txn_marker {
            return Ok(());
        }
        seg.append_txn_entry(&TxnIndexEntry {
            producer_id: aborted.producer_id,
            first_offset: aborted.first_offset,
            last_offset: aborted.last_offset,
            last_stable_offset,
        })
    }

    /// Index of the segment that holds `offset` (the last one with base <= offset).
    fn segment_index_for(&self, offset: i64) -> usize {
        self.segments
            .partition_point(|s| s.base_offset <= offset)
            .saturating_sub(1)
    }
}

/// How a sealed segment is described to the store.
fn sealed_segment<'a>(dir: &'a Path, segment: &Segment) -> SealedSegment<'a> {
    SealedSegment {
        dir,
        base_offset: segment.base_offset,
        end_offset: segment.next_offset,
        size_bytes: segment.size,
        max_timestamp: segment.indexes.max_timestamp,
    }
}

/// Reads a single-offset checkpoint through `store`; `None` if missing.
fn read_offset_checkpoint(
    store: &dyn SegmentStore,
    dir: &Path,
    name: &str,
) -> Result<Option<i64>, LogError> {
    store
        .read_sidecar(dir, name)?
        .map(|text| checkpoint::parse_offset(&dir.join(name), &text))
        .transpose()
}

/// One partition's durable, segmented log. `Send + Sync`; all methods take `&self`.
#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    /// Every lifecycle operation on the directory's files goes through it;
    /// segment file handles come from its [`FileCache`].
    store: Arc<dyn SegmentStore>,
    inner: Mutex<Inner>,
    /// Serialises fsyncs; see the module docs.
    flush_lock: Mutex<()>,
    /// Everything below this offset is fsynced.
    durable_offset: AtomicI64,
    /// Set once a write or fsync failed; the log then refuses writes.
    failed: AtomicBool,
    /// Suppresses the error line of the first failure: set while a log is
    /// being opened (the open reports a read-only result itself once).
    quiet: AtomicBool,
    faults: Faults,
}

/// How often the flush timer snapshots producer state (when it changed).
/// Recovery replays the log from the last snapshot, so this bounds the
/// replay after a crash; a minute keeps the extra fsyncs negligible.
const PRODUCER_SNAPSHOT_INTERVAL_MS: i64 = 60_000;

/// How often the flush timer writes the recovery-point checkpoint under
/// group commit (Kafka's `log.flush.offset.checkpoint.interval.ms`). Each
/// write costs two fsyncs per partition; at 10,000 partitions a 1 s cadence
/// kept the housekeeping thread busy for over a minute per pass. A lagging
/// recovery point is safe: it only means more scanning at the next open.
const RECOVERY_POINT_CHECKPOINT_INTERVAL_MS: i64 = 60_000;

/// True if a sealed segment's loaded offset index reaches its end: fewer
/// than `interval` bytes follow the batch of the last entry (the append
/// path adds an entry once that many bytes have accumulated). An index
/// whose tail never reached the disk fails this and is rebuilt.
fn index_covers_segment(seg: &Segment, interval: u32) -> bool {
    let Some(&(_, pos)) = seg.indexes.offsets.last() else {
        return false;
    };
    let Ok(file) = seg.log_file() else {
        return false;
    };
    let Ok(raw) = read_header(&file, u64::from(pos)) else {
        return false;
    };
    let Ok(header) = BatchHeader::parse(&raw) else {
        return false;
    };
    let tail_start = u64::from(pos) + header.total_size() as u64;
    tail_start <= seg.size && seg.size - tail_start < u64::from(interval)
}

/// During recovery, a failed write of derived data (a rebuilt index, a
/// checkpoint) does not stop the open: the in-memory state is complete, so
/// the log opens read-only and serves reads. Other errors are returned.
fn defer_write_failure(
    r: Result<(), LogError>,
    deferred: &mut Option<LogError>,
) -> Result<(), LogError> {
    match r {
        Err(e @ LogError::Io { .. }) => {
            deferred.get_or_insert(e);
            Ok(())
        }
        other => other,
    }
}

impl Log {
    /// Opens (creating if needed) the partition directory `dir` and recovers it.
    ///
    /// Recovery writes derived data (rebuilt indexes, checkpoints, the final
    /// fsync). If only such a write fails — a full disk, say — the log
    /// still opens, **read-only**: [`Log::is_offline`] is true, reads work,
    /// writes return [`LogError::Failed`], and [`Log::reopen`] retries.
    /// Damage and failures to read are returned as errors. File handles
    /// come from the process-wide [`FileCache::global`].
    pub fn open(dir: &Path, config: LogConfig) -> Result<Log, LogError> {
        Log::open_impl(dir, config, Arc::new(LocalStore::global()), false)
    }

    /// [`Log::open`] with file handles from `cache`.
    pub fn open_with_cache(
        dir: &Path,
        config: LogConfig,
        cache: Arc<FileCache>,
    ) -> Result<Log, LogError> {
        Log::open_impl(dir, config, Arc::new(LocalStore::new(cache)), false)
    }

    /// [`Log::open`] with every file operation going through `store`.
    pub fn open_with_store(
        dir: &Path,
        config: LogConfig,
        store: Arc<dyn SegmentStore>,
    ) -> Result<Log, LogError> {
        Log::open_impl(dir, config, store, false)
    }

    fn open_impl(
        dir: &Path,
        config: LogConfig,
        store: Arc<dyn SegmentStore>,
        silent: bool,
    ) -> Result<Log, LogError> {
        let mut deferred: Option<LogError> = None;
        store.create_partition_dir(dir)?;
        store.recover_partition_dir(dir)?;
        let bases = store.list_segments(dir)?;
        let recovery_point = match read_offset_checkpoint(&*store, dir, RECOVERY_POINT_FILE) {
            Ok(rp) => rp,
            Err(e) => {
                tracing::warn!(error = %e, "ignoring unreadable recovery point; scanning the whole log");
                None
            }
        };
        let start_checkpoint = read_offset_checkpoint(&*store, dir, LOG_START_FILE)?;
        // `checkpointed_epochs` is what the file says (None: unreadable), so
        // it is rewritten (two fsyncs) only when recovery changed the epochs.
        let epochs_read = store
            .read_sidecar(dir, LEADER_EPOCH_FILE)
            .and_then(|text| match text {
                Some(text) => checkpoint::parse_epochs(&dir.join(LEADER_EPOCH_FILE), &text),
                None => Ok(Vec::new()),
            });
        let (mut epochs, checkpointed_epochs) = match epochs_read {
            Ok(e) => (e.clone(), Some(e)),
            Err(e) => {
                tracing::warn!(error = %e, "ignoring unreadable leader epoch checkpoint");
                (Vec::new(), None)
            }
        };

        let mut segments: Vec<Segment> = Vec::new();
        if bases.is_empty() {
            segments.push(Segment::create(
                dir,
                start_checkpoint.unwrap_or(0).max(0),
                &store,
            )?);
        }
        let first_base = bases.first().copied().unwrap_or(0);
        let rp = recovery_point.unwrap_or(first_base);
        let interval = config.index_interval_bytes;
        let mut scanned_any = false;
        // A sealed segment's indexes were rebuilt and rewritten.
        let mut rebuilt_any = false;
        // Lowest offset from which `.txnindex` entries must be re-derived by
        // replaying the log (a missing, damaged or torn transaction index).
        let mut txn_rebuild_from: Option<i64> = None;
        for k in 0..bases.len() {
            let mut seg = Segment::open_files(dir, bases[k], &store)?;
            let next_base = bases.get(k + 1).copied();
            if let Some(nb) = next_base.filter(|&nb| nb <= rp) {
                // Sealed and wholly below the recovery point: trust it if its indexes check out.
                if !(seg.load_sealed_indexes(nb)? && index_covers_segment(&seg, interval)) {
                    rebuilt_any = true;
                    tracing::info!(file = %seg.log_path.display(), "rebuilding index of sealed segment");
                    if let ScanEnd::Bad { position, error } =
                        seg.rebuild(interval, i64::MAX, |_| {})?
                    {
                        return Err(LogError::Corrupt {
                            file: seg.log_path.clone(),
                            position,
                            reason: format!("{error} (below the recovery point {rp})"),
                        });
                    }
                    defer_write_failure(seg.seal(), &mut deferred)?;
                    defer_write_failure(seg.rewrite_index_files(), &mut deferred)?;
                }
                // A compacted segment may end before the next one starts
                // (its last records were superseded): a gap, not a loss.
                // Overlapping the next segment is corrupt.
                if seg.size > 0 && seg.next_offset > nb {
                    return Err(LogError::Corrupt {
                        file: seg.log_path.clone(),
                        position: seg.size,
                        reason: format!(
                            "segment ends at offset {} but the next starts at {nb}",
                            seg.next_offset
                        ),
                    });
                }
                seg.next_offset = nb;
                if let Some(from) = seg.load_txn_index(nb, false)? {
                    txn_rebuild_from = Some(txn_rebuild_from.map_or(from, |f: i64| f.min(from)));
                }
                segments.push(seg);
                continue;
            }
            // The active segment after a clean shutdown: everything in it
            // is below the recovery point, so only its tail headers are read.
            if next_base.is_none() && seg.load_active_indexes(rp, interval)? {
                if let Some(from) = seg.load_txn_index(seg.next_offset, true)? {
                    txn_rebuild_from = Some(txn_rebuild_from.map_or(from, |f: i64| f.min(from)));
                }
                segments.push(seg);
                continue;
            }
            scanned_any = true;
            let verdict = seg.rebuild(interval, rp, |h| {
                let epoch = h.partition_leader_epoch;
                if epoch >= 0 && epochs.last().is_none_or(|&(e, _)| epoch > e) {
                    epochs.push((epoch, h.base_offset));
                }
            })?;
            let mut torn = false;
            if let ScanEnd::Bad { position, error } = verdict {
                let corrupt = |reason: String| LogError::Corrupt {
                    file: seg.log_path.clone(),
                    position,
                    reason,
                };
                if seg.next_offset < rp {
                    return Err(corrupt(format!(
                        "{error}; data below the recovery point {rp} should be intact"
                    )));
                }
                let file = seg.log_file_uncached()?;
                if let Some(p) = segment::find_valid_batch(&file, seg.size, position + 1)
                    .map_err(io_err("read", &seg.log_path))?
                {
                    return Err(corrupt(format!(
                        "{error}; a valid batch follows at byte {p}"
                    )));
                }
                for &later in &bases[k + 1..] {
                    let path = store.segment_paths(dir, later).log;
                    let f = store.open_uncached(dir, later, SegmentFile::Log)?;
                    let len = f.metadata().map_err(io_err("stat", &path))?.len();
                    if segment::find_valid_batch(&f, len, 0)
                        .map_err(io_err("read", &path))?
                        .is_some()
                    {
                        return Err(corrupt(format!(
                            "{error}; later segment {} holds valid batches",
                            path.display()
                        )));
                    }
                }
                tracing::warn!(
                    file = %seg.log_path.display(), position, cut_bytes = seg.size - position, %error,
                    "truncating torn tail"
                );
                seg.truncate_file(position)?;
                torn = true;
            }
            // As below the recovery point: a compacted segment may end
            // before the next starts (the recovery point checkpoint lags,
            // so compacted segments are scanned here after a crash).
            if let Some(nb) = next_base.filter(|&nb| !torn && seg.size > 0 && seg.next_offset < nb)
            {
                seg.next_offset = nb;
            }
            if let Some(nb) = next_base.filter(|&nb| !torn && seg.size > 0 && seg.next_offset > nb)
            {
                return Err(LogError::Corrupt {
                    file: seg.log_path.clone(),
                    position: seg.size,
                    reason: format!(
                        "segment ends at offset {} but the next starts at {nb}",
                        seg.next_offset
                    ),
                });
            }
            if next_base.is_some() && !torn {
                defer_write_failure(seg.seal(), &mut deferred)?;
            }
            defer_write_failure(seg.rewrite_index_files(), &mut deferred)?;
            let end = seg.next_offset;
            if let Some(from) = seg.load_txn_index(end, true)? {
                txn_rebuild_from = Some(txn_rebuild_from.map_or(from, |f: i64| f.min(from)));
            }
            segments.push(seg);
            if torn {
                for &later in &bases[k + 1..] {
                    store.delete_segment(dir, later, DeleteReason::Recovery)?;
                }
                break;
            }
        }
        let first_base = segments[0].base_offset;
        let log_end_offset = segments
            .last()
            .expect("invariant: at least one segment was pushed")
            .next_offset;
        let log_start_offset = start_checkpoint
            .unwrap_or(first_base)
            .max(first_base)
            .min(log_end_offset);
        epochs.retain(|&(_, start)| start < log_end_offset);
        let size_bytes = segments.iter().map(|s| s.size).sum();
        let log = Log {
            dir: dir.to_path_buf(),
            store,
            inner: Mutex::new(Inner {
                config,
                segments,
                log_start_offset,
                log_end_offset,
                size_bytes,
                epochs,
                checkpointed_recovery_point: rp,
                // Recovery that created, cut, rebuilt or deleted files must
                // make the directory durable; a clean open changed nothing.
                dir_dirty: bases.is_empty()
                    || scanned_any
                    || rebuilt_any
                    || txn_rebuild_from.is_some(),
                last_flush_ms: 0,
                producers: ProducerStateManager::default(),
                snapshot_end_offset: -1,
                last_snapshot_ms: 0,
                last_recovery_checkpoint_ms: 0,
                first_dirty_offset: None,
                last_clean_ms: None,
            }),
            flush_lock: Mutex::new(()),
            durable_offset: AtomicI64::new(rp.min(log_end_offset)),
            failed: AtomicBool::new(false),
            quiet: AtomicBool::new(true),
            faults: Faults::default(),
        };
        {
            let inner = log.lock();
            // Only when recovery changed it: a clean open writes nothing
            // (so it works on a full disk).
            if checkpointed_epochs.as_ref() != Some(&inner.epochs) {
                defer_write_failure(log.write_epochs(&inner.epochs), &mut deferred)?;
            }
        }
        log.load_producer_state(txn_rebuild_from)?;
        // Make what recovery kept durable, so the recovery point can move to the end.
        match log.flush() {
            Ok(()) => {}
            Err(e @ (LogError::Io { .. } | LogError::Failed { .. })) => {
                deferred.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
        if let Some(e) = deferred {
            log.failed.store(true, Ordering::SeqCst);
            if silent {
                tracing::debug!(dir = %dir.display(), error = %e, "log still read-only");
            } else {
                tracing::warn!(dir = %dir.display(), error = %e, "log opened read-only: recovery could not write; reads work, writes are refused until it can");
            }
        }
        log.quiet.store(false, Ordering::SeqCst);
        {
            // Only once recovery succeeded: a refused open announces nothing.
            let inner = log.lock();
            let sealed = &inner.segments[..inner.segments.len() - 1];
            for seg in sealed {
                log.store
                    .segment_sealed(&sealed_segment(dir, seg), SealOrigin::Opened);
            }
        }
        Ok(log)
    }

    /// True once a write, fsync or delete failed (or the log opened
    /// read-only): writes are refused until [`Log::reopen`] succeeds.
    pub fn is_offline(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    /// Brings a failed log back online without a restart.
    ///
    /// Every file is first cut back to the durable offset: bytes written
    /// after the last successful fsync — or whose fsync failed — are never
    /// trusted, since the kernel may have dropped them while the page cache
    /// still shows them. Then recovery runs on the directory as at start-up
    /// and its state replaces this log's. Returns `Ok(true)` when the log is
    /// online again, `Ok(false)` when recovery could open it only read-only
    /// (the disk is still full; its state is used, the log stays offline),
    /// and the error when recovery refused (this log then keeps its state
    /// and stays offline). A log that is online is left alone.
    pub fn reopen(&self) -> Result<bool, LogError> {
        if !self.is_offline() {
            return Ok(true);
        }
        let _flush = self.flush_lock.lock().unwrap_or_else(|p| p.into_inner());
        // A concurrent reopen may have finished while we waited; the log may
        // have taken appends since, which a second swap would lose.
        if !self.is_offline() {
            return Ok(true);
        }
        let durable = self.durable_offset.load(Ordering::SeqCst);
        let (config, log_start) = {
            let inner = self.lock();
            (inner.config.clone(), inner.log_start_offset)
        };
        self.cut_to(durable)?;
        let fresh = Log::open_impl(&self.dir, config, Arc::clone(&self.store), true)?;
        let mut online = !fresh.failed.load(Ordering::SeqCst);
        let fresh_durable = fresh.durable_offset.load(Ordering::SeqCst);
        {
            // The recovered state moves into this log; the old one moves
            // into `fresh`, whose drop closes the old segments' handles.
            let mut recovered = self.lock();
            std::mem::swap(&mut *recovered, &mut *fresh.lock());
            // DeleteRecords on the offline log moved the start without a
            // checkpoint (the disk was full): keep it, and persist it now.
            if log_start > recovered.log_start_offset && log_start <= recovered.log_end_offset {
                recovered.log_start_offset = log_start;
                if online && self.write_offset(LOG_START_FILE, log_start).is_err() {
                    online = false;
                }
            }
        }
        drop(fresh);
        self.durable_offset.store(fresh_durable, Ordering::SeqCst);
        self.failed.store(!online, Ordering::SeqCst);
        Ok(online)
    }

    /// Cuts the files back to `offset` (a batch boundary): the segment
    /// holding it is truncated there and every segment file on disk with a
    /// higher base is deleted, whether or not memory lists it (a failed roll
    /// can leave one behind). Then fsyncs what changed.
    fn cut_to(&self, offset: i64) -> Result<(), LogError> {
        let (file, path, base, mut pos, size) = {
            let inner = self.lock();
            let seg = &inner.segments[inner.segment_index_for(offset)];
            (
                seg.log_file()?,
                seg.log_path.clone(),
                seg.base_offset,
                seg.indexes.position_for_offset(seg.base_offset, offset),
                seg.size,
            )
        };
        let on_disk = file.metadata().map_err(io_err("stat", &path))?.len();
        let size = size.min(on_disk);
        if offset <= base {
            pos = 0;
        }
        while pos < size {
            let raw = read_header(&file, pos).map_err(io_err("read", &path))?;
            let Ok(header) = BatchHeader::parse(&raw) else {
                break;
            };
            if header.base_offset >= offset || header.total_size() < 61 {
                break;
            }
            pos += header.total_size() as u64;
        }
        let pos = pos.min(size);
        if pos < on_disk {
            tracing::info!(file = %path.display(), kept_bytes = pos, cut_bytes = on_disk - pos, "dropping data past the last successful fsync");
            file.set_len(pos).map_err(io_err("truncate", &path))?;
            file.sync_data().map_err(io_err("fsync", &path))?;
        }
        let mut removed = false;
        for later in self.store.list_segments(&self.dir)? {
            if later > base {
                self.store
                    .delete_segment(&self.dir, later, DeleteReason::Recovery)?;
                removed = true;
            }
        }
        if removed {
            self.store.sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Atomically writes a single-offset checkpoint through the store.
    fn write_offset(&self, name: &str, offset: i64) -> Result<(), LogError> {
        self.store
            .write_sidecar(&self.dir, name, &checkpoint::offset_text(offset))
    }

    /// Atomically writes the leader epoch checkpoint through the store.
    fn write_epochs(&self, epochs: &[(i32, i64)]) -> Result<(), LogError> {
        self.store.write_sidecar(
            &self.dir,
            LEADER_EPOCH_FILE,
            &checkpoint::epochs_text(epochs),
        )
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves offsets possibly inconsistent
        // with the files; keep serving (reads) rather than cascade panics.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check_failed(&self) -> Result<(), LogError> {
        if self.failed.load(Ordering::SeqCst) {
            return Err(LogError::Failed {
                dir: self.dir.clone(),
            });
        }
        Ok(())
    }

    /// Marks the log failed if `r` is an error. Never retry a failed fsync.
    /// Logs one line per failure, not one per refused write after it.
    fn poison<T>(&self, r: Result<T, LogError>) -> Result<T, LogError> {
        if let Err(e) = &r
            && !self.failed.swap(true, Ordering::SeqCst)
            && !self.quiet.load(Ordering::SeqCst)
        {
            tracing::error!(dir = %self.dir.display(), error = %e, "log write failed; the partition is offline for writes until its log can be reopened");
        }
        r
    }

    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Validates and appends a producer's batches; see the crate docs for the rules.
    pub fn append(
        &self,
        records: BytesMut,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        self.append_as(records, leader_epoch, now_ms, AppendOrigin::Client)
    }

    /// [`Log::append`] for a given origin: only the transaction coordinator
    /// may append control batches (transaction markers).
    ///
    /// Idempotent and transactional batches are checked against the
    /// producer state in the same critical section as the write, so a
    /// retried batch can never be appended twice.
    pub fn append_as(
        &self,
        mut records: BytesMut,
        leader_epoch: i32,
        now_ms: i64,
        origin: AppendOrigin,
    ) -> Result<AppendInfo, LogError> {
        self.check_failed()?;
        let (max_bytes, timestamp_type) = {
            let inner = self.lock();
            (
                inner.config.max_message_bytes as usize,
                inner.config.timestamp_type,
            )
        };
        // Validate every batch before touching the log.
        let mut batches: Vec<(usize, BatchHeader)> = Vec::new();
        for (index, item) in Batches::without_crc(&records).enumerate() {
            match item {
                NextBatch::Complete {
                    position, bytes, ..
                } => {
                    let header = check_producer_batch(bytes, max_bytes)
                        .map_err(|source| LogError::InvalidBatch { index, source })?;
                    batches.push((position, header));
                }
                NextBatch::TruncatedTail {
                    position,
                    available,
                } => {
                    let source = check_producer_batch(&records[position..], max_bytes)
                        .err()
                        .unwrap_or(RecordsError::Truncated {
                            needed: available + 1,
                            available,
                        });
                    return Err(LogError::InvalidBatch { index, source });
                }
                NextBatch::Corrupt { error, .. } => {
                    return Err(LogError::InvalidBatch {
                        index,
                        source: error,
                    });
                }
            }
        }
        if batches.is_empty() {
            return Err(LogError::EmptyAppend);
        }
        let record_count: i64 = batches.iter().map(|(_, h)| i64::from(h.record_count)).sum();
        let len = records.len() as u64;

        let mut inner = self.lock();
        self.check_failed()?;
        let base_offset = inner.log_end_offset;
        let span = record_count;
        let log_append_time = match timestamp_type {
            TimestampType::LogAppendTime => now_ms,
            TimestampType::CreateTime => -1,
        };
        let incoming_ts = match timestamp_type {
            TimestampType::LogAppendTime => now_ms,
            TimestampType::CreateTime => max_batch_timestamp(&batches),
        };
        self.roll_if_needed(
            &mut inner,
            len,
            batches.len(),
            base_offset + span,
            incoming_ts,
        )?;
        let mut next = base_offset;
        let mut staged = Staged::default();
        let only_batch = batches.len() == 1;
        for (position, header) in &mut batches {
            let batch = &mut records[*position..*position + header.total_size()];
            set_base_offset(batch, next);
            set_partition_leader_epoch(batch, leader_epoch);
            header.base_offset = next;
            header.partition_leader_epoch = leader_epoch;
            if timestamp_type == TimestampType::LogAppendTime {
                set_log_append_time(batch, now_ms);
                header.max_timestamp = now_ms;
            }
            inner
                .producers
                .check_and_stage(&mut staged, header, batch, origin, only_batch)?;
            next = header.next_offset();
        }
        self.write_locked(&mut inner, &records, &batches, next)?;
        // LSO before the append: a lower bound of the LSO right after any
        // marker in it (see `TxnIndexEntry::last_stable_offset`).
        let lso_before = inner
            .producers
            .first_unstable_offset()
            .map_or(base_offset, |f| f.min(base_offset));
        let aborted = inner.producers.apply(staged, next);
        if !aborted.is_empty() {
            let lso = if only_batch {
                inner.producers.first_unstable_offset().unwrap_or(next)
            } else {
                lso_before
            };
            for a in &aborted {
                let r = inner.index_aborted(a, lso);
                self.poison(r)?;
            }
        }
        self.note_epoch(&mut inner, leader_epoch, base_offset)?;
        let log_start_offset = inner.log_start_offset;
        let flush_now = self.flush_due(&inner, next);
        drop(inner);
        if flush_now {
            self.flush()?;
        }
        Ok(AppendInfo {
            base_offset,
            last_offset: next - 1,
            log_append_time,
            log_start_offset,
            record_count: record_count as u32,
            leader_epoch,
        })
    }

    /// `flush.messages`: true when the log, now ending at `next`, holds
    /// that many records past its durable end (never under group commit,
    /// whose commits fsync).
    fn flush_due(&self, inner: &Inner, next: i64) -> bool {
        match inner.config.flush {
            FlushPolicy::Kafka { flush_messages, .. } => {
                (next - self.durable_offset.load(Ordering::SeqCst)) as u64 >= flush_messages
            }
            FlushPolicy::GroupCommit => false,
        }
    }

    /// Rolls the active segment first if an append of `len` bytes in
    /// `batch_count` batches, ending at offset `end_offset`, would overflow
    /// it or its indexes, or if the appended batches' newest timestamp
    /// (`incoming_ts`) is `segment.ms` or more past the segment's first.
    ///
    /// As Kafka's `LogSegment.shouldRoll`, the age is measured between
    /// record timestamps, not against the clock: a producer replaying
    /// old data (timestamps years back) would otherwise roll a new
    /// segment, four files, on every append. The clock-based roll of an
    /// idle segment is `apply_retention`'s, at most once per check.
    fn roll_if_needed(
        &self,
        inner: &mut Inner,
        len: u64,
        batch_count: usize,
        end_offset: i64,
        incoming_ts: i64,
    ) -> Result<(), LogError> {
        let cfg = &inner.config;
        // Envelopes are larger than the batches appended.
        let len = if cfg.encryption.is_some() {
            len + (batch_count * encryption::ENVELOPE_OVERHEAD_BYTES) as u64
        } else {
            len
        };
        let segment_bytes = cfg.segment_bytes.min(i32::MAX as u64);
        let index_bytes = u64::from(cfg.segment_index_bytes);
        let (segment_ms, n) = (cfg.segment_ms, batch_count as u64);
        let active = inner
            .segments
            .last()
            .expect("invariant: active segment exists");
        let roll = active.size > 0
            && (active.size + len > segment_bytes
                || active
                    .indexes
                    .first_batch_timestamp
                    .is_some_and(|t| t >= 0 && incoming_ts.saturating_sub(t) >= segment_ms)
                || (active.indexes.offsets.len() as u64 + n) * segment::OFFSET_ENTRY_BYTES as u64
                    > index_bytes
                || (active.indexes.times.len() as u64 + n) * segment::TIME_ENTRY_BYTES as u64
                    > index_bytes
                || end_offset - active.base_offset > i64::from(i32::MAX));
        if roll {
            let r = inner.roll(&self.dir, &self.store);
            self.poison(r)?;
        }
        Ok(())
    }

    /// Writes `records` (whose batches, at their positions, are `batches`,
    /// offsets already final) at the end of the active segment, indexes
    /// them, and moves the log end to `next`. On a failed write the
    /// partial bytes are cut off and the log is poisoned.
    fn write_locked(
        &self,
        inner: &mut Inner,
        records: &[u8],
        batches: &[(usize, BatchHeader)],
        next: i64,
    ) -> Result<(), LogError> {
        let sealed;
        let (records, batches) = match inner.config.encryption.clone() {
            Some(keyring) => {
                sealed = seal_batches(&keyring, records, batches)?;
                (&sealed.0[..], &sealed.1[..])
            }
            None => {
                // A client cannot make a plain batch pass for an envelope.
                if let Some((_, h)) = batches.iter().find(|(_, h)| encryption::is_envelope(h)) {
                    return Err(EncryptionError::ReservedAttribute {
                        base_offset: h.base_offset,
                    }
                    .into());
                }
                (records, batches)
            }
        };
        let len = records.len() as u64;
        let interval = inner.config.index_interval_bytes;
        let active = inner.active();
        let start = active.size;
        let file = active.log_file();
        let file = self.poison(file)?;
        let write = self
            .faults
            .check(false)
            .and_then(|()| file.write_all_at(records, start))
            .map_err(io_err("write", &active.log_path));
        if write.is_err() {
            // Best effort: drop any partial write so the file holds whole batches only.
            let _ = file.set_len(start);
            self.poison(write)?;
        }
        let seg_base = active.base_offset;
        for (position, header) in batches {
            active
                .indexes
                .add(seg_base, start + *position as u64, header, interval);
        }
        active.size += len;
        active.next_offset = next;
        let r = active.write_new_index_entries();
        self.poison(r)?;
        inner.log_end_offset = next;
        inner.size_bytes += len;
        Ok(())
    }

    /// Records that `leader_epoch` starts at `start_offset` in the leader
    /// epoch cache, if it is newer than the latest epoch there.
    fn note_epoch(
        &self,
        inner: &mut Inner,
        leader_epoch: i32,
        start_offset: i64,
    ) -> Result<(), LogError> {
        if leader_epoch >= 0 && inner.epochs.last().is_none_or(|&(e, _)| leader_epoch > e) {
            inner.epochs.push((leader_epoch, start_offset));
            let r = self.write_epochs(&inner.epochs);
            self.poison(r)?;
        }
        Ok(())
    }

    /// Makes `leader_epoch` the latest epoch of the cache, starting at the
    /// log end, as a new leader does before its first append (Kafka's
    /// `assign` on becoming leader). A follower whose last fetched epoch
    /// is older then learns where that epoch ended from the next epoch's
    /// start, even before the new leader appends anything.
    pub fn assign_epoch(&self, leader_epoch: i32) -> Result<(), LogError> {
        self.check_failed()?;
        let mut inner = self.lock();
        let end = inner.log_end_offset;
        self.note_epoch(&mut inner, leader_epoch, end)
    }

    /// Appends batches copied from the leader (a follower's fetch), keeping
    /// their offsets, leader epochs and timestamps. Every batch's CRC is
    /// checked; the first must start at the log end and each later one at
    /// or after the previous one's end (compaction leaves gaps). A
    /// truncated last batch (a fetch cut at its byte limit) is left for the
    /// next fetch. Producer state and the leader epoch cache follow the
    /// batches without the leader's checks: the leader already made them.
    /// Returns `None` when nothing whole was given.
    pub fn append_replicated(&self, records: &[u8]) -> Result<Option<AppendInfo>, LogError> {
        self.check_failed()?;
        let mut batches: Vec<(usize, BatchHeader)> = Vec::new();
        let mut end = 0;
        for (index, item) in Batches::new(records).enumerate() {
            match item {
                NextBatch::Complete {
                    position, header, ..
                } => {
                    end = position + header.total_size();
                    batches.push((position, header));
                }
                NextBatch::TruncatedTail { .. } => break,
                NextBatch::Corrupt { error, .. } => {
                    return Err(LogError::InvalidBatch {
                        index,
                        source: error,
                    });
                }
            }
        }
        let (Some(&(_, first)), Some(&(_, last))) = (batches.first(), batches.last()) else {
            return Ok(None);
        };
        let records = &records[..end];
        let mut inner = self.lock();
        self.check_failed()?;
        let mut expected = inner.log_end_offset;
        for (_, header) in &batches {
            if header.base_offset < expected || header.last_offset() < header.base_offset {
                return Err(LogError::UnexpectedOffset {
                    expected,
                    found: header.base_offset,
                });
            }
            expected = header.next_offset();
        }
        let next = last.next_offset();
        let incoming_ts = max_batch_timestamp(&batches);
        self.roll_if_needed(&mut inner, end as u64, batches.len(), next, incoming_ts)?;
        self.write_locked(&mut inner, records, &batches, next)?;
        for (position, header) in &batches {
            let control = header.is_control().then(|| {
                Bytes::copy_from_slice(&records[*position..*position + header.total_size()])
            });
            if let Some(aborted) = inner.producers.replay(header, control.as_ref()) {
                // One batch at a time, so this LSO is exact.
                let lso = inner
                    .producers
                    .first_unstable_offset()
                    .unwrap_or(header.next_offset());
                let r = inner.index_aborted(&aborted, lso);
                self.poison(r)?;
            }
            self.note_epoch(
                &mut inner,
                header.partition_leader_epoch,
                header.base_offset,
            )?;
        }
        let record_count = batches
            .iter()
            .map(|(_, h)| i64::from(h.last_offset_delta) + 1)
            .sum::<i64>();
        let log_start_offset = inner.log_start_offset;
        let flush_now = self.flush_due(&inner, next);
        drop(inner);
        if flush_now {
            self.flush()?;
        }
        Ok(Some(AppendInfo {
            base_offset: first.base_offset,
            last_offset: next - 1,
            log_append_time: -1,
            log_start_offset,
            record_count: record_count.clamp(0, i64::from(u32::MAX)) as u32,
            leader_epoch: last.partition_leader_epoch,
        }))
    }

    /// Fsyncs everything written so far (flush lock held by the caller).
    fn sync_now(&self) -> Result<(), LogError> {
        let durable = self.durable_offset.load(Ordering::SeqCst);
        let (end, files, dir_dirty, indexes) = {
            let mut inner = self.lock();
            // Handles are taken under the lock, so a segment deleted right
            // after still gets fsynced through its handle. A handle the cache
            // evicted since the write is reopened here: an fsync on any
            // descriptor of the inode flushes its dirty pages (design.md).
            let files: Result<Vec<(Arc<File>, PathBuf)>, LogError> = inner
                .segments
                .iter()
                .filter(|s| s.next_offset > durable)
                .map(|s| Ok((s.log_file()?, s.log_path.clone())))
                .collect();
            let dirty = std::mem::take(&mut inner.dir_dirty);
            let mut indexes = Vec::new();
            for s in inner.segments.iter_mut().filter(|s| s.index_dirty) {
                match s.index_files_for_sync() {
                    Ok(pair) => {
                        s.index_dirty = false;
                        indexes.extend(pair);
                    }
                    Err(e) => {
                        drop(inner);
                        return self.poison(Err(e));
                    }
                }
            }
            (inner.log_end_offset, files, dirty, indexes)
        };
        let files = self.poison(files)?;
        if dir_dirty {
            let r = self.store.sync_dir(&self.dir);
            if r.is_err() {
                self.lock().dir_dirty = true;
            }
            self.poison(r)?;
        }
        for (file, path) in files {
            let r = sync_file(&self.faults, &file, &path);
            self.poison(r)?;
        }
        // Sealed indexes are trusted once the recovery point passes their
        // segment, so they become durable before `durable_offset` moves.
        for (file, path) in indexes {
            let r = sync_file(&self.faults, &file, &path);
            self.poison(r)?;
        }
        // Entries of markers below `end` were written before `end` was read.
        self.sync_txn_indexes()?;
        self.durable_offset.fetch_max(end, Ordering::SeqCst);
        Ok(())
    }

    /// Fsyncs every `.txnindex` written since its last fsync.
    fn sync_txn_indexes(&self) -> Result<(), LogError> {
        let files: Result<Vec<(Arc<File>, PathBuf)>, LogError> = {
            let mut inner = self.lock();
            inner
                .segments
                .iter_mut()
                .filter_map(|s| {
                    std::mem::take(&mut s.txn_dirty)
                        .then(|| Ok((s.txn_index_file()?, s.txn_index_path.clone())))
                })
                .collect()
        };
        // A failure here poisons the log, so the lost dirty flag never matters.
        let files = self.poison(files)?;
        for (file, path) in files {
            let r = sync_file(&self.faults, &file, &path);
            self.poison(r)?;
        }
        Ok(())
    }

    /// Blocks until every offset below `offset` is fsynced; concurrent callers share one fsync.
    pub fn sync_until(&self, offset: i64) -> Result<(), LogError> {
        self.check_failed()?;
        if self.durable_offset.load(Ordering::SeqCst) >= offset {
            return Ok(());
        }
        let _flush = self.flush_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.check_failed()?;
        // Someone else's fsync may have covered us while we waited.
        if self.durable_offset.load(Ordering::SeqCst) >= offset {
            return Ok(());
        }
        self.sync_now()
    }

    /// Fsyncs everything now and checkpoints the recovery point.
    pub fn flush(&self) -> Result<(), LogError> {
        self.check_failed()?;
        let _flush = self.flush_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.check_failed()?;
        self.sync_now()?;
        self.checkpoint_recovery_point()?;
        self.snapshot_producer_state()
    }

    /// Writes the producer state snapshot if it changed since the last one.
    /// The state is copied under the lock and written outside it.
    fn snapshot_producer_state(&self) -> Result<(), LogError> {
        let (text, end) = {
            let inner = self.lock();
            let end = inner.producers.end_offset();
            if end == inner.snapshot_end_offset {
                return Ok(());
            }
            (inner.producers.to_snapshot(), end)
        };
        // The snapshot says "replay from `end`", so every `.txnindex` entry of
        // a marker below `end` must be durable before the snapshot is.
        self.sync_txn_indexes()?;
        let r = self
            .store
            .write_sidecar(&self.dir, PRODUCER_STATE_FILE, &text);
        self.poison(r)?;
        let mut inner = self.lock();
        inner.snapshot_end_offset = inner.snapshot_end_offset.max(end);
        Ok(())
    }

    /// Loads the snapshot (if usable) and replays the log from the offset
    /// it covers to the end, so producer state survives a crash. The replay
    /// also re-derives `.txnindex` entries from `txn_rebuild_from` on; if that
    /// lies below the snapshot, the snapshot is not used (the state at that
    /// earlier offset is unknown) and the whole log is replayed.
    fn load_producer_state(&self, txn_rebuild_from: Option<i64>) -> Result<(), LogError> {
        let (log_start, log_end) = {
            let inner = self.lock();
            (inner.log_start_offset, inner.log_end_offset)
        };
        // Unreadable counts as missing: the log is replayed instead.
        let state = self
            .store
            .read_sidecar(&self.dir, PRODUCER_STATE_FILE)
            .ok()
            .flatten()
            .and_then(|text| ProducerStateManager::parse_snapshot(&self.dir, &text))
            // A snapshot past the end describes data a torn tail lost.
            .filter(|s| s.end_offset() <= log_end && s.end_offset() >= log_start)
            .filter(|s| txn_rebuild_from.is_none_or(|from| s.end_offset() <= from));
        let (mut state, from, snapshot_end) = match state {
            Some(s) => {
                let from = s.end_offset();
                (s, from, from)
            }
            // An empty log has no state to save: skip the snapshot until
            // the first append, so opening a new partition writes nothing.
            None if log_start == log_end => (ProducerStateManager::default(), log_start, log_end),
            None => (ProducerStateManager::default(), log_start, -1),
        };
        state.advance_end_offset(from);
        self.replay_producer_state(&mut state, from)?;
        self.sync_txn_indexes()?;
        let mut inner = self.lock();
        inner.producers = state;
        inner.snapshot_end_offset = snapshot_end;
        Ok(())
    }

    /// Applies every batch from `from` to the log end to `state`, and adds the
    /// `.txnindex` entry of every ABORT marker met that its segment lacks.
    fn replay_producer_state(
        &self,
        state: &mut ProducerStateManager,
        from: i64,
    ) -> Result<(), LogError> {
        /// Bytes planned per read while replaying; bounds the plan, not memory
        /// (only headers and markers are read).
        const REPLAY_CHUNK_BYTES: u32 = 64 << 20;
        let mut offset = from;
        loop {
            let read = self.read(offset, REPLAY_CHUNK_BYTES, i64::MAX)?;
            let mut progressed = false;
            for slice in &read.slices {
                let mut pos = slice.position;
                let end = slice.position + u64::from(slice.len);
                while pos < end {
                    let raw = read_header(&slice.file, pos).map_err(io_err("read", &self.dir))?;
                    let header = BatchHeader::parse(&raw).map_err(|e| LogError::Corrupt {
                        file: self.dir.clone(),
                        position: pos,
                        reason: e.to_string(),
                    })?;
                    let size = header.total_size() as u64;
                    if size < 61 || pos + size > end {
                        return Err(LogError::Corrupt {
                            file: self.dir.clone(),
                            position: pos,
                            reason: format!("bad batchLength {}", header.batch_length),
                        });
                    }
                    if header.last_offset() >= offset {
                        let bytes = if header.is_control() {
                            let mut buf = vec![0u8; size as usize];
                            slice
                                .file
                                .read_exact_at(&mut buf, pos)
                                .map_err(io_err("read", &self.dir))?;
                            Some(Bytes::from(buf))
                        } else {
                            None
                        };
                        if let Some(aborted) = state.replay(&header, bytes.as_ref()) {
                            // Replay goes one batch at a time, so this LSO is exact.
                            let lso = state
                                .first_unstable_offset()
                                .unwrap_or(header.next_offset());
                            let r = self.lock().index_aborted(&aborted, lso);
                            self.poison(r)?;
                        }
                        offset = header.next_offset();
                        progressed = true;
                    }
                    pos += size;
                }
            }
            if !progressed || offset >= read.log_end_offset {
                return Ok(());
            }
        }
    }

    fn checkpoint_recovery_point(&self) -> Result<(), LogError> {
        let rp = self.durable_offset.load(Ordering::SeqCst);
        let mut inner = self.lock();
        if inner.checkpointed_recovery_point != rp {
            let r = self.write_offset(RECOVERY_POINT_FILE, rp);
            self.poison(r)?;
            inner.checkpointed_recovery_point = rp;
        }
        Ok(())
    }

    /// `flush.ms`: flushes if due. Under group commit it only checkpoints the recovery point.
    pub fn maybe_flush_on_timer(&self, now_ms: i64) -> Result<(), LogError> {
        let due = {
            let mut inner = self.lock();
            match inner.config.flush {
                FlushPolicy::Kafka { flush_ms, .. } => {
                    let elapsed = now_ms.saturating_sub(inner.last_flush_ms);
                    let due = flush_ms != u64::MAX && elapsed >= 0 && elapsed as u64 >= flush_ms;
                    if due {
                        inner.last_flush_ms = now_ms;
                    }
                    due
                }
                FlushPolicy::GroupCommit => false,
            }
        };
        if due {
            return self.flush();
        }
        self.check_failed()?;
        let (checkpoint_due, snapshot_due) = {
            let mut inner = self.lock();
            let checkpoint_due = now_ms.saturating_sub(inner.last_recovery_checkpoint_ms)
                >= RECOVERY_POINT_CHECKPOINT_INTERVAL_MS;
            let snapshot_due =
                now_ms.saturating_sub(inner.last_snapshot_ms) >= PRODUCER_SNAPSHOT_INTERVAL_MS;
            if checkpoint_due {
                inner.last_recovery_checkpoint_ms = now_ms;
            }
            if snapshot_due {
                inner.last_snapshot_ms = now_ms;
            }
            (checkpoint_due, snapshot_due)
        };
        if !checkpoint_due && !snapshot_due {
            return Ok(());
        }
        let _flush = self.flush_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.checkpoint_recovery_point()?;
        if snapshot_due {
            self.snapshot_producer_state()?;
        }
        Ok(())
    }

    /// Reads whole batches from `offset`, up to `max_bytes` (at least one batch), below `max_offset`.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: u32,
        max_offset: i64,
    ) -> Result<ReadResult, LogError> {
        let (plan, log_start_offset, log_end_offset) = {
            let inner = self.lock();
            if offset < inner.log_start_offset || offset > inner.log_end_offset {
                return Err(LogError::OffsetOutOfRange {
                    offset,
                    log_start_offset: inner.log_start_offset,
                    log_end_offset: inner.log_end_offset,
                });
            }
            let mut plan = Vec::new();
            if offset < inner.log_end_offset && offset < max_offset {
                let k = inner.segment_index_for(offset);
                for (i, s) in inner.segments[k..].iter().enumerate() {
                    let start = if i == 0 {
                        s.indexes.position_for_offset(s.base_offset, offset)
                    } else {
                        0
                    };
                    // Taken under the lock: the handle stays valid even if
                    // retention deletes the segment during the read.
                    plan.push((s.log_file()?, s.log_path.clone(), start, s.size));
                }
            }
            (plan, inner.log_start_offset, inner.log_end_offset)
        };
        let encryption = self.lock().config.encryption.clone();
        let mut slices: Vec<FileSlice> = Vec::new();
        let mut total = 0u64;
        let mut next_offset = offset;
        let mut envelopes = false;
        'segments: for (file, path, start, size) in plan {
            let mut pos = start;
            while pos < size {
                let header = read_header(&file, pos)
                    .map_err(io_err("read", &path))
                    .and_then(|raw| {
                        BatchHeader::parse(&raw).map_err(|e| LogError::Corrupt {
                            file: path.clone(),
                            position: pos,
                            reason: e.to_string(),
                        })
                    })?;
                let len = header.total_size() as u64;
                if header.batch_length < 49 || pos + len > size {
                    return Err(LogError::Corrupt {
                        file: path.clone(),
                        position: pos,
                        reason: format!("bad batchLength {}", header.batch_length),
                    });
                }
                if header.last_offset() < offset {
                    pos += len;
                    continue;
                }
                if header.last_offset() >= max_offset
                    || (!slices.is_empty() && total + len > u64::from(max_bytes))
                {
                    break 'segments;
                }
                match slices.last_mut() {
                    Some(last)
                        if Arc::ptr_eq(&last.file, &file)
                            && last.position + u64::from(last.len) == pos =>
                    {
                        last.len += len as u32;
                    }
                    _ => slices.push(FileSlice {
                        file: file.clone(),
                        position: pos,
                        len: len as u32,
                    }),
                }
                total += len;
                pos += len;
                next_offset = header.next_offset();
                envelopes |= encryption::is_envelope(&header);
                if total >= u64::from(max_bytes) {
                    break 'segments;
                }
            }
        }
        Ok(ReadResult {
            slices,
            log_start_offset,
            log_end_offset,
            next_offset,
            envelopes,
            encryption,
        })
    }

    /// First offset whose record timestamp is >= `timestamp`, with that timestamp.
    ///
    /// Record-level: the batch is decoded (decompressing if needed) to find the
    /// exact record; if it cannot be decoded, the batch's base offset and
    /// maxTimestamp are returned instead.
    pub fn lookup_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>, LogError> {
        let (plan, log_start) = {
            let inner = self.lock();
            let Some(k) = inner
                .segments
                .iter()
                .position(|s| s.indexes.max_timestamp >= timestamp)
            else {
                return Ok(None);
            };
            let mut plan = Vec::new();
            for (i, s) in inner.segments[k..].iter().enumerate() {
                let start = if i == 0 {
                    let from = s.indexes.offset_for_timestamp(s.base_offset, timestamp);
                    s.indexes.position_for_offset(s.base_offset, from)
                } else {
                    0
                };
                plan.push((s.log_file()?, s.log_path.clone(), start, s.size));
            }
            (plan, inner.log_start_offset)
        };
        for (file, path, start, size) in plan {
            let mut pos = start;
            while pos < size {
                let raw = read_header(&file, pos).map_err(io_err("read", &path))?;
                let header = BatchHeader::parse(&raw).map_err(|e| LogError::Corrupt {
                    file: path.clone(),
                    position: pos,
                    reason: e.to_string(),
                })?;
                let len = header.total_size() as u64;
                if len < 61 {
                    return Err(LogError::Corrupt {
                        file: path.clone(),
                        position: pos,
                        reason: "bad batchLength".into(),
                    });
                }
                if header.max_timestamp >= timestamp && header.last_offset() >= log_start {
                    if header.timestamp_type() == TimestampType::LogAppendTime {
                        return Ok(Some((
                            header.base_offset.max(log_start),
                            header.max_timestamp,
                        )));
                    }
                    let mut buf = vec![0u8; len as usize];
                    file.read_exact_at(&mut buf, pos)
                        .map_err(io_err("read", &path))?;
                    let keyring = self.lock().config.encryption.clone();
                    let buf = encryption::decrypt_one(keyring.as_deref(), Bytes::from(buf))?;
                    match decode_records(&buf) {
                        Ok(records) => {
                            for r in records {
                                let o = header.base_offset + i64::from(r.offset_delta);
                                let t = header.base_timestamp + r.timestamp_delta;
                                if o >= log_start && t >= timestamp {
                                    return Ok(Some((o, t)));
                                }
                            }
                        }
                        Err(_) => {
                            return Ok(Some((
                                header.base_offset.max(log_start),
                                header.max_timestamp,
                            )));
                        }
                    }
                }
                pos += len;
            }
        }
        Ok(None)
    }

    /// Largest batch maxTimestamp and the last offset of that batch (batch-level, for ListOffsets -3).
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        let inner = self.lock();
        inner
            .segments
            .iter()
            .filter(|s| {
                s.indexes.max_timestamp >= 0
                    && s.indexes.max_timestamp_offset >= inner.log_start_offset
            })
            .map(|s| (s.indexes.max_timestamp, s.indexes.max_timestamp_offset))
            .fold(None, |best: Option<(i64, i64)>, cur| match best {
                Some(b) if b.0 >= cur.0 => Some(b),
                _ => Some(cur),
            })
    }

    /// First offset still in the log.
    pub fn log_start_offset(&self) -> i64 {
        self.lock().log_start_offset
    }

    /// Offset the next appended record will get.
    pub fn log_end_offset(&self) -> i64 {
        self.lock().log_end_offset
    }

    /// Bytes in all segment files.
    pub fn size_bytes(&self) -> u64 {
        self.lock().size_bytes
    }

    /// Offset below which everything is fsynced.
    pub fn recovery_point(&self) -> i64 {
        self.durable_offset.load(Ordering::SeqCst)
    }

    /// Number of segments (for tests and metrics).
    pub fn segment_count(&self) -> usize {
        self.lock().segments.len()
    }

    /// Drops the oldest segment and deletes its files. A failed delete
    /// fences the log: memory no longer lists the segment but (some of) its
    /// files are still there, and only a reopen (recovery) reconciles the two.
    fn delete_oldest(&self, inner: &mut Inner, reason: DeleteReason) -> Result<(), LogError> {
        let seg = inner.segments.remove(0);
        inner.size_bytes -= seg.size;
        let r = self
            .faults
            .check_delete()
            .map_err(io_err("delete", &seg.log_path))
            .and_then(|()| seg.delete_files(reason));
        self.poison(r)
    }

    /// Retention's question to the store before deleting the oldest segment.
    fn store_may_delete(&self, inner: &Inner, reason: DeleteReason) -> bool {
        let oldest = sealed_segment(&self.dir, &inner.segments[0]);
        self.store.may_delete(&oldest, reason)
    }

    fn persist_log_start(&self, inner: &Inner) -> Result<(), LogError> {
        let r = self.write_offset(LOG_START_FILE, inner.log_start_offset);
        self.poison(r)
    }

    /// DeleteRecords: moves the log start offset up (persisted) and deletes segments wholly below it.
    ///
    /// Works on an offline log too, below its durable offset: deleting is
    /// how an operator frees a full disk, and those segments are fsynced
    /// data that a reopen keeps. Segments go first and the checkpoint
    /// second, because on a full disk only the freed space lets the
    /// checkpoint be written; a crash in between leaves the log start at the
    /// first remaining segment, so no deleted offset comes back readable.
    pub fn advance_log_start_offset(&self, offset: i64) -> Result<(), LogError> {
        let offline = self.is_offline();
        let mut inner = self.lock();
        let limit = if offline {
            self.durable_offset
                .load(Ordering::SeqCst)
                .min(inner.log_end_offset)
        } else {
            inner.log_end_offset
        };
        if offset > limit {
            if offline && offset <= inner.log_end_offset {
                return Err(LogError::Failed {
                    dir: self.dir.clone(),
                });
            }
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: inner.log_start_offset,
                log_end_offset: inner.log_end_offset,
            });
        }
        if offset <= inner.log_start_offset {
            return Ok(());
        }
        inner.log_start_offset = offset;
        while inner.segments.len() > 1 && inner.segments[1].base_offset <= offset {
            self.delete_oldest(&mut inner, DeleteReason::LogStartOffset)?;
        }
        if offline {
            // Not `persist_log_start`: the log is failed already. If this
            // write fails too, the answer is an error (a crash could bring
            // the offsets back), but a reopen keeps the start and writes it.
            return self
                .write_offset(LOG_START_FILE, offset)
                .map_err(|_| LogError::Failed {
                    dir: self.dir.clone(),
                });
        }
        self.persist_log_start(&inner)
    }

    /// Rolls on `segment.ms` and, when `cleanup.policy` includes `delete`,
    /// deletes segments past `retention.ms` / `retention.bytes`.
    pub fn apply_retention(&self, now_ms: i64) -> Result<u64, LogError> {
        self.check_failed()?;
        let mut inner = self.lock();
        let cfg = inner.config.clone();
        let mut deleted = 0u64;
        let roll_due = {
            let a = inner.active();
            a.size > 0
                && (a.indexes.first_batch_timestamp.is_some_and(|t| now_ms.saturating_sub(t) >= cfg.segment_ms)
                    // Kafka rolls an expired active segment so that it can be deleted too.
                    || (cfg.retention_ms >= 0 && now_ms.saturating_sub(a.indexes.max_timestamp) > cfg.retention_ms))
        };
        if roll_due {
            let r = inner.roll(&self.dir, &self.store);
            self.poison(r)?;
        }
        if cfg.delete && cfg.retention_ms >= 0 {
            while inner.segments.len() > 1
                && now_ms.saturating_sub(inner.segments[0].indexes.max_timestamp) > cfg.retention_ms
                && self.store_may_delete(&inner, DeleteReason::RetentionMs)
            {
                self.delete_oldest(&mut inner, DeleteReason::RetentionMs)?;
                deleted += 1;
            }
        }
        if cfg.delete && cfg.retention_bytes >= 0 {
            while inner.segments.len() > 1
                && inner.size_bytes - inner.segments[0].size >= cfg.retention_bytes as u64
                && self.store_may_delete(&inner, DeleteReason::RetentionBytes)
            {
                self.delete_oldest(&mut inner, DeleteReason::RetentionBytes)?;
                deleted += 1;
            }
        }
        if deleted > 0 {
            let first = inner.segments[0].base_offset;
            if first > inner.log_start_offset {
                inner.log_start_offset = first;
                self.persist_log_start(&inner)?;
            }
        }
        inner.producers.prune(now_ms);
        Ok(deleted)
    }

    /// What the cleaner may compact now, Kafka's `cleanableOffsets`: from
    /// the first dirty offset (the cleaner checkpoint, at least the log
    /// start) up to the first uncleanable offset, the least of the active
    /// segment's base, `high_watermark`, the recovery point (only fsynced
    /// data is rewritten), the first unstable offset (an open transaction's
    /// outcome decides what stays), and the base of the first segment
    /// holding a record younger than `min.compaction.lag.ms`. Only whole
    /// sealed segments below it are cleanable.
    pub fn cleanable_range(
        &self,
        now_ms: i64,
        high_watermark: i64,
    ) -> Result<CleanableRange, LogError> {
        let mut inner = self.lock();
        let checkpoint = match inner.first_dirty_offset {
            Some(offset) => offset,
            None => {
                let offset = read_offset_checkpoint(&*self.store, &self.dir, CLEANER_OFFSET_FILE)?
                    .unwrap_or(0);
                inner.first_dirty_offset = Some(offset);
                offset
            }
        };
        let log_start = inner.log_start_offset;
        // A checkpoint past the log end was left by a truncation: the data
        // after it is new, so it is all dirty again.
        let checkpoint = if checkpoint > inner.log_end_offset {
            log_start
        } else {
            checkpoint
        };
        let first_dirty = checkpoint.max(log_start);
        let lag_ms = inner.config.min_compaction_lag_ms;
        let bound = self
            .durable_offset
            .load(Ordering::SeqCst)
            .min(high_watermark)
            .min(inner.producers.first_unstable_offset().unwrap_or(i64::MAX));
        let active = inner.segments.len() - 1;
        let mut segments = Vec::new();
        let (mut clean_bytes, mut dirty_bytes) = (0u64, 0u64);
        let mut first_dirty_timestamp = None;
        for k in 0..active {
            let seg = &inner.segments[k];
            let end = inner.segments[k + 1].base_offset;
            let young = lag_ms > 0 && now_ms.saturating_sub(seg.indexes.max_timestamp) < lag_ms;
            if end > bound || young {
                break;
            }
            if end <= first_dirty {
                clean_bytes += seg.size;
            } else {
                dirty_bytes += seg.size;
                first_dirty_timestamp.get_or_insert(
                    seg.indexes
                        .first_batch_timestamp
                        .unwrap_or(seg.indexes.max_timestamp),
                );
            }
            segments.push(SegmentSpan {
                base: seg.base_offset,
                end,
                size: seg.size,
            });
        }
        let first_uncleanable = segments.last().map_or(log_start, |s| s.end);
        Ok(CleanableRange {
            first_dirty_offset: first_dirty.min(first_uncleanable),
            first_uncleanable_offset: first_uncleanable,
            clean_bytes,
            dirty_bytes,
            segments,
            first_dirty_timestamp,
        })
    }

    /// Records that everything below `offset` is compacted (the cleaner
    /// checkpoint), durably.
    pub fn checkpoint_cleaned(&self, offset: i64, now_ms: i64) -> Result<(), LogError> {
        self.write_offset(CLEANER_OFFSET_FILE, offset)?;
        let mut inner = self.lock();
        inner.first_dirty_offset = Some(offset);
        inner.last_clean_ms = Some(now_ms);
        Ok(())
    }

    /// When a clean last finished on this log since the process started.
    pub fn last_clean_ms(&self) -> Option<i64> {
        self.lock().last_clean_ms
    }

    /// The dirty ratio of a compacted log ([`CleanableRange::dirty_ratio`]
    /// at `now_ms` below `high_watermark`); `None` for a log that is not
    /// compacted, or whose cleaner checkpoint cannot be read.
    pub fn dirty_ratio(&self, now_ms: i64, high_watermark: i64) -> Option<f64> {
        if !self.lock().config.compact {
            return None;
        }
        self.cleanable_range(now_ms, high_watermark)
            .ok()
            .map(|range| range.dirty_ratio())
    }

    /// Base offsets of the log's segments, ascending; the last is the
    /// active segment. The cleaner picks sealed runs from it.
    pub fn segment_bases(&self) -> Vec<i64> {
        self.lock().segments.iter().map(|s| s.base_offset).collect()
    }

    /// Compaction's install step in one call: [`Log::stage_segment`],
    /// [`Log::write_staged`] with `batches`, [`Log::install_staged_segment`].
    /// Returns `false`, changing nothing, when `replaced` are not (or no
    /// longer) consecutive sealed segments of the log.
    pub fn replace_segments(&self, replaced: &[i64], batches: &[u8]) -> Result<bool, LogError> {
        let Some(mut staged) = self.stage_segment(replaced)? else {
            return Ok(false);
        };
        self.write_staged(&mut staged, batches)?;
        self.install_staged_segment(staged)
    }

    /// Starts the segment that will replace the consecutive sealed
    /// segments `replaced` (ascending base offsets; the first is the new
    /// segment's base): its files are staged beside the log, invisible to
    /// it, until [`Log::install_staged_segment`]. `None` when `replaced`
    /// are not consecutive sealed segments (the active one excluded).
    ///
    /// Crash-safe through [`SegmentStore::install_staged`]: a kill at any
    /// point leaves the old segments or the new one; staged files that were
    /// never installed are discarded by the next open. The `.txnindex`
    /// entries of the replaced segments are carried over (an entry whose
    /// data is gone costs only its 40 bytes).
    pub fn stage_segment(&self, replaced: &[i64]) -> Result<Option<StagedSegment>, LogError> {
        self.check_failed()?;
        let Some(&base) = replaced.first() else {
            return Ok(None);
        };
        let (end, encryption) = {
            let inner = self.lock();
            let Some((_, end)) = consecutive_sealed(&inner, replaced) else {
                return Ok(None);
            };
            (end, inner.config.encryption.clone())
        };
        let mut txn = Vec::new();
        for &b in replaced {
            if let Some(bytes) = self.store.read_file(&self.dir, b, SegmentFile::TxnIndex)? {
                txn.extend_from_slice(&bytes[..bytes.len() - bytes.len() % TXN_ENTRY_BYTES]);
            }
        }
        for (file, contents) in [
            (SegmentFile::OffsetIndex, &[][..]),
            (SegmentFile::TimeIndex, &[][..]),
            (SegmentFile::TxnIndex, &txn[..]),
        ] {
            self.store
                .create_staged_file(&self.dir, base, file)?
                .write_all_at(contents, 0)
                .map_err(io_err("write", &self.dir.join(file.extension())))?;
        }
        let log = self
            .store
            .create_staged_file(&self.dir, base, SegmentFile::Log)?;
        Ok(Some(StagedSegment {
            replaced: replaced.to_vec(),
            end,
            encryption,
            log,
            written: 0,
            next_offset: base,
        }))
    }

    /// Appends `batches` (plain RecordBatch v2 bytes, in offset order,
    /// after everything written so far and inside the replaced range) to a
    /// staged segment, sealed with the active key under encryption at rest.
    /// Checked before anything is written: framing, CRC, offsets.
    pub fn write_staged(&self, staged: &mut StagedSegment, batches: &[u8]) -> Result<(), LogError> {
        let base = staged.replaced[0];
        let mut headers = Vec::new();
        let mut next = staged.next_offset;
        for item in Batches::new(batches) {
            let NextBatch::Complete {
                header, position, ..
            } = item
            else {
                return Err(LogError::Corrupt {
                    file: self.dir.clone(),
                    position: headers.len() as u64,
                    reason: format!("compacted batches for segment {base} are malformed: {item:?}"),
                });
            };
            if header.base_offset < next || header.last_offset() >= staged.end {
                return Err(LogError::Corrupt {
                    file: self.dir.clone(),
                    position: position as u64,
                    reason: format!(
                        "compacted batch at offset {} is outside [{next}, {}) of segment {base}",
                        header.base_offset, staged.end
                    ),
                });
            }
            next = header.next_offset();
            headers.push((position, header));
        }
        let sealed;
        let stored: &[u8] = match &staged.encryption {
            Some(keyring) => {
                sealed = seal_batches(keyring, batches, &headers)?.0;
                &sealed
            }
            None => batches,
        };
        staged
            .log
            .write_all_at(stored, staged.written)
            .map_err(io_err(
                "write",
                &self.dir.join(SegmentFile::Log.extension()),
            ))?;
        staged.written += stored.len() as u64;
        staged.next_offset = next;
        Ok(())
    }

    /// Swaps a staged segment in for the segments it replaces. Returns
    /// `false`, changing nothing, when those are no longer consecutive
    /// sealed segments of the log (retention, a truncation or another
    /// install got there first). The new segment's indexes are rebuilt
    /// from its batches; reads planned before keep their handles on the
    /// old files.
    pub fn install_staged_segment(&self, staged: StagedSegment) -> Result<bool, LogError> {
        self.check_failed()?;
        let replaced = &staged.replaced;
        let end = staged.end;
        drop(staged.log);
        let _flush = self.flush_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut inner = self.lock();
        // The segments may have moved while the files were staged.
        let first = match consecutive_sealed(&inner, replaced) {
            Some((first, now_end)) if now_end == end => first,
            _ => return Ok(false),
        };
        let r = self.install_locked(&mut inner, first, replaced, end);
        self.poison(r)?;
        Ok(true)
    }

    /// Installs the staged segment over `inner.segments[first..]` (the
    /// `replaced` ones, which end where the segment based at `end` starts)
    /// and opens it in their place.
    fn install_locked(
        &self,
        inner: &mut Inner,
        first: usize,
        replaced: &[i64],
        end: i64,
    ) -> Result<(), LogError> {
        let base = replaced[0];
        self.store.install_staged(&self.dir, base, replaced)?;
        let old: u64 = inner.segments[first..first + replaced.len()]
            .iter()
            .map(|s| s.size)
            .sum();
        let mut seg = Segment::open_files(&self.dir, base, &self.store)?;
        if let ScanEnd::Bad { position, error } =
            seg.rebuild(inner.config.index_interval_bytes, i64::MAX, |_| {})?
        {
            return Err(LogError::Corrupt {
                file: seg.log_path.clone(),
                position,
                reason: format!("installed compacted segment: {error}"),
            });
        }
        seg.next_offset = end;
        seg.rewrite_index_files()?;
        seg.load_txn_index(end, false)?;
        inner.size_bytes = inner.size_bytes - old + seg.size;
        inner
            .segments
            .splice(first..first + replaced.len(), std::iter::once(seg));
        Ok(())
    }

    /// Removes every record at or above `offset` (rounded down to a batch boundary).
    pub fn truncate_to(&self, offset: i64) -> Result<(), LogError> {
        self.check_failed()?;
        let _flush = self.flush_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut inner = self.lock();
        if offset >= inner.log_end_offset {
            // Nothing to cut, but an epoch this log entered at its end and
            // never wrote in (a leader killed before its first append) must
            // go, as Kafka's `truncateFromEnd` drops it: a follower that
            // keeps it names it as its last fetched epoch, the new leader
            // never had it, and the two would agree on the offset forever
            // while disagreeing on the epoch.
            if offset == inner.log_end_offset
                && inner
                    .epochs
                    .last()
                    .is_some_and(|&(_, start)| start >= offset)
            {
                inner.epochs.retain(|&(_, start)| start < offset);
                let r = self.write_epochs(&inner.epochs);
                self.poison(r)?;
            }
            return Ok(());
        }
        if offset < inner.log_start_offset {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: inner.log_start_offset,
                log_end_offset: inner.log_end_offset,
            });
        }
        let r = self.truncate_locked(&mut inner, offset);
        self.poison(r)?;
        // Producer state cannot be rolled back in place: rebuild it from
        // the log that is left, and drop the snapshot that describes more.
        inner.producers = ProducerStateManager::default();
        inner.snapshot_end_offset = -1;
        drop(inner);
        let r = self.store.remove_sidecar(&self.dir, PRODUCER_STATE_FILE);
        self.poison(r)?;
        let mut state = ProducerStateManager::default();
        let start = self.log_start_offset();
        self.replay_producer_state(&mut state, start)?;
        self.lock().producers = state;
        Ok(())
    }

    /// Empties the log and starts it again at `offset`, which must lie past
    /// its end (Kafka's `truncateFullyAndStartAt`): a follower whose leader
    /// has deleted everything this log still lacks (retention, DeleteRecords)
    /// cannot fetch from where it is, so it drops what it has and fetches
    /// from the leader's log start. The new empty segment is created before
    /// the old ones are deleted, so a crash in between leaves a log that
    /// starts at the old start and has a gap, which the next fetch repairs
    /// the same way.
    pub fn truncate_fully_and_start_at(&self, offset: i64) -> Result<(), LogError> {
        self.check_failed()?;
        let _flush = self.flush_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut inner = self.lock();
        if offset <= inner.log_end_offset {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: inner.log_start_offset,
                log_end_offset: inner.log_end_offset,
            });
        }
        let r = Segment::create(&self.dir, offset, &self.store).map(|segment| {
            inner.segments.push(segment);
            inner.dir_dirty = true;
        });
        self.poison(r)?;
        while inner.segments.len() > 1 {
            self.delete_oldest(&mut inner, DeleteReason::Truncation)?;
        }
        inner.log_end_offset = offset;
        inner.log_start_offset = offset;
        self.persist_log_start(&inner)?;
        inner.epochs.clear();
        let r = self.write_epochs(&inner.epochs);
        self.poison(r)?;
        // Nothing below `offset` is left to recover or flush.
        self.durable_offset.store(offset, Ordering::SeqCst);
        let r = self.write_offset(RECOVERY_POINT_FILE, offset);
        self.poison(r)?;
        inner.checkpointed_recovery_point = offset;
        inner.producers = ProducerStateManager::default();
        inner.snapshot_end_offset = -1;
        drop(inner);
        let r = self.store.remove_sidecar(&self.dir, PRODUCER_STATE_FILE);
        self.poison(r)
    }

    /// First offset of the oldest open transaction, if any: the last stable
    /// offset can never pass it.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.lock().producers.first_unstable_offset()
    }

    /// Aborted transactions overlapping `[from, to)` (marker at or after
    /// `from`, first offset before `to`), for `read_committed` fetches, read
    /// from the `.txnindex` files of the segments from the one holding
    /// `from` on. The files are read outside the log lock.
    pub fn read_aborted_transactions(
        &self,
        from: i64,
        to: i64,
    ) -> Result<Vec<AbortedTxn>, LogError> {
        let plan: Vec<(Arc<File>, PathBuf, usize)> = {
            let inner = self.lock();
            let k = inner.segment_index_for(from);
            inner.segments[k..]
                .iter()
                .filter(|s| s.txn_entries > 0 && s.last_txn_marker >= from)
                .map(|s| Ok((s.txn_index_file()?, s.txn_index_path.clone(), s.txn_entries)))
                .collect::<Result<_, LogError>>()?
        };
        let mut out = Vec::new();
        let mut buf = Vec::new();
        for (file, path, entries) in plan {
            // Only the entries counted under the lock: later ones may be half written.
            buf.resize(entries * TXN_ENTRY_BYTES, 0);
            file.read_exact_at(&mut buf, 0)
                .map_err(io_err("read", &path))?;
            for (i, chunk) in buf.chunks_exact(TXN_ENTRY_BYTES).enumerate() {
                let mut raw = [0u8; TXN_ENTRY_BYTES];
                raw.copy_from_slice(chunk);
                let Some(entry) = TxnIndexEntry::decode(&raw) else {
                    return Err(LogError::Corrupt {
                        file: path,
                        position: (i * TXN_ENTRY_BYTES) as u64,
                        reason: "transaction index entry with an unknown version".into(),
                    });
                };
                if entry.last_offset >= from && entry.first_offset < to {
                    out.push(entry.aborted());
                }
                // Every transaction starting below `to` had ended by this
                // marker, so no later entry can overlap the range.
                if entry.last_stable_offset >= to {
                    return Ok(out);
                }
            }
        }
        Ok(out)
    }

    /// [`Log::read_aborted_transactions`] for callers without an error path
    /// (the HTTP API): an unreadable index is logged and yields no entries.
    /// Prefer the `Result` form.
    pub fn aborted_transactions(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        match self.read_aborted_transactions(from, to) {
            Ok(aborted) => aborted,
            Err(e) => {
                tracing::error!(dir = %self.dir.display(), error = %e, "cannot read the transaction index");
                Vec::new()
            }
        }
    }

    /// Has `producer_id`, at `epoch`, a transaction open on this partition?
    /// (KIP-890: its first transactional write here was verified with the
    /// coordinator, so later ones in the same transaction need not be.)
    pub fn has_ongoing_transaction(&self, producer_id: i64, epoch: i16) -> bool {
        self.lock()
            .producers
            .producer(producer_id)
            .is_some_and(|e| e.epoch == epoch && e.current_txn_first_offset.is_some())
    }

    /// Every producer this partition knows (DescribeProducers).
    pub fn producer_states(&self) -> Vec<(i64, ProducerEntry)> {
        let inner = self.lock();
        let mut out: Vec<_> = inner
            .producers
            .producers()
            .map(|(id, e)| (id, e.clone()))
            .collect();
        out.sort_unstable_by_key(|(id, _)| *id);
        out
    }

    fn truncate_locked(&self, inner: &mut Inner, offset: i64) -> Result<(), LogError> {
        while inner.segments.len() > 1 && inner.active().base_offset >= offset {
            let seg = inner.segments.pop().expect("invariant: len > 1");
            inner.size_bytes -= seg.size;
            seg.delete_files(DeleteReason::Truncation)?;
        }
        let interval = inner.config.index_interval_bytes;
        let seg = inner.active();
        let mut pos = seg.indexes.position_for_offset(seg.base_offset, offset - 1);
        let file = seg.log_file()?;
        while pos < seg.size {
            let raw = read_header(&file, pos).map_err(io_err("read", &seg.log_path))?;
            let header = BatchHeader::parse(&raw).map_err(|e| LogError::Corrupt {
                file: seg.log_path.clone(),
                position: pos,
                reason: e.to_string(),
            })?;
            if header.last_offset() >= offset || header.total_size() < 61 {
                break;
            }
            pos += header.total_size() as u64;
        }
        let old = seg.size;
        seg.truncate_file(pos.min(old))?;
        if let ScanEnd::Bad { position, error } = seg.rebuild(interval, i64::MAX, |_| {})? {
            return Err(LogError::Corrupt {
                file: seg.log_path.clone(),
                position,
                reason: error.to_string(),
            });
        }
        seg.rewrite_index_files()?;
        let next = seg.next_offset;
        seg.truncate_txn_index_to(next)?;
        let new_size = seg.size;
        inner.size_bytes = inner.size_bytes - old + new_size;
        inner.log_end_offset = next;
        inner.epochs.retain(|&(_, start)| start < next);
        self.write_epochs(&inner.epochs)?;
        if self.durable_offset.load(Ordering::SeqCst) > next {
            self.durable_offset.store(next, Ordering::SeqCst);
            self.write_offset(RECOVERY_POINT_FILE, next)?;
            inner.checkpointed_recovery_point = next;
        }
        if inner.log_start_offset > next {
            // The cut rounded down below the log start (a batch straddled it).
            inner.log_start_offset = next;
            self.write_offset(LOG_START_FILE, next)?;
        }
        Ok(())
    }

    /// OffsetForLeaderEpoch: (largest epoch <= `epoch`, its end offset), Kafka's rules.
    pub fn leader_epoch_end_offset(&self, epoch: i32) -> Option<(i32, i64)> {
        let inner = self.lock();
        let &(latest, _) = inner.epochs.last()?;
        if epoch < 0 {
            return None;
        }
        if epoch == latest {
            return Some((epoch, inner.log_end_offset));
        }
        let higher = inner.epochs.iter().find(|&&(e, _)| e > epoch)?;
        match inner.epochs.iter().rev().find(|&&(e, _)| e <= epoch) {
            Some(&(floor, _)) => Some((floor, higher.1)),
            None => Some((epoch, higher.1)),
        }
    }

    /// The leader epoch cache: (epoch, start offset) pairs.
    pub fn leader_epochs(&self) -> Vec<(i32, i64)> {
        self.lock().epochs.clone()
    }

    /// Replaces the configuration (takes effect on the next append / retention pass).
    pub fn update_config(&self, config: LogConfig) {
        self.lock().config = config;
    }

    /// The current configuration.
    pub fn config(&self) -> LogConfig {
        self.lock().config.clone()
    }

    /// The current flush policy (cheaper than [`Log::config`]).
    pub fn flush_policy(&self) -> FlushPolicy {
        self.lock().config.flush
    }

    /// DeleteTopics: removes the partition directory.
    pub fn delete(self) -> Result<(), LogError> {
        let dir = self.dir.clone();
        let store = Arc::clone(&self.store);
        // Dropping forgets the cached handles, so the space is freed.
        drop(self);
        store.delete_partition_dir(&dir)
    }

    /// Files of this log the cache holds open (for tests and metrics).
    pub fn file_cache(&self) -> &Arc<FileCache> {
        self.store.file_cache()
    }

    /// The store every lifecycle file operation of this log goes through.
    pub fn store(&self) -> &Arc<dyn SegmentStore> {
        &self.store
    }

    /// Test hook: the next segment write fails like a disk would.
    #[cfg(any(test, feature = "fault-injection"))]
    pub fn inject_write_failure(&self) {
        self.faults.fail_write.store(true, Ordering::SeqCst);
    }

    /// Test hook: the next fsync fails like a disk would.
    #[cfg(any(test, feature = "fault-injection"))]
    pub fn inject_sync_failure(&self) {
        self.faults.fail_sync.store(true, Ordering::SeqCst);
    }

    /// Test hook: the next deletion of a segment's files fails.
    #[cfg(any(test, feature = "fault-injection"))]
    pub fn inject_delete_failure(&self) {
        self.faults.fail_delete.store(true, Ordering::SeqCst);
    }

    /// Test hook: offset index entries per segment, oldest first.
    #[cfg(test)]
    pub(crate) fn offset_index_entries(&self) -> Vec<usize> {
        self.lock()
            .segments
            .iter()
            .map(|s| s.indexes.offsets.len())
            .collect()
    }
}

impl Drop for Log {
    /// Closes the log's cached file handles: a deleted partition's files
    /// must not stay open (and hold their disk space) until evicted.
    fn drop(&mut self) {
        let inner = self.lock();
        for segment in &inner.segments {
            segment.forget_files();
        }
    }
}

/// The newest `max_timestamp` among `batches` (-1 if none carries one).
fn max_batch_timestamp(batches: &[(usize, BatchHeader)]) -> i64 {
    batches
        .iter()
        .map(|(_, h)| h.max_timestamp)
        .max()
        .unwrap_or(-1)
}
