//! LeaveGroup (13): members leave a classic group (v3+: several at once).

use std::future::Future;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::leave_group::{
    LeaveGroupRequest, LeaveGroupResponse, MemberResponse,
};

use super::RequestContext;
use sluice_coordinator::GroupCoordinator;

/// Handles LeaveGroup.
pub fn handle(
    groups: &GroupCoordinator,
    _ctx: &RequestContext,
    header: &RequestHeader,
    request: LeaveGroupRequest,
) -> impl Future<Output = LeaveGroupResponse> + Send + 'static {
    let batch = header.request_api_version >= 3;
    let members: Vec<(String, Option<String>)> = if batch {
        request
            .members
            .into_iter()
            .map(|m| (m.member_id, m.group_instance_id))
            .collect()
    } else {
        vec![(request.member_id, None)]
    };
    let response = match groups.leave_group(&request.group_id, &members) {
        Err(error_code) => LeaveGroupResponse {
            error_code,
            ..Default::default()
        },
        Ok(codes) if !batch => LeaveGroupResponse {
            error_code: codes.first().copied().unwrap_or(code::NONE),
            ..Default::default()
        },
        Ok(codes) => LeaveGroupResponse {
            error_code: code::NONE,
            members: members
                .into_iter()
                .zip(codes)
                .map(
                    |((member_id, group_instance_id), error_code)| MemberResponse {
                        member_id,
                        group_instance_id,
                        error_code,
                    },
                )
                .collect(),
            ..Default::default()
        },
    };
    std::future::ready(response)
}
