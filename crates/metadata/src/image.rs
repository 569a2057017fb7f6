//! The metadata image: cluster state as a pure function of the records.
//!
//! [`MetadataRecord`]s are the only way metadata changes; applying the same
//! records in the same order to an empty image gives the same image on every
//! node, which is what lets a Raft log replicate it.

use std::collections::{BTreeMap, HashMap};

use uuid::Uuid;

/// One change to cluster metadata. [`crate::codec`] encodes it as
/// the value of a record in the metadata log; `docs/design.md` gives the
/// byte layout.
#[derive(Debug, Clone, PartialEq)]
pub enum MetadataRecord {
    /// A topic came into being.
    Topic {
        /// Its name.
        name: String,
        /// Its stable id, for Fetch v13+ and Produce v13.
        topic_id: Uuid,
    },
    /// A partition was created, or its leadership, ISR or replicas changed.
    Partition {
        /// The topic it belongs to.
        topic_id: Uuid,
        /// Its index.
        partition: i32,
        /// Broker id of the leader.
        leader: i32,
        /// Every replica's broker id.
        replicas: Vec<i32>,
        /// The in-sync replicas.
        isr: Vec<i32>,
        /// Bumped on every leadership change; stamped on appended batches.
        leader_epoch: i32,
        /// Kafka's `partitionEpoch` (KIP-497): 0 for a new partition, and
        /// one more on every later record for it (leader, ISR or replica
        /// change), so an AlterPartition built on an older state is refused.
        partition_epoch: i32,
        /// Replicas a reassignment in progress adds (KIP-455): in
        /// `replicas`, not yet in the target's ISR. Empty when none runs.
        adding_replicas: Vec<i32>,
        /// Replicas a reassignment in progress removes once the target
        /// replicas are all in the ISR. Empty when none runs.
        removing_replicas: Vec<i32>,
    },
    /// A topic config was set (`Some`) or reset to its default (`None`).
    TopicConfig {
        /// The topic.
        topic_id: Uuid,
        /// Kafka's config name.
        name: String,
        /// The new value.
        value: Option<String>,
    },
    /// A topic was deleted with all its partitions.
    RemoveTopic {
        /// The topic.
        topic_id: Uuid,
    },
    /// Producer ids below this one are reserved; the next block starts here.
    ProducerIds {
        /// First id not yet reserved.
        next_producer_id: i64,
    },
    /// A broker registered (or re-registered after a restart). It starts
    /// fenced: it leads nothing until the controller unfences it.
    RegisterBroker {
        /// Its node id.
        broker_id: i32,
        /// Random per process start; tells a restart from a duplicate id.
        incarnation_id: Uuid,
        /// Bumped by the controller on every registration of this id.
        epoch: i64,
        /// Where clients reach its Kafka listener.
        host: String,
        /// Port of its Kafka listener.
        port: i32,
        /// `broker.rack`, if set.
        rack: Option<String>,
    },
    /// A broker was fenced (missed heartbeats, or just registered) or
    /// unfenced (caught up and heartbeating).
    FenceBroker {
        /// The broker.
        broker_id: i32,
        /// The new state.
        fenced: bool,
    },
    /// A broker left the cluster for good.
    UnregisterBroker {
        /// The broker.
        broker_id: i32,
    },
    /// The cluster's id, written once by the first active controller (a
    /// former single node's own id when it grows into a cluster) so every
    /// broker reports the same one.
    ClusterId {
        /// Kafka's cluster id (22 characters of URL-safe base64).
        cluster_id: String,
    },
}

/// A registered broker as the metadata describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerImage {
    /// Its node id.
    pub broker_id: i32,
    /// Random per process start.
    pub incarnation_id: Uuid,
    /// Its registration epoch.
    pub epoch: i64,
    /// Kafka listener host.
    pub host: String,
    /// Kafka listener port.
    pub port: i32,
    /// `broker.rack`.
    pub rack: Option<String>,
    /// A fenced broker leads no partition and is not listed to clients.
    pub fenced: bool,
}

