//! DeleteGroups (42): deletes empty groups and their offsets.

use std::future::Future;
use std::sync::Arc;

use sluice_protocol::RequestHeader;
use sluice_protocol::messages::delete_groups::{
    DeletableGroupResult, DeleteGroupsRequest, DeleteGroupsResponse,
};

use super::RequestContext;
use sluice_coordinator::GroupCoordinator;

/// Handles DeleteGroups; one result per group, in order.
pub fn handle(
    groups: &Arc<GroupCoordinator>,
    _ctx: &RequestContext,
    _header: &RequestHeader,
    request: DeleteGroupsRequest,
) -> impl Future<Output = DeleteGroupsResponse> + Send + 'static {
    let groups = Arc::clone(groups);
    async move {
        let mut results = Vec::with_capacity(request.groups_names.len());
        for group_id in request.groups_names {
            let error_code = groups.delete_group(&group_id).await;
            results.push(DeletableGroupResult {
                group_id,
                error_code,
            });
        }
        DeleteGroupsResponse {
            results,
            ..Default::default()
        }
    }
}
