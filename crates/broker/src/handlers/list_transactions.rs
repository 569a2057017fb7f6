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
use sluice_coordinator::TransactionCoordinator;
use sluice_coordinator::txn::TxnState;

/// Handles ListTransactions.
pub fn handle(
    txn: &Arc<TransactionCoordinator>,
    _ctx: &RequestContext,
    _header: &RequestHeader,
    request: ListTransactionsRequest,
) -> impl Future<Output = ListTransactionsResponse> + Send + 'static {
    let txn = Arc::clone(txn);
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
        ListTransactionsResponse {
            throttle_time_ms: 0,
            error_code: code::NONE,
            unknown_state_filters,
            transaction_states,
            ..Default::default()
        }
    }
}
