//! CreatePartitions (37).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::create_partitions::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreatePartitionsTopicResult,
};

use super::RequestContext;
use crate::authz::Authorizer;
use crate::quota::MutationCharge;
use sluice_metadata::Controller;
use sluice_metadata::acl::AclOperation;
use sluice_metadata::controller::NewPartitions;

/// Handles CreatePartitions through `controller`, which checks manual
/// assignments against the brokers registered in the image. The partitions
/// each topic adds are charged to `mutations` (KIP-599) in request order.
pub fn handle(
    controller: &Arc<Controller>,
    authorizer: &Authorizer,
    mutations: MutationCharge,
    ctx: &RequestContext,
    _header: &RequestHeader,
    request: CreatePartitionsRequest,
) -> impl Future<Output = CreatePartitionsResponse> + Send + 'static {
    let controller = Arc::clone(controller);
    // Kafka: ALTER on each topic, else TOPIC_AUTHORIZATION_FAILED.
    let denied: std::collections::HashSet<String> = request
        .topics
        .iter()
        .filter(|t| !authorizer.topic(ctx, AclOperation::Alter, &t.name))
        .map(|t| t.name.clone())
        .collect();
    // KIP-599: a topic over the controller mutation quota gets no new
    // partitions (strict versions) and says THROTTLING_QUOTA_EXCEEDED; one
    // that then fails gives its partitions back.
    let image = controller.image();
    let mut partitions_asked: HashMap<String, i32> = HashMap::new();
    let mut throttled: HashSet<String> = HashSet::new();
    for t in request.topics.iter().filter(|t| !denied.contains(&t.name)) {
        let Some(topic) = image.topics.get(&t.name) else {
            continue;
        };
        let current = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
        let adding = t.count.saturating_sub(current);
        match mutations.request(adding) {
            Ok(()) => {
                partitions_asked.insert(t.name.clone(), adding);
            }
            Err(_) => {
                throttled.insert(t.name.clone());
            }
        }
    }
    async move {
        let names: Vec<String> = request.topics.iter().map(|t| t.name.clone()).collect();
        let asks = request
            .topics
            .into_iter()
            .filter(|t| !denied.contains(&t.name) && !throttled.contains(&t.name))
            .map(|t| NewPartitions {
                topic: t.name,
                count: t.count,
                assignments: t
                    .assignments
                    .map(|a| a.into_iter().map(|x| x.broker_ids).collect()),
            })
            .collect();
        let mut results = controller
            .create_partitions(asks, request.validate_only)
            .await
            .into_iter();
        let results = names
            .into_iter()
            .map(|name| {
                let (error_code, error_message) = if denied.contains(&name) {
                    (
                        code::TOPIC_AUTHORIZATION_FAILED,
                        Some(format!("ALTER on topic {name} is required")),
                    )
                } else if throttled.contains(&name) {
                    (
                        code::THROTTLING_QUOTA_EXCEEDED,
                        Some(crate::quota::THROTTLING_QUOTA_EXCEEDED_MESSAGE.to_owned()),
                    )
                } else {
                    match results.next() {
                        Some(Ok(())) => (code::NONE, None),
                        Some(Err(e)) => {
                            mutations.give_back(partitions_asked.remove(&name).unwrap_or(0));
                            (e.code, Some(e.message))
                        }
                        None => (code::UNKNOWN_SERVER_ERROR, None),
                    }
                };
                CreatePartitionsTopicResult {
                    name,
                    error_code,
                    error_message,
                    ..Default::default()
                }
            })
            .collect();
        let response = CreatePartitionsResponse {
            throttle_time_ms: mutations.throttle_time_ms(),
            results,
            ..Default::default()
        };
        mutations.enforce().await;
        response
    }
}

#[cfg(test)]
mod tests {
    use sluice_protocol::messages::create_partitions::{
        CreatePartitionsAssignment, CreatePartitionsTopic,
    };

    use super::*;
    use crate::testing::{self, Node};

    async fn grow(
        node: &Node,
        topics: Vec<CreatePartitionsTopic>,
        validate_only: bool,
    ) -> Vec<(String, i16)> {
        let request = CreatePartitionsRequest {
            topics,
            timeout_ms: 10_000,
            validate_only,
            ..Default::default()
        };
        let header = testing::header(37, 3);
        handle(
            &node.controller,
            &testing::allow_all(),
            MutationCharge::unbounded(),
            &testing::ctx(),
            &header,
            request,
        )
        .await
        .results
        .into_iter()
        .map(|r| (r.name, r.error_code))
        .collect()
    }

    fn to(name: &str, count: i32) -> CreatePartitionsTopic {
        CreatePartitionsTopic {
            name: name.to_owned(),
            count,
            assignments: None,
        }
    }

    #[tokio::test]
    async fn grows_a_topic_and_refuses_shrinking_unknown_topics_and_other_brokers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        node.create_topic("t", 1).await;
        node.create_topic("u", 3).await;
        let mut foreign = to("u", 5);
        foreign.assignments = Some(vec![
            CreatePartitionsAssignment {
                broker_ids: vec![node.config.node_id + 1],
            };
            2
        ]);
        let results = grow(
            &node,
            vec![to("t", 3), foreign, to("u", 2), to("missing", 2)],
            false,
        )
        .await;
        let expected = [
            ("t", code::NONE),
            ("u", code::INVALID_REPLICA_ASSIGNMENT),
            ("u", code::INVALID_PARTITIONS),
            ("missing", code::UNKNOWN_TOPIC_OR_PARTITION),
        ];
        let got: Vec<_> = results.iter().map(|(n, c)| (n.as_str(), *c)).collect();
        assert_eq!(got, expected);
        assert_eq!(node.image().topics["t"].partitions.len(), 3);
        assert!(
            node.replicas.partition("t", 2).is_some(),
            "the new partition is hosted"
        );
        assert_eq!(node.image().topics["u"].partitions.len(), 3);
    }

    #[tokio::test]
    async fn a_manual_assignment_needs_one_list_per_new_partition() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        node.create_topic("t", 1).await;
        let here = || CreatePartitionsAssignment {
            broker_ids: vec![node.config.node_id],
        };
        let mut short = to("t", 3);
        short.assignments = Some(vec![here()]);
        let mut repeated = to("t", 3);
        repeated.assignments = Some(vec![
            CreatePartitionsAssignment {
                broker_ids: vec![node.config.node_id; 2],
            },
            here(),
        ]);
        let results = grow(&node, vec![short, repeated], false).await;
        let expected = [
            ("t".to_owned(), code::INVALID_REPLICA_ASSIGNMENT),
            ("t".to_owned(), code::INVALID_REPLICA_ASSIGNMENT),
        ];
        assert_eq!(results, expected);
        assert_eq!(node.image().topics["t"].partitions.len(), 1);
        let mut exact = to("t", 3);
        exact.assignments = Some(vec![here(), here()]);
        let results = grow(&node, vec![exact], false).await;
        assert_eq!(results, [("t".to_owned(), code::NONE)]);
        assert_eq!(node.image().topics["t"].partitions.len(), 3);
    }

    #[tokio::test]
    async fn validate_only_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        node.create_topic("t", 1).await;
        let results = grow(&node, vec![to("t", 4)], true).await;
        assert_eq!(results, [("t".to_owned(), code::NONE)]);
        assert_eq!(node.image().topics["t"].partitions.len(), 1);
    }
}
