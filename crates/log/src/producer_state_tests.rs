//! Behaviour tests of producer state: sequence checks, fencing, markers,
//! the last stable offset, and recovery of the state after a reopen.

use bytes::{Bytes, BytesMut};
use sluice_records::{BatchBuilder, NewRecord};

use crate::producer_state::{
    AppendOrigin, MarkerType, PRODUCER_STATE_FILE, ProducerError, ProducerStateManager, marker_key,
    marker_value,
};
use crate::{Log, LogConfig, LogError};

fn rec(i: usize) -> NewRecord {
    NewRecord {
        key: None,
        value: Some(Bytes::from(format!("v{i}"))),
        headers: vec![],
        timestamp_ms: 1_000 + i as i64,
    }
}

fn idem(pid: i64, epoch: i16, seq: i32, records: usize) -> BytesMut {
    let mut b = BatchBuilder::new().producer(pid, epoch, seq);
    for i in 0..records {
        b.push(rec(i));
    }
    b.build().unwrap()
}

fn txn(pid: i64, epoch: i16, seq: i32, records: usize) -> BytesMut {
    let mut b = BatchBuilder::new()
        .producer(pid, epoch, seq)
        .transactional(true);
    for i in 0..records {
        b.push(rec(i));
    }
    b.build().unwrap()
}

/// A transaction marker of `pid` at time 5,000; `compaction_tests.rs`
/// writes its markers with it too.
pub(crate) fn marker(pid: i64, epoch: i16, kind: MarkerType) -> BytesMut {
    BatchBuilder::new()
        .producer(pid, epoch, -1)
        .transactional(true)
        .control(true)
        .record(NewRecord {
            key: Some(marker_key(kind)),
            value: Some(marker_value(0)),
            headers: vec![],
            timestamp_ms: 5_000,
        })
        .build()
        .unwrap()
}

fn producer_err(r: Result<crate::AppendInfo, LogError>) -> ProducerError {
    match r {
        Err(LogError::Producer(e)) => e,
        other => panic!("expected a producer error, got {other:?}"),
    }
}

#[test]
fn duplicate_batch_returns_original_offsets_and_is_not_appended() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    let first = log.append(idem(7, 0, 0, 3), 0, 0).unwrap();
    let second = log.append(idem(7, 0, 3, 2), 0, 0).unwrap();
    assert_eq!((second.base_offset, second.last_offset), (3, 4));
    for (seq, n, info) in [(0, 3, first), (3, 2, second)] {
        let e = producer_err(log.append(idem(7, 0, seq, n), 0, 0));
        assert_eq!(
            e,
            ProducerError::Duplicate {
                base_offset: info.base_offset,
                last_offset: info.last_offset
            }
        );
    }
    assert_eq!(log.log_end_offset(), 5);
}

#[test]
fn sequence_gap_is_out_of_order_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.append(idem(7, 0, 0, 2), 0, 0).unwrap();
    let e = producer_err(log.append(idem(7, 0, 5, 1), 0, 0));
    assert_eq!(
        e,
        ProducerError::OutOfOrderSequence {
            producer_id: 7,
            expected: 2,
            found: 5
        }
    );
    assert_eq!(e.kafka_error_code(), 45);
    assert_eq!(log.log_end_offset(), 2);
    // The in-order batch still goes in afterwards.
    assert_eq!(log.append(idem(7, 0, 2, 1), 0, 0).unwrap().base_offset, 2);
}

#[test]
fn old_epoch_is_fenced_and_new_epoch_restarts_at_zero() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.append(idem(7, 1, 0, 1), 0, 0).unwrap();
    let e = producer_err(log.append(idem(7, 0, 1, 1), 0, 0));
    assert_eq!(e.kafka_error_code(), 47);
    let e = producer_err(log.append(idem(7, 2, 4, 1), 0, 0));
    assert!(matches!(
        e,
        ProducerError::OutOfOrderSequence { expected: 0, .. }
    ));
    log.append(idem(7, 2, 0, 1), 0, 0).unwrap();
    // Epoch 1 is now fenced too.
    assert_eq!(
        producer_err(log.append(idem(7, 1, 1, 1), 0, 0)).kafka_error_code(),
        47
    );
}

#[test]
fn unknown_producer_may_start_at_any_sequence() {
    // Kafka 2.5+ (KIP-360): state lost to retention must not wedge a producer.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.append(idem(9, 0, 42, 1), 0, 0).unwrap();
    log.append(idem(9, 0, 43, 1), 0, 0).unwrap();
}

