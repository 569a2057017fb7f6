//! The broker as a member of a cluster.
//!
//! - Admin requests that change metadata go to the active controller (the
//!   quorum's leader). A broker that is not the leader forwards the
//!   request frame as it came (Kafka's request forwarding, KIP-590), the
//!   leader runs its own handler on it, and the broker answers with the
//!   leader's response once its own image shows the change.
//! - Every broker registers with the active controller at start and
//!   heartbeats to it ([`run_lifecycle`]); the controller fences a broker
//!   whose heartbeats stop for `broker.session_timeout_ms`
//!   ([`ControllerService`]), which moves its partitions' leadership.
//! - A node that was a single node before (its own metadata log, no
//!   quorum) adds its topics to the cluster the first time it starts in
//!   one ([`import_local_metadata`]).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use sluice_metadata::balance::{
    self, BalancerConfig, BrokerHealth, ProgressMeter, ReplicaSize, ReplicaSizes,
};
use sluice_metadata::codec::{self, Decoded};
use sluice_metadata::controller::{ControllerCall, ControllerRemote, ControllerReply};
use sluice_metadata::placement::BrokerRegistration;
use sluice_metadata::{ApiError, LocalMetadataLog, MetadataImage, MetadataRecord};
use sluice_protocol::error::codes;
use sluice_quorum::Quorum;
use sluice_quorum::quorum::ControlHandler;
use sluice_quorum::wire::{ControlRequest, ControlResponse};
use sluice_runtime::CancellationToken;
use uuid::Uuid;

use crate::handlers::{self, RequestContext};
use crate::{Broker, Principal};

pub use crate::context::FORWARDED_LISTENER;

/// Marker file: this node's single-node metadata was added to the cluster.
const IMPORTED_MARKER: &str = "__raft/imported-local-metadata";

/// How long start-up waits for the cluster to accept this node's old
/// metadata before giving up (the node must not serve without it).
const IMPORT_TIMEOUT_MS: u64 = 60_000;

/// A heartbeat session, as the active controller tracks it.
#[derive(Debug, Clone, Copy)]
struct Session {
    last_seen: Instant,
    /// The broker is caught up once it has applied this entry.
    catch_up_to: u64,
    /// It asked for a controlled shutdown: it stays fenced until it
    /// registers again.
    shutting_down: bool,
    /// It has heartbeated (or registered) since this controller took over.
    /// Until then the session is a placeholder with a short grace period.
    heard: bool,
    /// Its data disk's use, from its last heartbeat.
    disk_used_percent: Option<u8>,
}

/// What the last heartbeats reported beyond liveness, by broker.
#[derive(Debug, Default)]
struct Reports {
    /// Sizes of replicas of partitions being moved.
    sizes: ReplicaSizes,
    /// The moves' copy rate.
    meter: ProgressMeter,
}

impl Session {
    /// A session for a broker not heard from yet in this term.
    fn placeholder(shutting_down: bool) -> Session {
        Session {
            last_seen: Instant::now(),
            catch_up_to: 0,
            shutting_down,
            heard: false,
            disk_used_percent: None,
        }
    }
}

/// The grace a new active controller gives a broker it has not heard from
/// yet, in heartbeat intervals. A live broker finds the new controller
/// within a Raft heartbeat or two and heartbeats at once; a dead one (often
/// the old controller itself) is fenced after this rather than after a full
/// session timeout, so its partitions move within the failover target.
const NEW_CONTROLLER_GRACE_HEARTBEATS: u64 = 2;

/// Lower bound of that grace, for very short heartbeat intervals.
const NEW_CONTROLLER_GRACE_MIN_MS: u64 = 1_000;

/// A broker this many heartbeat intervals late (or one a new controller has
/// not heard from yet) is probed: the controller connects to its Kafka
/// listener. A refused connection means no process
/// listens there (it was killed, or crashed), so the broker is fenced at
/// once instead of at the end of its session, and its partitions move
/// about two seconds sooner. Anything else (a connection, a timeout, an
/// unreachable network) proves nothing, and the session decides: a hung
/// process still has its socket accepted by the kernel.
const PROBE_AFTER_HEARTBEATS: u64 = 2;

/// Shortest wait for the controller's answer to a registration or a
/// heartbeat; otherwise one heartbeat interval.
const LIFECYCLE_CALL_MIN_TIMEOUT_MS: u64 = 1_000;

/// Time allowed for one probe's connect.
const PROBE_TIMEOUT_MS: u64 = 250;

