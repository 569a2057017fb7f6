//! `sluice serve`: wires the pieces into one running broker.
//!
//! Start-up order: lock the data directory, bind the Kafka listener (a port
//! conflict fails fast), open and recover every log ([`Broker::open`]),
//! replay the coordinators, start the HTTP listener and the housekeeping
//! task, then serve Kafka clients. Shutdown runs the other way: one signal
//! (the [`Tasks`] set's token) stops the listeners and every background
//! task; in-flight requests finish, the background tasks are awaited
//! (bounded), and every log is flushed.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_broker::config::{ClientAuth, Config, ConfigError, SecurityProtocol};
use sluice_broker::datadir::{DataDir, DataDirError};
use sluice_broker::server::{ListenerInfo, Server};
use sluice_broker::tls::{
    ControllerTls, ServerTls, TlsAcceptor, TlsError, inter_broker_client_config,
};
use sluice_broker::{Advertised, AdvertisedListener, Broker, BrokerError, cluster};
use sluice_metadata::{MetadataError, MetadataLog};
use sluice_quorum::{ClientTransport, Quorum, QuorumConfig, ServerTlsSource};
use sluice_replica::OFFLINE_RETRY_INTERVAL_MS;
use sluice_runtime::{CancellationToken, Tasks};

/// How long shutdown waits for the background tasks (housekeeping, group
/// timers, offset retention, transaction expiry) to stop. Timers stop at
/// once; housekeeping first finishes the disk pass it is in, and a
/// retention pass over many partitions can take seconds. Past this the
/// broker logs the stragglers and flushes anyway, rather than hang.
const BACKGROUND_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Why the broker could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The data directory is unusable or locked.
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    /// The logs or the coordinators could not be recovered.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// The HTTP listener could not start.
    #[error(transparent)]
    Http(#[from] sluice_http::StartError),
    /// The Kafka listener could not bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The `[tls]` certificate, key or CA files do not load.
    #[error("TLS: {0}")]
    Tls(#[source] TlsError),
    /// The final flush at shutdown failed: some data may not be durable.
    #[error("final flush at shutdown failed: {0}")]
    ShutdownFlush(#[source] sluice_log::LogError),
    /// The metadata log could not be flushed at shutdown.
    #[error("final flush of the metadata log failed: {0}")]
    MetadataFlush(#[source] MetadataError),
    /// Config problem found at start.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Encryption at rest refuses this data directory (missing or wrong key,
    /// or encrypted data with encryption off).
    #[error("encryption at rest: {0}")]
    Encryption(#[from] sluice_log::EncryptionError),
    /// The metadata quorum could not start.
    #[error("metadata quorum: {0}")]
    Quorum(#[from] sluice_quorum::QuorumError),
    /// A former single node could not add its metadata to the cluster.
    #[error("cannot add this node's metadata to the cluster: {}", .0.message)]
    Import(sluice_metadata::ApiError),
}

/// Opens the data directory, recovers every log, serves Kafka clients until
/// `shutdown` resolves, then drains connections and flushes the logs.
pub async fn run(mut config: Config, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
    tokio::pin!(shutdown);
    if config.log.max_open_files > 0 {
        let bound = usize::try_from(config.log.max_open_files).unwrap_or(usize::MAX);
        sluice_log::FileCache::global().set_max_open_files(bound);
    }
    tracing::info!(
        max_open_files = sluice_log::FileCache::global().max_open_files(),
        "segment file cache bound"
    );
    let data_dir = DataDir::open(&config.data_dir)?;
    // Before any log opens: the data directory's marker must agree with the
    // configured keys, so a missing or wrong key stops the start naming
    // its id instead of failing reads later.
    let keyring = config.encryption_keyring()?;
    sluice_log::encryption::check_data_dir(&config.data_dir, keyring.as_deref())?;
    if let Some(k) = &keyring {
        tracing::info!(
            active_key_id = k.active_key_id(),
            key_ids = ?k.key_ids(),
            "encryption at rest is on"
        );
    }
    config.log.encryption = keyring;
    tracing::info!(data_dir = %config.data_dir.display(), node_id = config.node_id, "opening data directory");

    // Every Kafka listener is bound before anything else starts, so a
    // port conflict fails fast; a listener without an advertised address
    // advertises the address it bound.
    let mut bound = Vec::new();
    for listener in config.listeners()? {
        let bind_error = |source| ServeError::Bind {
            addr: format!("{}://{}", listener.name, listener.bind),
            source,
        };
        let tcp = tokio::net::TcpListener::bind(listener.bind)
            .await
            .map_err(bind_error)?;
        let local = tcp.local_addr().map_err(bind_error)?;
        bound.push((listener, tcp, local));
    }
    let endpoints = bound
        .iter()
        .map(|(listener, _, local)| {
            let (host, port) = listener
                .advertised
                .clone()
                .unwrap_or_else(|| (local.ip().to_string(), local.port()));
            AdvertisedListener {
                name: listener.name.clone(),
                host,
                port,
                security_protocol: listener.security_protocol,
            }
        })
        .collect();
    let advertised =
        Advertised::new(endpoints, &config.inter_broker_listener()?).ok_or_else(|| {
            ConfigError::Invalid {
                key: "listeners".into(),
                message: "names no listener".into(),
            }
        })?;
    // TLS files load before any log is opened: a bad certificate fails
    // the start at once.
    let tls = if bound.iter().any(|(l, _, _)| l.security_protocol.uses_tls()) {
        Some(Arc::new(
            ServerTls::load(&config.tls).map_err(ServeError::Tls)?,
        ))
    } else {
        None
    };
    let cluster_id = data_dir.cluster_id()?;
    let (quorum, controller_tls) = start_quorum(&config, &cluster_id).await?;
    let broker = Arc::new(match &quorum {
        Some(q) => Broker::open_with(
            config,
            cluster_id,
            advertised,
            Arc::clone(q) as Arc<dyn MetadataLog>,
            Some(Arc::clone(q)),
        )?,
        None => Broker::open(config, cluster_id, advertised)?,
    });
    tracing::info!(partitions = broker.replicas.all().len(), "logs recovered");
    // The one shutdown signal: every listener, connection and background
    // task watches this set's token.
    let tasks = Tasks::new();
    if let Some(tls) = &tls {
        let tls = Arc::clone(tls);
        tasks.spawn_with_shutdown("tls-reload", move |stop| tls.run_reload(stop));
    }
    if let Some(tls) = controller_tls {
        tasks.spawn_with_shutdown("controller-tls-reload", move |stop| tls.run_reload(stop));
    }
    // This broker's registration epoch, once registered (for the
    // controlled shutdown).
    let registered = Arc::new(std::sync::atomic::AtomicI64::new(-1));
    if let Some(q) = &quorum {
        let service = cluster::ControllerService::new(&broker, Arc::clone(q));
        q.set_control_handler(Arc::new(service.clone()));
        tasks.spawn_with_shutdown("leader-balance", {
            let (b, q) = (Arc::clone(&broker), Arc::clone(q));
            move |stop| sluice_broker::leader_balance::run_leader_balance(b, q, stop)
        });
        let (b, q) = (Arc::clone(&broker), Arc::clone(q));
        let r = Arc::clone(&registered);
        let (caught_up, mut caught_up_rx) = tokio::sync::watch::channel(false);
        tasks.spawn_with_shutdown("broker-lifecycle", move |stop| {
            cluster::run_lifecycle(b, q, service, r, caught_up, stop)
        });
        // The metadata on disk is as old as this node's last run: it may
        // still name this node leader of partitions and coordinator of
        // groups that moved while it was away. Nothing is served from it
        // (no Kafka request, no coordinator load) until the controller
        // says this node caught up, as a Kafka broker waits for its
        // initial metadata catch-up. The listener is bound already, so
        // clients' connections wait in its backlog meanwhile.
        tracing::info!("catching up with the cluster's metadata before serving");
        tokio::select! {
            caught = caught_up_rx.wait_for(|&up| up) => {
                if caught.is_err() {
                    tracing::warn!("the broker lifecycle stopped before this node caught up");
                }
            }
            () = &mut shutdown => {
                tracing::info!("shutting down before this node caught up");
                tasks.token().cancel();
                if let Err(e) = tasks.shutdown(BACKGROUND_SHUTDOWN_GRACE).await {
                    tracing::error!("{e}");
                }
                stop_quorum(&quorum).await;
                return Ok(());
            }
        }
        tracing::info!("caught up with the cluster's metadata");
        let strays = broker
            .replicas
            .remove_stray_replicas(&broker.metadata.image());
        if strays > 0 {
            tracing::info!(
                strays,
                "removed replicas moved off this node while it was down"
            );
        }
    }
    broker.load_coordinators(&tasks).await?;
    // In a cluster, a producer id block held from the start: InitProducerId
    // may reach any broker, and one cut off from the controller still
    // answers it. A single node is its own controller and reserves on
    // demand, so a restart writes nothing to its metadata log.
    if quorum.is_some() {
        tasks.spawn_with_shutdown("producer-id-prefetch", {
            let ids = Arc::clone(&broker.producer_ids);
            move |stop| async move { ids.prefetch_until_held(stop).await }
        });
    }
    // `[[sasl.bootstrap_users]]`: the first users, before any client can
    // authenticate. A failure is logged; the broker serves anyway.
    if let Err(e) = sluice_broker::sasl::bootstrap::write_bootstrap_users(&broker).await {
        tracing::error!("bootstrap SASL users: {e}");
    }
    let b = Arc::clone(&broker);
    tasks.spawn_with_shutdown("replication", move |stop| {
        sluice_broker::replication::run(b, stop)
    });

    // With `http_auth` on, the HTTP API checks passwords against the SCRAM
    // users and decisions against the same ACL authorizer as the Kafka
    // listeners.
    let http_security = broker.config.http_auth.enabled.then(|| {
        Arc::new(sluice_http::broker_security::BrokerSecurity::new(&broker))
            as Arc<dyn sluice_http::auth::HttpSecurity>
    });
    let http = sluice_http::start(&broker, http_security.clone(), tasks.token().clone()).await?;
    // Joined at shutdown like `http`; `None` when the listener is off.
    let registry =
        sluice_http::start_registry(&broker, http_security, tasks.token().clone()).await?;
    let b = Arc::clone(&broker);
    tasks.spawn_with_shutdown("housekeeping", move |stop| housekeeping(b, stop));
    if broker.config.log.cleaner_enable {
        let b = Arc::clone(&broker);
        tasks.spawn_with_shutdown("log-cleaner", move |stop| log_cleaner(b, stop));
    }
    // One server per listener; they share the connection limit and the
    // request budget, which bound the broker as a whole.
    let mut servers: Vec<std::pin::Pin<Box<dyn Future<Output = ()> + Send>>> = Vec::new();
    let mut first: Option<Server> = None;
    for (listener, tcp, local) in bound {
        let info = ListenerInfo::new(&listener.name, listener.security_protocol);
        let mut server = Server::for_listener(Arc::clone(&broker), info, tasks.token().clone());
        if let Some(first) = &first {
            server = server.sharing_limits_with(first);
        } else {
            first = Some(server.clone());
        }
        tracing::info!(
            listener = %local,
            name = %listener.name,
            security_protocol = %listener.security_protocol,
            "kafka listener up"
        );
        match (&tls, listener.security_protocol.uses_tls()) {
            (Some(tls), true) => {
                let acceptor = TlsAcceptor::new(tcp, Arc::clone(tls));
                servers.push(Box::pin(async move { server.serve(acceptor).await }));
            }
            _ => servers.push(Box::pin(async move { server.serve(tcp).await })),
        }
    }
    let server = futures::future::join_all(servers);
    tokio::pin!(server);
    http.set_ready(true);
    tokio::select! {
        _ = &mut server => {}
        () = &mut shutdown => {
            if let Some(q) = &quorum {
                let epoch = registered.load(std::sync::atomic::Ordering::Acquire);
                cluster::controlled_shutdown(q, broker.config.node_id, epoch).await;
            }
            tracing::info!("shutting down: no new connections, finishing in-flight requests");
            tasks.token().cancel();
            server.await;
        }
    }
    if let Err(e) = tasks.shutdown(BACKGROUND_SHUTDOWN_GRACE).await {
        tracing::error!("{e}; flushing anyway");
    }
    http.join().await;
    if let Some(registry) = registry {
        registry.join().await;
    }
    stop_quorum(&quorum).await;
    // Flush everything even if one log fails, then report the failure: a
    // shutdown that could not make acknowledged data durable is not clean.
    let flushed = broker.replicas.flush_all();
    let metadata_flushed = broker.metadata.flush();
    drop(data_dir);
    flushed.map_err(ServeError::ShutdownFlush)?;
    metadata_flushed.map_err(ServeError::MetadataFlush)?;
    tracing::info!("logs flushed; bye");
    Ok(())
}

/// Stops this node's quorum member, if it runs one.
async fn stop_quorum(quorum: &Option<Arc<Quorum>>) {
    if let Some(q) = quorum {
        q.shutdown().await;
    }
}

/// The quorum member and, with an SSL controller listener, the TLS
/// config it serves (reloaded like the Kafka listeners').
type StartedQuorum = (Option<Arc<Quorum>>, Option<Arc<ServerTls>>);

/// Starts this node's quorum member when `cluster.voters` is set, and on
/// a former single node's first start in a cluster adds its metadata.
async fn start_quorum(config: &Config, cluster_id: &str) -> Result<StartedQuorum, ServeError> {
    let Some(voters) = config.voters()? else {
        return Ok((None, None));
    };
    let listen = config
        .controller_listener
        .clone()
        .ok_or_else(|| ConfigError::Invalid {
            key: "controller_listener".into(),
            message: "is required when cluster.voters is set".into(),
        })?;
    let mut quorum_config =
        QuorumConfig::new(config.node_id, config.data_dir.clone(), listen, voters);
    if let Some(advertised) = config.controller_advertised() {
        advertised.clone_into(&mut quorum_config.advertised);
    }
    quorum_config.election_timeout_ms = config.cluster.election_timeout_ms;
    quorum_config.heartbeat_interval_ms = config.cluster.heartbeat_interval_ms;
    quorum_config.snapshot_every_entries = config.cluster.snapshot_entries;
    // The Raft log and snapshots hold the cluster's metadata: they are
    // sealed with the same keys as the segments.
    quorum_config.encryption = config.log.encryption.clone();
    // Mutual TLS: this node serves its certificate and requires one from
    // `tls.client_ca_file` of every peer; as a client it checks the peer
    // against `tls.ca_file` and presents the same certificate.
    let controller_tls = if config.controller_security_protocol == SecurityProtocol::Ssl {
        let server = Arc::new(
            ServerTls::load_with(&config.tls, ClientAuth::Required).map_err(ServeError::Tls)?,
        );
        let client = inter_broker_client_config(&config.tls).map_err(ServeError::Tls)?;
        quorum_config.client_transport = ClientTransport::Tls(Arc::new(client));
        let members = config
            .authorizer
            .enabled
            .then(|| config.super_users.clone());
        let controller = ControllerTls::new(Arc::clone(&server), members);
        quorum_config.server_tls = Some(Arc::new(controller) as Arc<dyn ServerTlsSource>);
        Some(server)
    } else {
        None
    };
    let quorum = Quorum::start(quorum_config).await?;
    cluster::import_local_metadata(config, cluster_id, &quorum)
        .await
        .map_err(ServeError::Import)?;
    Ok((Some(quorum), controller_tls))
}

/// The cleaner's pause after a clean before it looks for the next log.
const CLEANER_RECHECK: Duration = Duration::from_millis(50);

/// The log cleaner (Kafka's `LogCleaner`, one thread): cleans the
/// dirtiest compacted log, again at once while logs need it, else sleeps
/// `log.cleaner_backoff_ms`. Its key → offset map is taken once, sized by
/// `log.cleaner_dedupe_buffer_bytes`, and reused by every clean; its disk
/// traffic is paced to `log.cleaner_io_max_bytes_per_second`. A clean
/// in progress finishes before `stop` is honoured: it is crash-safe, but
/// finishing costs less than redoing it.
async fn log_cleaner(broker: Arc<Broker>, stop: CancellationToken) {
    let backoff = Duration::from_millis(broker.config.log.cleaner_backoff_ms);
    let entries = sluice_log::cleaner::OffsetMap::capacity_for_bytes(
        usize::try_from(broker.config.log.cleaner_dedupe_buffer_bytes).unwrap_or(usize::MAX),
    );
    let map = Arc::new(std::sync::Mutex::new((
        sluice_log::cleaner::OffsetMap::with_capacity(entries),
        sluice_log::compaction::IoThrottle::new(Some(
            broker.config.log.cleaner_io_max_bytes_per_second,
        )),
    )));
    loop {
        let b = Arc::clone(&broker);
        let m = Arc::clone(&map);
        let cleaned = sluice_runtime::blocking("log-cleaner", move || {
            let mut guard = m.lock().unwrap_or_else(|p| p.into_inner());
            let (map, throttle) = &mut *guard;
            b.replicas
                .clean_dirtiest(map, throttle, sluice_metadata::now_ms())
                .is_some()
        })
        .await
        .unwrap_or(false);
        // After a clean, look again soon (more logs may be due), but never
        // spin: a log the cleaner cannot move on must not cost a core.
        let pause = if cleaned { CLEANER_RECHECK } else { backoff };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// Periodic retention, time-based rolls, timed flushes, and retries of
/// offline logs, until `stop` is cancelled. A pass in progress finishes
/// first: its blocking disk work could not be cut short anyway, and the
/// final flush must not race it.
async fn housekeeping(broker: Arc<Broker>, stop: CancellationToken) {
    let retention = Duration::from_millis(broker.config.log.retention_check_interval_ms);
    // Timed flushes (flush.ms) need a finer tick than retention checks.
    let tick = retention.min(Duration::from_secs(1));
    let mut next_retention = Instant::now() + retention;
    let offline_retry = Duration::from_millis(OFFLINE_RETRY_INTERVAL_MS);
    let mut next_offline_retry = Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            () = stop.cancelled() => return,
        }
        let now = sluice_metadata::now_ms();
        let b = Arc::clone(&broker);
        let run_retention = Instant::now() >= next_retention;
        if run_retention {
            next_retention = Instant::now() + retention;
        }
        let retry_offline = Instant::now() >= next_offline_retry;
        if retry_offline {
            next_offline_retry = Instant::now() + offline_retry;
        }
        let pass = sluice_runtime::blocking("housekeeping-pass", move || {
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
        // A panic is already logged and counted; the next tick tries again.
        if let Err(e) = pass {
            tracing::debug!("housekeeping pass: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn housekeeping_and_the_coordinator_tasks_stop_on_the_one_shutdown_signal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = Config {
            data_dir: dir.path().to_owned(),
            ..Config::default()
        };
        let advertised = ("127.0.0.1".to_owned(), 9092);
        let broker = Arc::new(Broker::open(config, "test".to_owned(), advertised).expect("broker"));
        let tasks = Tasks::new();
        broker.load_coordinators(&tasks).await.expect("load");
        let b = Arc::clone(&broker);
        tasks.spawn_with_shutdown("housekeeping", move |stop| housekeeping(b, stop));
        // Housekeeping, offset retention and transaction expiry.
        assert_eq!(tasks.running(), 3);
        tasks
            .shutdown(Duration::from_secs(10))
            .await
            .expect("every background task stops");
        assert_eq!(tasks.running(), 0);
    }
}
