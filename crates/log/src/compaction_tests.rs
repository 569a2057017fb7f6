//! `compaction::clean_log` over real logs: exactly the latest value per
//! key survives at its original offset, tombstones go after
//! `delete.retention.ms`, a small map cleans in several rounds to the same
//! result, and the result survives a reopen.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use sluice_records::{BatchBuilder, Batches, NewRecord, NextBatch, decode_records};

use crate::cleaner::OffsetMap;
use crate::compaction::{CleanReport, CompactionError, IoThrottle, clean_log};
use crate::producer_state::{MarkerType, PRODUCER_STATE_FILE};
use crate::producer_state_tests::marker;
use crate::{AppendOrigin, Log, LogConfig};

/// One keyed record (a tombstone when `value` is `None`) in its own batch;
/// `replace_tests.rs` builds its logs with it too.
pub(crate) fn record(key: &str, value: Option<&str>, ts: i64) -> BytesMut {
    BatchBuilder::new()
        .record(NewRecord {
            key: Some(Bytes::from(key.to_owned())),
            value: value.map(|v| Bytes::from(v.to_owned())),
            headers: vec![],
            timestamp_ms: ts,
        })
        .build()
        .unwrap()
}

/// One clean without an I/O limit.
fn clean(
    log: &Log,
    map: &mut OffsetMap,
    now_ms: i64,
    high_watermark: i64,
) -> Result<Option<CleanReport>, CompactionError> {
    clean_log(
        log,
        map,
        &mut IoThrottle::unlimited(),
        now_ms,
        high_watermark,
    )
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        index_interval_bytes: 256,
        retention_ms: -1,
        compact: true,
        delete: false,
        delete_retention_ms: 1_000,
        ..LogConfig::default()
    }
}

/// Every data record of the log: offset → (key, value).
fn records(log: &Log) -> BTreeMap<i64, (String, Option<String>)> {
    records_unless(log, |_| false)
}

/// The data records of the log, without markers and the batches `skip`
/// names: offset → (key, value).
fn records_unless(
    log: &Log,
    skip: impl Fn(&sluice_records::BatchHeader) -> bool,
) -> BTreeMap<i64, (String, Option<String>)> {
    let bytes = log
        .read(log.log_start_offset(), u32::MAX, i64::MAX)
        .unwrap()
        .to_bytes()
        .unwrap();
    let mut out = BTreeMap::new();
    for item in Batches::new(&bytes) {
        let NextBatch::Complete { header, bytes, .. } = item else {
            panic!("bad read: {item:?}")
        };
        if header.is_control() || header.record_count == 0 || skip(&header) {
            continue;
        }
        for r in decode_records(&Bytes::copy_from_slice(bytes)).unwrap() {
            let text =
                |b: &Option<Bytes>| b.as_ref().map(|b| String::from_utf8(b.to_vec()).unwrap());
            out.insert(
                header.base_offset + i64::from(r.offset_delta),
                (text(&r.key).unwrap(), text(&r.value)),
            );
        }
    }
    out
}

/// The table a reader builds: key → (offset, value) of the latest live record.
fn table(records: &BTreeMap<i64, (String, Option<String>)>) -> BTreeMap<String, (i64, String)> {
    let mut t = BTreeMap::new();
    for (offset, (key, value)) in records {
        match value {
            Some(v) => {
                t.insert(key.clone(), (*offset, v.clone()));
            }
            None => {
                t.remove(key);
            }
        }
    }
    t
}

/// `history` appended, then one record more so the last segment is sealed
/// behind it; flushed so everything is below the recovery point.
fn log_with(dir: &std::path::Path, history: &[(String, Option<String>, i64)]) -> Log {
    let log = Log::open(dir, config()).unwrap();
    for (key, value, ts) in history {
        log.append(record(key, value.as_deref(), *ts), 0, 0)
            .unwrap();
    }
    for _ in 0..40 {
        // Fill a segment past the history so it is all sealed.
        log.append(record("tail", Some(&"t".repeat(40)), 0), 0, 0)
            .unwrap();
    }
    log.flush().unwrap();
    log
}

