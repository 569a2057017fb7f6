//! FindCoordinator (10): which broker coordinates a group (or transaction).
//!
//! Kafka's rule: the coordinator of a key is the leader of the internal
//! partition the key hashes to (`__consumer_offsets` for groups,
//! `__transaction_state` for transactional ids). The internal topic is
//! created first if it does not exist, so the coordinator is ready when
//! the client arrives. The answer names the leader as the metadata image
//! registers it; a partition without a leader, or led by a broker that is
//! not registered or is fenced, is COORDINATOR_NOT_AVAILABLE, and the
//! client asks again.

use std::future::Future;
use std::sync::Arc;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::find_coordinator::{
    Coordinator, FindCoordinatorRequest, FindCoordinatorResponse,
};

use super::{NodeInfo, RequestContext};
use crate::authz::Authorizer;
use sluice_coordinator::group::offsets_log::OFFSETS_TOPIC;
use sluice_coordinator::txn::state_log::{TRANSACTION_STATE_TOPIC, partition_for};
use sluice_coordinator::{GroupCoordinator, TransactionCoordinator};
use sluice_metadata::acl::AclOperation;
use sluice_metadata::{MetadataImage, MetadataLog};

/// Kafka's key types: 0 group, 1 transaction.
const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

/// Handles FindCoordinator, single key (v0-3) or batched (v4+). The
/// internal topic of the key type is created if missing (by `groups` or
/// `txn`); the answer comes from `metadata`'s image after that. `node` is
/// this broker, named when the image registers no broker at all (a
/// single node that never joined a cluster).
// The narrow handles the handler uses plus the authorizer, ctx, header
// and request: one more than clippy's default, kept explicit by design
// (see the module docs of `handlers`).
#[allow(clippy::too_many_arguments)]
pub fn handle(
    groups: &Arc<GroupCoordinator>,
    txn: &Arc<TransactionCoordinator>,
    metadata: &Arc<dyn MetadataLog>,
    node: NodeInfo,
    authorizer: &Authorizer,
    ctx: &RequestContext,
    header: &RequestHeader,
    request: FindCoordinatorRequest,
) -> impl Future<Output = FindCoordinatorResponse> + Send + 'static {
    let groups = Arc::clone(groups);
    let txn = Arc::clone(txn);
    let metadata = Arc::clone(metadata);
    let version = header.request_api_version;
    let keys = if version >= 4 {
        request.coordinator_keys
    } else {
        vec![request.key]
    };
    // Kafka: DESCRIBE on the group or transactional id, per key.
    let denied: Vec<Option<i16>> = keys
        .iter()
        .map(|key| match request.key_type {
            KEY_TYPE_GROUP => (!authorizer.group(ctx, AclOperation::Describe, key))
                .then_some(code::GROUP_AUTHORIZATION_FAILED),
            KEY_TYPE_TRANSACTION => {
                (!authorizer.transactional_id(ctx, AclOperation::Describe, key))
                    .then_some(code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
            }
            _ => None,
        })
        .collect();
    async move {
        let ready = match request.key_type {
            KEY_TYPE_GROUP => groups.ensure_offsets_topic().await,
            KEY_TYPE_TRANSACTION => txn.ensure_topic().await.map_err(|e| e.code(false)),
            _ => Err(code::INVALID_REQUEST),
        };
        let image = metadata.image();
        let coordinators: Vec<Coordinator> = keys
            .into_iter()
            .zip(denied)
            .map(|(key, denied)| {
                let located = denied.map_or(ready, Err).and_then(|()| {
                    let (topic, index) = match request.key_type {
                        KEY_TYPE_GROUP => (OFFSETS_TOPIC, groups.partition_for(&key)),
                        _ => (TRANSACTION_STATE_TOPIC, partition_for(&key)),
                    };
                    locate(&image, topic, index, &node)
                });
                match located {
                    Ok((node_id, host, port)) => Coordinator {
                        key,
                        node_id,
                        host,
                        port,
                        error_code: code::NONE,
                        error_message: None,
                    },
                    Err(error_code) => Coordinator {
                        key,
                        node_id: -1,
                        host: String::new(),
                        port: -1,
                        error_code,
                        error_message: None,
                    },
                }
            })
            .collect();
        if version >= 4 {
            return FindCoordinatorResponse {
                coordinators,
                ..Default::default()
            };
        }
        let first = coordinators.into_iter().next().unwrap_or_default();
        FindCoordinatorResponse {
            error_code: first.error_code,
            error_message: None,
            node_id: first.node_id,
            host: first.host,
            port: first.port,
            ..Default::default()
        }
    }
}

