//! What the produce-path benches share: a pre-encoded Produce frame and
//! the request context they dispatch it with.

use std::sync::Arc;

use bytes::Bytes;
use sluice_broker::config::Config;
use sluice_broker::handlers::RequestContext;
use sluice_broker::{Broker, Principal};
use sluice_metadata::controller::NewTopic;
use sluice_protocol::messages::produce::{PartitionProduceData, ProduceRequest, TopicProduceData};
use sluice_protocol::{RequestHeader, encode_request};
use sluice_records::{BatchBuilder, NewRecord};

/// A Produce v9 (acks=1) of one batch holding `values` to partition 0 of
/// `topic`, without its length prefix (what `handlers::dispatch` takes).
pub fn produce_frame(topic: &str, values: Vec<Bytes>) -> Bytes {
    let mut batch = BatchBuilder::new();
    for value in values {
        batch.push(NewRecord {
            key: None,
            value: Some(value),
            headers: vec![],
            timestamp_ms: 1_700_000_000_000,
        });
    }
    let request = ProduceRequest {
        acks: 1,
        timeout_ms: 30_000,
        topic_data: vec![TopicProduceData {
            name: topic.to_owned(),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: batch.build().expect("batch").freeze(),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let header = RequestHeader {
        request_api_key: 0,
        request_api_version: 9,
        correlation_id: 1,
        client_id: Some("bench".to_owned()),
    };
    let frame = encode_request(&header, &request).expect("encode").freeze();
    frame.slice(4..)
}

/// The runtime the benches drive the broker on: two workers, as the
/// machine has two cores.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// An in-process broker on `config` holding `topic`, one partition, with
/// the topic `configs` given.
pub fn broker_with_topic(
    rt: &tokio::runtime::Runtime,
    config: Config,
    topic: &str,
    configs: Vec<(String, Option<String>)>,
) -> Arc<Broker> {
    let broker = Arc::new(
        Broker::open(config, "bench".to_owned(), ("127.0.0.1".to_owned(), 9092)).expect("open"),
    );
    rt.block_on(async {
        let topic = NewTopic {
            name: topic.to_owned(),
            num_partitions: 1,
            replication_factor: -1,
            configs,
            assignments: Vec::new(),
        };
        let created = broker.controller.create_topics(vec![topic], false).await;
        assert!(created.iter().all(|r| r.is_ok()), "{created:?}");
    });
    broker
}

/// An anonymous client on the PLAINTEXT listener.
pub fn ctx() -> RequestContext {
    RequestContext {
        peer: "127.0.0.1:40000".parse().expect("addr"),
        principal: Arc::new(Principal::anonymous()),
        listener: Arc::from("PLAINTEXT"),
        throttle: Default::default(),
    }
}
