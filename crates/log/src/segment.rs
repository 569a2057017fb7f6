//! One segment: a `.log` file of whole RecordBatch v2 batches plus its sparse
//! `.index` (relative offset → position) and `.timeindex` (timestamp →
//! relative offset), kept in memory and appended to their files, and its
//! `.txnindex` (aborted transactions), which stays on disk: only its entry
//! count is kept in memory.
//!
//! This module does the file I/O of one segment and the recovery scan. It
//! knows nothing about other segments, checkpoints or locking; `log.rs` does.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sluice_records::batch::check_batch_framing;
use sluice_records::{BATCH_HEADER_BYTES, BatchHeader, RecordsError, check_batch};

use crate::error::LogError;
use crate::txn_index::{self, TXN_ENTRY_BYTES, TxnIndexDamage, TxnIndexEntry};

/// Size of one `.index` entry: relative offset u32 + position u32.
pub const OFFSET_ENTRY_BYTES: usize = 8;
/// Size of one `.timeindex` entry: timestamp i64 + relative offset u32.
pub const TIME_ENTRY_BYTES: usize = 12;

/// Chunk size for the resync search that tells a torn tail from interior damage.
const RESYNC_WINDOW_BYTES: usize = 8 * 1024 * 1024;

/// File name stem of a segment: its base offset, zero-padded to 20 digits.
pub fn file_stem(base_offset: i64) -> String {
    format!("{base_offset:020}")
}

/// Paths of a segment's three files.
pub fn paths(dir: &Path, base_offset: i64) -> [PathBuf; 3] {
    let stem = file_stem(base_offset);
    [
        dir.join(format!("{stem}.log")),
        dir.join(format!("{stem}.index")),
        dir.join(format!("{stem}.timeindex")),
    ]
}

/// Path of a segment's aborted-transaction index.
pub fn txn_index_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{}.txnindex", file_stem(base_offset)))
}

