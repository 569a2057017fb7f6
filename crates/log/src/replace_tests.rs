//! The log's side of compaction: `Log::replace_segments`, the install step
//! (sealed segments swapped for one rewritten segment whose batches keep
//! their offsets; the log reads through the gaps and a reopen accepts
//! them), and `Log::cleanable_range` with the cleaner checkpoint.

use std::sync::Arc;

use bytes::Bytes;
use sluice_records::{BatchHeader, Batches, NextBatch};

use crate::compaction_tests::record;
use crate::encryption::{KEY_BYTES, Keyring};
use crate::{Log, LogConfig};

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 128,
        retention_ms: -1,
        compact: true,
        delete: false,
        ..LogConfig::default()
    }
}

/// Every batch of the log from its start: (base offset, bytes).
fn batches(log: &Log) -> Vec<(BatchHeader, Bytes)> {
    let bytes = log
        .read(log.log_start_offset(), u32::MAX, i64::MAX)
        .unwrap()
        .to_bytes()
        .unwrap();
    Batches::new(&bytes)
        .map(|item| match item {
            NextBatch::Complete { header, bytes, .. } => (header, Bytes::copy_from_slice(bytes)),
            other => panic!("bad read: {other:?}"),
        })
        .collect()
}

/// A log of 60 one-record batches over several segments.
fn filled(dir: &std::path::Path, config: LogConfig) -> Log {
    let log = Log::open(dir, config).unwrap();
    for i in 0..60 {
        log.append(
            record(&format!("k{}", i % 5), Some(&format!("v{i}")), i),
            0,
            0,
        )
        .unwrap();
    }
    assert!(log.segment_bases().len() > 4, "small segments rolled");
    log
}

/// What a cleaner would write for `replaced`: the batches of those segments
/// whose offset `keep` accepts, bytes unchanged.
fn kept(log: &Log, replaced: &[i64], end: i64, keep: impl Fn(i64) -> bool) -> Vec<u8> {
    let mut out = Vec::new();
    for (header, bytes) in batches(log) {
        if header.base_offset >= replaced[0] && header.base_offset < end && keep(header.base_offset)
        {
            out.extend_from_slice(&bytes);
        }
    }
    out
}

#[test]
fn replaced_segments_keep_offsets_read_through_gaps_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let log = filled(dir.path(), config());
    let before = batches(&log);
    let bases = log.segment_bases();
    let replaced = &bases[0..2];
    let end = bases[2];
    // Keep even offsets only; the segments' last batch goes too when odd.
    let cleaned = kept(&log, replaced, end, |o| o % 2 == 0);
    let size_before = log.size_bytes();
    assert!(log.replace_segments(replaced, &cleaned).unwrap());
    assert_eq!(log.segment_bases()[0], bases[0]);
    assert_eq!(log.segment_bases().len(), bases.len() - 1);
    assert!(log.size_bytes() < size_before);

    let expect: Vec<(i64, Bytes)> = before
        .iter()
        .filter(|(h, _)| h.base_offset >= end || h.base_offset % 2 == 0)
        .map(|(h, b)| (h.base_offset, b.clone()))
        .collect();
    let got = |log: &Log| -> Vec<(i64, Bytes)> {
        batches(log)
            .into_iter()
            .map(|(h, b)| (h.base_offset, b))
            .collect()
    };
    assert_eq!(got(&log), expect);
    assert_eq!(log.log_start_offset(), 0);
    assert_eq!(log.log_end_offset(), 60);
    // A read from an offset that is now a gap starts at the next batch.
    let from_gap = log.read(1, u32::MAX, i64::MAX).unwrap().to_bytes().unwrap();
    let first = Batches::new(&from_gap).next().unwrap();
    let NextBatch::Complete { header, .. } = first else {
        panic!("{first:?}")
    };
    assert_eq!(header.base_offset, 2);
    // Appends go on, and a reopen accepts the gaps and rebuilt indexes.
    log.append(record("k9", Some("after"), 99), 0, 0).unwrap();
    log.flush().unwrap();
    let after = got(&log);
    drop(log);
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(got(&log), after);
    assert_eq!(log.log_end_offset(), 61);
}

#[test]
fn an_emptied_segment_and_a_stale_or_bad_replacement() {
    let dir = tempfile::tempdir().unwrap();
    let log = filled(dir.path(), config());
    let bases = log.segment_bases();
    // Every batch of the first segment removed: an empty segment stays,
    // holding the range.
    assert!(log.replace_segments(&bases[0..1], &[]).unwrap());
    assert_eq!(batches(&log)[0].0.base_offset, bases[1]);
    assert_eq!(log.log_start_offset(), 0);
    // A read from the emptied range starts at the next segment's first batch.
    assert!(
        !log.read(0, 1024, i64::MAX)
            .unwrap()
            .to_bytes()
            .unwrap()
            .is_empty()
    );

    // Segments that are no longer the log's: nothing happens.
    assert!(!log.replace_segments(&[bases[1] + 1], &[]).unwrap());
    // Not consecutive, or the active segment: nothing happens.
    assert!(!log.replace_segments(&[bases[1], bases[3]], &[]).unwrap());
    let active = *log.segment_bases().last().unwrap();
    assert!(!log.replace_segments(&[active], &[]).unwrap());

    // Batches outside the replaced range are refused before anything is written.
    let outside = kept(&log, &bases[2..3], i64::MAX, |o| o >= bases[3]);
    let before = batches(&log);
    assert!(log.replace_segments(&bases[2..3], &outside).is_err());
    assert_eq!(batches(&log), before);
    assert!(!log.is_offline());
}

