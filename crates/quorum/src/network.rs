//! The client side of the controller protocol: a small pool of
//! connections per peer, and openraft's network over it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::BasicNode;
use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use tokio::net::TcpStream;

use crate::transport::{ClientTransport, PeerStream};
use crate::wire::{Request, Response, WireError, read_frame, write_frame};
use crate::{NodeId, TypeConfig};

/// How long a connection attempt to a peer may take. A peer that does not
/// answer a SYN in this time is treated as down (openraft backs off).
pub const CONNECT_TIMEOUT_MS: u64 = 1_000;

/// Idle connections kept per peer: enough for replication, votes and a
/// control request at once; more would only hold sockets.
const MAX_IDLE_PER_PEER: usize = 4;

/// Why a call to a peer failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The peer could not be reached.
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// Its address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The peer took longer than the deadline.
    #[error("no answer from {0} in time")]
    Timeout(String),
    /// The exchange failed.
    #[error("{addr}: {source}")]
    Wire {
        /// Its address.
        addr: String,
        /// Why.
        #[source]
        source: WireError,
    },
    /// The peer closed the connection without answering.
    #[error("{0} closed the connection without answering")]
    Closed(String),
}

/// Idle connections, by peer address.
type IdlePool = HashMap<String, Vec<Box<dyn PeerStream>>>;

/// Connections to peers, by address.
#[derive(Clone, Default)]
pub struct Peers {
    /// A std lock: held only to take or return a connection, never across
    /// an await.
    idle: Arc<Mutex<IdlePool>>,
    /// Plain TCP or TLS.
    transport: ClientTransport,
}

impl std::fmt::Debug for Peers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peers")
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

impl Peers {
    /// Peers reached over `transport`.
    pub fn new(transport: ClientTransport) -> Peers {
        Peers {
            idle: Arc::default(),
            transport,
        }
    }

    /// Sends `request` to `addr` and waits up to `timeout` for the answer.
    pub async fn call(
        &self,
        addr: &str,
        request: &Request,
        timeout: Duration,
    ) -> Result<Response, CallError> {
        let pooled = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_mut(addr)
            .and_then(Vec::pop);
        let mut stream = match pooled {
            Some(s) => s,
            None => connect(addr, &self.transport).await?,
        };
        let exchange = async {
            write_frame(&mut stream, request).await?;
            read_frame::<Response>(&mut stream).await
        };
        let answer = match tokio::time::timeout(timeout, exchange).await {
            Err(_) => return Err(CallError::Timeout(addr.to_owned())),
            Ok(Err(source)) => {
                return Err(CallError::Wire {
                    addr: addr.to_owned(),
                    source,
                });
            }
            Ok(Ok(None)) => return Err(CallError::Closed(addr.to_owned())),
            Ok(Ok(Some(answer))) => answer,
        };
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let slot = idle.entry(addr.to_owned()).or_default();
        if slot.len() < MAX_IDLE_PER_PEER {
            slot.push(stream);
        }
        Ok(answer)
    }
}

async fn connect(
    addr: &str,
    transport: &ClientTransport,
) -> Result<Box<dyn PeerStream>, CallError> {
    let fail = |reason: String| CallError::Connect {
        addr: addr.to_owned(),
        reason,
    };
    let stream = tokio::time::timeout(
        Duration::from_millis(CONNECT_TIMEOUT_MS),
        TcpStream::connect(addr),
    )
    .await
    .map_err(|_| fail("timed out".into()))?
    .map_err(|e| fail(e.to_string()))?;
    // Raft messages are small and latency-bound.
    let _ = stream.set_nodelay(true);
    transport
        .wrap(stream, addr)
        .await
        .map_err(|e| fail(e.to_string()))
}

/// openraft's view of the network: one client per target.
#[derive(Debug, Clone, Default)]
pub struct NetworkFactory {
    peers: Peers,
}

impl NetworkFactory {
    /// A factory whose clients share `peers`.
    pub fn new(peers: Peers) -> NetworkFactory {
        NetworkFactory { peers }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerNetwork;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerNetwork {
        PeerNetwork {
            target,
            addr: node.addr.clone(),
            peers: self.peers.clone(),
        }
    }
}

/// The connection to one peer, as openraft uses it.
#[derive(Debug)]
pub struct PeerNetwork {
    target: NodeId,
    addr: String,
    peers: Peers,
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>;

impl PeerNetwork {
    async fn send<E: std::error::Error>(
        &self,
        request: Request,
        option: &RPCOption,
        entries: Option<u64>,
    ) -> Result<Response, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>> {
        match self
            .peers
            .call(&self.addr, &request, option.hard_ttl())
            .await
        {
            Ok(response) => Ok(response),
            Err(CallError::Wire {
                source: WireError::TooLarge(_),
                ..
            }) if entries.is_some_and(|n| n > 1) => {
                // openraft retries with fewer entries per append.
                let hint = entries.unwrap_or(2) / 2;
                Err(RPCError::PayloadTooLarge(
                    PayloadTooLarge::new_entries_hint(hint),
                ))
            }
            Err(e @ CallError::Connect { .. }) => Err(RPCError::Unreachable(Unreachable::new(&e))),
            Err(e) => Err(RPCError::Network(NetworkError::new(&e))),
        }
    }

    fn unexpected<E: std::error::Error>(
        &self,
        response: Response,
    ) -> RPCError<NodeId, BasicNode, RaftError<NodeId, E>> {
        let e = std::io::Error::other(format!(
            "{} answered with an unexpected message: {response:?}",
            self.addr
        ));
        RPCError::Network(NetworkError::new(&e))
    }
}

impl RaftNetwork<TypeConfig> for PeerNetwork {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        let entries = rpc.entries.len() as u64;
        match self
            .send(Request::AppendEntries(rpc), &option, Some(entries))
            .await?
        {
            Response::AppendEntries(Ok(r)) => Ok(r),
            Response::AppendEntries(Err(e)) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            other => Err(self.unexpected(other)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        match self
            .send(Request::InstallSnapshot(rpc), &option, None)
            .await?
        {
            Response::InstallSnapshot(Ok(r)) => Ok(r),
            Response::InstallSnapshot(Err(e)) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            other => Err(self.unexpected(other)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        match self.send(Request::Vote(rpc), &option, None).await? {
            Response::Vote(Ok(r)) => Ok(r),
            Response::Vote(Err(e)) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
            other => Err(self.unexpected(other)),
        }
    }
}
