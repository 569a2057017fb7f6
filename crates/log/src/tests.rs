//! Behaviour tests of the log against temp directories.

use std::fs::OpenOptions;
use std::path::Path;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use sluice_records::{BatchBuilder, BatchHeader, Batches, NewRecord, NextBatch, TimestampType};

use crate::error::{KAFKA_STORAGE_ERROR, OFFSET_OUT_OF_RANGE};
use crate::{FlushPolicy, Log, LogConfig, LogError};

fn batch(records: usize, value_bytes: usize, ts: i64) -> BytesMut {
    let mut b = BatchBuilder::new();
    for i in 0..records {
        b.push(NewRecord {
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(vec![b'v'; value_bytes])),
            headers: vec![],
            timestamp_ms: ts + i as i64,
        });
    }
    b.build().unwrap()
}

fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 256,
        ..LogConfig::default()
    }
}

fn read_all(log: &Log) -> Vec<(BatchHeader, Bytes)> {
    let r = log
        .read(log.log_start_offset(), u32::MAX, i64::MAX)
        .unwrap()
        .to_bytes()
        .unwrap();
    let mut out = Vec::new();
    for item in Batches::new(&r) {
        match item {
            NextBatch::Complete { header, bytes, .. } => {
                out.push((header, Bytes::copy_from_slice(bytes)))
            }
            other => panic!("bad read: {other:?}"),
        }
    }
    out
}

/// Batch bytes without the baseOffset field, which the log assigns.
fn body(b: &[u8]) -> &[u8] {
    &b[8..]
}

#[test]
fn append_assigns_offsets_and_reads_back_bytes_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    let a = batch(3, 10, 1000);
    let b = batch(2, 10, 2000);
    let ia = log.append(a.clone(), 5, 9999).unwrap();
    let ib = log.append(b.clone(), 5, 9999).unwrap();
    assert_eq!((ia.base_offset, ia.last_offset, ia.record_count), (0, 2, 3));
    assert_eq!((ib.base_offset, ib.last_offset), (3, 4));
    assert_eq!(ia.log_append_time, -1);
    assert_eq!(log.log_end_offset(), 5);
    assert_eq!(log.size_bytes(), (a.len() + b.len()) as u64);
    let all = read_all(&log);
    assert_eq!(all[1].0.base_offset, 3);
    assert_eq!(all[1].0.partition_leader_epoch, 5);
    // Everything after baseOffset and the epoch is byte-identical.
    assert_eq!(&all[0].1[16..], &a[16..]);
    assert_eq!(&all[1].1[16..], &b[16..]);
    assert!(dir.path().join("00000000000000000000.log").exists());
    assert!(dir.path().join("00000000000000000000.index").exists());
    assert!(dir.path().join("00000000000000000000.timeindex").exists());
}

#[test]
fn an_invalid_batch_among_several_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    let mut both = batch(1, 10, 1);
    let mut bad = batch(1, 10, 1);
    let n = bad.len();
    bad[n - 1] ^= 0xff;
    both.extend_from_slice(&bad);
    let err = log.append(both, 0, 0).unwrap_err();
    assert!(matches!(err, LogError::InvalidBatch { index: 1, .. }));
    assert_eq!(err.kafka_error_code(), 2);
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.size_bytes(), 0);

    let big = batch(1, 2_000_000, 1);
    assert_eq!(log.append(big, 0, 0).unwrap_err().kafka_error_code(), 10);
    let mut cut = batch(1, 10, 1);
    cut.truncate(cut.len() - 1);
    assert_eq!(log.append(cut, 0, 0).unwrap_err().kafka_error_code(), 2);
    assert!(matches!(
        log.append(BytesMut::new(), 0, 0),
        Err(LogError::EmptyAppend)
    ));
}

#[test]
fn read_returns_whole_batches_within_limits() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    for i in 0..20 {
        log.append(batch(2, 100, i * 10), 0, 0).unwrap();
    }
    // A limit smaller than one batch still yields that whole batch.
    let r = log.read(5, 1, i64::MAX).unwrap().to_bytes().unwrap();
    let h = BatchHeader::parse(&r).unwrap();
    assert_eq!((h.base_offset, r.len()), (4, h.total_size()));
    // max_offset excludes batches reaching it.
    let r = log.read(0, u32::MAX, 6).unwrap().to_bytes().unwrap();
    let offs: Vec<i64> = Batches::new(&r)
        .map(|b| match b {
            NextBatch::Complete { header, .. } => header.base_offset,
            _ => panic!(),
        })
        .collect();
    assert_eq!(offs, vec![0, 2, 4]);
    // Reading at the end is empty; beyond is out of range.
    assert!(log.read(40, 100, i64::MAX).unwrap().slices.is_empty());
    let e = log.read(41, 100, i64::MAX).unwrap_err();
    assert_eq!(e.kafka_error_code(), OFFSET_OUT_OF_RANGE);
    assert!(log.segment_count() > 1, "small segments should have rolled");
    // Every offset reads back starting at the batch that holds it, across segments.
    for o in 0..40 {
        let r = log.read(o, 1, i64::MAX).unwrap().to_bytes().unwrap();
        assert_eq!(BatchHeader::parse(&r).unwrap().base_offset, o - o % 2);
    }
}