/// How many broker sessions this broker may go without reaching the
/// controller before it suspends its leadership. After one session the
/// controller fences it and elects other leaders for its partitions; after
/// two, its own view of who leads is certainly stale, and answering
/// Produce and Metadata from it would keep clients on a leader nobody
/// follows (REQUEST_TIMED_OUT, which no client takes as a reason to
/// refresh its metadata). Kafka's brokers keep serving then; ours send
/// clients elsewhere (docs/design.md, "A broker cut off from the
/// controller").
const LEADERSHIP_LEASE_SESSIONS: u32 = 2;

/// When this broker last reached the controller, and whether that was
/// long enough ago to suspend its leadership.
#[derive(Debug)]
struct ControllerContact {
    last: Instant,
    lease: Duration,
}

impl ControllerContact {
    fn new(now: Instant, session: Duration) -> ControllerContact {
        ControllerContact {
            last: now,
            lease: session * LEADERSHIP_LEASE_SESSIONS,
        }
    }

    /// Records one registration or heartbeat round (`reached`: the
    /// controller answered, and, when this node is the controller, a
    /// quorum confirmed it still is). Returns the new suspension state
    /// when it changes.
    fn observe(&mut self, reached: bool, now: Instant, suspended: bool) -> Option<bool> {
        if reached {
            self.last = now;
            return suspended.then_some(false);
        }
        (!suspended && now.saturating_duration_since(self.last) >= self.lease).then_some(true)
    }
}

/// True if `host:port` actively refuses a TCP connection (nothing listens).
async fn refuses_connections(host: &str, port: i32) -> bool {
    let Ok(port) = u16::try_from(port) else {
        return false;
    };
    let connect = tokio::net::TcpStream::connect((host, port));
    matches!(
        tokio::time::timeout(Duration::from_millis(PROBE_TIMEOUT_MS), connect).await,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused
    )
}

/// Heartbeat sessions by broker id, with the term they were started in.
type Sessions = (u64, HashMap<i32, Session>);

/// The active controller's side of the control requests. Cheap to clone;
/// clones share the sessions.
#[derive(Debug, Clone)]
pub struct ControllerService {
    broker: Weak<Broker>,
    quorum: Arc<Quorum>,
    /// A new leader starts every session afresh (a grace period of one
    /// session timeout), as KRaft's controller does.
    sessions: Arc<Mutex<Sessions>>,
    /// When the balancer last planned.
    last_balance: Arc<Mutex<Option<Instant>>>,
    /// Replica sizes and the moves' copy rate.
    reports: Arc<Mutex<Reports>>,
}

