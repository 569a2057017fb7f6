//! The Kafka server: the listener, the per-connection request loop, and
//! one handler per Kafka API, over the pieces it is given.
//!
//! Layout:
//! - [`authz`]: the ACL authorizer every handler checks requests with.
//! - [`config`]: typed, layered, validated configuration.
//! - [`datadir`]: the data directory lock and the cluster id.
//! - [`server`]: the Kafka listener and per-connection request loop,
//!   generic over the byte stream (TCP today, TLS or a simulated network
//!   later).
//! - [`frames`]: request frames read under the broker-wide memory budget.
//! - [`handlers`]: one file per Kafka API.
//! - [`leader_balance`]: automatic preferred-leader balancing on the active
//!   controller.
//! - [`throttle`]: replication throttles (KIP-73 replication quotas).
//!
//! The pieces live in their own crates, below this one: the metadata
//! image and controller (`sluice-metadata`), hosted partitions
//! (`sluice-replica`), the coordinators (`sluice-coordinator`) and the
//! metric families (`sluice-metrics`). [`Broker`] holds a handle on each;
//! `sluice`'s `serve` module wires them together.
//!
//! The broker never decodes record batches on the produce or fetch path:
//! bytes go from the socket to the log and from the log to the socket.

pub mod authz;
pub mod cluster;
pub mod config;
pub mod context;
pub mod datadir;
pub mod fetch_session;
pub mod frames;
pub mod handlers;
pub mod leader_balance;
pub mod peers;
pub mod principal_map;
pub mod quota;
pub mod replication;
pub mod sasl;
pub mod server;
pub mod throttle;
pub mod tls;
pub mod zero_copy;

#[cfg(test)]
mod controller_tests;

use std::sync::Arc;
use std::time::Instant;

use sluice_coordinator::txn::markers::MarkerSender;
use sluice_coordinator::{
    Coordinators, GroupCoordinator, InternalTopics, LeadershipListener, ProducerIdManager,
    TransactionCoordinator,
};
use sluice_metadata::config::InternalTopicReplication;
use sluice_metadata::controller::ControllerConfig;
use sluice_metadata::{Controller, LocalMetadataLog, MetadataError, MetadataListener, MetadataLog};
use sluice_replica::ReplicaManager;
use sluice_runtime::Tasks;

use crate::config::Config;

/// Why the broker could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The metadata log could not be recovered.
    #[error("cannot load metadata: {0}")]
    Metadata(#[from] MetadataError),
    /// A partition log could not be recovered.
    #[error("cannot recover partition logs: {0}")]
    Log(#[from] sluice_log::LogError),
    /// The listeners are misconfigured (validated at load; not expected).
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The inter-broker TLS files do not load.
    #[error("inter-broker TLS: {0}")]
    Tls(#[from] tls::TlsError),
    /// `__consumer_offsets` could not be replayed.
    #[error("cannot replay __consumer_offsets: {0}")]
    Offsets(#[from] sluice_coordinator::group::offsets_log::OffsetsLogError),
}

/// Who sent a request. Every request carries one; today every connection is
/// `User:ANONYMOUS` on a PLAINTEXT listener, and SASL will fill it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Kafka's principal type, `User`.
    pub principal_type: String,
    /// The name, `ANONYMOUS` before authentication exists.
    pub name: String,
}

impl Principal {
    /// The principal of an unauthenticated connection.
    pub fn anonymous() -> Principal {
        Principal {
            principal_type: "User".to_owned(),
            name: "ANONYMOUS".to_owned(),
        }
    }

    /// The principal of a connection that authenticated as `name`.
    pub fn user(name: &str) -> Principal {
        Principal {
            principal_type: "User".to_owned(),
            name: name.to_owned(),
        }
    }
}

/// One of this broker's Kafka listeners as clients reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvertisedListener {
    /// The listener's name (upper case).
    pub name: String,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: u16,
    /// The listener's security protocol.
    pub security_protocol: config::SecurityProtocol,
}

/// Where clients reach this broker: one endpoint per Kafka listener, one
/// of them the inter-broker listener (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertised {
    listeners: Vec<AdvertisedListener>,
    /// Index of the inter-broker listener in `listeners`.
    inter_broker: usize,
}

