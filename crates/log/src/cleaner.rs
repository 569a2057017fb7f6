//! The pure core of log compaction (Kafka's LogCleaner): the key → offset
//! map and the rewrite of record batches by Kafka's retention rules.
//!
//! This module owns two steps and nothing else:
//! 1. [`build_offset_map`] reads batches and records, per key, the offset of
//!    its latest record in an [`OffsetMap`] (Kafka's dedupe buffer).
//! 2. [`clean_batches`] rewrites batches, keeping only what [`CleanRules`]
//!    and the map say must survive, with offsets preserved.
//!
//! It does no I/O and knows nothing about segments, files or locks: the
//! [`crate::Log`] decides which bytes to clean, supplies the aborted
//! transactions (from `.txnindex`) and the producers' last batches (from
//! producer state), and swaps the result in. Input is untrusted: malformed
//! bytes give a [`CleanerError`], never a panic.
//!
//! The caller must only pass bytes below the last stable offset (as Kafka
//! does): an open transaction cannot be judged yet.
//!
//! Where this differs from Kafka, on purpose, to stay pure and simple:
//! - Tombstone horizon: Kafka (KIP-534) stamps a batch with a delete
//!   horizon the first time a clean retains its tombstones and removes them
//!   `delete.retention.ms` after that clean. We compare the tombstone's own
//!   timestamp (baseTimestamp + timestampDelta; the batch's maxTimestamp
//!   under LogAppendTime) with [`CleanRules::delete_horizon_ms`] instead, so
//!   no header is rewritten just to carry the horizon. Not the batch's
//!   maxTimestamp: a rewrite lowers that, and the verdict on a tombstone
//!   would then depend on how many passes came before; a record's timestamp
//!   never changes, so cleaning in passes gives the result of one pass.
//!
//! Transaction markers follow Kafka's rule: a marker goes once its batch's
//! maxTimestamp is below the horizon *and* no data batch of its transaction
//! is left before it ([`TxnData`] tracks that over one pass from the log
//! start). A committed transaction's data that outlives its marker would
//! read as an open transaction to anyone rebuilding producer state from the
//! log (a follower replicating it, a restart without a snapshot), and the
//! last stable offset would never move past it again.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use sluice_records::batch::{LOG_OVERHEAD_BYTES, compute_crc};
use sluice_records::{
    BATCH_HEADER_BYTES, BatchHeader, Batches, NextBatch, Record, RecordsError, TimestampType,
    decode_records,
};

use crate::AbortedTxn;

/// Bytes of key hash kept per map entry: 128 bits of SHA-256, so two
/// distinct keys collide with probability ~2^-64 even across 2^32 keys
/// (Kafka keeps 16 bytes of MD5 for the same reason).
pub const KEY_HASH_BYTES: usize = 16;

/// Upper bound on the memory one [`OffsetMap`] entry costs, for turning a
/// byte budget (Kafka's `log.cleaner.dedupe.buffer.size`) into entries.
///
/// An entry is a 16-byte hash and an 8-byte offset plus one control byte in
/// the hash table; the table rounds its bucket count up to a power of two
/// at a 7/8 load factor, so a bucket array can be up to ~2.3 times the
/// entry count: 25 × 2.3 ≈ 57 bytes, rounded up to 64.
pub const MAX_BYTES_PER_ENTRY: usize = 64;

