//! The broker: network server, request handlers, partitions, and metadata image.
//!
//! Layout:
//! - [`config`]: typed, layered, validated configuration.
//! - [`datadir`]: the data directory lock.
//! - [`metadata`]: the metadata log and the image replayed from it.
//! - [`metadata_codec`]: the byte encoding of metadata records.
//! - [`partition`]: hosted partitions, their logs and high watermarks.
//! - [`server`]: the Kafka listener and per-connection request loop.
//! - [`frames`]: request frames read under the broker-wide memory budget.
//! - [`handlers`]: one file per Kafka API.
//! - [`http`]: the HTTP API, `/metrics`, `/health`, `/ready` and the web console.
//! - [`metrics`]: Prometheus metric families and the hooks that feed them.
//! - [`group`]: the group coordinator and `__consumer_offsets`.
//! - [`txn`]: the transaction coordinator and `__transaction_state`.
//! - [`coordinator_record`]: Kafka's key/value framing shared by both internal topics.
//! - [`topic_config`]: topic-level configs and their defaults.
//!
//! The broker never decodes record batches on the produce or fetch path:
//! bytes go from the socket to the log and from the log to the socket.

pub mod config;
pub mod controller;
pub mod coordinator_record;
pub mod datadir;
pub mod frames;
pub mod group;
pub mod handlers;
pub mod http;
pub mod metadata;
pub mod metadata_codec;
pub mod metrics;
pub mod partition;
pub mod producer_ids;
pub mod server;
pub mod topic_config;
pub mod txn;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::datadir::{DataDir, DataDirError};
use crate::metadata::{MetadataError, MetadataStore};
use crate::partition::ReplicaManager;

/// How often offline logs (a failed write or fsync, a full disk) are
/// reopened. A retry re-runs recovery on the partition, which reads its
/// unflushed tail, so it is not free; a few seconds brings writes back
/// soon after space is freed without spinning on a full disk.
pub const OFFLINE_RETRY_INTERVAL_MS: u64 = 2_000;

