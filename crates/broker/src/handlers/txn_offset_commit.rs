//! TxnOffsetCommit (28): a consumer group's offsets, committed only if the
//! producer's transaction commits (the consume-transform-produce loop).
//!
//! The offsets wait in the transaction coordinator (and in its
//! `PrepareCommit` record) and reach the group coordinator when the
//! commit markers are written; an abort drops them.

use std::future::Future;
use std::sync::Arc;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::txn_offset_commit::{
    TxnOffsetCommitRequest, TxnOffsetCommitResponse, TxnOffsetCommitResponsePartition,
    TxnOffsetCommitResponseTopic,
};

use super::RequestContext;
use crate::Broker;
use crate::txn::state_log::PendingOffset;

/// First version that knows PRODUCER_FENCED (KIP-588).
const PRODUCER_FENCED_SINCE: i16 = 3;

/// Handles TxnOffsetCommit.
pub fn handle(
    broker: &Arc<Broker>,
    _ctx: &RequestContext,
    header: &RequestHeader,
    request: TxnOffsetCommitRequest,
) -> impl Future<Output = TxnOffsetCommitResponse> + Send + 'static {
    let broker = Arc::clone(broker);
    let version = header.request_api_version;
    async move {
        let image = broker.metadata.image();
        let mut codes: Vec<Vec<i16>> = Vec::with_capacity(request.topics.len());
        let mut offsets = Vec::new();
        for t in &request.topics {
            let known = image.topics.get(&t.name);
            codes.push(
                t.partitions
                    .iter()
                    .map(|p| {
                        if !known.is_some_and(|k| k.partitions.contains_key(&p.partition_index)) {
                            return code::UNKNOWN_TOPIC_OR_PARTITION;
                        }
                        offsets.push(PendingOffset {
                            group: request.group_id.clone(),
                            topic: t.name.clone(),
                            partition: p.partition_index,
                            offset: p.committed_offset,
                            leader_epoch: p.committed_leader_epoch,
                            metadata: p.committed_metadata.clone(),
                        });
                        code::NONE
                    })
                    .collect(),
            );
        }
        let request_error = if request.group_id.is_empty() {
            Some(code::INVALID_GROUP_ID)
        } else {
            broker
                .txn
                .add_offsets(
                    &request.transactional_id,
                    request.producer_id,
                    request.producer_epoch,
                    &request.group_id,
                    offsets,
                )
                .await
                .err()
                .map(|e| {
                    tracing::info!(transactional_id = %request.transactional_id, group = %request.group_id, "TxnOffsetCommit refused: {e:?}");
                    e.code(version < PRODUCER_FENCED_SINCE)
                })
        };
        TxnOffsetCommitResponse {
            throttle_time_ms: 0,
            topics: request
                .topics
                .iter()
                .zip(codes)
                .map(|(t, codes)| TxnOffsetCommitResponseTopic {
                    name: t.name.clone(),
                    partitions: t
                        .partitions
                        .iter()
                        .zip(codes)
                        .map(|(p, c)| TxnOffsetCommitResponsePartition {
                            partition_index: p.partition_index,
                            error_code: request_error.unwrap_or(c),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }
}
