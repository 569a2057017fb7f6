//! Async Kafka client over the Sluice codec, used by the `sluice` CLI, the
//! bench tool and the broker's inter-broker fetcher.
//!
//! Layout:
//! - [`conn`]: one TCP connection: framing, correlation ids, pipelining,
//!   ApiVersions negotiation.
//! - [`client`]: bootstrap, per-broker connection pool, metadata, retries.
//! - [`producer`]: batching, compression, acks, retries, idempotence.
//! - [`consumer`]: fetch, seek by offset/timestamp, group membership, commits.
//! - [`admin`]: topics, configs, partitions, offsets, groups.
//! - [`acl`]: ACLs (CreateAcls, DescribeAcls, DeleteAcls).
//! - [`users`]: SCRAM users (Alter/DescribeUserScramCredentials).
//! - [`partitioner`]: murmur2 for keys, sticky spreading for null keys.
//! - [`group`]: consumer-protocol blobs and the range assignor.
//!
//! This crate never touches broker internals: it speaks only the wire
//! protocol, so anything it does a third-party client can do too.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod acl;
pub mod admin;
pub mod client;
pub mod conn;
pub mod consumer;
pub mod error;
pub mod group;
pub mod partitioner;
pub mod producer;
pub mod quotas;
pub mod users;

pub use admin::{Admin, ConfigEntry, ConfigOp, GroupDescription, GroupListing, NewTopic};
pub use client::{BrokerInfo, Client, ClientConfig, Metadata, PartitionInfo, TopicInfo};
pub use consumer::{Consumer, ConsumerConfig, ConsumerRecord, Offset};
pub use error::{ClientError, Result};
pub use partitioner::NullKeys;
pub use producer::{
    Acks, DeliveryFuture, Producer, ProducerConfig, ProducerRecord, RecordMetadata,
};
pub use quotas::{QuotaEntity, QuotaMatch};
pub use sluice_records::{Compression, Header, TimestampType};
pub use users::{ScramCredentialInfo, ScramUpsert, ScramUser};
