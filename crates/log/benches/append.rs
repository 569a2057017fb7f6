//! Append and sequential-read throughput of the log.
//!
//! Appends 1 KiB records in 16 KiB and 1 MiB batches, either leaving data in
//! the page cache or calling `sync_until` (group commit, one fdatasync) after
//! every append; then reads the log sequentially 1 MiB at a time. Compare
//! with `dd ... conv=fdatasync` on the same disk (see docs/benchmarks.md).
//! Set `SLUICE_BENCH_DIR` to bench a disk other than the temp dir's.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sluice_log::{Keyring, Log, LogConfig};
use sluice_records::{BatchBuilder, NewRecord};

const RECORD_BYTES: usize = 1024;

fn batch(batch_bytes: usize) -> BytesMut {
    let mut b = BatchBuilder::new();
    for i in 0..batch_bytes / RECORD_BYTES {
        b.push(NewRecord {
            key: None,
            value: Some(Bytes::from(vec![(i % 251) as u8; RECORD_BYTES])),
            headers: vec![],
            timestamp_ms: 1_700_000_000_000,
        });
    }
    b.build().expect("bench batch builds")
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 256 << 20,
        // Keep the disk footprint bounded however long criterion runs.
        retention_bytes: 1 << 30,
        retention_ms: -1,
        max_message_bytes: 2 << 20,
        ..LogConfig::default()
    }
}

fn temp_dir() -> tempfile::TempDir {
    match std::env::var_os("SLUICE_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d).expect("bench dir"),
        None => tempfile::tempdir().expect("temp dir"),
    }
}

fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("append");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    for (label, batch_bytes) in [("16KiB", 16 << 10), ("1MiB", 1 << 20)] {
        let template = batch(batch_bytes);
        group.throughput(Throughput::Bytes(template.len() as u64));
        for fsync in [false, true] {
            let dir = temp_dir();
            let log = Log::open(dir.path(), config()).expect("open");
            let name = format!("{label}/{}", if fsync { "fsync" } else { "page-cache" });
            let mut appends = 0u64;
            group.bench_function(name, |b| {
                b.iter_batched(
                    || template.clone(),
                    |records| {
                        let info = log.append(records, 0, 0).expect("append");
                        if fsync {
                            log.sync_until(info.last_offset + 1).expect("sync");
                        }
                        appends += 1;
                        if appends.is_multiple_of(256) {
                            log.apply_retention(0).expect("retention");
                        }
                    },
                    BatchSize::LargeInput,
                )
            });
        }
    }
    group.finish();
}

/// Writers appending at once in the group-commit benchmark: roughly the
/// produce requests one fsync covers on a busy single-node broker.
const GROUP_COMMIT_WRITERS: usize = 8;

/// Several writers each append a 16 KiB batch and wait for it to be durable,
/// all at once: `sync_until` lets one fdatasync cover every waiter, which is
/// what makes small fsynced batches affordable.
fn group_commit(c: &mut Criterion) {
    let mut group = c.benchmark_group("group-commit");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    let template = batch(16 << 10);
    group.throughput(Throughput::Bytes(
        (template.len() * GROUP_COMMIT_WRITERS) as u64,
    ));
    let dir = temp_dir();
    let log = Log::open(dir.path(), config()).expect("open");
    let mut rounds = 0u64;
    group.bench_function(format!("16KiB/{GROUP_COMMIT_WRITERS}-writers/fsync"), |b| {
        b.iter(|| {
            std::thread::scope(|scope| {
                for _ in 0..GROUP_COMMIT_WRITERS {
                    let (log, records) = (&log, template.clone());
                    scope.spawn(move || {
                        let info = log.append(records, 0, 0).expect("append");
                        log.sync_until(info.last_offset + 1).expect("sync");
                    });
                }
            });
            rounds += 1;
            if rounds.is_multiple_of(64) {
                log.apply_retention(0).expect("retention");
            }
        })
    });
    group.finish();
}

fn read(c: &mut Criterion) {
    let dir = temp_dir();
    let log = Log::open(dir.path(), config()).expect("open");
    let template = batch(16 << 10);
    // 256 MiB of 16 KiB batches: fits the page cache, spans one segment.
    for _ in 0..(256 << 20) / template.len() {
        log.append(template.clone(), 0, 0).expect("append");
    }
    log.flush().expect("flush");
    let end = log.log_end_offset();
    let mut group = c.benchmark_group("read");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Bytes(1 << 20));
    let mut offset = 0i64;
    group.bench_function("sequential-1MiB", |b| {
        b.iter(|| {
            let r = log.read(offset, 1 << 20, i64::MAX).expect("read");
            let bytes = r.to_bytes().expect("pread");
            offset += (bytes.len() / template.len() * 16) as i64;
            if offset >= end {
                offset = 0;
            }
            bytes
        })
    });
    group.finish();
}

/// Encryption at rest: the same append (page cache, no fsync) and
/// sequential read, plain and with AES-256-GCM envelopes, so the ratio
/// shows what sealing and opening every batch costs on this CPU.
fn encryption(c: &mut Criterion) {
    let keyring = Arc::new(Keyring::new(vec![(1, [0x5a; 32])], 1).expect("keyring"));
    let mut group = c.benchmark_group("encryption");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    let template = batch(16 << 10);
    for (mode, keys) in [("plain", None), ("aes-256-gcm", Some(keyring))] {
        let dir = temp_dir();
        let cfg = LogConfig {
            encryption: keys,
            ..config()
        };
        let log = Log::open(dir.path(), cfg).expect("open");
        group.throughput(Throughput::Bytes(template.len() as u64));
        let mut appends = 0u64;
        group.bench_function(format!("append-16KiB/page-cache/{mode}"), |b| {
            b.iter_batched(
                || template.clone(),
                |records| {
                    log.append(records, 0, 0).expect("append");
                    appends += 1;
                    if appends.is_multiple_of(256) {
                        log.apply_retention(0).expect("retention");
                    }
                },
                BatchSize::LargeInput,
            )
        });
        // Then read what is there (at least 64 MiB, all in the page cache).
        while log.size_bytes() < 64 << 20 {
            log.append(template.clone(), 0, 0).expect("append");
        }
        let (start, end) = (log.log_start_offset(), log.log_end_offset());
        group.throughput(Throughput::Bytes(1 << 20));
        let mut offset = start;
        group.bench_function(format!("read-1MiB/{mode}"), |b| {
            b.iter(|| {
                let r = log.read(offset, 1 << 20, i64::MAX).expect("read");
                let bytes = r.to_bytes().expect("read and open");
                offset += (bytes.len() / template.len() * 16) as i64;
                if offset >= end {
                    offset = start;
                }
                bytes
            })
        });
    }
    group.finish();
}

criterion_group!(benches, append, group_commit, read, encryption);
criterion_main!(benches);
