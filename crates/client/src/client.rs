//! [`Client`]: bootstrap, connection pool per broker, cluster metadata, and
//! retries with backoff. Producer, consumer and admin are built on it.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sluice_protocol::Request;
use sluice_protocol::messages::metadata::{MetadataRequest, MetadataRequestTopic};
use tokio::sync::Mutex as AsyncMutex;

use crate::conn::{ConnOptions, Connection};
use crate::error::{ClientError, Result};

/// Settings shared by every client built on a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Bootstrap addresses, host:port; tried in order until one answers.
    pub bootstrap: Vec<String>,
    /// Connection settings.
    pub conn: ConnOptions,
    /// How many times a retriable failure is retried.
    pub retries: u32,
    /// First backoff between retries; doubles up to `retry_backoff_max`.
    pub retry_backoff: Duration,
    /// Upper bound of the exponential backoff.
    pub retry_backoff_max: Duration,
}

impl ClientConfig {
    /// Config for a comma-separated bootstrap list.
    pub fn new(bootstrap: &str) -> ClientConfig {
        ClientConfig {
            bootstrap: bootstrap
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            conn: ConnOptions::default(),
            retries: 5,
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(1),
        }
    }
}

/// A broker as metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    /// Node id.
    pub node_id: i32,
    /// Host.
    pub host: String,
    /// Port.
    pub port: i32,
    /// Rack, if set.
    pub rack: Option<String>,
}

impl BrokerInfo {
    /// host:port.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// One partition's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Partition index.
    pub partition: i32,
    /// Leader node id, -1 when none.
    pub leader_id: i32,
    /// Leader epoch.
    pub leader_epoch: i32,
    /// Replica node ids.
    pub replicas: Vec<i32>,
    /// In-sync replica node ids.
    pub isr: Vec<i32>,
    /// Per-partition error code.
    pub error_code: i16,
}

/// One topic's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Name.
    pub name: String,
    /// Topic id.
    pub topic_id: uuid::Uuid,
    /// Internal topic (e.g. `__consumer_offsets`).
    pub is_internal: bool,
    /// Partitions, sorted by index.
    pub partitions: Vec<PartitionInfo>,
}

/// A snapshot of cluster metadata.
#[derive(Debug, Clone, Default)]
pub struct Metadata {
    /// Cluster id.
    pub cluster_id: Option<String>,
    /// Controller node id.
    pub controller_id: i32,
    /// Brokers by node id.
    pub brokers: BTreeMap<i32, BrokerInfo>,
    /// Topics by name.
    pub topics: BTreeMap<String, TopicInfo>,
}

#[derive(Debug)]
struct Inner {
    config: ClientConfig,
    /// Connections by node id. An async mutex because connecting awaits;
    /// only held while looking up or creating one connection.
    conns: AsyncMutex<HashMap<i32, Arc<Connection>>>,
    /// The connection used for metadata and other any-broker requests.
    any: AsyncMutex<Option<Arc<Connection>>>,
    /// Latest metadata. A std lock: read and swapped, never held across
    /// await. Shared, so a reader (the producer, per dispatch) takes a
    /// reference instead of copying every partition.
    metadata: RwLock<Arc<Metadata>>,
}