/// Errors of the cleaner: the input is not a well-formed run of batches, or
/// the map cannot hold even one batch.
#[derive(Debug, thiserror::Error)]
pub enum CleanerError {
    /// The input ends inside a batch.
    #[error("batch at byte {position} is truncated: {available} bytes present")]
    TruncatedBatch {
        /// Byte position of the partial batch in the input.
        position: usize,
        /// Bytes present from `position` to the end of the input.
        available: usize,
    },
    /// The bytes at `position` are not a valid batch (framing or CRC).
    #[error("corrupt batch at byte {position}: {source}")]
    CorruptBatch {
        /// Byte position of the batch in the input.
        position: usize,
        /// What is wrong.
        #[source]
        source: RecordsError,
    },
    /// The batch's records do not decode, decompress, or re-encode.
    #[error("records of the batch at offset {base_offset} are invalid: {source}")]
    Records {
        /// baseOffset of the batch.
        base_offset: i64,
        /// What is wrong.
        #[source]
        source: RecordsError,
    },
    /// A record's offsetDelta is outside the batch or not increasing.
    #[error(
        "record {index} of the batch at offset {base_offset} has offsetDelta {offset_delta} \
         (lastOffsetDelta {last_offset_delta}, previous {previous})"
    )]
    BadOffsetDelta {
        /// baseOffset of the batch.
        base_offset: i64,
        /// Index of the record in the batch.
        index: usize,
        /// Its offsetDelta.
        offset_delta: i32,
        /// The batch's lastOffsetDelta.
        last_offset_delta: i32,
        /// offsetDelta of the record before it (-1 for the first).
        previous: i32,
    },
    /// Batches are not in increasing offset order.
    #[error("batch at offset {base_offset} follows one that ends at offset {previous_last}")]
    OutOfOrder {
        /// baseOffset of the offending batch.
        base_offset: i64,
        /// Last offset of the batch before it.
        previous_last: i64,
    },
    /// The map is empty and still cannot hold the distinct keys of one batch.
    #[error(
        "offset map of {capacity} entries cannot hold the {keys} keys of the batch at offset {base_offset}"
    )]
    MapTooSmall {
        /// The map's capacity in entries.
        capacity: usize,
        /// Distinct keys the batch needs.
        keys: usize,
        /// baseOffset of the batch.
        base_offset: i64,
    },
    /// [`OffsetMap::put`] on a full map with a key it does not hold.
    #[error("offset map is full ({capacity} entries)")]
    MapFull {
        /// The map's capacity in entries.
        capacity: usize,
    },
}

/// A 128-bit hash of a record key; see [`KEY_HASH_BYTES`].
type KeyHash = [u8; KEY_HASH_BYTES];

/// The map's key: the first [`KEY_HASH_BYTES`] of the key's SHA-256.
fn hash_key(key: &[u8]) -> KeyHash {
    let digest = ring::digest::digest(&ring::digest::SHA256, key);
    let mut hash = [0u8; KEY_HASH_BYTES];
    hash.copy_from_slice(&digest.as_ref()[..KEY_HASH_BYTES]);
    hash
}

/// Kafka's dedupe buffer: a fixed-capacity map from a key's hash to the
/// offset of the latest record seen with that key.
///
/// Memory is reserved up front (at most [`MAX_BYTES_PER_ENTRY`] per entry)
/// so a clean never grows it. When the map is full the caller cleans what it
/// has mapped so far and maps the rest in a later pass.
#[derive(Debug, Clone)]
pub struct OffsetMap {
    /// Key hash → latest offset.
    entries: HashMap<KeyHash, i64>,
    /// Most entries the map will hold.
    capacity: usize,
    /// Largest offset put so far.
    latest_offset: Option<i64>,
}

impl OffsetMap {
    /// An empty map holding at most `entries` keys.
    pub fn with_capacity(entries: usize) -> OffsetMap {
        OffsetMap {
            entries: HashMap::with_capacity(entries),
            capacity: entries,
            latest_offset: None,
        }
    }

    /// Entries that fit in `buffer_bytes` of memory (at least one).
    pub fn capacity_for_bytes(buffer_bytes: usize) -> usize {
        (buffer_bytes / MAX_BYTES_PER_ENTRY).max(1)
    }

    /// Records `offset` as the latest for `key`; fails if the map is full and
    /// `key` is new. A smaller offset than the one held is ignored.
    pub fn put(&mut self, key: &[u8], offset: i64) -> Result<(), CleanerError> {
        self.put_hash(hash_key(key), offset)
    }

    fn put_hash(&mut self, hash: KeyHash, offset: i64) -> Result<(), CleanerError> {
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&hash) {
            return Err(CleanerError::MapFull {
                capacity: self.capacity,
            });
        }
        let latest = self.entries.entry(hash).or_insert(offset);
        *latest = (*latest).max(offset);
        self.latest_offset = Some(self.latest_offset.map_or(offset, |l| l.max(offset)));
        Ok(())
    }

    /// Offset of the latest record with `key`, if the map holds it.
    pub fn get(&self, key: &[u8]) -> Option<i64> {
        self.entries.get(&hash_key(key)).copied()
    }

    /// Largest offset put so far, `None` if nothing was.
    pub fn latest_offset(&self) -> Option<i64> {
        self.latest_offset
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if no key is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Most keys the map will hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Forgets every key, keeping the reserved memory (between passes).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.latest_offset = None;
    }
}