#[test]
fn many_updates_to_few_keys_leave_the_latest_per_key_at_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let history: Vec<(String, Option<String>, i64)> = (0..400)
        .map(|i| {
            (
                format!("key-{}", i % 7),
                Some(format!("value-{i}-{}", "x".repeat(20))),
                0,
            )
        })
        .collect();
    let log = log_with(dir.path(), &history);
    let before = records(&log);
    let size_before = log.size_bytes();
    let mut map = OffsetMap::with_capacity(10_000);
    let report = clean(&log, &mut map, 10, i64::MAX).unwrap().expect("dirty");
    assert!(report.segments_rewritten > 0);
    assert!(
        log.size_bytes() < size_before / 4,
        "{} of {size_before}",
        log.size_bytes()
    );
    let after = records(&log);
    assert_eq!(table(&after), table(&before));
    // Exactly one record per key below the cleaned point, at its offset.
    let cleaned: Vec<_> = after.range(..report.cleaned_to).collect();
    let keys: std::collections::BTreeSet<_> = cleaned.iter().map(|(_, (k, _))| k).collect();
    assert_eq!(keys.len(), cleaned.len(), "one record per key: {cleaned:?}");
    for (offset, rec) in cleaned {
        assert_eq!(before.get(offset), Some(rec));
    }
    // Nothing dirty is left: a second clean has nothing to do.
    assert!(clean(&log, &mut map, 10, i64::MAX).unwrap().is_none());
    // And a reopen reads the same.
    drop(log);
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(records(&log), after);
}

#[test]
fn tombstones_stay_until_delete_retention_then_go() {
    let dir = tempfile::tempdir().unwrap();
    let mut history = Vec::new();
    for i in 0..50 {
        history.push((format!("k{}", i % 5), Some(format!("v{i}")), 100));
    }
    // Delete k0 and k1 at t = 5,000.
    history.push(("k0".to_owned(), None, 5_000));
    history.push(("k1".to_owned(), None, 5_000));
    let log = log_with(dir.path(), &history);
    let mut map = OffsetMap::with_capacity(1_000);
    // At t = 5,500 the tombstones are within delete.retention.ms (1 s).
    clean(&log, &mut map, 5_500, i64::MAX)
        .unwrap()
        .expect("dirty");
    let after = records(&log);
    let tombstones: Vec<_> = after.values().filter(|(_, v)| v.is_none()).collect();
    assert_eq!(tombstones.len(), 2, "{after:?}");
    assert!(!table(&after).contains_key("k0"));
    // Later, with new dirty data to trigger a clean, they are removed.
    for i in 0..40 {
        log.append(record("k4", Some(&format!("late{i}")), 9_000), 0, 0)
            .unwrap();
    }
    for _ in 0..40 {
        log.append(record("tail", Some(&"t".repeat(40)), 9_000), 0, 0)
            .unwrap();
    }
    log.flush().unwrap();
    clean(&log, &mut map, 10_000, i64::MAX)
        .unwrap()
        .expect("dirty");
    let after = records(&log);
    assert!(after.values().all(|(_, v)| v.is_some()), "{after:?}");
    assert_eq!(table(&after)["k4"].1, "late39");
}

#[test]
fn the_high_watermark_and_a_non_compacted_log_bound_the_clean() {
    let dir = tempfile::tempdir().unwrap();
    let history: Vec<_> = (0..200)
        .map(|i| (format!("k{}", i % 3), Some(format!("v{i}")), 0))
        .collect();
    let log = log_with(dir.path(), &history);
    let mut map = OffsetMap::with_capacity(100);
    // Nothing below the high watermark of 0.
    assert!(clean(&log, &mut map, 0, 0).unwrap().is_none());
    log.update_config(LogConfig {
        compact: false,
        delete: true,
        ..config()
    });
    assert!(clean(&log, &mut map, 0, i64::MAX).unwrap().is_none());
    assert_eq!(records(&log).len(), 240);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Any history of updates and deletes to a few keys, cleaned with a map
    /// of any size (so in one round or many): the table from the start is
    /// unchanged, every kept record sits at its original offset, and a
    /// reopen agrees.
    #[test]
    fn cleaning_in_rounds_keeps_the_table(
        ops in proptest::collection::vec((0u8..6, proptest::option::weighted(0.85, "[a-z]{1,30}")), 1..250),
        map_entries in 1usize..12,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let history: Vec<_> = ops
            .iter()
            .map(|(k, v)| (format!("key{k}"), v.clone(), 0))
            .collect();
        let log = log_with(dir.path(), &history);
        let before = records(&log);
        let mut map = OffsetMap::with_capacity(map_entries.max(2));
        // Tombstones are within the horizon (now = 0), so none is removed
        // and the table is comparable record by record.
        let mut rounds = 0;
        while clean(&log, &mut map, 0, i64::MAX).unwrap().is_some() {
            rounds += 1;
            prop_assert!(rounds < 500, "cleaning does not converge");
        }
        let after = records(&log);
        prop_assert_eq!(table(&after), table(&before));
        for (offset, rec) in &after {
            prop_assert_eq!(before.get(offset), Some(rec));
        }
        drop(log);
        let log = Log::open(dir.path(), config()).unwrap();
        prop_assert_eq!(records(&log), after);
    }
}

