//! Producer id allocation for idempotent and transactional producers.
//!
//! Ids are handed out from blocks reserved in the metadata log, like
//! KRaft's `ProducerIdsRecord`: a block is committed before any id in it is
//! given out, and a restarted broker starts at the next unreserved block,
//! so an id is never handed out twice, even after a crash.

use std::sync::Mutex;

use sluice_metadata::{ApiError, MetadataRecord};

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
        let image = self
            .topics
            .commit_metadata(Box::new(|image| {
                Ok(vec![MetadataRecord::ProducerIds {
                    next_producer_id: image.next_producer_id + PRODUCER_ID_BLOCK_SIZE,
                }])
            }))
            .await?;
        {
            let mut block = self.block.lock().unwrap_or_else(|p| p.into_inner());
            block.next = image.next_producer_id - PRODUCER_ID_BLOCK_SIZE;
            block.end = image.next_producer_id;
        }
        self.take().ok_or_else(|| {
            ApiError::new(
                sluice_protocol::error::codes::UNKNOWN_SERVER_ERROR,
                "empty block",
            )
        })
    }
}