#[test]
fn only_five_batches_are_remembered_for_dedup() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    for seq in 0..6 {
        log.append(idem(7, 0, seq, 1), 0, 0).unwrap();
    }
    // Batch 0 fell out of the window: it is not a duplicate but a gap.
    assert!(matches!(
        producer_err(log.append(idem(7, 0, 0, 1), 0, 0)),
        ProducerError::OutOfOrderSequence { .. }
    ));
    assert!(matches!(
        producer_err(log.append(idem(7, 0, 1, 1), 0, 0)),
        ProducerError::Duplicate { .. }
    ));
}

#[test]
fn clients_cannot_write_control_batches() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    let e = producer_err(log.append(marker(7, 0, MarkerType::Commit), 0, 0));
    assert_eq!(e, ProducerError::ControlBatchFromClient);
    assert_eq!(log.log_end_offset(), 0);
}

#[test]
fn open_transaction_holds_back_first_unstable_offset_until_marker() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.append(idem(1, 0, 0, 2), 0, 0).unwrap(); // 0..=1
    log.append(txn(7, 0, 0, 2), 0, 0).unwrap(); // 2..=3
    log.append(txn(8, 0, 0, 1), 0, 0).unwrap(); // 4
    assert_eq!(log.first_unstable_offset(), Some(2));
    let abort = log
        .append_as(
            marker(7, 0, MarkerType::Abort),
            0,
            0,
            AppendOrigin::Coordinator,
        )
        .unwrap();
    assert_eq!(abort.base_offset, 5);
    assert_eq!(log.first_unstable_offset(), Some(4));
    log.append_as(
        marker(8, 0, MarkerType::Commit),
        0,
        0,
        AppendOrigin::Coordinator,
    )
    .unwrap();
    assert_eq!(log.first_unstable_offset(), None);
    let aborted = log.aborted_transactions(0, 100);
    assert_eq!(aborted.len(), 1);
    assert_eq!(
        (
            aborted[0].producer_id,
            aborted[0].first_offset,
            aborted[0].last_offset
        ),
        (7, 2, 5)
    );
    // Ranges that end before the transaction or start after its marker miss it.
    assert!(log.aborted_transactions(0, 2).is_empty());
    assert!(log.aborted_transactions(6, 100).is_empty());
    // Sequences continue across transactions within one epoch.
    log.append(txn(7, 0, 2, 1), 0, 0).unwrap();
}

#[test]
fn marker_with_older_epoch_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.append(txn(7, 3, 0, 1), 0, 0).unwrap();
    let e = producer_err(log.append_as(
        marker(7, 2, MarkerType::Commit),
        0,
        0,
        AppendOrigin::Coordinator,
    ));
    assert!(matches!(e, ProducerError::InvalidEpoch { current: 3, .. }));
    // A bumped-epoch abort (timeout or fencing) fences the old epoch.
    log.append_as(
        marker(7, 4, MarkerType::Abort),
        0,
        0,
        AppendOrigin::Coordinator,
    )
    .unwrap();
    assert_eq!(
        producer_err(log.append(txn(7, 3, 1, 1), 0, 0)).kafka_error_code(),
        47
    );
}

/// The group coordinator writes transactional offset commits as Kafka does:
/// transactional batches with no sequence (-1). Several may go into one
/// transaction and into later transactions of the same epoch, so their
/// sequences are not checked; their epoch still is.
#[test]
fn coordinator_transactional_batches_without_sequence_skip_sequence_checks() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    let offsets = |epoch: i16| txn(7, epoch, -1, 1);
    let write = |batch: BytesMut| log.append_as(batch, 0, 0, AppendOrigin::Coordinator);
    assert_eq!(write(offsets(2)).unwrap().base_offset, 0);
    // A second commit in the same transaction and epoch.
    assert_eq!(write(offsets(2)).unwrap().base_offset, 1);
    assert_eq!(log.first_unstable_offset(), Some(0));
    write(marker(7, 2, MarkerType::Commit)).unwrap();
    assert_eq!(log.first_unstable_offset(), None);
    // The next transaction of the same epoch, after its marker.
    assert_eq!(write(offsets(2)).unwrap().base_offset, 3);
    assert_eq!(log.first_unstable_offset(), Some(3));
    // A bumped epoch starts without a sequence too.
    write(marker(7, 3, MarkerType::Abort)).unwrap();
    assert_eq!(write(offsets(3)).unwrap().base_offset, 5);
    // An older epoch is still fenced.
    assert!(matches!(
        producer_err(write(offsets(2))),
        ProducerError::InvalidEpoch { current: 3, .. }
    ));
    // A client's batch without a sequence is still checked.
    assert!(matches!(
        producer_err(log.append(offsets(3), 0, 0)),
        ProducerError::OutOfOrderSequence { .. }
    ));
    assert_eq!(log.log_end_offset(), 6);
}