/// One step of a transactional history: a record from `actor` (0 writes
/// outside any transaction, 1 and 2 are transactional producers), or the
/// end of an actor's open transaction.
#[derive(Debug, Clone)]
enum Step {
    Write {
        actor: u8,
        key: u8,
        value: Option<String>,
    },
    End {
        actor: u8,
        commit: bool,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0u8..3, 0u8..6, proptest::option::weighted(0.8, "[a-z]{1,20}"))
            .prop_map(|(actor, key, value)| Step::Write { actor, key, value }),
        1 => (1u8..3, any::<bool>()).prop_map(|(actor, commit)| Step::End { actor, commit }),
    ]
}

/// Appends `steps` to a fresh log (open transactions ended at the end with
/// `commit_rest`), then a sealed tail, all flushed.
fn transactional_log(dir: &std::path::Path, steps: &[Step], commit_rest: bool) -> Log {
    let log = Log::open(dir, config()).unwrap();
    let producer_id = |actor: u8| 100 + i64::from(actor);
    let mut sequence = [0i32; 3];
    let mut open = [false; 3];
    let end = |log: &Log, actor: u8, commit: bool, open: &mut [bool; 3]| {
        if std::mem::take(&mut open[usize::from(actor)]) {
            let kind = if commit {
                MarkerType::Commit
            } else {
                MarkerType::Abort
            };
            log.append_as(
                marker(producer_id(actor), 0, kind),
                0,
                0,
                AppendOrigin::Coordinator,
            )
            .unwrap();
        }
    };
    for step in steps {
        match step {
            Step::Write {
                actor: 0,
                key,
                value,
            } => {
                log.append(record(&format!("key{key}"), value.as_deref(), 0), 0, 0)
                    .unwrap();
            }
            Step::Write { actor, key, value } => {
                let a = usize::from(*actor);
                let batch = BatchBuilder::new()
                    .producer(producer_id(*actor), 0, sequence[a])
                    .transactional(true)
                    .record(NewRecord {
                        key: Some(Bytes::from(format!("key{key}"))),
                        value: value.clone().map(Bytes::from),
                        headers: vec![],
                        timestamp_ms: 0,
                    })
                    .build()
                    .unwrap();
                log.append(batch, 0, 0).unwrap();
                sequence[a] += 1;
                open[a] = true;
            }
            Step::End { actor, commit } => end(&log, *actor, *commit, &mut open),
        }
    }
    for actor in 1..3 {
        end(&log, actor, commit_rest, &mut open);
    }
    for _ in 0..40 {
        log.append(record("tail", Some(&"t".repeat(40)), 0), 0, 0)
            .unwrap();
    }
    log.flush().unwrap();
    log
}

