//! SyncGroup (14): the leader hands out assignments; everyone gets theirs.

use std::future::Future;
use std::sync::Arc;

use sluice_protocol::RequestHeader;
use sluice_protocol::messages::sync_group::{SyncGroupRequest, SyncGroupResponse};

use super::RequestContext;
use sluice_coordinator::GroupCoordinator;

/// Handles SyncGroup; followers wait for the leader's assignment.
pub fn handle(
    groups: &Arc<GroupCoordinator>,
    _ctx: &RequestContext,
    _header: &RequestHeader,
    request: SyncGroupRequest,
) -> impl Future<Output = SyncGroupResponse> + Send + 'static {
    let groups = Arc::clone(groups);
    async move {
        let assignments = request
            .assignments
            .into_iter()
            .map(|a| (a.member_id, a.assignment))
            .collect();
        groups
            .sync_group(
                &request.group_id,
                &request.member_id,
                request.group_instance_id.as_deref(),
                request.generation_id,
                request.protocol_type.as_deref(),
                request.protocol_name.as_deref(),
                assignments,
            )
            .await
    }
}
