//! Group and transaction APIs in a cluster: a broker coordinates only the
//! keys whose internal partition it leads (Kafka's rule). Requests for
//! other keys answer NOT_COORDINATOR in the error field each API version
//! has, requests for a partition still loading answer
//! COORDINATOR_LOAD_IN_PROGRESS, and the list APIs list only what this
//! broker coordinates. The cluster is a metadata image with three
//! registered brokers, where internal partitions are moved to another
//! broker and back by committing `Partition` records.

use bytes::Bytes;
use sluice_coordinator::group::offsets_log::OFFSETS_TOPIC;
use sluice_coordinator::txn::state_log::{TRANSACTION_STATE_TOPIC, partition_for};
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::add_offsets_to_txn::AddOffsetsToTxnRequest;
use sluice_protocol::messages::add_partitions_to_txn::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use sluice_protocol::messages::consumer_group_describe::ConsumerGroupDescribeRequest;
use sluice_protocol::messages::consumer_group_heartbeat::ConsumerGroupHeartbeatRequest;
use sluice_protocol::messages::delete_groups::DeleteGroupsRequest;
use sluice_protocol::messages::describe_groups::DescribeGroupsRequest;
use sluice_protocol::messages::describe_transactions::DescribeTransactionsRequest;
use sluice_protocol::messages::end_txn::EndTxnRequest;
use sluice_protocol::messages::heartbeat::HeartbeatRequest;
use sluice_protocol::messages::init_producer_id::InitProducerIdRequest;
use sluice_protocol::messages::leave_group::{LeaveGroupRequest, MemberIdentity};
use sluice_protocol::messages::list_groups::ListGroupsRequest;
use sluice_protocol::messages::list_transactions::ListTransactionsRequest;
use sluice_protocol::messages::offset_commit::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use sluice_protocol::messages::offset_delete::{
    OffsetDeleteRequest, OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use sluice_protocol::messages::offset_fetch::{
    OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopic,
};
use sluice_protocol::messages::sync_group::{SyncGroupRequest, SyncGroupRequestAssignment};
use sluice_protocol::messages::txn_offset_commit::{
    TxnOffsetCommitRequest, TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};

use super::join_group::tests::{join, stable_member};
use super::*;
use crate::testing::{self, Node};

/// A node of a three-broker cluster that leads every internal partition
/// so far, with topic `t` and both internal topics created.
async fn cluster_node(dir: &std::path::Path) -> Node {
    let node = testing::node_in(dir).await;
    node.create_topic("t", 1).await;
    node.groups
        .ensure_offsets_topic()
        .await
        .expect("offsets topic");
    node.txn
        .ensure_topic()
        .await
        .expect("transaction state topic");
    // Registered once the topics exist, so this node leads every partition
    // (placement spreads new partitions over registered brokers).
    node.register_brokers(&[1, 2, 3]).await;
    node
}

fn list_groups_now(node: &Node) -> (i16, Vec<String>) {
    let header = testing::header(16, 4);
    let response = futures::FutureExt::now_or_never(list_groups::handle(
        &node.groups,
        &testing::allow_all(),
        &testing::ctx(),
        &header,
        ListGroupsRequest::default(),
    ))
    .expect("answers at once");
    let ids = response.groups.into_iter().map(|g| g.group_id).collect();
    (response.error_code, ids)
}

async fn list_transactions_now(node: &Node) -> (i16, Vec<String>) {
    let header = testing::header(66, 0);
    let request = ListTransactionsRequest {
        duration_filter: -1,
        ..Default::default()
    };
    let response = list_transactions::handle(
        &node.txn,
        &testing::allow_all(),
        &testing::ctx(),
        &header,
        request,
    )
    .await;
    let ids = response
        .transaction_states
        .into_iter()
        .map(|t| t.transactional_id)
        .collect();
    (response.error_code, ids)
}

/// Every group API, at each shape of error field, answers NOT_COORDINATOR
/// for a group whose `__consumer_offsets` partition another broker leads;
/// the group disappears from ListGroups; when leadership comes back the
/// group and its offsets are served again.
#[tokio::test]
async fn group_apis_for_a_group_led_elsewhere_answer_not_coordinator() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = cluster_node(dir.path()).await;
    let (member, generation) = stable_member(&node.groups, "g", b"a").await;
    let commit = |version: i16| {
        let request = OffsetCommitRequest {
            group_id: "g".to_owned(),
            generation_id_or_member_epoch: generation,
            member_id: member.clone(),
            retention_time_ms: -1,
            topics: vec![OffsetCommitRequestTopic {
                name: "t".to_owned(),
                partitions: vec![OffsetCommitRequestPartition {
                    partition_index: 0,
                    committed_offset: 7,
                    committed_leader_epoch: -1,
                    committed_metadata: None,
                    ..Default::default()
                }],
            }],
            ..Default::default()
        };
        let groups = &node.groups;
        async move {
            let header = testing::header(8, version);
            offset_commit::handle(
                groups,
                &testing::allow_all(),
                &testing::ctx(),
                &header,
                request,
            )
            .await
        }
    };
    let committed = commit(8).await;
    assert_eq!(committed.topics[0].partitions[0].error_code, code::NONE);
    assert_eq!(list_groups_now(&node), (code::NONE, vec!["g".to_owned()]));

    node.move_leader(OFFSETS_TOPIC, 0, 2).await;

    // JoinGroup, SyncGroup, Heartbeat: one top-level error code.
    assert_eq!(
        join(&node.groups, 5, "g", "").await.error_code,
        code::NOT_COORDINATOR
    );
    let sync = SyncGroupRequest {
        group_id: "g".to_owned(),
        generation_id: generation,
        member_id: member.clone(),
        assignments: vec![SyncGroupRequestAssignment {
            member_id: member.clone(),
            assignment: Bytes::from_static(b"a"),
        }],
        ..Default::default()
    };
    let synced = sync_group::handle(
        &node.groups,
        &testing::allow_all(),
        &testing::ctx(),
        &testing::header(14, 3),
        sync,
    );
    assert_eq!(synced.await.error_code, code::NOT_COORDINATOR);
    let beat = HeartbeatRequest {
        group_id: "g".to_owned(),
        generation_id: generation,
        member_id: member.clone(),
        group_instance_id: None,
    };
    let beat = heartbeat::handle(
        &node.groups,
        &testing::allow_all(),
        &testing::ctx(),
        &testing::header(12, 3),
        beat,
    );
    assert_eq!(beat.await.error_code, code::NOT_COORDINATOR);
    // LeaveGroup: top level for v0 and batched v3 alike.
    for version in [0, 3] {
        let leave = LeaveGroupRequest {
            group_id: "g".to_owned(),
            member_id: member.clone(),
            members: vec![MemberIdentity {
                member_id: member.clone(),
                ..Default::default()
            }],
        };
        let header = testing::header(13, version);
        let left = leave_group::handle(
            &node.groups,
            &testing::allow_all(),
            &testing::ctx(),
            &header,
            leave,
        )
        .await;
        assert_eq!(
            left.error_code,
            code::NOT_COORDINATOR,
            "LeaveGroup v{version}"
        );
    }
    // OffsetCommit: per partition, in every version.
    for version in [2, 8] {
        let response = commit(version).await;
        assert_eq!(
            response.topics[0].partitions[0].error_code,
            code::NOT_COORDINATOR,
            "OffsetCommit v{version}"
        );
    }
    // OffsetFetch: per partition before v2, top level v2-v7, per group v8+.
    let fetch_v0 = |version: i16| {
        let request = OffsetFetchRequest {
            group_id: "g".to_owned(),
            topics: Some(vec![OffsetFetchRequestTopic {
                name: "t".to_owned(),
                partition_indexes: vec![0],
            }]),
            ..Default::default()
        };
        let groups = &node.groups;
        async move {
            let header = testing::header(9, version);
            offset_fetch::handle(
                groups,
                &testing::allow_all(),
                &testing::ctx(),
                &header,
                request,
            )
            .await
        }
    };
    let v1 = fetch_v0(1).await;
    assert_eq!(v1.topics[0].partitions[0].error_code, code::NOT_COORDINATOR);
    assert_eq!(v1.topics[0].partitions[0].committed_offset, -1);
    let v5 = fetch_v0(5).await;
    assert_eq!(v5.error_code, code::NOT_COORDINATOR);
    assert!(v5.topics.is_empty());
    let v8 = OffsetFetchRequest {
        groups: vec![OffsetFetchRequestGroup {
            group_id: "g".to_owned(),
            member_epoch: -1,
            topics: None,
            ..Default::default()
        }],
        ..Default::default()
    };
    let header = testing::header(9, 8);
    let v8 = offset_fetch::handle(
        &node.groups,
        &testing::allow_all(),
        &testing::ctx(),
        &header,
        v8,
    )
    .await;
    assert_eq!(v8.groups[0].error_code, code::NOT_COORDINATOR);
    // OffsetDelete: top level.
    let delete = OffsetDeleteRequest {
        group_id: "g".to_owned(),
        topics: vec![OffsetDeleteRequestTopic {
            name: "t".to_owned(),
            partitions: vec![OffsetDeleteRequestPartition { partition_index: 0 }],
        }],
    };
    let header = testing::header(47, 0);
    let deleted = offset_delete::handle(
        &node.groups,
        &testing::allow_all(),
        &testing::ctx(),
        &header,
        delete,
    )
    .await;
    assert_eq!(deleted.error_code, code::NOT_COORDINATOR);
    // DescribeGroups, DeleteGroups, ConsumerGroupDescribe: per group.
    let describe = DescribeGroupsRequest {
        groups: vec!["g".to_owned()],
        ..Default::default()
    };
    let header = testing::header(15, 5);
    let described = futures::FutureExt::now_or_never(describe_groups::handle(
        &node.groups,
        &testing::allow_all(),
        &testing::ctx(),
        &header,
        describe,
    ))
    .expect("answers at once");
    assert_eq!(described.groups[0].error_code, code::NOT_COORDINATOR);
    assert!(described.groups[0].members.is_empty());
    let delete = DeleteGroupsRequest {
        groups_names: vec!["g".to_owned()],
        ..Default::default()
    };
    let header = testing::header(42, 2);
    let deleted = delete_groups::handle(
        &node.groups,
        &testing::allow_all(),
        &testing::ctx(),
        &header,
        delete,
    )
    .await;
    assert_eq!(deleted.results[0].error_code, code::NOT_COORDINATOR);
    let describe = ConsumerGroupDescribeRequest {
        group_ids: vec!["g".to_owned()],
        ..Default::default()
    };
    let header = testing::header(69, 0);
    let described = futures::FutureExt::now_or_never(consumer_group_describe::handle(
        &node.groups,
        &node.image(),
        &testing::allow_all(),
        &testing::ctx(),
        &header,
        describe,
    ))
    .expect("answers at once");
    assert_eq!(described.groups[0].error_code, code::NOT_COORDINATOR);
    // ConsumerGroupHeartbeat: top level.
    let beat = ConsumerGroupHeartbeatRequest {
        group_id: "g".to_owned(),
        member_epoch: 0,
        rebalance_timeout_ms: 30_000,
        subscribed_topic_names: Some(vec!["t".to_owned()]),
        ..Default::default()
    };
    let header = testing::header(68, 0);
    let beat = consumer_group_heartbeat::handle(
        &node.groups,
        &testing::allow_all(),
        &testing::ctx(),
        &header,
        beat,
    );
    assert_eq!(beat.await.error_code, code::NOT_COORDINATOR);
    // TxnOffsetCommit goes to the group's coordinator: per partition.
    let txn_commit = TxnOffsetCommitRequest {
        transactional_id: "tx".to_owned(),
        group_id: "g".to_owned(),
        producer_id: 0,
        producer_epoch: 0,
        generation_id: -1,
        topics: vec![TxnOffsetCommitRequestTopic {
            name: "t".to_owned(),
            partitions: vec![TxnOffsetCommitRequestPartition {
                partition_index: 0,
                committed_offset: 1,
                committed_leader_epoch: -1,
                committed_metadata: None,
            }],
        }],
        ..Default::default()
    };
    let header = testing::header(28, 3);
    let response = txn_offset_commit::handle(
        &node.verifier,
        &node.groups,
        node.image(),
        &testing::allow_all(),
        &testing::ctx(),
        &header,
        txn_commit,
    )
    .await;
    assert_eq!(
        response.topics[0].partitions[0].error_code,
        code::NOT_COORDINATOR
    );
    // ListGroups lists only what this broker coordinates.
    assert_eq!(list_groups_now(&node), (code::NONE, vec![]));

    node.move_leader(OFFSETS_TOPIC, 0, 1).await;
    assert_eq!(list_groups_now(&node), (code::NONE, vec!["g".to_owned()]));
    let v5 = fetch_v0(5).await;
    assert_eq!(v5.error_code, code::NONE);
    assert_eq!(
        v5.topics[0].partitions[0].committed_offset, 7,
        "replayed on regaining leadership"
    );
}