#[test]
fn reopen_recovers_offsets_indexes_and_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let before;
    {
        let log = Log::open(dir.path(), small_config()).unwrap();
        for i in 0..30 {
            log.append(batch(3, 50, 1000 + i * 100), i as i32 / 10, 0)
                .unwrap();
        }
        log.flush().unwrap();
        before = read_all(&log);
        assert_eq!(log.lookup_timestamp(1501).unwrap(), Some((16, 1501)));
    }
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.log_end_offset(), 90);
    assert_eq!(read_all(&log), before);
    assert_eq!(log.lookup_timestamp(1501).unwrap(), Some((16, 1501)));
    assert_eq!(log.lookup_timestamp(1499).unwrap(), Some((15, 1500)));
    assert_eq!(log.lookup_timestamp(0).unwrap(), Some((0, 1000)));
    assert_eq!(log.lookup_timestamp(99_999).unwrap(), None);
    assert_eq!(log.max_timestamp(), Some((1000 + 29 * 100 + 2, 89)));
    assert_eq!(log.leader_epochs(), vec![(0, 0), (1, 30), (2, 60)]);
    assert_eq!(log.leader_epoch_end_offset(1), Some((1, 60)));
    assert_eq!(log.leader_epoch_end_offset(2), Some((2, 90)));
    assert_eq!(log.leader_epoch_end_offset(3), None);
}

#[test]
fn log_append_time_is_stamped_and_crc_stays_valid() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let log = Log::open(dir.path(), cfg).unwrap();
    let info = log.append(batch(2, 5, 1), 0, 777).unwrap();
    assert_eq!(info.log_append_time, 777);
    let all = read_all(&log); // read_all checks CRCs
    assert_eq!(all[0].0.max_timestamp, 777);
    assert_eq!(all[0].0.timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(log.lookup_timestamp(500).unwrap(), Some((0, 777)));
}

#[test]
fn retention_deletes_whole_segments_and_advances_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        retention_bytes: 8192,
        retention_ms: -1,
        ..small_config()
    };
    let log = Log::open(dir.path(), cfg.clone()).unwrap();
    for i in 0..100 {
        log.append(batch(1, 200, i), 0, 0).unwrap();
    }
    let deleted = log.apply_retention(0).unwrap();
    assert!(deleted > 0);
    assert!(log.size_bytes() <= 8192 + 4096);
    let start = log.log_start_offset();
    assert!(start > 0);
    assert_eq!(read_all(&log)[0].0.base_offset, start);
    assert_eq!(
        log.read(start - 1, 10, i64::MAX)
            .unwrap_err()
            .kafka_error_code(),
        1
    );

    // retention.ms: everything older than the cutoff goes, the active segment too (after a roll).
    log.update_config(LogConfig {
        retention_ms: 10,
        retention_bytes: -1,
        ..cfg
    });
    log.apply_retention(1_000_000).unwrap();
    assert_eq!(log.log_start_offset(), 100);
    assert_eq!(log.size_bytes(), 0);
    log.append(batch(1, 1, 5), 0, 0).unwrap();
    assert_eq!(read_all(&log)[0].0.base_offset, 100);
}

#[test]
fn a_compact_only_log_loses_nothing_to_retention() {
    // cleanup.policy=compact without delete: retention.ms and
    // retention.bytes delete nothing (Kafka's rule); the cleaner alone
    // removes data from such a log.
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        retention_bytes: 1,
        retention_ms: 1,
        compact: true,
        delete: false,
        ..small_config()
    };
    let log = Log::open(dir.path(), cfg.clone()).unwrap();
    for i in 0..100 {
        log.append(batch(1, 200, i), 0, 0).unwrap();
    }
    let segments = log.segment_count();
    assert!(segments > 2);
    assert_eq!(log.apply_retention(1_000_000).unwrap(), 0);
    assert_eq!(log.log_start_offset(), 0);
    assert_eq!(read_all(&log).len(), 100);
    // With delete added to the policy, the same retention applies.
    log.update_config(LogConfig {
        delete: true,
        ..cfg
    });
    assert!(log.apply_retention(1_000_000).unwrap() > 0);
    assert!(log.log_start_offset() > 0);
}

#[test]
fn segment_ms_rolls_the_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_ms: 1000,
        retention_ms: -1,
        ..LogConfig::default()
    };
    let log = Log::open(dir.path(), cfg).unwrap();
    log.append(batch(1, 1, 0), 0, 0).unwrap();
    log.append(batch(1, 1, 500), 0, 500).unwrap();
    assert_eq!(log.segment_count(), 1);
    // An append whose records are segment.ms newer than the segment's first.
    log.append(batch(1, 1, 1500), 0, 1500).unwrap();
    assert_eq!(log.segment_count(), 2);
    // An idle segment rolls on the clock at the retention check.
    log.apply_retention(5000).unwrap();
    assert_eq!(log.segment_count(), 3);
}

#[test]
fn old_record_timestamps_do_not_roll_a_segment_per_append() {
    // A producer replaying data from years ago: every batch's timestamp is
    // far older than segment.ms before now. Kafka measures a segment's age
    // between record timestamps, so these all share one segment; measured
    // against the clock, each append would create four files.
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_ms: 7 * 24 * 3600 * 1000,
        retention_ms: -1,
        ..LogConfig::default()
    };
    let log = Log::open(dir.path(), cfg).unwrap();
    let then_ms = 1_500_000_000_000;
    let now_ms = 1_800_000_000_000;
    for i in 0..50 {
        log.append(batch(1, 1, then_ms + i), 0, now_ms + i).unwrap();
    }
    assert_eq!(log.segment_count(), 1);
    assert!(std::fs::read_dir(dir.path()).unwrap().count() <= 6);
    // Records a segment.ms newer than the first still roll.
    log.append(batch(1, 1, then_ms + 7 * 24 * 3600 * 1000), 0, now_ms)
        .unwrap();
    assert_eq!(log.segment_count(), 2);
}

