//! ConsumerGroupDescribe (69): KIP-848 groups with members, current and
//! target assignments.

use std::future::Future;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::consumer_group_describe::{
    Assignment, ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, DescribedGroup,
    Member, TopicPartitions,
};

use super::RequestContext;
use crate::authz::Authorizer;
use sluice_coordinator::GroupCoordinator;
use sluice_coordinator::group::{GroupKind, assignor};
use sluice_metadata::MetadataImage;
use sluice_metadata::acl::AclOperation;

fn to_wire(a: &assignor::Assignment, image: &MetadataImage) -> Assignment {
    Assignment {
        topic_partitions: a
            .iter()
            .map(|(id, parts)| TopicPartitions {
                topic_id: *id,
                topic_name: image.topic_names.get(id).cloned().unwrap_or_default(),
                partitions: parts.iter().copied().collect(),
            })
            .collect(),
    }
}

/// Handles ConsumerGroupDescribe.
pub fn handle(
    groups: &GroupCoordinator,
    image: &MetadataImage,
    authorizer: &Authorizer,
    ctx: &RequestContext,
    _header: &RequestHeader,
    request: ConsumerGroupDescribeRequest,
) -> impl Future<Output = ConsumerGroupDescribeResponse> + Send + 'static {
    let groups = request
        .group_ids
        .into_iter()
        .map(|group_id| {
            let not_found = |message: &str| DescribedGroup {
                error_code: code::GROUP_ID_NOT_FOUND,
                error_message: Some(message.to_owned()),
                group_id: group_id.clone(),
                group_state: "Dead".to_owned(),
                authorized_operations: i32::MIN,
                ..Default::default()
            };
            // Kafka: DESCRIBE on the group first.
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
                return not_found("group does not exist");
            };
            let state = slot.lock();
            let GroupKind::Consumer(g) = &state.kind else {
                return not_found("group is not a consumer group");
            };
            DescribedGroup {
                error_code: code::NONE,
                error_message: None,
                group_id: group_id.clone(),
                group_state: g.state_name().to_owned(),
                group_epoch: g.group_epoch,
                assignment_epoch: g.assignment_epoch,
                assignor_name: g.assignor.clone(),
                members: g
                    .members
                    .values()
                    .map(|m| Member {
                        member_id: m.member_id.clone(),
                        instance_id: m.instance_id.clone(),
                        rack_id: m.rack_id.clone(),
                        member_epoch: m.member_epoch,
                        client_id: m.client_id.clone(),
                        client_host: m.client_host.clone(),
                        subscribed_topic_names: m.subscribed_topic_names.clone(),
                        subscribed_topic_regex: m.subscribed_topic_regex.clone(),
                        assignment: to_wire(&m.assigned, image),
                        target_assignment: to_wire(
                            &g.target.get(&m.member_id).cloned().unwrap_or_default(),
                            image,
                        ),
                        member_type: 1,
                    })
                    .collect(),
                authorized_operations: i32::MIN,
            }
        })
        .collect();
    std::future::ready(ConsumerGroupDescribeResponse {
        groups,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;
    use crate::handlers::consumer_group_heartbeat::tests::heartbeat;
    use crate::handlers::join_group::tests::stable_member;
    use crate::testing;

    #[tokio::test]
    async fn describes_members_with_assignments_named_and_refuses_other_groups() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        node.create_topic("t", 2).await;
        let joined = heartbeat(&node, "g", "", 0, Some(&["t"])).await;
        assert_eq!(joined.error_code, code::NONE);
        stable_member(&node.groups, "classic", b"a").await;
        let request = ConsumerGroupDescribeRequest {
            group_ids: vec!["g".to_owned(), "classic".to_owned(), "missing".to_owned()],
            ..Default::default()
        };
        let header = testing::header(69, 0);
        let response = handle(
            &node.groups,
            &node.image(),
            &testing::allow_all(),
            &testing::ctx(),
            &header,
            request,
        )
        .now_or_never()
        .expect("answers at once");
        let g = &response.groups[0];
        assert_eq!(g.error_code, code::NONE);
        assert_eq!(g.group_epoch, joined.member_epoch);
        assert_eq!(g.members.len(), 1);
        let m = &g.members[0];
        assert_eq!(Some(&m.member_id), joined.member_id.as_ref());
        assert_eq!(m.subscribed_topic_names, ["t"]);
        assert_eq!(m.client_host, "/127.0.0.1");
        let named: Vec<_> = m
            .target_assignment
            .topic_partitions
            .iter()
            .map(|tp| (tp.topic_name.as_str(), tp.partitions.clone()))
            .collect();
        assert_eq!(named, [("t", vec![0, 1])]);
        for other in &response.groups[1..] {
            assert_eq!(other.error_code, code::GROUP_ID_NOT_FOUND);
            assert_eq!(other.group_state, "Dead");
        }
    }
}
