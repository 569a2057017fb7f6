//! AddPartitionsToTxn (24): partitions join the producer's transaction
//! before it writes to them, so the coordinator knows where to put markers.
//!
//! v0-3 carry one transaction (librdkafka sends v0); v4+ batch several and
//! may only verify (KIP-890), the shape brokers use among themselves.

use std::future::Future;
use std::sync::Arc;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::add_partitions_to_txn::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse,
    AddPartitionsToTxnResult, AddPartitionsToTxnTopic, AddPartitionsToTxnTopicResult,
};

use super::RequestContext;
use crate::authz::Authorizer;
use sluice_coordinator::TransactionCoordinator;
use sluice_metadata::MetadataImage;
use sluice_metadata::acl::AclOperation;

/// First version that knows PRODUCER_FENCED (KIP-588).
const PRODUCER_FENCED_SINCE: i16 = 2;

/// Bound on partitions in one request: each becomes a marker write.
const MAX_PARTITIONS_PER_REQUEST: usize = 100_000;

/// Handles AddPartitionsToTxn: partitions must exist in `image` before
/// `txn` adds them; any broker may lead them.
pub fn handle(
    txn: &Arc<TransactionCoordinator>,
    image: Arc<MetadataImage>,
    authorizer: &Authorizer,
    ctx: &RequestContext,
    header: &RequestHeader,
    request: AddPartitionsToTxnRequest,
) -> impl Future<Output = AddPartitionsToTxnResponse> + Send + 'static {
    let txn = Arc::clone(txn);
    let version = header.request_api_version;
    // Kafka: v4+ comes from brokers and needs CLUSTER_ACTION; each
    // transaction needs WRITE on its id and on every topic it names.
    let cluster_denied = version >= 4 && !authorizer.cluster(ctx, AclOperation::ClusterAction);
    let check = |id: &str, topics: &[AddPartitionsToTxnTopic]| TxnAccess {
        txn_denied: !authorizer.transactional_id(ctx, AclOperation::Write, id),
        denied_topics: topics
            .iter()
            .filter(|t| !authorizer.topic(ctx, AclOperation::Write, &t.name))
            .map(|t| t.name.clone())
            .collect(),
    };
    let v3_access = check(
        &request.v3_and_below_transactional_id,
        &request.v3_and_below_topics,
    );
    let access: Vec<TxnAccess> = request
        .transactions
        .iter()
        .map(|t| check(&t.transactional_id, &t.topics))
        .collect();
    async move {
        if cluster_denied {
            return AddPartitionsToTxnResponse {
                error_code: code::CLUSTER_AUTHORIZATION_FAILED,
                ..Default::default()
            };
        }
        if version <= 3 {
            let results = add_one(
                &txn,
                &image,
                version,
                &request.v3_and_below_transactional_id,
                request.v3_and_below_producer_id,
                request.v3_and_below_producer_epoch,
                &request.v3_and_below_topics,
                false,
                &v3_access,
            )
            .await;
            return AddPartitionsToTxnResponse {
                throttle_time_ms: 0,
                results_by_topic_v3_and_below: results,
                ..Default::default()
            };
        }
        let mut results_by_transaction = Vec::with_capacity(request.transactions.len());
        for (t, access) in request.transactions.iter().zip(&access) {
            let topic_results = add_one(
                &txn,
                &image,
                version,
                &t.transactional_id,
                t.producer_id,
                t.producer_epoch,
                &t.topics,
                t.verify_only,
                access,
            )
            .await;
            results_by_transaction.push(AddPartitionsToTxnResult {
                transactional_id: t.transactional_id.clone(),
                topic_results,
                ..Default::default()
            });
        }
        AddPartitionsToTxnResponse {
            throttle_time_ms: 0,
            error_code: code::NONE,
            results_by_transaction,
            ..Default::default()
        }
    }
}

/// What one transaction of the request may do, decided at dispatch.
struct TxnAccess {
    /// No WRITE on the transactional id: every partition fails with
    /// TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
    txn_denied: bool,
    /// Topics without WRITE: their partitions fail with
    /// TOPIC_AUTHORIZATION_FAILED, the others OPERATION_NOT_ATTEMPTED.
    denied_topics: std::collections::HashSet<String>,
}

