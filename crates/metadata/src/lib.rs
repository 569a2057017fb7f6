//! Cluster metadata: what topics and partitions exist, where they live, and
//! their configs.
//!
//! - [`image`]: the records and the image replayed from them.
//! - [`codec`]: the byte encoding of metadata records.
//! - [`delta`]: what one committed change did, for subscribers.
//! - [`log`]: the [`MetadataLog`] seam and its local implementation.
//! - [`error`]: [`MetadataError`] and [`ApiError`], the per-item error of an admin change.
//! - [`controller`]: validates admin changes and commits them.
//! - [`placement`]: replica placement and leadership as brokers come, go and are fenced.
//! - [`reassignment`]: partition reassignment (KIP-455): start, cancel, list.
//! - [`election`]: leader elections on request (KIP-460) and automatic preferred-leader balancing.
//! - [`snapshot`]: the image as the records that rebuild it, for Raft snapshots.
//! - [`topic_config`]: topic-level configs and their defaults.
//! - [`config`]: broker-wide topic and log defaults.
//! - [`acl`]: ACLs (Kafka's model), their filters and the image's ACL set.
//! - [`broker_config`]: dynamic broker configs (the replication throttle rates).
//!
//! Dependencies point down: this crate knows logs and records, never
//! partitions, coordinators or the network. Whoever hosts partitions learns
//! of changes by subscribing to deltas ([`MetadataListener`]).

pub mod acl;
pub mod balance;
pub mod broker_config;
pub mod client_quota;
pub mod codec;
pub mod config;
pub mod controller;
pub mod delta;
pub mod election;
pub mod error;
pub mod image;
pub mod log;
pub mod placement;
pub mod reassignment;
pub mod snapshot;
pub mod topic_config;

pub use controller::Controller;
pub use delta::{MetadataDelta, MetadataListener};
pub use election::{ElectionResult, ElectionType};
pub use error::{ApiError, MetadataError};
pub use image::{
    BrokerEndpoint, BrokerImage, HttpTokenImage, MetadataImage, MetadataRecord, PartitionImage,
    TopicImage,
};
pub use log::{Change, CommitFuture, Committed, LocalMetadataLog, METADATA_LOG_DIR, MetadataLog};
pub use placement::{AlterPartitionOutcome, AlterPartitionRequest, BrokerRegistration};
pub use reassignment::{OngoingReassignment, ReassignmentRequest, ReassignmentResult};

/// Wall-clock milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    sluice_log::now_ms()
}
