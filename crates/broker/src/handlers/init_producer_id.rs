//! InitProducerId (22): a producer id and epoch for an idempotent producer.
//!
//! Transactional ids need the transaction coordinator (a later issue); until
//! it exists they are refused with a clear error rather than half-served.

use std::future::Future;
use std::sync::Arc;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::init_producer_id::{InitProducerIdRequest, InitProducerIdResponse};

use super::RequestContext;
use crate::Broker;

/// Handles InitProducerId.
pub fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    _header: &RequestHeader,
    request: InitProducerIdRequest,
) -> impl Future<Output = InitProducerIdResponse> + Send + 'static {
    let broker = Arc::clone(broker);
    let peer = ctx.peer;
    async move {
        let response = |error_code, producer_id, producer_epoch| InitProducerIdResponse {
            throttle_time_ms: 0,
            error_code,
            producer_id,
            producer_epoch,
            ..Default::default()
        };
        if let Some(id) = request.transactional_id.filter(|id| !id.is_empty()) {
            tracing::info!(%peer, transactional_id = %id, "transactions are not supported yet");
            return response(code::INVALID_REQUEST, -1, -1);
        }
        match broker.producer_ids.next_id(&broker).await {
            Ok(producer_id) => response(code::NONE, producer_id, 0),
            Err(e) => {
                tracing::error!("cannot allocate a producer id: {}", e.message);
                response(e.code, -1, -1)
            }
        }
    }
}
