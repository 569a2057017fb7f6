//! Cost of validating one producer batch (`validate_producer_batch`), the
//! work the produce path does per batch before the log append.
//!
//! 100 records of 1 KiB, uncompressed and with each codec, with an honest
//! header (nothing rewritten) and with a lying maxTimestamp (header
//! rewritten, CRC recomputed). For scale, `crc-only` is the CRC check the
//! old path already did. Results go in docs/benchmarks.md.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sluice_records::{
    BatchBuilder, Compression, MAX_DECOMPRESSED_BYTES, NewRecord, TimestampType, ValidationConfig,
    check_producer_batch, validate_producer_batch,
};

const RECORDS: usize = 100;
const RECORD_BYTES: usize = 1024;
const NOW: i64 = 1_700_000_000_000;

fn batch(codec: Compression) -> BytesMut {
    let mut b = BatchBuilder::new().compression(codec);
    for i in 0..RECORDS {
        // Text-like values, so the codecs have something to compress.
        let value: Vec<u8> = (0..RECORD_BYTES)
            .map(|j| b"abcdefghijklmnop"[(i + j / 7) % 16])
            .collect();
        b.push(NewRecord {
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(value)),
            headers: vec![("h".into(), Some(Bytes::from_static(b"1")))],
            timestamp_ms: NOW - i as i64,
        });
    }
    b.build().expect("bench batch builds")
}

fn lie(mut b: BytesMut) -> BytesMut {
    b[35..43].copy_from_slice(&(-1i64).to_be_bytes());
    let crc = sluice_records::batch::compute_crc(&b);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

fn config() -> ValidationConfig {
    ValidationConfig {
        timestamp_type: TimestampType::CreateTime,
        timestamp_before_max_ms: i64::MAX,
        timestamp_after_max_ms: 3_600_000,
        compacted: false,
        max_batch_bytes: 1 << 20,
        max_decompressed_bytes: MAX_DECOMPRESSED_BYTES,
        zstd_allowed: true,
    }
}

fn validate(c: &mut Criterion) {
    let mut group = c.benchmark_group("validate");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    let cfg = config();
    for codec in Compression::ALL {
        let honest = batch(codec);
        // Throughput in uncompressed record bytes, so codecs compare fairly.
        group.throughput(Throughput::Bytes((RECORDS * RECORD_BYTES) as u64));
        group.bench_function(format!("{}/crc-only", codec.name()), |b| {
            b.iter(|| check_producer_batch(&honest, 1 << 20).expect("valid"))
        });
        let mut buf = honest.clone();
        group.bench_function(format!("{}/honest", codec.name()), |b| {
            b.iter(|| validate_producer_batch(&mut buf, &cfg, NOW).expect("valid"))
        });
        let lying = lie(honest.clone());
        group.bench_function(format!("{}/lying-header", codec.name()), |b| {
            b.iter_batched_ref(
                || lying.clone(),
                |buf| validate_producer_batch(buf, &cfg, NOW).expect("valid"),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, validate);
criterion_main!(benches);
