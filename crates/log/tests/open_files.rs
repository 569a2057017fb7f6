//! Open file descriptors stay bounded by the file cache, not by the number
//! of logs. In its own test binary so no other test's files are counted.

use std::sync::Arc;

use bytes::Bytes;
use sluice_log::{FileCache, Log, LogConfig};
use sluice_records::{BatchBuilder, Batches, NewRecord};

/// Logs opened at once: with four files held open per segment, as before
/// the cache, they would need 8,000 descriptors.
const LOGS: usize = 2_000;
/// The cache bound under test.
const CACHE_BOUND: usize = 64;
/// Descriptors beyond the cache that the test process itself may hold
/// (the test harness, stdio, a directory being listed, an in-flight read).
const SLACK: usize = 64;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("list /proc/self/fd")
        .count()
}

fn batch(value: &str) -> bytes::BytesMut {
    let mut b = BatchBuilder::new();
    b.push(NewRecord {
        key: None,
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
        headers: Vec::new(),
        timestamp_ms: 1_000,
    });
    b.build().expect("batch")
}

fn value_at(log: &Log, offset: i64) -> Bytes {
    let bytes = log
        .read(offset, u32::MAX, i64::MAX)
        .expect("read")
        .to_bytes()
        .expect("pread");
    let (_, batch) = Batches::new(&bytes)
        .filter_map(|b| match b {
            sluice_records::NextBatch::Complete { header, bytes, .. } => Some((header, bytes)),
            _ => None,
        })
        .find(|(h, _)| h.base_offset == offset)
        .expect("batch at offset");
    let records = sluice_records::decode_records(&Bytes::copy_from_slice(batch)).expect("decode");
    records[0].value.clone().expect("value")
}

#[test]
fn two_thousand_logs_stay_within_the_file_cache_bound() {
    // On tmpfs when there is one: the test counts descriptors, and 2,000
    // logs' worth of fsyncs on a shared disk would only make it slow.
    let dir = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("tempdir");
    let cache = Arc::new(FileCache::new(CACHE_BOUND));
    let baseline = open_fds();
    let bound = baseline + CACHE_BOUND + SLACK;
    let config = LogConfig {
        index_interval_bytes: 1,
        ..LogConfig::default()
    };
    let open = |i: usize| {
        Log::open_with_cache(
            &dir.path().join(format!("t-{i}")),
            config.clone(),
            Arc::clone(&cache),
        )
        .expect("open")
    };
    let logs: Vec<Log> = (0..LOGS).map(open).collect();
    assert!(
        open_fds() <= bound,
        "{} fds after opening, bound {bound}",
        open_fds()
    );
    for round in 0..2 {
        for (i, log) in logs.iter().enumerate() {
            log.append(batch(&format!("{i}/{round}")), 0, 0)
                .expect("append");
        }
        assert!(
            open_fds() <= bound,
            "{} fds after appends, bound {bound}",
            open_fds()
        );
        // Group commit on every log: most handles were evicted since their
        // write and are reopened for the fsync.
        for log in &logs {
            log.sync_until(round + 1).expect("fsync");
            assert_eq!(log.recovery_point(), round + 1);
        }
        assert!(
            open_fds() <= bound,
            "{} fds after fsyncs, bound {bound}",
            open_fds()
        );
    }
    for (i, log) in logs.iter().enumerate() {
        assert_eq!(value_at(log, 0), format!("{i}/0").as_bytes());
        assert_eq!(value_at(log, 1), format!("{i}/1").as_bytes());
    }
    assert!(
        open_fds() <= bound,
        "{} fds after reads, bound {bound}",
        open_fds()
    );
    for log in &logs {
        log.flush().expect("flush");
    }
    drop(logs);
    // Recovery of every log keeps nothing open beyond the cache either.
    let logs: Vec<Log> = (0..LOGS).map(open).collect();
    assert!(
        open_fds() <= bound,
        "{} fds after reopening, bound {bound}",
        open_fds()
    );
    for (i, log) in logs.iter().enumerate() {
        assert_eq!(log.log_end_offset(), 2);
        assert_eq!(value_at(log, 1), format!("{i}/1").as_bytes());
    }
    assert!(cache.open_files() <= CACHE_BOUND);
}
