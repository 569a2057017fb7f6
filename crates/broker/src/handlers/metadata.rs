//! Metadata (3): brokers, topics and partition leaders; auto-creates topics.
//!
//! Brokers are the image's registered brokers, fenced ones too (see
//! [`cluster::metadata_brokers`] for why), and the controller is the
//! metadata quorum's leader ([`super::cluster`]). Each partition is described as the
//! image has it (leader, epoch, replicas, ISR), with Kafka's KRaft rules for
//! what clients cannot use: no leader (-1), or a leader that is fenced or
//! not registered, is LEADER_NOT_AVAILABLE with leader -1; replicas on
//! fenced or unregistered brokers are `offline_replicas`; and this node's
//! own replica counts as offline while its log is (or failed to open).
//! A partition this node leads is LEADER_NOT_AVAILABLE too while its
//! leadership is suspended ([`ReplicaManager::suspend_leadership`]).

use std::future::Future;
use std::sync::Arc;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::metadata::{
    MetadataRequest, MetadataResponse, MetadataResponseBroker, MetadataResponsePartition,
    MetadataResponseTopic,
};

use super::{NodeInfo, RequestContext, cluster};
use crate::authz::Authorizer;
use sluice_metadata::acl::AclOperation;
use sluice_metadata::controller::{self, INTERNAL_TOPICS};
use sluice_metadata::{Controller, MetadataImage, PartitionImage, TopicImage};
use sluice_replica::ReplicaManager;

/// Kafka's "authorized operations not requested" marker.
const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

/// Handles Metadata. Topics and brokers come from `controller`'s image,
/// which also creates missing topics when `auto_create`
/// (`auto.create.topics.enable`) and the request allow it; `replicas`
/// tells this node's online partitions from offline ones; `node` is this
/// node (listed alone when no broker is registered).
// The narrow handles the handler uses plus the authorizer, ctx, header
// and request: one more than clippy's default, kept explicit by design
// (see the module docs of `handlers`).
#[allow(clippy::too_many_arguments)]
pub fn handle(
    controller: &Arc<Controller>,
    replicas: &Arc<ReplicaManager>,
    node: NodeInfo,
    auto_create: bool,
    authorizer: &Arc<Authorizer>,
    ctx: &RequestContext,
    header: &RequestHeader,
    request: MetadataRequest,
) -> impl Future<Output = MetadataResponse> + Send + 'static {
    let controller = Arc::clone(controller);
    // Which topics the principal may see is decided against the image the
    // response describes, so the check runs with the lookups below.
    let authorizer = Arc::clone(authorizer);
    let ctx = ctx.clone();
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
        let node_id = node.node_id;
        let mut topics = Vec::new();
        match wanted {
            None => {
                let image = controller.image();
                // Kafka hides the topics the principal may not DESCRIBE.
                topics.extend(
                    image
                        .topics
                        .values()
                        .filter(|t| authorizer.topic(&ctx, AclOperation::Describe, &t.name))
                        .map(|t| topic_response(&replicas, &image, node_id, t)),
                );
            }
            Some(names) => {
                for name in names {
                    let access = Access {
                        authorizer: &authorizer,
                        ctx: &ctx,
                    };
                    topics.push(
                        lookup_or_create(
                            &controller,
                            &replicas,
                            node_id,
                            name,
                            allow_auto_create,
                            access,
                        )
                        .await,
                    );
                }
            }
        }
        // Brokers from the image as it is now, after any auto-creation.
        let brokers = cluster::metadata_brokers(&controller.image(), &node)
            .into_iter()
            .map(|b| MetadataResponseBroker {
                node_id: b.node_id,
                host: b.host,
                port: b.port,
                rack: b.rack,
            })
            .collect();
        MetadataResponse {
            throttle_time_ms: 0,
            brokers,
            cluster_id: Some(node.cluster_id),
            // This broker: it forwards what needs the active controller.
            controller_id: node_id,
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

/// Who asks, for the ACL checks of a named topic.
#[derive(Clone, Copy)]
struct Access<'a> {
    authorizer: &'a Authorizer,
    ctx: &'a RequestContext,
}

