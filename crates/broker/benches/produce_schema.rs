//! What broker-side schema validation costs on the produce path.
//!
//! Drives `handlers::dispatch` with a pre-encoded Produce frame (acks=1,
//! one batch of 16 records of 100 bytes, each value in Confluent's wire
//! format with a registered schema id) against an in-process broker, to a
//! topic without validation and to one with
//! `confluent.value.schema.validation=true` (TopicNameStrategy), whose
//! records all pass. Flushing is left to the page cache
//! (`flush_mode = interval`) so the numbers show the request path, not
//! fsync. Results and the ratio: docs/benchmarks.md.

use std::sync::Arc;

mod common;

use common::{broker_with_topic, ctx, produce_frame, runtime};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use sluice_broker::Broker;
use sluice_broker::config::Config;
use sluice_broker::handlers;
use sluice_metadata::config::FlushMode;
use sluice_registry::{NewSchema, RegisterOptions, SchemaType};

const TOPIC: &str = "bench";

/// A broker with `TOPIC` (validating or not) and one schema registered
/// under `bench-value`; returns it and the schema's id.
fn broker(
    rt: &tokio::runtime::Runtime,
    dir: &std::path::Path,
    validate: bool,
) -> (Arc<Broker>, i32) {
    let mut config = Config {
        data_dir: dir.to_owned(),
        ..Config::default()
    };
    config.log.flush_mode = FlushMode::Interval;
    let configs = if validate {
        vec![(
            "confluent.value.schema.validation".to_owned(),
            Some("true".to_owned()),
        )]
    } else {
        Vec::new()
    };
    let broker = broker_with_topic(rt, config, TOPIC, configs);
    let id = rt.block_on(async {
        let schema = NewSchema {
            schema_type: SchemaType::Avro,
            text: r#"{"type":"record","name":"Reading","fields":[{"name":"v","type":"bytes"}]}"#
                .to_owned(),
            references: Vec::new(),
        };
        broker
            .registry
            .register("bench-value".to_owned(), schema, RegisterOptions::default())
            .await
            .expect("register")
    });
    (broker, id)
}

fn bench(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("produce_16x100B_acks1");
    for (label, validate) in [
        ("schema_validation_off", false),
        ("schema_validation_on", true),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let (broker, id) = broker(&rt, dir.path(), validate);
        let values = (0..16u8)
            .map(|i| {
                let mut value = vec![0];
                value.extend_from_slice(&id.to_be_bytes());
                value.extend_from_slice(&[i; 95]);
                Bytes::from(value)
            })
            .collect();
        let frame = produce_frame(TOPIC, values);
        let ctx = ctx();
        group.bench_function(label, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let reply =
                        handlers::dispatch(&broker, ctx.clone(), frame.clone()).expect("dispatch");
                    let response = reply.await.expect("acks=1 answers");
                    assert!(!response.is_empty());
                })
            })
        });
        // Every record passed: the log holds what was produced.
        let partition = broker.replicas.partition(TOPIC, 0).expect("hosted");
        assert!(
            partition.log().log_end_offset() > 0,
            "{label}: nothing appended"
        );
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
