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
        /// Every Kafka listener it serves clients on (Kafka's
        /// RegisterBrokerRecord `endpoints`). Empty in records written
        /// before named listeners existed: such a broker's one listener is
        /// `host`/`port`.
        endpoints: Vec<BrokerEndpoint>,
    },
    /// A broker was fenced (missed heartbeats, or just registered) or
    /// unfenced (caught up and heartbeating).
    FenceBroker {
        /// The broker.
        broker_id: i32,
        /// The new state.
        fenced: bool,
    },
    /// A broker is being decommissioned (its replicas move away and it gets
    /// no new ones) or is back in service. Outlives its re-registrations.
    DecommissionBroker {
        /// The broker.
        broker_id: i32,
        /// True while it is being (or has been) decommissioned.
        decommissioning: bool,
    },
    /// A dynamic broker config was set (`Some`) or removed (`None`), for
    /// one broker or, with `broker_id` -1, as the cluster-wide default
    /// (Kafka's dynamic broker configs, set with (Incremental)AlterConfigs
    /// on a BROKER resource). Outlives the broker's re-registrations.
    BrokerConfig {
        /// The broker, or [`CLUSTER_DEFAULT_BROKER`] for the default.
        broker_id: i32,
        /// Kafka's config name.
        name: String,
        /// The new value; `None` removes it.
        value: Option<String>,
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
    /// A user's SCRAM credential for one mechanism was set (Kafka's
    /// `UserScramCredentialRecord`): salted keys, never the password.
    UserScramCredential {
        /// The user name.
        name: String,
        /// Kafka's mechanism number: 1 SCRAM-SHA-256, 2 SCRAM-SHA-512.
        mechanism: i8,
        /// The salt.
        salt: Vec<u8>,
        /// `H(ClientKey)`.
        stored_key: Vec<u8>,
        /// `HMAC(SaltedPassword, "Server Key")`.
        server_key: Vec<u8>,
        /// PBKDF2 iterations.
        iterations: i32,
    },
    /// A user's SCRAM credential for one mechanism was removed.
    RemoveUserScramCredential {
        /// The user name.
        name: String,
        /// Kafka's mechanism number.
        mechanism: i8,
    },
    /// An ACL was created (Kafka's AccessControlEntryRecord).
    AccessControlEntry {
        /// Its id, chosen by the controller; deletes name it.
        id: Uuid,
        /// The ACL.
        acl: crate::acl::AclBinding,
    },
    /// An ACL was deleted (Kafka's RemoveAccessControlEntryRecord).
    RemoveAccessControlEntry {
        /// The id its [`MetadataRecord::AccessControlEntry`] gave it.
        id: Uuid,
    },
    /// An HTTP API bearer token was created. Only the SHA-256 hash of its
    /// secret is recorded, never the secret itself.
    HttpToken(HttpTokenImage),
    /// An HTTP API bearer token was revoked.
    RemoveHttpToken {
        /// The token's id.
        id: String,
    },
    /// A client quota was set (`Some`) or removed (`None`) on an entity
    /// (Kafka's `ClientQuotaRecord`, set with AlterClientQuotas).
    ClientQuota {
        /// `(entity type, name)` pairs sorted by type; a `None` name is the
        /// type's default entity.
        entity: QuotaEntity,
        /// The quota key (`producer_byte_rate`, ...).
        key: String,
        /// The new value; `None` removes the key.
        value: Option<f64>,
    },
}

/// An HTTP API bearer token as the metadata describes it: who it
/// authenticates as, until when, and the hash its secret must match.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HttpTokenImage {
    /// Public id (also the first part of the token a client sends).
    pub id: String,
    /// The principal it authenticates as, e.g. `User:alice`.
    pub principal: String,
    /// SHA-256 of the token's secret.
    pub sha256: [u8; 32],
    /// When it was created (ms since the epoch).
    pub created_ms: i64,
    /// When it stops authenticating (ms since the epoch).
    pub expires_ms: i64,
}

/// A quota entity: `(entity type, name)` pairs sorted by type, at most one
/// per type; a `None` name is the type's default entity (`<default>`).
pub type QuotaEntity = Vec<(String, Option<String>)>;

