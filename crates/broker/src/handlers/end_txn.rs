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
use sluice_coordinator::TransactionCoordinator;

/// First version that knows PRODUCER_FENCED (KIP-588).
const PRODUCER_FENCED_SINCE: i16 = 2;

/// Handles EndTxn.
pub fn handle(
    txn: &Arc<TransactionCoordinator>,
    _ctx: &RequestContext,
    header: &RequestHeader,
    request: EndTxnRequest,
) -> impl Future<Output = EndTxnResponse> + Send + 'static {
    let txn = Arc::clone(txn);
    let version = header.request_api_version;
    async move {
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
