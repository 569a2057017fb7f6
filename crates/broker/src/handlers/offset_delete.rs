//! OffsetDelete (47): removes committed offsets the group no longer uses.

use std::future::Future;
use std::sync::Arc;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::offset_delete::{
    OffsetDeleteRequest, OffsetDeleteResponse, OffsetDeleteResponsePartition,
    OffsetDeleteResponseTopic,
};

use super::RequestContext;
use sluice_coordinator::GroupCoordinator;

/// Handles OffsetDelete.
pub fn handle(
    groups: &Arc<GroupCoordinator>,
    _ctx: &RequestContext,
    _header: &RequestHeader,
    request: OffsetDeleteRequest,
) -> impl Future<Output = OffsetDeleteResponse> + Send + 'static {
    let groups = Arc::clone(groups);
    async move {
        let partitions: Vec<(String, i32)> = request
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.name.clone(), p.partition_index))
            })
            .collect();
        match groups.delete_offsets(&request.group_id, partitions).await {
            Err(error_code) => OffsetDeleteResponse {
                error_code,
                ..Default::default()
            },
            Ok(codes) => {
                let mut codes = codes.into_iter();
                OffsetDeleteResponse {
                    error_code: code::NONE,
                    topics: request
                        .topics
                        .into_iter()
                        .map(|t| OffsetDeleteResponseTopic {
                            name: t.name,
                            partitions: t
                                .partitions
                                .iter()
                                .map(|p| OffsetDeleteResponsePartition {
                                    partition_index: p.partition_index,
                                    error_code: codes.next().unwrap_or_default(),
                                })
                                .collect(),
                        })
                        .collect(),
                    ..Default::default()
                }
            }
        }
    }
}
