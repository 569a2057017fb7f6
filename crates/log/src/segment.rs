//! One segment: a `.log` file of whole RecordBatch v2 batches plus its sparse
//! `.index` (relative offset → position) and `.timeindex` (timestamp →
//! relative offset), kept in memory and appended to their files, and its
//! `.txnindex` (aborted transactions), which stays on disk: only its entry
//! count is kept in memory.
//!
//! This module does the file I/O of one segment and the recovery scan. It
//! knows nothing about other segments, checkpoints or locking; `log.rs` does.
//!
//! A segment holds no open file. Handles come from its store's [`FileCache`]
//! by path whenever they are needed, so open files are bounded by the cache
//! and not by the number of partitions; recovery reads sealed segments
//! through short-lived handles that are closed again. Every other file
//! operation (create, `stat`, whole-file reads, delete) goes through the
//! segment's [`SegmentStore`], which also names the files.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sluice_records::batch::check_batch_framing;
use sluice_records::{BATCH_HEADER_BYTES, BatchHeader, RecordsError, check_batch};

use crate::error::LogError;
use crate::error::io_err;
use crate::file_cache::FileCache;
use crate::store::{DeleteReason, SegmentFile, SegmentPaths, SegmentStore};
use crate::txn_index::{self, TXN_ENTRY_BYTES, TxnIndexDamage, TxnIndexEntry};

/// Size of one `.index` entry: relative offset u32 + position u32.
pub const OFFSET_ENTRY_BYTES: usize = 8;
/// Size of one `.timeindex` entry: timestamp i64 + relative offset u32.
pub const TIME_ENTRY_BYTES: usize = 12;

/// Chunk size for the resync search that tells a torn tail from interior damage.
const RESYNC_WINDOW_BYTES: usize = 8 * 1024 * 1024;

pub use crate::store::file_stem;

/// Paths of a segment's three files, in the local layout
/// ([`SegmentPaths::local`]; a log asks its store instead).
pub fn paths(dir: &Path, base_offset: i64) -> [PathBuf; 3] {
    let p = SegmentPaths::local(dir, base_offset);
    [p.log, p.offset_index, p.time_index]
}

/// Path of a segment's aborted-transaction index, in the local layout.
pub fn txn_index_path(dir: &Path, base_offset: i64) -> PathBuf {
    SegmentPaths::local(dir, base_offset).txn_index
}

/// The in-memory indexes of a segment and the bookkeeping to extend them.
#[derive(Debug, Clone, Default)]
pub struct Indexes {
    /// (relative last offset of a batch, byte position of that batch).
    pub offsets: Vec<(u32, u32)>,
    /// (largest timestamp so far, relative last offset of the batch where it was seen).
    pub times: Vec<(i64, u32)>,
    /// Bytes appended since the last offset index entry.
    bytes_since_entry: u64,
    /// Largest batch maxTimestamp in the segment, -1 if empty.
    pub max_timestamp: i64,
    /// Last offset of the batch holding `max_timestamp`.
    pub max_timestamp_offset: i64,
    /// maxTimestamp of the first batch (drives `segment.ms`), `None` if empty.
    pub first_batch_timestamp: Option<i64>,
}

impl Indexes {
    fn new() -> Indexes {
        Indexes {
            max_timestamp: -1,
            max_timestamp_offset: -1,
            ..Indexes::default()
        }
    }

    /// Accounts for a batch at `position`; returns how many entries of each index were added.
    pub fn add(
        &mut self,
        base_offset: i64,
        position: u64,
        header: &BatchHeader,
        interval: u32,
    ) -> (usize, usize) {
        // Relative offsets and positions fit u32: the log rolls before they would not.
        let rel = (header.last_offset() - base_offset) as u32;
        let first = self.first_batch_timestamp.is_none();
        if first {
            self.first_batch_timestamp = Some(header.max_timestamp);
        }
        if header.max_timestamp > self.max_timestamp {
            self.max_timestamp = header.max_timestamp;
            self.max_timestamp_offset = header.last_offset();
        }
        self.bytes_since_entry += header.total_size() as u64;
        let mut added = (0, 0);
        if first || self.bytes_since_entry >= u64::from(interval) {
            self.offsets.push((rel, position as u32));
            self.bytes_since_entry = 0;
            added.0 = 1;
            added.1 = self.add_time_entry(base_offset);
        }
        added
    }

