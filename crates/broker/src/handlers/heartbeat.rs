//! Heartbeat (12): keeps a classic member's session alive and tells it
//! when a rebalance is in progress.

use std::future::Future;

use sluice_protocol::RequestHeader;
use sluice_protocol::messages::heartbeat::{HeartbeatRequest, HeartbeatResponse};

use super::RequestContext;
use sluice_coordinator::GroupCoordinator;

/// Handles Heartbeat.
pub fn handle(
    groups: &GroupCoordinator,
    _ctx: &RequestContext,
    _header: &RequestHeader,
    request: HeartbeatRequest,
) -> impl Future<Output = HeartbeatResponse> + Send + 'static {
    let error_code = groups.heartbeat(
        &request.group_id,
        &request.member_id,
        request.group_instance_id.as_deref(),
        request.generation_id,
    );
    std::future::ready(HeartbeatResponse {
        error_code,
        ..Default::default()
    })
}
