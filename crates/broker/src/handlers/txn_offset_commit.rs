//! TxnOffsetCommit (28): a consumer group's offsets, committed only if the
//! producer's transaction commits (the consume-transform-produce loop).
//!
//! Sent to the group's coordinator, as in Kafka. The offsets are written to
//! the group's `__consumer_offsets` partition as a transactional batch of
//! the producer and held pending by the group coordinator; the
//! transaction's COMMIT marker on that partition makes them the group's
//! committed offsets, an ABORT drops them. The transaction coordinator may
//! be another broker: it reaches the partition's marker like any other.
//!
//! Checks, in Kafka's order: the group member (v3+, KIP-447, when a member
//! id is given and the group is a classic group: FENCED_INSTANCE_ID,
//! UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION), then the producer against its
//! ongoing transaction, which must include the group's partition
//! (AddOffsetsToTxn first), asked of its coordinator here or on another
//! broker as Produce asks ([`txn_verify`]): a fenced epoch is
//! PRODUCER_FENCED (INVALID_PRODUCER_EPOCH before v3), no such transaction
//! INVALID_TXN_STATE, a coordinator that cannot answer now
//! COORDINATOR_NOT_AVAILABLE (retriable).

use std::future::Future;
use std::sync::Arc;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::txn_offset_commit::{
    TxnOffsetCommitRequest, TxnOffsetCommitResponse, TxnOffsetCommitResponsePartition,
    TxnOffsetCommitResponseTopic,
};

use super::RequestContext;
use super::txn_verify::{self, TxnWrite, Verdict, Verifier};
use crate::authz::Authorizer;
use sluice_coordinator::GroupCoordinator;
use sluice_coordinator::group::offsets_log::OFFSETS_TOPIC;
use sluice_coordinator::group::{GroupKind, OffsetToCommit};
use sluice_metadata::MetadataImage;
use sluice_metadata::acl::AclOperation;

/// First version that knows PRODUCER_FENCED (KIP-588).
const PRODUCER_FENCED_SINCE: i16 = 3;