fn state_after_reopen(delete_snapshot: bool) {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), LogConfig::default()).unwrap();
        log.append(idem(7, 0, 0, 2), 0, 0).unwrap();
        log.append(txn(8, 0, 0, 1), 0, 0).unwrap();
        log.append(txn(9, 0, 0, 1), 0, 0).unwrap();
        log.append_as(
            marker(9, 0, MarkerType::Abort),
            0,
            0,
            AppendOrigin::Coordinator,
        )
        .unwrap();
        log.flush().unwrap();
        // Appended after the snapshot: only a replay of the tail knows it.
        log.append(idem(7, 0, 2, 1), 0, 0).unwrap();
        log.sync_until(log.log_end_offset()).unwrap();
    }
    if delete_snapshot {
        std::fs::remove_file(dir.path().join(PRODUCER_STATE_FILE)).unwrap();
    }
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert!(matches!(
        producer_err(log.append(idem(7, 0, 2, 1), 0, 0)),
        ProducerError::Duplicate {
            base_offset: 5,
            last_offset: 5
        }
    ));
    assert!(matches!(
        producer_err(log.append(idem(7, 0, 9, 1), 0, 0)),
        ProducerError::OutOfOrderSequence { expected: 3, .. }
    ));
    assert_eq!(log.first_unstable_offset(), Some(2));
    let aborted = log.aborted_transactions(0, 100);
    assert_eq!(aborted.len(), 1);
    assert_eq!((aborted[0].first_offset, aborted[0].last_offset), (3, 4));
}

#[test]
fn producer_state_survives_reopen_from_snapshot_plus_tail() {
    state_after_reopen(false);
}

#[test]
fn producer_state_is_rebuilt_from_the_log_without_a_snapshot() {
    state_after_reopen(true);
}

#[test]
fn malformed_snapshot_is_ignored_and_state_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), LogConfig::default()).unwrap();
        log.append(idem(7, 0, 0, 1), 0, 0).unwrap();
        log.flush().unwrap();
    }
    std::fs::write(
        dir.path().join(PRODUCER_STATE_FILE),
        "version 1\nend_offset 1\nproducers 99999999999\n",
    )
    .unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert!(matches!(
        producer_err(log.append(idem(7, 0, 0, 1), 0, 0)),
        ProducerError::Duplicate { .. }
    ));
}

#[test]
fn snapshot_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.append(idem(7, 2, 0, 3), 0, 0).unwrap();
    log.append(txn(8, 0, 0, 1), 0, 0).unwrap();
    log.append(txn(9, 0, 0, 1), 0, 0).unwrap();
    log.append_as(
        marker(9, 1, MarkerType::Abort),
        0,
        0,
        AppendOrigin::Coordinator,
    )
    .unwrap();
    log.flush().unwrap();
    let text = std::fs::read_to_string(dir.path().join(PRODUCER_STATE_FILE)).unwrap();
    let parsed = ProducerStateManager::from_snapshot(&text).unwrap();
    assert_eq!(parsed.to_snapshot(), text);
    assert_eq!(parsed.first_unstable_offset(), Some(3));
    assert!(
        !text.contains("\na "),
        "aborted transactions live in .txnindex files, not the snapshot"
    );
    // Any truncation of the file before its closing `end` line is refused,
    // never half-loaded.
    let end_line = text.len() - "end\n".len();
    for cut in 0..end_line {
        if text.is_char_boundary(cut) {
            assert!(
                ProducerStateManager::from_snapshot(&text[..cut]).is_none(),
                "cut at {cut}"
            );
        }
    }
}

#[test]
fn truncation_rebuilds_producer_state() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.append(idem(7, 0, 0, 1), 0, 0).unwrap();
    log.append(idem(7, 0, 1, 1), 0, 0).unwrap();
    log.flush().unwrap();
    log.truncate_to(1).unwrap();
    // Sequence 1 is gone from the log, so it is in order again, not a duplicate.
    assert_eq!(log.append(idem(7, 0, 1, 1), 0, 0).unwrap().base_offset, 1);
}

// ---- `.txnindex`: the per-segment aborted-transaction index ----

