//! JoinGroup (11): the first phase of a classic rebalance.

use std::future::Future;
use std::sync::Arc;

use sluice_protocol::RequestHeader;
use sluice_protocol::messages::join_group::{JoinGroupRequest, JoinGroupResponse};

use super::RequestContext;
use crate::authz::Authorizer;
use sluice_coordinator::GroupCoordinator;
use sluice_coordinator::group::classic::JoinArgs;
use sluice_metadata::acl::AclOperation;

/// Handles JoinGroup; the response may wait for the rebalance to complete.
pub fn handle(
    groups: &Arc<GroupCoordinator>,
    authorizer: &Authorizer,
    ctx: &RequestContext,
    header: &RequestHeader,
    request: JoinGroupRequest,
) -> impl Future<Output = JoinGroupResponse> + Send + 'static {
    let groups = Arc::clone(groups);
    // Kafka: READ on the group.
    let denied = !authorizer.group(ctx, AclOperation::Read, &request.group_id);
    let version = header.request_api_version;
    let args = JoinArgs {
        member_id: request.member_id,
        instance_id: request.group_instance_id,
        client_id: header.client_id.clone().unwrap_or_default(),
        client_host: format!("/{}", ctx.peer.ip()),
        session_timeout_ms: request.session_timeout_ms,
        // v0 has no rebalance timeout; Kafka uses the session timeout.
        rebalance_timeout_ms: if version == 0 {
            request.session_timeout_ms
        } else {
            request.rebalance_timeout_ms
        },
        protocol_type: request.protocol_type,
        protocols: request
            .protocols
            .into_iter()
            .map(|p| (p.name, p.metadata))
            .collect(),
        // KIP-394: from v4 a new member first gets an id, then rejoins.
        require_known_member_id: version >= 4,
    };
    async move {
        let mut response = if denied {
            JoinGroupResponse {
                error_code: sluice_protocol::error::codes::GROUP_AUTHORIZATION_FAILED,
                generation_id: -1,
                ..Default::default()
            }
        } else {
            groups.join_group(&request.group_id, args).await
        };
        if version < 7 && response.protocol_name.is_none() {
            // Not nullable before v7.
            response.protocol_name = Some(String::new());
        }
        response
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! The classic rebalance through its handlers: JoinGroup here, and the
    //! helpers SyncGroup, Heartbeat, LeaveGroup and DescribeGroups tests
    //! start from.

    use std::time::Duration;

    use bytes::Bytes;
    use sluice_protocol::messages::join_group::JoinGroupRequestProtocol;
    use sluice_protocol::messages::sync_group::{SyncGroupRequest, SyncGroupRequestAssignment};

    use super::*;
    use crate::testing;
    use sluice_protocol::error::codes as code;

    /// Bound on a join that should complete at once (one member, no
    /// initial rebalance delay).
    const JOIN_BOUND: Duration = Duration::from_secs(10);

    /// The consumer protocol's subscription (v0) to topic `t`: version,
    /// one topic name, null user data.
    pub(crate) fn subscription() -> Bytes {
        let mut b = Vec::new();
        b.extend_from_slice(&0i16.to_be_bytes());
        b.extend_from_slice(&1i32.to_be_bytes());
        b.extend_from_slice(&1i16.to_be_bytes());
        b.push(b't');
        b.extend_from_slice(&(-1i32).to_be_bytes());
        Bytes::from(b)
    }

    /// A JoinGroup of `group` at `version` as `member_id` ("" for a new
    /// member), subscribed to `t` with the range assignor.
    pub(crate) async fn join(
        groups: &Arc<GroupCoordinator>,
        version: i16,
        group: &str,
        member_id: &str,
    ) -> JoinGroupResponse {
        let request = JoinGroupRequest {
            group_id: group.to_owned(),
            session_timeout_ms: 30_000,
            rebalance_timeout_ms: 30_000,
            member_id: member_id.to_owned(),
            protocol_type: "consumer".to_owned(),
            protocols: vec![JoinGroupRequestProtocol {
                name: "range".to_owned(),
                metadata: subscription(),
            }],
            ..Default::default()
        };
        let header = testing::header(11, version);
        tokio::time::timeout(
            JOIN_BOUND,
            handle(
                groups,
                &testing::allow_all(),
                &testing::ctx(),
                &header,
                request,
            ),
        )
        .await
        .expect("join completes")
    }

    /// One member joins `group` (v5, KIP-394 two-step) and syncs with
    /// `assignment`; returns its member id and the generation.
    pub(crate) async fn stable_member(
        groups: &Arc<GroupCoordinator>,
        group: &str,
        assignment: &'static [u8],
    ) -> (String, i32) {
        let first = join(groups, 5, group, "").await;
        assert_eq!(first.error_code, code::MEMBER_ID_REQUIRED);
        let joined = join(groups, 5, group, &first.member_id).await;
        assert_eq!(joined.error_code, code::NONE);
        let member_id = joined.member_id.clone();
        let request = SyncGroupRequest {
            group_id: group.to_owned(),
            generation_id: joined.generation_id,
            member_id: member_id.clone(),
            protocol_type: Some("consumer".to_owned()),
            protocol_name: Some("range".to_owned()),
            assignments: vec![SyncGroupRequestAssignment {
                member_id: member_id.clone(),
                assignment: Bytes::from_static(assignment),
            }],
            ..Default::default()
        };
        let header = testing::header(14, 5);
        let synced = super::super::sync_group::handle(
            groups,
            &testing::allow_all(),
            &testing::ctx(),
            &header,
            request,
        )
        .await;
        assert_eq!(synced.error_code, code::NONE);
        (member_id, joined.generation_id)
    }

    #[tokio::test]
    async fn a_new_member_first_gets_an_id_then_leads_the_first_generation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        let first = join(&node.groups, 5, "g", "").await;
        assert_eq!(first.error_code, code::MEMBER_ID_REQUIRED);
        assert!(!first.member_id.is_empty(), "the id to rejoin with");
        assert_eq!(
            first.protocol_name.as_deref(),
            Some(""),
            "not nullable before v7"
        );
        let joined = join(&node.groups, 5, "g", &first.member_id).await;
        assert_eq!(joined.error_code, code::NONE);
        assert_eq!(joined.member_id, first.member_id);
        assert_eq!(joined.leader, joined.member_id, "the only member leads");
        assert_eq!(joined.generation_id, 1);
        assert_eq!(joined.protocol_name.as_deref(), Some("range"));
        assert_eq!(joined.members.len(), 1, "the leader sees the members");
        assert_eq!(joined.members[0].metadata, subscription());
    }

    #[tokio::test]
    async fn v7_keeps_a_null_protocol_name_and_v3_joins_in_one_step() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        let refused = join(&node.groups, 7, "g", "").await;
        assert_eq!(refused.error_code, code::MEMBER_ID_REQUIRED);
        assert_eq!(refused.protocol_name, None);
        let direct = join(&node.groups, 3, "h", "").await;
        assert_eq!(direct.error_code, code::NONE, "no KIP-394 step before v4");
        assert!(!direct.member_id.is_empty());
        assert_eq!(direct.generation_id, 1);
    }

    #[tokio::test]
    async fn a_join_with_an_unknown_member_id_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        stable_member(&node.groups, "g", b"a").await;
        let stranger = join(&node.groups, 5, "g", "no-such-member").await;
        assert_eq!(stranger.error_code, code::UNKNOWN_MEMBER_ID);
    }
}
