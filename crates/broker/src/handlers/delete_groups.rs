//! DeleteGroups (42): deletes empty groups and their offsets.

use std::future::Future;
use std::sync::Arc;

use sluice_protocol::RequestHeader;
use sluice_protocol::messages::delete_groups::{
    DeletableGroupResult, DeleteGroupsRequest, DeleteGroupsResponse,
};

use super::RequestContext;
use crate::Broker;

/// Handles DeleteGroups; one result per group, in order.
pub fn handle(
    broker: &Arc<Broker>,
    _ctx: &RequestContext,
    _header: &RequestHeader,
    request: DeleteGroupsRequest,
) -> impl Future<Output = DeleteGroupsResponse> + Send + 'static {
    let broker = Arc::clone(broker);
    async move {
        let mut results = Vec::with_capacity(request.groups_names.len());
        for group_id in request.groups_names {
            let error_code = broker.groups.delete_group(&group_id).await;
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