/// Adds (or verifies) one transaction's partitions; one result per partition.
#[allow(clippy::too_many_arguments)] // one transaction's fields, as the request carries them
async fn add_one(
    txn: &TransactionCoordinator,
    image: &MetadataImage,
    version: i16,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    topics: &[AddPartitionsToTxnTopic],
    verify_only: bool,
    access: &TxnAccess,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let wanted: Vec<(String, i32)> = topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|&p| (t.name.clone(), p)))
        .collect();
    // Kafka: if any partition is unknown, that one gets the error and the
    // rest OPERATION_NOT_ATTEMPTED; nothing is added. Where a partition is
    // led does not matter: markers reach other leaders by WriteTxnMarkers.
    let unknown: Vec<bool> = wanted
        .iter()
        .map(|(t, p)| {
            !image
                .topics
                .get(t)
                .is_some_and(|topic| topic.partitions.contains_key(p))
        })
        .collect();
    let codes: Vec<i16> = if wanted.len() > MAX_PARTITIONS_PER_REQUEST {
        vec![code::INVALID_REQUEST; wanted.len()]
    } else if access.txn_denied {
        vec![code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED; wanted.len()]
    } else if !access.denied_topics.is_empty() {
        wanted
            .iter()
            .map(|(t, _)| {
                if access.denied_topics.contains(t) {
                    code::TOPIC_AUTHORIZATION_FAILED
                } else {
                    code::OPERATION_NOT_ATTEMPTED
                }
            })
            .collect()
    } else if unknown.iter().any(|&u| u) {
        unknown
            .iter()
            .map(|&u| {
                if u {
                    code::UNKNOWN_TOPIC_OR_PARTITION
                } else {
                    code::OPERATION_NOT_ATTEMPTED
                }
            })
            .collect()
    } else if verify_only {
        match txn
            .verify_partitions(transactional_id, producer_id, producer_epoch, &wanted)
            .await
        {
            Ok(found) => found
                .into_iter()
                .map(|ok| {
                    if ok {
                        code::NONE
                    } else {
                        code::TRANSACTION_ABORTABLE
                    }
                })
                .collect(),
            Err(e) => vec![e.code(false); wanted.len()],
        }
    } else {
        let c = match txn
            .add_to_txn(transactional_id, producer_id, producer_epoch, &wanted, None)
            .await
        {
            Ok(()) => code::NONE,
            Err(e) => {
                tracing::info!(transactional_id, "AddPartitionsToTxn refused: {e:?}");
                e.code(version < PRODUCER_FENCED_SINCE)
            }
        };
        vec![c; wanted.len()]
    };
    let mut codes = codes.into_iter();
    topics
        .iter()
        .map(|t| AddPartitionsToTxnTopicResult {
            name: t.name.clone(),
            results_by_partition: t
                .partitions
                .iter()
                .map(|&p| AddPartitionsToTxnPartitionResult {
                    partition_index: p,
                    partition_error_code: codes.next().unwrap_or(code::UNKNOWN_SERVER_ERROR),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use sluice_protocol::messages::add_partitions_to_txn::AddPartitionsToTxnTransaction;

    use super::*;
    use crate::testing::{self, Node};

    /// A transactional producer `id`: its producer id and epoch.
    pub(crate) async fn init(node: &Node, id: &str) -> (i64, i16) {
        node.txn
            .init_producer_id(id, 60_000, None)
            .await
            .expect("init producer id")
    }

    /// The state name and partitions of `id`'s transaction.
    pub(crate) async fn state_of(node: &Node, id: &str) -> (String, Vec<(String, i32)>) {
        let meta = node
            .txn
            .get(id)
            .expect("known id")
            .snapshot()
            .await
            .expect("initialised");
        (
            meta.state.name().to_owned(),
            meta.partitions.into_iter().collect(),
        )
    }

    fn topics(parts: &[(&str, &[i32])]) -> Vec<AddPartitionsToTxnTopic> {
        parts
            .iter()
            .map(|(name, partitions)| AddPartitionsToTxnTopic {
                name: (*name).to_owned(),
                partitions: partitions.to_vec(),
            })
            .collect()
    }

    /// A v0-3 AddPartitionsToTxn; (topic, partition, code) per partition.
    async fn add_v3(
        node: &Node,
        version: i16,
        id: &str,
        (producer_id, producer_epoch): (i64, i16),
        parts: &[(&str, &[i32])],
    ) -> Vec<(String, i32, i16)> {
        let request = AddPartitionsToTxnRequest {
            v3_and_below_transactional_id: id.to_owned(),
            v3_and_below_producer_id: producer_id,
            v3_and_below_producer_epoch: producer_epoch,
            v3_and_below_topics: topics(parts),
            ..Default::default()
        };
        let header = testing::header(24, version);
        handle(
            &node.txn,
            node.image(),
            &testing::allow_all(),
            &testing::ctx(),
            &header,
            request,
        )
        .await
        .results_by_topic_v3_and_below
        .into_iter()
        .flat_map(|t| {
            t.results_by_partition
                .into_iter()
                .map(move |p| (t.name.clone(), p.partition_index, p.partition_error_code))
        })
        .collect()
    }

    fn codes(results: &[(String, i32, i16)]) -> Vec<i16> {
        results.iter().map(|r| r.2).collect()
    }

    #[tokio::test]
    async fn partitions_join_an_ongoing_transaction() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        node.create_topic("t", 2).await;
        let producer = init(&node, "tx").await;
        let results = add_v3(&node, 3, "tx", producer, &[("t", &[0, 1])]).await;
        assert_eq!(
            results,
            [
                ("t".to_owned(), 0, code::NONE),
                ("t".to_owned(), 1, code::NONE)
            ]
        );
        let (state, partitions) = state_of(&node, "tx").await;
        assert_eq!(state, "Ongoing");
        assert_eq!(partitions, [("t".to_owned(), 0), ("t".to_owned(), 1)]);
    }

    #[tokio::test]
    async fn one_unknown_partition_adds_nothing_and_the_rest_are_not_attempted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        node.create_topic("t", 1).await;
        let producer = init(&node, "tx").await;
        let results = add_v3(
            &node,
            3,
            "tx",
            producer,
            &[("t", &[0, 4]), ("missing", &[0])],
        )
        .await;
        assert_eq!(
            codes(&results),
            [
                code::OPERATION_NOT_ATTEMPTED,
                code::UNKNOWN_TOPIC_OR_PARTITION,
                code::UNKNOWN_TOPIC_OR_PARTITION
            ]
        );
        let (state, partitions) = state_of(&node, "tx").await;
        assert_eq!(state, "Empty");
        assert!(partitions.is_empty());
    }

    #[tokio::test]
    async fn a_fenced_producer_gets_the_code_its_version_knows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        node.create_topic("t", 1).await;
        let (pid, old_epoch) = init(&node, "tx").await;
        init(&node, "tx").await;
        let stale = (pid, old_epoch);
        assert_eq!(
            codes(&add_v3(&node, 1, "tx", stale, &[("t", &[0])]).await),
            [code::INVALID_PRODUCER_EPOCH]
        );
        assert_eq!(
            codes(&add_v3(&node, 2, "tx", stale, &[("t", &[0])]).await),
            [code::PRODUCER_FENCED]
        );
        assert_eq!(
            codes(&add_v3(&node, 3, "tx", (pid + 100, old_epoch), &[("t", &[0])]).await),
            [code::INVALID_PRODUCER_ID_MAPPING]
        );
        assert_eq!(
            codes(&add_v3(&node, 3, "unknown", stale, &[("t", &[0])]).await),
            [code::INVALID_PRODUCER_ID_MAPPING]
        );
    }

    #[tokio::test]
    async fn v4_verify_only_reports_which_partitions_are_in_the_transaction() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        node.create_topic("t", 2).await;
        let (producer_id, producer_epoch) = init(&node, "tx").await;
        add_v3(
            &node,
            3,
            "tx",
            (producer_id, producer_epoch),
            &[("t", &[0])],
        )
        .await;
        let request = AddPartitionsToTxnRequest {
            transactions: vec![AddPartitionsToTxnTransaction {
                transactional_id: "tx".to_owned(),
                producer_id,
                producer_epoch,
                verify_only: true,
                topics: topics(&[("t", &[0, 1])]),
            }],
            ..Default::default()
        };
        let header = testing::header(24, 4);
        let response = handle(
            &node.txn,
            node.image(),
            &testing::allow_all(),
            &testing::ctx(),
            &header,
            request,
        )
        .await;
        assert_eq!(response.error_code, code::NONE);
        let tx = &response.results_by_transaction[0];
        assert_eq!(tx.transactional_id, "tx");
        let verified: Vec<_> = tx.topic_results[0]
            .results_by_partition
            .iter()
            .map(|p| (p.partition_index, p.partition_error_code))
            .collect();
        assert_eq!(
            verified,
            [(0, code::NONE), (1, code::TRANSACTION_ABORTABLE)]
        );
        let (_, partitions) = state_of(&node, "tx").await;
        assert_eq!(partitions, [("t".to_owned(), 0)], "verifying adds nothing");
    }
}