/// How far [`build_offset_map`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapProgress {
    /// The next offset to map: everything in `[start_offset, next_offset)` is
    /// mapped. Equals `stop_offset` once the range is done, unless the input
    /// ended before it.
    pub next_offset: i64,
    /// True if mapping stopped early, at a batch boundary, because the map
    /// is full: clean up to `next_offset`, clear the map, and continue there.
    pub map_full: bool,
    /// Keyed records put into the map by this call.
    pub records_mapped: u64,
}

/// Aborted transactions by producer id, for the "is this batch aborted" test.
#[derive(Debug, Default)]
struct AbortedIndex {
    /// producer id → (first offset, ABORT marker offset) of its aborted transactions.
    ranges: HashMap<i64, Vec<(i64, i64)>>,
}

impl AbortedIndex {
    fn new(aborted: &[AbortedTxn]) -> AbortedIndex {
        let mut ranges: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
        for txn in aborted {
            ranges
                .entry(txn.producer_id)
                .or_default()
                .push((txn.first_offset, txn.last_offset));
        }
        AbortedIndex { ranges }
    }

    /// True for a transactional data batch that belongs to an aborted transaction.
    fn is_aborted(&self, header: &BatchHeader) -> bool {
        if !header.is_transactional() || header.is_control() {
            return false;
        }
        self.ranges.get(&header.producer_id).is_some_and(|ranges| {
            ranges
                .iter()
                .any(|&(first, last)| first <= header.base_offset && header.base_offset <= last)
        })
    }
}

/// Walks the complete batches of `input` in offset order, turning a
/// truncated tail, a corrupt batch or a step back in offsets into an error.
/// `visit` returns false to stop early.
fn for_each_batch<'a>(
    input: &'a [u8],
    mut visit: impl FnMut(BatchHeader, &'a [u8]) -> Result<bool, CleanerError>,
) -> Result<(), CleanerError> {
    let mut previous_last: Option<i64> = None;
    for next in Batches::new(input) {
        match next {
            NextBatch::Complete { header, bytes, .. } => {
                if let Some(previous_last) = previous_last
                    && header.base_offset <= previous_last
                {
                    return Err(CleanerError::OutOfOrder {
                        base_offset: header.base_offset,
                        previous_last,
                    });
                }
                previous_last = Some(header.last_offset());
                if !visit(header, bytes)? {
                    return Ok(());
                }
            }
            NextBatch::TruncatedTail {
                position,
                available,
            } => {
                return Err(CleanerError::TruncatedBatch {
                    position,
                    available,
                });
            }
            NextBatch::Corrupt { position, error } => {
                return Err(CleanerError::CorruptBatch {
                    position,
                    source: error,
                });
            }
        }
    }
    Ok(())
}

/// Decodes the records of one batch and checks that their offsetDeltas are
/// increasing and within the batch (so every offset derived is one the
/// header vouches for). A batch emptied by an earlier clean has no body to decode.
fn decode_checked(header: &BatchHeader, batch: &[u8]) -> Result<Vec<Record>, CleanerError> {
    if header.record_count == 0 {
        return Ok(Vec::new());
    }
    let records =
        decode_records(&Bytes::copy_from_slice(batch)).map_err(|source| CleanerError::Records {
            base_offset: header.base_offset,
            source,
        })?;
    let mut previous = -1;
    for (index, record) in records.iter().enumerate() {
        if record.offset_delta <= previous || record.offset_delta > header.last_offset_delta {
            return Err(CleanerError::BadOffsetDelta {
                base_offset: header.base_offset,
                index,
                offset_delta: record.offset_delta,
                last_offset_delta: header.last_offset_delta,
                previous,
            });
        }
        previous = record.offset_delta;
    }
    Ok(records)
}

/// Timestamp of a record of the batch: its own under CreateTime, the
/// broker's (maxTimestamp) under LogAppendTime.
fn record_timestamp(header: &BatchHeader, record: &Record) -> i64 {
    match header.timestamp_type() {
        TimestampType::CreateTime => header.base_timestamp.saturating_add(record.timestamp_delta),
        TimestampType::LogAppendTime => header.max_timestamp,
    }
}

/// Absolute offset of a record of the batch.
fn record_offset(header: &BatchHeader, record: &Record) -> i64 {
    header
        .base_offset
        .saturating_add(i64::from(record.offset_delta))
}

