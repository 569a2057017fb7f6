//! Metadata (3): brokers, topics and partition leaders; auto-creates topics.

use std::future::Future;
use std::sync::Arc;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::metadata::{
    MetadataRequest, MetadataResponse, MetadataResponseBroker, MetadataResponsePartition,
    MetadataResponseTopic,
};

use super::{NodeInfo, RequestContext};
use sluice_metadata::controller::{self, INTERNAL_TOPICS};
use sluice_metadata::{Controller, MetadataImage, TopicImage};
use sluice_replica::ReplicaManager;

/// Kafka's "authorized operations not requested" marker.
const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

/// Handles Metadata. Topics come from `controller`'s image, which also
/// creates missing ones when `auto_create` (`auto.create.topics.enable`)
/// and the request allow it; `replicas` tells online partitions from
/// offline ones; `node` is the only broker listed.
pub fn handle(
    controller: &Arc<Controller>,
    replicas: &Arc<ReplicaManager>,
    node: NodeInfo,
    auto_create: bool,
    _ctx: &RequestContext,
    header: &RequestHeader,
    request: MetadataRequest,
) -> impl Future<Output = MetadataResponse> + Send + 'static {
    let controller = Arc::clone(controller);
    let replicas = Arc::clone(replicas);
    let version = header.request_api_version;
    async move {
        // v0: an empty list means all topics; v1+: null means all.
        let wanted: Option<Vec<Option<String>>> = match request.topics {
            None => None,
            Some(topics) if topics.is_empty() && version == 0 => None,
            Some(topics) => Some(
                topics
                    .into_iter()
                    .map(|t| resolve_name(&controller.image(), t.name, t.topic_id))
                    .collect(),
            ),
        };
        let allow_auto_create = auto_create && (version < 4 || request.allow_auto_topic_creation);
        let mut topics = Vec::new();
        match wanted {
            None => {
                let image = controller.image();
                topics.extend(image.topics.values().map(|t| topic_response(&replicas, t)));
            }
            Some(names) => {
                for name in names {
                    topics.push(
                        lookup_or_create(&controller, &replicas, name, allow_auto_create).await,
                    );
                }
            }
        }
        MetadataResponse {
            throttle_time_ms: 0,
            brokers: vec![MetadataResponseBroker {
                node_id: node.node_id,
                host: node.host,
                port: i32::from(node.port),
                rack: None,
                ..Default::default()
            }],
            cluster_id: Some(node.cluster_id),
            controller_id: node.node_id,
            topics,
            cluster_authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
            ..Default::default()
        }
    }
}

/// v10+ may name a topic by id only.
fn resolve_name(
    image: &MetadataImage,
    name: Option<String>,
    topic_id: uuid::Uuid,
) -> Option<String> {
    name.or_else(|| image.topic_by_id(&topic_id).map(|t| t.name.clone()))
}

async fn lookup_or_create(
    controller: &Arc<Controller>,
    replicas: &ReplicaManager,
    name: Option<String>,
    allow_auto_create: bool,
) -> MetadataResponseTopic {
    let Some(name) = name else {
        return MetadataResponseTopic {
            error_code: code::UNKNOWN_TOPIC_ID,
            ..empty_topic(None)
        };
    };
    if let Some(topic) = controller.image().topics.get(&name) {
        return topic_response(replicas, topic);
    }
    if let Err(e) = controller::validate_topic_name(&name) {
        return MetadataResponseTopic {
            error_code: e.code,
            ..empty_topic(Some(name))
        };
    }
    if !allow_auto_create {
        return MetadataResponseTopic {
            error_code: code::UNKNOWN_TOPIC_OR_PARTITION,
            ..empty_topic(Some(name))
        };
    }
    match controller.auto_create_topic(&name).await {
        Ok(()) => match controller.image().topics.get(&name) {
            Some(topic) => topic_response(replicas, topic),
            None => MetadataResponseTopic {
                error_code: code::UNKNOWN_TOPIC_OR_PARTITION,
                ..empty_topic(Some(name))
            },
        },
        Err(e) => {
            tracing::info!(topic = %name, "auto-create refused: {}", e.message);
            MetadataResponseTopic {
                error_code: e.code,
                ..empty_topic(Some(name))
            }
        }
    }
}

fn empty_topic(name: Option<String>) -> MetadataResponseTopic {
    MetadataResponseTopic {
        name,
        topic_authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
        ..Default::default()
    }
}

