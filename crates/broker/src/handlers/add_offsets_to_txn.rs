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
use sluice_coordinator::TransactionCoordinator;

/// First version that knows PRODUCER_FENCED (KIP-588).
const PRODUCER_FENCED_SINCE: i16 = 2;

/// Handles AddOffsetsToTxn.
pub fn handle(
    txn: &Arc<TransactionCoordinator>,
    _ctx: &RequestContext,
    header: &RequestHeader,
    request: AddOffsetsToTxnRequest,
) -> impl Future<Output = AddOffsetsToTxnResponse> + Send + 'static {
    let txn = Arc::clone(txn);
    let version = header.request_api_version;
    async move {
        let error_code = if request.group_id.is_empty() {
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
        AddOffsetsToTxnResponse {
            throttle_time_ms: 0,
            error_code,
            ..Default::default()
        }
    }
}