/// Every transaction API answers NOT_COORDINATOR for a transactional id
/// whose `__transaction_state` partition another broker leads, and the id
/// disappears from ListTransactions.
#[tokio::test]
async fn transaction_apis_for_an_id_led_elsewhere_answer_not_coordinator() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = cluster_node(dir.path()).await;
    let (producer_id, producer_epoch) = node
        .txn
        .init_producer_id("tx", 60_000, None)
        .await
        .expect("init");
    assert_eq!(
        list_transactions_now(&node).await,
        (code::NONE, vec!["tx".to_owned()])
    );

    node.move_leader(TRANSACTION_STATE_TOPIC, partition_for("tx"), 2)
        .await;

    for version in [3, 4] {
        let request = InitProducerIdRequest {
            transactional_id: Some("tx".to_owned()),
            transaction_timeout_ms: 60_000,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        };
        let header = testing::header(22, version);
        let response = init_producer_id::handle(
            &node.txn,
            &node.producer_ids,
            &testing::allow_all(),
            &testing::ctx(),
            &header,
            request,
        )
        .await;
        assert_eq!(
            (response.error_code, response.producer_id),
            (code::NOT_COORDINATOR, -1),
            "InitProducerId v{version}"
        );
    }
    // A producer without a transactional id needs no coordinator.
    let header = testing::header(22, 4);
    let idempotent = init_producer_id::handle(
        &node.txn,
        &node.producer_ids,
        &testing::allow_all(),
        &testing::ctx(),
        &header,
        InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: 60_000,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(idempotent.error_code, code::NONE);

    let topics = || {
        vec![AddPartitionsToTxnTopic {
            name: "t".to_owned(),
            partitions: vec![0],
        }]
    };
    let v3 = AddPartitionsToTxnRequest {
        v3_and_below_transactional_id: "tx".to_owned(),
        v3_and_below_producer_id: producer_id,
        v3_and_below_producer_epoch: producer_epoch,
        v3_and_below_topics: topics(),
        ..Default::default()
    };
    let header = testing::header(24, 3);
    let added = add_partitions_to_txn::handle(
        &node.txn,
        node.image(),
        &testing::allow_all(),
        &testing::ctx(),
        &header,
        v3,
    )
    .await;
    assert_eq!(
        added.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        code::NOT_COORDINATOR
    );
    let v4 = AddPartitionsToTxnRequest {
        transactions: vec![AddPartitionsToTxnTransaction {
            transactional_id: "tx".to_owned(),
            producer_id,
            producer_epoch,
            verify_only: false,
            topics: topics(),
        }],
        ..Default::default()
    };
    let header = testing::header(24, 4);
    let added = add_partitions_to_txn::handle(
        &node.txn,
        node.image(),
        &testing::allow_all(),
        &testing::ctx(),
        &header,
        v4,
    )
    .await;
    assert_eq!(
        added.results_by_transaction[0].topic_results[0].results_by_partition[0]
            .partition_error_code,
        code::NOT_COORDINATOR
    );
    let add_offsets = AddOffsetsToTxnRequest {
        transactional_id: "tx".to_owned(),
        producer_id,
        producer_epoch,
        group_id: "g".to_owned(),
    };
    let header = testing::header(25, 3);
    let response = add_offsets_to_txn::handle(
        &node.txn,
        &testing::allow_all(),
        &testing::ctx(),
        &header,
        add_offsets,
    )
    .await;
    assert_eq!(response.error_code, code::NOT_COORDINATOR);
    let end = EndTxnRequest {
        transactional_id: "tx".to_owned(),
        producer_id,
        producer_epoch,
        committed: true,
    };
    let header = testing::header(26, 3);
    let response = end_txn::handle(
        &node.txn,
        &testing::allow_all(),
        &testing::ctx(),
        &header,
        end,
    )
    .await;
    assert_eq!(response.error_code, code::NOT_COORDINATOR);
    let describe = DescribeTransactionsRequest {
        transactional_ids: vec!["tx".to_owned()],
    };
    let header = testing::header(65, 0);
    let described = describe_transactions::handle(
        &node.txn,
        &testing::allow_all(),
        &testing::ctx(),
        &header,
        describe,
    )
    .await;
    assert_eq!(
        described.transaction_states[0].error_code,
        code::NOT_COORDINATOR
    );
    assert_eq!(list_transactions_now(&node).await, (code::NONE, vec![]));

    node.move_leader(TRANSACTION_STATE_TOPIC, partition_for("tx"), 1)
        .await;
    assert_eq!(
        list_transactions_now(&node).await,
        (code::NONE, vec!["tx".to_owned()])
    );
}