/// Maps the latest offset of every key in `[start_offset, stop_offset)`.
///
/// Reads the batches of `batches` in order and puts each keyed record of a
/// data batch in that range into `map`. Control batches and records with a
/// null key are not mapped. Batches of the `aborted` transactions are not
/// mapped either (as in Kafka): an aborted record must not supersede the
/// committed record before it, since the clean removes it too.
///
/// Stops before the first batch whose new keys do not all fit, so a batch is
/// mapped whole or not at all; [`MapProgress::map_full`] then says so. Fails
/// with [`CleanerError::MapTooSmall`] if that batch does not fit an empty map.
pub fn build_offset_map(
    map: &mut OffsetMap,
    batches: &[u8],
    start_offset: i64,
    stop_offset: i64,
    aborted: &[AbortedTxn],
) -> Result<MapProgress, CleanerError> {
    let aborted = AbortedIndex::new(aborted);
    let mut progress = MapProgress {
        next_offset: start_offset,
        map_full: false,
        records_mapped: 0,
    };
    for_each_batch(batches, |header, bytes| {
        if header.base_offset >= stop_offset {
            progress.next_offset = stop_offset;
            return Ok(false);
        }
        if header.last_offset() < start_offset {
            return Ok(true);
        }
        if !header.is_control() && !aborted.is_aborted(&header) {
            let records = decode_checked(&header, bytes)?;
            let keyed: Vec<(KeyHash, i64)> = records
                .iter()
                .filter_map(|record| {
                    let offset = record_offset(&header, record);
                    let key = record.key.as_deref()?;
                    (start_offset <= offset && offset < stop_offset)
                        .then(|| (hash_key(key), offset))
                })
                .collect();
            let new_keys = keyed
                .iter()
                .filter(|(hash, _)| !map.entries.contains_key(hash))
                .map(|(hash, _)| *hash)
                .collect::<HashSet<KeyHash>>()
                .len();
            if map.len().saturating_add(new_keys) > map.capacity() {
                if map.is_empty() {
                    return Err(CleanerError::MapTooSmall {
                        capacity: map.capacity(),
                        keys: new_keys,
                        base_offset: header.base_offset,
                    });
                }
                progress.next_offset = header.base_offset.max(start_offset);
                progress.map_full = true;
                return Ok(false);
            }
            for (hash, offset) in keyed {
                map.put_hash(hash, offset)?;
                progress.records_mapped += 1;
            }
        }
        progress.next_offset = header.next_offset().min(stop_offset);
        Ok(true)
    })?;
    Ok(progress)
}

/// Producers whose current transaction still has a data batch in the
/// cleaned output, carried across the [`clean_batches`] calls of one pass
/// over a log from its start: their next marker must stay.
#[derive(Debug, Default)]
pub struct TxnData {
    with_data: HashSet<i64>,
}

impl TxnData {
    /// A data batch of `producer_id`'s transaction was written.
    fn kept_data(&mut self, producer_id: i64) {
        self.with_data.insert(producer_id);
    }

    /// A marker of `producer_id` ends its transaction: true if data of that
    /// transaction was kept.
    fn end(&mut self, producer_id: i64) -> bool {
        self.with_data.remove(&producer_id)
    }
}

/// What a clean must keep besides the latest record of each key.
#[derive(Debug, Clone, Default)]
pub struct CleanRules<'a> {
    /// Tombstones whose timestamp, and transaction markers whose batch's
    /// maxTimestamp, is below this are removed (Kafka: now −
    /// `delete.retention.ms`).
    pub delete_horizon_ms: i64,
    /// Aborted transactions (from `.txnindex`); their data batches are removed.
    pub aborted: &'a [AbortedTxn],
    /// Producer id → last offset of its last batch (from producer state).
    /// That batch is kept, emptied if need be, so the producer's epoch and
    /// sequence survive compaction.
    pub last_batch_of_producer: HashMap<i64, i64>,
    /// Everything below this offset was deduplicated by an earlier clean
    /// (the cleaner checkpoint): a tombstone there whose key is not in the
    /// map is its key's latest record, removed once past the horizon. 0
    /// (or less) when nothing was cleaned before.
    pub clean_below: i64,
}

impl CleanRules<'_> {
    /// True if a batch left without records must still be written (header only).
    pub fn retain_empty(&self, producer_id: i64, last_offset: i64) -> bool {
        producer_id >= 0 && self.last_batch_of_producer.get(&producer_id) == Some(&last_offset)
    }
}

