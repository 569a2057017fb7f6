//! One clean of one log (Kafka's `Cleaner.clean`): the cleanable range
//! ([`Log::cleanable_range`]), the key → offset map over its dirty part
//! ([`crate::cleaner::build_offset_map`]), and the rewrite of every
//! cleanable segment the map reaches ([`crate::cleaner::clean_batches`])
//! through a staged segment ([`Log::stage_segment`]) swapped in
//! crash-safely. Then the cleaner checkpoint moves to where the map ended.
//!
//! Memory: the map (its capacity is the caller's, Kafka's
//! `log.cleaner.dedupe.buffer.size`) plus one read chunk and its cleaned
//! copy ([`READ_CHUNK_BYTES`]); a segment is never held whole.
//!
//! The broker's cleaner thread decides which log to clean and when
//! (dirty ratio, `max.compaction.lag.ms`, I/O throttle); this module cleans
//! the one it is given.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sluice_records::{Batches, NextBatch};

use crate::cleaner::{self, CleanRules, CleanStats, CleanerError, OffsetMap, TxnData};
use crate::{Log, LogError, SegmentSpan, StagedSegment};

/// Bytes read from the log per step, when mapping and when cleaning: the
/// cleaner's memory beside its map. A batch larger than this is still read
/// whole (a read returns at least one batch), so the bound is this or
/// `max.message.bytes`, whichever is larger.
pub const READ_CHUNK_BYTES: u32 = 8 * 1024 * 1024;

/// Why a clean failed. The log is unchanged by a failed clean, except for
/// segments already swapped in before the failure, which are complete.
#[derive(Debug, thiserror::Error)]
pub enum CompactionError {
    /// Reading or installing failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// A read could not be turned into plain batches (an encryption
    /// envelope that does not open).
    #[error("cannot read batches to clean: {0}")]
    Read(#[from] std::io::Error),
    /// The batches are malformed, or one batch has more keys than the map
    /// holds.
    #[error(transparent)]
    Cleaner(#[from] CleanerError),
}

/// What one clean did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanReport {
    /// Where the dirty part began.
    pub first_dirty_offset: i64,
    /// Everything below this is now compacted (the new checkpoint).
    pub cleaned_to: i64,
    /// Segments rewritten and swapped in.
    pub segments_rewritten: u64,
    /// What the rewrite kept and removed, over every segment.
    pub stats: CleanStats,
    /// Log size before and after.
    pub size_before: u64,
    /// Log size after.
    pub size_after: u64,
}

/// Cleans `log` once, if it is compacted and has a dirty part: `None`
/// when there was nothing to do. `high_watermark` bounds what may be
/// rewritten (only committed data is cleaned); `now_ms` places the
/// tombstone horizon (`delete.retention.ms`) and `min.compaction.lag.ms`;
/// `throttle` paces the bytes read and written.
pub fn clean_log(
    log: &Log,
    map: &mut OffsetMap,
    throttle: &mut IoThrottle,
    now_ms: i64,
    high_watermark: i64,
) -> Result<Option<CleanReport>, CompactionError> {
    let config = log.config();
    if !config.compact {
        return Ok(None);
    }
    let range = log.cleanable_range(now_ms, high_watermark)?;
    if range.first_dirty_offset >= range.first_uncleanable_offset {
        return Ok(None);
    }
    let start = range
        .segments
        .first()
        .map_or(range.first_dirty_offset, |s| s.base);
    let aborted = log.aborted_transactions(start, range.first_uncleanable_offset);
    let map_end = map_dirty_part(
        log,
        map,
        throttle,
        range.first_dirty_offset,
        range.first_uncleanable_offset,
        &aborted,
    )?;
    let rules = CleanRules {
        delete_horizon_ms: now_ms.saturating_sub(config.delete_retention_ms),
        aborted: &aborted,
        last_batch_of_producer: last_batches(log),
        clean_below: range.first_dirty_offset,
    };
    let mut report = CleanReport {
        first_dirty_offset: range.first_dirty_offset,
        cleaned_to: map_end,
        size_before: log.size_bytes(),
        ..CleanReport::default()
    };
    let mut pass = Pass {
        log,
        map,
        rules: &rules,
        // One pass from the log start: markers need to know what came before.
        txns: TxnData::default(),
        throttle,
    };
    let cleanable: Vec<SegmentSpan> = range
        .segments
        .into_iter()
        .filter(|s| s.base < map_end)
        .collect();
    for group in group_segments(&cleanable, config.segment_bytes) {
        match pass.clean_group(group)? {
            GroupOutcome::Rewritten(stats) => {
                report.segments_rewritten += group.len() as u64;
                report.stats += stats;
            }
            GroupOutcome::Unchanged(stats) => report.stats += stats,
            // Retention or a truncation moved the log on: stop here and
            // keep the checkpoint where it was.
            GroupOutcome::Moved => {
                report.cleaned_to = report.first_dirty_offset;
                report.size_after = log.size_bytes();
                return Ok(Some(report));
            }
        }
    }
    log.checkpoint_cleaned(map_end, now_ms)?;
    report.size_after = log.size_bytes();
    Ok(Some(report))
}

/// Splits consecutive segments into the runs that are cleaned into one
/// segment each (Kafka's `groupSegmentsBySize`): a run's segments hold at
/// most `segment_bytes` together, and its offsets stay within what a
/// segment's relative offsets can address. Small segments left by earlier
/// cleans are so merged; a segment at or past the size is a run alone.
pub fn group_segments(segments: &[SegmentSpan], segment_bytes: u64) -> Vec<&[SegmentSpan]> {
    let mut groups = Vec::new();
    let mut rest = segments;
    while let Some(first) = rest.first() {
        let mut size = first.size;
        let mut len = 1;
        while let Some(next) = rest.get(len) {
            let fits = size.saturating_add(next.size) <= segment_bytes
                && next.end.saturating_sub(first.base) <= MAX_SEGMENT_OFFSET_SPAN;
            if !fits {
                break;
            }
            size += next.size;
            len += 1;
        }
        let (group, tail) = rest.split_at(len);
        groups.push(group);
        rest = tail;
    }
    groups
}

/// The widest offset range one cleaned segment may cover: its index holds
/// offsets relative to its base as 32-bit values.
pub const MAX_SEGMENT_OFFSET_SPAN: i64 = i32::MAX as i64;

/// Paces the cleaner's disk traffic to a rate (Kafka's
/// `log.cleaner.io.max.bytes.per.second`): bytes are counted in windows of
/// [`THROTTLE_CHECK_INTERVAL`], and a window that ran faster than the rate
/// is followed by the sleep that brings it back to it.
#[derive(Debug)]
pub struct IoThrottle {
    bytes_per_second: f64,
    window_start: Option<Instant>,
    window_bytes: u64,
}

/// How often [`IoThrottle`] compares the bytes moved with its rate.
pub const THROTTLE_CHECK_INTERVAL: Duration = Duration::from_millis(300);

impl IoThrottle {
    /// A throttle at `bytes_per_second`; `None` or 0 means no limit.
    pub fn new(bytes_per_second: Option<u64>) -> IoThrottle {
        IoThrottle {
            bytes_per_second: bytes_per_second
                .filter(|&b| b > 0)
                .map_or(f64::INFINITY, |b| b as f64),
            window_start: None,
            window_bytes: 0,
        }
    }