impl ControllerService {
    /// The service for `broker`'s quorum member.
    pub fn new(broker: &Arc<Broker>, quorum: Arc<Quorum>) -> ControllerService {
        ControllerService {
            broker: Arc::downgrade(broker),
            quorum,
            sessions: Arc::new(Mutex::new((0, HashMap::new()))),
            last_balance: Arc::new(Mutex::new(None)),
            reports: Arc::new(Mutex::new(Reports::default())),
        }
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, Sessions> {
        let mut guard = self
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let term = self.quorum.term();
        if guard.0 != term {
            *guard = (term, HashMap::new());
        }
        guard
    }

    fn touch(&self, broker_id: i32, catch_up_to: Option<u64>) -> Session {
        let mut sessions = self.sessions();
        let published = self.quorum.published_index();
        let session = sessions.1.entry(broker_id).or_insert(Session {
            catch_up_to: published,
            ..Session::placeholder(false)
        });
        session.last_seen = Instant::now();
        session.heard = true;
        if let Some(index) = catch_up_to {
            // A registration: a new incarnation, which may lead again.
            session.catch_up_to = index;
            session.shutting_down = false;
        }
        *session
    }

    /// Gives the cluster an id if it has none yet: this node's (the first
    /// active controller's). Runs on the leader.
    async fn ensure_cluster_id(&self, broker: &Broker) {
        if broker.metadata.image().cluster_id.is_some() {
            return;
        }
        let cluster_id = broker.cluster_id.clone();
        let change = Box::new(move |image: &MetadataImage| {
            Ok(match image.cluster_id {
                Some(_) => Vec::new(),
                None => vec![MetadataRecord::ClusterId { cluster_id }],
            })
        });
        if let Err(e) = broker.controller.commit(change).await {
            tracing::warn!("cannot record the cluster id: {}", e.message);
        }
    }

    /// Fences every live broker whose session lapsed. Runs on the leader.
    async fn expire_sessions(&self, broker: &Broker) {
        let config = &broker.config.broker;
        let timeout = Duration::from_millis(config.session_timeout_ms);
        let grace = Duration::from_millis(
            (config.heartbeat_interval_ms * NEW_CONTROLLER_GRACE_HEARTBEATS)
                .max(NEW_CONTROLLER_GRACE_MIN_MS)
                .min(config.session_timeout_ms),
        );
        let probe_after =
            Duration::from_millis(config.heartbeat_interval_ms * PROBE_AFTER_HEARTBEATS);
        let image = broker.metadata.image();
        let (expired, suspects): (Vec<i32>, Vec<(i32, String, i32)>) = {
            let mut sessions = self.sessions();
            let mut expired = Vec::new();
            let mut suspects = Vec::new();
            for b in image.live_brokers() {
                let session = sessions
                    .1
                    .entry(b.broker_id)
                    .or_insert(Session::placeholder(false));
                let silent = session.last_seen.elapsed();
                let limit = if session.heard { timeout } else { grace };
                if silent > limit {
                    expired.push(b.broker_id);
                } else if (silent > probe_after || !session.heard)
                    && b.broker_id != broker.config.node_id
                {
                    // A new controller probes brokers it has not heard from
                    // at once: the old controller is often the one that died.
                    suspects.push((b.broker_id, b.host.clone(), b.port));
                }
            }
            (expired, suspects)
        };
        for id in expired {
            tracing::warn!(broker = id, "broker session expired; fencing it");
            if let Err(e) = broker.controller.fence_broker(id).await {
                tracing::warn!(broker = id, "cannot fence: {}", e.message);
            }
        }
        let probes = suspects.into_iter().map(|(id, host, port)| async move {
            refuses_connections(&host, port).await.then_some(id)
        });
        for id in futures::future::join_all(probes)
            .await
            .into_iter()
            .flatten()
        {
            tracing::warn!(
                broker = id,
                "broker missed its heartbeats and nothing listens on its port: it is gone; fencing it"
            );
            if let Err(e) = broker.controller.fence_broker(id).await {
                tracing::warn!(broker = id, "cannot fence: {}", e.message);
            }
        }
    }

    fn reports(&self) -> std::sync::MutexGuard<'_, Reports> {
        self.reports
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn record_sizes(&self, broker_id: i32, sizes: Vec<ReplicaSize>) {
        let sizes = sizes
            .into_iter()
            .take(balance::MAX_REPORTED_REPLICA_SIZES)
            .map(|s| ((s.topic, s.partition), s.size_bytes))
            .collect();
        self.reports().sizes.insert(broker_id, sizes);
    }

    fn record_disk_use(&self, broker_id: i32, disk_used_percent: Option<u8>) {
        if let Some(session) = self.sessions().1.get_mut(&broker_id) {
            session.disk_used_percent = disk_used_percent;
        }
    }

    /// What the sessions say about each registered broker: lost (fenced
    /// and silent for `balancer.lost_broker_timeout_ms`, counted from this
    /// controller's start for brokers it never heard from) and disk use.
    fn health(&self, broker: &Broker) -> BTreeMap<i32, BrokerHealth> {
        let lost_after = Duration::from_millis(broker.config.balancer.lost_broker_timeout_ms);
        let image = broker.metadata.image();
        let mut sessions = self.sessions();
        image
            .brokers
            .values()
            .map(|b| {
                let session = sessions
                    .1
                    .entry(b.broker_id)
                    .or_insert(Session::placeholder(false));
                let health = BrokerHealth {
                    lost: b.fenced && session.last_seen.elapsed() > lost_after,
                    disk_used_percent: session.disk_used_percent,
                };
                (b.broker_id, health)
            })
            .collect()
    }

    /// The balancer's round, every `balancer.interval_ms` on the leader:
    /// starts the moves [`balance::plan`] asks for as reassignments.
    async fn balance(&self, broker: &Broker) {
        let config = &broker.config.balancer;
        {
            let mut last = self
                .last_balance
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.is_some_and(|at| at.elapsed() < Duration::from_millis(config.interval_ms)) {
                return;
            }
            *last = Some(Instant::now());
        }
        let image = broker.metadata.image();
        {
            // Measured for operators' moves too, with the balancer off.
            let reports = &mut *self.reports();
            reports
                .meter
                .observe(Instant::now(), &image, &reports.sizes);
        }
        if !config.enabled {
            return;
        }
        let health = self.health(broker);
        let plan_config = BalancerConfig {
            max_moves_in_flight: config.max_moves_in_flight as usize,
            imbalance_percent: config.imbalance_percent,
            disk_high_watermark_percent: config.disk_high_watermark_percent,
        };
        let moves = balance::plan(&image, broker.config.node_id, &plan_config, &health);
        if moves.is_empty() {
            return;
        }
        for m in &moves {
            tracing::info!(
                topic = %m.topic,
                partition = m.partition,
                target = ?m.target,
                "balancer: moving partition"
            );
        }
        match broker.controller.alter_partition_reassignments(moves).await {
            Ok(results) => {
                for r in results {
                    if let Err(e) = r.result {
                        tracing::warn!(
                            topic = %r.topic,
                            partition = r.partition,
                            "balancer: move refused: {}",
                            e.message
                        );
                    }
                }
            }
            Err(e) => tracing::warn!("balancer: moves not started: {}", e.message),
        }
    }

    async fn serve(self, request: ControlRequest) -> ControlResponse {
        let Some(broker) = self.broker.upgrade() else {
            return refused(codes::NOT_CONTROLLER, "this node is shutting down");
        };
        match request {
            ControlRequest::Forward {
                principal,
                client,
                frame,
            } => self.run_forwarded(&broker, principal, client, frame).await,
            ControlRequest::RegisterBroker {
                broker_id,
                incarnation_id,
                host,
                port,
                rack,
                endpoints,
            } => {
                if !self.quorum.is_member(broker_id) {
                    return refused(
                        codes::BROKER_ID_NOT_REGISTERED,
                        &format!("node {broker_id} is not a member of the metadata quorum"),
                    );
                }
                let registration = BrokerRegistration {
                    broker_id,
                    incarnation_id,
                    host,
                    port,
                    rack,
                    endpoints,
                };
                match broker.controller.register_broker(registration).await {
                    Ok(epoch) => {
                        self.touch(broker_id, Some(self.quorum.published_index()));
                        tracing::info!(broker = broker_id, epoch, "broker registered");
                        ControlResponse::Registered { epoch }
                    }
                    Err(e) => refused(e.code, &e.message),
                }
            }
            ControlRequest::Heartbeat {
                broker_id,
                epoch,
                applied_index,
                disk_used_percent,
                replica_sizes,
            } => {
                let image = broker.metadata.image();
                let Some(registered) = image.brokers.get(&broker_id) else {
                    return ControlResponse::Heartbeat {
                        fenced: true,
                        reregister: true,
                    };
                };
                if registered.epoch != epoch {
                    return ControlResponse::Heartbeat {
                        fenced: true,
                        reregister: true,
                    };
                }
                let session = self.touch(broker_id, None);
                self.record_disk_use(broker_id, disk_used_percent);
                self.record_sizes(broker_id, replica_sizes);
                let mut fenced = registered.fenced;
                if fenced && !session.shutting_down && applied_index >= session.catch_up_to {
                    match broker.controller.unfence_broker(broker_id).await {
                        Ok(()) => {
                            tracing::info!(broker = broker_id, "broker caught up; unfenced");
                            fenced = false;
                        }
                        Err(e) => {
                            tracing::warn!(broker = broker_id, "cannot unfence: {}", e.message)
                        }
                    }
                }
                ControlResponse::Heartbeat {
                    fenced,
                    reregister: false,
                }
            }
            ControlRequest::Import { records } => import(&broker, records).await,
            ControlRequest::Controller(call) => ControlResponse::Controller {
                reply: broker.controller.serve_call(call).await,
                index: self.quorum.published_index(),
            },
            ControlRequest::ControlledShutdown { broker_id, epoch } => {
                let image = broker.metadata.image();
                if image
                    .brokers
                    .get(&broker_id)
                    .is_none_or(|b| b.epoch != epoch)
                {
                    return refused(
                        codes::STALE_BROKER_EPOCH,
                        &format!("broker {broker_id} is not registered with epoch {epoch}"),
                    );
                }
                {
                    let mut sessions = self.sessions();
                    let session = sessions.1.entry(broker_id).or_insert(Session {
                        heard: true,
                        ..Session::placeholder(true)
                    });
                    session.shutting_down = true;
                }
                tracing::info!(
                    broker = broker_id,
                    "controlled shutdown: moving its leadership away"
                );
                match broker.controller.fence_broker(broker_id).await {
                    Ok(()) => ControlResponse::Committed {
                        index: self.quorum.published_index(),
                    },
                    Err(e) => refused(e.code, &e.message),
                }
            }
            ControlRequest::BalanceStatus => {
                let health = self.health(&broker);
                let reports = self.reports();
                ControlResponse::BalanceStatus(Box::new(balance::status(
                    &broker.metadata.image(),
                    broker.config.balancer.enabled,
                    &health,
                    &reports.sizes,
                    reports.meter.rate_bytes_per_s(),
                )))
            }
            ControlRequest::UnregisterBroker { broker_id } => {
                match broker.controller.unregister_broker(broker_id).await {
                    Ok(()) => ControlResponse::Committed {
                        index: self.quorum.published_index(),
                    },
                    Err(e) => refused(e.code, &e.message),
                }
            }
        }
    }

    async fn run_forwarded(
        &self,
        broker: &Arc<Broker>,
        principal: String,
        client: String,
        frame: Bytes,
    ) -> ControlResponse {
        let (principal_type, name) = principal
            .split_once(':')
            .map_or(("User", principal.as_str()), |(t, n)| (t, n));
        let ctx = RequestContext {
            peer: client
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0))),
            principal: Arc::new(Principal {
                principal_type: principal_type.to_owned(),
                name: name.to_owned(),
            }),
            listener: Arc::from(FORWARDED_LISTENER),
            throttle: Default::default(),
        };
        let reply = match handlers::dispatch(broker, ctx, frame) {
            Ok(reply) => reply,
            Err(e) => return refused(codes::INVALID_REQUEST, &e.to_string()),
        };
        match reply.await.map(|frame| frame.to_contiguous()) {
            Some(Ok(frame)) => ControlResponse::Forwarded {
                frame: frame.freeze(),
                index: self.quorum.published_index(),
            },
            Some(Err(e)) => refused(codes::UNKNOWN_SERVER_ERROR, &e.to_string()),
            None => refused(
                codes::UNKNOWN_SERVER_ERROR,
                "the controller's handler gave no response",
            ),
        }
    }
}

