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
