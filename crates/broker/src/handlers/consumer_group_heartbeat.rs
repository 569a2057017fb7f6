//! ConsumerGroupHeartbeat (68): the KIP-848 consumer protocol's only call:
//! join, stay alive, learn the assignment, confirm revocations, leave.

use std::future::Future;
use std::sync::Arc;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::consumer_group_heartbeat::{
    Assignment, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, TopicPartitions,
};

use super::RequestContext;
use sluice_coordinator::GroupCoordinator;
use sluice_coordinator::group::assignor;
use sluice_coordinator::group::consumer::HeartbeatArgs;

/// Handles ConsumerGroupHeartbeat.
pub fn handle(
    groups: &Arc<GroupCoordinator>,
    ctx: &RequestContext,
    header: &RequestHeader,
    request: ConsumerGroupHeartbeatRequest,
) -> impl Future<Output = ConsumerGroupHeartbeatResponse> + Send + 'static {
    let groups = Arc::clone(groups);
    let args = HeartbeatArgs {
        member_id: request.member_id,
        member_epoch: request.member_epoch,
        instance_id: request.instance_id,
        rack_id: request.rack_id,
        rebalance_timeout_ms: request.rebalance_timeout_ms,
        subscribed_topic_names: request.subscribed_topic_names,
        subscribed_topic_regex: request.subscribed_topic_regex,
        server_assignor: request.server_assignor,
        owned: request.topic_partitions.map(|tps| {
            let mut owned = assignor::Assignment::new();
            for tp in tps {
                owned.entry(tp.topic_id).or_default().extend(tp.partitions);
            }
            owned
        }),
        client_id: header.client_id.clone().unwrap_or_default(),
        client_host: format!("/{}", ctx.peer.ip()),
    };
    async move {
        let group_id = request.group_id;
        match groups.consumer_heartbeat(&group_id, args).await {
            Err(error_code) => ConsumerGroupHeartbeatResponse {
                error_code,
                ..Default::default()
            },
            Ok(reply) => ConsumerGroupHeartbeatResponse {
                error_code: code::NONE,
                member_id: Some(reply.member_id),
                member_epoch: reply.member_epoch,
                heartbeat_interval_ms: reply.heartbeat_interval_ms,
                assignment: reply.assignment.map(|a| Assignment {
                    topic_partitions: a
                        .into_iter()
                        .map(|(topic_id, parts)| TopicPartitions {
                            topic_id,
                            partitions: parts.into_iter().collect(),
                        })
                        .collect(),
                }),
                ..Default::default()
            },
        }
    }
}
