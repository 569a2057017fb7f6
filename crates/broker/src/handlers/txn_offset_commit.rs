//! TxnOffsetCommit (28): a consumer group's offsets, committed only if the
//! producer's transaction commits (the consume-transform-produce loop).
//!
//! The offsets wait in the transaction coordinator (and in its
//! `PrepareCommit` record) and reach the group coordinator when the
//! commit markers are written; an abort drops them.
//!
//! Checks, in Kafka's order: the group member (v3+, KIP-447, when a member
//! id is given and the group is a classic group: FENCED_INSTANCE_ID,
//! UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION), then the producer against the
//! ongoing transaction (fenced epoch: PRODUCER_FENCED, or
//! INVALID_PRODUCER_EPOCH before v3; no ongoing transaction with this
//! group: INVALID_TXN_STATE).

use std::future::Future;
use std::sync::Arc;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::txn_offset_commit::{
    TxnOffsetCommitRequest, TxnOffsetCommitResponse, TxnOffsetCommitResponsePartition,
    TxnOffsetCommitResponseTopic,
};

use super::RequestContext;
use sluice_coordinator::group::GroupKind;
use sluice_coordinator::txn::state_log::PendingOffset;
use sluice_coordinator::{GroupCoordinator, TransactionCoordinator};
use sluice_metadata::MetadataImage;

/// First version that knows PRODUCER_FENCED (KIP-588).
const PRODUCER_FENCED_SINCE: i16 = 3;

/// Handles TxnOffsetCommit: partitions are checked against `image`, the
/// member against `groups`, the producer and its transaction by `txn`.
pub fn handle(
    txn: &Arc<TransactionCoordinator>,
    groups: &Arc<GroupCoordinator>,
    image: Arc<MetadataImage>,
    _ctx: &RequestContext,
    header: &RequestHeader,
    request: TxnOffsetCommitRequest,
) -> impl Future<Output = TxnOffsetCommitResponse> + Send + 'static {
    let txn = Arc::clone(txn);
    let groups = Arc::clone(groups);
    let version = header.request_api_version;
    async move {
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
        } else if let Err(c) = check_group_member(&groups, &request) {
            tracing::info!(transactional_id = %request.transactional_id, group = %request.group_id, member = %request.member_id, code = c, "TxnOffsetCommit refused by the group");
            Some(c)
        } else {
            txn
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

/// The member checks of a TxnOffsetCommit v3+ against a classic group
/// (Kafka's `doTxnCommitOffsets`). Requests without a member id (v0-2, or
/// producers that do not pass consumer group metadata), unknown groups and
/// KIP-848 groups are not checked here.
fn check_group_member(
    groups: &GroupCoordinator,
    request: &TxnOffsetCommitRequest,
) -> Result<(), i16> {
    if request.member_id.is_empty() {
        return Ok(());
    }
    let Some(slot) = groups.get(&request.group_id) else {
        return Ok(());
    };
    let state = slot.lock();
    if state.removed {
        return Ok(());
    }
    let GroupKind::Classic(g) = &state.kind else {
        return Ok(());
    };
    let static_owner = request
        .group_instance_id
        .as_deref()
        .and_then(|i| g.static_members.get(i))
        .map(String::as_str);
    check_member(
        &MemberView {
            known: g.members.contains_key(&request.member_id),
            static_owner,
            generation_id: g.generation_id,
        },
        &request.member_id,
        request.generation_id,
    )
}

/// What the member check needs to know about a classic group.
#[derive(Debug)]
struct MemberView<'a> {
    /// The request's member id is a current member.
    known: bool,
    /// The member id currently holding the request's `group.instance.id`.
    static_owner: Option<&'a str>,
    /// The group's generation.
    generation_id: i32,
}

fn check_member(group: &MemberView<'_>, member_id: &str, generation_id: i32) -> Result<(), i16> {
    if group.static_owner.is_some_and(|owner| owner != member_id) {
        return Err(code::FENCED_INSTANCE_ID);
    }
    if !group.known {
        return Err(code::UNKNOWN_MEMBER_ID);
    }
    // A negative generation means "not given" (Kafka checks only >= 0).
    if generation_id >= 0 && generation_id != group.generation_id {
        return Err(code::ILLEGAL_GENERATION);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMBER: &str = "consumer-1-abc";

    fn group(known: bool, static_owner: Option<&str>) -> MemberView<'_> {
        MemberView {
            known,
            static_owner,
            generation_id: 4,
        }
    }

    #[test]
    fn current_member_of_the_current_generation_may_commit() {
        assert_eq!(check_member(&group(true, None), MEMBER, 4), Ok(()));
        assert_eq!(check_member(&group(true, Some(MEMBER)), MEMBER, 4), Ok(()));
        // No generation given: only the member is checked.
        assert_eq!(check_member(&group(true, None), MEMBER, -1), Ok(()));
    }

    #[test]
    fn stale_generation_is_illegal_generation() {
        assert_eq!(
            check_member(&group(true, None), MEMBER, 3),
            Err(code::ILLEGAL_GENERATION)
        );
    }

    #[test]
    fn member_not_in_the_group_is_unknown_member() {
        assert_eq!(
            check_member(&group(false, None), MEMBER, 4),
            Err(code::UNKNOWN_MEMBER_ID)
        );
    }

    #[test]
    fn static_instance_taken_over_by_another_member_is_fenced() {
        assert_eq!(
            check_member(&group(true, Some("consumer-2-def")), MEMBER, 4),
            Err(code::FENCED_INSTANCE_ID)
        );
        // Fencing is checked before membership, as Kafka does.
        assert_eq!(
            check_member(&group(false, Some("consumer-2-def")), MEMBER, 4),
            Err(code::FENCED_INSTANCE_ID)
        );
    }
}