#[test]
fn an_encrypted_log_stays_encrypted_after_a_replacement() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = Arc::new(Keyring::new(vec![(1, [7u8; KEY_BYTES])], 1).unwrap());
    let config = LogConfig {
        encryption: Some(keyring),
        ..config()
    };
    let log = filled(dir.path(), config.clone());
    let bases = log.segment_bases();
    let cleaned = kept(&log, &bases[0..1], bases[1], |o| o % 3 == 0);
    assert!(log.replace_segments(&bases[0..1], &cleaned).unwrap());
    let read = batches(&log);
    assert!(
        read.iter()
            .all(|(h, _)| h.base_offset >= bases[1] || h.base_offset % 3 == 0)
    );
    // The values are nowhere in the clear on disk.
    let on_disk = std::fs::read(dir.path().join(format!("{:020}.log", bases[0]))).unwrap();
    assert!(!on_disk.windows(2).any(|w| w == b"v3"));
    drop(log);
    let log = Log::open(dir.path(), config).unwrap();
    assert_eq!(batches(&log), read);
}

#[test]
fn the_cleanable_range_stops_at_the_active_segment_the_bounds_and_the_lag() {
    let dir = tempfile::tempdir().unwrap();
    let log = filled(dir.path(), config());
    log.flush().unwrap();
    let bases = log.segment_bases();
    let active = *bases.last().unwrap();

    let all = log.cleanable_range(1_000, i64::MAX).unwrap();
    assert_eq!(all.first_dirty_offset, 0);
    assert_eq!(
        all.first_uncleanable_offset, active,
        "never the active segment"
    );
    assert_eq!(all.segments.len(), bases.len() - 1);
    assert_eq!(all.clean_bytes, 0);
    assert_eq!(all.dirty_ratio_permille(), 1000);

    // The high watermark bounds it to the segments wholly below it.
    let hw = bases[2] + 1;
    let bounded = log.cleanable_range(1_000, hw).unwrap();
    assert_eq!(bounded.first_uncleanable_offset, bases[2]);
    assert_eq!(
        bounded
            .segments
            .iter()
            .map(|s| (s.base, s.end))
            .collect::<Vec<_>>(),
        vec![(bases[0], bases[1]), (bases[1], bases[2])]
    );

    // min.compaction.lag.ms: records younger than the lag stay dirty and
    // uncleanable (timestamps in this log are 0..60).
    log.update_config(LogConfig {
        min_compaction_lag_ms: 1_000,
        ..config()
    });
    assert!(
        log.cleanable_range(500, i64::MAX)
            .unwrap()
            .segments
            .is_empty()
    );
    assert_eq!(
        log.cleanable_range(1_000_000, i64::MAX)
            .unwrap()
            .first_uncleanable_offset,
        active
    );
    log.update_config(config());

    // The checkpoint splits clean from dirty, survives a reopen, and a
    // checkpoint past the log end (after a truncation) counts for nothing.
    log.checkpoint_cleaned(bases[2], 0).unwrap();
    let after = log.cleanable_range(1_000, i64::MAX).unwrap();
    assert_eq!(after.first_dirty_offset, bases[2]);
    assert!(after.clean_bytes > 0 && after.dirty_bytes > 0);
    assert!(after.dirty_ratio_permille() < 1000);
    drop(log);
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(
        log.cleanable_range(1_000, i64::MAX)
            .unwrap()
            .first_dirty_offset,
        bases[2]
    );
    log.checkpoint_cleaned(10_000, 0).unwrap();
    assert_eq!(
        log.cleanable_range(1_000, i64::MAX)
            .unwrap()
            .first_dirty_offset,
        0
    );
}

#[test]
fn a_staged_segment_takes_its_batches_in_chunks_in_offset_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = filled(dir.path(), config());
    let bases = log.segment_bases();
    let (replaced, end) = (&bases[0..2], bases[2]);
    let early = kept(&log, replaced, bases[1], |_| true);
    let late = kept(&log, &bases[1..2], end, |o| o % 2 == 1);
    let mut staged = log.stage_segment(replaced).unwrap().unwrap();
    log.write_staged(&mut staged, &early).unwrap();
    // A chunk that goes back in offsets is refused.
    assert!(log.write_staged(&mut staged, &early).is_err());
    log.write_staged(&mut staged, &late).unwrap();
    assert!(log.install_staged_segment(staged).unwrap());
    let offsets: Vec<i64> = batches(&log)
        .iter()
        .map(|(h, _)| h.base_offset)
        .take_while(|&o| o < end)
        .collect();
    let expect: Vec<i64> = (0..end).filter(|&o| o < bases[1] || o % 2 == 1).collect();
    assert_eq!(offsets, expect);
}