    /// Appends a time entry if the max timestamp grew since the last one; returns 1 if it did.
    pub fn add_time_entry(&mut self, base_offset: i64) -> usize {
        if self.max_timestamp >= 0
            && self
                .times
                .last()
                .is_none_or(|&(ts, _)| self.max_timestamp > ts)
        {
            self.times.push((
                self.max_timestamp,
                (self.max_timestamp_offset - base_offset) as u32,
            ));
            1
        } else {
            0
        }
    }

    /// Byte position to start scanning for `offset`: the last indexed batch ending at or before it.
    pub fn position_for_offset(&self, base_offset: i64, offset: i64) -> u64 {
        let rel = offset - base_offset;
        let i = self.offsets.partition_point(|&(r, _)| i64::from(r) <= rel);
        if i == 0 {
            0
        } else {
            u64::from(self.offsets[i - 1].1)
        }
    }

    /// Offset from which to scan for the first timestamp >= `ts`.
    pub fn offset_for_timestamp(&self, base_offset: i64, ts: i64) -> i64 {
        // Entries are running maxima, so every batch up to an entry with a
        // smaller timestamp cannot hold `ts`; start at that entry's batch.
        let i = self.times.partition_point(|&(t, _)| t < ts);
        if i == 0 {
            base_offset
        } else {
            base_offset + i64::from(self.times[i - 1].1)
        }
    }

    fn offsets_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.offsets.len() * OFFSET_ENTRY_BYTES);
        for (rel, pos) in &self.offsets {
            out.extend_from_slice(&rel.to_be_bytes());
            out.extend_from_slice(&pos.to_be_bytes());
        }
        out
    }

    fn times_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.times.len() * TIME_ENTRY_BYTES);
        for (ts, rel) in &self.times {
            out.extend_from_slice(&ts.to_be_bytes());
            out.extend_from_slice(&rel.to_be_bytes());
        }
        out
    }
}

/// One segment of a log.
#[derive(Debug)]
pub struct Segment {
    /// Offset of the first batch (also the file name).
    pub base_offset: i64,
    /// The partition directory.
    dir: PathBuf,
    /// Every lifecycle operation on this segment's files goes through it.
    store: Arc<dyn SegmentStore>,
    /// Where every file handle of this segment comes from: the store's
    /// cache, used directly so appends and reads make no virtual call.
    cache: Arc<FileCache>,
    /// Path of the `.log` file.
    pub log_path: PathBuf,
    /// Path of the `.index` file.
    offset_index_path: PathBuf,
    /// Path of the `.timeindex` file.
    time_index_path: PathBuf,
    /// Bytes of whole batches in the `.log` file.
    pub size: u64,
    /// Offset after the last batch (`base_offset` if empty).
    pub next_offset: i64,
    /// In-memory indexes.
    pub indexes: Indexes,
    /// Entries already written to the index files.
    written: (usize, usize),
    /// Path of the `.txnindex` file.
    pub txn_index_path: PathBuf,
    /// Whole entries in the `.txnindex` file.
    pub txn_entries: usize,
    /// Marker offset of the last `.txnindex` entry, -1 if none: replay adds
    /// only entries past it, so re-deriving a range never duplicates one.
    pub last_txn_marker: i64,
    /// Entries were written since the last fsync of the `.txnindex`.
    pub txn_dirty: bool,
    /// The `.txnindex` file did not exist when the segment was opened.
    pub txn_index_missing: bool,
    /// The `.index` / `.timeindex` were sealed or rewritten and are not yet
    /// fsynced: the log fsyncs them before the recovery point passes them.
    pub index_dirty: bool,
}

/// Reads the 61-byte header at `position`.
pub fn read_header(file: &File, position: u64) -> std::io::Result<[u8; BATCH_HEADER_BYTES]> {
    let mut h = [0u8; BATCH_HEADER_BYTES];
    file.read_exact_at(&mut h, position)?;
    Ok(h)
}