async fn lookup_or_create(
    controller: &Arc<Controller>,
    replicas: &ReplicaManager,
    node_id: i32,
    name: Option<String>,
    allow_auto_create: bool,
    access: Access<'_>,
) -> MetadataResponseTopic {
    let Some(name) = name else {
        return MetadataResponseTopic {
            error_code: code::UNKNOWN_TOPIC_ID,
            ..empty_topic(None)
        };
    };
    let denied = || MetadataResponseTopic {
        error_code: code::TOPIC_AUTHORIZATION_FAILED,
        ..empty_topic(Some(name.clone()))
    };
    // Kafka: a named topic the principal may not DESCRIBE is reported as
    // TOPIC_AUTHORIZATION_FAILED whether or not it exists.
    if !access
        .authorizer
        .topic(access.ctx, AclOperation::Describe, &name)
    {
        return denied();
    }
    let image = controller.image();
    if let Some(topic) = image.topics.get(&name) {
        return topic_response(replicas, &image, node_id, topic);
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
    // Auto-creation needs CREATE on the cluster or on the topic.
    if !access.authorizer.cluster(access.ctx, AclOperation::Create)
        && !access
            .authorizer
            .topic(access.ctx, AclOperation::Create, &name)
    {
        return denied();
    }
    match controller.auto_create_topic(&name).await {
        Ok(()) => match controller.image().topics.get(&name) {
            Some(topic) => topic_response(replicas, &controller.image(), node_id, topic),
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

fn topic_response(
    replicas: &ReplicaManager,
    image: &MetadataImage,
    node_id: i32,
    topic: &TopicImage,
) -> MetadataResponseTopic {
    let partitions = topic
        .partitions
        .iter()
        .map(|(&index, p)| partition_response(replicas, image, node_id, &topic.name, index, p))
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

/// One partition as clients should see it (Kafka's
/// `KRaftMetadataCache.getPartitionMetadata`, without the listener checks:
/// every broker has the one listener).
fn partition_response(
    replicas: &ReplicaManager,
    image: &MetadataImage,
    node_id: i32,
    topic: &str,
    index: i32,
    p: &PartitionImage,
) -> MetadataResponsePartition {
    // This node's replica is offline while its log is: one whose log failed
    // to open, or failed since (a write or fsync error, a full disk), is
    // offline, not absent. Kafka (KRaft) reports a replica on an offline
    // log dir in offline_replicas, and a leader there as unavailable.
    let local_offline = p.replicas.contains(&node_id)
        && replicas
            .partition(topic, index)
            .is_none_or(|hosted| hosted.is_offline());
    let offline_replicas: Vec<i32> = p
        .replicas
        .iter()
        .copied()
        .filter(|&r| (r == node_id && local_offline) || !cluster::is_live(image, r))
        .collect();
    // A leader here whose leadership is suspended (this node lost the
    // controller long enough to have been fenced) is not offered either:
    // the rest of the cluster has elected another.
    let leader_available = p.leader >= 0
        && cluster::is_live(image, p.leader)
        && !(p.leader == node_id && (local_offline || replicas.leadership_suspended()));
    MetadataResponsePartition {
        error_code: if leader_available {
            code::NONE
        } else {
            code::LEADER_NOT_AVAILABLE
        },
        partition_index: index,
        leader_id: if leader_available { p.leader } else { -1 },
        leader_epoch: p.leader_epoch,
        replica_nodes: p.replicas.clone(),
        isr_nodes: p.isr.clone(),
        offline_replicas,
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
            &testing::allow_all(),
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
    async fn partitions_led_here_have_no_leader_while_leadership_is_suspended() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        testing::three_brokers(&node).await;
        testing::spread_topic(&node).await;
        let leaders = |response: &MetadataResponse| -> Vec<(i32, i16, i32)> {
            topic(response, testing::SPREAD)
                .partitions
                .iter()
                .take(3)
                .map(|p| (p.partition_index, p.error_code, p.leader_id))
                .collect()
        };
        node.replicas.suspend_leadership(true);
        let response = metadata(&node, false, 12, request(None, false)).await;
        // Partition 0 is led here (node 1); the others by live brokers.
        assert_eq!(
            leaders(&response),
            [
                (0, code::LEADER_NOT_AVAILABLE, -1),
                (1, code::NONE, 2),
                (2, code::NONE, 3)
            ]
        );
        node.replicas.suspend_leadership(false);
        let response = metadata(&node, false, 12, request(None, false)).await;
        assert_eq!(
            leaders(&response),
            [(0, code::NONE, 1), (1, code::NONE, 2), (2, code::NONE, 3)]
        );
    }

    #[tokio::test]
    async fn lists_the_registered_brokers_and_each_partition_as_the_image_has_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        testing::three_brokers(&node).await;
        testing::spread_topic(&node).await;
        for version in [1, 12] {
            let response = metadata(&node, false, version, request(None, false)).await;
            let brokers: Vec<_> = response
                .brokers
                .iter()
                .map(|b| (b.node_id, b.host.as_str(), b.port, b.rack.as_deref()))
                .collect();
            // Broker 4 is fenced: listed (it leads nothing). Broker 9 was
            // never registered: not listed.
            assert_eq!(
                brokers,
                [
                    (1, "host-1", 9001, Some("rack-1")),
                    (2, "host-2", 9002, Some("rack-2")),
                    (3, "host-3", 9003, None),
                    (4, "host-4", 9004, None),
                ],
                "v{version}"
            );
        }
        let response = metadata(&node, false, 12, request(None, false)).await;
        assert_eq!(
            response.controller_id,
            testing::NODE_ID,
            "no quorum: this node"
        );
        let partitions: Vec<_> = topic(&response, testing::SPREAD)
            .partitions
            .iter()
            .map(|p| {
                (
                    p.partition_index,
                    p.error_code,
                    p.leader_id,
                    p.leader_epoch,
                    p.replica_nodes.clone(),
                    p.isr_nodes.clone(),
                    p.offline_replicas.clone(),
                )
            })
            .collect();
        assert_eq!(
            partitions,
            [
                (0, code::NONE, 1, 3, vec![1, 2], vec![1], vec![]),
                (1, code::NONE, 2, 5, vec![2, 1], vec![2], vec![]),
                (2, code::NONE, 3, 7, vec![3, 2], vec![3], vec![]),
                // No leader; its other replica is on fenced broker 4.
                (
                    3,
                    code::LEADER_NOT_AVAILABLE,
                    -1,
                    2,
                    vec![2, 4],
                    vec![],
                    vec![4]
                ),
                // Led by a fenced broker, then by one never registered.
                (
                    4,
                    code::LEADER_NOT_AVAILABLE,
                    -1,
                    1,
                    vec![4, 1],
                    vec![4],
                    vec![4]
                ),
                (
                    5,
                    code::LEADER_NOT_AVAILABLE,
                    -1,
                    4,
                    vec![9],
                    vec![9],
                    vec![9]
                ),
            ]
        );
    }

    #[tokio::test]
    async fn the_controller_clients_see_is_this_broker_which_forwards() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        let controller = testing::controller_led_by(&node, 2);
        let header = testing::header(3, 12);
        let response = handle(
            &controller,
            &node.replicas,
            node.info(),
            false,
            &testing::allow_all(),
            &testing::ctx(),
            &header,
            request(None, false),
        )
        .await;
        assert_eq!(
            response.controller_id,
            testing::NODE_ID,
            "the quorum leader is node 2, but clients talk to this broker"
        );
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
