//! FindCoordinator (10): which broker coordinates a group (or transaction).
//!
//! A single node coordinates everything; for group keys the offsets topic
//! is created first, so the coordinator is ready when the client arrives.

use std::future::Future;
use std::sync::Arc;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::find_coordinator::{
    Coordinator, FindCoordinatorRequest, FindCoordinatorResponse,
};

use super::{NodeInfo, RequestContext};
use sluice_coordinator::GroupCoordinator;

/// Kafka's key types: 0 group, 1 transaction.
const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

/// Handles FindCoordinator, single key (v0-3) or batched (v4+).
/// A group key first makes sure `groups`' offsets topic exists; `node`
/// is the answer.
pub fn handle(
    groups: &Arc<GroupCoordinator>,
    node: NodeInfo,
    _ctx: &RequestContext,
    header: &RequestHeader,
    request: FindCoordinatorRequest,
) -> impl Future<Output = FindCoordinatorResponse> + Send + 'static {
    let groups = Arc::clone(groups);
    let version = header.request_api_version;
    async move {
        let keys = if version >= 4 {
            request.coordinator_keys
        } else {
            vec![request.key]
        };
        let ready = match request.key_type {
            KEY_TYPE_GROUP => groups.ensure_offsets_topic().await,
            KEY_TYPE_TRANSACTION => Ok(()),
            _ => Err(code::INVALID_REQUEST),
        };
        let coordinators: Vec<Coordinator> = keys
            .into_iter()
            .map(|key| match ready {
                Ok(()) => Coordinator {
                    key,
                    node_id: node.node_id,
                    host: node.host.clone(),
                    port: i32::from(node.port),
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
        handle(&node.groups, node.info(), &testing::ctx(), &header, request).await
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
}
