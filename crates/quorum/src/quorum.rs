//! [`Quorum`]: one node's member of the metadata quorum. It starts Raft
//! over the [`LogStore`] and [`MetadataStateMachine`], serves the
//! controller listener, publishes applied entries to listeners, and is
//! the [`MetadataLog`] the controller commits through.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use futures::future::BoxFuture;
use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers, Config, ServerState, SnapshotPolicy};
use sluice_log::encryption::Keyring;
use sluice_metadata::log::{Change, CommitFuture, Committed};
use sluice_metadata::{
    ApiError, MetadataDelta, MetadataError, MetadataImage, MetadataListener, MetadataLog,
};
use sluice_protocol::error::codes as code;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::network::{NetworkFactory, Peers};
use crate::state_machine::{MetadataStateMachine, Publication, SharedImage, encode_records};
use crate::store::{LogStore, StoreError};
use crate::transport::{ClientTransport, ServerTlsSource};
use crate::voters::Voter;
use crate::wire::{ControlRequest, ControlResponse, NodeStatus, QuorumStatus, Request, Response};
use crate::{NodeId, Raft};

/// Timeout of one control request to the active controller, including a
/// forwarded admin request that creates thousands of partitions.
pub const CONTROL_TIMEOUT_MS: u64 = 30_000;

/// How long a node waits, after a change another node committed for it,
/// for its own image to show the change before answering anyway.
pub const CATCH_UP_TIMEOUT_MS: u64 = 5_000;

/// Deadline of one Raft RPC round (openraft sets per-RPC deadlines from its
/// heartbeat and election timeouts; this bounds the slowest, a snapshot chunk).
const INSTALL_SNAPSHOT_TIMEOUT_MS: u64 = 10_000;

/// Why the quorum could not start.
#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    /// The Raft state on disk could not be opened.
    #[error("raft state: {0}")]
    Store(#[from] StoreError),
    /// openraft refused the configuration.
    #[error("raft config: {0}")]
    Config(String),
    /// openraft failed to start.
    #[error("raft: {0}")]
    Raft(String),
    /// The controller listener could not be bound.
    #[error("cannot listen on the controller listener {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// This node's id is negative.
    #[error("node_id {0} cannot be a quorum member (ids are 0 and up)")]
    BadNodeId(i32),
}

/// What a quorum member needs to start.
#[derive(Debug, Clone)]
pub struct QuorumConfig {
    /// This node's id.
    pub node_id: i32,
    /// The data directory (the Raft state goes under `__raft/`).
    pub data_dir: PathBuf,
    /// Address the controller listener binds.
    pub listen: String,
    /// Address other nodes reach this node's controller listener at.
    pub advertised: String,
    /// `cluster.voters`: the initial voters.
    pub voters: Vec<Voter>,
    /// Raft heartbeat interval.
    pub heartbeat_interval_ms: u64,
    /// Lower bound of the randomized election timeout; the upper is twice it.
    pub election_timeout_ms: u64,
    /// Take a snapshot after this many applied entries.
    pub snapshot_every_entries: u64,
    /// How this node reaches peers' controller listeners.
    pub client_transport: ClientTransport,
    /// TLS on this node's controller listener; `None` is plain TCP.
    pub server_tls: Option<Arc<dyn ServerTlsSource>>,
    /// Encryption at rest of the Raft log and snapshots (`[encryption]`).
    pub encryption: Option<Arc<Keyring>>,
}

impl QuorumConfig {
    /// Defaults for everything but the addresses: a leader is re-elected
    /// in well under the 5 s clients tolerate.
    pub fn new(node_id: i32, data_dir: PathBuf, listen: String, voters: Vec<Voter>) -> Self {
        QuorumConfig {
            node_id,
            data_dir,
            advertised: listen.clone(),
            listen,
            voters,
            heartbeat_interval_ms: 200,
            election_timeout_ms: 500,
            snapshot_every_entries: 1_000,
            client_transport: ClientTransport::Plain,
            server_tls: None,
            encryption: None,
        }
    }
}