/// A partition as the metadata describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionImage {
    /// Broker id of the leader.
    pub leader: i32,
    /// Every replica.
    pub replicas: Vec<i32>,
    /// The in-sync replicas.
    pub isr: Vec<i32>,
    /// Current leader epoch.
    pub leader_epoch: i32,
    /// Kafka's `partitionEpoch`: bumped by every change to this partition.
    pub partition_epoch: i32,
    /// Replicas a reassignment in progress adds (empty when none runs).
    pub adding_replicas: Vec<i32>,
    /// Replicas a reassignment in progress removes (empty when none runs).
    pub removing_replicas: Vec<i32>,
}

impl PartitionImage {
    /// True while a reassignment runs (Kafka: adding or removing replicas
    /// are set).
    pub fn reassignment_in_progress(&self) -> bool {
        !self.adding_replicas.is_empty() || !self.removing_replicas.is_empty()
    }

    /// The replicas the partition ends with: `replicas` less the removing
    /// ones (all of them when no reassignment runs).
    pub fn target_replicas(&self) -> Vec<i32> {
        self.replicas
            .iter()
            .copied()
            .filter(|b| !self.removing_replicas.contains(b))
            .collect()
    }

    /// The replicas before the reassignment in progress (Kafka's revert
    /// rule): `replicas` less the adding ones.
    pub fn original_replicas(&self) -> Vec<i32> {
        self.replicas
            .iter()
            .copied()
            .filter(|b| !self.adding_replicas.contains(b))
            .collect()
    }
}

/// A topic as the metadata describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicImage {
    /// Name.
    pub name: String,
    /// Stable id.
    pub topic_id: Uuid,
    /// Partitions by index; indexes are dense from 0.
    pub partitions: BTreeMap<i32, PartitionImage>,
    /// Only the configs set on the topic; the rest are broker defaults.
    pub configs: BTreeMap<String, String>,
}

/// Everything the metadata log says, at one offset.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetadataImage {
    /// Topics by name.
    pub topics: BTreeMap<String, TopicImage>,
    /// Topic names by id.
    pub topic_names: HashMap<Uuid, String>,
    /// Offset of the next metadata record; how far this image has applied.
    pub next_offset: i64,
    /// First producer id not yet reserved by a `ProducerIds` record.
    pub next_producer_id: i64,
    /// Registered brokers by id, fenced or not.
    pub brokers: BTreeMap<i32, BrokerImage>,
    /// The cluster's id, once the quorum has one (`None` on a single node,
    /// which uses its data directory's).
    pub cluster_id: Option<String>,
}

/// A record that contradicts the image it is applied to: a bug or a
/// damaged log, never user input (handlers validate before committing).
#[derive(Debug, thiserror::Error)]
#[error("metadata record at offset {offset} cannot apply: {reason}")]
pub struct ApplyError {
    offset: i64,
    reason: String,
}

impl MetadataImage {
    /// Brokers that are registered and not fenced: the ones clients see and
    /// that may lead partitions.
    pub fn live_brokers(&self) -> impl Iterator<Item = &BrokerImage> {
        self.brokers.values().filter(|b| !b.fenced)
    }

    /// A topic by id.
    pub fn topic_by_id(&self, id: &Uuid) -> Option<&TopicImage> {
        self.topic_names
            .get(id)
            .and_then(|name| self.topics.get(name))
    }

    /// The image after one whole change: `records` applied in order, the
    /// first at `offset`, and `next_offset` set past the change. `self` is
    /// untouched whether or not the change applies.
    pub fn with_change(
        &self,
        records: &[MetadataRecord],
        offset: i64,
        next_offset: i64,
    ) -> Result<MetadataImage, ApplyError> {
        let mut next = self.clone();
        for (i, record) in records.iter().enumerate() {
            next.apply(record, offset + i as i64)?;
        }
        next.next_offset = next_offset;
        Ok(next)
    }

