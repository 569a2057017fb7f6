//! CreateTopics (19).

use std::future::Future;
use std::sync::Arc;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::create_topics::{
    CreatableTopicConfigs, CreatableTopicResult, CreateTopicsRequest, CreateTopicsResponse,
};

use super::RequestContext;
use sluice_metadata::config::LogDefaults;
use sluice_metadata::controller::{NewTopic, ReplicaAssignment};
use sluice_metadata::topic_config;
use sluice_metadata::{ApiError, Controller};

/// Kafka's DescribeConfigs source codes.
pub(crate) const SOURCE_TOPIC: i8 = 1;
pub(crate) const SOURCE_DEFAULT: i8 = 5;

/// Handles CreateTopics through `controller`; unset configs are reported
/// with their `log_defaults`.
pub fn handle(
    controller: &Arc<Controller>,
    log_defaults: &LogDefaults,
    _ctx: &RequestContext,
    _header: &RequestHeader,
    request: CreateTopicsRequest,
) -> impl Future<Output = CreateTopicsResponse> + Send + 'static {
    let controller = Arc::clone(controller);
    let log_defaults = log_defaults.clone();
    async move {
        let names: Vec<String> = request.topics.iter().map(|t| t.name.clone()).collect();
        // Manual assignments are checked by the controller, against the
        // brokers registered in the image.
        let new_topics: Vec<NewTopic> = request
            .topics
            .into_iter()
            .map(|t| NewTopic {
                name: t.name,
                num_partitions: t.num_partitions,
                replication_factor: t.replication_factor,
                configs: t.configs.into_iter().map(|c| (c.name, c.value)).collect(),
                assignments: t
                    .assignments
                    .into_iter()
                    .map(|a| ReplicaAssignment {
                        partition_index: a.partition_index,
                        broker_ids: a.broker_ids,
                    })
                    .collect(),
            })
            .collect();
        let mut created = controller
            .create_topics(new_topics, request.validate_only)
            .await
            .into_iter();
        let topics = names
            .into_iter()
            .map(|name| {
                let outcome = created.next().unwrap_or_else(|| {
                    Err(ApiError::new(code::UNKNOWN_SERVER_ERROR, "missing result"))
                });
                match outcome {
                    Ok(c) => CreatableTopicResult {
                        topic_id: c.topic_id,
                        error_code: code::NONE,
                        error_message: None,
                        num_partitions: c.num_partitions,
                        replication_factor: c.replication_factor,
                        configs: Some(
                            topic_config::TOPIC_CONFIGS
                                .iter()
                                .map(|d| {
                                    let set = c.configs.get(d.name);
                                    CreatableTopicConfigs {
                                        name: d.name.to_owned(),
                                        value: Some(set.cloned().unwrap_or_else(|| {
                                            topic_config::default_value(d.name, &log_defaults)
                                        })),
                                        read_only: false,
                                        config_source: if set.is_some() {
                                            SOURCE_TOPIC
                                        } else {
                                            SOURCE_DEFAULT
                                        },
                                        is_sensitive: d.sensitive,
                                        ..Default::default()
                                    }
                                })
                                .collect(),
                        ),
                        name,
                        ..Default::default()
                    },
                    Err(e) => CreatableTopicResult {
                        name,
                        error_code: e.code,
                        error_message: Some(e.message),
                        num_partitions: -1,
                        replication_factor: -1,
                        configs: None,
                        ..Default::default()
                    },
                }
            })
            .collect();
        CreateTopicsResponse {
            throttle_time_ms: 0,
            topics,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use sluice_protocol::messages::create_topics::{
        CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
    };

    use super::*;
    use crate::testing::{self, Node};

    fn topic(name: &str, num_partitions: i32) -> CreatableTopic {
        CreatableTopic {
            name: name.to_owned(),
            num_partitions,
            replication_factor: -1,
            ..Default::default()
        }
    }

    async fn create(
        node: &Node,
        topics: Vec<CreatableTopic>,
        validate_only: bool,
    ) -> Vec<CreatableTopicResult> {
        let request = CreateTopicsRequest {
            topics,
            timeout_ms: 10_000,
            validate_only,
            ..Default::default()
        };
        let header = testing::header(19, 7);
        handle(
            &node.controller,
            &node.config.log,
            &testing::ctx(),
            &header,
            request,
        )
        .await
        .topics
    }

    fn config<'a>(result: &'a CreatableTopicResult, name: &str) -> &'a CreatableTopicConfigs {
        result
            .configs
            .as_ref()
            .and_then(|cs| cs.iter().find(|c| c.name == name))
            .unwrap_or_else(|| panic!("{name} listed"))
    }

    #[tokio::test]
    async fn creates_topics_and_reports_every_config_with_its_source() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        let mut compacted = topic("c", 2);
        compacted.configs = vec![CreatableTopicConfig {
            name: "cleanup.policy".to_owned(),
            value: Some("compact".to_owned()),
        }];
        let results = create(&node, vec![compacted], false).await;
        let c = &results[0];
        assert_eq!((c.name.as_str(), c.error_code), ("c", code::NONE));
        assert_eq!(c.num_partitions, 2);
        assert_eq!(c.topic_id, node.image().topics["c"].topic_id);
        let policy = config(c, "cleanup.policy");
        assert_eq!(policy.value.as_deref(), Some("compact"));
        assert_eq!(policy.config_source, SOURCE_TOPIC);
        let retention = config(c, "retention.ms");
        assert_eq!(
            retention.value,
            Some(node.config.log.retention_ms.to_string())
        );
        assert_eq!(retention.config_source, SOURCE_DEFAULT);
        assert!(node.replicas.partition("c", 1).is_some(), "hosted");
    }

    #[tokio::test]
    async fn one_bad_topic_fails_alone_in_request_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        node.create_topic("exists", 1).await;
        let mut foreign = topic("foreign", -1);
        foreign.replication_factor = -1;
        foreign.assignments = vec![CreatableReplicaAssignment {
            partition_index: 0,
            broker_ids: vec![node.config.node_id + 1],
        }];
        let mut counted = topic("counted", 2);
        counted.assignments = vec![CreatableReplicaAssignment {
            partition_index: 0,
            broker_ids: vec![node.config.node_id],
        }];
        let results = create(
            &node,
            vec![
                topic("exists", 1),
                foreign,
                topic("ok", 1),
                counted,
                topic("bad/name", 1),
            ],
            false,
        )
        .await;
        let codes: Vec<_> = results
            .iter()
            .map(|r| (r.name.as_str(), r.error_code))
            .collect();
        assert_eq!(
            codes,
            [
                ("exists", code::TOPIC_ALREADY_EXISTS),
                ("foreign", code::INVALID_REPLICA_ASSIGNMENT),
                ("ok", code::NONE),
                ("counted", code::INVALID_REQUEST),
                ("bad/name", code::INVALID_TOPIC_EXCEPTION),
            ]
        );
        for failed in results.iter().filter(|r| r.error_code != code::NONE) {
            assert!(failed.error_message.is_some());
            assert_eq!(failed.num_partitions, -1);
            assert!(failed.configs.is_none());
        }
        let topics = &node.image().topics;
        assert!(topics.contains_key("ok"));
        assert!(!topics.contains_key("foreign") && !topics.contains_key("counted"));
    }

    #[tokio::test]
    async fn a_manual_assignment_on_this_node_sets_the_partition_count() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        let mut manual = topic("m", -1);
        manual.assignments = (0..3)
            .map(|partition_index| CreatableReplicaAssignment {
                partition_index,
                broker_ids: vec![node.config.node_id],
            })
            .collect();
        let results = create(&node, vec![manual], false).await;
        assert_eq!(results[0].error_code, code::NONE);
        assert_eq!(results[0].num_partitions, 3);
        assert_eq!(node.image().topics["m"].partitions.len(), 3);
    }

    #[tokio::test]
    async fn manual_assignments_with_repeated_or_missing_partitions_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        let assign = |partition_index: i32| CreatableReplicaAssignment {
            partition_index,
            broker_ids: vec![node.config.node_id],
        };
        let mut repeated = topic("repeated", -1);
        repeated.assignments = vec![assign(0), assign(0)];
        let mut gap = topic("gap", -1);
        gap.assignments = vec![assign(0), assign(2)];
        let mut twice = topic("twice", -1);
        twice.assignments = vec![CreatableReplicaAssignment {
            partition_index: 0,
            broker_ids: vec![node.config.node_id; 2],
        }];
        let results = create(&node, vec![repeated, gap, twice], false).await;
        for r in &results {
            assert_eq!(r.error_code, code::INVALID_REPLICA_ASSIGNMENT, "{}", r.name);
        }
        assert!(node.image().topics.is_empty());
    }

    #[tokio::test]
    async fn validate_only_answers_without_creating() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        let results = create(&node, vec![topic("v", 4)], true).await;
        assert_eq!(results[0].error_code, code::NONE);
        assert_eq!(results[0].num_partitions, 4);
        assert!(!node.image().topics.contains_key("v"));
        assert!(node.replicas.partition("v", 0).is_none());
    }
}
