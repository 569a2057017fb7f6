//! CreatePartitions (37).

use std::future::Future;
use std::sync::Arc;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::create_partitions::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreatePartitionsTopicResult,
};

use super::RequestContext;
use sluice_metadata::Controller;

/// Handles CreatePartitions through `controller`; an explicit assignment
/// may name only `node_id`.
pub fn handle(
    controller: &Arc<Controller>,
    node_id: i32,
    _ctx: &RequestContext,
    _header: &RequestHeader,
    request: CreatePartitionsRequest,
) -> impl Future<Output = CreatePartitionsResponse> + Send + 'static {
    let controller = Arc::clone(controller);
    async move {
        let node = node_id;
        let mut pre = Vec::new();
        let mut asks = Vec::new();
        for t in request.topics {
            let bad_assignment = t
                .assignments
                .as_ref()
                .is_some_and(|a| a.iter().any(|x| x.broker_ids.iter().any(|&b| b != node)));
            if bad_assignment {
                pre.push((
                    t.name,
                    Some((
                        code::INVALID_REPLICA_ASSIGNMENT,
                        "assignment names an unknown broker".to_owned(),
                    )),
                ));
            } else {
                asks.push((t.name.clone(), t.count));
                pre.push((t.name, None));
            }
        }
        let mut results = controller
            .create_partitions(asks, request.validate_only)
            .await
            .into_iter();
        let results = pre
            .into_iter()
            .map(|(name, early)| {
                let (error_code, error_message) = match early {
                    Some((c, m)) => (c, Some(m)),
                    None => match results.next() {
                        Some(Ok(())) => (code::NONE, None),
                        Some(Err(e)) => (e.code, Some(e.message)),
                        None => (code::UNKNOWN_SERVER_ERROR, None),
                    },
                };
                CreatePartitionsTopicResult {
                    name,
                    error_code,
                    error_message,
                    ..Default::default()
                }
            })
            .collect();
        CreatePartitionsResponse {
            throttle_time_ms: 0,
            results,
            ..Default::default()
        }
    }
}