impl ControlHandler for ControllerService {
    fn handle(&self, request: ControlRequest) -> BoxFuture<'static, ControlResponse> {
        Box::pin(self.clone().serve(request))
    }
}

fn refused(code: i16, message: &str) -> ControlResponse {
    ControlResponse::Refused {
        code,
        message: message.to_owned(),
    }
}

/// The way a broker's own code reaches the active controller when that is
/// another node: a control request over the quorum's connections.
#[derive(Debug)]
pub struct QuorumRemote {
    quorum: Arc<Quorum>,
}

impl QuorumRemote {
    /// Routes through `quorum`.
    pub fn new(quorum: Arc<Quorum>) -> QuorumRemote {
        QuorumRemote { quorum }
    }
}

impl ControllerRemote for QuorumRemote {
    fn is_active(&self) -> bool {
        self.quorum.is_leader()
    }

    fn call(&self, call: ControllerCall) -> BoxFuture<'static, Result<ControllerReply, ApiError>> {
        let quorum = Arc::clone(&self.quorum);
        Box::pin(async move {
            match quorum.control(ControlRequest::Controller(call)).await? {
                ControlResponse::Controller { reply, index } => {
                    // Answer once this node's image shows the change.
                    if !quorum.wait_published(index).await {
                        tracing::warn!(
                            index,
                            "answering before this node caught up with the controller"
                        );
                    }
                    Ok(reply)
                }
                ControlResponse::Refused { code, message } => Err(ApiError::new(code, message)),
                other => Err(ApiError::new(
                    codes::NOT_CONTROLLER,
                    format!("the controller answered unexpectedly: {other:?}"),
                )),
            }
        })
    }
}