fn topic_response(replicas: &ReplicaManager, topic: &TopicImage) -> MetadataResponseTopic {
    let partitions = topic
        .partitions
        .iter()
        .map(|(&index, p)| {
            // A partition whose log failed to open, or failed since (a
            // write or fsync error, a full disk), is offline, not absent.
            // Kafka (KRaft) reports a partition whose only replica sits on
            // an offline log dir as LEADER_NOT_AVAILABLE with no leader and
            // that replica in offline_replicas; so do we.
            let online = replicas
                .partition(&topic.name, index)
                .is_some_and(|hosted| !hosted.is_offline());
            MetadataResponsePartition {
                error_code: if online {
                    code::NONE
                } else {
                    code::LEADER_NOT_AVAILABLE
                },
                partition_index: index,
                leader_id: if online { p.leader } else { -1 },
                leader_epoch: p.leader_epoch,
                replica_nodes: p.replicas.clone(),
                isr_nodes: p.isr.clone(),
                offline_replicas: if online {
                    Vec::new()
                } else {
                    p.replicas.clone()
                },
                ..Default::default()
            }
        })
        .collect();
    MetadataResponseTopic {
        error_code: code::NONE,
        name: Some(topic.name.clone()),
        topic_id: topic.topic_id,
        is_internal: INTERNAL_TOPICS.contains(&topic.name.as_str()),
        partitions,
        topic_authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use sluice_protocol::messages::metadata::MetadataRequestTopic;

    use super::*;
    use crate::testing::{self, Node};

    /// A Metadata request for `names` (None: all topics).
    fn request(names: Option<&[&str]>, allow_auto_topic_creation: bool) -> MetadataRequest {
        MetadataRequest {
            topics: names.map(|ns| {
                ns.iter()
                    .map(|n| MetadataRequestTopic {
                        name: Some((*n).to_owned()),
                        ..Default::default()
                    })
                    .collect()
            }),
            allow_auto_topic_creation,
            ..Default::default()
        }
    }

    async fn metadata(
        node: &Node,
        auto_create: bool,
        version: i16,
        request: MetadataRequest,
    ) -> MetadataResponse {
        let header = testing::header(3, version);
        handle(
            &node.controller,
            &node.replicas,
            node.info(),
            auto_create,
            &testing::ctx(),
            &header,
            request,
        )
        .await
    }

    fn topic<'a>(response: &'a MetadataResponse, name: &str) -> &'a MetadataResponseTopic {
        response
            .topics
            .iter()
            .find(|t| t.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("{name} in {:?}", response.topics))
    }

    #[tokio::test]
    async fn lists_this_node_and_every_topic_with_its_partitions_led_here() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        node.create_topic("a", 2).await;
        node.create_topic("b", 1).await;
        node.groups
            .ensure_offsets_topic()
            .await
            .expect("offsets topic");
        let response = metadata(&node, false, 12, request(None, false)).await;
        let info = node.info();
        assert_eq!(response.brokers.len(), 1);
        assert_eq!(response.brokers[0].node_id, info.node_id);
        assert_eq!(response.brokers[0].host, info.host);
        assert_eq!(response.brokers[0].port, i32::from(info.port));
        assert_eq!(response.cluster_id.as_deref(), Some("test"));
        assert_eq!(response.controller_id, info.node_id);
        assert_eq!(response.topics.len(), 3);
        let a = topic(&response, "a");
        assert_eq!(a.error_code, code::NONE);
        assert_eq!(a.topic_id, node.image().topics["a"].topic_id);
        assert!(!a.is_internal);
        let leaders: Vec<_> = a
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.error_code, p.leader_id))
            .collect();
        assert_eq!(
            leaders,
            [(0, code::NONE, info.node_id), (1, code::NONE, info.node_id)]
        );
        assert!(topic(&response, "__consumer_offsets").is_internal);
    }

    #[tokio::test]
    async fn v0_reads_an_empty_list_as_all_topics_and_v1_as_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        node.create_topic("a", 1).await;
        let all = metadata(&node, false, 0, request(Some(&[]), false)).await;
        assert_eq!(all.topics.len(), 1);
        let none = metadata(&node, false, 1, request(Some(&[]), false)).await;
        assert!(none.topics.is_empty());
    }

    #[tokio::test]
    async fn an_unknown_topic_is_created_only_when_the_broker_and_the_request_allow_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = crate::config::Config::default();
        config.topics.num_partitions = 3;
        let node = testing::node_with(dir.path(), config).await;

        // Broker disallows: UNKNOWN_TOPIC_OR_PARTITION, nothing created.
        let response = metadata(&node, false, 12, request(Some(&["new"]), true)).await;
        assert_eq!(
            topic(&response, "new").error_code,
            code::UNKNOWN_TOPIC_OR_PARTITION
        );
        // The request disallows (v4+).
        let response = metadata(&node, true, 12, request(Some(&["new"]), false)).await;
        assert_eq!(
            topic(&response, "new").error_code,
            code::UNKNOWN_TOPIC_OR_PARTITION
        );
        assert!(!node.image().topics.contains_key("new"));

        // Before v4 the request cannot say no.
        let response = metadata(&node, true, 3, request(Some(&["new"]), false)).await;
        let created = topic(&response, "new");
        assert_eq!(created.error_code, code::NONE);
        assert_eq!(created.partitions.len(), 3, "num.partitions");
        assert!(
            node.replicas.partition("new", 2).is_some(),
            "hosted at once"
        );
    }

    #[tokio::test]
    async fn invalid_names_and_unknown_ids_get_their_own_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        let response = metadata(&node, true, 12, request(Some(&["bad/name"]), true)).await;
        assert_eq!(
            topic(&response, "bad/name").error_code,
            code::INVALID_TOPIC_EXCEPTION
        );
        assert!(node.image().topics.is_empty(), "nothing auto-created");

        let by_id = MetadataRequest {
            topics: Some(vec![MetadataRequestTopic {
                topic_id: uuid::Uuid::from_u128(42),
                name: None,
            }]),
            ..Default::default()
        };
        let response = metadata(&node, true, 12, by_id).await;
        assert_eq!(response.topics.len(), 1);
        assert_eq!(response.topics[0].error_code, code::UNKNOWN_TOPIC_ID);
        assert_eq!(response.topics[0].name, None);
    }

    #[tokio::test]
    async fn a_topic_named_by_id_is_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        node.create_topic("a", 1).await;
        let topic_id = node.image().topics["a"].topic_id;
        let by_id = MetadataRequest {
            topics: Some(vec![MetadataRequestTopic {
                topic_id,
                name: None,
            }]),
            ..Default::default()
        };
        let response = metadata(&node, false, 12, by_id).await;
        assert_eq!(topic(&response, "a").error_code, code::NONE);
    }
}