/// The active controller's side of control requests, provided by the
/// broker once it is assembled.
pub trait ControlHandler: Send + Sync + std::fmt::Debug {
    /// Serves one control request (this node is the leader).
    fn handle(&self, request: ControlRequest) -> BoxFuture<'static, ControlResponse>;
}

/// A member of the metadata quorum.
pub struct Quorum {
    node_id: NodeId,
    advertised: String,
    raft: Raft,
    image: Arc<SharedImage>,
    published: watch::Receiver<u64>,
    listeners: Arc<RwLock<Vec<Arc<dyn MetadataListener>>>>,
    commit_lock: tokio::sync::Mutex<()>,
    peers: Peers,
    control: OnceLock<Arc<dyn ControlHandler>>,
    voters: Vec<Voter>,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for Quorum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quorum")
            .field("node_id", &self.node_id)
            .field("advertised", &self.advertised)
            .field("voters", &self.voters)
            .finish_non_exhaustive()
    }
}

fn node_id(id: i32) -> Result<NodeId, QuorumError> {
    u64::try_from(id).map_err(|_| QuorumError::BadNodeId(id))
}

fn not_controller(message: impl Into<String>) -> ApiError {
    ApiError::new(code::NOT_CONTROLLER, message)
}

impl Quorum {
    /// Opens the Raft state under `config.data_dir`, starts Raft and the
    /// controller listener, and, on a node's first start, initializes the
    /// cluster (a voter) or asks to join it (any other node).
    pub async fn start(config: QuorumConfig) -> Result<Arc<Quorum>, QuorumError> {
        let id = node_id(config.node_id)?;
        let store = LogStore::open(&config.data_dir, config.encryption.clone())?;
        let pristine = store.is_pristine();
        let (state_machine, image, publications, _applied) = MetadataStateMachine::open(
            &config.data_dir,
            MetadataImage::default(),
            config.encryption.clone(),
        )?;
        let raft_config = Config {
            cluster_name: "sluice".into(),
            heartbeat_interval: config.heartbeat_interval_ms,
            election_timeout_min: config.election_timeout_ms,
            election_timeout_max: config.election_timeout_ms * 2,
            install_snapshot_timeout: INSTALL_SNAPSHOT_TIMEOUT_MS,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_every_entries),
            max_in_snapshot_log_to_keep: config.snapshot_every_entries.min(100),
            max_payload_entries: 64,
            ..Default::default()
        }
        .validate()
        .map_err(|e| QuorumError::Config(e.to_string()))?;
        let peers = Peers::new(config.client_transport.clone());
        let raft = Raft::new(
            id,
            Arc::new(raft_config),
            NetworkFactory::new(peers.clone()),
            store,
            state_machine,
        )
        .await
        .map_err(|e| QuorumError::Raft(e.to_string()))?;
        let listener = tokio::net::TcpListener::bind(&config.listen)
            .await
            .map_err(|source| QuorumError::Bind {
                addr: config.listen.clone(),
                source,
            })?;
        let (published_tx, published) = watch::channel(0u64);
        let quorum = Arc::new(Quorum {
            node_id: id,
            advertised: config.advertised.clone(),
            raft,
            image,
            published,
            listeners: Arc::new(RwLock::new(Vec::new())),
            commit_lock: tokio::sync::Mutex::new(()),
            peers,
            control: OnceLock::new(),
            voters: config.voters.clone(),
            shutdown: CancellationToken::new(),
        });
        sluice_runtime::spawn_detached(
            "metadata-publisher",
            publish_loop(publications, Arc::clone(&quorum.listeners), published_tx),
        );
        let weak = Arc::downgrade(&quorum);
        let shutdown = quorum.shutdown.clone();
        let server_tls = config.server_tls.clone();
        sluice_runtime::spawn_detached("controller-listener", async move {
            crate::server::serve(listener, weak, server_tls, shutdown).await;
        });
        if pristine {
            quorum.first_start().await?;
        }
        tracing::info!(
            node_id = id,
            listener = %config.listen,
            tls = config.server_tls.is_some(),
            voters = ?config.voters,
            "metadata quorum started"
        );
        Ok(quorum)
    }

    async fn first_start(self: &Arc<Self>) -> Result<(), QuorumError> {
        if self.voters.iter().any(|v| v.id as u64 == self.node_id) {
            // Every initial voter initializes with the same membership;
            // whichever wins the first election replicates it to the rest.
            let members: BTreeMap<NodeId, BasicNode> = self
                .voters
                .iter()
                .map(|v| (v.id as u64, BasicNode::new(&v.addr)))
                .collect();
            match self.raft.initialize(members).await {
                Ok(()) => tracing::info!("metadata quorum initialized"),
                Err(RaftError::APIError(e)) => {
                    tracing::info!("metadata quorum already initialized: {e}");
                }
                Err(e) => return Err(QuorumError::Raft(e.to_string())),
            }
        } else {
            let this = Arc::clone(self);
            sluice_runtime::spawn_detached("quorum-join", async move { this.join_loop().await });
        }
        Ok(())
    }

    /// Asks the voters, until one (the leader) accepts, to add this node
    /// as a learner.
    async fn join_loop(self: Arc<Self>) {
        let mut delay = Duration::from_millis(200);
        let stop = self.shutdown.clone();
        let attempt = async {
            loop {
                let request = Request::Join {
                    node_id: self.node_id,
                    addr: self.advertised.clone(),
                };
                match self.call_leader(&request).await {
                    Ok(Response::Done) => {
                        tracing::info!("joined the metadata quorum as a learner");
                        return;
                    }
                    Ok(other) => tracing::warn!("join refused: {other:?}"),
                    Err(e) => tracing::info!("cannot join the metadata quorum yet: {e}"),
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        };
        tokio::select! {
            () = attempt => {}
            () = stop.cancelled() => {}
        }
    }

    /// Installs the handler for control requests this node serves when it
    /// leads.
    pub fn set_control_handler(&self, handler: Arc<dyn ControlHandler>) {
        let _ = self.control.set(handler);
    }

    /// This node's id.
    pub fn node_id(&self) -> i32 {
        self.node_id as i32
    }

    /// The openraft handle.
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// True while this node is the quorum leader (the active controller).
    pub fn is_leader(&self) -> bool {
        let m = self.raft.metrics();
        let m = m.borrow();
        m.state == ServerState::Leader
    }

    /// True if a quorum of voters confirms, within `timeout`, that this
    /// node still leads (a leader cut off from the others keeps its role
    /// in its own eyes, but cannot confirm it).
    pub async fn confirm_leadership(&self, timeout: Duration) -> bool {
        matches!(
            tokio::time::timeout(timeout, self.raft.ensure_linearizable()).await,
            Ok(Ok(_))
        )
    }

    /// The leader's id and controller address, if known.
    pub fn leader(&self) -> Option<(NodeId, String)> {
        let m = self.raft.metrics();
        let m = m.borrow();
        let id = m.current_leader?;
        let node = m.membership_config.membership().get_node(&id)?;
        Some((id, node.addr.clone()))
    }

    /// True if `node_id` is a voter or learner of the quorum.
    pub fn is_member(&self, node_id: i32) -> bool {
        let m = self.raft.metrics();
        let m = m.borrow();
        u64::try_from(node_id)
            .is_ok_and(|id| m.membership_config.membership().get_node(&id).is_some())
    }

    /// The current Raft term.
    pub fn term(&self) -> u64 {
        self.raft.metrics().borrow().current_term
    }

    /// The last entry this node applied and published.
    pub fn published_index(&self) -> u64 {
        *self.published.borrow()
    }

    /// Waits until this node has applied and published entry `index`, up
    /// to [`CATCH_UP_TIMEOUT_MS`]; false on timeout.
    pub async fn wait_published(&self, index: u64) -> bool {
        let mut rx = self.published.clone();
        tokio::time::timeout(
            Duration::from_millis(CATCH_UP_TIMEOUT_MS),
            rx.wait_for(|i| *i >= index),
        )
        .await
        .is_ok_and(|r| r.is_ok())
    }

    /// Sends a request to the leader (known or probed), following
    /// `NotLeader` hints; tries every voter before giving up.
    async fn call_leader(&self, request: &Request) -> Result<Response, String> {
        let timeout = Duration::from_millis(CONTROL_TIMEOUT_MS);
        let mut tried = BTreeSet::new();
        let mut candidates: Vec<String> = Vec::new();
        if let Some((_, addr)) = self.leader() {
            candidates.push(addr);
        }
        candidates.extend(self.voters.iter().map(|v| v.addr.clone()));
        let mut last_error = "no voter reachable".to_owned();
        while let Some(addr) = candidates.first().cloned() {
            candidates.remove(0);
            if !tried.insert(addr.clone()) {
                continue;
            }
            match self.peers.call(&addr, request, timeout).await {
                Ok(Response::NotLeader {
                    leader: Some((_, leader)),
                }) => candidates.insert(0, leader),
                Ok(Response::NotLeader { leader: None }) => {
                    last_error = format!("{addr} knows no leader yet");
                }
                Ok(other) => return Ok(other),
                Err(e) => last_error = e.to_string(),
            }
        }
        Err(last_error)
    }

    /// Runs a control request on the active controller: here if this node
    /// leads, else on the leader. Retries once a new leader is known.
    pub async fn control(&self, request: ControlRequest) -> Result<ControlResponse, ApiError> {
        if self.is_leader()
            && let Some(handler) = self.control.get()
        {
            return Ok(handler.handle(request).await);
        }
        match self.call_leader(&Request::Control(request)).await {
            Ok(Response::Control(answer)) => Ok(answer),
            Ok(other) => Err(not_controller(format!(
                "the controller answered unexpectedly: {other:?}"
            ))),
            Err(e) => Err(not_controller(format!("no active controller: {e}"))),
        }
    }

    /// Serves one request that arrived on the controller listener.
    async fn serve_request(&self, request: Request) -> Response {
        match request {
            Request::AppendEntries(rpc) => {
                Response::AppendEntries(self.raft.append_entries(rpc).await)
            }
            Request::Vote(rpc) => Response::Vote(self.raft.vote(rpc).await),
            Request::InstallSnapshot(rpc) => {
                Response::InstallSnapshot(self.raft.install_snapshot(rpc).await)
            }
            Request::Status => Response::Status(Box::new(self.status())),
            Request::Join { node_id, addr } => self.change(
                self.raft
                    .add_learner(node_id, BasicNode::new(addr), false)
                    .await,
            ),
            Request::Promote { node_id } => {
                let voters = ChangeMembers::AddVoterIds(BTreeSet::from([node_id]));
                self.change(self.raft.change_membership(voters, false).await)
            }
            Request::Remove { node_id } => {
                let m = self.raft.metrics().borrow().membership_config.clone();
                let is_voter = m.membership().voter_ids().any(|v| v == node_id);
                let change = if is_voter {
                    ChangeMembers::RemoveVoters(BTreeSet::from([node_id]))
                } else {
                    ChangeMembers::RemoveNodes(BTreeSet::from([node_id]))
                };
                let mut result = self.raft.change_membership(change, false).await;
                if is_voter && result.is_ok() {
                    // Removing a voter leaves it a learner; drop it too.
                    let nodes = ChangeMembers::RemoveNodes(BTreeSet::from([node_id]));
                    result = self.raft.change_membership(nodes, false).await;
                }
                if result.is_ok()
                    && let Some(handler) = self.control.get()
                {
                    let unregister = ControlRequest::UnregisterBroker {
                        broker_id: node_id as i32,
                    };
                    if let ControlResponse::Refused { message, .. } =
                        handler.handle(unregister).await
                    {
                        tracing::info!(
                            node_id,
                            "node removed; its broker registration stays: {message}"
                        );
                    }
                }
                self.change(result)
            }
            Request::Control(request) => {
                if !self.is_leader() {
                    return Response::NotLeader {
                        leader: self.leader(),
                    };
                }
                match self.control.get() {
                    Some(handler) => Response::Control(handler.handle(request).await),
                    None => Response::Error("this node is still starting".into()),
                }
            }
        }
    }

    fn change<T>(
        &self,
        result: Result<T, RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>>,
    ) -> Response {
        match result {
            Ok(_) => Response::Done,
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => Response::NotLeader {
                leader: f.leader_id.zip(f.leader_node.map(|n| n.addr)),
            },
            Err(e) => Response::Error(e.to_string()),
        }
    }

    /// This node's view of the quorum.
    pub fn status(&self) -> QuorumStatus {
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let last = m.last_log_index.unwrap_or(0);
        let nodes = {
            let mut nodes: Vec<NodeStatus> = membership
                .nodes()
                .map(|(id, node)| {
                    let matched = m
                        .replication
                        .as_ref()
                        .and_then(|r| r.get(id).cloned())
                        .map(|l| l.map_or(0, |l| l.index));
                    let matched = if *id == self.node_id && m.state == ServerState::Leader {
                        m.last_log_index.or(Some(0))
                    } else {
                        matched
                    };
                    NodeStatus {
                        id: *id as i32,
                        addr: node.addr.clone(),
                        role: if voters.contains(id) {
                            "voter"
                        } else {
                            "learner"
                        }
                        .to_owned(),
                        matched_index: matched,
                        lag: matched.map(|i| last.saturating_sub(i)),
                    }
                })
                .collect();
            nodes.sort_by_key(|n: &NodeStatus| (n.role != "voter", n.id));
            nodes
        };
        QuorumStatus {
            node_id: self.node_id as i32,
            state: format!("{:?}", m.state).to_lowercase(),
            leader: m.current_leader.map(|l| l as i32),
            term: m.current_term,
            last_log_index: m.last_log_index,
            applied_index: m.last_applied.map(|l| l.index),
            snapshot_index: m.snapshot.map(|l| l.index),
            nodes,
        }
    }

    /// Asks a node for its status over the controller protocol.
    pub async fn remote_status(peers: &Peers, addr: &str) -> Result<QuorumStatus, String> {
        match peers
            .call(addr, &Request::Status, Duration::from_secs(5))
            .await
        {
            Ok(Response::Status(s)) => Ok(*s),
            Ok(other) => Err(format!("unexpected answer: {other:?}")),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Runs a control request on the active controller, starting from the
    /// node at `addr` and following it to the leader (for the CLI).
    pub async fn remote_control(
        peers: &Peers,
        addr: &str,
        request: ControlRequest,
    ) -> Result<ControlResponse, String> {
        let mut target = addr.to_owned();
        let request = Request::Control(request);
        for _ in 0..4 {
            match peers
                .call(&target, &request, Duration::from_millis(CONTROL_TIMEOUT_MS))
                .await
            {
                Ok(Response::Control(answer)) => return Ok(answer),
                Ok(Response::NotLeader {
                    leader: Some((_, leader)),
                }) => target = leader,
                Ok(Response::NotLeader { leader: None }) => {
                    return Err(format!("{target} knows no leader"));
                }
                Ok(Response::Error(e)) => return Err(e),
                Ok(other) => return Err(format!("unexpected answer: {other:?}")),
                Err(e) => return Err(e.to_string()),
            }
        }
        Err("the leader kept moving".into())
    }

    /// Sends a membership request to the leader, starting from `addr`.
    pub async fn remote_membership(
        peers: &Peers,
        addr: &str,
        request: Request,
    ) -> Result<(), String> {
        let mut target = addr.to_owned();
        for _ in 0..4 {
            match peers
                .call(&target, &request, Duration::from_millis(CONTROL_TIMEOUT_MS))
                .await
            {
                Ok(Response::Done) => return Ok(()),
                Ok(Response::NotLeader {
                    leader: Some((_, leader)),
                }) => target = leader,
                Ok(Response::NotLeader { leader: None }) => {
                    return Err(format!("{target} knows no leader"));
                }
                Ok(Response::Error(e)) => return Err(e),
                Ok(other) => return Err(format!("unexpected answer: {other:?}")),
                Err(e) => return Err(e.to_string()),
            }
        }
        Err("the leader kept moving".into())
    }

    /// Stops Raft and the controller listener.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!("raft shutdown: {e}");
        }
    }

    async fn commit_now(
        &self,
        change: Change<'_>,
    ) -> Result<Result<Committed, ApiError>, MetadataError> {
        let _guard = self.commit_lock.lock().await;
        // A new leader may not have applied everything committed before its
        // term; validating against a stale image could accept a change a
        // committed one already made impossible.
        if let Err(e) = self.raft.ensure_linearizable().await {
            return Ok(Err(not_controller(format!(
                "node {} is not the active controller: {e}",
                self.node_id
            ))));
        }
        let before = self.image.get();
        let records = match change(&before) {
            Ok(records) => records,
            Err(e) => return Ok(Err(e)),
        };
        if records.is_empty() {
            return Ok(Ok(Committed {
                image: before,
                delta: MetadataDelta::default(),
                published: true,
            }));
        }
        let proposal = match encode_records(&records) {
            Ok(p) => p,
            Err(e) => {
                return Ok(Err(ApiError::new(
                    code::UNKNOWN_SERVER_ERROR,
                    format!("cannot encode the change: {e}"),
                )));
            }
        };
        let written = match self.raft.client_write(proposal).await {
            Ok(written) => written,
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                return Ok(Err(not_controller(format!(
                    "leadership moved to {:?} during the change",
                    f.leader_id
                ))));
            }
            Err(e) => {
                return Ok(Err(ApiError::new(
                    code::UNKNOWN_SERVER_ERROR,
                    format!("the metadata quorum failed: {e}"),
                )));
            }
        };
        if let Some(reason) = written.data.refused {
            return Ok(Err(ApiError::new(
                code::UNKNOWN_SERVER_ERROR,
                format!("the change was committed but does not apply: {reason}"),
            )));
        }
        let index = written.log_id.index;
        if !self.wait_published(index).await {
            tracing::warn!(index, "listeners are slow to follow a committed change");
        }
        let after = self.image.get();
        let delta = MetadataDelta::of(&before, &records, &after);
        Ok(Ok(Committed {
            image: after,
            delta,
            published: true,
        }))
    }
}