/// Registers with the active controller, then heartbeats every
/// `broker.heartbeat_interval_ms` until `stop`; registers again whenever
/// the controller says the registration is gone. On the leader, also
/// fences brokers whose sessions lapsed. `caught_up` turns true at the
/// first heartbeat the controller answers unfenced: this node's metadata
/// then holds every change made while it was away.
pub async fn run_lifecycle(
    broker: Arc<Broker>,
    quorum: Arc<Quorum>,
    service: ControllerService,
    registered: Arc<AtomicI64>,
    caught_up: tokio::sync::watch::Sender<bool>,
    stop: CancellationToken,
) {
    let interval = Duration::from_millis(broker.config.broker.heartbeat_interval_ms);
    let call_timeout = interval.max(Duration::from_millis(LIFECYCLE_CALL_MIN_TIMEOUT_MS));
    let mut contact = ControllerContact::new(
        Instant::now(),
        Duration::from_millis(broker.config.broker.session_timeout_ms),
    );
    let incarnation_id = Uuid::new_v4();
    let mut epoch: Option<i64> = None;
    // The first registration and the heartbeat right after it go out at
    // once; failures back off up to one heartbeat interval.
    let mut delay = Duration::ZERO;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        let request = match epoch {
            None => ControlRequest::RegisterBroker {
                broker_id: broker.config.node_id,
                incarnation_id,
                host: broker.advertised.inter_broker().host.clone(),
                port: i32::from(broker.advertised.inter_broker().port),
                rack: broker.config.broker.rack.clone(),
                endpoints: broker.registration_endpoints(),
            },
            Some(epoch) => ControlRequest::Heartbeat {
                broker_id: broker.config.node_id,
                epoch,
                applied_index: quorum.published_index(),
                disk_used_percent: crate::datadir::disk_used_percent(&broker.config.data_dir),
                replica_sizes: moving_replica_sizes(&broker),
            },
        };
        let retry = (delay * 2).clamp(Duration::from_millis(100), interval);
        // A heartbeat to a controller that stopped answering (cut off by
        // the network: no reset, no answer) must not hold this loop, which
        // also fences brokers when this node becomes the controller.
        let answer = match tokio::time::timeout(call_timeout, quorum.control(request)).await {
            Ok(answer) => answer,
            Err(_) => Err(sluice_metadata::ApiError::new(
                codes::REQUEST_TIMED_OUT,
                "the controller did not answer within a heartbeat interval",
            )),
        };
        // On the controller itself the answer is local: it counts only if
        // a quorum still follows this node.
        let reached = matches!(
            answer,
            Ok(ControlResponse::Registered { .. }
                | ControlResponse::Heartbeat { .. }
                | ControlResponse::Refused { .. })
        ) && (!quorum.is_leader() || quorum.confirm_leadership(call_timeout).await);
        let suspended = broker.replicas.leadership_suspended();
        match contact.observe(reached, Instant::now(), suspended) {
            Some(true) => {
                broker.replicas.suspend_leadership(true);
                tracing::warn!(
                    lease_ms = contact.lease.as_millis() as u64,
                    "the controller has been unreachable for twice the broker session: \
                     this broker has been fenced, so it no longer acts as leader for clients"
                );
            }
            Some(false) => {
                broker.replicas.suspend_leadership(false);
                tracing::info!("the controller is reachable again: leadership resumed");
            }
            None => {}
        }
        delay = match answer {
            Ok(ControlResponse::Registered { epoch: e }) => {
                epoch = Some(e);
                registered.store(e, Ordering::Release);
                Duration::ZERO
            }
            Ok(ControlResponse::Heartbeat {
                reregister: true, ..
            }) => {
                tracing::info!("the controller asks this broker to register again");
                epoch = None;
                Duration::ZERO
            }
            Ok(ControlResponse::Heartbeat { fenced: true, .. }) => {
                // Not caught up yet: ask again soon.
                Duration::from_millis(100).min(interval)
            }
            Ok(ControlResponse::Heartbeat { .. }) => {
                caught_up.send_replace(true);
                interval
            }
            Ok(ControlResponse::Refused { code, message }) => {
                tracing::warn!(code, "registration or heartbeat refused: {message}");
                retry
            }
            Ok(other) => {
                tracing::warn!("unexpected controller answer: {other:?}");
                retry
            }
            Err(e) => {
                tracing::info!("controller unreachable: {}", e.message);
                retry
            }
        };
        if quorum.is_leader() {
            service.ensure_cluster_id(&broker).await;
            service.expire_sessions(&broker).await;
            service.balance(&broker).await;
        }
    }
}