/// Why the broker could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The data directory is unusable or locked.
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    /// The metadata log could not be recovered.
    #[error("cannot load metadata: {0}")]
    Metadata(#[from] MetadataError),
    /// A partition log could not be recovered.
    #[error("cannot recover partition logs: {0}")]
    Log(#[from] sluice_log::LogError),
    /// A listener could not bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The final flush at shutdown failed: some data may not be durable.
    #[error("final flush at shutdown failed: {0}")]
    ShutdownFlush(#[source] sluice_log::LogError),
    /// Config problem found at start.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
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
}

/// Everything handlers share.
#[derive(Debug)]
pub struct Broker {
    /// The validated configuration.
    pub config: Config,
    /// Cluster id reported in Metadata and DescribeCluster.
    pub cluster_id: String,
    /// Metadata log and image.
    pub metadata: MetadataStore,
    /// Hosted partitions.
    pub replicas: ReplicaManager,
    /// Producer id allocation.
    pub producer_ids: producer_ids::ProducerIdManager,
    /// The host and port advertised to clients.
    pub advertised: (String, u16),
    /// When the broker started, for status.
    pub started: Instant,
    /// Consumer groups and committed offsets.
    pub groups: group::GroupCoordinator,
    /// Transactional ids and their transactions.
    pub txn: txn::TransactionCoordinator,
}

/// Opens the data directory, recovers every log, serves Kafka clients until
/// `shutdown` resolves, then drains connections and flushes the logs.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), BrokerError> {
    if config.log.max_open_files > 0 {
        let bound = usize::try_from(config.log.max_open_files).unwrap_or(usize::MAX);
        sluice_log::FileCache::global().set_max_open_files(bound);
    }
    tracing::info!(
        max_open_files = sluice_log::FileCache::global().max_open_files(),
        "segment file cache bound"
    );
    let data_dir = DataDir::open(&config.data_dir)?;
    tracing::info!(data_dir = %config.data_dir.display(), node_id = config.node_id, "opening data directory");
    let metadata = MetadataStore::open(data_dir.path())?;
    let replicas = ReplicaManager::new(data_dir.path(), config.log.clone(), config.node_id);
    replicas.sync_with(&metadata.image(), true)?;
    tracing::info!(partitions = replicas.all().len(), "logs recovered");

    let kafka_addr = config.kafka_addr()?;
    let listener = tokio::net::TcpListener::bind(kafka_addr)
        .await
        .map_err(|source| BrokerError::Bind {
            addr: kafka_addr.to_string(),
            source,
        })?;
    let local = listener.local_addr().map_err(|source| BrokerError::Bind {
        addr: kafka_addr.to_string(),
        source,
    })?;
    let advertised = match &config.kafka_advertised_listener {
        Some(adv) => config::parse_host_port("kafka_advertised_listener", adv)?,
        None => (local.ip().to_string(), local.port()),
    };
    let groups = group::GroupCoordinator::new(config.groups.clone());
    let broker = Arc::new(Broker {
        cluster_id: cluster_id(data_dir.path())?,
        groups,
        txn: txn::TransactionCoordinator::new(),
        config,
        metadata,
        replicas,
        producer_ids: producer_ids::ProducerIdManager::default(),
        advertised,
        started: Instant::now(),
    });

    group::GroupCoordinator::load(&broker).map_err(|e| match e {
        group::offsets_log::OffsetsLogError::Log(e) => BrokerError::Log(e),
        other => BrokerError::Log(sluice_log::LogError::Io {
            op: "replay __consumer_offsets",
            path: broker.config.data_dir.clone(),
            source: std::io::Error::other(other.to_string()),
        }),
    })?;
    // After the groups: finishing a commit found half-done applies its offsets.
    txn::TransactionCoordinator::load(&broker).await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let http = http::start(&broker, stop_rx.clone()).await?;
    let housekeeping = tokio::spawn(housekeeping(Arc::clone(&broker), stop_rx.clone()));
    tracing::info!(listener = %local, security_protocol = "PLAINTEXT", "kafka listener up");
    let server = server::serve(listener, Arc::clone(&broker), stop_rx);
    tokio::pin!(server);
    http.set_ready(true);
    tokio::select! {
        () = &mut server => {}
        () = shutdown => {
            tracing::info!("shutting down: no new connections, finishing in-flight requests");
            let _ = stop_tx.send(true);
            server.await;
        }
    }
    let _ = stop_tx.send(true);
    let _ = housekeeping.await;
    http.join().await;
    // Flush everything even if one log fails, then report the failure: a
    // shutdown that could not make acknowledged data durable is not clean.
    let flushed = broker.replicas.flush_all();
    let metadata_flushed = broker.metadata.flush();
    drop(data_dir);
    flushed.map_err(BrokerError::ShutdownFlush)?;
    metadata_flushed?;
    tracing::info!("logs flushed; bye");
    Ok(())
}

/// Periodic retention, time-based rolls and timed flushes.
async fn housekeeping(broker: Arc<Broker>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let retention = Duration::from_millis(broker.config.log.retention_check_interval_ms);
    // Timed flushes (flush.ms) need a finer tick than retention checks.
    let tick = retention.min(Duration::from_secs(1));
    let mut next_retention = Instant::now() + retention;
    let offline_retry = Duration::from_millis(OFFLINE_RETRY_INTERVAL_MS);
    let mut next_offline_retry = Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = stop.changed() => return,
        }
        let now = metadata::now_ms();
        let b = Arc::clone(&broker);
        let run_retention = Instant::now() >= next_retention;
        if run_retention {
            next_retention = Instant::now() + retention;
        }
        let retry_offline = Instant::now() >= next_offline_retry;
        if retry_offline {
            next_offline_retry = Instant::now() + offline_retry;
        }
        let _ = tokio::task::spawn_blocking(move || {
            if retry_offline {
                b.replicas.reopen_offline();
                b.metadata.reopen_if_offline();
            }
            if run_retention {
                b.replicas.apply_retention(now);
            } else {
                b.replicas.flush_on_timer(now);
            }
        })
        .await;
    }
}

/// The cluster id, created once and kept in `meta.properties` like Kafka.
fn cluster_id(dir: &std::path::Path) -> Result<String, DataDirError> {
    let path = dir.join("meta.properties");
    let io = |source| DataDirError::Open {
        path: dir.to_owned(),
        source,
    };
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Some(id) = text.lines().find_map(|l| l.strip_prefix("cluster.id="))
    {
        return Ok(id.trim().to_owned());
    }
    let id = base64_url_uuid(uuid::Uuid::new_v4());
    let tmp = dir.join("meta.properties.tmp");
    std::fs::write(&tmp, format!("version=1\ncluster.id={id}\n")).map_err(io)?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io)?;
    Ok(id)
}

