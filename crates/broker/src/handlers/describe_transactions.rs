//! DescribeTransactions (65): the coordinator's view of transactional ids.

use std::future::Future;
use std::sync::Arc;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::describe_transactions::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, TopicData, TransactionState,
};

use super::RequestContext;
use crate::authz::Authorizer;
use sluice_coordinator::TransactionCoordinator;
use sluice_metadata::acl::AclOperation;

/// Handles DescribeTransactions.
pub fn handle(
    txn: &Arc<TransactionCoordinator>,
    authorizer: &Arc<Authorizer>,
    ctx: &RequestContext,
    _header: &RequestHeader,
    request: DescribeTransactionsRequest,
) -> impl Future<Output = DescribeTransactionsResponse> + Send + 'static {
    let txn = Arc::clone(txn);
    // Kafka: DESCRIBE on each transactional id (else
    // TRANSACTIONAL_ID_AUTHORIZATION_FAILED); the partitions listed are
    // only those of topics the principal may DESCRIBE.
    let authorizer = Arc::clone(authorizer);
    let ctx = ctx.clone();
    async move {
        let mut transaction_states = Vec::with_capacity(request.transactional_ids.len());
        for id in request.transactional_ids {
            if !authorizer.transactional_id(&ctx, AclOperation::Describe, &id) {
                transaction_states.push(TransactionState {
                    error_code: code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                    transactional_id: id,
                    transaction_start_time_ms: -1,
                    producer_id: -1,
                    producer_epoch: -1,
                    ..Default::default()
                });
                continue;
            }
            if let Err(e) = txn.check_coordinator(&id) {
                transaction_states.push(TransactionState {
                    error_code: e.code(false),
                    transactional_id: id,
                    transaction_start_time_ms: -1,
                    producer_id: -1,
                    producer_epoch: -1,
                    ..Default::default()
                });
                continue;
            }
            let meta = match txn.get(&id) {
                Some(slot) => slot.snapshot().await,
                None => None,
            };
            let Some(meta) = meta else {
                transaction_states.push(TransactionState {
                    error_code: code::TRANSACTIONAL_ID_NOT_FOUND,
                    transactional_id: id,
                    transaction_state: String::new(),
                    transaction_timeout_ms: 0,
                    transaction_start_time_ms: -1,
                    producer_id: -1,
                    producer_epoch: -1,
                    topics: vec![],
                    ..Default::default()
                });
                continue;
            };
            let mut topics: Vec<TopicData> = Vec::new();
            for (topic, partition) in &meta.partitions {
                if !authorizer.topic(&ctx, AclOperation::Describe, topic) {
                    continue;
                }
                match topics.last_mut() {
                    Some(t) if &t.topic == topic => t.partitions.push(*partition),
                    _ => topics.push(TopicData {
                        topic: topic.clone(),
                        partitions: vec![*partition],
                        ..Default::default()
                    }),
                }
            }
            transaction_states.push(TransactionState {
                error_code: code::NONE,
                transactional_id: id,
                transaction_state: meta.state.name().to_owned(),
                transaction_timeout_ms: meta.timeout_ms,
                transaction_start_time_ms: meta.start_ms,
                producer_id: meta.producer_id,
                producer_epoch: meta.producer_epoch,
                topics,
                ..Default::default()
            });
        }
        DescribeTransactionsResponse {
            throttle_time_ms: 0,
            transaction_states,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::add_partitions_to_txn::tests::init;
    use crate::testing;

    #[tokio::test]
    async fn describes_an_open_transaction_and_reports_unknown_ids() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        node.create_topic("a", 2).await;
        node.create_topic("b", 1).await;
        let (pid, epoch) = init(&node, "tx").await;
        let parts = [
            ("a".to_owned(), 1),
            ("b".to_owned(), 0),
            ("a".to_owned(), 0),
        ];
        node.txn
            .add_to_txn("tx", pid, epoch, &parts, None)
            .await
            .expect("add");
        let request = DescribeTransactionsRequest {
            transactional_ids: vec!["tx".to_owned(), "missing".to_owned()],
        };
        let header = testing::header(65, 0);
        let response = handle(
            &node.txn,
            &testing::allow_all(),
            &testing::ctx(),
            &header,
            request,
        )
        .await;
        let tx = &response.transaction_states[0];
        assert_eq!(tx.error_code, code::NONE);
        assert_eq!(tx.transaction_state, "Ongoing");
        assert_eq!((tx.producer_id, tx.producer_epoch), (pid, epoch));
        assert_eq!(tx.transaction_timeout_ms, 60_000);
        assert!(tx.transaction_start_time_ms > 0);
        let topics: Vec<_> = tx
            .topics
            .iter()
            .map(|t| (t.topic.as_str(), t.partitions.clone()))
            .collect();
        assert_eq!(
            topics,
            [("a", vec![0, 1]), ("b", vec![0])],
            "grouped by topic"
        );
        let missing = &response.transaction_states[1];
        assert_eq!(missing.error_code, code::TRANSACTIONAL_ID_NOT_FOUND);
        assert_eq!(missing.transactional_id, "missing");
        assert_eq!((missing.producer_id, missing.producer_epoch), (-1, -1));
    }
}