/// The `broker_id` of a [`MetadataRecord::BrokerConfig`] that sets the
/// cluster-wide default (Kafka's BROKER resource named "").
pub const CLUSTER_DEFAULT_BROKER: i32 = -1;

/// One Kafka listener of a registered broker, as clients reach it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BrokerEndpoint {
    /// The listener's name (`PLAINTEXT`, `CLIENT`, ...), upper case.
    pub name: String,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
    /// Kafka's security protocol id: 0 PLAINTEXT, 1 SSL, 2 SASL_PLAINTEXT,
    /// 3 SASL_SSL.
    pub security_protocol: i16,
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
    /// Its Kafka listeners (empty for a registration from before named
    /// listeners: then `host`/`port` is its one listener).
    pub endpoints: Vec<BrokerEndpoint>,
    /// A fenced broker leads no partition and is not listed to clients.
    pub fenced: bool,
    /// Being decommissioned (`sluice cluster decommission`): the balancer
    /// moves its replicas away and places none on it.
    pub decommissioning: bool,
}

impl BrokerImage {
    /// Where clients of listener `listener` reach this broker: the
    /// endpoint of that name, or `None` when the broker has no such
    /// listener (Kafka then leaves it out of Metadata). A registration
    /// from before named listeners has one listener, `host`/`port`, which
    /// serves every name.
    pub fn endpoint_for(&self, listener: &str) -> Option<(&str, i32)> {
        if self.endpoints.is_empty() {
            return Some((self.host.as_str(), self.port));
        }
        self.endpoints
            .iter()
            .find(|e| e.name == listener)
            .map(|e| (e.host.as_str(), e.port))
    }
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

/// A stored SCRAM credential as the metadata holds it.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredentialImage {
    /// The salt.
    pub salt: Vec<u8>,
    /// `H(ClientKey)`.
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: Vec<u8>,
    /// PBKDF2 iterations.
    pub iterations: i32,
}

impl std::fmt::Debug for ScramCredentialImage {
    // Keys stay out of logs and debug dumps.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredentialImage")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
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
    /// Dynamic broker configs set, by broker id ([`CLUSTER_DEFAULT_BROKER`]
    /// for the cluster-wide defaults); only the keys set, never empty maps.
    pub broker_configs: BTreeMap<i32, BTreeMap<String, String>>,
    /// SCRAM credentials by user name, then Kafka's mechanism number; no
    /// user has an empty map.
    pub scram_credentials: BTreeMap<String, BTreeMap<i8, ScramCredentialImage>>,
    /// The ACLs, shared between images until one changes them (an image is
    /// cloned per change; the ACL set only when an ACL record applies).
    pub acls: std::sync::Arc<crate::acl::AclSet>,
    /// HTTP API bearer tokens by id, expired ones included until revoked.
    pub http_tokens: BTreeMap<String, HttpTokenImage>,
    /// Client quotas by entity (sorted `(type, name)` pairs); only the keys
    /// set, never empty maps.
    pub client_quotas: BTreeMap<QuotaEntity, BTreeMap<String, f64>>,
}

