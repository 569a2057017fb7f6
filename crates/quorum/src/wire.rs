//! The controller protocol: what nodes say to each other on the controller
//! listener.
//!
//! Framing (big-endian): `length u32 | version u16 | postcard message`,
//! where `length` counts the version and the message. One request, then
//! its response, in turn on a connection; a client keeps a connection for
//! the next request. A frame longer than [`MAX_FRAME_BYTES`], a version
//! other than [`PROTOCOL_VERSION`], or a message that does not decode
//! closes the connection: a malformed peer costs only its connection.

use bytes::Bytes;
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use uuid::Uuid;

use crate::{NodeId, TypeConfig};

/// Version of the messages below. A node refuses other versions, so a
/// mixed-version cluster fails loudly instead of misreading frames.
pub const PROTOCOL_VERSION: u16 = 2;

/// Largest frame either side accepts, in bytes. Bounds what one peer can
/// make this node allocate. It fits openraft's largest append (a bounded
/// number of entries, each under the log's 64 MiB entry bound is far more
/// than a real change; see `network` for how an oversized append is split)
/// and a snapshot chunk.
pub const MAX_FRAME_BYTES: u32 = 96 * 1024 * 1024;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The connection failed or closed.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// The frame claims more bytes than [`MAX_FRAME_BYTES`].
    #[error("frame of {0} bytes is over the {MAX_FRAME_BYTES}-byte bound")]
    TooLarge(u64),
    /// The frame is shorter than its version field.
    #[error("frame of {0} bytes has no version")]
    TooShort(u32),
    /// The peer speaks another protocol version.
    #[error("peer speaks controller protocol version {0}, this node {PROTOCOL_VERSION}")]
    Version(u16),
    /// The message does not decode (or encode).
    #[error("message: {0}")]
    Codec(#[from] postcard::Error),
}

/// A request from one node to another.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// Raft: replicate entries (and heartbeat).
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    /// Raft: ask for a vote.
    Vote(VoteRequest<NodeId>),
    /// Raft: one chunk of a snapshot.
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// A node asks to join as a learner (broker-only member).
    Join {
        /// Its node id.
        node_id: NodeId,
        /// Its controller listener address.
        addr: String,
    },
    /// Promote a learner to voter (`sluice cluster add-node`).
    Promote {
        /// The node.
        node_id: NodeId,
    },
    /// Remove a node from the quorum (`sluice cluster remove-node`).
    Remove {
        /// The node.
        node_id: NodeId,
    },
    /// A request for the active controller (broker lifecycle, forwarded
    /// admin requests).
    Control(ControlRequest),
    /// This node's view of the quorum.
    Status,
}

/// The answer to a [`Request`].
#[derive(Debug, Serialize, Deserialize)]
pub enum Response {
    /// Raft append answer.
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    /// Raft vote answer.
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    /// Raft snapshot chunk answer.
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    /// This node is not the leader; ask this one (if known).
    NotLeader {
        /// The leader's id and controller address.
        leader: Option<(NodeId, String)>,
    },
    /// A membership change was committed.
    Done,
    /// The active controller's answer.
    Control(ControlResponse),
    /// This node's view of the quorum.
    Status(Box<QuorumStatus>),
    /// The request failed; why.
    Error(String),
}

/// Requests only the active controller serves.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ControlRequest {
    /// A broker (re-)registers at start.
    RegisterBroker {
        /// Its node id.
        broker_id: i32,
        /// Random per process start.
        incarnation_id: Uuid,
        /// Kafka listener host clients use.
        host: String,
        /// Kafka listener port.
        port: i32,
        /// `broker.rack`.
        rack: Option<String>,
        /// Every Kafka listener; absent from brokers that predate named
        /// listeners.
        #[serde(default)]
        endpoints: Vec<sluice_metadata::BrokerEndpoint>,
    },
    /// A registered broker is alive.
    Heartbeat {
        /// Its node id.
        broker_id: i32,
        /// The epoch its registration got.
        epoch: i64,
        /// The last metadata entry it has applied.
        applied_index: u64,
        /// Use of its data directory's file system, percent (unknown if
        /// the file system would not say).
        disk_used_percent: Option<u8>,
        /// Sizes of its replicas of partitions being moved (at most
        /// `balance::MAX_REPORTED_REPLICA_SIZES`), for the moves' progress.
        replica_sizes: Vec<sluice_metadata::balance::ReplicaSize>,
    },
    /// A Kafka admin request a broker received, run by the controller's
    /// own handler (Kafka's request forwarding, KIP-590).
    Forward {
        /// The principal the broker authenticated.
        principal: String,
        /// The client's address, for the controller's log lines.
        client: String,
        /// The request frame: header and body, without the length prefix.
        frame: Bytes,
    },
    /// A controller operation a broker's own code or its HTTP API asks
    /// for (internal and auto-created topics, producer id blocks, topic
    /// administration).
    Controller(sluice_metadata::controller::ControllerCall),
    /// A node left the quorum: remove its broker registration too.
    UnregisterBroker {
        /// The node.
        broker_id: i32,
    },
    /// The first start of a node that was a single node before: the
    /// records that rebuild its metadata, to add to the cluster's.
    Import {
        /// Encoded metadata records (snapshot form).
        records: Vec<Bytes>,
    },
    /// A broker is stopping (Kafka's controlled shutdown): fence it, which
    /// moves the leadership of its partitions to other ISR members, and
    /// keep it fenced until it registers again.
    ControlledShutdown {
        /// The broker.
        broker_id: i32,
        /// Its registration epoch.
        epoch: i64,
    },
    /// What the balancer sees: moves in flight, each broker's load.
    BalanceStatus,
}