#[test]
fn advanced_log_start_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), small_config()).unwrap();
        for i in 0..50 {
            log.append(batch(1, 300, i), 0, 0).unwrap();
        }
        log.advance_log_start_offset(33).unwrap();
        assert!(log.advance_log_start_offset(51).is_err());
        assert_eq!(log.log_start_offset(), 33);
        assert_eq!(read_all(&log)[0].0.base_offset, 33);
        assert!(log.read(32, 10, i64::MAX).is_err());
    }
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.log_start_offset(), 33);
    assert_eq!(log.lookup_timestamp(0).unwrap(), Some((33, 33)));
}

#[test]
fn truncate_to_drops_the_tail_and_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    for i in 0..40 {
        log.append(batch(2, 100, i), i as i32 / 10, 0).unwrap();
    }
    log.flush().unwrap();
    log.truncate_to(31).unwrap(); // mid-batch: rounds down to 30
    assert_eq!(log.log_end_offset(), 30);
    assert_eq!(log.leader_epochs(), vec![(0, 0), (1, 20)]);
    assert_eq!(log.recovery_point(), 30);
    let info = log.append(batch(1, 1, 0), 7, 0).unwrap();
    assert_eq!(info.base_offset, 30);
    drop(log);
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.log_end_offset(), 31);
    assert_eq!(read_all(&log).len(), 16);
}

#[test]
fn truncating_at_the_end_drops_an_epoch_that_never_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    for i in 0..4 {
        log.append(batch(2, 10, i), 0, 0).unwrap();
    }
    // Leader at epoch 1 from the log end, killed before its first append.
    log.assign_epoch(1).unwrap();
    assert_eq!(log.leader_epochs(), vec![(0, 0), (1, 8)]);
    // The new leader (epoch 2) says epoch 0 ends at 8: truncate there.
    log.truncate_to(8).unwrap();
    assert_eq!(log.log_end_offset(), 8);
    assert_eq!(
        log.leader_epochs(),
        vec![(0, 0)],
        "epoch 1 never wrote here"
    );
    drop(log);
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.leader_epochs(), vec![(0, 0)]);
    // Past the end nothing changes.
    log.assign_epoch(3).unwrap();
    log.truncate_to(9).unwrap();
    assert_eq!(log.leader_epochs(), vec![(0, 0), (3, 8)]);
}

#[test]
fn truncate_fully_restarts_an_empty_log_past_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    for i in 0..20 {
        log.append(batch(2, 100, i), 1, 0).unwrap();
    }
    log.flush().unwrap();
    assert!(
        log.truncate_fully_and_start_at(40).is_err(),
        "only past the log end"
    );
    log.truncate_fully_and_start_at(100).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (100, 100));
    assert_eq!(log.leader_epochs(), vec![], "no epoch has a batch here");
    assert!(read_all(&log).is_empty());
    let info = log.append(batch(3, 1, 0), 4, 0).unwrap();
    assert_eq!(info.base_offset, 100);
    log.flush().unwrap();
    drop(log);
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (100, 103));
    assert_eq!(log.leader_epochs(), vec![(4, 100)]);
    let batches = read_all(&log);
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].0.base_offset, 100);
    let segments = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "log"))
        })
        .count();
    assert_eq!(segments, 1, "the old segments are gone");
}

#[test]
fn torn_tail_is_truncated_on_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), LogConfig::default()).unwrap();
        log.append(batch(1, 10, 0), 0, 0).unwrap();
        log.append(batch(1, 10, 0), 0, 0).unwrap();
        log.flush().unwrap();
        // Not flushed: above the recovery point, so tearing it is allowed.
        log.append(batch(1, 10, 0), 0, 0).unwrap();
    }
    let path = dir.path().join("00000000000000000000.log");
    let len = std::fs::metadata(&path).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!(log.log_end_offset(), 2);
    log.append(batch(1, 10, 0), 0, 0).unwrap();
    assert_eq!(read_all(&log).len(), 3);
}

#[test]
fn interior_corruption_is_refused_with_file_and_position() {
    let dir = tempfile::tempdir().unwrap();
    let first_len;
    {
        let log = Log::open(dir.path(), LogConfig::default()).unwrap();
        first_len = batch(1, 10, 0).len() as u64;
        for _ in 0..3 {
            log.append(batch(1, 10, 0), 0, 0).unwrap();
        }
    }
    // Forget the recovery point so the whole segment is scanned.
    std::fs::remove_file(dir.path().join("recovery-point-offset-checkpoint")).ok();
    let path = dir.path().join("00000000000000000000.log");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[first_len as usize + 40] ^= 0x55; // second batch, CRC-covered
    std::fs::write(&path, &bytes).unwrap();
    let err = Log::open(dir.path(), LogConfig::default()).unwrap_err();
    match &err {
        LogError::Corrupt { file, position, .. } => {
            assert_eq!(file, &path);
            assert_eq!(*position, first_len);
        }
        other => panic!("expected Corrupt, got {other}"),
    }
    assert!(err.to_string().contains("00000000000000000000.log"));

    // Damage below the recovery point is refused even at the tail.
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), LogConfig::default()).unwrap();
        log.append(batch(1, 10, 0), 0, 0).unwrap();
        log.append(batch(1, 10, 0), 0, 0).unwrap();
        log.flush().unwrap();
    }
    let path = dir.path().join("00000000000000000000.log");
    let len = std::fs::metadata(&path).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    assert!(matches!(
        Log::open(dir.path(), LogConfig::default()),
        Err(LogError::Corrupt { .. })
    ));
}

