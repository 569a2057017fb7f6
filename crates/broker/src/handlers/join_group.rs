//! JoinGroup (11): the first phase of a classic rebalance.

use std::future::Future;
use std::sync::Arc;

use sluice_protocol::RequestHeader;
use sluice_protocol::messages::join_group::{JoinGroupRequest, JoinGroupResponse};

use super::RequestContext;
use sluice_coordinator::GroupCoordinator;
use sluice_coordinator::group::classic::JoinArgs;

/// Handles JoinGroup; the response may wait for the rebalance to complete.
pub fn handle(
    groups: &Arc<GroupCoordinator>,
    ctx: &RequestContext,
    header: &RequestHeader,
    request: JoinGroupRequest,
) -> impl Future<Output = JoinGroupResponse> + Send + 'static {
    let groups = Arc::clone(groups);
    let version = header.request_api_version;
    let args = JoinArgs {
        member_id: request.member_id,
        instance_id: request.group_instance_id,
        client_id: header.client_id.clone().unwrap_or_default(),
        client_host: format!("/{}", ctx.peer.ip()),
        session_timeout_ms: request.session_timeout_ms,
        // v0 has no rebalance timeout; Kafka uses the session timeout.
        rebalance_timeout_ms: if version == 0 {
            request.session_timeout_ms
        } else {
            request.rebalance_timeout_ms
        },
        protocol_type: request.protocol_type,
        protocols: request
            .protocols
            .into_iter()
            .map(|p| (p.name, p.metadata))
            .collect(),
        // KIP-394: from v4 a new member first gets an id, then rejoins.
        require_known_member_id: version >= 4,
    };
    async move {
        let mut response = groups.join_group(&request.group_id, args).await;
        if version < 7 && response.protocol_name.is_none() {
            // Not nullable before v7.
            response.protocol_name = Some(String::new());
        }
        response
    }
}