impl Advertised {
    /// The endpoints of `listeners`, other brokers connecting to the one
    /// named `inter_broker` (the first when no listener has that name).
    /// `None` when `listeners` is empty.
    pub fn new(listeners: Vec<AdvertisedListener>, inter_broker: &str) -> Option<Advertised> {
        if listeners.is_empty() {
            return None;
        }
        let inter_broker = listeners
            .iter()
            .position(|l| l.name == inter_broker)
            .unwrap_or(0);
        Some(Advertised {
            listeners,
            inter_broker,
        })
    }

    /// Every listener's endpoint, in configuration order.
    pub fn listeners(&self) -> &[AdvertisedListener] {
        &self.listeners
    }

    /// The endpoint of the listener named `name`.
    pub fn get(&self, name: &str) -> Option<&AdvertisedListener> {
        self.listeners.iter().find(|l| l.name == name)
    }

    /// The inter-broker listener's endpoint: the host and port registered
    /// for replication and transaction peers.
    pub fn inter_broker(&self) -> &AdvertisedListener {
        // `new` keeps the index in range and the list non-empty.
        &self.listeners[self.inter_broker]
    }

    /// The endpoints as registration records carry them.
    pub fn endpoints(&self) -> Vec<sluice_metadata::BrokerEndpoint> {
        self.listeners
            .iter()
            .map(|l| sluice_metadata::BrokerEndpoint {
                name: l.name.clone(),
                host: l.host.clone(),
                port: i32::from(l.port),
                security_protocol: l.security_protocol.id(),
            })
            .collect()
    }
}

/// One PLAINTEXT listener named `PLAINTEXT` at `(host, port)`: a broker
/// configured with the legacy `kafka_listener` key, and tests.
impl From<(String, u16)> for Advertised {
    fn from((host, port): (String, u16)) -> Advertised {
        Advertised {
            listeners: vec![AdvertisedListener {
                name: server::LISTENER_NAME.to_owned(),
                host,
                port,
                security_protocol: config::SecurityProtocol::Plaintext,
            }],
            inter_broker: 0,
        }
    }
}

/// The handles the Kafka server and its handlers work with. Each is a
/// piece from a lower crate; none points back here.
#[derive(Debug)]
pub struct Broker {
    /// The validated configuration.
    pub config: Config,
    /// This data directory's cluster id: the one reported until the
    /// metadata names the cluster's ([`Broker::cluster_id`]).
    pub cluster_id: String,
    /// The metadata log and its current image.
    pub metadata: Arc<dyn MetadataLog>,
    /// Validates and commits admin changes.
    pub controller: Arc<Controller>,
    /// Hosted partitions.
    pub replicas: Arc<ReplicaManager>,
    /// Producer id allocation.
    pub producer_ids: Arc<ProducerIdManager>,
    /// Where clients reach each of this broker's Kafka listeners.
    pub advertised: Advertised,
    /// When the broker started, for status.
    pub started: Instant,
    /// Consumer groups and committed offsets.
    pub groups: Arc<GroupCoordinator>,
    /// Transactional ids and their transactions.
    pub txn: Arc<TransactionCoordinator>,
    /// This node's member of the metadata quorum; `None` for a single node
    /// with its own metadata log.
    pub quorum: Option<Arc<sluice_quorum::Quorum>>,
    /// Connections to the other brokers, for transaction markers and
    /// KIP-890 verification.
    pub peers: Arc<peers::Peers>,
    /// KIP-890 checks of transactional writes, and the writes waiting on them.
    pub verifier: Arc<handlers::Verifier>,
    /// Replication quotas (KIP-73), leader and follower side.
    pub throttles: Arc<throttle::ReplicationThrottles>,
    /// Incremental fetch sessions (KIP-227).
    pub fetch_sessions: Arc<fetch_session::FetchSessions>,
    /// ACL checks (allows everything unless `authorizer.enabled`).
    pub authorizer: Arc<authz::Authorizer>,
    /// TLS for this broker's connections to other brokers (replication,
    /// transaction markers) when the inter-broker listener is SSL or
    /// SASL_SSL: trusts `tls.ca_file` (else `tls.client_ca_file`) and
    /// presents this broker's own certificate. `None`: plain TCP.
    pub inter_broker_tls: Option<Arc<rustls::ClientConfig>>,
    /// Client quota meters (KIP-13, KIP-124), shared by every connection.
    pub quotas: Arc<quota::ClientQuotas>,
    /// The schema registry's contents (`_schemas`), served by its own
    /// listener.
    pub registry: Arc<sluice_registry::Registry>,
    /// TLS for forwarding registry requests to another node's registry
    /// listener when `http_tls` is on: trusts `tls.ca_file` (else
    /// `tls.client_ca_file`) and presents this broker's certificate. `None`
    /// without `http_tls` or without a CA to trust.
    pub registry_forward_tls: Option<Arc<rustls::ClientConfig>>,
}

