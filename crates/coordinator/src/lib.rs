//! The coordinators: consumer groups and committed offsets
//! (`__consumer_offsets`), transactions (`__transaction_state`), and
//! producer ids.
//!
//! They reach the rest of the broker through one narrow door,
//! [`InternalTopics`]: their internal topics' partitions, the metadata
//! image, and metadata commits. They hold no handle on the broker, and the
//! broker's handlers call them with plain arguments.
//!
//! - [`group`]: the group coordinator (classic and KIP-848 protocols).
//! - [`txn`]: the transaction coordinator.
//! - [`producer_ids`]: producer id blocks reserved in the metadata log.
//! - [`coordinator_record`]: Kafka's key/value framing of both internal topics.
//! - [`ownership`]: which internal partitions this broker coordinates.
//! - [`config`]: the coordinators' broker configs.
//!
//! A coordinator serves only the keys whose internal partition this broker
//! leads. [`LeadershipListener`] follows committed metadata after the
//! replica manager (which opens a newly led partition's log) and has each
//! coordinator load the partitions it gained and drop those it lost.

pub mod config;
pub mod coordinator_record;
pub mod group;
pub mod internal_topics;
pub mod ownership;
pub mod producer_ids;
pub mod txn;

pub use group::GroupCoordinator;
pub use internal_topics::InternalTopics;
pub use producer_ids::ProducerIdManager;
pub use txn::TransactionCoordinator;

use std::sync::{Arc, OnceLock, Weak};

use sluice_metadata::{MetadataDelta, MetadataImage, MetadataListener};

use crate::group::offsets_log::OFFSETS_TOPIC;
use crate::txn::state_log::TRANSACTION_STATE_TOPIC;

/// The coordinators of one node, wired to share one [`InternalTopics`]
/// handle: the transaction coordinator applies committed offsets through
/// the group coordinator and draws producer ids from the manager.
#[derive(Debug)]
pub struct Coordinators {
    /// Consumer groups and committed offsets.
    pub groups: Arc<GroupCoordinator>,
    /// Producer id blocks.
    pub producer_ids: Arc<ProducerIdManager>,
    /// Transactions.
    pub txn: Arc<TransactionCoordinator>,
}

impl Coordinators {
    /// Coordinators over `topics`, not loaded yet.
    pub fn new(
        groups: config::GroupConfig,
        transactions: config::TransactionConfig,
        topics: InternalTopics,
    ) -> Coordinators {
        let groups = Arc::new(GroupCoordinator::new(groups, topics.clone()));
        let producer_ids = Arc::new(ProducerIdManager::new(topics.clone()));
        let txn = Arc::new(TransactionCoordinator::new(
            transactions,
            topics,
            Arc::clone(&groups),
            Arc::clone(&producer_ids),
        ));
        Coordinators {
            groups,
            producer_ids,
            txn,
        }
    }
}

/// Follows committed metadata for the coordinators: when a delta touches
/// `__consumer_offsets` or `__transaction_state`, each coordinator loads
/// the partitions this broker now leads and drops those it no longer
/// leads. Register it after the replica manager, so a newly led
/// partition's log is open before it is replayed.
///
/// The controller is built before the coordinators (they reach metadata
/// through it), so the listener starts empty and is [attached]
/// (LeadershipListener::attach) once they exist; it holds them weakly, as
/// the coordinators hold the controller.
#[derive(Debug, Default)]
pub struct LeadershipListener {
    coordinators: OnceLock<(Weak<GroupCoordinator>, Weak<TransactionCoordinator>)>,
}

impl LeadershipListener {
    /// A listener with nothing attached yet.
    pub fn new() -> LeadershipListener {
        LeadershipListener::default()
    }

    /// Sends metadata to `coordinators` from now on. A second call is ignored.
    pub fn attach(&self, coordinators: &Coordinators) {
        let _ = self.coordinators.set((
            Arc::downgrade(&coordinators.groups),
            Arc::downgrade(&coordinators.txn),
        ));
    }
}