/// The broker (id, host, port) leading partition `index` of `topic`, or
/// COORDINATOR_NOT_AVAILABLE. With no broker registered at all (a single
/// node), the leader can only be this node, addressed as `node`.
fn locate(
    image: &MetadataImage,
    topic: &str,
    index: i32,
    node: &NodeInfo,
) -> Result<(i32, String, i32), i16> {
    let leader = image
        .topics
        .get(topic)
        .and_then(|t| t.partitions.get(&index))
        .map_or(-1, |p| p.leader);
    if leader < 0 {
        return Err(code::COORDINATOR_NOT_AVAILABLE);
    }
    if image.brokers.is_empty() {
        return if leader == node.node_id {
            Ok((node.node_id, node.host.clone(), i32::from(node.port)))
        } else {
            Err(code::COORDINATOR_NOT_AVAILABLE)
        };
    }
    // Kafka names only live brokers: a fenced one serves nothing.
    // The coordinator is named by its endpoint on the request's listener;
    // one without that listener cannot be reached by this client.
    match image.brokers.get(&leader) {
        Some(b) if !b.fenced => match b.endpoint_for(&node.listener) {
            Some((host, port)) => Ok((b.broker_id, host.to_owned(), port)),
            None => Err(code::COORDINATOR_NOT_AVAILABLE),
        },
        _ => Err(code::COORDINATOR_NOT_AVAILABLE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{self, Node};

    async fn find(
        node: &Node,
        version: i16,
        request: FindCoordinatorRequest,
    ) -> FindCoordinatorResponse {
        let header = testing::header(10, version);
        handle(
            &node.groups,
            &node.txn,
            &node.metadata,
            node.info(),
            &testing::allow_all(),
            &testing::ctx(),
            &header,
            request,
        )
        .await
    }

    #[tokio::test]
    async fn a_group_key_creates_the_offsets_topic_and_names_this_node() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        assert!(!node.image().topics.contains_key("__consumer_offsets"));
        let response = find(
            &node,
            3,
            FindCoordinatorRequest {
                key: "g".to_owned(),
                key_type: KEY_TYPE_GROUP,
                ..Default::default()
            },
        )
        .await;
        let info = node.info();
        assert_eq!(response.error_code, code::NONE);
        assert_eq!(response.node_id, info.node_id);
        assert_eq!(response.host, info.host);
        assert_eq!(response.port, i32::from(info.port));
        assert!(node.image().topics.contains_key("__consumer_offsets"));
    }

    #[tokio::test]
    async fn v4_answers_each_key_and_an_unknown_key_type_is_invalid() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        let response = find(
            &node,
            4,
            FindCoordinatorRequest {
                key_type: KEY_TYPE_TRANSACTION,
                coordinator_keys: vec!["tx-1".to_owned(), "tx-2".to_owned()],
                ..Default::default()
            },
        )
        .await;
        let keys: Vec<_> = response
            .coordinators
            .iter()
            .map(|c| (c.key.as_str(), c.error_code, c.node_id))
            .collect();
        let id = node.config.node_id;
        assert_eq!(keys, [("tx-1", code::NONE, id), ("tx-2", code::NONE, id)]);

        let response = find(
            &node,
            4,
            FindCoordinatorRequest {
                key_type: 7,
                coordinator_keys: vec!["x".to_owned()],
                ..Default::default()
            },
        )
        .await;
        let c = &response.coordinators[0];
        assert_eq!(
            (c.error_code, c.node_id, c.port),
            (code::INVALID_REQUEST, -1, -1)
        );
        let response = find(
            &node,
            2,
            FindCoordinatorRequest {
                key: "x".to_owned(),
                key_type: 7,
                ..Default::default()
            },
        )
        .await;
        assert_eq!(
            (response.error_code, response.node_id),
            (code::INVALID_REQUEST, -1)
        );
    }

    fn group_key(key: &str) -> FindCoordinatorRequest {
        FindCoordinatorRequest {
            key: key.to_owned(),
            key_type: KEY_TYPE_GROUP,
            ..Default::default()
        }
    }

    fn answer(r: &FindCoordinatorResponse) -> (i16, i32, &str, i32) {
        (r.error_code, r.node_id, r.host.as_str(), r.port)
    }

    /// In a cluster the coordinator is the leader of the key's partition,
    /// addressed as the image registers it; without a live leader there is
    /// none (COORDINATOR_NOT_AVAILABLE, and the client asks again).
    #[tokio::test]
    async fn a_group_key_names_the_leader_of_its_offsets_partition() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        // The key's partition is created on the first lookup, led here: no
        // other broker is registered yet to place it on.
        find(&node, 3, group_key("g")).await;
        node.register_brokers(&[1, 2, 3]).await;
        let here = find(&node, 3, group_key("g")).await;
        assert_eq!(answer(&here), (code::NONE, 1, "broker-1", 9001));

        node.move_leader(OFFSETS_TOPIC, 0, 2).await;
        let moved = find(&node, 3, group_key("g")).await;
        assert_eq!(answer(&moved), (code::NONE, 2, "broker-2", 9002));

        node.commit(vec![sluice_metadata::MetadataRecord::FenceBroker {
            broker_id: 2,
            fenced: true,
        }])
        .await;
        let fenced = find(&node, 3, group_key("g")).await;
        assert_eq!(
            answer(&fenced),
            (code::COORDINATOR_NOT_AVAILABLE, -1, "", -1)
        );

        node.commit(vec![sluice_metadata::MetadataRecord::UnregisterBroker {
            broker_id: 2,
        }])
        .await;
        let unknown = find(&node, 3, group_key("g")).await;
        assert_eq!(unknown.error_code, code::COORDINATOR_NOT_AVAILABLE);

        node.move_leader(OFFSETS_TOPIC, 0, -1).await;
        let leaderless = find(&node, 1, group_key("g")).await;
        assert_eq!(leaderless.error_code, code::COORDINATOR_NOT_AVAILABLE);
    }

    /// Batched keys (v4+) are located one by one: a transactional id whose
    /// `__transaction_state` partition another broker leads is named with
    /// that broker, the others with this one. The topic is created on the
    /// first lookup, as for groups.
    #[tokio::test]
    async fn batched_transactional_keys_each_name_their_own_partition_leader() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        assert!(!node.image().topics.contains_key(TRANSACTION_STATE_TOPIC));
        let request = FindCoordinatorRequest {
            key_type: KEY_TYPE_TRANSACTION,
            coordinator_keys: vec!["tx-1".to_owned(), "tx-2".to_owned()],
            ..Default::default()
        };
        let first = find(&node, 4, request.clone()).await;
        assert!(node.image().topics.contains_key(TRANSACTION_STATE_TOPIC));
        assert!(first.coordinators.iter().all(|c| c.node_id == 1));
        // Registered once the topic exists, so this node still leads it all.
        node.register_brokers(&[1, 2, 3]).await;

        assert_ne!(partition_for("tx-1"), partition_for("tx-2"));
        node.move_leader(TRANSACTION_STATE_TOPIC, partition_for("tx-1"), 3)
            .await;
        let response = find(&node, 4, request).await;
        let keys: Vec<_> = response
            .coordinators
            .iter()
            .map(|c| {
                (
                    c.key.as_str(),
                    c.error_code,
                    c.node_id,
                    c.host.as_str(),
                    c.port,
                )
            })
            .collect();
        assert_eq!(
            keys,
            [
                ("tx-1", code::NONE, 3, "broker-3", 9003),
                ("tx-2", code::NONE, 1, "broker-1", 9001)
            ]
        );
    }
}