/// Where a dynamic broker config's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DynamicSource {
    /// Set on the broker itself.
    Broker,
    /// Set as the cluster-wide default.
    ClusterDefault,
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

    /// The dynamic config `name` of `broker_id`: its own value, else the
    /// cluster-wide default, with where it came from; `None` when neither
    /// is set (the static or built-in default applies).
    pub fn broker_config(&self, broker_id: i32, name: &str) -> Option<(&str, DynamicSource)> {
        let own = self
            .broker_configs
            .get(&broker_id)
            .and_then(|c| c.get(name))
            .map(|v| (v.as_str(), DynamicSource::Broker));
        own.or_else(|| {
            self.broker_configs
                .get(&CLUSTER_DEFAULT_BROKER)
                .and_then(|c| c.get(name))
                .map(|v| (v.as_str(), DynamicSource::ClusterDefault))
        })
    }

    /// `user`'s SCRAM credential for Kafka's mechanism number `mechanism`.
    pub fn scram_credential(&self, user: &str, mechanism: i8) -> Option<&ScramCredentialImage> {
        self.scram_credentials.get(user)?.get(&mechanism)
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
                endpoints,
            } => {
                // A restart does not end a decommission.
                let decommissioning = self
                    .brokers
                    .get(broker_id)
                    .is_some_and(|b| b.decommissioning);
                self.brokers.insert(
                    *broker_id,
                    BrokerImage {
                        broker_id: *broker_id,
                        incarnation_id: *incarnation_id,
                        epoch: *epoch,
                        host: host.clone(),
                        port: *port,
                        rack: rack.clone(),
                        endpoints: endpoints.clone(),
                        fenced: true,
                        decommissioning,
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
            MetadataRecord::DecommissionBroker {
                broker_id,
                decommissioning,
            } => {
                let broker = self
                    .brokers
                    .get_mut(broker_id)
                    .ok_or_else(|| fail(format!("no broker {broker_id}")))?;
                broker.decommissioning = *decommissioning;
            }
            MetadataRecord::BrokerConfig {
                broker_id,
                name,
                value,
            } => match value {
                Some(v) => {
                    self.broker_configs
                        .entry(*broker_id)
                        .or_default()
                        .insert(name.clone(), v.clone());
                }
                None => {
                    if let Some(configs) = self.broker_configs.get_mut(broker_id) {
                        configs.remove(name);
                        if configs.is_empty() {
                            self.broker_configs.remove(broker_id);
                        }
                    }
                }
            },
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
            MetadataRecord::UserScramCredential {
                name,
                mechanism,
                salt,
                stored_key,
                server_key,
                iterations,
            } => {
                self.scram_credentials
                    .entry(name.clone())
                    .or_default()
                    .insert(
                        *mechanism,
                        ScramCredentialImage {
                            salt: salt.clone(),
                            stored_key: stored_key.clone(),
                            server_key: server_key.clone(),
                            iterations: *iterations,
                        },
                    );
            }
            MetadataRecord::RemoveUserScramCredential { name, mechanism } => {
                let user = self
                    .scram_credentials
                    .get_mut(name)
                    .ok_or_else(|| fail(format!("no SCRAM credential for user {name}")))?;
                user.remove(mechanism).ok_or_else(|| {
                    fail(format!(
                        "user {name} has no credential for mechanism {mechanism}"
                    ))
                })?;
                if user.is_empty() {
                    self.scram_credentials.remove(name);
                }
            }
            MetadataRecord::AccessControlEntry { id, acl } => {
                if !std::sync::Arc::make_mut(&mut self.acls).insert(*id, acl.clone()) {
                    return Err(fail(format!("ACL {id} already exists")));
                }
            }
            MetadataRecord::RemoveAccessControlEntry { id } => {
                if !std::sync::Arc::make_mut(&mut self.acls).remove(id) {
                    return Err(fail(format!("no ACL {id}")));
                }
            }
            MetadataRecord::HttpToken(token) => {
                if self.http_tokens.contains_key(&token.id) {
                    return Err(fail(format!("http token {} already exists", token.id)));
                }
                self.http_tokens.insert(token.id.clone(), token.clone());
            }
            MetadataRecord::RemoveHttpToken { id } => {
                self.http_tokens
                    .remove(id)
                    .ok_or_else(|| fail(format!("no http token {id}")))?;
            }
            MetadataRecord::ClientQuota { entity, key, value } => {
                // Records carry sorted entities; sorting again keeps one
                // entry per entity even for a hand-made record.
                let mut entity = entity.clone();
                entity.sort();
                match value {
                    Some(v) => {
                        self.client_quotas
                            .entry(entity)
                            .or_default()
                            .insert(key.clone(), *v);
                    }
                    None => {
                        if let Some(quotas) = self.client_quotas.get_mut(&entity) {
                            quotas.remove(key);
                            if quotas.is_empty() {
                                self.client_quotas.remove(&entity);
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn topic_mut(&mut self, id: &Uuid) -> Option<&mut TopicImage> {
        let name = self.topic_names.get(id)?;
        self.topics.get_mut(name)
    }
}