fn coordinator(log: &Log, pid: i64, kind: MarkerType) -> i64 {
    log.append_as(marker(pid, 0, kind), 0, 0, AppendOrigin::Coordinator)
        .unwrap()
        .base_offset
}

/// Every append rolls: each batch gets its own segment.
fn one_batch_per_segment() -> LogConfig {
    LogConfig {
        segment_bytes: 1,
        ..LogConfig::default()
    }
}

fn txn_index_bytes(dir: &std::path::Path, base: i64) -> Vec<u8> {
    std::fs::read(crate::segment::txn_index_path(dir, base)).unwrap()
}

fn aborted(log: &Log, from: i64, to: i64) -> Vec<(i64, i64, i64)> {
    log.read_aborted_transactions(from, to)
        .unwrap()
        .into_iter()
        .map(|a| (a.producer_id, a.first_offset, a.last_offset))
        .collect()
}

/// Offsets: 0..=1 txn of 7, 2 txn of 8, 3 ABORT 7, 4 COMMIT 8, 5 txn of 9,
/// 6 ABORT 9; one segment per batch.
fn two_aborts(log: &Log) {
    log.append(txn(7, 0, 0, 2), 0, 0).unwrap();
    log.append(txn(8, 0, 0, 1), 0, 0).unwrap();
    assert_eq!(coordinator(log, 7, MarkerType::Abort), 3);
    assert_eq!(coordinator(log, 8, MarkerType::Commit), 4);
    log.append(txn(9, 0, 0, 1), 0, 0).unwrap();
    assert_eq!(coordinator(log, 9, MarkerType::Abort), 6);
}

#[test]
fn abort_marker_writes_a_34_byte_entry_to_its_segments_txnindex() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), one_batch_per_segment()).unwrap();
    two_aborts(&log);
    let bytes = txn_index_bytes(dir.path(), 3);
    let mut expected = Vec::new();
    expected.extend_from_slice(&0i16.to_be_bytes());
    expected.extend_from_slice(&7i64.to_be_bytes()); // producer id
    expected.extend_from_slice(&0i64.to_be_bytes()); // first offset
    expected.extend_from_slice(&3i64.to_be_bytes()); // marker offset
    expected.extend_from_slice(&2i64.to_be_bytes()); // LSO: 8's transaction is still open
    assert_eq!(bytes, expected);
    let entries = crate::txn_index::decode_all(&txn_index_bytes(dir.path(), 6), 6, 7).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(
        (
            entries[0].producer_id,
            entries[0].first_offset,
            entries[0].last_offset
        ),
        (9, 5, 6)
    );
    assert_eq!(entries[0].last_stable_offset, 7, "nothing open after it");
    // The commit and the data segments have empty indexes.
    for base in [0, 2, 4, 5] {
        assert!(
            txn_index_bytes(dir.path(), base).is_empty(),
            "segment {base}"
        );
    }
}

#[test]
fn read_committed_range_query_returns_overlapping_aborts_only() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), one_batch_per_segment()).unwrap();
    two_aborts(&log);
    assert_eq!(aborted(&log, 0, 7), vec![(7, 0, 3), (9, 5, 6)]);
    assert_eq!(aborted(&log, 0, 2), vec![(7, 0, 3)]);
    assert_eq!(aborted(&log, 2, 3), vec![(7, 0, 3)]);
    // Starts after 7's marker; 9's transaction starts at the upper bound.
    assert!(aborted(&log, 4, 5).is_empty());
    assert_eq!(aborted(&log, 4, 7), vec![(9, 5, 6)]);
    assert!(aborted(&log, 7, 7).is_empty());
}

#[test]
fn txnindex_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), one_batch_per_segment()).unwrap();
        two_aborts(&log);
        log.flush().unwrap();
    }
    let before = txn_index_bytes(dir.path(), 3);
    let log = Log::open(dir.path(), one_batch_per_segment()).unwrap();
    assert_eq!(txn_index_bytes(dir.path(), 3), before);
    assert_eq!(aborted(&log, 0, 7), vec![(7, 0, 3), (9, 5, 6)]);
}

#[test]
fn deleted_txnindex_of_a_sealed_segment_is_rebuilt_on_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), one_batch_per_segment()).unwrap();
        two_aborts(&log);
        log.append(idem(1, 0, 0, 1), 0, 0).unwrap();
        log.flush().unwrap();
    }
    let (three, six) = (
        txn_index_bytes(dir.path(), 3),
        txn_index_bytes(dir.path(), 6),
    );
    std::fs::remove_file(crate::segment::txn_index_path(dir.path(), 3)).unwrap();
    // A damaged one is rebuilt too.
    std::fs::write(crate::segment::txn_index_path(dir.path(), 6), [1u8; 20]).unwrap();
    let log = Log::open(dir.path(), one_batch_per_segment()).unwrap();
    assert_eq!(txn_index_bytes(dir.path(), 3), three);
    assert_eq!(txn_index_bytes(dir.path(), 6), six);
    assert_eq!(aborted(&log, 0, 8), vec![(7, 0, 3), (9, 5, 6)]);
}

