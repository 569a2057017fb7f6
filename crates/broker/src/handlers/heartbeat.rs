//! Heartbeat (12): keeps a classic member's session alive and tells it
//! when a rebalance is in progress.

use std::future::Future;

use sluice_protocol::RequestHeader;
use sluice_protocol::messages::heartbeat::{HeartbeatRequest, HeartbeatResponse};

use super::RequestContext;
use crate::authz::Authorizer;
use sluice_coordinator::GroupCoordinator;
use sluice_metadata::acl::AclOperation;

/// Handles Heartbeat.
pub fn handle(
    groups: &GroupCoordinator,
    authorizer: &Authorizer,
    ctx: &RequestContext,
    _header: &RequestHeader,
    request: HeartbeatRequest,
) -> impl Future<Output = HeartbeatResponse> + Send + 'static {
    // Kafka: READ on the group.
    let error_code = if authorizer.group(ctx, AclOperation::Read, &request.group_id) {
        groups.heartbeat(
            &request.group_id,
            &request.member_id,
            request.group_instance_id.as_deref(),
            request.generation_id,
        )
    } else {
        sluice_protocol::error::codes::GROUP_AUTHORIZATION_FAILED
    };
    std::future::ready(HeartbeatResponse {
        error_code,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;
    use sluice_protocol::error::codes as code;

    use super::*;
    use crate::handlers::join_group::tests::stable_member;
    use crate::testing;

    fn beat(groups: &GroupCoordinator, group: &str, member: &str, generation_id: i32) -> i16 {
        let request = HeartbeatRequest {
            group_id: group.to_owned(),
            generation_id,
            member_id: member.to_owned(),
            group_instance_id: None,
        };
        let header = testing::header(12, 4);
        handle(
            groups,
            &testing::allow_all(),
            &testing::ctx(),
            &header,
            request,
        )
        .now_or_never()
        .expect("answers at once")
        .error_code
    }

    #[tokio::test]
    async fn a_current_member_stays_and_others_are_told_why_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        let (member, generation) = stable_member(&node.groups, "g", b"a").await;
        assert_eq!(beat(&node.groups, "g", &member, generation), code::NONE);
        assert_eq!(
            beat(&node.groups, "g", &member, generation - 1),
            code::ILLEGAL_GENERATION
        );
        assert_eq!(
            beat(&node.groups, "g", "stranger", generation),
            code::UNKNOWN_MEMBER_ID
        );
        assert_eq!(
            beat(&node.groups, "missing", &member, generation),
            code::UNKNOWN_MEMBER_ID
        );
    }
}
