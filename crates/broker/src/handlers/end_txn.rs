//! EndTxn (26): commit or abort the producer's open transaction.
//!
//! Answers once the markers are written and the outcome is durable, so a
//! `read_committed` consumer sees a committed transaction right after the
//! producer's `commit_transaction` returns.

use std::future::Future;
use std::sync::Arc;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::end_txn::{EndTxnRequest, EndTxnResponse};

use super::RequestContext;
use crate::authz::Authorizer;
use sluice_coordinator::TransactionCoordinator;
use sluice_metadata::acl::AclOperation;

/// First version that knows PRODUCER_FENCED (KIP-588).
const PRODUCER_FENCED_SINCE: i16 = 2;

/// Handles EndTxn.
pub fn handle(
    txn: &Arc<TransactionCoordinator>,
    authorizer: &Authorizer,
    ctx: &RequestContext,
    header: &RequestHeader,
    request: EndTxnRequest,
) -> impl Future<Output = EndTxnResponse> + Send + 'static {
    let txn = Arc::clone(txn);
    let version = header.request_api_version;
    // Kafka: WRITE on the transactional id.
    let denied = !authorizer.transactional_id(ctx, AclOperation::Write, &request.transactional_id);
    async move {
        if denied {
            return EndTxnResponse {
                error_code: code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                producer_id: -1,
                producer_epoch: -1,
                ..Default::default()
            };
        }
        let result = txn
            .end_txn(
                &request.transactional_id,
                request.producer_id,
                request.producer_epoch,
                request.committed,
            )
            .await;
        let error_code = match result {
            Ok(()) => code::NONE,
            Err(e) => {
                tracing::info!(transactional_id = %request.transactional_id, committed = request.committed, "EndTxn refused: {e:?}");
                e.code(version < PRODUCER_FENCED_SINCE)
            }
        };
        EndTxnResponse {
            throttle_time_ms: 0,
            error_code,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::add_partitions_to_txn::tests::{init, state_of};
    use crate::testing::{self, Node};

    async fn end(
        node: &Node,
        version: i16,
        (producer_id, producer_epoch): (i64, i16),
        committed: bool,
    ) -> EndTxnResponse {
        let request = EndTxnRequest {
            transactional_id: "tx".to_owned(),
            producer_id,
            producer_epoch,
            committed,
        };
        let header = testing::header(26, version);
        handle(
            &node.txn,
            &testing::allow_all(),
            &testing::ctx(),
            &header,
            request,
        )
        .await
    }

    #[tokio::test]
    async fn commit_writes_the_markers_before_answering() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        node.create_topic("t", 1).await;
        let (pid, epoch) = init(&node, "tx").await;
        node.txn
            .add_to_txn("tx", pid, epoch, &[("t".to_owned(), 0)], None)
            .await
            .expect("add");
        let partition = node.partition("t", 0);
        let batch = testing::transactional_batch(pid, epoch, 0);
        testing::append(&partition, &batch).await;
        assert_eq!(
            partition.last_stable_offset(),
            0,
            "held by the open transaction"
        );

        let response = end(&node, 3, (pid, epoch), true).await;
        assert_eq!(response.error_code, code::NONE);
        assert_eq!((response.producer_id, response.producer_epoch), (-1, -1));
        assert_eq!(
            partition.log().log_end_offset(),
            2,
            "the record and its marker"
        );
        assert_eq!(
            partition.last_stable_offset(),
            2,
            "visible to read_committed at once"
        );
        assert_eq!(state_of(&node, "tx").await.0, "CompleteCommit");
        // A retried commit of a completed commit succeeds again.
        assert_eq!(
            end(&node, 3, (pid, epoch), true).await.error_code,
            code::NONE
        );
        assert_eq!(partition.log().log_end_offset(), 2, "no second marker");
    }

    #[tokio::test]
    async fn ending_no_transaction_or_the_wrong_outcome_is_invalid_txn_state() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        let producer = init(&node, "tx").await;
        assert_eq!(
            end(&node, 3, producer, true).await.error_code,
            code::INVALID_TXN_STATE
        );
        node.txn
            .add_to_txn("tx", producer.0, producer.1, &[], Some("g"))
            .await
            .expect("add group");
        assert_eq!(end(&node, 3, producer, false).await.error_code, code::NONE);
        assert_eq!(state_of(&node, "tx").await.0, "CompleteAbort");
        assert_eq!(
            end(&node, 3, producer, true).await.error_code,
            code::INVALID_TXN_STATE,
            "cannot commit what was aborted"
        );
    }

    #[tokio::test]
    async fn an_unknown_or_fenced_producer_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        let (pid, epoch) = init(&node, "tx").await;
        assert_eq!(
            end(&node, 3, (pid + 1, epoch), true).await.error_code,
            code::INVALID_PRODUCER_ID_MAPPING
        );
        init(&node, "tx").await;
        assert_eq!(
            end(&node, 1, (pid, epoch), true).await.error_code,
            code::INVALID_PRODUCER_EPOCH
        );
        assert_eq!(
            end(&node, 2, (pid, epoch), true).await.error_code,
            code::PRODUCER_FENCED
        );
    }
}