/// What a `read_committed` consumer reads from the start: offset → (key,
/// value) of the data records, without aborted transactions and markers.
fn committed_records(log: &Log) -> BTreeMap<i64, (String, Option<String>)> {
    let aborted = log.aborted_transactions(log.log_start_offset(), i64::MAX);
    records_unless(log, |header| {
        header.is_transactional()
            && aborted.iter().any(|a| {
                a.producer_id == header.producer_id
                    && (a.first_offset..=a.last_offset).contains(&header.base_offset)
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Any history of keys, values, tombstones, and committed and aborted
    /// transactions, cleaned in rounds with a map of any size and every
    /// tombstone and marker past the horizon: a `read_committed` reader
    /// starting at any offset builds the same table from the compacted log
    /// as from the original; kept records sit at their offsets; and
    /// producer state rebuilt from the compacted log alone has no
    /// transaction left open (a marker is never removed while its
    /// transaction's data remains).
    #[test]
    fn compacted_transactional_history_reads_the_same_from_any_offset(
        steps in proptest::collection::vec(step(), 1..200),
        commit_rest: bool,
        map_entries in 2usize..12,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let log = transactional_log(dir.path(), &steps, commit_rest);
        let before = committed_records(&log);
        let end = log.log_end_offset();
        prop_assert_eq!(log.first_unstable_offset(), None);
        let mut map = OffsetMap::with_capacity(map_entries);
        // now = 10 s: every tombstone (time 0) and marker (5 s) is past the
        // 1 s delete.retention.ms horizon.
        let mut rounds = 0;
        while clean(&log, &mut map, 10_000, i64::MAX).unwrap().is_some() {
            rounds += 1;
            prop_assert!(rounds < 500, "cleaning does not converge");
        }
        let after = committed_records(&log);
        for from in (0..=end).step_by(3) {
            let range = |r: &BTreeMap<i64, (String, Option<String>)>| {
                r.range(from..).map(|(o, kv)| (*o, kv.clone())).collect::<BTreeMap<_, _>>()
            };
            prop_assert_eq!(table(&range(&after)), table(&range(&before)), "from offset {}", from);
        }
        for (offset, rec) in &after {
            prop_assert_eq!(before.get(offset), Some(rec));
        }
        // Producer state rebuilt from the compacted segments alone.
        drop(log);
        let _ = std::fs::remove_file(dir.path().join(PRODUCER_STATE_FILE));
        let log = Log::open(dir.path(), config()).unwrap();
        prop_assert_eq!(log.first_unstable_offset(), None);
        prop_assert_eq!(committed_records(&log), after);
    }
}

#[test]
fn small_cleaned_segments_are_merged_up_to_the_segment_size() {
    let dir = tempfile::tempdir().unwrap();
    // 10 keys rewritten 400 times: each 2 KiB segment cleans down to a
    // few records, and a second clean merges those into few segments.
    let history: Vec<_> = (0..400)
        .map(|i| {
            (
                format!("k{}", i % 10),
                Some(format!("v{i}-{}", "x".repeat(20))),
                0,
            )
        })
        .collect();
    let log = log_with(dir.path(), &history);
    let segments_before = log.segment_bases().len();
    let mut map = OffsetMap::with_capacity(1_000);
    while clean(&log, &mut map, 0, i64::MAX).unwrap().is_some() {}
    let after_first = log.segment_bases().len();
    // More dirty data makes another clean due, which merges.
    for i in 0..40 {
        log.append(record("k0", Some(&format!("late{i}")), 0), 0, 0)
            .unwrap();
    }
    for _ in 0..40 {
        log.append(record("tail", Some(&"t".repeat(40)), 0), 0, 0)
            .unwrap();
    }
    log.flush().unwrap();
    let before = records(&log);
    while clean(&log, &mut map, 0, i64::MAX).unwrap().is_some() {}
    let segments = log.segment_bases();
    assert!(
        segments.len() < segments_before / 3 && segments.len() <= after_first,
        "{segments_before} segments, {after_first} after the first clean, {} now",
        segments.len()
    );
    // The table and every kept record's offset are as before.
    let after = records(&log);
    assert_eq!(table(&after), table(&before));
    for (offset, rec) in &after {
        assert_eq!(before.get(offset), Some(rec));
    }
    // Survives a reopen.
    drop(log);
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(records(&log), after);
}

#[test]
fn segments_group_by_size_and_offset_span() {
    use crate::SegmentSpan;
    use crate::compaction::{MAX_SEGMENT_OFFSET_SPAN, group_segments};
    let span = |base, end, size| SegmentSpan { base, end, size };
    let segments = [
        span(0, 10, 400),
        span(10, 20, 400),
        span(20, 30, 300),
        span(30, 40, 1_000),
        span(40, 50, 10),
        span(50, 60, 10),
    ];
    let groups: Vec<Vec<i64>> = group_segments(&segments, 1_000)
        .iter()
        .map(|g| g.iter().map(|s| s.base).collect())
        .collect();
    assert_eq!(groups, vec![vec![0, 10], vec![20], vec![30], vec![40, 50]]);
    // Sizes that fit, offsets that do not: the index's relative offsets
    // bound a run.
    let wide = [span(0, 10, 1), span(10, MAX_SEGMENT_OFFSET_SPAN + 1, 1)];
    assert_eq!(group_segments(&wide, 1_000).len(), 2);
    assert!(group_segments(&[], 1_000).is_empty());
}

#[test]
fn the_io_throttle_paces_to_its_rate() {
    use std::time::{Duration, Instant};
    let mut throttle = IoThrottle::new(Some(1_000_000));
    let t0 = Instant::now();
    // Within a check interval nothing is decided.
    assert_eq!(throttle.charge(600_000, t0), Duration::ZERO);
    // 900 kB in 300 ms is 3 MB/s: sleep until 900 ms have passed.
    let pause = throttle.charge(300_000, t0 + Duration::from_millis(300));
    assert_eq!(pause, Duration::from_millis(600));
    // A window within the rate asks for no sleep.
    let t1 = t0 + Duration::from_secs(1);
    throttle.charge(100_000, t1);
    assert_eq!(
        throttle.charge(100_000, t1 + Duration::from_millis(400)),
        Duration::ZERO
    );
    // No limit: never a sleep.
    let mut free = IoThrottle::new(Some(0));
    assert_eq!(free.charge(u64::MAX, t0), Duration::ZERO);
    assert_eq!(
        free.charge(u64::MAX, t0 + Duration::from_secs(1)),
        Duration::ZERO
    );
}