pub(crate) fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> LogError {
    let path = path.to_path_buf();
    move |source| LogError::Io { op, path, source }
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

/// One open segment.
#[derive(Debug)]
pub struct Segment {
    /// Offset of the first batch (also the file name).
    pub base_offset: i64,
    /// The `.log` file, shared with readers' [`crate::FileSlice`]s.
    pub log: Arc<File>,
    offset_index_file: File,
    time_index_file: File,
    /// Path of the `.log` file (for errors).
    pub log_path: PathBuf,
    /// Bytes of whole batches in the `.log` file.
    pub size: u64,
    /// Offset after the last batch (`base_offset` if empty).
    pub next_offset: i64,
    /// In-memory indexes.
    pub indexes: Indexes,
    /// Entries already written to the index files.
    written: (usize, usize),
    /// The `.txnindex` file, shared with readers planned under the log lock.
    pub txn_index: Arc<File>,
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

fn open_rw(path: &Path, truncate: bool) -> Result<File, LogError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(truncate)
        .open(path)
        .map_err(io_err("open", path))
}

impl Segment {
    /// Creates an empty segment (truncating any stale files of that name).
    pub fn create(dir: &Path, base_offset: i64) -> Result<Segment, LogError> {
        let [log_path, idx, tidx] = paths(dir, base_offset);
        // Created with the segment, even while it holds no entry, so that a
        // missing file on open unambiguously means "lost": see the design doc.
        let txn_index_path = txn_index_path(dir, base_offset);
        Ok(Segment {
            base_offset,
            log: Arc::new(open_rw(&log_path, true)?),
            offset_index_file: open_rw(&idx, true)?,
            time_index_file: open_rw(&tidx, true)?,
            log_path,
            size: 0,
            next_offset: base_offset,
            indexes: Indexes::new(),
            written: (0, 0),
            txn_index: Arc::new(open_rw(&txn_index_path, true)?),
            txn_index_path,
            txn_entries: 0,
            last_txn_marker: -1,
            txn_dirty: false,
            txn_index_missing: false,
            index_dirty: false,
        })
    }

    /// Opens a segment's files without reading them; the caller then loads or rebuilds indexes.
    pub fn open_files(dir: &Path, base_offset: i64) -> Result<Segment, LogError> {
        let [log_path, idx, tidx] = paths(dir, base_offset);
        let log = open_rw(&log_path, false)?;
        let size = log.metadata().map_err(io_err("stat", &log_path))?.len();
        let txn_index_path = txn_index_path(dir, base_offset);
        let txn_index_missing = !txn_index_path.exists();
        Ok(Segment {
            base_offset,
            log: Arc::new(log),
            offset_index_file: open_rw(&idx, false)?,
            time_index_file: open_rw(&tidx, false)?,
            log_path,
            size,
            next_offset: base_offset,
            indexes: Indexes::new(),
            written: (0, 0),
            txn_index: Arc::new(open_rw(&txn_index_path, false)?),
            txn_index_path,
            txn_entries: 0,
            last_txn_marker: -1,
            txn_dirty: false,
            txn_index_missing,
            index_dirty: false,
        })
    }

    /// Path of a sibling file of this segment.
    fn sibling(&self, ext: &str) -> PathBuf {
        self.log_path.with_extension(ext)
    }

    /// Loads the index files of a sealed segment whose next segment starts at
    /// `next_base`; returns false if they look inconsistent (then rebuild).
    pub fn load_sealed_indexes(&mut self, next_base: i64) -> Result<bool, LogError> {
        let read = |f: &File, path: PathBuf| -> Result<Vec<u8>, LogError> {
            let len = f.metadata().map_err(io_err("stat", &path))?.len();
            let mut buf = vec![0u8; len as usize];
            f.read_exact_at(&mut buf, 0)
                .map_err(io_err("read", &path))?;
            Ok(buf)
        };
        let ob = read(&self.offset_index_file, self.sibling("index"))?;
        let tb = read(&self.time_index_file, self.sibling("timeindex"))?;
        if ob.len() % OFFSET_ENTRY_BYTES != 0 || tb.len() % TIME_ENTRY_BYTES != 0 {
            return Ok(false);
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
        let span = next_base - self.base_offset;
        let sane = self.size > 0
            && !ix.offsets.is_empty()
            && !ix.times.is_empty()
            && ix
                .offsets
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1)
            && ix
                .times
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1)
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
        let ok = match read_header(&self.log, u64::from(pos)) {
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
        let (idx, tidx) = (self.sibling("index"), self.sibling("timeindex"));
        self.offset_index_file
            .set_len(0)
            .map_err(io_err("truncate", &idx))?;
        self.offset_index_file
            .write_all_at(&ob, 0)
            .map_err(io_err("write", &idx))?;
        self.time_index_file
            .set_len(0)
            .map_err(io_err("truncate", &tidx))?;
        self.time_index_file
            .write_all_at(&tb, 0)
            .map_err(io_err("write", &tidx))?;
        self.written = (self.indexes.offsets.len(), self.indexes.times.len());
        self.index_dirty = true;
        Ok(())
    }

    /// Duplicated handles of the `.index` and `.timeindex` (with their
    /// paths), so the log can fsync them without holding its lock.
    pub fn index_files_for_sync(&self) -> std::io::Result<[(File, PathBuf); 2]> {
        Ok([
            (self.offset_index_file.try_clone()?, self.sibling("index")),
            (self.time_index_file.try_clone()?, self.sibling("timeindex")),
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
            let path = self.sibling("index");
            self.offset_index_file
                .write_all_at(&buf, (wo * OFFSET_ENTRY_BYTES) as u64)
                .map_err(io_err("write", &path))?;
        }
        if self.indexes.times.len() > wt {
            let mut buf = Vec::new();
            for (ts, rel) in &self.indexes.times[wt..] {
                buf.extend_from_slice(&ts.to_be_bytes());
                buf.extend_from_slice(&rel.to_be_bytes());
            }
            let path = self.sibling("timeindex");
            self.time_index_file
                .write_all_at(&buf, (wt * TIME_ENTRY_BYTES) as u64)
                .map_err(io_err("write", &path))?;
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
        let verdict = scan(&self.log, self.size, base, verify_crc_above, |pos, h| {
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
        self.log
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
        let path = &self.txn_index_path;
        let len = self
            .txn_index
            .metadata()
            .map_err(io_err("stat", path))?
            .len();
        let mut buf = vec![0u8; len as usize];
        self.txn_index
            .read_exact_at(&mut buf, 0)
            .map_err(io_err("read", path))?;
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
            .txn_index
            .metadata()
            .map_err(io_err("stat", &self.txn_index_path))?
            .len();
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
        self.txn_index
            .set_len((keep * TXN_ENTRY_BYTES) as u64)
            .map_err(io_err("truncate", &self.txn_index_path))?;
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
        self.txn_index
            .write_all_at(&buf, (self.txn_entries * TXN_ENTRY_BYTES) as u64)
            .map_err(io_err("write", &self.txn_index_path))?;
        self.txn_entries += 1;
        self.last_txn_marker = entry.last_offset;
        self.txn_dirty = true;
        Ok(())
    }

    /// Removes the segment's files.
    pub fn delete_files(&self) -> Result<(), LogError> {
        for path in [
            self.log_path.clone(),
            self.sibling("index"),
            self.sibling("timeindex"),
            self.txn_index_path.clone(),
        ] {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("delete", &path)(e)),
            }
        }
        Ok(())
    }
}