    /// No limit.
    pub fn unlimited() -> IoThrottle {
        IoThrottle::new(None)
    }

    /// Counts `bytes` moved at `now`; returns how long to sleep before
    /// moving more (zero while within the rate).
    pub fn charge(&mut self, bytes: u64, now: Instant) -> Duration {
        if self.bytes_per_second.is_infinite() {
            return Duration::ZERO;
        }
        let start = *self.window_start.get_or_insert(now);
        self.window_bytes = self.window_bytes.saturating_add(bytes);
        let elapsed = now.saturating_duration_since(start);
        if elapsed < THROTTLE_CHECK_INTERVAL {
            return Duration::ZERO;
        }
        let due = Duration::from_secs_f64(self.window_bytes as f64 / self.bytes_per_second);
        self.window_start = None;
        self.window_bytes = 0;
        due.saturating_sub(elapsed)
    }

    /// [`IoThrottle::charge`], then the sleep it asks for.
    fn pace(&mut self, bytes: u64) {
        let pause = self.charge(bytes, Instant::now());
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
    }
}

/// Maps `[from, stop)` in chunks until the range is done or the map is
/// full; returns the offset mapping reached (the end of the clean).
fn map_dirty_part(
    log: &Log,
    map: &mut OffsetMap,
    throttle: &mut IoThrottle,
    from: i64,
    stop: i64,
    aborted: &[crate::AbortedTxn],
) -> Result<i64, CompactionError> {
    map.clear();
    let mut pos = from;
    while pos < stop {
        let bytes = log.read(pos, READ_CHUNK_BYTES, stop)?.to_bytes()?;
        if bytes.is_empty() {
            // Only gaps are left before `stop`.
            return Ok(stop);
        }
        throttle.pace(bytes.len() as u64);
        let progress = cleaner::build_offset_map(map, &bytes, pos, stop, aborted)?;
        if progress.map_full || progress.next_offset <= pos {
            return Ok(progress.next_offset.max(pos));
        }
        pos = progress.next_offset;
    }
    Ok(stop)
}

enum GroupOutcome {
    Rewritten(CleanStats),
    Unchanged(CleanStats),
    Moved,
}

/// What one pass over a log's cleanable segments carries from segment to
/// segment.
struct Pass<'a> {
    log: &'a Log,
    map: &'a OffsetMap,
    rules: &'a CleanRules<'a>,
    txns: TxnData,
    throttle: &'a mut IoThrottle,
}

