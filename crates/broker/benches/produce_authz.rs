//! What the authorizer costs on the produce path.
//!
//! Drives `handlers::dispatch` with a pre-encoded Produce frame (acks=1,
//! one batch of 16 records of 100 bytes) against an in-process broker, with
//! the authorizer off, and on with 1,000 unrelated ACLs plus the one that
//! grants the producer WRITE (a realistic index, every request a cache
//! hit). Flushing is left to the page cache (`flush_mode = interval`) so the
//! numbers show the request path, not fsync. Also times one cached
//! decision on its own. Results and the ratio: docs/benchmarks.md.

use std::sync::Arc;

mod common;

use common::{broker_with_topic, ctx, produce_frame, runtime};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use sluice_broker::Broker;
use sluice_broker::config::Config;
use sluice_broker::handlers;
use sluice_metadata::acl::{AclBinding, AclOperation, AclPermission, PatternType, ResourceType};
use sluice_metadata::config::FlushMode;

const TOPIC: &str = "bench";
const UNRELATED_ACLS: usize = 1_000;

fn acl(name: &str, principal: &str) -> AclBinding {
    AclBinding {
        resource_type: ResourceType::Topic,
        resource_name: name.to_owned(),
        pattern_type: PatternType::Literal,
        principal: principal.to_owned(),
        host: "*".to_owned(),
        operation: AclOperation::Write,
        permission: AclPermission::Allow,
    }
}

fn broker(rt: &tokio::runtime::Runtime, dir: &std::path::Path, authorize: bool) -> Arc<Broker> {
    let mut config = Config {
        data_dir: dir.to_owned(),
        ..Config::default()
    };
    config.log.flush_mode = FlushMode::Interval;
    config.authorizer.enabled = authorize;
    let broker = broker_with_topic(rt, config, TOPIC, Vec::new());
    rt.block_on(async {
        if authorize {
            let mut acls: Vec<AclBinding> = (0..UNRELATED_ACLS)
                .map(|i| acl(&format!("other-{i}"), &format!("User:u{i}")))
                .collect();
            acls.push(acl(TOPIC, "User:ANONYMOUS"));
            broker.controller.create_acls(acls).await.expect("ACLs");
        }
    });
    broker
}

fn bench(c: &mut Criterion) {
    let rt = runtime();
    let frame = produce_frame(
        TOPIC,
        (0..16u8).map(|i| Bytes::from(vec![i; 100])).collect(),
    );
    let mut cached = None;
    let mut group = c.benchmark_group("produce_16x100B_acks1");
    for (label, authorize) in [("authorizer_off", false), ("authorizer_on", true)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = broker(&rt, dir.path(), authorize);
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
        if authorize {
            cached = Some(Arc::clone(&broker.authorizer));
        }
    }
    group.finish();
    if let Some(authorizer) = cached {
        let ctx = ctx();
        c.bench_function("authorizer_cached_decision", |b| {
            b.iter(|| authorizer.topic(&ctx, AclOperation::Write, TOPIC))
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