#[test]
fn old_snapshot_format_is_ignored_and_txnindex_rebuilt() {
    // The upgrade path: a version 0 snapshot (aborted list inside) and
    // segments without `.txnindex` files.
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), one_batch_per_segment()).unwrap();
        two_aborts(&log);
        log.append(txn(10, 0, 0, 1), 0, 0).unwrap(); // 7, left open
        log.flush().unwrap();
    }
    for base in [0, 2, 3, 4, 5, 6, 7] {
        std::fs::remove_file(crate::segment::txn_index_path(dir.path(), base)).unwrap();
    }
    std::fs::write(
        dir.path().join(PRODUCER_STATE_FILE),
        "version 0\nend_offset 8\nproducers 0\naborted 1\na 7 0 3\nend\n",
    )
    .unwrap();
    let log = Log::open(dir.path(), one_batch_per_segment()).unwrap();
    assert_eq!(aborted(&log, 0, 8), vec![(7, 0, 3), (9, 5, 6)]);
    assert_eq!(log.first_unstable_offset(), Some(7));
    let text = std::fs::read_to_string(dir.path().join(PRODUCER_STATE_FILE)).unwrap();
    assert!(text.starts_with("version 1\n"), "{text}");
}

#[test]
fn torn_txnindex_tail_of_the_active_segment_is_rederived() {
    let dir = tempfile::tempdir().unwrap();
    let path = crate::segment::txn_index_path(dir.path(), 0);
    let full = {
        let log = Log::open(dir.path(), LogConfig::default()).unwrap();
        log.append(txn(7, 0, 0, 2), 0, 0).unwrap(); // 0..=1
        coordinator(&log, 7, MarkerType::Abort); // 2
        log.flush().unwrap();
        log.append(txn(8, 0, 0, 1), 0, 0).unwrap(); // 3
        coordinator(&log, 8, MarkerType::Abort); // 4
        log.sync_until(log.log_end_offset()).unwrap();
        std::fs::read(&path).unwrap()
    };
    assert_eq!(full.len(), 68);
    // A crash left the second entry half written.
    std::fs::write(&path, &full[..34 + 10]).unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), full);
    assert_eq!(aborted(&log, 0, 5), vec![(7, 0, 2), (8, 3, 4)]);
}

#[test]
fn delete_records_and_retention_drop_txnindex_with_their_segment() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), one_batch_per_segment()).unwrap();
    two_aborts(&log);
    log.advance_log_start_offset(4).unwrap();
    for base in [0, 2, 3] {
        assert!(!crate::segment::txn_index_path(dir.path(), base).exists());
    }
    assert_eq!(aborted(&log, 4, 7), vec![(9, 5, 6)]);
    log.update_config(LogConfig {
        retention_ms: 1_000,
        ..one_batch_per_segment()
    });
    log.apply_retention(1_000_000).unwrap();
    assert!(!crate::segment::txn_index_path(dir.path(), 6).exists());
    assert!(aborted(&log, 7, 7).is_empty());
}

#[test]
fn truncation_cuts_txnindex_entries_past_the_new_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = crate::segment::txn_index_path(dir.path(), 0);
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.append(txn(7, 0, 0, 2), 0, 0).unwrap(); // 0..=1
    coordinator(&log, 7, MarkerType::Abort); // 2
    log.append(txn(8, 0, 0, 1), 0, 0).unwrap(); // 3
    coordinator(&log, 8, MarkerType::Abort); // 4
    assert_eq!(std::fs::read(&path).unwrap().len(), 68);
    log.truncate_to(4).unwrap();
    assert_eq!(std::fs::read(&path).unwrap().len(), 34);
    assert_eq!(aborted(&log, 0, 5), vec![(7, 0, 2)]);
    // 8's transaction is open again; aborting it indexes it again, once.
    assert_eq!(log.first_unstable_offset(), Some(3));
    coordinator(&log, 8, MarkerType::Abort);
    assert_eq!(aborted(&log, 0, 5), vec![(7, 0, 2), (8, 3, 4)]);
}
