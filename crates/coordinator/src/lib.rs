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
//! - [`config`]: the coordinators' broker configs.

pub mod config;
pub mod coordinator_record;
pub mod group;
pub mod internal_topics;
pub mod producer_ids;
pub mod txn;

pub use group::GroupCoordinator;
pub use internal_topics::InternalTopics;
pub use producer_ids::ProducerIdManager;
pub use txn::TransactionCoordinator;

use std::sync::Arc;

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
    }

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
        let replicas = Arc::new(ReplicaManager::new(dir, log_defaults.clone(), 1));
        replicas
            .sync_with(&metadata.image(), true)
            .expect("replicas");
        let controller = Arc::new(Controller::new(
            Arc::clone(&metadata) as Arc<dyn MetadataLog>,
            vec![Arc::clone(&replicas) as Arc<dyn MetadataListener>],
            ControllerConfig {
                node_id: 1,
                topics: Default::default(),
                log: log_defaults,
            },
        ));
        let topics = InternalTopics::new(Arc::clone(&controller), Arc::clone(&replicas));
        let crate::Coordinators { groups, txn, .. } = crate::Coordinators::new(groups, txn, topics);
        Arc::new(Node {
            metadata,
            controller,
            replicas,
            groups,
            txn,
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
