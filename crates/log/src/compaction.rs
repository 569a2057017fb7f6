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

use sluice_records::{Batches, NextBatch};

use crate::cleaner::{self, CleanRules, CleanStats, CleanerError, OffsetMap, TxnData};
use crate::{Log, LogError, StagedSegment};

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
/// tombstone horizon (`delete.retention.ms`) and `min.compaction.lag.ms`.
pub fn clean_log(
    log: &Log,
    map: &mut OffsetMap,
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
        .map_or(range.first_dirty_offset, |s| s.0);
    let aborted = log.aborted_transactions(start, range.first_uncleanable_offset);
    let map_end = map_dirty_part(
        log,
        map,
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
    // One pass from the log start: markers need to know what came before.
    let mut txns = TxnData::default();
    for &(base, end) in range.segments.iter().filter(|(base, _)| *base < map_end) {
        match clean_segment(log, map, &rules, &mut txns, base, end)? {
            SegmentOutcome::Rewritten(stats) => {
                report.segments_rewritten += 1;
                report.stats += stats;
            }
            SegmentOutcome::Unchanged(stats) => report.stats += stats,
            // Retention or a truncation moved the log on: stop here and
            // keep the checkpoint where it was.
            SegmentOutcome::Moved => {
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

/// Maps `[from, stop)` in chunks until the range is done or the map is
/// full; returns the offset mapping reached (the end of the clean).
fn map_dirty_part(
    log: &Log,
    map: &mut OffsetMap,
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
        let progress = cleaner::build_offset_map(map, &bytes, pos, stop, aborted)?;
        if progress.map_full || progress.next_offset <= pos {
            return Ok(progress.next_offset.max(pos));
        }
        pos = progress.next_offset;
    }
    Ok(stop)
}

enum SegmentOutcome {
    Rewritten(CleanStats),
    Unchanged(CleanStats),
    Moved,
}

/// Rewrites segment `[base, end)` through a staged segment, chunk by
/// chunk, and installs it; a segment the clean would not change is left
/// alone, and costs reads only.
fn clean_segment(
    log: &Log,
    map: &OffsetMap,
    rules: &CleanRules<'_>,
    txns: &mut TxnData,
    base: i64,
    end: i64,
) -> Result<SegmentOutcome, CompactionError> {
    let mut stats = CleanStats::default();
    // Records below the log start (DeleteRecords inside this segment) are
    // gone already; the read starts at the log start.
    let start = base.max(log.log_start_offset());
    let mut pos = start;
    let mut out = Vec::new();
    let mut staged = None;
    while pos < end {
        let bytes = log.read(pos, READ_CHUNK_BYTES, end)?.to_bytes()?;
        let Some(next) = end_of_batches(&bytes) else {
            break;
        };
        out.clear();
        let chunk = cleaner::clean_batches(&bytes, map, rules, txns, &mut out)?;
        stats += chunk;
        if staged.is_none() && changes(&chunk) {
            // The first change: stage the segment, with the chunks before
            // this one copied as they are.
            let Some(mut fresh) = log.stage_segment(&[base])? else {
                return Ok(SegmentOutcome::Moved);
            };
            copy_unchanged(log, &mut fresh, start, pos)?;
            staged = Some(fresh);
        }
        if let Some(staged) = staged.as_mut() {
            log.write_staged(staged, &out)?;
        }
        pos = next;
    }
    let Some(staged) = staged else {
        return Ok(SegmentOutcome::Unchanged(stats));
    };
    if log.install_staged_segment(staged)? {
        Ok(SegmentOutcome::Rewritten(stats))
    } else {
        Ok(SegmentOutcome::Moved)
    }
}

/// True if a clean of a chunk removed or rewrote anything.
fn changes(stats: &CleanStats) -> bool {
    stats.records_kept < stats.records_read
        || stats.batches_written < stats.batches_read
        || stats.batches_rewritten > 0
}

/// Writes `[from, to)` of `log`, which the clean left unchanged, to
/// `staged` as it is.
fn copy_unchanged(
    log: &Log,
    staged: &mut StagedSegment,
    from: i64,
    to: i64,
) -> Result<(), CompactionError> {
    let mut pos = from;
    while pos < to {
        let bytes = log.read(pos, READ_CHUNK_BYTES, to)?.to_bytes()?;
        let Some(next) = end_of_batches(&bytes) else {
            break;
        };
        // Only whole batches below `to`: a read may run past it.
        let whole = batches_below(&bytes, to);
        log.write_staged(staged, &bytes[..whole])?;
        pos = next.min(to);
    }
    Ok(())
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
