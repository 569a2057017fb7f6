//! The coordinators' one door to the rest of the broker: their internal
//! topics (`__consumer_offsets`, `__transaction_state`), the metadata image
//! (does a topic exist), and metadata commits for producer id blocks. The
//! coordinators never see the broker, the network, or other topics' data.

use std::sync::Arc;

use sluice_metadata::{ApiError, Change, Controller, MetadataImage};
use sluice_replica::{Partition, ReplicaManager};

/// Handle on the internal topics and the metadata a coordinator reads.
#[derive(Debug, Clone)]
pub struct InternalTopics {
    controller: Arc<Controller>,
    replicas: Arc<ReplicaManager>,
}

impl InternalTopics {
    /// A handle over `controller` (creates topics, commits metadata) and
    /// `replicas` (hosts the partitions).
    pub fn new(controller: Arc<Controller>, replicas: Arc<ReplicaManager>) -> InternalTopics {
        InternalTopics {
            controller,
            replicas,
        }
    }

    /// Partition `index` of `topic`, if hosted here: an internal topic's,
    /// or a data partition a transaction's markers go to.
    pub fn partition(&self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        self.replicas.partition(topic, index)
    }

    /// Creates the compacted, never-expiring internal topic `topic` with
    /// `partitions` partitions unless it exists.
    pub async fn ensure(&self, topic: &str, partitions: i32) -> Result<(), ApiError> {
        self.controller
            .ensure_internal_topic(topic, partitions)
            .await
    }

    /// The current metadata image (which topics and partitions exist).
    pub fn image(&self) -> Arc<MetadataImage> {
        self.controller.image()
    }

    /// Commits a metadata change (producer id blocks).
    pub async fn commit_metadata(
        &self,
        change: Change<'_>,
    ) -> Result<Arc<MetadataImage>, ApiError> {
        self.controller.commit(change).await
    }
}