/// The client TLS config for other brokers' inter-broker listener, if it
/// speaks TLS and a CA to trust is configured (a single node, which has no
/// peers, needs none; config validation requires one in a cluster).
fn inter_broker_tls(config: &Config) -> Result<Option<Arc<rustls::ClientConfig>>, BrokerError> {
    let name = config.inter_broker_listener()?;
    let tls_listener = config
        .listeners()?
        .iter()
        .any(|l| l.name == name && l.security_protocol.uses_tls());
    if !tls_listener || config.tls.trust_file().is_none() {
        return Ok(None);
    }
    Ok(Some(Arc::new(tls::inter_broker_client_config(
        &config.tls,
    )?)))
}

impl Broker {
    /// Opens the metadata log and every partition log under
    /// `config.data_dir` and wires the pieces: the replica manager follows
    /// the controller's deltas, then the coordinators do (loading the
    /// internal partitions this broker comes to lead, once the replica
    /// manager has opened their logs), and the coordinators reach their
    /// topics through one [`InternalTopics`] handle. The coordinators are
    /// not loaded yet ([`Broker::load_coordinators`]).
    pub fn open(
        config: Config,
        cluster_id: String,
        advertised: impl Into<Advertised>,
    ) -> Result<Broker, BrokerError> {
        let metadata = Arc::new(LocalMetadataLog::open_with_encryption(
            &config.data_dir,
            config.log.encryption.clone(),
        )?);
        Broker::open_with(config, cluster_id, advertised, metadata, None)
    }

    /// [`Broker::open`] over a given metadata log: the quorum's, in a
    /// cluster. The replica manager subscribes to the log before reading
    /// its image, so no change applied in between is missed.
    pub fn open_with(
        config: Config,
        cluster_id: String,
        advertised: impl Into<Advertised>,
        metadata: Arc<dyn MetadataLog>,
        quorum: Option<Arc<sluice_quorum::Quorum>>,
    ) -> Result<Broker, BrokerError> {
        let dir = config.data_dir.clone();
        let replicas = Arc::new(ReplicaManager::new(
            &dir,
            config.log.clone(),
            config.node_id,
        ));
        metadata.subscribe(Arc::clone(&replicas) as Arc<dyn MetadataListener>);
        replicas.sync_with(&metadata.image(), true)?;
        let leadership = Arc::new(LeadershipListener::new());
        // A quorum publishes every applied change itself, to its
        // subscribers in this order (the controller publishes only on a
        // single node).
        metadata.subscribe(Arc::clone(&leadership) as Arc<dyn MetadataListener>);
        let controller = Arc::new(Controller::new(
            Arc::clone(&metadata),
            // Order matters: a partition's log is open before a coordinator
            // replays it.
            vec![
                Arc::clone(&replicas) as Arc<dyn MetadataListener>,
                Arc::clone(&leadership) as Arc<dyn MetadataListener>,
            ],
            ControllerConfig {
                node_id: config.node_id,
                topics: config.topics.clone(),
                log: config.log.clone(),
                internal_topics: InternalTopicReplication {
                    offsets_topic_replication_factor: config
                        .groups
                        .offsets_topic_replication_factor,
                    transaction_state_replication_factor: config
                        .transactions
                        .state_log_replication_factor,
                },
            },
        ));
        if let Some(q) = &quorum {
            controller.set_remote(Arc::new(cluster::QuorumRemote::new(Arc::clone(q))));
        }
        let topics = InternalTopics::new(
            Arc::clone(&controller),
            Arc::clone(&replicas),
            config.node_id,
        );
        let coordinators =
            Coordinators::new(config.groups.clone(), config.transactions.clone(), topics);
        leadership.attach(&coordinators);
        let Coordinators {
            groups,
            producer_ids,
            txn,
        } = coordinators;
        let inter_broker_tls = inter_broker_tls(&config)?;
        let peers = Arc::new(
            peers::Peers::new(config.node_id, Arc::clone(&metadata))
                .with_tls(inter_broker_tls.clone()),
        );
        txn.set_marker_sender(Arc::clone(&peers) as Arc<dyn MarkerSender>);
        let verifier = Arc::new(handlers::Verifier::new(
            Arc::clone(&peers),
            Arc::clone(&txn),
        ));
        let authorizer = Arc::new(authz::Authorizer::new(&config, Arc::clone(&metadata)));
        let (quota_window_num, quota_window_size_ms) =
            (config.quota.window_num, config.quota.window_size_ms);
        let registry =
            sluice_registry::Registry::new(Arc::clone(&controller), Arc::clone(&replicas));
        let registry_forward_tls = if config.http_tls && config.tls.trust_file().is_some() {
            Some(Arc::new(tls::inter_broker_client_config(&config.tls)?))
        } else {
            None
        };
        Ok(Broker {
            registry,
            registry_forward_tls,
            authorizer,
            config,
            cluster_id,
            metadata,
            controller,
            replicas,
            producer_ids,
            advertised: advertised.into(),
            started: Instant::now(),
            groups,
            txn,
            quorum,
            peers,
            verifier,
            throttles: Arc::new(throttle::ReplicationThrottles::default()),
            fetch_sessions: Arc::default(),
            inter_broker_tls,
            quotas: Arc::new(quota::ClientQuotas::new(
                quota_window_num,
                quota_window_size_ms,
            )),
        })
    }