/// Handles TxnOffsetCommit: the member is checked against `groups`, the
/// transaction by `verifier` (its coordinator here or elsewhere, found in
/// `image`); `groups` then holds the offsets pending.
pub fn handle(
    verifier: &Arc<Verifier>,
    groups: &Arc<GroupCoordinator>,
    image: Arc<MetadataImage>,
    authorizer: &Authorizer,
    ctx: &RequestContext,
    header: &RequestHeader,
    request: TxnOffsetCommitRequest,
) -> impl Future<Output = TxnOffsetCommitResponse> + Send + 'static {
    let verifier = Arc::clone(verifier);
    let groups = Arc::clone(groups);
    let version = header.request_api_version;
    // Kafka: WRITE on the transactional id, READ on the group (each
    // failing every partition), then READ on each topic (failing its
    // partitions, which are not committed).
    let denied =
        if !authorizer.transactional_id(ctx, AclOperation::Write, &request.transactional_id) {
            Some(code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
        } else if !authorizer.group(ctx, AclOperation::Read, &request.group_id) {
            Some(code::GROUP_AUTHORIZATION_FAILED)
        } else {
            None
        };
    let topic_denied: Vec<bool> = request
        .topics
        .iter()
        .map(|t| !authorizer.topic(ctx, AclOperation::Read, &t.name))
        .collect();
    async move {
        let offsets: Vec<OffsetToCommit> = request
            .topics
            .iter()
            .zip(&topic_denied)
            .filter(|(_, denied)| !**denied)
            .flat_map(|(t, _)| {
                t.partitions.iter().map(|p| OffsetToCommit {
                    topic: t.name.clone(),
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    leader_epoch: p.committed_leader_epoch,
                    metadata: p.committed_metadata.clone(),
                })
            })
            .collect();
        let checked = if let Some(c) = denied {
            Err(c)
        } else if request.group_id.is_empty() {
            Err(code::INVALID_GROUP_ID)
        } else if let Err(c) = groups.check_coordinator(&request.group_id) {
            Err(c)
        } else if let Err(c) = check_group_member(&groups, &request) {
            tracing::info!(transactional_id = %request.transactional_id, group = %request.group_id, member = %request.member_id, code = c, "TxnOffsetCommit refused by the group");
            Err(c)
        } else {
            verify_transaction(&verifier, &groups, &image, &request, version).await
        };
        let codes: Vec<i16> = match checked {
            Err(c) => vec![c; offsets.len()],
            Ok(()) => {
                let n = offsets.len();
                match groups
                    .txn_commit_offsets(
                        &request.group_id,
                        request.producer_id,
                        request.producer_epoch,
                        offsets,
                    )
                    .await
                {
                    Ok(codes) => codes,
                    // An epoch older than the partition has seen.
                    Err(code::INVALID_PRODUCER_EPOCH) if version >= PRODUCER_FENCED_SINCE => {
                        vec![code::PRODUCER_FENCED; n]
                    }
                    Err(c) => vec![c; n],
                }
            }
        };
        tracing::debug!(transactional_id = %request.transactional_id, group = %request.group_id, producer_id = request.producer_id, epoch = request.producer_epoch, ?codes, "TxnOffsetCommit answered");
        let mut codes = codes.into_iter();
        TxnOffsetCommitResponse {
            throttle_time_ms: 0,
            topics: request
                .topics
                .iter()
                .zip(topic_denied)
                .map(|(t, topic_denied)| TxnOffsetCommitResponseTopic {
                    name: t.name.clone(),
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| TxnOffsetCommitResponsePartition {
                            partition_index: p.partition_index,
                            error_code: match denied {
                                Some(c) => c,
                                None if topic_denied => code::TOPIC_AUTHORIZATION_FAILED,
                                None => codes.next().unwrap_or(code::UNKNOWN_SERVER_ERROR),
                            },
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

/// Asks the transaction's coordinator whether the group's partition of
/// `__consumer_offsets` is in the producer's ongoing transaction, and maps
/// the answer to TxnOffsetCommit's codes.
async fn verify_transaction(
    verifier: &Verifier,
    groups: &GroupCoordinator,
    image: &MetadataImage,
    request: &TxnOffsetCommitRequest,
    version: i16,
) -> Result<(), i16> {
    let write = TxnWrite {
        transactional_id: Some(request.transactional_id.clone()),
        producer_id: request.producer_id,
        producer_epoch: request.producer_epoch,
        topic: OFFSETS_TOPIC.to_owned(),
        partition: groups.partition_for(&request.group_id),
    };
    let answer = match txn_verify::verify_here(verifier.txn(), image, &write) {
        Verdict::Verified => Ok(()),
        Verdict::Refused(c, m) => Err((c, m)),
        Verdict::AskCoordinator(node) => {
            txn_verify::verify_remote(&verifier.peers, node, &write).await
        }
    };
    answer.map_err(|(c, message)| {
        tracing::info!(transactional_id = %request.transactional_id, group = %request.group_id, code = c, "TxnOffsetCommit refused: {message}");
        match c {
            code::INVALID_PRODUCER_EPOCH if version >= PRODUCER_FENCED_SINCE => code::PRODUCER_FENCED,
            // Produce's retriable "try again" is the group coordinator's here.
            code::NOT_ENOUGH_REPLICAS => code::COORDINATOR_NOT_AVAILABLE,
            other => other,
        }
    })
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

    /// The handler against the coordinators and an image, no broker.
    mod handler {
        use sluice_protocol::messages::txn_offset_commit::{
            TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
        };

        use super::super::*;
        use crate::handlers::add_partitions_to_txn::tests::init;
        use crate::handlers::join_group::tests::stable_member;
        use crate::testing::{self, Node};

        fn request(
            group: &str,
            (producer_id, producer_epoch): (i64, i16),
            partitions: &[i32],
        ) -> TxnOffsetCommitRequest {
            TxnOffsetCommitRequest {
                transactional_id: "tx".to_owned(),
                group_id: group.to_owned(),
                producer_id,
                producer_epoch,
                generation_id: -1,
                topics: vec![TxnOffsetCommitRequestTopic {
                    name: "t".to_owned(),
                    partitions: partitions
                        .iter()
                        .map(|&partition_index| TxnOffsetCommitRequestPartition {
                            partition_index,
                            committed_offset: 10,
                            committed_leader_epoch: -1,
                            committed_metadata: None,
                        })
                        .collect(),
                }],
                ..Default::default()
            }
        }

        async fn commit(node: &Node, version: i16, request: TxnOffsetCommitRequest) -> Vec<i16> {
            let header = testing::header(28, version);
            handle(
                &node.verifier,
                &node.groups,
                node.image(),
                &testing::allow_all(),
                &testing::ctx(),
                &header,
                request,
            )
            .await
            .topics
            .into_iter()
            .flat_map(|t| t.partitions.into_iter().map(|p| p.error_code))
            .collect()
        }

        #[tokio::test]
        async fn offsets_wait_in_the_transaction_and_unknown_partitions_fail_alone() {
            let dir = tempfile::tempdir().expect("tempdir");
            let node = testing::node_in(dir.path()).await;
            node.create_topic("t", 1).await;
            // The client found the group's coordinator first, which
            // created `__consumer_offsets`.
            node.groups
                .ensure_offsets_topic()
                .await
                .expect("offsets topic");
            let producer = init(&node, "tx").await;
            node.txn
                .add_to_txn("tx", producer.0, producer.1, &[], Some("g"))
                .await
                .expect("add group");
            let codes = commit(&node, 3, request("g", producer, &[0, 3])).await;
            assert_eq!(codes, [code::NONE, code::UNKNOWN_TOPIC_OR_PARTITION]);
            let pending = node.groups.pending_offset_partitions("g");
            assert_eq!(
                pending.into_iter().collect::<Vec<_>>(),
                [("t".to_owned(), 0)]
            );
            assert!(
                node.groups
                    .fetch_offsets("g", Some(vec![("t".to_owned(), vec![0])]))[0]
                    .1[0]
                    .1
                    .is_none(),
                "not committed to the group before the transaction commits"
            );
        }

        #[tokio::test]
        async fn a_group_outside_the_transaction_or_a_fenced_producer_is_refused() {
            let dir = tempfile::tempdir().expect("tempdir");
            let node = testing::node_in(dir.path()).await;
            node.create_topic("t", 1).await;
            // The client found the group's coordinator first, which
            // created `__consumer_offsets`.
            node.groups
                .ensure_offsets_topic()
                .await
                .expect("offsets topic");
            let producer = init(&node, "tx").await;
            assert_eq!(
                commit(&node, 3, request("g", producer, &[0])).await,
                [code::INVALID_TXN_STATE],
                "no AddOffsetsToTxn for g"
            );
            assert_eq!(
                commit(&node, 3, request("", producer, &[0])).await,
                [code::INVALID_GROUP_ID]
            );
            node.txn
                .add_to_txn("tx", producer.0, producer.1, &[], Some("g"))
                .await
                .expect("add group");
            init(&node, "tx").await;
            assert_eq!(
                commit(&node, 2, request("g", producer, &[0])).await,
                [code::INVALID_PRODUCER_EPOCH]
            );
            assert_eq!(
                commit(&node, 3, request("g", producer, &[0])).await,
                [code::PRODUCER_FENCED]
            );
        }

        #[tokio::test]
        async fn a_member_unknown_to_the_classic_group_is_refused_first() {
            let dir = tempfile::tempdir().expect("tempdir");
            let node = testing::node_in(dir.path()).await;
            node.create_topic("t", 1).await;
            let (member, generation) = stable_member(&node.groups, "g", b"a").await;
            let producer = init(&node, "tx").await;
            node.txn
                .add_to_txn("tx", producer.0, producer.1, &[], Some("g"))
                .await
                .expect("add group");
            let mut stranger = request("g", producer, &[0]);
            stranger.member_id = "stranger".to_owned();
            stranger.generation_id = generation;
            assert_eq!(commit(&node, 3, stranger).await, [code::UNKNOWN_MEMBER_ID]);
            let mut stale = request("g", producer, &[0]);
            stale.member_id = member.clone();
            stale.generation_id = generation + 1;
            assert_eq!(commit(&node, 3, stale).await, [code::ILLEGAL_GENERATION]);
            let mut current = request("g", producer, &[0]);
            current.member_id = member;
            current.generation_id = generation;
            assert_eq!(commit(&node, 3, current).await, [code::NONE]);
        }
    }
}