#[test]
fn corrupt_sealed_index_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let before;
    {
        let log = Log::open(dir.path(), small_config()).unwrap();
        for i in 0..40 {
            log.append(batch(1, 200, i), 0, 0).unwrap();
        }
        log.flush().unwrap();
        before = read_all(&log);
    }
    std::fs::write(dir.path().join("00000000000000000000.index"), b"garbage").unwrap();
    std::fs::remove_file(dir.path().join("00000000000000000000.timeindex")).unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(read_all(&log), before);
    assert_eq!(log.lookup_timestamp(3).unwrap(), Some((3, 3)));
}

#[test]
fn a_failed_write_poisons_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.append(batch(1, 10, 0), 0, 0).unwrap();
    log.inject_write_failure();
    let e = log.append(batch(1, 10, 0), 0, 0).unwrap_err();
    assert!(matches!(e, LogError::Io { .. }));
    let e = log.append(batch(1, 10, 0), 0, 0).unwrap_err();
    assert!(matches!(e, LogError::Failed { .. }));
    assert_eq!(e.kafka_error_code(), KAFKA_STORAGE_ERROR);
    assert!(log.sync_until(1).is_err());
    assert_eq!(log.log_end_offset(), 1);
    // Reads of what was written still work.
    assert_eq!(read_all(&log).len(), 1);
}

#[test]
fn a_failed_fsync_poisons_the_log_and_is_not_retried() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    let info = log.append(batch(1, 10, 0), 0, 0).unwrap();
    log.inject_sync_failure();
    assert!(matches!(
        log.sync_until(info.last_offset + 1),
        Err(LogError::Io { .. })
    ));
    assert!(matches!(
        log.sync_until(info.last_offset + 1),
        Err(LogError::Failed { .. })
    ));
    assert!(matches!(log.flush(), Err(LogError::Failed { .. })));
    assert!(matches!(
        log.append(batch(1, 1, 0), 0, 0),
        Err(LogError::Failed { .. })
    ));
}

#[test]
fn group_commit_serves_concurrent_appenders() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Log::open(dir.path(), LogConfig::default()).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let log = log.clone();
            std::thread::spawn(move || {
                for _ in 0..25 {
                    let info = log.append(batch(2, 100, 0), 0, 0).unwrap();
                    log.sync_until(info.last_offset + 1).unwrap();
                    assert!(log.recovery_point() > info.last_offset);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(log.log_end_offset(), 200);
}

#[test]
fn kafka_flush_policy_flushes_every_n_messages() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        flush: FlushPolicy::Kafka {
            flush_messages: 3,
            flush_ms: 1000,
        },
        ..LogConfig::default()
    };
    let log = Log::open(dir.path(), cfg).unwrap();
    log.append(batch(2, 1, 0), 0, 0).unwrap();
    assert_eq!(log.recovery_point(), 0);
    log.append(batch(1, 1, 0), 0, 0).unwrap();
    assert_eq!(log.recovery_point(), 3);
    log.append(batch(1, 1, 0), 0, 0).unwrap();
    log.maybe_flush_on_timer(500).unwrap();
    assert_eq!(log.recovery_point(), 3);
    log.maybe_flush_on_timer(1500).unwrap();
    assert_eq!(log.recovery_point(), 4);
}

#[test]
fn delete_removes_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let part = dir.path().join("topic-0");
    let log = Log::open(&part, LogConfig::default()).unwrap();
    log.append(batch(1, 1, 0), 0, 0).unwrap();
    log.delete().unwrap();
    assert!(!part.exists());
}

// ---- property tests ----

#[derive(Debug, Clone)]
enum Op {
    Append {
        records: usize,
        value_bytes: usize,
    },
    Read {
        at: proptest::sample::Index,
        max_bytes: u32,
    },
    Retention {
        bytes: i64,
    },
    AdvanceStart {
        at: proptest::sample::Index,
    },
    Truncate {
        at: proptest::sample::Index,
    },
    Flush,
    Reopen,
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1usize..5, 0usize..400).prop_map(|(records, value_bytes)| Op::Append { records, value_bytes }),
        3 => (any::<proptest::sample::Index>(), 1u32..3000).prop_map(|(at, max_bytes)| Op::Read { at, max_bytes }),
        1 => (0i64..6000).prop_map(|bytes| Op::Retention { bytes }),
        1 => any::<proptest::sample::Index>().prop_map(|at| Op::AdvanceStart { at }),
        1 => any::<proptest::sample::Index>().prop_map(|at| Op::Truncate { at }),
        1 => Just(Op::Flush),
        1 => Just(Op::Reopen),
    ]
}

/// The model: the batches in the log, as (base offset, bytes without baseOffset).
struct Model {
    batches: Vec<(i64, i64, Vec<u8>)>, // base, next, body
    start: i64,
    end: i64,
}