/// Where a segment scan stopped.
#[derive(Debug)]
pub enum ScanEnd {
    /// Every byte belongs to a good batch.
    Clean,
    /// The bytes at `position` are not a good batch.
    Bad {
        /// Byte position of the first bad batch.
        position: u64,
        /// Why.
        error: RecordsError,
    },
}

/// Walks the batches of `file` (of `file_len` bytes) from position 0.
///
/// Checks framing for every batch and the CRC for every batch whose next
/// offset is above `verify_crc_above`. Calls `on_batch` for each good batch.
/// Also refuses batches whose offsets go backwards.
pub fn scan(
    file: &File,
    file_len: u64,
    base_offset: i64,
    verify_crc_above: i64,
    mut on_batch: impl FnMut(u64, &BatchHeader),
) -> std::io::Result<ScanEnd> {
    let mut position = 0u64;
    let mut expected = base_offset;
    let mut buf = Vec::new();
    while position < file_len {
        let remaining = file_len - position;
        if remaining < BATCH_HEADER_BYTES as u64 {
            return Ok(ScanEnd::Bad {
                position,
                error: RecordsError::Truncated {
                    needed: BATCH_HEADER_BYTES,
                    available: remaining as usize,
                },
            });
        }
        let raw = read_header(file, position)?;
        let header = match BatchHeader::parse(&raw).and_then(|h| {
            check_batch_framing(&raw).or_else(|e| match e {
                // Framing on the header alone always looks truncated; check the size below.
                RecordsError::Truncated { .. } => Ok(h),
                e => Err(e),
            })
        }) {
            Ok(h) => h,
            Err(error) => return Ok(ScanEnd::Bad { position, error }),
        };
        let total = header.total_size() as u64;
        if total > remaining {
            return Ok(ScanEnd::Bad {
                position,
                error: RecordsError::Truncated {
                    needed: total as usize,
                    available: remaining as usize,
                },
            });
        }
        if header.base_offset < expected || header.last_offset() < header.base_offset {
            return Ok(ScanEnd::Bad {
                position,
                error: RecordsError::MalformedRecord {
                    index: 0,
                    reason: "batch offsets go backwards",
                },
            });
        }
        if header.next_offset() > verify_crc_above {
            buf.resize(total as usize, 0);
            file.read_exact_at(&mut buf, position)?;
            if let Err(error) = check_batch(&buf) {
                return Ok(ScanEnd::Bad { position, error });
            }
        }
        on_batch(position, &header);
        expected = header.next_offset();
        position += total;
    }
    Ok(ScanEnd::Clean)
}

/// Searches `file` from position `from` (inclusive) for any position holding a whole batch with a good CRC.
///
/// Used to tell a torn tail (nothing valid after the damage) from interior
/// corruption (valid data after it). Returns the first such position.
pub fn find_valid_batch(file: &File, file_len: u64, from: u64) -> std::io::Result<Option<u64>> {
    let mut window_start = from;
    let mut window = Vec::new();
    let mut batch = Vec::new();
    while window_start < file_len {
        let len = (file_len - window_start).min(RESYNC_WINDOW_BYTES as u64) as usize;
        window.resize(len, 0);
        file.read_exact_at(&mut window, window_start)?;
        for i in 0..len {
            let pos = window_start + i as u64;
            if file_len - pos < BATCH_HEADER_BYTES as u64 {
                return Ok(None);
            }
            // Cheap filter first: the magic byte (read directly if it lies past the window).
            let magic = if i + 16 < len {
                window[i + 16]
            } else {
                let mut b = [0u8; 1];
                file.read_exact_at(&mut b, pos + 16)?;
                b[0]
            };
            if magic != 2 {
                continue;
            }
            let header = match read_header(file, pos).map(|h| BatchHeader::parse(&h)) {
                Ok(Ok(h)) => h,
                _ => continue,
            };
            if header.magic != 2 || header.batch_length < (BATCH_HEADER_BYTES - 12) as i32 {
                continue;
            }
            let total = header.total_size() as u64;
            if total > file_len - pos {
                continue;
            }
            batch.resize(total as usize, 0);
            file.read_exact_at(&mut batch, pos)?;
            if check_batch(&batch).is_ok() {
                return Ok(Some(pos));
            }
        }
        window_start += len as u64;
    }
    Ok(None)
}

