//! LeaveGroup (13): members leave a classic group (v3+: several at once).

use std::future::Future;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::leave_group::{
    LeaveGroupRequest, LeaveGroupResponse, MemberResponse,
};

use super::RequestContext;
use crate::authz::Authorizer;
use sluice_coordinator::GroupCoordinator;
use sluice_metadata::acl::AclOperation;

/// Handles LeaveGroup.
pub fn handle(
    groups: &GroupCoordinator,
    authorizer: &Authorizer,
    ctx: &RequestContext,
    header: &RequestHeader,
    request: LeaveGroupRequest,
) -> impl Future<Output = LeaveGroupResponse> + Send + 'static {
    // Kafka: READ on the group.
    if !authorizer.group(ctx, AclOperation::Read, &request.group_id) {
        return std::future::ready(LeaveGroupResponse {
            error_code: code::GROUP_AUTHORIZATION_FAILED,
            ..Default::default()
        });
    }
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

#[cfg(test)]
mod tests {
    use futures::FutureExt;
    use sluice_protocol::messages::leave_group::MemberIdentity;

    use super::*;
    use crate::handlers::join_group::tests::stable_member;
    use crate::testing;

    fn leave(
        groups: &GroupCoordinator,
        version: i16,
        request: LeaveGroupRequest,
    ) -> LeaveGroupResponse {
        let header = testing::header(13, version);
        handle(
            groups,
            &testing::allow_all(),
            &testing::ctx(),
            &header,
            request,
        )
        .now_or_never()
        .expect("answers at once")
    }

    fn still_member(groups: &GroupCoordinator, member: &str) -> bool {
        let slot = groups.get("g").expect("group");
        let state = slot.lock();
        match &state.kind {
            sluice_coordinator::group::GroupKind::Classic(g) => g.members.contains_key(member),
            sluice_coordinator::group::GroupKind::Consumer(_) => false,
        }
    }

    #[tokio::test]
    async fn v3_answers_per_member_and_removes_the_known_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        let (member, _) = stable_member(&node.groups, "g", b"a").await;
        let request = LeaveGroupRequest {
            group_id: "g".to_owned(),
            members: vec![
                MemberIdentity {
                    member_id: "stranger".to_owned(),
                    ..Default::default()
                },
                MemberIdentity {
                    member_id: member.clone(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let response = leave(&node.groups, 3, request);
        assert_eq!(response.error_code, code::NONE);
        let per_member: Vec<_> = response
            .members
            .iter()
            .map(|m| (m.member_id.as_str(), m.error_code))
            .collect();
        assert_eq!(
            per_member,
            [
                ("stranger", code::UNKNOWN_MEMBER_ID),
                (member.as_str(), code::NONE)
            ]
        );
        assert!(!still_member(&node.groups, &member));
    }

    #[tokio::test]
    async fn v0_answers_with_the_single_members_code() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        let (member, _) = stable_member(&node.groups, "g", b"a").await;
        let stranger = LeaveGroupRequest {
            group_id: "g".to_owned(),
            member_id: "stranger".to_owned(),
            ..Default::default()
        };
        let response = leave(&node.groups, 0, stranger);
        assert_eq!(response.error_code, code::UNKNOWN_MEMBER_ID);
        assert!(response.members.is_empty());
        assert!(still_member(&node.groups, &member));
        let known = LeaveGroupRequest {
            group_id: "g".to_owned(),
            member_id: member.clone(),
            ..Default::default()
        };
        assert_eq!(leave(&node.groups, 0, known).error_code, code::NONE);
        assert!(!still_member(&node.groups, &member));
    }

    #[tokio::test]
    async fn members_of_an_unknown_group_are_unknown_and_an_empty_group_id_is_invalid() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        // The client found the coordinator first, which created
        // `__consumer_offsets`; before that no broker coordinates a group.
        node.groups
            .ensure_offsets_topic()
            .await
            .expect("offsets topic");
        let request = |group_id: &str| LeaveGroupRequest {
            group_id: group_id.to_owned(),
            members: vec![MemberIdentity {
                member_id: "m".to_owned(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let response = leave(&node.groups, 3, request("missing"));
        assert_eq!(response.error_code, code::NONE);
        assert_eq!(response.members.len(), 1);
        assert_eq!(response.members[0].error_code, code::UNKNOWN_MEMBER_ID);
        let response = leave(&node.groups, 3, request(""));
        assert_eq!(response.error_code, code::INVALID_GROUP_ID);
        assert!(response.members.is_empty());
    }
}