/// Hands every applied entry, in order, to the listeners, then advances the
/// published index.
async fn publish_loop(
    mut publications: tokio::sync::mpsc::UnboundedReceiver<Publication>,
    listeners: Arc<RwLock<Vec<Arc<dyn MetadataListener>>>>,
    published: watch::Sender<u64>,
) {
    while let Some(Publication {
        index,
        delta,
        image,
    }) = publications.recv().await
    {
        if let Some(delta) = delta.filter(|d| !d.touches_no_topic()) {
            let listeners: Vec<_> = listeners
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            let applied = sluice_runtime::blocking("publish-metadata", move || {
                for listener in &listeners {
                    listener.apply(&delta, &image)?;
                }
                Ok::<_, sluice_log::LogError>(())
            })
            .await;
            match applied {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(index, "cannot follow a metadata change: {e}"),
                Err(e) => tracing::error!(index, "metadata listener failed: {e}"),
            }
        }
        published.send_replace(index);
    }
}

impl crate::server::Serve for Quorum {
    fn serve(&self, request: Request) -> BoxFuture<'_, Response> {
        Box::pin(self.serve_request(request))
    }
}

impl MetadataLog for Quorum {
    fn image(&self) -> Arc<MetadataImage> {
        self.image.get()
    }

    fn commit<'a>(&'a self, change: Change<'a>) -> CommitFuture<'a> {
        Box::pin(self.commit_now(change))
    }

    fn is_offline(&self) -> bool {
        false
    }

    fn reopen_if_offline(&self) {}

    fn flush(&self) -> Result<(), MetadataError> {
        // Every entry is fsynced before it counts; nothing is buffered.
        Ok(())
    }

    fn controller_id(&self) -> Option<i32> {
        self.raft
            .metrics()
            .borrow()
            .current_leader
            .map(|l| l as i32)
    }

    fn subscribe(&self, listener: Arc<dyn MetadataListener>) {
        self.listeners
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(listener);
    }
}