impl MetadataListener for LeadershipListener {
    fn apply(
        &self,
        delta: &MetadataDelta,
        image: &MetadataImage,
    ) -> Result<(), sluice_log::LogError> {
        let touches = |topic: &str| {
            delta.created.contains(topic)
                || delta.changed.contains(topic)
                || delta.removed.contains_key(topic)
        };
        let Some((groups, txn)) = self.coordinators.get() else {
            return Ok(());
        };
        // Groups first: finishing a loaded commit applies its offsets there.
        if touches(OFFSETS_TOPIC)
            && let Some(groups) = groups.upgrade()
        {
            groups.follow(image);
        }
        if touches(TRANSACTION_STATE_TOPIC)
            && let Some(txn) = txn.upgrade()
        {
            txn.follow(image);
        }
        Ok(())
    }

    fn discard_topic(&self, _topic: &str) {}

    fn remove_unhosted_dirs(&self, _topic: &str, _partitions: i32) {}
}

/// Test harness: the coordinators over a temp dir, with a real metadata
/// log, controller and replica manager underneath, and no network.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::Arc;

    use sluice_metadata::controller::ControllerConfig;
    use sluice_metadata::{Controller, LocalMetadataLog, MetadataListener, MetadataLog};
    use sluice_replica::ReplicaManager;

    use crate::config::{GroupConfig, TransactionConfig};
    use crate::{GroupCoordinator, InternalTopics, TransactionCoordinator};

    /// The pieces a coordinator test drives and inspects.
    #[derive(Debug)]
    pub struct Node {
        pub metadata: Arc<LocalMetadataLog>,
        pub controller: Arc<Controller>,
        pub replicas: Arc<ReplicaManager>,
        pub groups: Arc<GroupCoordinator>,
        pub txn: Arc<TransactionCoordinator>,
        pub producer_ids: Arc<crate::ProducerIdManager>,
    }

    /// The node id of test nodes.
    pub const NODE_ID: i32 = 1;

    /// Coordinator configs for tests: a one-partition `__consumer_offsets`
    /// and no initial rebalance delay.
    pub fn group_config() -> GroupConfig {
        GroupConfig {
            offsets_topic_num_partitions: 1,
            group_initial_rebalance_delay_ms: 0,
            ..GroupConfig::default()
        }
    }

    /// A node over `dir` with `groups` config; coordinators not loaded.
    pub fn bare_node(
        dir: &std::path::Path,
        groups: GroupConfig,
        txn: TransactionConfig,
    ) -> Arc<Node> {
        let metadata = Arc::new(LocalMetadataLog::open(dir).expect("metadata"));
        let log_defaults = sluice_metadata::config::LogDefaults::default();
        let replicas = Arc::new(ReplicaManager::new(dir, log_defaults.clone(), NODE_ID));
        replicas
            .sync_with(&metadata.image(), true)
            .expect("replicas");
        let leadership = Arc::new(crate::LeadershipListener::new());
        let controller = Arc::new(Controller::new(
            Arc::clone(&metadata) as Arc<dyn MetadataLog>,
            vec![
                Arc::clone(&replicas) as Arc<dyn MetadataListener>,
                Arc::clone(&leadership) as Arc<dyn MetadataListener>,
            ],
            ControllerConfig {
                node_id: NODE_ID,
                topics: Default::default(),
                log: log_defaults,
                internal_topics: Default::default(),
            },
        ));
        let topics = InternalTopics::new(Arc::clone(&controller), Arc::clone(&replicas), NODE_ID);
        let coordinators = crate::Coordinators::new(groups, txn, topics);
        leadership.attach(&coordinators);
        let crate::Coordinators {
            groups,
            txn,
            producer_ids,
        } = coordinators;
        Arc::new(Node {
            metadata,
            controller,
            replicas,
            groups,
            txn,
            producer_ids,
        })
    }

    /// A node over `dir` with `groups` and `txn` configs, coordinators loaded.
    pub async fn node_with(
        dir: &std::path::Path,
        groups: GroupConfig,
        txn: TransactionConfig,
    ) -> Arc<Node> {
        let node = bare_node(dir, groups, txn);
        let tasks = sluice_runtime::Tasks::new();
        node.groups.load(&tasks).expect("load groups");
        node.txn.load(&tasks).await.expect("load transactions");
        node
    }

    /// A node over `dir` with test configs, coordinators loaded.
    pub async fn node_in(dir: &std::path::Path) -> Arc<Node> {
        node_with(dir, group_config(), TransactionConfig::default()).await
    }

    /// Creates `name` with `partitions` partitions and default configs.
    pub async fn create_topic(node: &Node, name: &str, partitions: i32) {
        let topic = sluice_metadata::controller::NewTopic {
            name: name.to_owned(),
            num_partitions: partitions,
            replication_factor: -1,
            configs: Vec::new(),
            assignments: Vec::new(),
        };
        let result = node.controller.create_topics(vec![topic], false).await;
        assert!(
            result.iter().all(|r| r.is_ok()),
            "create {name}: {result:?}"
        );
    }

    /// Registers brokers `ids`, unfenced, as a cluster's controller would:
    /// broker `id` listens on `broker-{id}:{9000 + id}`.
    pub async fn register_brokers(node: &Node, ids: &[i32]) {
        let records: Vec<sluice_metadata::MetadataRecord> = ids
            .iter()
            .flat_map(|&broker_id| {
                [
                    sluice_metadata::MetadataRecord::RegisterBroker {
                        broker_id,
                        incarnation_id: uuid::Uuid::new_v4(),
                        epoch: 1,
                        host: format!("broker-{broker_id}"),
                        port: 9000 + broker_id,
                        rack: None,
                        endpoints: Vec::new(),
                    },
                    sluice_metadata::MetadataRecord::FenceBroker {
                        broker_id,
                        fenced: false,
                    },
                ]
            })
            .collect();
        node.controller
            .commit(Box::new(move |_| Ok(records)))
            .await
            .expect("register brokers");
    }

    /// Makes `leader` (-1: none) the leader of partition `index` of
    /// `topic`, with a new leader epoch, as a cluster's controller would
    /// after a failover. This node stays a replica, so its log stays open.
    pub async fn move_leader(node: &Node, topic: &str, index: i32, leader: i32) {
        let topic = topic.to_owned();
        node.controller
            .commit(Box::new(move |image| {
                let t = image.topics.get(&topic).expect("topic exists");
                let p = t.partitions.get(&index).expect("partition exists");
                let mut replicas = vec![NODE_ID];
                if leader >= 0 && leader != NODE_ID {
                    replicas.push(leader);
                }
                Ok(vec![sluice_metadata::MetadataRecord::Partition {
                    topic_id: t.topic_id,
                    partition: index,
                    leader,
                    isr: replicas.clone(),
                    replicas,
                    leader_epoch: p.leader_epoch + 1,
                    partition_epoch: p.partition_epoch + 1,
                    adding_replicas: Vec::new(),
                    removing_replicas: Vec::new(),
                }])
            }))
            .await
            .expect("move leader");
    }

    /// Removes `name` from the metadata and its partition logs without the
    /// checks clients go through: simulates state lost underneath a
    /// coordinator.
    pub async fn remove_topic_bypassing_checks(node: &Node, name: &str) {
        let committed = node
            .metadata
            .commit(|image| {
                let topic = image.topics.get(name).expect("topic exists");
                Ok::<_, ()>(vec![sluice_metadata::MetadataRecord::RemoveTopic {
                    topic_id: topic.topic_id,
                }])
            })
            .await
            .expect("metadata log")
            .expect("change");
        node.replicas
            .sync_with(&committed.image, false)
            .expect("sync");
    }
}
