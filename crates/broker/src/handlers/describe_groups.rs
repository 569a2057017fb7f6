//! DescribeGroups (15): state, protocol and members of classic groups.

use std::future::Future;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::describe_groups::{
    DescribeGroupsRequest, DescribeGroupsResponse, DescribedGroup, DescribedGroupMember,
};

use super::RequestContext;
use crate::authz::Authorizer;
use sluice_coordinator::GroupCoordinator;
use sluice_coordinator::group::GroupKind;
use sluice_coordinator::group::classic::ClassicState;
use sluice_metadata::acl::AclOperation;

/// Handles DescribeGroups. An unknown group is reported Dead (v0-5) or
/// GROUP_ID_NOT_FOUND (v6+), as Kafka does.
pub fn handle(
    groups: &GroupCoordinator,
    authorizer: &Authorizer,
    ctx: &RequestContext,
    header: &RequestHeader,
    request: DescribeGroupsRequest,
) -> impl Future<Output = DescribeGroupsResponse> + Send + 'static {
    let version = header.request_api_version;
    let groups = request
        .groups
        .into_iter()
        .map(|group_id| {
            let dead = |error_code| DescribedGroup {
                error_code,
                group_id: group_id.clone(),
                group_state: "Dead".to_owned(),
                authorized_operations: i32::MIN,
                ..Default::default()
            };
            // Kafka's answer for a group it cannot describe here: the
            // error, an unknown ("") state, and nothing else. DESCRIBE on
            // the group is checked first.
            let checked = if authorizer.group(ctx, AclOperation::Describe, &group_id) {
                groups.check_coordinator(&group_id)
            } else {
                Err(code::GROUP_AUTHORIZATION_FAILED)
            };
            if let Err(error_code) = checked {
                return DescribedGroup {
                    error_code,
                    group_id: group_id.clone(),
                    authorized_operations: i32::MIN,
                    ..Default::default()
                };
            }
            let Some(slot) = groups.get(&group_id) else {
                return dead(if version >= 6 {
                    code::GROUP_ID_NOT_FOUND
                } else {
                    code::NONE
                });
            };
            let state = slot.lock();
            match &state.kind {
                _ if state.removed => dead(code::NONE),
                GroupKind::Consumer(_) => DescribedGroup {
                    error_code: if version >= 6 {
                        code::GROUP_ID_NOT_FOUND
                    } else {
                        code::NONE
                    },
                    error_message: Some("group is a consumer group (KIP-848)".to_owned()),
                    group_id: group_id.clone(),
                    group_state: state.state_name().to_owned(),
                    protocol_type: "consumer".to_owned(),
                    authorized_operations: i32::MIN,
                    ..Default::default()
                },
                GroupKind::Classic(g) => {
                    let protocol = g.protocol_name.clone().unwrap_or_default();
                    // Kafka shows metadata and assignments only when Stable.
                    let stable = g.state == ClassicState::Stable;
                    DescribedGroup {
                        error_code: code::NONE,
                        error_message: None,
                        group_id: group_id.clone(),
                        group_state: g.state.name().to_owned(),
                        protocol_type: g.protocol_type.clone().unwrap_or_default(),
                        protocol_data: if stable {
                            protocol.clone()
                        } else {
                            String::new()
                        },
                        members: g
                            .members
                            .values()
                            .map(|m| DescribedGroupMember {
                                member_id: m.member_id.clone(),
                                group_instance_id: m.instance_id.clone(),
                                client_id: m.client_id.clone(),
                                client_host: m.client_host.clone(),
                                member_metadata: if stable {
                                    m.protocols
                                        .iter()
                                        .find(|(n, _)| *n == protocol)
                                        .map(|(_, b)| b.clone())
                                        .unwrap_or_default()
                                } else {
                                    Default::default()
                                },
                                member_assignment: if stable {
                                    m.assignment.clone()
                                } else {
                                    Default::default()
                                },
                            })
                            .collect(),
                        authorized_operations: i32::MIN,
                    }
                }
            }
        })
        .collect();
    std::future::ready(DescribeGroupsResponse {
        groups,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;
    use crate::handlers::join_group::tests::{stable_member, subscription};
    use crate::testing;

    fn describe(groups: &GroupCoordinator, version: i16, ids: &[&str]) -> Vec<DescribedGroup> {
        let request = DescribeGroupsRequest {
            groups: ids.iter().map(|g| (*g).to_owned()).collect(),
            ..Default::default()
        };
        let header = testing::header(15, version);
        handle(
            groups,
            &testing::allow_all(),
            &testing::ctx(),
            &header,
            request,
        )
        .now_or_never()
        .expect("answers at once")
        .groups
    }

    #[tokio::test]
    async fn a_stable_group_shows_its_protocol_members_and_assignments() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        let (member, _) = stable_member(&node.groups, "g", b"assigned").await;
        let described = describe(&node.groups, 5, &["g"]);
        let g = &described[0];
        assert_eq!(g.error_code, code::NONE);
        assert_eq!(g.group_state, "Stable");
        assert_eq!(g.protocol_type, "consumer");
        assert_eq!(g.protocol_data, "range");
        assert_eq!(g.members.len(), 1);
        let m = &g.members[0];
        assert_eq!(m.member_id, member);
        assert_eq!(m.client_id, "test");
        assert_eq!(m.client_host, "/127.0.0.1");
        assert_eq!(m.member_metadata, subscription());
        assert_eq!(m.member_assignment.as_ref(), b"assigned");
    }

    #[tokio::test]
    async fn an_unknown_group_is_dead_before_v6_and_not_found_from_v6() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        // The client found the coordinator first, which created
        // `__consumer_offsets`; before that no broker coordinates a group.
        node.groups
            .ensure_offsets_topic()
            .await
            .expect("offsets topic");
        let old = describe(&node.groups, 5, &["missing"]);
        assert_eq!(
            (old[0].error_code, old[0].group_state.as_str()),
            (code::NONE, "Dead")
        );
        let new = describe(&node.groups, 6, &["missing"]);
        assert_eq!(new[0].error_code, code::GROUP_ID_NOT_FOUND);
        assert_eq!(new[0].group_id, "missing");
    }
}