impl Pass<'_> {
    /// Rewrites the consecutive segments of `group` into one staged
    /// segment, chunk by chunk, and installs it. A lone segment the clean
    /// would not change is left alone, and costs reads only.
    fn clean_group(&mut self, group: &[SegmentSpan]) -> Result<GroupOutcome, CompactionError> {
        let log = self.log;
        let (Some(first), Some(last)) = (group.first(), group.last()) else {
            return Ok(GroupOutcome::Unchanged(CleanStats::default()));
        };
        let bases: Vec<i64> = group.iter().map(|s| s.base).collect();
        let end = last.end;
        let mut stats = CleanStats::default();
        // Records below the log start (DeleteRecords inside this segment)
        // are gone already; the read starts at the log start.
        let start = first.base.max(log.log_start_offset());
        let mut pos = start;
        let mut out = Vec::new();
        let mut staged = None;
        // Merging segments is a change even if no record goes.
        let mut changed = group.len() > 1;
        while pos < end {
            let bytes = log.read(pos, READ_CHUNK_BYTES, end)?.to_bytes()?;
            let Some(next) = end_of_batches(&bytes) else {
                break;
            };
            out.clear();
            let chunk =
                cleaner::clean_batches(&bytes, self.map, self.rules, &mut self.txns, &mut out)?;
            stats += chunk;
            changed |= changes(&chunk);
            if staged.is_none() && changed {
                // The first change: stage the segment, with the chunks
                // before this one copied as they are.
                let Some(mut fresh) = log.stage_segment(&bases)? else {
                    return Ok(GroupOutcome::Moved);
                };
                self.copy_unchanged(&mut fresh, start, pos)?;
                staged = Some(fresh);
            }
            self.throttle.pace(bytes.len() as u64);
            if let Some(staged) = staged.as_mut() {
                log.write_staged(staged, &out)?;
                self.throttle.pace(out.len() as u64);
            }
            pos = next;
        }
        let Some(staged) = staged else {
            return Ok(GroupOutcome::Unchanged(stats));
        };
        if log.install_staged_segment(staged)? {
            Ok(GroupOutcome::Rewritten(stats))
        } else {
            Ok(GroupOutcome::Moved)
        }
    }

    /// Writes `[from, to)` of the log, which the clean left unchanged, to
    /// `staged` as it is.
    fn copy_unchanged(
        &mut self,
        staged: &mut StagedSegment,
        from: i64,
        to: i64,
    ) -> Result<(), CompactionError> {
        let mut pos = from;
        while pos < to {
            let bytes = self.log.read(pos, READ_CHUNK_BYTES, to)?.to_bytes()?;
            let Some(next) = end_of_batches(&bytes) else {
                break;
            };
            // Only whole batches below `to`: a read may run past it.
            let whole = batches_below(&bytes, to);
            self.log.write_staged(staged, &bytes[..whole])?;
            self.throttle.pace(2 * whole as u64);
            pos = next.min(to);
        }
        Ok(())
    }
}

/// True if a clean of a chunk removed or rewrote anything.
fn changes(stats: &CleanStats) -> bool {
    stats.records_kept < stats.records_read
        || stats.batches_written < stats.batches_read
        || stats.batches_rewritten > 0
}

/// The length of the prefix of `bytes` holding the batches that start
/// below `offset`.
fn batches_below(bytes: &[u8], offset: i64) -> usize {
    let mut len = 0;
    for item in Batches::without_crc(bytes) {
        match item {
            NextBatch::Complete {
                header,
                position,
                bytes: batch,
            } if header.base_offset < offset => len = position + batch.len(),
            _ => break,
        }
    }
    len
}

/// The offset after the last complete batch of `bytes`; `None` if there
/// is none.
fn end_of_batches(bytes: &[u8]) -> Option<i64> {
    let mut next = None;
    for item in Batches::without_crc(bytes) {
        match item {
            NextBatch::Complete { header, .. } => next = Some(header.next_offset()),
            _ => break,
        }
    }
    next
}

/// Producer id → last offset of its last batch, so the cleaner keeps that
/// batch (emptied if need be) and the producer's sequence state survives.
fn last_batches(log: &Log) -> HashMap<i64, i64> {
    log.producer_states()
        .into_iter()
        .filter_map(|(id, entry)| entry.batches.back().map(|b| (id, b.last_offset)))
        .collect()
}