/// A handle to the cluster. Cheap to clone; clones share connections.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl Client {
    /// Connects to the first reachable bootstrap address and loads metadata.
    pub async fn connect(config: ClientConfig) -> Result<Client> {
        if config.bootstrap.is_empty() {
            return Err(ClientError::Invalid {
                what: "bootstrap servers",
                reason: "the list is empty".to_owned(),
            });
        }
        let client = Client {
            inner: Arc::new(Inner {
                config,
                conns: AsyncMutex::new(HashMap::new()),
                any: AsyncMutex::new(None),
                metadata: RwLock::new(Arc::new(Metadata::default())),
            }),
        };
        client.any_connection().await?;
        client.refresh_metadata(None).await?;
        Ok(client)
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// A connection to any live broker: the current one, a known broker,
    /// or a bootstrap address.
    pub async fn any_connection(&self) -> Result<Arc<Connection>> {
        let mut any = self.inner.any.lock().await;
        if let Some(conn) = any.as_ref()
            && !conn.is_dead()
        {
            return Ok(conn.clone());
        }
        let mut candidates: Vec<String> = self.inner.config.bootstrap.clone();
        for broker in self.metadata().brokers.values() {
            let addr = broker.addr();
            if !candidates.contains(&addr) {
                candidates.push(addr);
            }
        }
        let mut last = None;
        for addr in &candidates {
            match Connection::connect(addr, self.inner.config.conn.clone()).await {
                Ok(conn) => {
                    let conn = Arc::new(conn);
                    *any = Some(conn.clone());
                    return Ok(conn);
                }
                Err(e) => {
                    tracing::debug!(%addr, "bootstrap connect failed: {e}");
                    last = Some(e);
                }
            }
        }
        Err(ClientError::NoBrokerReachable {
            addrs: candidates.join(","),
            source: Box::new(last.unwrap_or(ClientError::Closed)),
        })
    }

    /// A connection to broker `node_id`, reconnecting if the old one died.
    pub async fn broker(&self, node_id: i32) -> Result<Arc<Connection>> {
        let mut conns = self.inner.conns.lock().await;
        if let Some(conn) = conns.get(&node_id)
            && !conn.is_dead()
        {
            return Ok(conn.clone());
        }
        let broker = self
            .metadata()
            .brokers
            .get(&node_id)
            .cloned()
            .ok_or(ClientError::UnknownBroker { node_id })?;
        let conn =
            Arc::new(Connection::connect(&broker.addr(), self.inner.config.conn.clone()).await?);
        conns.insert(node_id, conn.clone());
        Ok(conn)
    }

    /// The current metadata (a shared snapshot; a refresh swaps in a new one).
    pub fn metadata(&self) -> Arc<Metadata> {
        Arc::clone(
            &self
                .inner
                .metadata
                .read()
                .unwrap_or_else(|e| e.into_inner()),
        )
    }

    /// Reloads metadata: all topics (`None`) or the named ones, merged into
    /// the cache.
    pub async fn refresh_metadata(&self, topics: Option<&[String]>) -> Result<Metadata> {
        self.load_metadata(topics, false).await
    }

    /// Metadata of one topic a producer is about to write to. Like Kafka's
    /// producer, it asks the broker to create a missing topic
    /// (`allow_auto_topic_creation`); the broker does so with its defaults
    /// only when its `topics.auto_create` is on, and answers
    /// UNKNOWN_TOPIC_OR_PARTITION otherwise.
    pub async fn topic_for_produce(&self, topic: &str) -> Result<TopicInfo> {
        if let Some(t) = self.metadata().topics.get(topic) {
            return Ok(t.clone());
        }
        let md = self.load_metadata(Some(&[topic.to_owned()]), true).await?;
        md.topics
            .get(topic)
            .cloned()
            .ok_or_else(|| ClientError::UnknownTopic {
                topic: topic.to_owned(),
            })
    }

    async fn load_metadata(
        &self,
        topics: Option<&[String]>,
        allow_auto_topic_creation: bool,
    ) -> Result<Metadata> {
        let request = MetadataRequest {
            topics: topics.map(|t| {
                t.iter()
                    .map(|name| MetadataRequestTopic {
                        name: Some(name.clone()),
                        ..Default::default()
                    })
                    .collect()
            }),
            allow_auto_topic_creation,
            ..Default::default()
        };
        let response = self
            .with_retry("metadata", || async {
                let conn = self.any_connection().await?;
                let (resp, _) = conn.send(&request, 1, 12).await?;
                Ok(resp)
            })
            .await?;
        let mut fresh = Metadata {
            cluster_id: response.cluster_id.clone(),
            controller_id: response.controller_id,
            ..Default::default()
        };
        for b in &response.brokers {
            fresh.brokers.insert(
                b.node_id,
                BrokerInfo {
                    node_id: b.node_id,
                    host: b.host.clone(),
                    port: b.port,
                    rack: b.rack.clone(),
                },
            );
        }
        let mut absent = Vec::new();
        for t in response.topics {
            let Some(name) = t.name else { continue };
            if t.error_code != 0 {
                absent.push(name);
                continue;
            }
            let mut partitions: Vec<PartitionInfo> = t
                .partitions
                .into_iter()
                .map(|p| PartitionInfo {
                    partition: p.partition_index,
                    leader_id: p.leader_id,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replica_nodes,
                    isr: p.isr_nodes,
                    error_code: p.error_code,
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            fresh.topics.insert(
                name.clone(),
                TopicInfo {
                    name,
                    topic_id: t.topic_id,
                    is_internal: t.is_internal,
                    partitions,
                },
            );
        }
        let mut cache = self
            .inner
            .metadata
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if topics.is_some() {
            // A partial refresh keeps other topics but replaces the asked ones.
            let mut topics_map = cache.topics.clone();
            for name in absent {
                topics_map.remove(&name);
            }
            topics_map.extend(fresh.topics);
            fresh.topics = topics_map;
        }
        *cache = Arc::new(fresh.clone());
        Ok(fresh)
    }

    /// Metadata of one topic, refreshing once if it is not cached.
    pub async fn topic(&self, topic: &str) -> Result<TopicInfo> {
        if let Some(t) = self.metadata().topics.get(topic) {
            return Ok(t.clone());
        }
        let md = self.refresh_metadata(Some(&[topic.to_owned()])).await?;
        md.topics
            .get(topic)
            .cloned()
            .ok_or_else(|| ClientError::UnknownTopic {
                topic: topic.to_owned(),
            })
    }

    /// `f` of a topic in the cached metadata, read in place; `None` when
    /// the cache does not know the topic.
    fn cached_topic<T>(&self, topic: &str, f: impl FnOnce(&TopicInfo) -> T) -> Option<T> {
        self.inner
            .metadata
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .topics
            .get(topic)
            .map(f)
    }

    /// Partition count of a topic, from the cache without copying it
    /// (the producer asks once per record).
    pub async fn partition_count(&self, topic: &str) -> Result<i32> {
        match self.cached_topic(topic, |t| t.partitions.len() as i32) {
            Some(n) => Ok(n),
            None => Ok(self.topic(topic).await?.partitions.len() as i32),
        }
    }

    /// Leader node id of a partition (from cache; refresh on a miss). Read
    /// in place: a consumer asks for each of its partitions on every poll,
    /// so copying the topic's partition list here made a poll quadratic
    /// in the partition count.
    pub async fn leader(&self, topic: &str, partition: i32) -> Result<i32> {
        match self.cached_topic(topic, |t| leader_of(t, topic, partition)) {
            Some(leader) => leader,
            None => leader_of(&self.topic(topic).await?, topic, partition),
        }
    }

    /// Sends a request to any broker, retrying retriable failures.
    pub async fn send_any<R: Request>(
        &self,
        what: &str,
        request: &R,
        client_min: i16,
        client_max: i16,
    ) -> Result<(R::Response, i16)> {
        self.with_retry(what, || async {
            let conn = self.any_connection().await?;
            conn.send(request, client_min, client_max).await
        })
        .await
    }

    /// Runs `op` until it succeeds, fails with a non-retriable error, or
    /// runs out of retries; backs off exponentially and refreshes metadata
    /// between attempts when the error says it is stale.
    pub async fn with_retry<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut backoff = self.inner.config.retry_backoff;
        let mut attempt = 0;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_retriable() && attempt < self.inner.config.retries => {
                    attempt += 1;
                    tracing::debug!(what, attempt, "retrying after: {e}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.inner.config.retry_backoff_max);
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// A partition's leader in `t`. Partitions are usually listed in index
/// order, so the slot at `partition` is tried before a scan.
fn leader_of(t: &TopicInfo, topic: &str, partition: i32) -> Result<i32> {
    let p = usize::try_from(partition)
        .ok()
        .and_then(|i| t.partitions.get(i))
        .filter(|p| p.partition == partition)
        .or_else(|| t.partitions.iter().find(|p| p.partition == partition))
        .ok_or_else(|| ClientError::UnknownPartition {
            topic: topic.to_owned(),
            partition,
            partitions: t.partitions.len(),
        })?;
    if p.leader_id < 0 {
        return Err(ClientError::NoLeader {
            topic: topic.to_owned(),
            partition,
        });
    }
    Ok(p.leader_id)
}
