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

fn marker(pid: i64, epoch: i16, kind: MarkerType) -> BytesMut {
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
        "version 0\nend_offset 1\nproducers 99999999999\n",
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
    assert_eq!(parsed.aborted().len(), 1);
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
