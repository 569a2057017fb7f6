//! ListGroups (16): every group, filtered by state (v4+) and type (v5+).

use std::future::Future;

use sluice_protocol::RequestHeader;
use sluice_protocol::messages::list_groups::{ListGroupsRequest, ListGroupsResponse, ListedGroup};

use super::RequestContext;
use sluice_coordinator::GroupCoordinator;

/// Handles ListGroups. Filters compare case-insensitively, as Kafka does.
pub fn handle(
    groups: &GroupCoordinator,
    _ctx: &RequestContext,
    _header: &RequestHeader,
    request: ListGroupsRequest,
) -> impl Future<Output = ListGroupsResponse> + Send + 'static {
    let matches = |filter: &[String], value: &str| {
        filter.is_empty() || filter.iter().any(|f| f.eq_ignore_ascii_case(value))
    };
    let mut groups: Vec<ListedGroup> = groups
        .all()
        .into_iter()
        .filter_map(|slot| {
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
    std::future::ready(ListGroupsResponse {
        groups,
        ..Default::default()
    })
}