/// The sizes of this node's replicas of partitions being moved, for the
/// balance status's progress (at most `MAX_REPORTED_REPLICA_SIZES`).
fn moving_replica_sizes(broker: &Broker) -> Vec<ReplicaSize> {
    let image = broker.metadata.image();
    let node_id = broker.config.node_id;
    image
        .topics
        .iter()
        .flat_map(|(name, t)| t.partitions.iter().map(move |(&p, part)| (name, p, part)))
        .filter(|(_, _, part)| part.reassignment_in_progress() && part.replicas.contains(&node_id))
        .filter_map(|(name, p, _)| {
            let local = broker.replicas.partition(name, p)?;
            Some(ReplicaSize {
                topic: name.clone(),
                partition: p,
                size_bytes: local.log().size_bytes(),
            })
        })
        .take(balance::MAX_REPORTED_REPLICA_SIZES)
        .collect()
}

/// How long a stopping broker waits for the controller to move its
/// leadership away before it stops anyway (clients then wait for the
/// session timeout instead).
pub const CONTROLLED_SHUTDOWN_TIMEOUT_MS: u64 = 10_000;

/// Kafka's controlled shutdown: asks the active controller to fence this
/// broker (registered under `epoch`), which hands every partition it leads
/// to another ISR member, and waits until this node has applied that
/// change, so in-flight and new client requests here are answered
/// NOT_LEADER_OR_FOLLOWER and clients move on before the listener closes.
/// Bounded by [`CONTROLLED_SHUTDOWN_TIMEOUT_MS`]; failures are logged.
pub async fn controlled_shutdown(quorum: &Quorum, broker_id: i32, epoch: i64) {
    if epoch < 0 {
        return;
    }
    let request = ControlRequest::ControlledShutdown { broker_id, epoch };
    let attempt = async {
        match quorum.control(request).await {
            Ok(ControlResponse::Committed { index }) => {
                quorum.wait_published(index).await;
                tracing::info!("controlled shutdown: leadership moved away");
            }
            Ok(ControlResponse::Refused { code, message }) => {
                tracing::warn!(code, "controlled shutdown refused: {message}");
            }
            Ok(other) => tracing::warn!("unexpected controller answer: {other:?}"),
            Err(e) => tracing::warn!("controlled shutdown failed: {}", e.message),
        }
    };
    let limit = Duration::from_millis(CONTROLLED_SHUTDOWN_TIMEOUT_MS);
    if tokio::time::timeout(limit, attempt).await.is_err() {
        tracing::warn!(
            "controlled shutdown did not finish in {CONTROLLED_SHUTDOWN_TIMEOUT_MS} ms; stopping anyway"
        );
    }
}

