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