    /// The endpoints this broker registers: its Kafka listeners, and its
    /// schema registry listener (named [`sluice_registry::REGISTRY_ENDPOINT`],
    /// at the inter-broker listener's host) when it has one, so the other
    /// brokers can forward registry writes to it.
    pub fn registration_endpoints(&self) -> Vec<sluice_metadata::BrokerEndpoint> {
        let mut endpoints = self.advertised.endpoints();
        if let Ok(Some(addr)) = self.config.schema_registry_addr() {
            endpoints.push(sluice_metadata::BrokerEndpoint {
                name: sluice_registry::REGISTRY_ENDPOINT.to_owned(),
                host: self.advertised.inter_broker().host.clone(),
                port: i32::from(addr.port()),
                security_protocol: if self.config.http_tls { 1 } else { 0 },
            });
        }
        endpoints
    }

    /// The cluster id clients see: the quorum's once it has one, else this
    /// data directory's.
    pub fn cluster_id(&self) -> String {
        self.metadata
            .image()
            .cluster_id
            .clone()
            .unwrap_or_else(|| self.cluster_id.clone())
    }

    /// Loads the partitions of `__consumer_offsets`, then of
    /// `__transaction_state`, that this broker leads (every one on a single
    /// node; finishing a commit found half-done applies its offsets, so
    /// groups come first), and starts the coordinators' timers in `tasks`,
    /// where they stop on its shutdown signal. From then on the
    /// coordinators follow leadership changes in committed metadata.
    pub async fn load_coordinators(&self, tasks: &Tasks) -> Result<(), BrokerError> {
        self.groups.load(tasks)?;
        self.txn.load(tasks).await?;
        Ok(())
    }
}

