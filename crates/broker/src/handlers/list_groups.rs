//! ListGroups (16): every group, filtered by state (v4+) and type (v5+).

use std::future::Future;

use sluice_protocol::RequestHeader;
use sluice_protocol::messages::list_groups::{ListGroupsRequest, ListGroupsResponse, ListedGroup};

use super::RequestContext;
use crate::authz::Authorizer;
use sluice_coordinator::GroupCoordinator;
use sluice_metadata::acl::AclOperation;

/// Handles ListGroups. Filters compare case-insensitively, as Kafka does.
pub fn handle(
    groups: &GroupCoordinator,
    authorizer: &Authorizer,
    ctx: &RequestContext,
    _header: &RequestHeader,
    request: ListGroupsRequest,
) -> impl Future<Output = ListGroupsResponse> + Send + 'static {
    // Kafka: DESCRIBE on the cluster lists every group, else only the
    // groups the principal may DESCRIBE.
    let all_visible = authorizer.cluster(ctx, AclOperation::Describe);
    let visible = |group: &str| all_visible || authorizer.group(ctx, AclOperation::Describe, group);
    let matches = |filter: &[String], value: &str| {
        filter.is_empty() || filter.iter().any(|f| f.eq_ignore_ascii_case(value))
    };
    let coordinator = groups;
    let mut groups: Vec<ListedGroup> = coordinator
        .all()
        .into_iter()
        .filter_map(|slot| {
            // Only the groups this broker coordinates (Kafka's ListGroups
            // is per broker; admin clients ask every broker).
            coordinator.check_coordinator(&slot.id).ok()?;
            if !visible(&slot.id) {
                return None;
            }
            let state = slot.lock();
            if state.removed {
                return None;
            }
            let listed = ListedGroup {
                group_id: slot.id.clone(),
                protocol_type: match &state.kind {
                    sluice_coordinator::group::GroupKind::Classic(g) => {
                        g.protocol_type.clone().unwrap_or_default()
                    }
                    sluice_coordinator::group::GroupKind::Consumer(_) => "consumer".to_owned(),
                },
                group_state: state.state_name().to_owned(),
                group_type: state.group_type().to_owned(),
            };
            (matches(&request.states_filter, &listed.group_state)
                && matches(&request.types_filter, &listed.group_type))
            .then_some(listed)
        })
        .collect();
    groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    // A partition still loading may hold more groups: say so, as Kafka
    // does, and list what is loaded.
    let error_code = if coordinator.ownership().any_loading() {
        sluice_protocol::error::codes::COORDINATOR_LOAD_IN_PROGRESS
    } else {
        sluice_protocol::error::codes::NONE
    };
    std::future::ready(ListGroupsResponse {
        error_code,
        groups,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;
    use crate::handlers::join_group::tests::stable_member;
    use crate::testing;

    fn list(
        groups: &GroupCoordinator,
        states: &[&str],
        types: &[&str],
    ) -> Vec<(String, String, String)> {
        let request = ListGroupsRequest {
            states_filter: states.iter().map(|s| (*s).to_owned()).collect(),
            types_filter: types.iter().map(|s| (*s).to_owned()).collect(),
            ..Default::default()
        };
        let header = testing::header(16, 5);
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
        .into_iter()
        .map(|g| (g.group_id, g.group_state, g.group_type))
        .collect()
    }

    #[tokio::test]
    async fn lists_groups_sorted_and_filters_by_state_and_type_ignoring_case() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        stable_member(&node.groups, "b-stable", b"a").await;
        // A group known only by its committed offsets is Empty.
        let who = sluice_coordinator::group::CommitIdentity {
            member_id: String::new(),
            instance_id: None,
            generation_or_epoch: -1,
        };
        node.create_topic("t", 1).await;
        let offsets = vec![sluice_coordinator::group::OffsetToCommit {
            topic: "t".to_owned(),
            partition: 0,
            offset: 1,
            leader_epoch: -1,
            metadata: None,
        }];
        node.groups
            .commit_offsets("a-empty", &who, offsets)
            .await
            .expect("commit");
        let all = list(&node.groups, &[], &[]);
        let all: Vec<_> = all
            .iter()
            .map(|(g, s, t)| (g.as_str(), s.as_str(), t.as_str()))
            .collect();
        assert_eq!(
            all,
            [
                ("a-empty", "Empty", "classic"),
                ("b-stable", "Stable", "classic")
            ]
        );
        let stable = list(&node.groups, &["stable"], &[]);
        assert_eq!(stable.len(), 1);
        assert_eq!(stable[0].0, "b-stable");
        assert!(list(&node.groups, &[], &["Consumer"]).is_empty());
        assert_eq!(list(&node.groups, &[], &["CLASSIC"]).len(), 2);
    }
}