fn open_model_log(dir: &Path) -> Log {
    Log::open(
        dir,
        LogConfig {
            segment_bytes: 2048,
            index_interval_bytes: 300,
            retention_ms: -1,
            ..LogConfig::default()
        },
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn log_agrees_with_a_vec_model(ops in proptest::collection::vec(arb_op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open_model_log(dir.path());
        let mut m = Model { batches: vec![], start: 0, end: 0 };
        for op in ops {
            match op {
                Op::Append { records, value_bytes } => {
                    let b = batch(records, value_bytes, 1000);
                    let info = log.append(b.clone(), 1, 0).unwrap();
                    prop_assert_eq!(info.base_offset, m.end);
                    m.batches.push((m.end, m.end + records as i64, body(&b)[8..].to_vec()));
                    m.end += records as i64;
                }
                Op::Read { at, max_bytes } => {
                    let live: Vec<_> = m.batches.iter().filter(|b| b.1 > m.start).collect();
                    if live.is_empty() { continue; }
                    let want = live[at.index(live.len())];
                    let offset = want.0.max(m.start);
                    let r = log.read(offset, max_bytes, i64::MAX).unwrap().to_bytes().unwrap();
                    let got: Vec<_> = Batches::new(&r).map(|i| match i {
                        NextBatch::Complete { header, bytes, .. } => (header.base_offset, bytes[16..].to_vec()),
                        other => panic!("{other:?}"),
                    }).collect();
                    prop_assert!(!got.is_empty());
                    prop_assert!(got.len() == 1 || r.len() <= max_bytes as usize);
                    let first = m.batches.iter().position(|b| b.0 == want.0).unwrap();
                    for (i, (base, bytes)) in got.iter().enumerate() {
                        let (mb, _, mbody) = &m.batches[first + i];
                        prop_assert_eq!(*base, *mb);
                        prop_assert_eq!(&bytes[..], &mbody[..]);
                    }
                }
                Op::Retention { bytes } => {
                    let mut cfg = log.config();
                    cfg.retention_bytes = bytes;
                    log.update_config(cfg);
                    log.apply_retention(0).unwrap();
                    prop_assert!(log.log_start_offset() >= m.start);
                    m.start = log.log_start_offset();
                    prop_assert!(log.size_bytes() <= bytes as u64 + 2048 + 2500);
                }
                Op::AdvanceStart { at } => {
                    let to = m.start + (at.index((m.end - m.start + 1) as usize) as i64);
                    log.advance_log_start_offset(to).unwrap();
                    m.start = m.start.max(to);
                }
                Op::Truncate { at } => {
                    let to = m.start + (at.index((m.end - m.start + 1) as usize) as i64);
                    log.truncate_to(to).unwrap();
                    // A cut inside a batch rounds down to the batch's start.
                    m.batches.retain(|b| b.1 <= to);
                    m.end = m.batches.last().map_or(log.log_end_offset(), |b| b.1);
                    m.start = m.start.min(m.end);
                    prop_assert_eq!(log.log_end_offset(), m.end);
                }
                Op::Flush => log.flush().unwrap(),
                Op::Reopen => {
                    drop(log);
                    log = open_model_log(dir.path());
                }
            }
            prop_assert_eq!(log.log_end_offset(), m.end);
            prop_assert_eq!(log.log_start_offset(), m.start);
        }
        // Final full comparison.
        let all = read_all(&log);
        let live: Vec<_> = m.batches.iter().filter(|b| b.1 > m.start).collect();
        prop_assert_eq!(all.len(), live.len());
        for ((h, bytes), (mb, _, mbody)) in all.iter().zip(live) {
            prop_assert_eq!(h.base_offset, *mb);
            prop_assert_eq!(&bytes[16..], &mbody[..]);
        }
    }

    #[test]
    fn cutting_a_segment_at_any_byte_keeps_exactly_the_whole_batches(
        sizes in proptest::collection::vec((1usize..4, 0usize..300), 1..15),
        cut in any::<proptest::sample::Index>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut written = Vec::new();
        {
            let log = Log::open(dir.path(), LogConfig::default()).unwrap();
            for (records, value_bytes) in &sizes {
                let b = batch(*records, *value_bytes, 5);
                log.append(b.clone(), 0, 0).unwrap();
                written.push(b);
            }
            // No flush: all of it is above the recovery point, as after a crash.
        }
        std::fs::remove_file(dir.path().join("recovery-point-offset-checkpoint")).ok();
        let path = dir.path().join("00000000000000000000.log");
        let len = std::fs::metadata(&path).unwrap().len() as usize;
        let cut_at = cut.index(len + 1);
        OpenOptions::new().write(true).open(&path).unwrap().set_len(cut_at as u64).unwrap();
        let log = Log::open(dir.path(), LogConfig::default()).unwrap();
        let all = read_all(&log);
        let mut pos = 0;
        let mut kept = 0;
        for b in &written {
            if pos + b.len() <= cut_at { kept += 1; }
            pos += b.len();
        }
        prop_assert_eq!(all.len(), kept);
        for ((_, got), want) in all.iter().zip(&written) {
            // Only baseOffset and partitionLeaderEpoch (outside the CRC) were rewritten.
            prop_assert_eq!(&got[16..], &want[16..]);
        }
    }
}

#[test]
fn creating_a_partition_directory_fsyncs_its_parent() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("t-0");
    let _log = Log::open(&dir, LogConfig::default()).unwrap();
    assert!(
        crate::checkpoint::synced::contains(data.path()),
        "the new directory's entry in the data dir was never fsynced"
    );
}

#[test]
fn sealed_segment_indexes_are_fsynced_before_the_recovery_point_passes_them() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    let mut end = 0;
    while log.segment_count() < 2 {
        end = log.append(batch(1, 300, end), 0, 0).unwrap().last_offset + 1;
    }
    log.sync_until(end).unwrap();
    for ext in ["index", "timeindex"] {
        let path = dir.path().join(format!("00000000000000000000.{ext}"));
        assert!(
            crate::checkpoint::synced::contains(&path),
            "{ext} of the sealed segment was not fsynced"
        );
    }
}

