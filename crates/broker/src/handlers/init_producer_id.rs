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
use crate::authz::Authorizer;
use sluice_coordinator::{ProducerIdManager, TransactionCoordinator};
use sluice_metadata::acl::{AclOperation, ResourceType};

/// First version that knows PRODUCER_FENCED (KIP-588); older ones get
/// INVALID_PRODUCER_EPOCH for the same condition.
const PRODUCER_FENCED_SINCE: i16 = 4;

/// Handles InitProducerId: transactional ids through `txn`, the rest
/// straight from `producer_ids`.
pub fn handle(
    txn: &Arc<TransactionCoordinator>,
    producer_ids: &Arc<ProducerIdManager>,
    authorizer: &Authorizer,
    ctx: &RequestContext,
    header: &RequestHeader,
    request: InitProducerIdRequest,
) -> impl Future<Output = InitProducerIdResponse> + Send + 'static {
    // Kafka: WRITE on the transactional id; without one, IDEMPOTENT_WRITE
    // on the cluster or WRITE on some topic (KIP-679).
    let denied = match request
        .transactional_id
        .as_deref()
        .filter(|id| !id.is_empty())
    {
        Some(id) => (!authorizer.transactional_id(ctx, AclOperation::Write, id))
            .then_some(code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED),
        None => (!authorizer.cluster(ctx, AclOperation::IdempotentWrite)
            && !authorizer.any_of_type(ctx, AclOperation::Write, ResourceType::Topic))
        .then_some(code::CLUSTER_AUTHORIZATION_FAILED),
    };
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
        if let Some(error_code) = denied {
            return response(error_code, -1, -1);
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{self, Node};

    async fn init(
        node: &Node,
        version: i16,
        transactional_id: Option<&str>,
        expected: (i64, i16),
    ) -> InitProducerIdResponse {
        let request = InitProducerIdRequest {
            transactional_id: transactional_id.map(str::to_owned),
            transaction_timeout_ms: 60_000,
            producer_id: expected.0,
            producer_epoch: expected.1,
            ..Default::default()
        };
        let header = testing::header(22, version);
        handle(
            &node.txn,
            &node.producer_ids,
            &testing::allow_all(),
            &testing::ctx(),
            &header,
            request,
        )
        .await
    }

    #[tokio::test]
    async fn an_idempotent_producer_gets_a_fresh_id_every_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        let first = init(&node, 4, None, (-1, -1)).await;
        let second = init(&node, 4, Some(""), (-1, -1)).await;
        for r in [&first, &second] {
            assert_eq!(r.error_code, code::NONE);
            assert!(r.producer_id >= 0);
            assert_eq!(r.producer_epoch, 0);
        }
        assert_ne!(first.producer_id, second.producer_id);
    }

    #[tokio::test]
    async fn a_transactional_id_keeps_its_producer_id_and_bumps_the_epoch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        let first = init(&node, 4, Some("tx"), (-1, -1)).await;
        assert_eq!(first.error_code, code::NONE);
        let second = init(&node, 4, Some("tx"), (-1, -1)).await;
        assert_eq!(second.error_code, code::NONE);
        assert_eq!(second.producer_id, first.producer_id);
        assert_eq!(second.producer_epoch, first.producer_epoch + 1);
        // KIP-360: a producer naming its id and current epoch gets the next one.
        let third = init(
            &node,
            4,
            Some("tx"),
            (second.producer_id, second.producer_epoch),
        )
        .await;
        assert_eq!(third.error_code, code::NONE);
        assert_eq!(third.producer_epoch, second.producer_epoch + 1);
    }

    #[tokio::test]
    async fn a_fenced_instance_is_producer_fenced_or_invalid_epoch_before_v4() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        let old = init(&node, 4, Some("tx"), (-1, -1)).await;
        let previous = init(&node, 4, Some("tx"), (-1, -1)).await;
        let new = init(&node, 4, Some("tx"), (-1, -1)).await;
        assert_eq!(new.error_code, code::NONE);
        // The instance just replaced, retrying the bump it asked for, gets
        // that bump's result, not another one.
        let retry = init(
            &node,
            4,
            Some("tx"),
            (previous.producer_id, previous.producer_epoch),
        )
        .await;
        assert_eq!(retry.error_code, code::NONE);
        assert_eq!(retry.producer_epoch, new.producer_epoch);
        // An older instance, with an epoch two bumps back, is fenced.
        let stale = (old.producer_id, old.producer_epoch);
        let refused = init(&node, 4, Some("tx"), stale).await;
        assert_eq!(refused.error_code, code::PRODUCER_FENCED);
        assert_eq!((refused.producer_id, refused.producer_epoch), (-1, -1));
        let refused = init(&node, 3, Some("tx"), stale).await;
        assert_eq!(refused.error_code, code::INVALID_PRODUCER_EPOCH);
    }
}