    /// Applies one record.
    pub(crate) fn apply(&mut self, record: &MetadataRecord, offset: i64) -> Result<(), ApplyError> {
        let fail = |reason: String| ApplyError { offset, reason };
        match record {
            MetadataRecord::Topic { name, topic_id } => {
                if self.topics.contains_key(name) {
                    return Err(fail(format!("topic {name} already exists")));
                }
                self.topic_names.insert(*topic_id, name.clone());
                self.topics.insert(
                    name.clone(),
                    TopicImage {
                        name: name.clone(),
                        topic_id: *topic_id,
                        partitions: BTreeMap::new(),
                        configs: BTreeMap::new(),
                    },
                );
            }
            MetadataRecord::Partition {
                topic_id,
                partition,
                leader,
                replicas,
                isr,
                leader_epoch,
                partition_epoch,
                adding_replicas,
                removing_replicas,
            } => {
                let topic = self
                    .topic_mut(topic_id)
                    .ok_or_else(|| fail(format!("no topic {topic_id}")))?;
                // The partition epoch is taken as written, not checked
                // against the previous one: logs from before partition
                // epochs hold 0 in every record of a partition.
                topic.partitions.insert(
                    *partition,
                    PartitionImage {
                        leader: *leader,
                        replicas: replicas.clone(),
                        isr: isr.clone(),
                        leader_epoch: *leader_epoch,
                        partition_epoch: *partition_epoch,
                        adding_replicas: adding_replicas.clone(),
                        removing_replicas: removing_replicas.clone(),
                    },
                );
            }
            MetadataRecord::TopicConfig {
                topic_id,
                name,
                value,
            } => {
                let topic = self
                    .topic_mut(topic_id)
                    .ok_or_else(|| fail(format!("no topic {topic_id}")))?;
                match value {
                    Some(v) => topic.configs.insert(name.clone(), v.clone()),
                    None => topic.configs.remove(name),
                };
            }
            MetadataRecord::RemoveTopic { topic_id } => {
                let name = self
                    .topic_names
                    .remove(topic_id)
                    .ok_or_else(|| fail(format!("no topic {topic_id}")))?;
                self.topics.remove(&name);
            }
            MetadataRecord::ProducerIds { next_producer_id } => {
                if *next_producer_id <= self.next_producer_id {
                    return Err(fail(format!(
                        "producer id block {next_producer_id} does not advance past {}",
                        self.next_producer_id
                    )));
                }
                self.next_producer_id = *next_producer_id;
            }
            MetadataRecord::RegisterBroker {
                broker_id,
                incarnation_id,
                epoch,
                host,
                port,
                rack,
            } => {
                self.brokers.insert(
                    *broker_id,
                    BrokerImage {
                        broker_id: *broker_id,
                        incarnation_id: *incarnation_id,
                        epoch: *epoch,
                        host: host.clone(),
                        port: *port,
                        rack: rack.clone(),
                        fenced: true,
                    },
                );
            }
            MetadataRecord::FenceBroker { broker_id, fenced } => {
                let broker = self
                    .brokers
                    .get_mut(broker_id)
                    .ok_or_else(|| fail(format!("no broker {broker_id}")))?;
                broker.fenced = *fenced;
            }
            MetadataRecord::UnregisterBroker { broker_id } => {
                self.brokers
                    .remove(broker_id)
                    .ok_or_else(|| fail(format!("no broker {broker_id}")))?;
            }
            MetadataRecord::ClusterId { cluster_id } => match &self.cluster_id {
                Some(current) if current != cluster_id => {
                    return Err(fail(format!(
                        "cluster id {cluster_id} cannot replace {current}"
                    )));
                }
                _ => self.cluster_id = Some(cluster_id.clone()),
            },
        }
        Ok(())
    }

    fn topic_mut(&mut self, id: &Uuid) -> Option<&mut TopicImage> {
        let name = self.topic_names.get(id)?;
        self.topics.get_mut(name)
    }
}