#[test]
fn a_sealed_index_that_does_not_cover_its_segment_is_rebuilt_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let entries;
    {
        let log = Log::open(dir.path(), small_config()).unwrap();
        for i in 0..40 {
            log.append(batch(1, 200, i), 0, 0).unwrap();
        }
        log.flush().unwrap();
        entries = log.offset_index_entries();
        assert!(
            entries[0] > 2,
            "test needs several index entries: {entries:?}"
        );
    }
    // Power loss before the index tail reached the disk: only the first
    // entry survives. It still points at a good batch, so it looks sane.
    let index = dir.path().join("00000000000000000000.index");
    OpenOptions::new()
        .write(true)
        .open(&index)
        .unwrap()
        .set_len(8)
        .unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.offset_index_entries(), entries);
}

#[test]
fn a_failed_segment_delete_fences_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    for i in 0..50 {
        log.append(batch(1, 300, i), 0, 0).unwrap();
    }
    log.inject_delete_failure();
    assert!(matches!(
        log.advance_log_start_offset(33),
        Err(LogError::Io { .. })
    ));
    // Memory and disk disagree now: writes are refused until a reopen.
    assert!(matches!(
        log.append(batch(1, 1, 0), 0, 0),
        Err(LogError::Failed { .. })
    ));
    // Retention deletes fence the log the same way.
    let dir2 = tempfile::tempdir().unwrap();
    let log = Log::open(
        dir2.path(),
        LogConfig {
            retention_bytes: 1,
            ..small_config()
        },
    )
    .unwrap();
    for i in 0..50 {
        log.append(batch(1, 300, i), 0, 0).unwrap();
    }
    log.inject_delete_failure();
    assert!(log.apply_retention(0).is_err());
    assert!(matches!(
        log.append(batch(1, 1, 0), 0, 0),
        Err(LogError::Failed { .. })
    ));
}

#[test]
fn a_failed_log_reopens_at_the_durable_offset_and_accepts_writes() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    let mut end = 0;
    for i in 0..20 {
        end = log.append(batch(1, 300, i), 0, 0).unwrap().last_offset + 1;
    }
    log.sync_until(end).unwrap();
    // Two more appends reach the page cache, then the fsync fails: the
    // kernel may have dropped them, so they must never come back.
    log.append(batch(1, 300, 20), 0, 0).unwrap();
    log.append(batch(1, 300, 21), 0, 0).unwrap();
    log.inject_sync_failure();
    assert!(log.sync_until(end + 2).is_err());
    assert!(log.is_offline());
    assert!(log.reopen().unwrap(), "reopen did not bring the log back");
    assert!(!log.is_offline());
    assert_eq!(
        log.log_end_offset(),
        end,
        "bytes past the failed fsync survived"
    );
    assert_eq!(log.recovery_point(), end);
    let info = log.append(batch(1, 300, 22), 0, 0).unwrap();
    assert_eq!(info.base_offset, end);
    log.sync_until(end + 1).unwrap();
    assert_eq!(read_all(&log).len() as i64, end + 1);
    // The same after a failed write.
    log.inject_write_failure();
    assert!(log.append(batch(1, 300, 23), 0, 0).is_err());
    assert!(log.reopen().unwrap());
    assert_eq!(log.log_end_offset(), end + 1);
    drop(log);
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.log_end_offset(), end + 1);
}

/// A size-limited tmpfs mounted for one test, unmounted on drop. Tests
/// run as root (here and in CI); a failed mount fails the test loudly.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("cannot run mount");
        assert!(
            status.success(),
            "mounting a tmpfs failed ({status}); these tests need root"
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the file system: writes `filler` until ENOSPC.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.path().join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 4096];
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(28), "expected ENOSPC: {e}");
                    break;
                }
            }
        }
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn a_log_on_a_full_disk_opens_read_only_and_comes_back_when_space_returns() {
    let fs = Tmpfs::mount("2m");
    let dir = fs.path().join("t-0");
    let before;
    {
        let log = Log::open(&dir, small_config()).unwrap();
        for i in 0..20 {
            log.append(batch(1, 300, i), 0, 0).unwrap();
        }
        // Not flushed: the next open must rebuild indexes and checkpoint.
        before = read_all(&log);
    }
    let filler = fs.fill();
    let log = Log::open(&dir, small_config()).expect("a full disk must not stop the open");
    assert!(
        log.is_offline(),
        "recovery could not write, yet the log is writable"
    );
    assert_eq!(read_all(&log), before, "reads must work read-only");
    assert!(matches!(
        log.append(batch(1, 1, 0), 0, 0),
        Err(LogError::Failed { .. })
    ));
    assert!(!log.reopen().unwrap(), "still full: must stay read-only");
    std::fs::remove_file(filler).unwrap();
    assert!(
        log.reopen().unwrap(),
        "space is back: the log must come online"
    );
    assert_eq!(read_all(&log), before);
    log.append(batch(1, 1, 0), 0, 0).unwrap();
    log.flush().unwrap();
}