/// While an owned partition loads, its keys answer
/// COORDINATOR_LOAD_IN_PROGRESS and the list APIs say some state is not
/// listed yet.
#[tokio::test]
async fn a_partition_still_loading_answers_load_in_progress() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = cluster_node(dir.path()).await;
    node.txn
        .init_producer_id("tx", 60_000, None)
        .await
        .expect("init");
    node.groups.ownership().begin_load(0);
    node.txn.ownership().begin_load(partition_for("tx"));

    assert_eq!(
        join(&node.groups, 5, "g", "").await.error_code,
        code::COORDINATOR_LOAD_IN_PROGRESS
    );
    assert_eq!(list_groups_now(&node).0, code::COORDINATOR_LOAD_IN_PROGRESS);
    assert_eq!(
        list_transactions_now(&node).await.0,
        code::COORDINATOR_LOAD_IN_PROGRESS
    );
    let describe = DescribeTransactionsRequest {
        transactional_ids: vec!["tx".to_owned()],
    };
    let header = testing::header(65, 0);
    let described = describe_transactions::handle(
        &node.txn,
        &testing::allow_all(),
        &testing::ctx(),
        &header,
        describe,
    )
    .await;
    assert_eq!(
        described.transaction_states[0].error_code,
        code::COORDINATOR_LOAD_IN_PROGRESS
    );

    node.groups.ownership().finish_load(0);
    node.txn.ownership().finish_load(partition_for("tx"));
    assert_eq!(list_groups_now(&node).0, code::NONE);
    assert_eq!(
        list_transactions_now(&node).await,
        (code::NONE, vec!["tx".to_owned()])
    );
}