/// Counts of one [`clean_batches`] call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanStats {
    /// Batches read.
    pub batches_read: u64,
    /// Batches written (copied, rewritten or emptied).
    pub batches_written: u64,
    /// Batches written with fewer records than they had.
    pub batches_rewritten: u64,
    /// Batches written with no records, to keep a producer's last batch.
    pub batches_emptied: u64,
    /// Records read.
    pub records_read: u64,
    /// Records written.
    pub records_kept: u64,
    /// Records removed because a later record has the same key.
    pub removed_superseded: u64,
    /// Tombstones removed because they are older than the horizon.
    pub removed_tombstones: u64,
    /// Records of aborted transactions removed.
    pub removed_aborted: u64,
    /// Records with a null key removed (invalid in a compacted topic).
    pub removed_null_key: u64,
    /// Transaction markers removed: older than the horizon, and no data of
    /// their transaction left.
    pub removed_markers: u64,
    /// Bytes read.
    pub bytes_in: u64,
    /// Bytes written.
    pub bytes_out: u64,
}

impl std::ops::AddAssign for CleanStats {
    /// Sums the counts of several calls (one clean of a log runs one per
    /// chunk).
    fn add_assign(&mut self, more: CleanStats) {
        self.batches_read += more.batches_read;
        self.batches_written += more.batches_written;
        self.batches_rewritten += more.batches_rewritten;
        self.batches_emptied += more.batches_emptied;
        self.records_read += more.records_read;
        self.records_kept += more.records_kept;
        self.removed_superseded += more.removed_superseded;
        self.removed_tombstones += more.removed_tombstones;
        self.removed_aborted += more.removed_aborted;
        self.removed_null_key += more.removed_null_key;
        self.removed_markers += more.removed_markers;
        self.bytes_in += more.bytes_in;
        self.bytes_out += more.bytes_out;
    }
}

/// Rewrites the batches of `input` into `out`, keeping what compaction keeps.
///
/// `input` holds whole batches in offset order, normally all below the end
/// of what `map` covers (records past it are kept, so cleaning them is only
/// wasted work). For each record:
/// - a null key: removed;
/// - a key the map holds at a larger offset: removed (superseded);
/// - a tombstone the map holds at exactly its offset, or one below
///   [`CleanRules::clean_below`] whose key the map does not hold: removed
///   if its timestamp is below [`CleanRules::delete_horizon_ms`], else kept;
/// - otherwise kept (including keys the map does not hold: they are newer
///   than what was mapped).
///
/// Data batches of aborted transactions are removed whole; marker batches
/// are removed once older than the horizon, unless `txns` says data of
/// their transaction was kept (`txns` must have seen every batch of the log
/// before `input` in this pass). A batch keeps its offsets
/// (baseOffset, lastOffsetDelta, each record's offsetDelta and
/// timestampDelta), its producer fields, leader epoch and attributes; a
/// batch that keeps every record is copied byte for byte; one that loses
/// some is re-encoded, recompressed with its codec, its recordCount, CRC
/// and (from the kept records) maxTimestamp recomputed. A batch left empty
/// is dropped unless [`CleanRules::retain_empty`] keeps its header, which
/// is then written with no body and no codec, as Kafka writes it.
pub fn clean_batches(
    input: &[u8],
    map: &OffsetMap,
    rules: &CleanRules<'_>,
    txns: &mut TxnData,
    out: &mut Vec<u8>,
) -> Result<CleanStats, CleanerError> {
    let aborted = AbortedIndex::new(rules.aborted);
    let mut stats = CleanStats::default();
    let out_start = out.len();
    for_each_batch(input, |header, bytes| {
        stats.batches_read += 1;
        stats.bytes_in += bytes.len() as u64;
        let marker_past_horizon = header.max_timestamp < rules.delete_horizon_ms;
        let read = u64::try_from(header.record_count).unwrap_or(0);
        // Whole-batch verdicts first: these need no decoding.
        let kept: Option<Vec<Record>> = if header.is_control() {
            stats.records_read += read;
            let data_left = txns.end(header.producer_id);
            if marker_past_horizon && !data_left {
                stats.removed_markers += read;
                Some(Vec::new())
            } else {
                None
            }
        } else if aborted.is_aborted(&header) {
            stats.records_read += read;
            stats.removed_aborted += read;
            Some(Vec::new())
        } else {
            let records = decode_checked(&header, bytes)?;
            stats.records_read += records.len() as u64;
            let total = records.len();
            let kept: Vec<Record> = records
                .into_iter()
                .filter(|record| keep_record(&header, record, map, rules, &mut stats))
                .collect();
            (kept.len() < total || total == 0).then_some(kept)
        };
        match kept {
            // Nothing removed: the original bytes, untouched.
            None => {
                stats.records_kept += read;
                out.extend_from_slice(bytes);
                if header.is_transactional() && !header.is_control() {
                    txns.kept_data(header.producer_id);
                }
            }
            Some(kept) if kept.is_empty() => {
                if !rules.retain_empty(header.producer_id, header.last_offset()) {
                    return Ok(true);
                }
                if header.is_transactional() && !header.is_control() {
                    txns.kept_data(header.producer_id);
                }
                stats.batches_emptied += 1;
                write_batch(&header, &[], out)?;
            }
            Some(kept) => {
                stats.batches_rewritten += 1;
                stats.records_kept += kept.len() as u64;
                write_batch(&header, &kept, out)?;
                if header.is_transactional() {
                    txns.kept_data(header.producer_id);
                }
            }
        }
        stats.batches_written += 1;
        Ok(true)
    })?;
    stats.bytes_out = (out.len() - out_start) as u64;
    Ok(stats)
}

