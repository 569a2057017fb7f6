//! InitProducerId (22): a producer id and epoch for an idempotent or
//! transactional producer.
//!
//! Without a transactional id every call gets a fresh producer id (Kafka
//! does the same, even for KIP-360 epoch-bump requests). With one, the
//! transaction coordinator bumps the id's epoch, fencing older instances,
//! and aborts any transaction the previous instance left open.

use std::future::Future;
use std::sync::Arc;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::init_producer_id::{InitProducerIdRequest, InitProducerIdResponse};

use super::RequestContext;
use sluice_coordinator::{ProducerIdManager, TransactionCoordinator};

/// First version that knows PRODUCER_FENCED (KIP-588); older ones get
/// INVALID_PRODUCER_EPOCH for the same condition.
const PRODUCER_FENCED_SINCE: i16 = 4;

/// Handles InitProducerId: transactional ids through `txn`, the rest
/// straight from `producer_ids`.
pub fn handle(
    txn: &Arc<TransactionCoordinator>,
    producer_ids: &Arc<ProducerIdManager>,
    ctx: &RequestContext,
    header: &RequestHeader,
    request: InitProducerIdRequest,
) -> impl Future<Output = InitProducerIdResponse> + Send + 'static {
    let txn = Arc::clone(txn);
    let producer_ids = Arc::clone(producer_ids);
    let peer = ctx.peer;
    let version = header.request_api_version;
    async move {
        let response = |error_code, producer_id, producer_epoch| InitProducerIdResponse {
            throttle_time_ms: 0,
            error_code,
            producer_id,
            producer_epoch,
            ..Default::default()
        };
        if let Some(id) = request.transactional_id.filter(|id| !id.is_empty()) {
            let expected =
                (request.producer_id >= 0).then_some((request.producer_id, request.producer_epoch));
            return match txn
                .init_producer_id(&id, request.transaction_timeout_ms, expected)
                .await
            {
                Ok((producer_id, epoch)) => {
                    tracing::debug!(%peer, transactional_id = %id, producer_id, epoch, "transactional producer initialised");
                    response(code::NONE, producer_id, epoch)
                }
                Err(e) => {
                    tracing::info!(%peer, transactional_id = %id, "InitProducerId refused: {e:?}");
                    response(e.code(version < PRODUCER_FENCED_SINCE), -1, -1)
                }
            };
        }
        match producer_ids.next_id().await {
            Ok(producer_id) => response(code::NONE, producer_id, 0),
            Err(e) => {
                tracing::error!("cannot allocate a producer id: {}", e.message);
                response(e.code, -1, -1)
            }
        }
    }
}
