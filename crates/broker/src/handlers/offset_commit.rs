//! OffsetCommit (8): stores consumed positions durably in `__consumer_offsets`.

use std::future::Future;
use std::sync::Arc;

use sluice_protocol::RequestHeader;
use sluice_protocol::messages::offset_commit::{
    OffsetCommitRequest, OffsetCommitResponse, OffsetCommitResponsePartition,
    OffsetCommitResponseTopic,
};

use super::RequestContext;
use sluice_coordinator::GroupCoordinator;
use sluice_coordinator::group::{CommitIdentity, OffsetToCommit};

/// Handles OffsetCommit; answers after the commit is fsynced.
pub fn handle(
    groups: &Arc<GroupCoordinator>,
    _ctx: &RequestContext,
    _header: &RequestHeader,
    request: OffsetCommitRequest,
) -> impl Future<Output = OffsetCommitResponse> + Send + 'static {
    let groups = Arc::clone(groups);
    async move {
        let who = CommitIdentity {
            member_id: request.member_id,
            instance_id: request.group_instance_id,
            generation_or_epoch: request.generation_id_or_member_epoch,
        };
        let offsets: Vec<OffsetToCommit> = request
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| OffsetToCommit {
                    topic: t.name.clone(),
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    leader_epoch: p.committed_leader_epoch,
                    metadata: p.committed_metadata.clone(),
                })
            })
            .collect();
        let total = offsets.len();
        let codes = match groups
            .commit_offsets(&request.group_id, &who, offsets)
            .await
        {
            Ok(codes) => codes,
            Err(c) => vec![c; total],
        };
        let mut codes = codes.into_iter();
        let topics = request
            .topics
            .into_iter()
            .map(|t| OffsetCommitResponseTopic {
                name: t.name,
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| OffsetCommitResponsePartition {
                        partition_index: p.partition_index,
                        error_code: codes.next().unwrap_or_default(),
                    })
                    .collect(),
            })
            .collect();
        OffsetCommitResponse {
            topics,
            ..Default::default()
        }
    }
}