/// Answers to [`ControlRequest`]s.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ControlResponse {
    /// Registered; heartbeat with this epoch.
    Registered {
        /// The broker epoch.
        epoch: i64,
    },
    /// Heartbeat answer.
    Heartbeat {
        /// The broker is fenced (not caught up, or its session lapsed).
        fenced: bool,
        /// The epoch is stale: register again.
        reregister: bool,
    },
    /// The forwarded request's response frame (header and body).
    Forwarded {
        /// The response frame.
        frame: Bytes,
        /// The controller's last applied entry when it answered: the
        /// forwarding broker waits for its own image to reach it.
        index: u64,
    },
    /// The change was committed at this index; wait for it before
    /// answering (so this node's image shows it).
    Committed {
        /// Log index of the change.
        index: u64,
    },
    /// What a [`ControlRequest::Controller`] operation returned.
    Controller {
        /// The operation's reply.
        reply: sluice_metadata::controller::ControllerReply,
        /// The controller's last applied entry when it answered.
        index: u64,
    },
    /// Refused with a Kafka error code.
    Refused {
        /// The code.
        code: i16,
        /// Why.
        message: String,
    },
    /// The answer to [`ControlRequest::BalanceStatus`].
    BalanceStatus(Box<sluice_metadata::balance::BalanceStatus>),
}

/// One node as `cluster status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodeStatus {
    /// Node id.
    pub id: i32,
    /// Controller listener address.
    pub addr: String,
    /// `voter` or `learner`.
    pub role: String,
    /// Highest entry the leader knows this node has (leader's view only).
    pub matched_index: Option<u64>,
    /// Entries this node is behind the leader's last entry (leader's view).
    pub lag: Option<u64>,
}

/// A node's view of the quorum.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct QuorumStatus {
    /// The node answering.
    pub node_id: i32,
    /// Its Raft state: leader, follower, candidate or learner.
    pub state: String,
    /// The leader it knows of.
    pub leader: Option<i32>,
    /// Current term.
    pub term: u64,
    /// Last entry in its log.
    pub last_log_index: Option<u64>,
    /// Last entry applied to its image.
    pub applied_index: Option<u64>,
    /// Last entry its snapshot covers.
    pub snapshot_index: Option<u64>,
    /// Members, voters first.
    pub nodes: Vec<NodeStatus>,
}

/// Writes one message as a frame.
pub async fn write_frame<T: Serialize>(
    io: &mut (impl AsyncWrite + Unpin),
    message: &T,
) -> Result<(), WireError> {
    let body = postcard::to_stdvec(message)?;
    let len = body.len() as u64 + 2;
    if len > u64::from(MAX_FRAME_BYTES) {
        return Err(WireError::TooLarge(len));
    }
    let mut out = Vec::with_capacity(len as usize + 4);
    out.extend_from_slice(&(len as u32).to_be_bytes());
    out.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    out.extend_from_slice(&body);
    io.write_all(&out).await?;
    io.flush().await?;
    Ok(())
}

/// Reads one frame and decodes its message. `Ok(None)` is a clean close
/// before a frame started.
pub async fn read_frame<T: DeserializeOwned>(
    io: &mut (impl AsyncRead + Unpin),
) -> Result<Option<T>, WireError> {
    let mut len = [0u8; 4];
    match io.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len);
    if len > MAX_FRAME_BYTES {
        return Err(WireError::TooLarge(u64::from(len)));
    }
    if len < 2 {
        return Err(WireError::TooShort(len));
    }
    let mut body = vec![0u8; len as usize];
    io.read_exact(&mut body).await?;
    decode_body(&body).map(Some)
}

/// Decodes a frame's body (what follows the length): the version, then the
/// message. Everything a peer sends goes through here.
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, WireError> {
    let Some((version, message)) = body.split_first_chunk::<2>() else {
        return Err(WireError::TooShort(body.len() as u32));
    };
    let version = u16::from_be_bytes(*version);
    if version != PROTOCOL_VERSION {
        return Err(WireError::Version(version));
    }
    Ok(postcard::from_bytes(message)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_hostile_frames_are_errors() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &Request::Status)
            .await
            .expect("write");
        let read: Option<Request> = read_frame(&mut buf.as_slice()).await.expect("read");
        assert!(matches!(read, Some(Request::Status)));

        // A length over the bound is refused before anything is allocated.
        let huge = (MAX_FRAME_BYTES + 1).to_be_bytes();
        let err = read_frame::<Request>(&mut huge.as_slice()).await;
        assert!(matches!(err, Err(WireError::TooLarge(_))), "{err:?}");

        // Another version.
        let mut other = buf.clone();
        other[5] = 9;
        let err = read_frame::<Request>(&mut other.as_slice()).await;
        assert!(matches!(err, Err(WireError::Version(9))), "{err:?}");

        // Garbage after a valid header.
        let mut garbage = vec![0, 0, 0, 6];
        garbage.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
        garbage.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        let err = read_frame::<Request>(&mut garbage.as_slice()).await;
        assert!(matches!(err, Err(WireError::Codec(_))), "{err:?}");

        // Cut short inside the body.
        let cut = &buf[..buf.len() - 1];
        assert!(read_frame::<Request>(&mut &cut[..]).await.is_err());
        // A clean close before a frame.
        assert!(matches!(
            read_frame::<Request>(&mut &[][..]).await,
            Ok(None)
        ));
    }
}
