//! UnregisterBroker (64): removes a broker's registration from the cluster
//! metadata (Kafka's `kafka-cluster unregister`, AdminClient
//! `unregisterBroker`). Like the other metadata changes it runs on the
//! active controller; another broker forwards it there. The broker's
//! partitions lose it from their ISR and their leadership moves as when it
//! is fenced. Stop the broker first: a running broker registers again.

use std::future::Future;
use std::sync::Arc;

use sluice_metadata::Controller;
use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes;
use sluice_protocol::messages::unregister_broker::{
    UnregisterBrokerRequest, UnregisterBrokerResponse,
};

use super::RequestContext;
use crate::authz::Authorizer;
use sluice_metadata::acl::AclOperation;

/// Handles UnregisterBroker.
pub fn handle(
    controller: &Arc<Controller>,
    authorizer: &Authorizer,
    ctx: &RequestContext,
    _header: &RequestHeader,
    request: UnregisterBrokerRequest,
) -> impl Future<Output = UnregisterBrokerResponse> + Send + 'static {
    let controller = Arc::clone(controller);
    // Kafka: ALTER on the cluster.
    let denied = !authorizer.cluster(ctx, AclOperation::Alter);
    async move {
        if denied {
            return UnregisterBrokerResponse {
                error_code: sluice_protocol::error::codes::CLUSTER_AUTHORIZATION_FAILED,
                error_message: Some(
                    "ALTER on the cluster is required to unregister a broker".to_owned(),
                ),
                ..Default::default()
            };
        }
        let (error_code, error_message) =
            match controller.unregister_broker(request.broker_id).await {
                Ok(()) => (codes::NONE, None),
                Err(e) => (e.code, Some(e.message)),
            };
        UnregisterBrokerResponse {
            error_code,
            error_message,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use sluice_protocol::error::codes as code;

    use super::*;
    use crate::testing;

    #[tokio::test]
    async fn unregisters_a_known_broker_and_refuses_an_unknown_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        node.register_brokers(&[1, 2, 3]).await;
        let ctx = testing::ctx();
        let header = testing::header(64, 0);
        let unregister = |broker_id| {
            handle(
                &node.controller,
                &node.authorizer,
                &ctx,
                &header,
                UnregisterBrokerRequest { broker_id },
            )
        };
        let response = unregister(3).await;
        assert_eq!(
            response.error_code,
            code::NONE,
            "{:?}",
            response.error_message
        );
        assert!(!node.image().brokers.contains_key(&3));
        let response = unregister(9).await;
        assert_eq!(response.error_code, code::BROKER_ID_NOT_REGISTERED);
        assert!(response.error_message.is_some());
    }
}