/// On the first start of a former single node in a cluster, adds its
/// metadata (topics, their partitions and configs, the producer id
/// watermark) to the cluster's, so its partitions' data stays reachable.
/// Blocks start-up until the cluster has it. Idempotent: topics the
/// cluster already has under the same id are skipped.
pub async fn import_local_metadata(
    config: &crate::config::Config,
    cluster_id: &str,
    quorum: &Quorum,
) -> Result<(), ApiError> {
    let dir = &config.data_dir;
    let marker = dir.join(IMPORTED_MARKER);
    if marker.exists() || !dir.join(sluice_metadata::METADATA_LOG_DIR).exists() {
        return Ok(());
    }
    let local = LocalMetadataLog::open_with_encryption(dir, config.log.encryption.clone())
        .map_err(ApiError::from)?;
    let image = local.image();
    drop(local);
    // The cluster keeps this node's id, so clients that knew the single
    // node see the same cluster.
    let mut records = vec![MetadataRecord::ClusterId {
        cluster_id: cluster_id.to_owned(),
    }];
    records.extend(sluice_metadata::snapshot::snapshot_records(&image));
    let records: Vec<Bytes> = records
        .iter()
        .filter(|r| {
            !matches!(
                r,
                MetadataRecord::RegisterBroker { .. }
                    | MetadataRecord::FenceBroker { .. }
                    | MetadataRecord::UnregisterBroker { .. }
            )
        })
        .map(|r| codec::encode(r).map(Bytes::from))
        .collect::<Result<_, _>>()
        .map_err(|e| ApiError::new(codes::UNKNOWN_SERVER_ERROR, e.to_string()))?;
    if !image.topics.is_empty() || image.next_producer_id > 0 {
        tracing::info!(
            topics = image.topics.len(),
            "adding this node's single-node metadata to the cluster"
        );
        let deadline = Instant::now() + Duration::from_millis(IMPORT_TIMEOUT_MS);
        loop {
            let outcome = if quorum.is_leader() {
                // This node leads (a single voter, typically): commit here;
                // nothing else serves control requests yet.
                let decoded = decode_all(&records)?;
                match sluice_metadata::MetadataLog::commit(
                    quorum,
                    Box::new(move |image: &MetadataImage| import_records(image, decoded)),
                )
                .await
                {
                    Ok(Ok(_)) => Ok(ControlResponse::Committed {
                        index: quorum.published_index(),
                    }),
                    Ok(Err(e)) => Ok(refused(e.code, &e.message)),
                    Err(e) => Err(ApiError::from(e)),
                }
            } else {
                quorum
                    .control(ControlRequest::Import {
                        records: records.clone(),
                    })
                    .await
            };
            match outcome {
                Ok(ControlResponse::Committed { index }) => {
                    quorum.wait_published(index).await;
                    break;
                }
                Ok(ControlResponse::Refused { code, message }) if code != codes::NOT_CONTROLLER => {
                    return Err(ApiError::new(code, message));
                }
                other => {
                    if Instant::now() > deadline {
                        return Err(ApiError::new(
                            codes::NOT_CONTROLLER,
                            format!("the cluster did not take this node's metadata: {other:?}"),
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
    std::fs::write(&marker, b"").map_err(|e| {
        ApiError::new(
            codes::KAFKA_STORAGE_ERROR,
            format!("{}: {e}", marker.display()),
        )
    })?;
    Ok(())
}

/// The leader's side of an import: the records of every topic the cluster
/// does not have yet, its ACLs the cluster lacks, and a higher producer id
/// watermark. A topic whose
/// name the cluster uses under another id refuses the whole import.
async fn import(broker: &Broker, encoded: Vec<Bytes>) -> ControlResponse {
    let records = match decode_all(&encoded) {
        Ok(records) => records,
        Err(e) => return refused(e.code, &e.message),
    };
    let change = Box::new(move |image: &MetadataImage| import_records(image, records));
    match broker.controller.commit(change).await {
        Ok(_) => ControlResponse::Committed {
            index: broker.quorum.as_ref().map_or(0, |q| q.published_index()),
        },
        Err(e) => refused(e.code, &e.message),
    }
}

fn decode_all(encoded: &[Bytes]) -> Result<Vec<MetadataRecord>, ApiError> {
    encoded
        .iter()
        .map(|value| match codec::decode(value) {
            Ok(Decoded::Record(r)) => Ok(r),
            Ok(_) | Err(_) => Err(ApiError::new(
                codes::INVALID_REQUEST,
                "an imported record does not decode",
            )),
        })
        .collect()
}

fn import_records(
    image: &MetadataImage,
    records: Vec<MetadataRecord>,
) -> Result<Vec<MetadataRecord>, ApiError> {
    let mut skip = std::collections::HashSet::new();
    let mut out = Vec::new();
    for record in records {
        match &record {
            MetadataRecord::Topic { name, topic_id } => match image.topics.get(name) {
                Some(t) if t.topic_id == *topic_id => {
                    skip.insert(*topic_id);
                    continue;
                }
                Some(_) => {
                    return Err(ApiError::new(
                        codes::TOPIC_ALREADY_EXISTS,
                        format!(
                            "cannot add this node's topic {name}: the cluster has another topic of that name"
                        ),
                    ));
                }
                None => {}
            },
            MetadataRecord::Partition { topic_id, .. }
            | MetadataRecord::TopicConfig { topic_id, .. } => {
                if skip.contains(topic_id) {
                    continue;
                }
            }
            MetadataRecord::ProducerIds { next_producer_id } => {
                if *next_producer_id <= image.next_producer_id {
                    continue;
                }
            }
            MetadataRecord::ClusterId { .. } => {
                if image.cluster_id.is_some() {
                    continue;
                }
            }
            // A single node's SCRAM users come along, unless the cluster
            // already has a credential for that user and mechanism.
            MetadataRecord::UserScramCredential {
                name, mechanism, ..
            } => {
                if image.scram_credential(name, *mechanism).is_some() {
                    continue;
                }
            }
            // The node's ACLs join the cluster's, unless the cluster holds
            // the same ACL already (by id or as an equal binding).
            MetadataRecord::AccessControlEntry { id, acl } => {
                if image.acls.iter().any(|(existing, _)| existing == id)
                    || image.acls.find(acl).is_some()
                {
                    continue;
                }
            }
            _ => continue,
        }
        out.push(record);
    }
    Ok(out)
}

#[cfg(test)]
mod import_tests {
    use sluice_metadata::acl::{
        AclBinding, AclOperation, AclPermission, PatternType, ResourceType,
    };
    use uuid::Uuid;

    use super::*;

    fn acl(name: &str) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: name.to_owned(),
            pattern_type: PatternType::Literal,
            principal: "User:a".to_owned(),
            host: "*".to_owned(),
            operation: AclOperation::Read,
            permission: AclPermission::Allow,
        }
    }

    #[test]
    fn a_growing_node_brings_the_acls_the_cluster_lacks() {
        let entry = |id: u128, name: &str| MetadataRecord::AccessControlEntry {
            id: Uuid::from_u128(id),
            acl: acl(name),
        };
        let cluster = MetadataImage::default()
            .with_change(&[entry(1, "shared")], 0, 1)
            .expect("applies");
        // The node's copy of `shared` under another id, the same id again,
        // and one the cluster lacks.
        let imported = import_records(
            &cluster,
            vec![entry(2, "shared"), entry(1, "shared"), entry(3, "new")],
        )
        .expect("import");
        assert_eq!(imported, [entry(3, "new")]);
        let after = cluster.with_change(&imported, 1, 2).expect("applies");
        assert_eq!(after.acls.len(), 2);
    }
}

#[cfg(test)]
mod contact_tests {
    use super::*;

    /// Leadership is suspended once the controller has been out of reach
    /// for the lease (two sessions), not before, and resumed by the first
    /// round that reaches it; a round that reaches it resets the clock.
    #[test]
    fn leadership_is_suspended_after_two_sessions_without_the_controller() {
        let start = Instant::now();
        let session = Duration::from_secs(3);
        let mut contact = ControllerContact::new(start, session);
        let at = |ms: u64| start + Duration::from_millis(ms);
        assert_eq!(contact.observe(false, at(500), false), None);
        assert_eq!(contact.observe(false, at(5_999), false), None);
        assert_eq!(contact.observe(false, at(6_000), false), Some(true));
        // Already suspended: nothing changes while still out of reach.
        assert_eq!(contact.observe(false, at(9_000), true), None);
        assert_eq!(contact.observe(true, at(9_500), true), Some(false));
        assert_eq!(contact.observe(true, at(10_000), false), None);
        // The clock restarted at the last contact.
        assert_eq!(contact.observe(false, at(15_999), false), None);
        assert_eq!(contact.observe(false, at(16_000), false), Some(true));
    }
}