#[test]
fn delete_records_frees_segments_of_an_offline_log_and_the_reopen_keeps_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    let mut end = 0;
    for i in 0..50 {
        end = log.append(batch(1, 300, i), 0, 0).unwrap().last_offset + 1;
    }
    log.sync_until(end).unwrap();
    log.inject_write_failure();
    assert!(log.append(batch(1, 300, 0), 0, 0).is_err());
    let segments = log.segment_count();
    // Past the durable offset an offline log refuses; below it, it deletes.
    assert!(matches!(
        log.advance_log_start_offset(end + 1),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    log.advance_log_start_offset(33).unwrap();
    assert!(log.segment_count() < segments, "no segment was deleted");
    assert_eq!(log.log_start_offset(), 33);
    assert!(log.reopen().unwrap());
    assert_eq!(log.log_start_offset(), 33);
    drop(log);
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.log_start_offset(), 33);
}

/// (inode, mtime) of every file in `dir`, by name.
fn file_stamps(dir: &Path) -> std::collections::BTreeMap<String, (u64, std::time::SystemTime)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                (m.ino(), m.modified().unwrap()),
            )
        })
        .collect()
}

#[test]
fn a_clean_reopen_rewrites_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        index_interval_bytes: 256,
        ..LogConfig::default()
    };
    {
        let log = Log::open(dir.path(), config.clone()).unwrap();
        for i in 0..40 {
            log.append(batch(3, 50, 1_000 + i), 7, 0).unwrap();
        }
        log.flush().unwrap();
    }
    let before = file_stamps(dir.path());
    let log = Log::open(dir.path(), config).unwrap();
    // A clean open trusts the recovery point: it reads the tail headers and
    // rewrites neither the indexes nor the epoch checkpoint.
    assert_eq!(file_stamps(dir.path()), before);
    assert_eq!(log.log_end_offset(), 120);
    assert_eq!(read_all(&log).len(), 40);
    assert_eq!(log.max_timestamp(), Some((1_041, 119)));
    assert_eq!(log.leader_epochs(), vec![(7, 0)]);
}

#[test]
fn a_clean_reopen_leaves_the_same_indexes_as_a_full_scan() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        index_interval_bytes: 300,
        ..LogConfig::default()
    };
    let index_files = |dir: &Path| {
        (
            std::fs::read(dir.join("00000000000000000000.index")).unwrap(),
            std::fs::read(dir.join("00000000000000000000.timeindex")).unwrap(),
        )
    };
    // Timestamps that go up and down, so the running maximum matters.
    let ts = |i: i64| 1_000 + (i * 37) % 50;
    {
        let log = Log::open(dir.path(), config.clone()).unwrap();
        for i in 0..25 {
            log.append(batch(2, 40, ts(i)), 0, 0).unwrap();
        }
        log.flush().unwrap();
    }
    let (fast, fast_max) = {
        // Clean reopen (tail read only), then more appends on top of it.
        let log = Log::open(dir.path(), config.clone()).unwrap();
        for i in 25..50 {
            log.append(batch(2, 40, ts(i)), 0, 0).unwrap();
        }
        log.flush().unwrap();
        (index_files(dir.path()), log.max_timestamp())
    };
    // Without a recovery point the active segment is scanned and its
    // indexes rebuilt from the batches.
    std::fs::remove_file(dir.path().join("recovery-point-offset-checkpoint")).unwrap();
    let log = Log::open(dir.path(), config).unwrap();
    assert_eq!(index_files(dir.path()), fast);
    assert_eq!(log.max_timestamp(), fast_max);
}

#[test]
fn a_clean_reopen_still_scans_data_past_the_recovery_point() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), small_config()).unwrap();
        log.append(batch(2, 10, 1), 0, 0).unwrap();
        log.flush().unwrap();
        // Written, never flushed: a crash leaves it above the recovery point.
        log.append(batch(2, 10, 2), 0, 0).unwrap();
    }
    let seg = dir.path().join("00000000000000000000.log");
    let len = std::fs::metadata(&seg).unwrap().len();
    // Tear the unflushed batch.
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.log_end_offset(), 2);
    assert_eq!(read_all(&log).len(), 1);
}

#[test]
fn a_read_planned_before_its_handle_is_evicted_still_reads() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Arc::new(crate::FileCache::new(crate::file_cache::MIN_MAX_OPEN_FILES));
    let log =
        Log::open_with_cache(&dir.path().join("p"), small_config(), Arc::clone(&cache)).unwrap();
    log.append(batch(3, 20, 5), 0, 0).unwrap();
    let planned = log.read(0, u32::MAX, i64::MAX).unwrap();
    // Many other files push the segment's handles out of the cache.
    for i in 0..64 {
        cache
            .create(&dir.path().join(format!("other-{i}")))
            .unwrap();
    }
    let bytes = planned.to_bytes().unwrap();
    assert_eq!(Batches::new(&bytes).count(), 1);
    // And the log reopens the evicted files on demand: append, fsync, read.
    log.append(batch(1, 20, 6), 0, 0).unwrap();
    log.sync_until(4).unwrap();
    assert_eq!(log.recovery_point(), 4);
    assert_eq!(read_all(&log).len(), 2);
}

