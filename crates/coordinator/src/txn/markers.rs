//! Transaction markers: the COMMIT or ABORT control batch that ends a
//! producer's transaction on each of its partitions.
//!
//! The coordinator writes a marker itself on a partition this broker leads
//! ([`write_local`]) and asks the leader of any other partition to write
//! it, with WriteTxnMarkers (API 27), through a [`MarkerSender`] the broker
//! supplies. The WriteTxnMarkers handler calls [`write_local`] too, so both
//! paths append the same batch the same way, and both tell the group
//! coordinator when a marker lands on `__consumer_offsets` (that is what
//! turns a transaction's pending offsets into committed ones).

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::BytesMut;
use sluice_log::{AppendOrigin, MarkerType};
use sluice_protocol::error::codes as code;
use sluice_records::{BatchBuilder, NewRecord};
use sluice_replica::Partition;

use crate::group::GroupCoordinator;
use crate::group::offsets_log::OFFSETS_TOPIC;

/// One transaction's outcome, as a marker states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    /// The producer whose transaction ends.
    pub producer_id: i64,
    /// Its epoch (after any bump that fenced an older instance).
    pub producer_epoch: i16,
    /// COMMIT, or ABORT.
    pub commit: bool,
    /// The leader epoch of the coordinator's `__transaction_state` partition.
    pub coordinator_epoch: i32,
}

impl Marker {
    fn marker_type(&self) -> MarkerType {
        if self.commit {
            MarkerType::Commit
        } else {
            MarkerType::Abort
        }
    }

    /// The control batch: one record, transactional, with the producer's
    /// id and epoch and no sequence.
    pub fn batch(&self, now_ms: i64) -> Result<BytesMut, i16> {
        BatchBuilder::new()
            .producer(self.producer_id, self.producer_epoch, -1)
            .transactional(true)
            .control(true)
            .record(NewRecord {
                key: Some(sluice_log::producer_state::marker_key(self.marker_type())),
                value: Some(sluice_log::producer_state::marker_value(
                    self.coordinator_epoch,
                )),
                headers: vec![],
                timestamp_ms: now_ms,
            })
            .build()
            .map_err(|e| {
                tracing::error!("cannot build a transaction marker: {e}");
                code::UNKNOWN_SERVER_ERROR
            })
    }
}

/// A topic-partition by name and index.
pub type TopicPartition = (String, i32);

/// What a [`MarkerSender`] returns: a Kafka code per partition sent, or a
/// transport failure (the whole request is retried).
pub type SendResult = Result<Vec<(TopicPartition, i16)>, String>;

/// Sends markers to another broker (WriteTxnMarkers). The broker implements
/// it over its inter-broker connections; the coordinator holds no handle
/// on the network itself.
pub trait MarkerSender: Send + Sync + Debug {
    /// Asks broker `node_id` to write `marker` on `partitions`, which it leads.
    fn send(
        &self,
        node_id: i32,
        marker: Marker,
        partitions: Vec<TopicPartition>,
    ) -> Pin<Box<dyn Future<Output = SendResult> + Send + '_>>;
}

/// Writes `marker` on `partition` (this broker's copy of a partition of
/// the transaction, `None` if not hosted here), which this broker must
/// lead, and waits until the ISR holds it (Kafka writes markers with
/// acks=all). A marker on `__consumer_offsets` then completes the
/// producer's pending offsets in the group coordinator. Returns the Kafka
/// code on failure.
pub async fn write_local(
    partition: Option<Arc<Partition>>,
    groups: &GroupCoordinator,
    marker: Marker,
) -> Result<(), i16> {
    let Some(partition) = partition else {
        return Err(code::UNKNOWN_TOPIC_OR_PARTITION);
    };
    // A follower's log is the leader's copy: writing a marker into it
    // would fork it (the append checks again under the replication lock).
    if !partition.is_leader() {
        return Err(code::NOT_LEADER_OR_FOLLOWER);
    }
    let now = sluice_metadata::now_ms();
    let batch = marker.batch(now)?;
    let info = partition
        .append_as(batch, now, AppendOrigin::Coordinator)
        .map_err(|e| {
            tracing::error!(partition = %partition.tp, producer_id = marker.producer_id, "cannot write a transaction marker: {e}");
            e.kafka_error_code()
        })?;
    partition
        .commit(info.last_offset + 1)
        .await
        .map_err(|e| {
            tracing::warn!(partition = %partition.tp, producer_id = marker.producer_id, "transaction marker not replicated: {e}");
            e.kafka_error_code()
        })?;
    if partition.tp.topic == OFFSETS_TOPIC {
        groups.complete_txn(partition.tp.partition, marker.producer_id, marker.commit);
    }
    Ok(())
}
