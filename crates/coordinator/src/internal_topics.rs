//! The coordinators' one door to the rest of the broker: their internal
//! topics (`__consumer_offsets`, `__transaction_state`), the metadata image
//! (does a topic exist, who leads an internal partition), and metadata
//! commits for producer id blocks. The coordinators never see the broker,
//! the network, or other topics' data.

use std::sync::Arc;

use std::collections::BTreeSet;

use sluice_metadata::{ApiError, Controller, MetadataImage};
use sluice_replica::{Partition, ReplicaManager};

/// Kafka's `String.hashCode`: 31-based over UTF-16 code units, wrapping,
/// so a key hashes as it does in Kafka's coordinators.
pub fn java_string_hashcode(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// The partition of an internal topic with `partitions` partitions that
/// holds `key` (a group id or transactional id): Kafka's
/// `Utils.abs(key.hashCode) % partitions`, where `Utils.abs` maps
/// `i32::MIN` to 0. The same key has the same coordinator partition as on
/// a Kafka cluster with the same partition count.
pub fn partition_for_key(key: &str, partitions: i32) -> i32 {
    let h = java_string_hashcode(key);
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions.max(1)
}

/// Handle on the internal topics and the metadata a coordinator reads.
#[derive(Debug, Clone)]
pub struct InternalTopics {
    controller: Arc<Controller>,
    replicas: Arc<ReplicaManager>,
    /// This broker's `node.id`: a coordinator owns the internal partitions
    /// whose leader it is.
    node_id: i32,
}

impl InternalTopics {
    /// A handle over `controller` (creates topics, commits metadata) and
    /// `replicas` (hosts the partitions), for broker `node_id`.
    pub fn new(
        controller: Arc<Controller>,
        replicas: Arc<ReplicaManager>,
        node_id: i32,
    ) -> InternalTopics {
        InternalTopics {
            controller,
            replicas,
            node_id,
        }
    }

    /// This broker's `node.id`.
    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// The partitions of `topic` this broker coordinates in `image`: those
    /// it leads whose log is open here (the replica manager opens a
    /// partition's log before the coordinators see the delta that made
    /// this broker its leader). A partition without a leader (-1) or led
    /// by another broker is not this broker's to coordinate.
    pub fn led_here(&self, image: &MetadataImage, topic: &str) -> BTreeSet<i32> {
        image
            .topics
            .get(topic)
            .map(|t| {
                t.partitions
                    .iter()
                    .filter(|(index, p)| {
                        p.leader == self.node_id
                            && self.replicas.partition(topic, **index).is_some()
                    })
                    .map(|(index, _)| *index)
                    .collect()
            })
            .unwrap_or_default()
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

    /// Reserves a block of `block_size` producer ids on the active
    /// controller; returns the first id past the block.
    pub async fn allocate_producer_ids(&self, block_size: i64) -> Result<i64, ApiError> {
        self.controller.allocate_producer_ids(block_size).await
    }
}
