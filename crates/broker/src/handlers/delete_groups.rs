//! DeleteGroups (42): deletes empty groups and their offsets.

use std::future::Future;
use std::sync::Arc;

use sluice_protocol::RequestHeader;
use sluice_protocol::messages::delete_groups::{
    DeletableGroupResult, DeleteGroupsRequest, DeleteGroupsResponse,
};

use super::RequestContext;
use crate::authz::Authorizer;
use sluice_coordinator::GroupCoordinator;
use sluice_metadata::acl::AclOperation;

/// Handles DeleteGroups; one result per group, in order.
pub fn handle(
    groups: &Arc<GroupCoordinator>,
    authorizer: &Authorizer,
    ctx: &RequestContext,
    _header: &RequestHeader,
    request: DeleteGroupsRequest,
) -> impl Future<Output = DeleteGroupsResponse> + Send + 'static {
    let groups = Arc::clone(groups);
    // Kafka: DELETE on each group, else GROUP_AUTHORIZATION_FAILED.
    let denied: Vec<bool> = request
        .groups_names
        .iter()
        .map(|g| !authorizer.group(ctx, AclOperation::Delete, g))
        .collect();
    async move {
        let mut results = Vec::with_capacity(request.groups_names.len());
        for (group_id, denied) in request.groups_names.into_iter().zip(denied) {
            let error_code = if denied {
                sluice_protocol::error::codes::GROUP_AUTHORIZATION_FAILED
            } else {
                groups.delete_group(&group_id).await
            };
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

#[cfg(test)]
mod tests {
    use sluice_protocol::error::codes as code;

    use super::*;
    use crate::handlers::join_group::tests::stable_member;
    use crate::testing;

    #[tokio::test]
    async fn deletes_empty_groups_and_refuses_live_or_unknown_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        node.create_topic("t", 1).await;
        stable_member(&node.groups, "live", b"a").await;
        let who = sluice_coordinator::group::CommitIdentity {
            member_id: String::new(),
            instance_id: None,
            generation_or_epoch: -1,
        };
        let offsets = vec![sluice_coordinator::group::OffsetToCommit {
            topic: "t".to_owned(),
            partition: 0,
            offset: 5,
            leader_epoch: -1,
            metadata: None,
        }];
        node.groups
            .commit_offsets("idle", &who, offsets)
            .await
            .expect("commit");
        let offset = |group: &str| {
            node.groups
                .fetch_offsets(group, Some(vec![("t".to_owned(), vec![0])]))[0]
                .1[0]
                .1
                .as_ref()
                .map(|v| v.offset)
        };
        assert_eq!(offset("idle"), Some(5));
        let request = DeleteGroupsRequest {
            groups_names: vec!["idle".to_owned(), "live".to_owned(), "missing".to_owned()],
            ..Default::default()
        };
        let header = testing::header(42, 2);
        let response = handle(
            &node.groups,
            &testing::allow_all(),
            &testing::ctx(),
            &header,
            request,
        )
        .await;
        let results: Vec<_> = response
            .results
            .iter()
            .map(|r| (r.group_id.as_str(), r.error_code))
            .collect();
        assert_eq!(
            results,
            [
                ("idle", code::NONE),
                ("live", code::NON_EMPTY_GROUP),
                ("missing", code::GROUP_ID_NOT_FOUND)
            ]
        );
        assert_eq!(offset("idle"), None, "its offsets went with it");
        assert!(node.groups.get("live").is_some());
    }
}