/// Decodes the bytes of an `.index` and a `.timeindex`; `None` if either
/// is not a whole number of entries.
fn decode_indexes(ob: &[u8], tb: &[u8]) -> Option<Indexes> {
    if !ob.len().is_multiple_of(OFFSET_ENTRY_BYTES) || !tb.len().is_multiple_of(TIME_ENTRY_BYTES) {
        return None;
    }
    let mut ix = Indexes::new();
    for e in ob.chunks_exact(OFFSET_ENTRY_BYTES) {
        ix.offsets.push((
            u32::from_be_bytes([e[0], e[1], e[2], e[3]]),
            u32::from_be_bytes([e[4], e[5], e[6], e[7]]),
        ));
    }
    for e in tb.chunks_exact(TIME_ENTRY_BYTES) {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&e[..8]);
        ix.times.push((
            i64::from_be_bytes(ts),
            u32::from_be_bytes([e[8], e[9], e[10], e[11]]),
        ));
    }
    Some(ix)
}

/// Offset entries strictly increase in both fields, time entries in
/// timestamp (their offsets never go back).
fn entries_increase(ix: &Indexes) -> bool {
    ix.offsets
        .windows(2)
        .all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1)
        && ix
            .times
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1)
}

impl Segment {
    /// The segment's in-memory description, with no file touched.
    fn describe(
        dir: &Path,
        base_offset: i64,
        store: &Arc<dyn SegmentStore>,
        size: u64,
        txn_index_missing: bool,
    ) -> Segment {
        let paths = store.segment_paths(dir, base_offset);
        Segment {
            base_offset,
            dir: dir.to_path_buf(),
            store: Arc::clone(store),
            cache: Arc::clone(store.file_cache()),
            log_path: paths.log,
            offset_index_path: paths.offset_index,
            time_index_path: paths.time_index,
            size,
            next_offset: base_offset,
            indexes: Indexes::new(),
            written: (0, 0),
            txn_index_path: paths.txn_index,
            txn_entries: 0,
            last_txn_marker: -1,
            txn_dirty: false,
            txn_index_missing,
            index_dirty: false,
        }
    }

    /// Reads a whole file of this segment through a short-lived handle; a
    /// missing file reads as empty (an index that was never written or was
    /// lost: rebuilt).
    fn read_file(&self, file: SegmentFile) -> Result<Vec<u8>, LogError> {
        Ok(self
            .store
            .read_file(&self.dir, self.base_offset, file)?
            .unwrap_or_default())
    }

    /// Creates an empty segment (truncating any stale files of that name).
    pub fn create(
        dir: &Path,
        base_offset: i64,
        store: &Arc<dyn SegmentStore>,
    ) -> Result<Segment, LogError> {
        // The `.txnindex` is created with the segment, even while it holds
        // no entry, so that a missing file on open unambiguously means
        // "lost": see the design doc.
        for file in SegmentFile::ALL {
            store.create_file(dir, base_offset, file)?;
        }
        Ok(Segment::describe(dir, base_offset, store, 0, false))
    }

    /// Describes an existing segment without opening it (one `stat`); the
    /// caller then loads or rebuilds its indexes.
    pub fn open_files(
        dir: &Path,
        base_offset: i64,
        store: &Arc<dyn SegmentStore>,
    ) -> Result<Segment, LogError> {
        let size = match store.file_len(dir, base_offset, SegmentFile::Log)? {
            Some(size) => size,
            None => {
                let path = store.segment_paths(dir, base_offset).log;
                return Err(io_err("stat", &path)(std::io::ErrorKind::NotFound.into()));
            }
        };
        // As `Path::exists`: a file that cannot be `stat`ed counts as missing.
        let txn_index_missing = !matches!(
            store.file_len(dir, base_offset, SegmentFile::TxnIndex),
            Ok(Some(_))
        );
        Ok(Segment::describe(
            dir,
            base_offset,
            store,
            size,
            txn_index_missing,
        ))
    }

    /// A handle of a file of this segment from the cache (reopened if it was evicted).
    fn cached(&self, path: &Path) -> Result<Arc<File>, LogError> {
        self.cache.get(path).map_err(io_err("open", path))
    }