/// Test helpers: a broker over a temp dir, loaded but not listening; the
/// handles handlers take, assembled without a broker ([`testing::Node`]);
/// hosted partitions alone ([`testing::hosted`]).
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::Arc;

    use sluice_coordinator::{GroupCoordinator, ProducerIdManager, TransactionCoordinator};
    use sluice_metadata::{Controller, MetadataImage, MetadataLog, MetadataRecord};
    use sluice_replica::{Partition, ReplicaManager};

    use crate::Broker;
    use crate::config::Config;

    /// A broker over `dir` with `config` (its `data_dir` is replaced): the
    /// metadata and partition logs open, the coordinators not loaded, no
    /// listener.
    pub fn bare_broker(dir: &std::path::Path, mut config: Config) -> Arc<Broker> {
        config.data_dir = dir.to_owned();
        let advertised = ("127.0.0.1".to_owned(), 9092);
        Arc::new(Broker::open(config, "test".to_owned(), advertised).expect("broker"))
    }

    /// A broker over `dir` with `config` (its `data_dir` is replaced), its
    /// coordinators loaded, no listener.
    pub async fn broker_with(dir: &std::path::Path, mut config: Config) -> Arc<Broker> {
        config.groups.offsets_topic_num_partitions = 1;
        config.groups.group_initial_rebalance_delay_ms = 0;
        let broker = bare_broker(dir, config);
        broker
            .load_coordinators(&sluice_runtime::Tasks::new())
            .await
            .expect("load coordinators");
        broker
    }

    /// A broker over `dir` with default config.
    pub async fn broker_in(dir: &std::path::Path) -> Arc<Broker> {
        broker_with(dir, Config::default()).await
    }

    /// Creates `name` with `partitions` partitions and default configs.
    pub async fn create_topic(broker: &Arc<Broker>, name: &str, partitions: i32) {
        let topic = sluice_metadata::controller::NewTopic {
            name: name.to_owned(),
            num_partitions: partitions,
            replication_factor: -1,
            configs: Vec::new(),
            assignments: Vec::new(),
        };
        let result = broker.controller.create_topics(vec![topic], false).await;
        assert!(
            result.iter().all(|r| r.is_ok()),
            "create {name}: {result:?}"
        );
    }

    /// One uncompressed batch of `count` small records.
    pub fn batch(count: usize) -> bytes::Bytes {
        let mut builder = sluice_records::BatchBuilder::new();
        for i in 0..count {
            builder = builder.record(sluice_records::NewRecord {
                key: None,
                value: Some(bytes::Bytes::from(format!("v{i}"))),
                headers: vec![],
                timestamp_ms: sluice_metadata::now_ms(),
            });
        }
        builder.build().expect("batch").freeze()
    }

    /// One uncompressed batch holding one record with `value`.
    pub fn batch_with_value(value: &[u8]) -> bytes::Bytes {
        sluice_records::BatchBuilder::new()
            .record(sluice_records::NewRecord {
                key: None,
                value: Some(bytes::Bytes::copy_from_slice(value)),
                headers: vec![],
                timestamp_ms: now_ms(),
            })
            .build()
            .expect("batch")
            .freeze()
    }

    /// Milliseconds since the epoch.
    pub fn now_ms() -> i64 {
        sluice_metadata::now_ms()
    }

    /// The request context of `principal` (`User:alice`) from 127.0.0.1.
    pub fn ctx_of(principal: &str) -> crate::handlers::RequestContext {
        let (principal_type, name) = principal.split_once(':').expect("Type:name");
        crate::handlers::RequestContext {
            principal: std::sync::Arc::new(crate::Principal {
                principal_type: principal_type.to_owned(),
                name: name.to_owned(),
            }),
            ..ctx()
        }
    }

    /// A config with the authorizer on and no super users.
    pub fn authorizing_config() -> Config {
        let mut config = Config::default();
        config.authorizer.enabled = true;
        config
    }

    /// An authorizer that allows everything, for handler tests about
    /// something else.
    pub fn allow_all() -> Arc<crate::authz::Authorizer> {
        Arc::new(crate::authz::Authorizer::allow_all())
    }

    /// The request context of an anonymous local client.
    pub fn ctx() -> crate::handlers::RequestContext {
        crate::handlers::RequestContext {
            peer: "127.0.0.1:1".parse().expect("addr"),
            principal: std::sync::Arc::new(crate::Principal::anonymous()),
            listener: std::sync::Arc::from("PLAINTEXT"),
            throttle: Default::default(),
        }
    }

    /// A request header for `api_key` at `version`, from client `test`.
    pub fn header(api_key: i16, version: i16) -> sluice_protocol::RequestHeader {
        sluice_protocol::RequestHeader {
            request_api_key: api_key,
            request_api_version: version,
            correlation_id: 1,
            client_id: Some("test".to_owned()),
        }
    }

    /// The handles that handlers take, assembled over a temp dir as
    /// `Broker::open` wires them, with no `Broker` and no listener.
    #[derive(Debug)]
    pub struct Node {
        /// The config the pieces were built from (its `data_dir` is the temp dir).
        pub config: Config,
        /// The metadata log.
        pub metadata: Arc<dyn MetadataLog>,
        /// Admin changes.
        pub controller: Arc<Controller>,
        /// Hosted partitions, following the controller's deltas.
        pub replicas: Arc<ReplicaManager>,
        /// Producer ids.
        pub producer_ids: Arc<ProducerIdManager>,
        /// Groups and offsets.
        pub groups: Arc<GroupCoordinator>,
        /// Transactions.
        pub txn: Arc<TransactionCoordinator>,
        /// KIP-890 checks.
        pub verifier: Arc<crate::handlers::Verifier>,
        /// ACL checks, as the config says.
        pub authorizer: Arc<crate::authz::Authorizer>,
        /// The schema registry (`_schemas`), for schema validation.
        pub registry: Arc<sluice_registry::Registry>,
    }

    impl Node {
        /// The current metadata image.
        pub fn image(&self) -> Arc<MetadataImage> {
            self.metadata.image()
        }

        /// This node as clients address it.
        pub fn info(&self) -> crate::handlers::NodeInfo {
            crate::handlers::NodeInfo {
                node_id: self.config.node_id,
                host: "127.0.0.1".to_owned(),
                port: 9092,
                cluster_id: "test".to_owned(),
                listener: crate::server::LISTENER_NAME.to_owned(),
            }
        }

        /// Creates `name` with `partitions` partitions and default configs.
        pub async fn create_topic(&self, name: &str, partitions: i32) {
            let topic = sluice_metadata::controller::NewTopic {
                name: name.to_owned(),
                num_partitions: partitions,
                replication_factor: -1,
                configs: Vec::new(),
                assignments: Vec::new(),
            };
            let result = self.controller.create_topics(vec![topic], false).await;
            assert!(
                result.iter().all(|r| r.is_ok()),
                "create {name}: {result:?}"
            );
        }

        /// Registers brokers `ids`, unfenced, as a cluster's controller
        /// would: broker `id` listens on `broker-{id}:{9000 + id}`.
        pub async fn register_brokers(&self, ids: &[i32]) {
            let records: Vec<MetadataRecord> = ids
                .iter()
                .flat_map(|&broker_id| {
                    [
                        MetadataRecord::RegisterBroker {
                            broker_id,
                            incarnation_id: uuid::Uuid::new_v4(),
                            epoch: 1,
                            host: format!("broker-{broker_id}"),
                            port: 9000 + broker_id,
                            rack: None,
                            endpoints: Vec::new(),
                        },
                        MetadataRecord::FenceBroker {
                            broker_id,
                            fenced: false,
                        },
                    ]
                })
                .collect();
            self.commit(records).await;
        }

        /// Commits `records` as they are, through the controller, so every
        /// listener (partitions, then coordinators) follows them.
        pub async fn commit(&self, records: Vec<MetadataRecord>) {
            self.controller
                .commit(Box::new(move |_| Ok(records)))
                .await
                .expect("commit metadata");
        }

        /// Makes `leader` (-1: none) the leader of partition `index` of
        /// `topic` with a new leader epoch, as a cluster's controller would
        /// after a failover. This node stays a replica, so its log stays open.
        pub async fn move_leader(&self, topic: &str, index: i32, leader: i32) {
            let image = self.image();
            let t = image.topics.get(topic).expect("topic exists");
            let p = t.partitions.get(&index).expect("partition exists");
            let mut replicas = vec![self.config.node_id];
            if leader >= 0 && leader != self.config.node_id {
                replicas.push(leader);
            }
            self.commit(vec![MetadataRecord::Partition {
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
            .await;
        }

        /// A hosted partition that must exist.
        pub fn partition(&self, topic: &str, index: i32) -> Arc<Partition> {
            self.replicas
                .partition(topic, index)
                .unwrap_or_else(|| panic!("{topic}-{index} is hosted"))
        }
    }

    /// A node over `dir` with `config` (its `data_dir` is replaced), its
    /// coordinators loaded (one `__consumer_offsets` partition, no initial
    /// rebalance delay).
    pub async fn node_with(dir: &std::path::Path, mut config: Config) -> Node {
        config.data_dir = dir.to_owned();
        config.groups.offsets_topic_num_partitions = 1;
        config.groups.group_initial_rebalance_delay_ms = 0;
        let advertised = ("127.0.0.1".to_owned(), 9092);
        let broker = Broker::open(config, "test".to_owned(), advertised).expect("broker");
        broker
            .load_coordinators(&sluice_runtime::Tasks::new())
            .await
            .expect("load coordinators");
        let Broker {
            config,
            metadata,
            controller,
            replicas,
            producer_ids,
            groups,
            txn,
            verifier,
            authorizer,
            registry,
            ..
        } = broker;
        Node {
            registry,
            authorizer,
            config,
            metadata,
            controller,
            replicas,
            producer_ids,
            groups,
            txn,
            verifier,
        }
    }

    /// A node over `dir` with default config.
    pub async fn node_in(dir: &std::path::Path) -> Node {
        node_with(dir, Config::default()).await
    }

    /// Commits `records` through `node`'s controller, so its replica
    /// manager applies them as it would a quorum's.
    pub async fn commit(node: &Node, records: Vec<sluice_metadata::MetadataRecord>) {
        node.controller
            .commit(Box::new(move |_| Ok(records)))
            .await
            .expect("records commit");
    }

    /// Registers brokers 1 to 4 (this node is 1): `host-N:900N`, racks on
    /// 1 and 2; 1 to 3 are unfenced, 4 stays fenced.
    pub async fn three_brokers(node: &Node) {
        use sluice_metadata::MetadataRecord;
        let mut records = Vec::new();
        for id in 1..=4 {
            records.push(MetadataRecord::RegisterBroker {
                broker_id: id,
                incarnation_id: uuid::Uuid::from_u128(id as u128),
                epoch: 1,
                host: format!("host-{id}"),
                port: 9000 + id,
                rack: (id <= 2).then(|| format!("rack-{id}")),
                endpoints: Vec::new(),
            });
            if id <= 3 {
                records.push(MetadataRecord::FenceBroker {
                    broker_id: id,
                    fenced: false,
                });
            }
        }
        commit(node, records).await;
    }

    /// The topic [`spread_topic`] creates.
    pub const SPREAD: &str = "spread";

    /// `(leader, replicas, leader_epoch)` of each partition of [`SPREAD`]:
    /// led here; followed here (led by 2); led by 3 with no replica here;
    /// no leader; led by fenced broker 4; led by unregistered broker 9.
    pub const SPREAD_PARTITIONS: [(i32, &[i32], i32); 6] = [
        (1, &[1, 2], 3),
        (2, &[2, 1], 5),
        (3, &[3, 2], 7),
        (-1, &[2, 4], 2),
        (4, &[4, 1], 1),
        (9, &[9], 4),
    ];

    /// Creates [`SPREAD`] with [`SPREAD_PARTITIONS`] by committing its
    /// records (call [`three_brokers`] first); returns its topic id.
    pub async fn spread_topic(node: &Node) -> uuid::Uuid {
        use sluice_metadata::MetadataRecord;
        let topic_id = uuid::Uuid::from_u128(0x5eed);
        let mut records = vec![MetadataRecord::Topic {
            name: SPREAD.to_owned(),
            topic_id,
        }];
        for (partition, &(leader, replicas, leader_epoch)) in (0..).zip(&SPREAD_PARTITIONS) {
            records.push(MetadataRecord::Partition {
                topic_id,
                partition,
                leader,
                replicas: replicas.to_vec(),
                isr: if leader < 0 { vec![] } else { vec![leader] },
                leader_epoch,
                partition_epoch: 0,
                adding_replicas: Vec::new(),
                removing_replicas: Vec::new(),
            });
        }
        commit(node, records).await;
        topic_id
    }

    /// A metadata log that reports `controller_id` as the quorum's leader
    /// and otherwise is `inner`.
    #[derive(Debug)]
    pub struct QuorumLog {
        /// The log doing the work.
        pub inner: Arc<dyn MetadataLog>,
        /// What [`MetadataLog::controller_id`] answers.
        pub controller_id: Option<i32>,
    }

    impl MetadataLog for QuorumLog {
        fn image(&self) -> Arc<MetadataImage> {
            self.inner.image()
        }

        fn commit<'a>(
            &'a self,
            change: sluice_metadata::Change<'a>,
        ) -> sluice_metadata::CommitFuture<'a> {
            self.inner.commit(change)
        }

        fn is_offline(&self) -> bool {
            self.inner.is_offline()
        }

        fn reopen_if_offline(&self) {
            self.inner.reopen_if_offline();
        }

        fn flush(&self) -> Result<(), sluice_metadata::MetadataError> {
            self.inner.flush()
        }

        fn controller_id(&self) -> Option<i32> {
            self.controller_id
        }
    }

    /// A controller over `node`'s metadata log, whose quorum names broker
    /// `controller_id` as its leader.
    pub fn controller_led_by(node: &Node, controller_id: i32) -> Arc<Controller> {
        let log = QuorumLog {
            inner: Arc::clone(&node.metadata),
            controller_id: Some(controller_id),
        };
        Arc::new(Controller::new(
            Arc::new(log),
            Vec::new(),
            sluice_metadata::controller::ControllerConfig::default(),
        ))
    }

    /// Partitions alone: a replica manager over `dir` hosting `topics`
    /// (name, partition count) as described by an image built here, with
    /// no metadata log, controller or coordinator. Topic ids are 1, 2, …
    /// in the order given.
    pub fn hosted(
        dir: &std::path::Path,
        topics: &[(&str, i32)],
    ) -> (Arc<ReplicaManager>, Arc<MetadataImage>) {
        let mut image = MetadataImage::default();
        for (n, &(name, partitions)) in (1u128..).zip(topics) {
            let topic_id = uuid::Uuid::from_u128(n);
            let partitions = (0..partitions)
                .map(|index| {
                    let partition = sluice_metadata::PartitionImage {
                        leader: NODE_ID,
                        replicas: vec![NODE_ID],
                        isr: vec![NODE_ID],
                        leader_epoch: 0,
                        partition_epoch: 0,
                        adding_replicas: Vec::new(),
                        removing_replicas: Vec::new(),
                    };
                    (index, partition)
                })
                .collect();
            image.topic_names.insert(topic_id, name.to_owned());
            image.topics.insert(
                name.to_owned(),
                sluice_metadata::TopicImage {
                    name: name.to_owned(),
                    topic_id,
                    partitions,
                    configs: Default::default(),
                },
            );
        }
        let replicas = Arc::new(ReplicaManager::new(
            dir,
            sluice_metadata::config::LogDefaults::default(),
            NODE_ID,
        ));
        replicas.sync_with(&image, true).expect("partition logs");
        (replicas, Arc::new(image))
    }

    /// The node id of [`hosted`] partitions (the default `node.id`).
    pub const NODE_ID: i32 = 1;

    /// One transactional record (value `v`) of producer `producer_id` at
    /// `epoch`, with base sequence `sequence`.
    pub fn transactional_batch(producer_id: i64, epoch: i16, sequence: i32) -> bytes::Bytes {
        sluice_records::BatchBuilder::new()
            .producer(producer_id, epoch, sequence)
            .transactional(true)
            .record(sluice_records::NewRecord {
                key: None,
                value: Some(bytes::Bytes::from_static(b"v")),
                headers: vec![],
                timestamp_ms: now_ms(),
            })
            .build()
            .expect("batch")
            .freeze()
    }

    /// Appends `batch` to `partition` and waits until it is durable here
    /// (and below the high watermark, if this node leads it with an ISR of
    /// itself). Works on a follower too, as test set-up. Returns its base
    /// offset.
    pub async fn append(partition: &Arc<Partition>, batch: &[u8]) -> i64 {
        let records = bytes::BytesMut::from(batch);
        let info = if partition.is_leader() {
            partition.append(records, now_ms())
        } else {
            // A follower's data arrives by replication; the set-up writes
            // to its log directly instead.
            partition
                .log()
                .append(records, partition.leader_epoch(), now_ms())
        }
        .expect("append");
        partition
            .commit_local(info.last_offset + 1)
            .await
            .expect("commit");
        info.base_offset
    }
}
