//! Producer id allocation for idempotent and transactional producers.
//!
//! Ids are handed out from blocks reserved in the metadata log, like
//! KRaft's `ProducerIdsRecord`: a block is committed before any id in it is
//! given out, and a restarted broker starts at the next unreserved block,
//! so an id is never handed out twice, even after a crash.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice_metadata::ApiError;

use crate::internal_topics::InternalTopics;

/// Ids reserved per metadata record; Kafka's controller uses 1000.
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;

/// When this few ids are left in the current block and no next block is
/// held, the next one is reserved in the background (Kafka's broker
/// prefetches at 90 % use), so a burst of producers does not wait on the
/// controller and a node cut off from it can still hand out ids.
const PREFETCH_BELOW: i64 = PRODUCER_ID_BLOCK_SIZE / 10;

/// Backoff between attempts of the reservation made at start.
const PREFETCH_RETRY_MIN: Duration = Duration::from_millis(100);
const PREFETCH_RETRY_MAX: Duration = Duration::from_secs(5);

/// A run of reserved ids, `next..end`.
#[derive(Debug, Default, Clone, Copy)]
struct Block {
    next: i64,
    end: i64,
}

impl Block {
    fn ending_at(end: i64) -> Block {
        Block {
            next: end - PRODUCER_ID_BLOCK_SIZE,
            end,
        }
    }

    fn left(&self) -> i64 {
        self.end - self.next
    }
}

/// The block being used and the one reserved after it.
#[derive(Debug, Default)]
struct Blocks {
    current: Block,
    next: Option<Block>,
}

/// Hands out producer ids.
#[derive(Debug)]
pub struct ProducerIdManager {
    /// Where blocks are reserved.
    topics: InternalTopics,
    /// Held only to take an id or install a block; never across an await.
    blocks: Mutex<Blocks>,
    /// Serialises block reservations so two callers do not both reserve.
    reserve: tokio::sync::Mutex<()>,
    /// A background reservation is running.
    prefetching: AtomicBool,
}

/// What [`ProducerIdManager::take`] found.
struct Taken {
    id: Option<i64>,
    /// Few ids are left and no next block is held.
    running_low: bool,
}

impl ProducerIdManager {
    /// A manager reserving blocks through `topics`.
    pub fn new(topics: InternalTopics) -> ProducerIdManager {
        ProducerIdManager {
            topics,
            blocks: Mutex::default(),
            reserve: tokio::sync::Mutex::default(),
            prefetching: AtomicBool::new(false),
        }
    }

    fn take(&self) -> Taken {
        let mut blocks = self.blocks.lock().unwrap_or_else(|p| p.into_inner());
        if blocks.current.left() <= 0
            && let Some(next) = blocks.next.take()
        {
            blocks.current = next;
        }
        let id = (blocks.current.left() > 0).then(|| {
            blocks.current.next += 1;
            blocks.current.next - 1
        });
        Taken {
            id,
            running_low: blocks.next.is_none() && blocks.current.left() < PREFETCH_BELOW,
        }
    }

    /// Holds a block in reserve if the current one is running low and no
    /// next one is held: one reservation through the active controller.
    pub async fn prefetch(&self) -> Result<(), ApiError> {
        let _guard = self.reserve.lock().await;
        {
            let blocks = self.blocks.lock().unwrap_or_else(|p| p.into_inner());
            if blocks.next.is_some() || blocks.current.left() >= PREFETCH_BELOW {
                return Ok(());
            }
        }
        let end = self
            .topics
            .allocate_producer_ids(PRODUCER_ID_BLOCK_SIZE)
            .await?;
        let mut blocks = self.blocks.lock().unwrap_or_else(|p| p.into_inner());
        if blocks.current.left() <= 0 {
            blocks.current = Block::ending_at(end);
        } else {
            blocks.next = Some(Block::ending_at(end));
        }
        Ok(())
    }

