//! The produce and fetch paths in-process, without a network: the
//! regression guard of issue 18. CI runs each benchmark once
//! (`cargo test -p sluice-broker --bench hot_path`, criterion's test mode,
//! in scripts/test.sh); `cargo bench -p sluice-broker --bench hot_path`
//! measures, and the timings are recorded in docs/benchmarks.md, never
//! asserted.
//!
//! - `produce_64x1KiB`: `handlers::dispatch` of a pre-encoded Produce
//!   (acks=1, one batch of 64 records of 1 KiB) until its response frame
//!   is encoded; the log left to the page cache (`page_cache`) or with
//!   Sluice's default group commit, one fsync per append here
//!   (`group_commit`).
//! - `fetch_1MiB`: a Fetch of 1 MiB from a 64 MiB log in the page cache,
//!   cycling through it. `dispatch` is the handler and the encoding, which
//!   leaves the batches in their segment file (sent by `sendfile` on plain
//!   TCP); `dispatch_and_copy` also reads them out through the copy path
//!   that TLS connections use, into a sink.

use std::sync::Arc;

mod common;

use common::{broker_with_topic, ctx, produce_frame, runtime};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sluice_broker::Broker;
use sluice_broker::config::Config;
use sluice_broker::handlers;
use sluice_broker::zero_copy::write_frame;
use sluice_metadata::config::FlushMode;
use sluice_protocol::messages::fetch::{FetchPartition, FetchRequest, FetchTopic};
use sluice_protocol::{RequestHeader, encode_request};

const TOPIC: &str = "bench";
const RECORD_BYTES: usize = 1024;
const RECORDS_PER_BATCH: usize = 64;
const FETCH_BYTES: i32 = 1 << 20;
const LOG_BYTES: usize = 64 << 20;

fn broker(rt: &tokio::runtime::Runtime, dir: &std::path::Path, flush: FlushMode) -> Arc<Broker> {
    let mut config = Config {
        data_dir: dir.to_owned(),
        ..Config::default()
    };
    config.log.flush_mode = flush;
    broker_with_topic(rt, config, TOPIC, Vec::new())
}

fn batch_frame() -> Bytes {
    produce_frame(
        TOPIC,
        (0..RECORDS_PER_BATCH)
            .map(|i| Bytes::from(vec![i as u8; RECORD_BYTES]))
            .collect(),
    )
}

/// Dispatches `frame` and waits for its response frame.
async fn round_trip(broker: &Broker, frame: Bytes) -> sluice_protocol::SplicedFrame {
    handlers::dispatch(broker, ctx(), frame)
        .expect("dispatch")
        .await
        .expect("answered")
}

/// A Fetch v12 of up to 1 MiB of partition 0 from `offset`, without its
/// length prefix.
fn fetch_frame(offset: i64) -> Bytes {
    let header = RequestHeader {
        request_api_key: 1,
        request_api_version: 12,
        correlation_id: 2,
        client_id: Some("bench".to_owned()),
    };
    let request = FetchRequest {
        max_wait_ms: 0,
        min_bytes: 0,
        max_bytes: FETCH_BYTES,
        topics: vec![FetchTopic {
            topic: TOPIC.to_owned(),
            partitions: vec![FetchPartition {
                partition: 0,
                fetch_offset: offset,
                partition_max_bytes: FETCH_BYTES,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    encode_request(&header, &request)
        .expect("encode")
        .freeze()
        .slice(4..)
}

fn produce(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let frame = batch_frame();
    let mut group = c.benchmark_group("produce_64x1KiB");
    group.throughput(Throughput::Bytes((RECORDS_PER_BATCH * RECORD_BYTES) as u64));
    for (label, flush) in [
        ("page_cache", FlushMode::Interval),
        ("group_commit", FlushMode::GroupCommit),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = broker(rt, dir.path(), flush);
        group.bench_function(label, |b| {
            b.iter(|| {
                let response = rt.block_on(round_trip(&broker, frame.clone()));
                assert!(!response.is_empty());
            })
        });
    }
    group.finish();
}

fn fetch(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = broker(rt, dir.path(), FlushMode::Interval);
    let frame = batch_frame();
    let batches = LOG_BYTES / (RECORDS_PER_BATCH * RECORD_BYTES);
    rt.block_on(async {
        for _ in 0..batches {
            round_trip(&broker, frame.clone()).await;
        }
    });
    let end = (batches * RECORDS_PER_BATCH) as i64;
    // Each fetch starts where the previous one ended, wrapping around.
    let step =
        (FETCH_BYTES as usize / (RECORDS_PER_BATCH * RECORD_BYTES) * RECORDS_PER_BATCH) as i64;
    let mut group = c.benchmark_group("fetch_1MiB");
    group.throughput(Throughput::Bytes(FETCH_BYTES as u64));
    let mut offset = 0;
    group.bench_function("dispatch", |b| {
        b.iter(|| {
            let response = rt.block_on(round_trip(&broker, fetch_frame(offset)));
            assert!(response.len() >= FETCH_BYTES as usize / 2);
            offset = (offset + step) % end;
        })
    });
    group.bench_function("dispatch_and_copy", |b| {
        b.iter(|| {
            rt.block_on(async {
                let response = round_trip(&broker, fetch_frame(offset)).await;
                let mut sink = tokio::io::sink();
                write_frame(&mut sink, &response).await.expect("write");
            });
            offset = (offset + step) % end;
        })
    });
    group.finish();
}

fn bench(c: &mut Criterion) {
    let rt = runtime();
    produce(c, &rt);
    fetch(c, &rt);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
