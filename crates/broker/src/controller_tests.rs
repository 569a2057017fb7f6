//! The controller and the replica manager together: admin changes commit
//! to the metadata log and the hosted partitions follow.

use std::sync::Arc;

use sluice_metadata::controller::{
    AlterMode, ConfigOp, MAX_PARTITIONS_PER_TOPIC, METADATA_TOPIC, NewTopic,
};
use sluice_protocol::error::codes as code;

use crate::Broker;
use crate::testing;

const OFFSETS: &str = "__consumer_offsets";

async fn broker_with_internal_topics(dir: &std::path::Path) -> Arc<Broker> {
    let broker = testing::broker_in(dir).await;
    broker
        .controller
        .ensure_internal_topic(OFFSETS, 1)
        .await
        .expect("offsets topic");
    broker
        .controller
        .ensure_internal_topic("__transaction_state", 1)
        .await
        .expect("transaction state topic");
    broker
}

fn set(k: &str, v: &str) -> ConfigOp {
    ConfigOp::Set(k.to_owned(), v.to_owned())
}

#[tokio::test]
async fn internal_topics_cannot_be_deleted_or_grown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = broker_with_internal_topics(dir.path()).await;
    testing::create_topic(&broker, "plain", 1).await;
    let results = broker
        .controller
        .delete_topics(vec![
            OFFSETS.into(),
            "__transaction_state".into(),
            "plain".into(),
        ])
        .await;
    assert_eq!(
        results[0].as_ref().map_err(|e| e.code),
        Err(code::TOPIC_AUTHORIZATION_FAILED)
    );
    assert_eq!(
        results[1].as_ref().map_err(|e| e.code),
        Err(code::TOPIC_AUTHORIZATION_FAILED)
    );
    assert!(results[2].is_ok(), "ordinary topics still go: {results:?}");
    assert!(broker.replicas.partition(OFFSETS, 0).is_some());
    assert!(
        broker
            .replicas
            .partition("__transaction_state", 0)
            .is_some()
    );
    let grown = broker
        .controller
        .create_partitions(vec![(OFFSETS.to_owned(), 5).into()], false)
        .await;
    assert_eq!(
        grown[0].as_ref().map_err(|e| e.code),
        Err(code::TOPIC_AUTHORIZATION_FAILED)
    );
    assert!(broker.replicas.partition(OFFSETS, 1).is_none());
}

#[tokio::test]
async fn configs_that_would_lose_internal_data_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = broker_with_internal_topics(dir.path()).await;
    let incremental = |ops: Vec<ConfigOp>| {
        broker
            .controller
            .alter_topic_configs(OFFSETS, ops, AlterMode::Incremental, false)
    };
    for ops in [
        vec![set("cleanup.policy", "delete")],
        vec![set("cleanup.policy", "compact,delete")],
        vec![set("retention.ms", "1000")],
        vec![set("retention.bytes", "1048576")],
        vec![ConfigOp::Delete("retention.ms".into())], // back to 7 days
        vec![ConfigOp::Append("cleanup.policy".into(), "delete".into())],
        vec![set("flush.messages", "1000")],
    ] {
        let err = incremental(ops.clone()).await.expect_err("refused");
        assert_eq!(err.code, code::INVALID_CONFIG, "{ops:?}: {err:?}");
    }
    // AlterConfigs replaces the whole set: leaving the pinned keys out
    // would reset them to the delete-and-expire defaults.
    let err = broker
        .controller
        .alter_topic_configs(
            OFFSETS,
            vec![set("segment.bytes", "1048576")],
            AlterMode::Replace,
            false,
        )
        .await
        .expect_err("replace without the pinned keys");
    assert_eq!(err.code, code::INVALID_CONFIG);
    // Harmless changes are fine, and the topic is still compacted forever.
    incremental(vec![set("segment.bytes", "1048576")])
        .await
        .expect("segment size");
    let image = broker.metadata.image();
    let configs = &image.topics[OFFSETS].configs;
    assert_eq!(configs["cleanup.policy"], "compact");
    assert_eq!(configs["retention.ms"], "-1");
    assert_eq!(configs["segment.bytes"], "1048576");
}

