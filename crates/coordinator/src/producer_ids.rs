//! Producer id allocation for idempotent and transactional producers.
//!
//! Ids are handed out from blocks reserved in the metadata log, like
//! KRaft's `ProducerIdsRecord`: a block is committed before any id in it is
//! given out, and a restarted broker starts at the next unreserved block,
//! so an id is never handed out twice, even after a crash.

use std::sync::Mutex;

use sluice_metadata::ApiError;

use crate::internal_topics::InternalTopics;

/// Ids reserved per metadata record; Kafka's controller uses 1000.
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;

/// The block this broker is allocating from.
#[derive(Debug, Default)]
struct Block {
    next: i64,
    end: i64,
}

/// Hands out producer ids.
#[derive(Debug)]
pub struct ProducerIdManager {
    /// Where blocks are reserved.
    topics: InternalTopics,
    /// Held only to take an id or install a block; never across an await.
    block: Mutex<Block>,
    /// Serialises block reservations so two callers do not both reserve.
    reserve: tokio::sync::Mutex<()>,
}

impl ProducerIdManager {
    /// A manager reserving blocks through `topics`.
    pub fn new(topics: InternalTopics) -> ProducerIdManager {
        ProducerIdManager {
            topics,
            block: Mutex::default(),
            reserve: tokio::sync::Mutex::default(),
        }
    }

    fn take(&self) -> Option<i64> {
        let mut block = self.block.lock().unwrap_or_else(|p| p.into_inner());
        (block.next < block.end).then(|| {
            block.next += 1;
            block.next - 1
        })
    }

    /// A fresh producer id.
    pub async fn next_id(&self) -> Result<i64, ApiError> {
        if let Some(id) = self.take() {
            return Ok(id);
        }
        let _guard = self.reserve.lock().await;
        if let Some(id) = self.take() {
            return Ok(id);
        }
        // Reserved by the active controller, which may be another node.
        let end = self
            .topics
            .allocate_producer_ids(PRODUCER_ID_BLOCK_SIZE)
            .await?;
        {
            let mut block = self.block.lock().unwrap_or_else(|p| p.into_inner());
            block.next = end - PRODUCER_ID_BLOCK_SIZE;
            block.end = end;
        }
        self.take().ok_or_else(|| {
            ApiError::new(
                sluice_protocol::error::codes::UNKNOWN_SERVER_ERROR,
                "empty block",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Two brokers allocate through one metadata log (the quorum's, in a
    /// cluster): each block is reserved by a committed record read against
    /// the image that holds every earlier reservation, so no id is handed
    /// out twice, however the calls interleave.
    #[tokio::test]
    async fn two_managers_over_one_controller_never_hand_out_the_same_id() {
        const IDS_PER_MANAGER: usize = 2_500;
        let dir = tempfile::tempdir().expect("tempdir");
        let node = crate::testing::bare_node(
            dir.path(),
            crate::testing::group_config(),
            crate::config::TransactionConfig::default(),
        );
        let other = ProducerIdManager::new(InternalTopics::new(
            std::sync::Arc::clone(&node.controller),
            std::sync::Arc::clone(&node.replicas),
            2,
        ));
        fn take(
            m: &ProducerIdManager,
        ) -> impl std::future::Future<Output = Vec<Result<i64, ApiError>>> + '_ {
            futures::future::join_all((0..IDS_PER_MANAGER).map(|_| m.next_id()))
        }
        let (a, b) = tokio::join!(take(&node.producer_ids), take(&other));
        let a: BTreeSet<i64> = a.into_iter().map(|r| r.expect("id")).collect();
        let b: BTreeSet<i64> = b.into_iter().map(|r| r.expect("id")).collect();
        assert_eq!(a.len(), IDS_PER_MANAGER, "no id twice from one manager");
        assert_eq!(b.len(), IDS_PER_MANAGER, "no id twice from one manager");
        assert!(a.is_disjoint(&b), "the two managers overlap");
        // Every id handed out lies below what the log has reserved.
        let reserved = node.controller.image().next_producer_id;
        assert!(a.iter().chain(&b).all(|&id| (0..reserved).contains(&id)));
    }
}
