//! SyncGroup (14): the leader hands out assignments; everyone gets theirs.

use std::future::Future;
use std::sync::Arc;

use sluice_protocol::RequestHeader;
use sluice_protocol::messages::sync_group::{SyncGroupRequest, SyncGroupResponse};

use super::RequestContext;
use crate::authz::Authorizer;
use sluice_coordinator::GroupCoordinator;
use sluice_metadata::acl::AclOperation;

/// Handles SyncGroup; followers wait for the leader's assignment.
pub fn handle(
    groups: &Arc<GroupCoordinator>,
    authorizer: &Authorizer,
    ctx: &RequestContext,
    _header: &RequestHeader,
    request: SyncGroupRequest,
) -> impl Future<Output = SyncGroupResponse> + Send + 'static {
    let groups = Arc::clone(groups);
    // Kafka: READ on the group.
    let denied = !authorizer.group(ctx, AclOperation::Read, &request.group_id);
    async move {
        if denied {
            return SyncGroupResponse {
                error_code: sluice_protocol::error::codes::GROUP_AUTHORIZATION_FAILED,
                ..Default::default()
            };
        }
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

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use sluice_protocol::error::codes as code;

    use super::*;
    use crate::handlers::join_group::tests::{join, stable_member};
    use crate::testing;

    #[tokio::test]
    async fn the_leader_hands_out_assignments_and_gets_its_own() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        let (member, generation) = stable_member(&node.groups, "g", b"p0,p1").await;
        // A repeated SyncGroup of the same generation returns the assignment.
        let request = SyncGroupRequest {
            group_id: "g".to_owned(),
            generation_id: generation,
            member_id: member.clone(),
            ..Default::default()
        };
        let header = testing::header(14, 5);
        let again = handle(
            &node.groups,
            &testing::allow_all(),
            &testing::ctx(),
            &header,
            request,
        )
        .await;
        assert_eq!(again.error_code, code::NONE);
        assert_eq!(again.assignment, Bytes::from_static(b"p0,p1"));
    }

    #[tokio::test]
    async fn a_stale_generation_or_unknown_member_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        let (member, generation) = stable_member(&node.groups, "g", b"a").await;
        let header = testing::header(14, 5);
        let stale = SyncGroupRequest {
            group_id: "g".to_owned(),
            generation_id: generation + 1,
            member_id: member,
            ..Default::default()
        };
        let response = handle(
            &node.groups,
            &testing::allow_all(),
            &testing::ctx(),
            &header,
            stale,
        )
        .await;
        assert_eq!(response.error_code, code::ILLEGAL_GENERATION);
        let unknown = SyncGroupRequest {
            group_id: "g".to_owned(),
            generation_id: generation,
            member_id: "stranger".to_owned(),
            ..Default::default()
        };
        let response = handle(
            &node.groups,
            &testing::allow_all(),
            &testing::ctx(),
            &header,
            unknown,
        )
        .await;
        assert_eq!(response.error_code, code::UNKNOWN_MEMBER_ID);
        // Nothing known about this group at all.
        let first = join(&node.groups, 5, "other", "").await;
        let nobody = SyncGroupRequest {
            group_id: "missing".to_owned(),
            generation_id: 1,
            member_id: first.member_id,
            ..Default::default()
        };
        let response = handle(
            &node.groups,
            &testing::allow_all(),
            &testing::ctx(),
            &header,
            nobody,
        )
        .await;
        assert_eq!(response.error_code, code::UNKNOWN_MEMBER_ID);
    }
}
