//! The metadata quorum: the metadata log replicated with Raft.
//!
//! Every metadata change (topics, partitions, configs, broker
//! registrations, producer id blocks) is one Raft entry holding the
//! [`MetadataRecord`]s of that change, encoded with the metadata codec.
//! The quorum's leader is the active controller: it validates a change
//! against its image, proposes it, and the change is committed once a
//! majority of voters has it on disk. Every node (voter or learner)
//! applies committed entries, in log order, to the same
//! [`MetadataImage`], and hands each entry's delta to its listeners (the
//! replica manager) just as a single node does.
//!
//! Consensus is openraft's; this crate supplies what openraft leaves to
//! the application:
//! - [`store`]: the Raft log on disk, the vote and the committed log id;
//! - [`state_machine`]: the image, its snapshots, and publishing deltas;
//! - [`wire`]: the controller protocol's framing and messages;
//! - [`network`]: the client side of the controller protocol;
//! - [`server`]: the controller listener;
//! - [`transport`]: plain TCP or mutual TLS under the controller protocol;
//! - [`quorum`]: [`Quorum`], which starts the pieces, implements
//!   [`sluice_metadata::MetadataLog`] over them, and serves membership
//!   changes and status.
//!
//! `docs/design.md` ("Cluster") describes the roles, the records, the
//! framing and the timeouts.
//!
//! [`MetadataRecord`]: sluice_metadata::MetadataRecord
//! [`MetadataImage`]: sluice_metadata::MetadataImage

pub mod network;
pub mod quorum;
pub mod server;
pub mod state_machine;
pub mod store;
pub mod transport;
pub mod voters;
pub mod wire;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

pub use network::Peers;
pub use quorum::{Quorum, QuorumConfig, QuorumError};
pub use transport::{ClientTransport, ServerTlsSource};
pub use voters::{Voter, parse_voters};
pub use wire::{NodeStatus, QuorumStatus};

/// A Raft node id: the broker's `node_id`, which is never negative.
pub type NodeId = u64;

/// One metadata change as a Raft entry: the records, each encoded with
/// `sluice_metadata::codec` (the byte layout `docs/design.md` gives).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// The change's records, in order.
    pub records: Vec<Bytes>,
}

/// What applying one entry did on this node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// Set when the entry contradicted the image and was skipped (on every
    /// node alike, since every node applies the same entries in order).
    pub refused: Option<String>,
}

openraft::declare_raft_types!(
    /// openraft's type parameters for the metadata quorum.
    pub TypeConfig:
        D = Proposal,
        R = Applied,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = std::io::Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// The openraft handle for this cluster.
pub type Raft = openraft::Raft<TypeConfig>;
/// A log entry.
pub type Entry = openraft::Entry<TypeConfig>;
/// A log id (term, leader and index).
pub type LogId = openraft::LogId<NodeId>;
/// A vote (term and candidate).
pub type Vote = openraft::Vote<NodeId>;
/// The storage error openraft expects.
pub type StorageError = openraft::StorageError<NodeId>;
