//! OffsetFetch (9): committed offsets of one group (v0-7) or several (v8+).

use std::future::Future;
use std::sync::Arc;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::offset_fetch::{
    OffsetFetchRequest, OffsetFetchResponse, OffsetFetchResponseGroup,
    OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};

use super::RequestContext;
use crate::Broker;
use crate::group::FetchedOffsets;

/// Handles OffsetFetch.
pub fn handle(
    broker: &Arc<Broker>,
    _ctx: &RequestContext,
    header: &RequestHeader,
    request: OffsetFetchRequest,
) -> impl Future<Output = OffsetFetchResponse> + Send + 'static {
    let groups = &broker.groups;
    let response = if header.request_api_version >= 8 {
        OffsetFetchResponse {
            groups: request
                .groups
                .into_iter()
                .map(|g| {
                    let topics = g.topics.map(|ts| {
                        ts.into_iter()
                            .map(|t| (t.name, t.partition_indexes))
                            .collect()
                    });
                    let member = g.member_id.unwrap_or_default();
                    match groups.validate_fetch(&g.group_id, &member, g.member_epoch) {
                        Err(error_code) => OffsetFetchResponseGroup {
                            group_id: g.group_id,
                            topics: Vec::new(),
                            error_code,
                        },
                        Ok(()) => OffsetFetchResponseGroup {
                            topics: to_v8(groups.fetch_offsets(&g.group_id, topics)),
                            group_id: g.group_id,
                            error_code: code::NONE,
                        },
                    }
                })
                .collect(),
            ..Default::default()
        }
    } else {
        let topics = request.topics.map(|ts| {
            ts.into_iter()
                .map(|t| (t.name, t.partition_indexes))
                .collect()
        });
        let error_code = if request.group_id.is_empty() {
            code::INVALID_GROUP_ID
        } else {
            code::NONE
        };
        OffsetFetchResponse {
            topics: to_v0(groups.fetch_offsets(&request.group_id, topics)),
            error_code,
            ..Default::default()
        }
    };
    std::future::ready(response)
}

fn to_v0(fetched: FetchedOffsets) -> Vec<OffsetFetchResponseTopic> {
    fetched
        .into_iter()
        .map(|(name, parts)| OffsetFetchResponseTopic {
            name,
            partitions: parts
                .into_iter()
                .map(|(partition_index, v)| OffsetFetchResponsePartition {
                    partition_index,
                    committed_offset: v.as_ref().map_or(-1, |v| v.offset),
                    committed_leader_epoch: v.as_ref().map_or(-1, |v| v.leader_epoch),
                    metadata: Some(v.map(|v| v.metadata).unwrap_or_default()),
                    error_code: code::NONE,
                })
                .collect(),
        })
        .collect()
}

fn to_v8(fetched: FetchedOffsets) -> Vec<OffsetFetchResponseTopics> {
    fetched
        .into_iter()
        .map(|(name, parts)| OffsetFetchResponseTopics {
            name,
            partitions: parts
                .into_iter()
                .map(|(partition_index, v)| OffsetFetchResponsePartitions {
                    partition_index,
                    committed_offset: v.as_ref().map_or(-1, |v| v.offset),
                    committed_leader_epoch: v.as_ref().map_or(-1, |v| v.leader_epoch),
                    metadata: Some(v.map(|v| v.metadata).unwrap_or_default()),
                    error_code: code::NONE,
                })
                .collect(),
        })
        .collect()
}
