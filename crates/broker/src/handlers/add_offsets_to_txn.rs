//! AddOffsetsToTxn (25): a consumer group's offsets join the transaction.
//!
//! The offsets themselves arrive with TxnOffsetCommit and are committed to
//! the group only when the transaction commits.

use std::future::Future;
use std::sync::Arc;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::add_offsets_to_txn::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse,
};

use super::RequestContext;
use crate::authz::Authorizer;
use sluice_coordinator::TransactionCoordinator;
use sluice_metadata::acl::AclOperation;

/// First version that knows PRODUCER_FENCED (KIP-588).
const PRODUCER_FENCED_SINCE: i16 = 2;

/// Handles AddOffsetsToTxn.
pub fn handle(
    txn: &Arc<TransactionCoordinator>,
    authorizer: &Authorizer,
    ctx: &RequestContext,
    header: &RequestHeader,
    request: AddOffsetsToTxnRequest,
) -> impl Future<Output = AddOffsetsToTxnResponse> + Send + 'static {
    let txn = Arc::clone(txn);
    let version = header.request_api_version;
    // Kafka: WRITE on the transactional id, then READ on the group.
    let denied =
        if !authorizer.transactional_id(ctx, AclOperation::Write, &request.transactional_id) {
            Some(code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
        } else if !authorizer.group(ctx, AclOperation::Read, &request.group_id) {
            Some(code::GROUP_AUTHORIZATION_FAILED)
        } else {
            None
        };
    async move {
        let error_code = if let Some(error_code) = denied {
            error_code
        } else if request.group_id.is_empty() {
            code::INVALID_GROUP_ID
        } else {
            match txn
                .add_to_txn(
                    &request.transactional_id,
                    request.producer_id,
                    request.producer_epoch,
                    &[],
                    Some(&request.group_id),
                )
                .await
            {
                Ok(()) => code::NONE,
                Err(e) => e.code(version < PRODUCER_FENCED_SINCE),
            }
        };
        tracing::debug!(transactional_id = %request.transactional_id, group = %request.group_id, error_code, "AddOffsetsToTxn answered");
        AddOffsetsToTxnResponse {
            throttle_time_ms: 0,
            error_code,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::add_partitions_to_txn::tests::init;
    use crate::testing::{self, Node};

    async fn add(
        node: &Node,
        version: i16,
        group: &str,
        (producer_id, producer_epoch): (i64, i16),
    ) -> i16 {
        let request = AddOffsetsToTxnRequest {
            transactional_id: "tx".to_owned(),
            producer_id,
            producer_epoch,
            group_id: group.to_owned(),
        };
        let header = testing::header(25, version);
        handle(
            &node.txn,
            &testing::allow_all(),
            &testing::ctx(),
            &header,
            request,
        )
        .await
        .error_code
    }

    #[tokio::test]
    async fn a_group_joins_the_transaction_and_bad_requests_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        let (pid, epoch) = init(&node, "tx").await;
        assert_eq!(
            add(&node, 3, "", (pid, epoch)).await,
            code::INVALID_GROUP_ID
        );
        assert_eq!(add(&node, 3, "g", (pid, epoch)).await, code::NONE);
        let meta = node
            .txn
            .get("tx")
            .expect("id")
            .snapshot()
            .await
            .expect("meta");
        assert_eq!(meta.state.name(), "Ongoing");
        assert!(meta.groups.contains("g"));

        init(&node, "tx").await; // a newer instance fences this one
        assert_eq!(
            add(&node, 1, "g", (pid, epoch)).await,
            code::INVALID_PRODUCER_EPOCH
        );
        assert_eq!(
            add(&node, 2, "g", (pid, epoch)).await,
            code::PRODUCER_FENCED
        );
    }
}