    /// The `.log` file, for appends, reads and fsync.
    pub fn log_file(&self) -> Result<Arc<File>, LogError> {
        self.cached(&self.log_path)
    }

    /// The `.txnindex` file.
    pub fn txn_index_file(&self) -> Result<Arc<File>, LogError> {
        self.cached(&self.txn_index_path)
    }

    /// The `.index` file (created if lost: its entries are in memory).
    fn offset_index_file(&self) -> Result<Arc<File>, LogError> {
        let path = &self.offset_index_path;
        self.cache.get_or_create(path).map_err(io_err("open", path))
    }

    /// The `.timeindex` file (created if lost: its entries are in memory).
    fn time_index_file(&self) -> Result<Arc<File>, LogError> {
        let path = &self.time_index_path;
        self.cache.get_or_create(path).map_err(io_err("open", path))
    }

    /// A read-only handle of the `.log` that bypasses the cache, for
    /// recovery: closed when dropped, so opening many logs opens no files
    /// for long.
    pub fn log_file_uncached(&self) -> Result<File, LogError> {
        self.store
            .open_uncached(&self.dir, self.base_offset, SegmentFile::Log)
    }

    /// Loads the active segment without scanning it, if everything in it is
    /// below the recovery point `rp` (a clean shutdown leaves `rp` at the log
    /// end). Reads the index files, then only the batch headers from the
    /// last indexed batch to the end of the file (at most about
    /// `index.interval.bytes` of log). Returns false, changing nothing, if
    /// the indexes look wrong, a header is damaged, or the segment does not
    /// end exactly at `rp`: the caller then scans it as before.
    pub fn load_active_indexes(&mut self, rp: i64, interval: u32) -> Result<bool, LogError> {
        if self.size == 0 {
            // Nothing to trust or scan; data missing below `rp` is refused
            // by the scan, so only the exact match takes this path.
            return Ok(rp == self.base_offset);
        }
        let ob = self.read_file(SegmentFile::OffsetIndex)?;
        let tb = self.read_file(SegmentFile::TimeIndex)?;
        let Some(mut ix) = decode_indexes(&ob, &tb) else {
            return Ok(false);
        };
        let span = rp - self.base_offset;
        let sane = span > 0
            && !ix.offsets.is_empty()
            && !ix.times.is_empty()
            && ix.offsets[0].1 == 0
            && entries_increase(&ix)
            && ix
                .offsets
                .iter()
                .all(|&(r, p)| i64::from(r) < span && u64::from(p) < self.size)
            && ix.times.iter().all(|&(_, r)| i64::from(r) < span);
        if !sane {
            return Ok(false);
        }
        let file = self.log_file_uncached()?;
        let header_at = |pos: u64| -> Option<BatchHeader> {
            let raw = read_header(&file, pos).ok()?;
            let header = check_batch_framing(&raw)
                .or_else(|e| match e {
                    RecordsError::Truncated { .. } => BatchHeader::parse(&raw),
                    e => Err(e),
                })
                .ok()?;
            (u64::from(header.total_size() as u32) <= self.size - pos).then_some(header)
        };
        let Some(first) = header_at(0) else {
            return Ok(false);
        };
        let (last_rel, last_pos) = ix.offsets[ix.offsets.len() - 1];
        // Entries up to the last offset entry hold the running maximum.
        let (mut max_ts, ts_rel) = ix.times[ix.times.len() - 1];
        let mut max_ts_offset = self.base_offset + i64::from(ts_rel);
        let mut pos = u64::from(last_pos);
        let mut expected = self.base_offset + i64::from(last_rel);
        let mut since_entry = 0u64;
        let mut at_entry = true;
        while pos < self.size {
            let Some(h) = header_at(pos) else {
                return Ok(false);
            };
            if at_entry {
                // The indexed batch must be the one the entry names.
                if h.last_offset() != expected {
                    return Ok(false);
                }
                at_entry = false;
            } else {
                if h.base_offset <= expected || h.last_offset() < h.base_offset {
                    return Ok(false);
                }
                since_entry += h.total_size() as u64;
            }
            if h.max_timestamp > max_ts {
                max_ts = h.max_timestamp;
                max_ts_offset = h.last_offset();
            }
            expected = h.last_offset();
            pos += h.total_size() as u64;
        }
        if at_entry || expected + 1 != rp || since_entry >= u64::from(interval) {
            return Ok(false);
        }
        ix.max_timestamp = max_ts;
        ix.max_timestamp_offset = max_ts_offset;
        ix.first_batch_timestamp = Some(first.max_timestamp);
        ix.bytes_since_entry = since_entry;
        self.written = (ix.offsets.len(), ix.times.len());
        self.indexes = ix;
        self.next_offset = rp;
        Ok(true)
    }

