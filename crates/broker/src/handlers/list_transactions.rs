//! ListTransactions (66): transactional ids, filtered by state, producer id
//! and (v1, KIP-994) how long their transaction has been open.

use std::future::Future;
use std::sync::Arc;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::list_transactions::{
    ListTransactionsRequest, ListTransactionsResponse, TransactionState,
};

use super::RequestContext;
use crate::authz::Authorizer;
use sluice_coordinator::TransactionCoordinator;
use sluice_coordinator::txn::TxnState;
use sluice_metadata::acl::AclOperation;

/// Handles ListTransactions.
pub fn handle(
    txn: &Arc<TransactionCoordinator>,
    authorizer: &Arc<Authorizer>,
    ctx: &RequestContext,
    _header: &RequestHeader,
    request: ListTransactionsRequest,
) -> impl Future<Output = ListTransactionsResponse> + Send + 'static {
    let txn = Arc::clone(txn);
    // Kafka lists only the ids the principal may DESCRIBE.
    let authorizer = Arc::clone(authorizer);
    let ctx = ctx.clone();
    async move {
        let unknown_state_filters: Vec<String> = request
            .state_filters
            .iter()
            .filter(|s| !TxnState::NAMES.contains(&s.as_str()))
            .cloned()
            .collect();
        let now = sluice_metadata::now_ms();
        let mut transaction_states = Vec::new();
        for slot in txn.all() {
            // Only the ids this broker coordinates (Kafka's
            // ListTransactions is per broker; admin clients ask every broker).
            if txn.check_coordinator(&slot.id).is_err()
                || !authorizer.transactional_id(&ctx, AclOperation::Describe, &slot.id)
            {
                continue;
            }
            let Some(meta) = slot.snapshot().await else {
                continue;
            };
            let state = meta.state.name();
            if !request.state_filters.is_empty()
                && !request.state_filters.iter().any(|s| s == state)
            {
                continue;
            }
            if !request.producer_id_filters.is_empty()
                && !request.producer_id_filters.contains(&meta.producer_id)
            {
                continue;
            }
            // Only transactions open longer than the filter (-1: no filter).
            if request.duration_filter >= 0
                && (meta.start_ms < 0 || now - meta.start_ms < request.duration_filter)
            {
                continue;
            }
            transaction_states.push(TransactionState {
                transactional_id: slot.id.clone(),
                producer_id: meta.producer_id,
                transaction_state: state.to_owned(),
                ..Default::default()
            });
        }
        transaction_states.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        // A partition still loading may hold more ids: say so, as Kafka
        // does, and list what is loaded.
        let error_code = if txn.ownership().any_loading() {
            code::COORDINATOR_LOAD_IN_PROGRESS
        } else {
            code::NONE
        };
        ListTransactionsResponse {
            throttle_time_ms: 0,
            error_code,
            unknown_state_filters,
            transaction_states,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::add_partitions_to_txn::tests::init;
    use crate::testing::{self, Node};

    async fn list(node: &Node, request: ListTransactionsRequest) -> ListTransactionsResponse {
        let header = testing::header(66, 1);
        handle(
            &node.txn,
            &testing::allow_all(),
            &testing::ctx(),
            &header,
            request,
        )
        .await
    }

    fn ids(response: &ListTransactionsResponse) -> Vec<(&str, &str)> {
        response
            .transaction_states
            .iter()
            .map(|t| (t.transactional_id.as_str(), t.transaction_state.as_str()))
            .collect()
    }

    #[tokio::test]
    async fn filters_by_state_producer_and_duration_and_names_unknown_states() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        node.create_topic("t", 1).await;
        let (open_pid, epoch) = init(&node, "open").await;
        node.txn
            .add_to_txn("open", open_pid, epoch, &[("t".to_owned(), 0)], None)
            .await
            .expect("add");
        let (idle_pid, _) = init(&node, "idle").await;

        let all = list(
            &node,
            ListTransactionsRequest {
                duration_filter: -1,
                ..Default::default()
            },
        )
        .await;
        assert_eq!(all.error_code, code::NONE);
        assert_eq!(ids(&all), [("idle", "Empty"), ("open", "Ongoing")]);

        let ongoing = list(
            &node,
            ListTransactionsRequest {
                state_filters: vec!["Ongoing".to_owned(), "Bogus".to_owned()],
                duration_filter: -1,
                ..Default::default()
            },
        )
        .await;
        assert_eq!(ids(&ongoing), [("open", "Ongoing")]);
        assert_eq!(ongoing.unknown_state_filters, ["Bogus"]);

        let by_producer = list(
            &node,
            ListTransactionsRequest {
                producer_id_filters: vec![idle_pid],
                duration_filter: -1,
                ..Default::default()
            },
        )
        .await;
        assert_eq!(ids(&by_producer), [("idle", "Empty")]);
        assert_eq!(by_producer.transaction_states[0].producer_id, idle_pid);

        // KIP-994: open for at least an hour; neither is.
        let long = list(
            &node,
            ListTransactionsRequest {
                duration_filter: 3_600_000,
                ..Default::default()
            },
        )
        .await;
        assert!(long.transaction_states.is_empty());
        let open_now = list(
            &node,
            ListTransactionsRequest {
                duration_filter: 0,
                ..Default::default()
            },
        )
        .await;
        assert_eq!(
            ids(&open_now),
            [("open", "Ongoing")],
            "an Empty id has no start time"
        );
    }
}