    /// Reserves a block at start, retrying with backoff until one is held
    /// or `stop` fires: a node that later loses the controller still hands
    /// out the ids it holds (InitProducerId may reach any broker).
    pub async fn prefetch_until_held(&self, stop: sluice_runtime::CancellationToken) {
        let mut backoff = PREFETCH_RETRY_MIN;
        loop {
            match self.prefetch().await {
                Ok(()) => return,
                Err(e) => tracing::debug!(
                    code = e.code,
                    "reserving a producer id block: {}; retrying",
                    e.message
                ),
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(PREFETCH_RETRY_MAX);
        }
    }

    /// Starts one background reservation unless one is running.
    fn prefetch_in_background(self: &Arc<Self>) {
        if self.prefetching.swap(true, Ordering::AcqRel) {
            return;
        }
        let manager = Arc::clone(self);
        tokio::spawn(async move {
            if let Err(e) = manager.prefetch().await {
                tracing::debug!(
                    code = e.code,
                    "reserving the next producer id block: {}",
                    e.message
                );
            }
            manager.prefetching.store(false, Ordering::Release);
        });
    }

    /// A fresh producer id.
    pub async fn next_id(self: &Arc<Self>) -> Result<i64, ApiError> {
        let taken = self.take();
        if taken.running_low {
            self.prefetch_in_background();
        }
        if let Some(id) = taken.id {
            return Ok(id);
        }
        let _guard = self.reserve.lock().await;
        if let Some(id) = self.take().id {
            return Ok(id);
        }
        // Reserved by the active controller, which may be another node.
        let end = self
            .topics
            .allocate_producer_ids(PRODUCER_ID_BLOCK_SIZE)
            .await?;
        self.blocks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .current = Block::ending_at(end);
        self.take().id.ok_or_else(|| {
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
        let other = Arc::new(ProducerIdManager::new(InternalTopics::new(
            Arc::clone(&node.controller),
            Arc::clone(&node.replicas),
            2,
        )));
        fn take(
            m: &Arc<ProducerIdManager>,
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

    /// The block after the current one is reserved before the current one
    /// runs out, in the background, and ids continue from it without a
    /// reservation in the caller's path.
    #[tokio::test]
    async fn the_next_block_is_reserved_before_the_current_one_runs_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = crate::testing::bare_node(
            dir.path(),
            crate::testing::group_config(),
            crate::config::TransactionConfig::default(),
        );
        let ids = &node.producer_ids;
        let reserved = || node.controller.image().next_producer_id;
        let before = reserved();
        // At start: one block held, none taken.
        ids.prefetch().await.expect("prefetch");
        assert_eq!(reserved(), before + PRODUCER_ID_BLOCK_SIZE);
        ids.prefetch().await.expect("prefetch");
        assert_eq!(
            reserved(),
            before + PRODUCER_ID_BLOCK_SIZE,
            "a held block is enough"
        );
        let first = ids.next_id().await.expect("id");
        assert_eq!(first, before);
        // Up to the low-water mark nothing more is reserved.
        for _ in 1..(PRODUCER_ID_BLOCK_SIZE - PREFETCH_BELOW) {
            ids.next_id().await.expect("id");
        }
        assert_eq!(reserved(), before + PRODUCER_ID_BLOCK_SIZE);
        // One more crosses it: the next block is reserved in the background.
        ids.next_id().await.expect("id");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while reserved() == before + PRODUCER_ID_BLOCK_SIZE {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no background reservation"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(reserved(), before + 2 * PRODUCER_ID_BLOCK_SIZE);
        // The rest of the block, then the prefetched one, in order.
        let mut last = first;
        for _ in 0..(PRODUCER_ID_BLOCK_SIZE + 10) {
            let id = ids.next_id().await.expect("id");
            assert!(id > last, "ids go up: {id} after {last}");
            last = id;
        }
        // Contiguous: the prefetched block starts where the first one ends.
        assert_eq!(
            last,
            before + 2 * PRODUCER_ID_BLOCK_SIZE - PREFETCH_BELOW + 10
        );
        assert!(last < reserved(), "every id handed out was reserved first");
    }
}