#[test]
fn the_flush_timer_checkpoints_the_recovery_point_at_most_once_a_minute() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    let on_disk = || {
        crate::checkpoint::read_offset(dir.path(), crate::checkpoint::RECOVERY_POINT_FILE)
            .unwrap()
            .unwrap_or(-1)
    };
    let t0 = 1_700_000_000_000;
    log.append(batch(1, 1, 0), 0, 0).unwrap();
    log.sync_until(1).unwrap();
    log.maybe_flush_on_timer(t0).unwrap();
    assert_eq!(on_disk(), 1);
    // Every second for most of a minute: durable data moves, the file does not.
    for s in 1..59 {
        log.append(batch(1, 1, 0), 0, 0).unwrap();
        log.sync_until(s + 1).unwrap();
        log.maybe_flush_on_timer(t0 + s * 1000).unwrap();
        assert_eq!(on_disk(), 1, "checkpoint rewritten after {s} s");
    }
    log.maybe_flush_on_timer(t0 + 60_000).unwrap();
    assert_eq!(on_disk(), 59);
}

/// A follower's copy: the leader's batches appended as they are keep their
/// offsets, epochs and bytes, and the epoch cache follows them.
#[test]
fn replicated_batches_keep_the_leaders_offsets_and_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let leader = Log::open(&dir.path().join("leader"), small_config()).unwrap();
    leader.append(batch(3, 10, 1_000), 4, 1_000).unwrap();
    leader.append(batch(2, 10, 1_000), 4, 1_000).unwrap();
    leader.assign_epoch(6).unwrap();
    leader.append(batch(4, 10, 1_000), 6, 1_000).unwrap();
    let copied = leader
        .read(0, u32::MAX, i64::MAX)
        .unwrap()
        .to_bytes()
        .unwrap();

    let follower = Log::open(&dir.path().join("follower"), small_config()).unwrap();
    let info = follower
        .append_replicated(&copied)
        .unwrap()
        .expect("whole batches");
    assert_eq!((info.base_offset, info.last_offset), (0, 8));
    assert_eq!(follower.log_end_offset(), 9);
    assert_eq!(follower.leader_epochs(), vec![(4, 0), (6, 5)]);
    let theirs: Vec<Bytes> = read_all(&leader).into_iter().map(|(_, b)| b).collect();
    let ours: Vec<Bytes> = read_all(&follower).into_iter().map(|(_, b)| b).collect();
    assert_eq!(ours, theirs, "byte for byte");
}

/// What a follower refuses: data that does not continue its log, and a
/// corrupt batch; a cut-off last batch is left for the next fetch.
#[test]
fn replicated_batches_must_continue_the_log_and_be_intact() {
    let dir = tempfile::tempdir().unwrap();
    let leader = Log::open(&dir.path().join("leader"), small_config()).unwrap();
    leader.append(batch(3, 10, 1_000), 1, 1_000).unwrap();
    leader.append(batch(3, 10, 1_000), 1, 1_000).unwrap();
    let copied = leader
        .read(0, u32::MAX, i64::MAX)
        .unwrap()
        .to_bytes()
        .unwrap();
    let first_len = BatchHeader::parse(&copied).unwrap().total_size();

    let follower = Log::open(&dir.path().join("follower"), small_config()).unwrap();
    // The first batch whole and the second cut short: only the first lands.
    let cut = &copied[..copied.len() - 5];
    let info = follower.append_replicated(cut).unwrap().expect("one");
    assert_eq!((info.base_offset, info.last_offset), (0, 2));
    assert_eq!(follower.log_end_offset(), 3);
    // The first batch again: it starts below the log end.
    assert!(matches!(
        follower.append_replicated(&copied[..first_len]),
        Err(LogError::UnexpectedOffset {
            expected: 3,
            found: 0
        })
    ));
    // A flipped byte in the second batch's records fails its CRC.
    let mut corrupt = copied[first_len..].to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    assert!(matches!(
        follower.append_replicated(&corrupt),
        Err(LogError::InvalidBatch { .. })
    ));
    assert_eq!(follower.log_end_offset(), 3, "nothing written");
    assert_eq!(
        follower.append_replicated(&copied[..10]).unwrap(),
        None,
        "no whole batch"
    );
}

/// A new leader's epoch starts at its log end before it appends anything,
/// so a follower's older epoch has a known end (KIP-101).
#[test]
fn assigning_an_epoch_ends_the_previous_one_at_the_log_end() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    log.append(batch(5, 10, 1_000), 2, 1_000).unwrap();
    assert_eq!(log.leader_epoch_end_offset(2), Some((2, 5)));
    log.assign_epoch(3).unwrap();
    assert_eq!(log.leader_epochs(), vec![(2, 0), (3, 5)]);
    assert_eq!(log.leader_epoch_end_offset(2), Some((2, 5)));
    log.assign_epoch(3).unwrap();
    log.assign_epoch(1).unwrap();
    assert_eq!(
        log.leader_epochs(),
        vec![(2, 0), (3, 5)],
        "only newer epochs"
    );
    drop(log);
    // As in Kafka, recovery drops epochs that start at the log end: they
    // hold no data, and a leader assigns its epoch again when it leads.
    let reopened = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(reopened.leader_epochs(), vec![(2, 0)]);
}