    /// Loads the index files of a sealed segment whose next segment starts at
    /// `next_base`; returns false if they look inconsistent (then rebuild).
    pub fn load_sealed_indexes(&mut self, next_base: i64) -> Result<bool, LogError> {
        let ob = self.read_file(SegmentFile::OffsetIndex)?;
        let tb = self.read_file(SegmentFile::TimeIndex)?;
        let Some(mut ix) = decode_indexes(&ob, &tb) else {
            return Ok(false);
        };
        let span = next_base - self.base_offset;
        let sane = self.size > 0
            && !ix.offsets.is_empty()
            && !ix.times.is_empty()
            && entries_increase(&ix)
            && ix
                .offsets
                .iter()
                .all(|&(r, p)| i64::from(r) < span && u64::from(p) < self.size)
            && ix.times.iter().all(|&(_, r)| i64::from(r) < span);
        if !sane {
            return Ok(false);
        }
        // The last entry must point at a batch header that agrees with it.
        let (rel, pos) = ix.offsets[ix.offsets.len() - 1];
        let ok = match read_header(&self.log_file_uncached()?, u64::from(pos)) {
            Ok(raw) => check_batch_framing(&raw)
                .or_else(|e| match e {
                    RecordsError::Truncated { .. } => BatchHeader::parse(&raw),
                    e => Err(e),
                })
                .map(|h| h.last_offset() == self.base_offset + i64::from(rel))
                .unwrap_or(false),
            Err(_) => false,
        };
        if !ok {
            return Ok(false);
        }
        let (ts, trel) = ix.times[ix.times.len() - 1];
        ix.max_timestamp = ts;
        ix.max_timestamp_offset = self.base_offset + i64::from(trel);
        // Not known without a scan; segment.ms only matters for the active segment.
        ix.first_batch_timestamp = Some(ix.times[0].0);
        self.indexes = ix;
        self.next_offset = next_base;
        self.written = (self.indexes.offsets.len(), self.indexes.times.len());
        Ok(true)
    }

    /// Rewrites both index files from the in-memory indexes.
    pub fn rewrite_index_files(&mut self) -> Result<(), LogError> {
        let ob = self.indexes.offsets_bytes();
        let tb = self.indexes.times_bytes();
        // `create` truncates (and recreates a lost file).
        self.store
            .create_file(&self.dir, self.base_offset, SegmentFile::OffsetIndex)?
            .write_all_at(&ob, 0)
            .map_err(io_err("write", &self.offset_index_path))?;
        self.store
            .create_file(&self.dir, self.base_offset, SegmentFile::TimeIndex)?
            .write_all_at(&tb, 0)
            .map_err(io_err("write", &self.time_index_path))?;
        self.written = (self.indexes.offsets.len(), self.indexes.times.len());
        self.index_dirty = true;
        Ok(())
    }

    /// Handles of the `.index` and `.timeindex` (with their paths), so the
    /// log can fsync them without holding its lock.
    pub fn index_files_for_sync(&self) -> Result<[(Arc<File>, PathBuf); 2], LogError> {
        Ok([
            (self.offset_index_file()?, self.offset_index_path.clone()),
            (self.time_index_file()?, self.time_index_path.clone()),
        ])
    }

