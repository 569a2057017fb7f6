//! Throughput and memory of one log clean (`compaction::clean_log`).
//!
//! Each iteration cleans a fresh log of 64 MiB of 256-byte records in
//! 16 KiB batches and 16 MiB segments (built outside the timing; the
//! active segment is not cleaned) with the broker's default 32 MiB dedupe
//! buffer. Values are pseudo-random bytes, so lz4 cannot shrink them and
//! every variant cleans about the same bytes:
//! - `few-keys`: 1,000 keys rewritten over and over, so nearly every
//!   record goes and each batch is re-encoded (map, read, rewrite, swap);
//! - `few-keys-lz4`: the same with lz4 batches (decompress, recompress);
//! - `unique-keys`: every key distinct, so nothing goes and the clean only
//!   maps and reads (unchanged segments are not rewritten).
//!
//! Throughput is bytes of log cleaned per second. After the runs it prints
//! the process's peak resident memory beside the map's bound, the memory
//! figure quoted in docs/benchmarks.md. Set `SLUICE_BENCH_DIR` to bench
//! another disk.

use std::time::Duration;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sluice_log::cleaner::{MAX_BYTES_PER_ENTRY, OffsetMap};
use sluice_log::compaction::{IoThrottle, READ_CHUNK_BYTES, clean_log};
use sluice_log::{Log, LogConfig};
use sluice_records::{BatchBuilder, Compression, NewRecord};

const LOG_BYTES: usize = 64 << 20;
const RECORD_BYTES: usize = 256;
const BATCH_RECORDS: usize = 64;
/// The broker's default `log.cleaner_dedupe_buffer_bytes`.
const DEDUPE_BUFFER_BYTES: usize = 32 << 20;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 16 << 20,
        retention_ms: -1,
        compact: true,
        delete: false,
        ..LogConfig::default()
    }
}

fn temp_dir() -> tempfile::TempDir {
    match std::env::var_os("SLUICE_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d).expect("bench dir"),
        None => tempfile::tempdir().expect("temp dir"),
    }
}

/// A flushed compacted log of about [`LOG_BYTES`], keys drawn from
/// `keys` distinct values (`None`: every key distinct).
fn build(keys: Option<usize>, codec: Compression) -> (tempfile::TempDir, Log) {
    let dir = temp_dir();
    let log = Log::open(dir.path(), config()).expect("open");
    let batches = LOG_BYTES / (RECORD_BYTES * BATCH_RECORDS);
    let mut n = 0usize;
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..batches + 1 {
        let mut b = BatchBuilder::new().compression(codec);
        for _ in 0..BATCH_RECORDS {
            let key = keys.map_or(n, |k| n % k);
            let value: Vec<u8> = (0..RECORD_BYTES - 16)
                .map(|_| {
                    // xorshift64: incompressible, and the same every run.
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            b.push(NewRecord {
                key: Some(Bytes::from(format!("key-{key:08}"))),
                value: Some(Bytes::from(value)),
                headers: vec![],
                timestamp_ms: 1_700_000_000_000,
            });
            n += 1;
        }
        log.append(b.build().expect("batch"), 0, 0).expect("append");
    }
    log.flush().expect("flush");
    (dir, log)
}

fn clean(c: &mut Criterion) {
    let mut group = c.benchmark_group("cleaner");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .warm_up_time(Duration::from_secs(1));
    let mut map = OffsetMap::with_capacity(OffsetMap::capacity_for_bytes(DEDUPE_BUFFER_BYTES));
    for (name, keys, codec) in [
        ("few-keys", Some(1_000), Compression::None),
        ("few-keys-lz4", Some(1_000), Compression::Lz4),
        ("unique-keys", None, Compression::None),
    ] {
        // Bytes a clean covers: all but the active segment.
        let range = build(keys, codec)
            .1
            .cleanable_range(1_700_000_000_000, i64::MAX)
            .expect("range");
        group.throughput(Throughput::Bytes(range.clean_bytes + range.dirty_bytes));
        group.bench_function(name, |b| {
            b.iter_batched(
                || build(keys, codec),
                |(dir, log)| {
                    let report = clean_log(
                        &log,
                        &mut map,
                        &mut IoThrottle::unlimited(),
                        1_700_000_000_000,
                        i64::MAX,
                    )
                    .expect("clean")
                    .expect("dirty");
                    assert!(report.stats.records_read > 0);
                    (dir, log)
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
    println!(
        "cleaner memory: map bound {} MiB ({} entries x {MAX_BYTES_PER_ENTRY} B), read chunk {} MiB; process peak RSS {} MiB",
        DEDUPE_BUFFER_BYTES >> 20,
        OffsetMap::capacity_for_bytes(DEDUPE_BUFFER_BYTES),
        READ_CHUNK_BYTES >> 20,
        peak_rss_kib().unwrap_or(0) >> 10,
    );
}

/// `VmHWM` of this process, in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

criterion_group!(benches, clean);
criterion_main!(benches);
