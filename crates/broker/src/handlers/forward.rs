//! Kafka's request forwarding (KIP-590): a broker that is not the active
//! controller sends metadata-changing requests to it, frame as received,
//! and answers with the controller's response once its own image shows
//! the change.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use sluice_protocol::error::codes;
use sluice_protocol::{ApiKey, RequestBody, RequestHeader};
use sluice_quorum::Quorum;
use sluice_quorum::wire::{ControlRequest, ControlResponse};

use super::{Reply, RequestContext};
use crate::Broker;

/// APIs that change cluster metadata: only the active controller runs
/// them, other brokers forward them.
pub const CONTROLLER_APIS: &[ApiKey] = &[
    ApiKey::CreateTopics,
    ApiKey::DeleteTopics,
    ApiKey::CreatePartitions,
    ApiKey::AlterConfigs,
    ApiKey::IncrementalAlterConfigs,
    ApiKey::UnregisterBroker,
    ApiKey::CreateAcls,
    ApiKey::DeleteAcls,
    ApiKey::AlterClientQuotas,
];

/// True if `api_key` must run on the active controller and this node is
/// not it.
pub fn must_forward(broker: &Broker, api_key: i16) -> Option<Arc<Quorum>> {
    let quorum = broker.quorum.as_ref()?;
    let forwarded = CONTROLLER_APIS.iter().any(|k| *k as i16 == api_key);
    (forwarded && !quorum.is_leader()).then(|| Arc::clone(quorum))
}

/// Forwards a request frame to the active controller and answers with its
/// response. If no controller can be reached, the request's own error
/// response says NOT_CONTROLLER, which clients retry.
pub fn forward(
    quorum: Arc<Quorum>,
    ctx: &RequestContext,
    header: RequestHeader,
    body: RequestBody,
    frame: Bytes,
) -> Reply {
    let principal = format!("{}:{}", ctx.principal.principal_type, ctx.principal.name);
    let client = ctx.peer;
    let connection = ctx.throttle.clone();
    Box::pin(async move {
        let answer = quorum
            .control(ControlRequest::Forward {
                principal,
                client: client.to_string(),
                frame,
            })
            .await;
        let (code, message) = match answer {
            Ok(ControlResponse::Forwarded { frame, index }) => {
                // Answer once this node's image shows the change, so the
                // client's next Metadata request here sees it.
                if !quorum.wait_published(index).await {
                    tracing::warn!(
                        index,
                        "answering a forwarded request before this node caught up"
                    );
                }
                // KIP-599: the controller charged the partition mutations
                // and said how long to throttle; this broker holds the
                // client's connection, so it applies the throttle.
                if let Some(delay) = crate::quota::forwarded_mutation_throttle(&header, &frame) {
                    crate::quota::throttle_connection(
                        &connection,
                        header.request_api_key,
                        header.request_api_version,
                        delay,
                    )
                    .await;
                }
                return Some(BytesMut::from(&frame[..]).into());
            }
            Ok(ControlResponse::Refused { code, message }) => (code, message),
            Ok(other) => (
                codes::NOT_CONTROLLER,
                format!("the controller answered unexpectedly: {other:?}"),
            ),
            Err(e) => (e.code, e.message),
        };
        tracing::info!(
            api_key = header.request_api_key,
            "forwarding failed: {message}"
        );
        super::encode_error_response(&header, body, code, &message)
    })
}