    /// Appends index entries not yet in the files.
    pub fn write_new_index_entries(&mut self) -> Result<(), LogError> {
        let (wo, wt) = self.written;
        if self.indexes.offsets.len() > wo {
            let mut buf = Vec::new();
            for (rel, pos) in &self.indexes.offsets[wo..] {
                buf.extend_from_slice(&rel.to_be_bytes());
                buf.extend_from_slice(&pos.to_be_bytes());
            }
            self.offset_index_file()?
                .write_all_at(&buf, (wo * OFFSET_ENTRY_BYTES) as u64)
                .map_err(io_err("write", &self.offset_index_path))?;
        }
        if self.indexes.times.len() > wt {
            let mut buf = Vec::new();
            for (ts, rel) in &self.indexes.times[wt..] {
                buf.extend_from_slice(&ts.to_be_bytes());
                buf.extend_from_slice(&rel.to_be_bytes());
            }
            self.time_index_file()?
                .write_all_at(&buf, (wt * TIME_ENTRY_BYTES) as u64)
                .map_err(io_err("write", &self.time_index_path))?;
        }
        self.written = (self.indexes.offsets.len(), self.indexes.times.len());
        Ok(())
    }

    /// Rebuilds the in-memory indexes from the batches (framing only, no CRC); `Bad` is returned as is.
    pub fn rebuild(
        &mut self,
        interval: u32,
        verify_crc_above: i64,
        mut on_batch: impl FnMut(&BatchHeader),
    ) -> Result<ScanEnd, LogError> {
        let mut ix = Indexes::new();
        let mut next = self.base_offset;
        let mut end = 0u64;
        let base = self.base_offset;
        let file = self.log_file_uncached()?;
        let verdict = scan(&file, self.size, base, verify_crc_above, |pos, h| {
            ix.add(base, pos, h, interval);
            next = h.next_offset();
            end = pos + h.total_size() as u64;
            on_batch(h);
        })
        .map_err(io_err("read", &self.log_path))?;
        self.indexes = ix;
        self.next_offset = next;
        if let ScanEnd::Bad { position, .. } = &verdict {
            debug_assert_eq!(*position, end);
        }
        Ok(verdict)
    }

    /// Cuts the `.log` file to `position` bytes (a batch boundary).
    pub fn truncate_file(&mut self, position: u64) -> Result<(), LogError> {
        self.log_file()?
            .set_len(position)
            .map_err(io_err("truncate", &self.log_path))?;
        self.size = position;
        Ok(())
    }

    /// Adds the final time index entry a sealed segment needs, then writes the index files.
    pub fn seal(&mut self) -> Result<(), LogError> {
        self.indexes.add_time_entry(self.base_offset);
        self.write_new_index_entries()?;
        // A sealed segment's indexes are trusted on open once the recovery
        // point passes it, so they must be durable by then.
        self.index_dirty = true;
        Ok(())
    }

    /// Reads every entry of the `.txnindex` and checks it against the
    /// segment's range `[base_offset, end_offset)`.
    pub fn read_txn_entries(
        &self,
        end_offset: i64,
    ) -> Result<Result<Vec<TxnIndexEntry>, TxnIndexDamage>, LogError> {
        let buf = self.read_file(SegmentFile::TxnIndex)?;
        Ok(txn_index::decode_all(&buf, self.base_offset, end_offset))
    }