/// Kafka prints cluster ids as URL-safe base64 of a UUID, without padding.
fn base64_url_uuid(id: uuid::Uuid) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = id.as_bytes();
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)) << (8 * (3 - chunk.len()));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Test helpers: a broker over a temp dir, loaded but not listening.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::Arc;

    use crate::Broker;
    use crate::config::Config;

    /// A broker over `dir` with `config` (its `data_dir` is replaced): the
    /// metadata and partition logs open, the coordinators not loaded, no
    /// listener.
    pub fn bare_broker(dir: &std::path::Path, mut config: Config) -> Arc<Broker> {
        config.data_dir = dir.to_owned();
        let metadata = crate::metadata::MetadataStore::open(dir).expect("metadata");
        let replicas =
            crate::partition::ReplicaManager::new(dir, config.log.clone(), config.node_id);
        replicas
            .sync_with(&metadata.image(), true)
            .expect("replicas");
        Arc::new(Broker {
            cluster_id: "test".to_owned(),
            groups: crate::group::GroupCoordinator::new(config.groups.clone()),
            txn: crate::txn::TransactionCoordinator::new(),
            config,
            metadata,
            replicas,
            producer_ids: Default::default(),
            advertised: ("127.0.0.1".to_owned(), 9092),
            started: std::time::Instant::now(),
        })
    }

    /// A broker over `dir` with `config` (its `data_dir` is replaced), its
    /// coordinators loaded, no listener.
    pub async fn broker_with(dir: &std::path::Path, mut config: Config) -> Arc<Broker> {
        config.groups.offsets_topic_num_partitions = 1;
        config.groups.group_initial_rebalance_delay_ms = 0;
        let broker = bare_broker(dir, config);
        crate::group::GroupCoordinator::load(&broker).expect("load groups");
        crate::txn::TransactionCoordinator::load(&broker)
            .await
            .expect("load transactions");
        broker
    }

    /// A broker over `dir` with default config.
    pub async fn broker_in(dir: &std::path::Path) -> Arc<Broker> {
        broker_with(dir, Config::default()).await
    }

    /// Creates `name` with `partitions` partitions and default configs.
    pub async fn create_topic(broker: &Arc<Broker>, name: &str, partitions: i32) {
        let topic = crate::controller::NewTopic {
            name: name.to_owned(),
            num_partitions: partitions,
            replication_factor: -1,
            configs: Vec::new(),
        };
        let result = crate::controller::create_topics(broker, vec![topic], false).await;
        assert!(
            result.iter().all(|r| r.is_ok()),
            "create {name}: {result:?}"
        );
    }

    /// Removes `name` from the metadata and its partition logs, without the
    /// checks clients go through (internal topics cannot be deleted by them):
    /// simulates state lost underneath a coordinator.
    pub async fn remove_topic_bypassing_checks(broker: &Arc<Broker>, name: &str) {
        let image = broker
            .metadata
            .commit(|image| {
                let topic = image.topics.get(name).expect("topic exists");
                Ok::<_, ()>(vec![crate::metadata::MetadataRecord::RemoveTopic {
                    topic_id: topic.topic_id,
                }])
            })
            .await
            .expect("metadata log")
            .expect("change");
        broker.replicas.sync_with(&image, false).expect("sync");
    }

    /// One uncompressed batch of `count` small records.
    pub fn batch(count: usize) -> bytes::Bytes {
        let mut builder = sluice_records::BatchBuilder::new();
        for i in 0..count {
            builder = builder.record(sluice_records::NewRecord {
                key: None,
                value: Some(bytes::Bytes::from(format!("v{i}"))),
                headers: vec![],
                timestamp_ms: crate::metadata::now_ms(),
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
        crate::metadata::now_ms()
    }

    /// The request context of an anonymous local client.
    pub fn ctx() -> crate::handlers::RequestContext {
        crate::handlers::RequestContext {
            peer: "127.0.0.1:1".parse().expect("addr"),
            principal: crate::Principal::anonymous(),
        }
    }
}