#[tokio::test]
async fn internal_names_cannot_be_created_with_losing_configs_or_as_the_metadata_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = testing::broker_in(dir.path()).await;
    let new = |name: &str, configs: Vec<(String, Option<String>)>| NewTopic {
        name: name.to_owned(),
        num_partitions: 1,
        replication_factor: -1,
        configs,
        assignments: Vec::new(),
    };
    let results = broker
        .controller
        .create_topics(
            vec![new(OFFSETS, vec![]), new(METADATA_TOPIC, vec![])],
            false,
        )
        .await;
    assert_eq!(
        results[0].as_ref().map_err(|e| e.code).err(),
        Some(code::INVALID_CONFIG)
    );
    assert_eq!(
        results[1].as_ref().map_err(|e| e.code).err(),
        Some(code::INVALID_REQUEST)
    );
    assert!(broker.metadata.image().topics.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_with_the_maximum_partitions_can_be_created_and_reloaded() {
    // On tmpfs when there is one: 10,000 partition directories cost tens
    // of thousands of fsyncs, which prove nothing here.
    let dir = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("tempdir");
    let topic = NewTopic {
        name: "wide".to_owned(),
        num_partitions: MAX_PARTITIONS_PER_TOPIC,
        replication_factor: -1,
        configs: vec![("retention.ms".to_owned(), Some("60000".to_owned()))],
        assignments: Vec::new(),
    };
    let topic_id = {
        let broker = broker_in(dir.path());
        let created = broker
            .controller
            .create_topics(vec![topic], false)
            .await
            .pop()
            .expect("one result")
            .expect("created");
        assert_eq!(created.num_partitions, MAX_PARTITIONS_PER_TOPIC);
        assert!(
            broker
                .replicas
                .partition("wide", MAX_PARTITIONS_PER_TOPIC - 1)
                .is_some()
        );
        broker.replicas.flush_all().expect("flush");
        created.topic_id
    };
    let broker = broker_in(dir.path());
    let image = broker.metadata.image();
    let wide = &image.topics["wide"];
    assert_eq!(wide.topic_id, topic_id);
    assert_eq!(wide.partitions.len(), MAX_PARTITIONS_PER_TOPIC as usize);
    assert_eq!(
        wide.configs.get("retention.ms").map(String::as_str),
        Some("60000")
    );
    assert_eq!(
        broker.replicas.all().len(),
        MAX_PARTITIONS_PER_TOPIC as usize
    );
}

/// A broker over `dir`, coordinators not loaded, not listening.
fn broker_in(dir: &std::path::Path) -> Arc<Broker> {
    crate::testing::bare_broker(dir, crate::config::Config::default())
}

fn new_topic(name: &str, partitions: i32) -> NewTopic {
    NewTopic {
        name: name.to_owned(),
        num_partitions: partitions,
        replication_factor: -1,
        configs: Vec::new(),
        assignments: Vec::new(),
    }
}

#[tokio::test]
async fn a_create_topics_whose_logs_cannot_be_created_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = broker_in(dir.path());
    // Partition 1's directory cannot be created: a file holds its name.
    let blocker = dir.path().join("t-1");
    std::fs::write(&blocker, b"in the way").expect("blocker");
    let results = broker
        .controller
        .create_topics(vec![new_topic("t", 2)], false)
        .await;
    let err = results[0].as_ref().expect_err("creation must fail");
    assert_eq!(err.code, code::KAFKA_STORAGE_ERROR);
    assert!(
        !broker.metadata.image().topics.contains_key("t"),
        "the failed topic is still in the metadata"
    );
    assert!(broker.replicas.partition("t", 0).is_none());
    assert!(
        !dir.path().join("t-0").exists(),
        "the failed creation left a partition directory behind"
    );
    // Nothing is left to collide with: once the obstacle is gone the
    // same name can be created, and it survives a restart.
    std::fs::remove_file(&blocker).expect("remove blocker");
    let results = broker
        .controller
        .create_topics(vec![new_topic("t", 2)], false)
        .await;
    assert!(results[0].is_ok(), "{:?}", results[0]);
    drop(broker);
    let broker = broker_in(dir.path());
    assert_eq!(broker.metadata.image().topics["t"].partitions.len(), 2);
}
