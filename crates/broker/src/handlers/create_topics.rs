//! CreateTopics (19).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::create_topics::{
    CreatableTopicConfigs, CreatableTopicResult, CreateTopicsRequest, CreateTopicsResponse,
};

use super::RequestContext;
use crate::authz::Authorizer;
use crate::quota::MutationCharge;
use sluice_metadata::acl::AclOperation;
use sluice_metadata::config::LogDefaults;
use sluice_metadata::controller::{NewTopic, ReplicaAssignment};
use sluice_metadata::topic_config;
use sluice_metadata::{ApiError, Controller};

/// Kafka's DescribeConfigs source codes.
pub(crate) const SOURCE_TOPIC: i8 = 1;
pub(crate) const SOURCE_DEFAULT: i8 = 5;

/// Handles CreateTopics through `controller`; unset configs are reported
/// with their `log_defaults`. Each topic's partitions (`num.partitions`,
/// `default_num_partitions`, for one that asks for -1) are charged to
/// `mutations` (KIP-599) in request order.
#[allow(clippy::too_many_arguments)]
pub fn handle(
    controller: &Arc<Controller>,
    log_defaults: &LogDefaults,
    authorizer: &Authorizer,
    mutations: MutationCharge,
    default_num_partitions: i32,
    ctx: &RequestContext,
    _header: &RequestHeader,
    mut request: CreateTopicsRequest,
) -> impl Future<Output = CreateTopicsResponse> + Send + 'static {
    let controller = Arc::clone(controller);
    let log_defaults = log_defaults.clone();
    // Kafka: CREATE on the cluster allows every topic, else CREATE on each
    // topic; a denied topic is not created and reports
    // TOPIC_AUTHORIZATION_FAILED.
    let names: Vec<String> = request.topics.iter().map(|t| t.name.clone()).collect();
    let denied: std::collections::HashSet<String> = if authorizer.cluster(ctx, AclOperation::Create)
    {
        Default::default()
    } else {
        names
            .iter()
            .filter(|n| !authorizer.topic(ctx, AclOperation::Create, n))
            .cloned()
            .collect()
    };
    request.topics.retain(|t| !denied.contains(&t.name));
    // KIP-599: a topic over the controller mutation quota is not created
    // (strict versions) and says THROTTLING_QUOTA_EXCEEDED; the partitions
    // of one that then fails are given back below.
    let mut asked: HashMap<String, i32> = HashMap::new();
    let mut throttled: HashMap<String, ApiError> = HashMap::new();
    request.topics.retain(|t| {
        let partitions = if !t.assignments.is_empty() {
            i32::try_from(t.assignments.len()).unwrap_or(i32::MAX)
        } else if t.num_partitions == -1 {
            default_num_partitions
        } else {
            t.num_partitions
        };
        match mutations.request(partitions) {
            Ok(()) => {
                asked.insert(t.name.clone(), partitions);
                true
            }
            Err(e) => {
                throttled.insert(t.name.clone(), e);
                false
            }
        }
    });
    async move {
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
                if denied.contains(&name) {
                    return CreatableTopicResult {
                        error_code: code::TOPIC_AUTHORIZATION_FAILED,
                        error_message: Some(format!("CREATE on topic {name} is required")),
                        name,
                        num_partitions: -1,
                        replication_factor: -1,
                        configs: None,
                        ..Default::default()
                    };
                }
                let outcome = match throttled.remove(&name) {
                    Some(e) => Err(e),
                    None => created.next().unwrap_or_else(|| {
                        Err(ApiError::new(code::UNKNOWN_SERVER_ERROR, "missing result"))
                    }),
                };
                if outcome.is_err() {
                    mutations.give_back(asked.remove(&name).unwrap_or(0));
                }
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
        let response = CreateTopicsResponse {
            throttle_time_ms: mutations.throttle_time_ms(),
            topics,
            ..Default::default()
        };
        mutations.enforce().await;
        response
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
            &testing::allow_all(),
            MutationCharge::unbounded(),
            1,
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

    /// Sets `controller_mutation_rate` for client id `test` (the client id
    /// of [`testing::header`]).
    async fn mutation_quota(node: &Node, rate: f64) {
        use sluice_metadata::client_quota::{CLIENT_ID, CONTROLLER_MUTATION_RATE, QuotaAlteration};
        let results = node
            .controller
            .alter_client_quotas(
                vec![QuotaAlteration {
                    entity: vec![(CLIENT_ID.to_owned(), Some("test".to_owned()))],
                    ops: vec![(CONTROLLER_MUTATION_RATE.to_owned(), Some(rate))],
                }],
                false,
            )
            .await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
    }

    async fn create_charged(
        node: &Node,
        quotas: &std::sync::Arc<crate::quota::ClientQuotas>,
        version: i16,
        topics: Vec<CreatableTopic>,
    ) -> CreateTopicsResponse {
        let header = testing::header(19, version);
        let ctx = testing::ctx();
        let mutations = MutationCharge::new(quotas, node.controller.image(), &ctx, &header, 6);
        handle(
            &node.controller,
            &node.config.log,
            &testing::allow_all(),
            mutations,
            1,
            &ctx,
            &header,
            CreateTopicsRequest {
                topics,
                timeout_ms: 10_000,
                ..Default::default()
            },
        )
        .await
    }

    #[tokio::test]
    async fn a_strict_request_over_the_mutation_quota_is_refused_per_topic_and_creates_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        // 1 partition/s: a bucket of 11.
        mutation_quota(&node, 1.0).await;
        let quotas = std::sync::Arc::new(crate::quota::ClientQuotas::new(11, 1_000));
        // v7 (strict): an invalid topic asks for 8 (given back once it
        // fails), "a" for 8 more and goes over; "b" and "c" are refused.
        let mut bad = topic("bad", 8);
        bad.replication_factor = 0;
        let response = create_charged(
            &node,
            &quotas,
            7,
            vec![bad, topic("a", 8), topic("b", 8), topic("c", 1)],
        )
        .await;
        let codes: Vec<(String, i16)> = response
            .topics
            .iter()
            .map(|t| (t.name.clone(), t.error_code))
            .collect();
        assert_eq!(
            codes,
            [
                ("bad".to_owned(), code::INVALID_REPLICATION_FACTOR),
                ("a".to_owned(), code::NONE),
                ("b".to_owned(), code::THROTTLING_QUOTA_EXCEEDED),
                ("c".to_owned(), code::THROTTLING_QUOTA_EXCEEDED),
            ]
        );
        assert_eq!(
            response.topics[2].error_message.as_deref(),
            Some(crate::quota::THROTTLING_QUOTA_EXCEEDED_MESSAGE)
        );
        assert!(response.throttle_time_ms > 0, "{response:?}");
        let image = node.controller.image();
        assert!(!image.topics.contains_key("b") && !image.topics.contains_key("c"));
        // The failed topic's 8 came back: the bucket is above zero again.
        let response = create_charged(&node, &quotas, 7, vec![topic("d", 1)]).await;
        assert_eq!(response.topics[0].error_code, code::NONE, "{response:?}");
        // A user without the quota (another client id) is not limited.
        let mut header = testing::header(19, 7);
        header.client_id = Some("other".to_owned());
        let ctx = testing::ctx();
        let free = MutationCharge::new(&quotas, node.controller.image(), &ctx, &header, 6);
        for _ in 0..5 {
            assert!(free.request(100).is_ok());
        }
        assert_eq!(free.throttle_time_ms(), 0);
    }

    #[tokio::test]
    async fn an_older_request_over_the_mutation_quota_is_served_and_throttled() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        mutation_quota(&node, 1.0).await;
        let quotas = std::sync::Arc::new(crate::quota::ClientQuotas::new(11, 1_000));
        // v5 (permissive): 15 partitions are created, 4 past the bucket:
        // 4 s of throttle.
        let response = create_charged(&node, &quotas, 5, vec![topic("p", 15)]).await;
        assert_eq!(response.topics[0].error_code, code::NONE, "{response:?}");
        assert!(
            (3_000..=4_000).contains(&response.throttle_time_ms),
            "{}",
            response.throttle_time_ms
        );
        assert!(node.controller.image().topics.contains_key("p"));
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