/// The per-record rule of [`clean_batches`]; counts what it removes.
fn keep_record(
    header: &BatchHeader,
    record: &Record,
    map: &OffsetMap,
    rules: &CleanRules<'_>,
    stats: &mut CleanStats,
) -> bool {
    let Some(key) = record.key.as_deref() else {
        stats.removed_null_key += 1;
        return false;
    };
    let offset = record_offset(header, record);
    let Some(latest) = map.get(key) else {
        // Not in the map: newer than what was mapped, or in the part an
        // earlier clean already deduplicated (below `clean_below`), where
        // a tombstone is its key's latest record and goes once past the
        // horizon, as Kafka's cleaner removes it.
        if record.value.is_none()
            && offset < rules.clean_below
            && record_timestamp(header, record) < rules.delete_horizon_ms
        {
            stats.removed_tombstones += 1;
            return false;
        }
        return true;
    };
    if offset < latest {
        stats.removed_superseded += 1;
        return false;
    }
    // Only a tombstone at exactly the mapped offset is known to be the
    // latest. One past the map's coverage (offset > latest) stays: removing
    // it would bring back the value the map holds for its key, which the
    // map says is the latest and so is kept.
    if record.value.is_none()
        && offset == latest
        && record_timestamp(header, record) < rules.delete_horizon_ms
    {
        stats.removed_tombstones += 1;
        return false;
    }
    true
}

/// Appends a batch with `header`'s offsets, producer fields and attributes
/// holding `records` (re-encoded and recompressed with the batch's codec).
///
/// An empty batch is written as a bare header with its compression bits
/// cleared, as Kafka writes them: there is no body to decompress.
fn write_batch(
    header: &BatchHeader,
    records: &[Record],
    out: &mut Vec<u8>,
) -> Result<(), CleanerError> {
    let records_error = |source| CleanerError::Records {
        base_offset: header.base_offset,
        source,
    };
    let codec = header.compression().map_err(records_error)?;
    let (body, attributes) = if records.is_empty() {
        (Vec::new(), header.attributes & !COMPRESSION_BITS)
    } else {
        let mut plain = Vec::new();
        for record in records {
            record.encode(&mut plain);
        }
        (
            codec.compress(&plain).map_err(records_error)?,
            header.attributes,
        )
    };
    // An empty batch keeps the maxTimestamp it had, as in Kafka.
    let max_timestamp = records
        .iter()
        .map(|record| record_timestamp(header, record))
        .max()
        .unwrap_or(header.max_timestamp);
    let total = BATCH_HEADER_BYTES + body.len();
    let too_large = |_| {
        records_error(RecordsError::BatchTooLarge {
            size: total,
            max: i32::MAX as usize,
        })
    };
    let rewritten = BatchHeader {
        batch_length: i32::try_from(total - LOG_OVERHEAD_BYTES).map_err(too_large)?,
        crc: 0,
        attributes,
        max_timestamp,
        record_count: i32::try_from(records.len()).map_err(too_large)?,
        ..*header
    };
    let start = out.len();
    out.resize(start + BATCH_HEADER_BYTES, 0);
    rewritten.write_to(&mut out[start..]);
    out.extend_from_slice(&body);
    let crc = compute_crc(&out[start..]);
    out[start + CRC_FIELD..start + CRC_FIELD + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// Attributes bits 0-2: the compression codec.
const COMPRESSION_BITS: i16 = 0x07;
/// Byte position of the CRC field in a batch header.
const CRC_FIELD: usize = 17;