    /// Loads the `.txnindex` of a segment ending at `end_offset`. Returns
    /// the offset from which its entries must be re-derived by replaying
    /// the log, or `None` if it is complete. A missing or damaged file is
    /// emptied and must be re-derived from the segment's base, unless
    /// `keep_prefix` (a segment recovery scanned, whose unsynced tail may be
    /// torn): then the entries before the first bad one are kept, the file is
    /// cut after them, and only markers past the last kept one are re-derived.
    pub fn load_txn_index(
        &mut self,
        end_offset: i64,
        keep_prefix: bool,
    ) -> Result<Option<i64>, LogError> {
        if self.txn_index_missing {
            tracing::warn!(file = %self.txn_index_path.display(), "transaction index is missing; rebuilding");
            self.clear_txn_index()?;
            return Ok(Some(self.base_offset));
        }
        let damage = match self.read_txn_entries(end_offset)? {
            Ok(entries) => {
                self.txn_entries = entries.len();
                self.last_txn_marker = entries.last().map_or(-1, |e| e.last_offset);
                return Ok(None);
            }
            Err(damage) => damage,
        };
        if !keep_prefix {
            tracing::warn!(file = %self.txn_index_path.display(), ?damage, "transaction index is damaged; rebuilding");
            self.clear_txn_index()?;
            return Ok(Some(self.base_offset));
        }
        let len = self
            .store
            .file_len(&self.dir, self.base_offset, SegmentFile::TxnIndex)?
            .ok_or_else(|| {
                io_err("stat", &self.txn_index_path)(std::io::ErrorKind::NotFound.into())
            })?;
        let keep = match damage {
            TxnIndexDamage::PartialEntry => (len as usize) / TXN_ENTRY_BYTES,
            TxnIndexDamage::BadEntry { index } => index,
        };
        tracing::warn!(file = %self.txn_index_path.display(), keep, ?damage, "cutting the damaged tail of a transaction index");
        self.truncate_txn_entries(keep)?;
        match self.read_txn_entries(end_offset)? {
            Ok(entries) => {
                self.last_txn_marker = entries.last().map_or(-1, |e| e.last_offset);
                Ok(Some(self.last_txn_marker.max(self.base_offset - 1) + 1))
            }
            Err(_) => {
                self.clear_txn_index()?;
                Ok(Some(self.base_offset))
            }
        }
    }

    /// Empties the `.txnindex` (before it is rebuilt by replay).
    pub fn clear_txn_index(&mut self) -> Result<(), LogError> {
        self.truncate_txn_entries(0)?;
        self.last_txn_marker = -1;
        self.txn_index_missing = false;
        Ok(())
    }

    fn truncate_txn_entries(&mut self, keep: usize) -> Result<(), LogError> {
        if keep == 0 {
            // Also recreates a missing file.
            self.store
                .create_file(&self.dir, self.base_offset, SegmentFile::TxnIndex)?;
        } else {
            self.txn_index_file()?
                .set_len((keep * TXN_ENTRY_BYTES) as u64)
                .map_err(io_err("truncate", &self.txn_index_path))?;
        }
        self.txn_entries = keep;
        self.txn_dirty = true;
        Ok(())
    }

    /// Drops the `.txnindex` entries whose marker is at or past `offset`
    /// (log truncation).
    pub fn truncate_txn_index_to(&mut self, offset: i64) -> Result<(), LogError> {
        if self.last_txn_marker < offset {
            return Ok(());
        }
        let entries = match self.read_txn_entries(i64::MAX)? {
            Ok(entries) => entries,
            Err(damage) => {
                return Err(LogError::Corrupt {
                    file: self.txn_index_path.clone(),
                    position: 0,
                    reason: format!("transaction index damaged: {damage:?}"),
                });
            }
        };
        let keep = entries.partition_point(|e| e.last_offset < offset);
        self.truncate_txn_entries(keep)?;
        self.last_txn_marker = keep.checked_sub(1).map_or(-1, |i| entries[i].last_offset);
        Ok(())
    }

    /// Appends one `.txnindex` entry. Entries come in marker order; the log
    /// asserts that before calling.
    pub fn append_txn_entry(&mut self, entry: &TxnIndexEntry) -> Result<(), LogError> {
        let mut buf = Vec::with_capacity(TXN_ENTRY_BYTES);
        entry.encode_into(&mut buf);
        self.txn_index_file()?
            .write_all_at(&buf, (self.txn_entries * TXN_ENTRY_BYTES) as u64)
            .map_err(io_err("write", &self.txn_index_path))?;
        self.txn_entries += 1;
        self.last_txn_marker = entry.last_offset;
        self.txn_dirty = true;
        Ok(())
    }

    /// The paths of the segment's four files.
    pub fn file_paths(&self) -> [PathBuf; 4] {
        [
            self.log_path.clone(),
            self.offset_index_path.clone(),
            self.time_index_path.clone(),
            self.txn_index_path.clone(),
        ]
    }

    /// Drops the segment's cached handles (the log is closing).
    pub fn forget_files(&self) {
        self.store.close_segment(&self.dir, self.base_offset);
    }

    /// Removes the segment's files, through the store.
    pub fn delete_files(&self, reason: DeleteReason) -> Result<(), LogError> {
        self.store
            .delete_segment(&self.dir, self.base_offset, reason)
    }
}
