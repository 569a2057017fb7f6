//! The `__consumer_offsets` topic: how committed offsets and group metadata
//! are written to it and replayed from it.
//!
//! Owns the record format (documented byte by byte in `docs/design.md`,
//! "Consumer groups"). It must not hold group state: the coordinator decides
//! what to write, this module only encodes, appends and decodes.
//!
//! Records use Kafka's own key and value schemas, so tools that read the
//! topic directly (lag monitors, `kafka-dump-log --offsets-decoder`)
//! understand them. A key is `[record type i16][fields]`:
//! - type 1 (`OffsetCommitKey`; Kafka also reads type 0, the same layout):
//!   group, topic, partition, with an `OffsetCommitValue` written at
//!   version 3, what Kafka 3.x and 4.x write;
//! - type 2 (`GroupMetadataKey`): a classic group, with a
//!   `GroupMetadataValue` at version 3, as Kafka writes;
//! - type 3 (`ConsumerGroupMetadataKey`): a KIP-848 group, with a
//!   `ConsumerGroupMetadataValue` (version 0, flexible). Sluice persists only
//!   the group epoch of a KIP-848 group (members rejoin after a restart), so
//!   this one record is all it writes; the assignor and state timestamp ride
//!   in tagged fields from [`SLUICE_TAG_BASE`], which Kafka's readers skip.
//!
//! Before these formats, Sluice wrote JSON keys and values (see [`legacy`]).
//! Replay reads both, forever: a JSON key starts with `{` (0x7b), which no
//! Kafka record type does. Every write uses Kafka's format, and the later
//! record of a group or partition wins whatever its format, so upgrading
//! loses nothing and needs no step.
//!
//! Transactional offset commits (TxnOffsetCommit) are written as Kafka's
//! group coordinator writes them: in a transactional batch of the producer,
//! with its id and epoch and no sequence (-1). They take effect only at
//! that producer's COMMIT marker in the same partition and are dropped at
//! its ABORT marker; [`replay`] reports records with their log offset and
//! producer, and markers, so the coordinator applies that rule in log order.
//!
//! Later records win; a tombstone deletes the key. The topic is created with
//! `cleanup.policy=compact`, no time or size retention and 100 MiB segments
//! (Kafka's defaults), so nothing is lost to retention, and the log
//! cleaner keeps what a restart replays near the live keys plus the active
//! segment.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use sluice_log::LogError;
use sluice_log::producer_state::{AppendOrigin, MarkerType, parse_marker};
use sluice_protocol::codec;
use sluice_records::{BatchBuilder, Batches, NewRecord, NextBatch, decode_records};

use crate::coordinator_record::{
    RecordError, SLUICE_TAG_BASE, TaggedFields, expect_end, read_tagged,
};
use sluice_replica::Partition;

pub mod legacy;

/// The internal topic's name, as in Kafka.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Bytes of encoded records per batch; well below the 1 MiB default
/// `max.message.bytes`, so one batch is never refused by the log.
const MAX_BATCH_BYTES: usize = 256 * 1024;

/// Bytes read per step when replaying a partition.
const REPLAY_READ_BYTES: u32 = 4 * 1024 * 1024;

/// Longest offset metadata the record format can carry: `OffsetCommitValue`
/// holds it as a `STRING`, whose length is an `INT16`.
/// `groups.offset_metadata_max_bytes` may not exceed it.
pub const MAX_OFFSET_METADATA_BYTES: usize = i16::MAX as usize;

/// Key record type of an offset commit as Kafka wrote it before 0.9; same
/// layout as [`OFFSET_COMMIT_KEY`], read but never written.
const LEGACY_OFFSET_COMMIT_KEY: i16 = 0;
/// Key record type of an offset commit (`OffsetCommitKey`).
const OFFSET_COMMIT_KEY: i16 = 1;
/// Key record type of a classic group (`GroupMetadataKey`).
const GROUP_METADATA_KEY: i16 = 2;
/// Key record type of a KIP-848 group's epoch (`ConsumerGroupMetadataKey`).
const CONSUMER_GROUP_METADATA_KEY: i16 = 3;

/// `OffsetCommitValue` version written: the newest non-flexible one, what
/// Kafka 3.x and 4.x write when the commit has no expire timestamp (ours
/// never do; retention is the broker's).
const OFFSET_COMMIT_VALUE_VERSION: i16 = 3;
/// Newest `OffsetCommitValue` version read (4 is the flexible one).
const OFFSET_COMMIT_VALUE_MAX_VERSION: i16 = 4;
/// `GroupMetadataValue` version written: 3, as Kafka 3.x and 4.x write.
const GROUP_METADATA_VALUE_VERSION: i16 = 3;
/// Newest `GroupMetadataValue` version read (4 is the flexible one).
const GROUP_METADATA_VALUE_MAX_VERSION: i16 = 4;
/// `ConsumerGroupMetadataValue` version written and read (flexible).
const CONSUMER_GROUP_METADATA_VALUE_VERSION: i16 = 0;

/// Sluice-only tag in `ConsumerGroupMetadataValue`: the server assignor's
/// name (compact string).
const TAG_CONSUMER_GROUP_ASSIGNOR: u32 = SLUICE_TAG_BASE;
/// Sluice-only tag in `ConsumerGroupMetadataValue`: when the group last
/// changed state (int64 ms), for offset retention of an empty group.
const TAG_CONSUMER_GROUP_STATE_TIMESTAMP: u32 = SLUICE_TAG_BASE + 1;

/// `group_type` of a classic group.
pub const CLASSIC: &str = "classic";
/// `group_type` of a KIP-848 group.
pub const CONSUMER: &str = "consumer";

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetValue {
    /// The next offset to consume.
    pub offset: i64,
    /// Leader epoch of the last consumed record, -1 if unknown.
    pub leader_epoch: i32,
    /// The client's metadata string.
    pub metadata: String,
    /// When the commit happened, ms since the epoch.
    pub commit_timestamp_ms: i64,
}

/// A member of a classic group, as persisted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberValue {
    /// Member id.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
    /// Client id from the request header.
    pub client_id: String,
    /// Client address.
    pub client_host: String,
    /// Session timeout.
    pub session_timeout_ms: i32,
    /// Rebalance timeout.
    pub rebalance_timeout_ms: i32,
    /// Metadata for the selected protocol, opaque.
    pub subscription: Bytes,
    /// The leader's assignment for this member, opaque.
    pub assignment: Bytes,
}

/// A group's metadata, as persisted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupValue {
    /// [`CLASSIC`] or [`CONSUMER`] (KIP-848).
    pub group_type: String,
    /// Classic protocol type ("consumer", "connect", ...), if any.
    pub protocol_type: Option<String>,
    /// Classic generation or KIP-848 group epoch.
    pub generation: i32,
    /// Selected classic protocol, or the KIP-848 server assignor.
    pub protocol: Option<String>,
    /// Leader member id.
    pub leader: Option<String>,
    /// When the group last changed state, ms since the epoch.
    pub state_timestamp_ms: i64,
    /// Members of a stable classic group with their assignments.
    pub members: Vec<MemberValue>,
}

/// One decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replayed {
    /// An offset commit (value `None`: deleted).
    Offset {
        /// Group id.
        group: String,
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
        /// The commit, or `None` for a tombstone.
        value: Option<OffsetValue>,
    },
    /// Group metadata (value `None`: the group was deleted).
    Group {
        /// Group id.
        group: String,
        /// The metadata, or `None` for a tombstone.
        value: Option<GroupValue>,
    },
}

/// A record to write.
#[derive(Debug, Clone)]
pub struct LogRecord {
    /// Encoded key.
    pub key: Bytes,
    /// Encoded value, `None` for a tombstone.
    pub value: Option<Bytes>,
}

/// Why a record in `__consumer_offsets` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum OffsetsLogError {
    /// The log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// Reading segment bytes failed.
    #[error("cannot read __consumer_offsets: {0}")]
    Io(#[from] std::io::Error),
    /// A batch could not be built.
    #[error("cannot build a batch: {0}")]
    Records(#[from] sluice_records::RecordsError),
}

impl LogRecord {
    /// An offset commit, or its tombstone (`None`).
    pub fn offset(
        group: &str,
        topic: &str,
        partition: i32,
        value: Option<&OffsetValue>,
    ) -> Result<Self, RecordError> {
        let mut key = BytesMut::new();
        codec::write_i16(&mut key, OFFSET_COMMIT_KEY);
        codec::write_string(&mut key, group, false)?;
        codec::write_string(&mut key, topic, false)?;
        codec::write_i32(&mut key, partition);
        Ok(LogRecord {
            key: key.freeze(),
            value: value.map(encode_offset_value).transpose()?,
        })
    }

    /// A group's metadata: a `GroupMetadata` record for a classic group, a
    /// `ConsumerGroupMetadata` record for a KIP-848 group.
    pub fn group(group: &str, value: &GroupValue) -> Result<Self, RecordError> {
        if value.group_type == CONSUMER {
            Ok(LogRecord {
                key: group_key(CONSUMER_GROUP_METADATA_KEY, group)?,
                value: Some(encode_consumer_group_value(value)?),
            })
        } else {
            Ok(LogRecord {
                key: group_key(GROUP_METADATA_KEY, group)?,
                value: Some(encode_classic_group_value(value)?),
            })
        }
    }

    /// The tombstones that delete a group: one per group record type, so no
    /// older record of either type outlives the deletion once compaction
    /// keeps only the last record of each key.
    pub fn group_deleted(group: &str) -> Result<[Self; 2], RecordError> {
        Ok([
            LogRecord {
                key: group_key(GROUP_METADATA_KEY, group)?,
                value: None,
            },
            LogRecord {
                key: group_key(CONSUMER_GROUP_METADATA_KEY, group)?,
                value: None,
            },
        ])
    }

    fn size(&self) -> usize {
        self.key.len() + self.value.as_ref().map_or(0, Bytes::len) + 32
    }
}

fn group_key(record_type: i16, group: &str) -> Result<Bytes, RecordError> {
    let mut key = BytesMut::new();
    codec::write_i16(&mut key, record_type);
    codec::write_string(&mut key, group, false)?;
    Ok(key.freeze())
}

fn encode_offset_value(value: &OffsetValue) -> Result<Bytes, RecordError> {
    let mut out = BytesMut::new();
    codec::write_i16(&mut out, OFFSET_COMMIT_VALUE_VERSION);
    codec::write_i64(&mut out, value.offset);
    codec::write_i32(&mut out, value.leader_epoch);
    codec::write_string(&mut out, &value.metadata, false)?;
    codec::write_i64(&mut out, value.commit_timestamp_ms);
    Ok(out.freeze())
}

fn write_nullable_string(
    out: &mut BytesMut,
    s: Option<&str>,
    flexible: bool,
) -> Result<(), RecordError> {
    match s {
        Some(s) => codec::write_string(out, s, flexible)?,
        None => codec::write_null_string(out, flexible),
    }
    Ok(())
}

fn encode_classic_group_value(value: &GroupValue) -> Result<Bytes, RecordError> {
    let mut out = BytesMut::new();
    codec::write_i16(&mut out, GROUP_METADATA_VALUE_VERSION);
    // Kafka writes "" for a group without a protocol type (offsets only).
    codec::write_string(
        &mut out,
        value.protocol_type.as_deref().unwrap_or(""),
        false,
    )?;
    codec::write_i32(&mut out, value.generation);
    write_nullable_string(&mut out, value.protocol.as_deref(), false)?;
    write_nullable_string(&mut out, value.leader.as_deref(), false)?;
    codec::write_i64(&mut out, value.state_timestamp_ms);
    codec::write_array_len(&mut out, value.members.len(), false)?;
    for m in &value.members {
        codec::write_string(&mut out, &m.member_id, false)?;
        write_nullable_string(&mut out, m.instance_id.as_deref(), false)?;
        codec::write_string(&mut out, &m.client_id, false)?;
        codec::write_string(&mut out, &m.client_host, false)?;
        codec::write_i32(&mut out, m.rebalance_timeout_ms);
        codec::write_i32(&mut out, m.session_timeout_ms);
        codec::write_bytes(&mut out, &m.subscription, false)?;
        codec::write_bytes(&mut out, &m.assignment, false)?;
    }
    Ok(out.freeze())
}

fn encode_consumer_group_value(value: &GroupValue) -> Result<Bytes, RecordError> {
    let mut out = BytesMut::new();
    codec::write_i16(&mut out, CONSUMER_GROUP_METADATA_VALUE_VERSION);
    codec::write_i32(&mut out, value.generation);
    let mut tags = TaggedFields::default();
    if let Some(assignor) = &value.protocol {
        let mut b = BytesMut::new();
        codec::write_string(&mut b, assignor, true)?;
        tags.push(TAG_CONSUMER_GROUP_ASSIGNOR, b);
    }
    let mut b = BytesMut::new();
    codec::write_i64(&mut b, value.state_timestamp_ms);
    tags.push(TAG_CONSUMER_GROUP_STATE_TIMESTAMP, b);
    tags.write(&mut out)?;
    Ok(out.freeze())
}

/// Decodes one record, in Kafka's format or the legacy JSON one. A record
/// we cannot parse is skipped with a warning by the caller: it may be a
/// Kafka record type Sluice does not write.
pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Replayed, RecordError> {
    decode_bytes(
        Bytes::copy_from_slice(key),
        value.map(Bytes::copy_from_slice),
    )
}

/// [`decode`] over the record's own buffers, so replay copies nothing but
/// the strings it keeps.
fn decode_bytes(key: Bytes, value: Option<Bytes>) -> Result<Replayed, RecordError> {
    if key.first() == Some(&b'{') {
        return legacy::decode(&key, value.as_deref());
    }
    let mut k = key;
    let record_type = codec::read_i16(&mut k)?;
    match record_type {
        LEGACY_OFFSET_COMMIT_KEY | OFFSET_COMMIT_KEY => {
            let group = codec::read_string(&mut k, false)?;
            let topic = codec::read_string(&mut k, false)?;
            let partition = codec::read_i32(&mut k)?;
            expect_end(&k, "OffsetCommitKey")?;
            Ok(Replayed::Offset {
                group,
                topic,
                partition,
                value: value.map(decode_offset_value).transpose()?,
            })
        }
        GROUP_METADATA_KEY => {
            let group = codec::read_string(&mut k, false)?;
            expect_end(&k, "GroupMetadataKey")?;
            Ok(Replayed::Group {
                group,
                value: value.map(decode_classic_group_value).transpose()?,
            })
        }
        CONSUMER_GROUP_METADATA_KEY => {
            let group = codec::read_string(&mut k, false)?;
            expect_end(&k, "ConsumerGroupMetadataKey")?;
            Ok(Replayed::Group {
                group,
                value: value.map(decode_consumer_group_value).transpose()?,
            })
        }
        other => Err(RecordError::UnknownKeyType(other)),
    }
}

fn decode_offset_value(mut v: Bytes) -> Result<OffsetValue, RecordError> {
    const RECORD: &str = "OffsetCommitValue";
    let version = codec::read_i16(&mut v)?;
    if !(0..=OFFSET_COMMIT_VALUE_MAX_VERSION).contains(&version) {
        return Err(RecordError::UnknownValueVersion {
            record: RECORD,
            version,
        });
    }
    let flexible = version >= 4;
    let offset = codec::read_i64(&mut v)?;
    let leader_epoch = if version >= 3 {
        codec::read_i32(&mut v)?
    } else {
        -1
    };
    let metadata = codec::read_string(&mut v, flexible)?;
    let commit_timestamp_ms = codec::read_i64(&mut v)?;
    if version == 1 {
        // The expire timestamp of commits before KIP-211; retention is the
        // broker's now, so it is read and dropped, as Kafka does.
        codec::read_i64(&mut v)?;
    }
    if flexible {
        TaggedFields::read(&mut v)?;
    }
    expect_end(&v, RECORD)?;
    Ok(OffsetValue {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms,
    })
}

fn decode_classic_group_value(mut v: Bytes) -> Result<GroupValue, RecordError> {
    const RECORD: &str = "GroupMetadataValue";
    /// Smallest member: four empty strings (2 bytes each), two ints, two
    /// empty byte arrays (4 bytes each) at version 0.
    const MIN_MEMBER_BYTES: usize = 8 + 4 + 8;
    let version = codec::read_i16(&mut v)?;
    if !(0..=GROUP_METADATA_VALUE_MAX_VERSION).contains(&version) {
        return Err(RecordError::UnknownValueVersion {
            record: RECORD,
            version,
        });
    }
    let flexible = version >= 4;
    let protocol_type = codec::read_string(&mut v, flexible)?;
    let generation = codec::read_i32(&mut v)?;
    let protocol = codec::read_nullable_string(&mut v, flexible, true)?;
    let leader = codec::read_nullable_string(&mut v, flexible, true)?;
    let state_timestamp_ms = if version >= 2 {
        codec::read_i64(&mut v)?
    } else {
        -1
    };
    let min_member = if flexible { 8 } else { MIN_MEMBER_BYTES };
    let count = codec::read_array_len(&mut v, flexible, min_member)?;
    let mut members = Vec::with_capacity(codec::prealloc(count));
    for _ in 0..count {
        let member_id = codec::read_string(&mut v, flexible)?;
        let instance_id = if version >= 3 {
            codec::read_nullable_string(&mut v, flexible, true)?
        } else {
            None
        };
        let client_id = codec::read_string(&mut v, flexible)?;
        let client_host = codec::read_string(&mut v, flexible)?;
        let rebalance_timeout_ms = if version >= 1 {
            Some(codec::read_i32(&mut v)?)
        } else {
            None
        };
        let session_timeout_ms = codec::read_i32(&mut v)?;
        let subscription = codec::read_bytes(&mut v, flexible)?;
        let assignment = codec::read_bytes(&mut v, flexible)?;
        if flexible {
            TaggedFields::read(&mut v)?;
        }
        members.push(MemberValue {
            member_id,
            instance_id,
            client_id,
            client_host,
            session_timeout_ms,
            // Version 0 had one timeout for both, as Kafka reads it.
            rebalance_timeout_ms: rebalance_timeout_ms.unwrap_or(session_timeout_ms),
            subscription,
            assignment,
        });
    }
    if flexible {
        TaggedFields::read(&mut v)?;
    }
    expect_end(&v, RECORD)?;
    Ok(GroupValue {
        group_type: CLASSIC.to_owned(),
        protocol_type: Some(protocol_type).filter(|t| !t.is_empty()),
        generation,
        protocol,
        leader,
        state_timestamp_ms,
        members,
    })
}

fn decode_consumer_group_value(mut v: Bytes) -> Result<GroupValue, RecordError> {
    const RECORD: &str = "ConsumerGroupMetadataValue";
    let version = codec::read_i16(&mut v)?;
    if version != CONSUMER_GROUP_METADATA_VALUE_VERSION {
        return Err(RecordError::UnknownValueVersion {
            record: RECORD,
            version,
        });
    }
    let epoch = codec::read_i32(&mut v)?;
    let tags = TaggedFields::read(&mut v)?;
    expect_end(&v, RECORD)?;
    let protocol = tags
        .get(TAG_CONSUMER_GROUP_ASSIGNOR)
        .map(|b| read_tagged(b, RECORD, |b| Ok(codec::read_string(b, true)?)))
        .transpose()?;
    let state_timestamp_ms = tags
        .get(TAG_CONSUMER_GROUP_STATE_TIMESTAMP)
        .map(|b| read_tagged(b, RECORD, |b| Ok(codec::read_i64(b)?)))
        .transpose()?
        .unwrap_or(-1);
    Ok(GroupValue {
        group_type: CONSUMER.to_owned(),
        protocol_type: Some(CONSUMER.to_owned()),
        generation: epoch,
        protocol,
        leader: None,
        state_timestamp_ms,
        members: Vec::new(),
    })
}

/// The producer of a transactional offset commit (TxnOffsetCommit): its
/// records go in transactional batches that its transaction's marker ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnProducer {
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch; the log refuses an epoch older than the partition's.
    pub producer_epoch: i16,
}

/// Kafka's `NO_SEQUENCE`: the group coordinator numbers no batches, as
/// Kafka's does not for transactional offset commits; the log checks only
/// the epoch of such a batch.
const NO_SEQUENCE: i32 = -1;

/// Appends `records` to `partition` as one or more batches (one log append,
/// so they land contiguously). With `producer`, the batches are
/// transactional, carry its id and epoch and no sequence, and are appended
/// as the coordinator (the log checks their epoch). Returns the log end
/// offset after the append; call `Partition::commit` with it before
/// acknowledging.
pub fn append(
    partition: &Arc<Partition>,
    records: &[LogRecord],
    producer: Option<TxnProducer>,
    now_ms: i64,
) -> Result<i64, OffsetsLogError> {
    let new_builder = || match producer {
        Some(p) => BatchBuilder::new()
            .producer(p.producer_id, p.producer_epoch, NO_SEQUENCE)
            .transactional(true),
        None => BatchBuilder::new(),
    };
    let mut out = BytesMut::new();
    let mut builder = new_builder();
    let mut size = 0;
    for record in records {
        if size + record.size() > MAX_BATCH_BYTES && !builder.is_empty() {
            out.extend_from_slice(&builder.build()?);
            builder = new_builder();
            size = 0;
        }
        size += record.size();
        builder.push(NewRecord {
            key: Some(record.key.clone()),
            value: record.value.clone(),
            headers: Vec::new(),
            timestamp_ms: now_ms,
        });
    }
    if !builder.is_empty() {
        out.extend_from_slice(&builder.build()?);
    }
    if out.is_empty() {
        return Ok(partition.log().log_end_offset());
    }
    let origin = match producer {
        Some(_) => AppendOrigin::Coordinator,
        None => AppendOrigin::Client,
    };
    let info = partition.append_as(out, now_ms, origin)?;
    Ok(info.last_offset + 1)
}

/// One step of a replay, in log order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayEntry {
    /// A record.
    Record {
        /// The decoded record.
        record: Replayed,
        /// Its offset in the partition.
        log_offset: i64,
        /// The producer of the transactional batch that holds it; `None`
        /// for a plain write, which takes effect at once.
        producer_id: Option<i64>,
    },
    /// A transaction marker: the producer's transactional records before
    /// it take effect (`commit`) or are dropped.
    Marker {
        /// The producer whose transaction ended.
        producer_id: i64,
        /// COMMIT (true) or ABORT (false).
        commit: bool,
    },
}

/// Reads every record and transaction marker of `partition` up to its log
/// end, in offset order, calling `apply` for each. Undecodable records and
/// markers are logged and skipped; a corrupt batch stops the replay of this
/// partition with an error in the log (recovery has already truncated torn
/// tails). Returns how many records were read.
pub fn replay(
    partition: &Partition,
    mut apply: impl FnMut(ReplayEntry),
) -> Result<usize, OffsetsLogError> {
    // To the log end, not the high watermark: on a leader that just took
    // over, records above its high watermark may already be committed
    // (the old leader's ISR held them), and this log is now the one that
    // counts. Kafka's coordinators load to the log end too.
    let mut offset = partition.log().log_start_offset();
    let end = partition.log().log_end_offset();
    let mut count = 0;
    while offset < end {
        let read = partition.log().read(offset, REPLAY_READ_BYTES, end)?;
        let bytes = read.to_bytes()?;
        if bytes.is_empty() {
            break;
        }
        let before = offset;
        for item in Batches::new(&bytes) {
            let NextBatch::Complete {
                position, header, ..
            } = item
            else {
                tracing::error!(partition = %partition.tp, offset, "corrupt batch in __consumer_offsets; replay of this partition stops here");
                return Ok(count);
            };
            offset = header.next_offset();
            let batch = bytes.slice(position..position + header.total_size());
            if header.is_control() {
                match parse_marker(&batch) {
                    Ok((marker, _)) => apply(ReplayEntry::Marker {
                        producer_id: header.producer_id,
                        commit: marker == MarkerType::Commit,
                    }),
                    Err(e) => {
                        tracing::warn!(partition = %partition.tp, offset = header.base_offset, "skipping unreadable transaction marker in __consumer_offsets: {e}")
                    }
                }
                continue;
            }
            let producer_id = (header.is_transactional() && header.producer_id >= 0)
                .then_some(header.producer_id);
            for record in decode_records(&batch)? {
                let log_offset = header.base_offset + i64::from(record.offset_delta);
                let Some(key) = record.key else { continue };
                match decode_bytes(key, record.value) {
                    Ok(record) => {
                        count += 1;
                        apply(ReplayEntry::Record {
                            record,
                            log_offset,
                            producer_id,
                        });
                    }
                    Err(e) => {
                        tracing::warn!(partition = %partition.tp, "skipping unreadable __consumer_offsets record: {e}")
                    }
                }
            }
        }
        if offset == before {
            break;
        }
    }
    Ok(count)
}

/// Kafka's `String.hashCode` over UTF-16 code units (kept here for the
/// tests and callers that name it; see [`crate::internal_topics`]).
pub use crate::internal_topics::java_string_hashcode;

/// The partition of `__consumer_offsets` that holds `group_id`:
/// `Utils.abs(groupId.hashCode) % partitions`, as Kafka maps it.
pub fn partition_for(group_id: &str, partitions: i32) -> i32 {
    crate::internal_topics::partition_for_key(group_id, partitions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_partition_matches_java_hashcode() {
        // Values computed with Java's "...".hashCode().
        assert_eq!(java_string_hashcode(""), 0);
        assert_eq!(java_string_hashcode("a"), 97);
        assert_eq!(java_string_hashcode("my-group"), -1_906_497_762);
        assert_eq!(java_string_hashcode("polygenelubricants"), i32::MIN);
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        assert_eq!(partition_for("my-group", 50), 1_906_497_762 % 50);
        // Characters outside the BMP count as two UTF-16 units.
        assert_eq!(java_string_hashcode("😀"), 1_772_899);
    }

    fn offset_value() -> OffsetValue {
        OffsetValue {
            offset: 42,
            leader_epoch: 3,
            metadata: "meta".into(),
            commit_timestamp_ms: 1,
        }
    }

    fn classic_value() -> GroupValue {
        GroupValue {
            group_type: CLASSIC.into(),
            protocol_type: Some("consumer".into()),
            generation: 4,
            protocol: Some("range".into()),
            leader: Some("m".into()),
            state_timestamp_ms: 9,
            members: vec![MemberValue {
                member_id: "m".into(),
                instance_id: None,
                client_id: "c".into(),
                client_host: "/h".into(),
                session_timeout_ms: 10,
                rebalance_timeout_ms: 20,
                subscription: Bytes::from_static(&[0x00, 0xab]),
                assignment: Bytes::from_static(&[0xff]),
            }],
        }
    }

    /// Expected bytes are written out by hand from Kafka's message specs
    /// (`OffsetCommitKey`, `OffsetCommitValue` v3): classic `STRING` is an
    /// INT16 length and the bytes, integers big-endian.
    #[test]
    fn offset_commit_is_kafkas_offset_commit_key_and_value_v3() {
        let r = LogRecord::offset("g", "t", 7, Some(&offset_value())).expect("encode");
        #[rustfmt::skip]
        let key: &[u8] = &[
            0, 1,             // record type 1: OffsetCommitKey
            0, 1, b'g',       // group
            0, 1, b't',       // topic
            0, 0, 0, 7,       // partition
        ];
        #[rustfmt::skip]
        let value: &[u8] = &[
            0, 3,                         // version 3
            0, 0, 0, 0, 0, 0, 0, 42,      // offset
            0, 0, 0, 3,                   // leaderEpoch
            0, 4, b'm', b'e', b't', b'a', // metadata
            0, 0, 0, 0, 0, 0, 0, 1,       // commitTimestamp
        ];
        assert_eq!(&r.key[..], key);
        assert_eq!(r.value.as_deref(), Some(value));
        assert_eq!(
            decode(key, Some(value)).expect("decode"),
            Replayed::Offset {
                group: "g".into(),
                topic: "t".into(),
                partition: 7,
                value: Some(offset_value())
            }
        );
        let t = LogRecord::offset("g", "t", 7, None).expect("encode");
        assert_eq!(&t.key[..], key);
        assert!(t.value.is_none());
        assert_eq!(
            decode(&t.key, None).expect("decode"),
            Replayed::Offset {
                group: "g".into(),
                topic: "t".into(),
                partition: 7,
                value: None
            }
        );
    }

    #[test]
    fn classic_group_is_kafkas_group_metadata_value_v3() {
        let r = LogRecord::group("g", &classic_value()).expect("encode");
        assert_eq!(&r.key[..], &[0, 2, 0, 1, b'g']);
        #[rustfmt::skip]
        let value: &[u8] = &[
            0, 3,                                              // version 3
            0, 8, b'c', b'o', b'n', b's', b'u', b'm', b'e', b'r', // protocolType
            0, 0, 0, 4,                                        // generation
            0, 5, b'r', b'a', b'n', b'g', b'e',                // protocol
            0, 1, b'm',                                        // leader
            0, 0, 0, 0, 0, 0, 0, 9,                            // currentStateTimestamp
            0, 0, 0, 1,                                        // members: 1
            0, 1, b'm',                                        //   memberId
            0xff, 0xff,                                        //   groupInstanceId: null
            0, 1, b'c',                                        //   clientId
            0, 2, b'/', b'h',                                  //   clientHost
            0, 0, 0, 20,                                       //   rebalanceTimeout
            0, 0, 0, 10,                                       //   sessionTimeout
            0, 0, 0, 2, 0x00, 0xab,                            //   subscription
            0, 0, 0, 1, 0xff,                                  //   assignment
        ];
        assert_eq!(r.value.as_deref(), Some(value));
        assert_eq!(
            decode(&r.key, Some(value)).expect("decode"),
            Replayed::Group {
                group: "g".into(),
                value: Some(classic_value())
            }
        );
        // A group used only to store offsets has no protocol type: "" on disk.
        let empty = GroupValue {
            protocol_type: None,
            protocol: None,
            leader: None,
            members: vec![],
            ..classic_value()
        };
        let r = LogRecord::group("g", &empty).expect("encode");
        assert_eq!(&r.value.as_deref().expect("value")[2..4], &[0, 0]);
        assert_eq!(
            decode(&r.key, r.value.as_deref()).expect("decode"),
            Replayed::Group {
                group: "g".into(),
                value: Some(empty)
            }
        );
    }

    #[test]
    fn consumer_group_is_kafkas_consumer_group_metadata_with_sluice_tags() {
        let value = GroupValue {
            group_type: CONSUMER.into(),
            protocol_type: Some(CONSUMER.into()),
            generation: 5,
            protocol: Some("uniform".into()),
            leader: None,
            state_timestamp_ms: 258,
            members: vec![],
        };
        let r = LogRecord::group("g", &value).expect("encode");
        assert_eq!(&r.key[..], &[0, 3, 0, 1, b'g']);
        #[rustfmt::skip]
        let bytes: &[u8] = &[
            0, 0,              // version 0 (flexible)
            0, 0, 0, 5,        // Epoch
            2,                 // two tagged fields
            0x90, 0x4e, 8,     // tag 10000, 8 bytes: compact string
            8, b'u', b'n', b'i', b'f', b'o', b'r', b'm',
            0x91, 0x4e, 8,     // tag 10001, 8 bytes: int64
            0, 0, 0, 0, 0, 0, 1, 2,
        ];
        assert_eq!(r.value.as_deref(), Some(bytes));
        assert_eq!(
            decode(&r.key, Some(bytes)).expect("decode"),
            Replayed::Group {
                group: "g".into(),
                value: Some(value)
            }
        );
        // Kafka's own record (no Sluice tags, a MetadataHash tag) reads too.
        let kafka: &[u8] = &[0, 0, 0, 0, 0, 7, 1, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1];
        let Replayed::Group { value: Some(g), .. } = decode(&r.key, Some(kafka)).expect("decode")
        else {
            panic!("not a group");
        };
        assert_eq!(
            (g.generation, g.protocol, g.state_timestamp_ms),
            (7, None, -1)
        );
    }

    #[test]
    fn group_deletion_writes_a_tombstone_for_both_group_record_types() {
        let [classic, consumer] = LogRecord::group_deleted("g").expect("encode");
        assert_eq!(&classic.key[..], &[0, 2, 0, 1, b'g']);
        assert_eq!(&consumer.key[..], &[0, 3, 0, 1, b'g']);
        for t in [classic, consumer] {
            assert!(t.value.is_none());
            assert_eq!(
                decode(&t.key, None).expect("decode"),
                Replayed::Group {
                    group: "g".into(),
                    value: None
                }
            );
        }
    }

    #[test]
    fn older_and_flexible_kafka_versions_decode() {
        let key: &[u8] = &[0, 0, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 7];
        #[rustfmt::skip]
        let v1: &[u8] = &[
            0, 1, 0, 0, 0, 0, 0, 0, 0, 42, 0, 1, b'x',
            0, 0, 0, 0, 0, 0, 0, 1,        // commitTimestamp
            0, 0, 0, 0, 0, 0, 0, 2,        // expireTimestamp (v1 only)
        ];
        #[rustfmt::skip]
        let v4: &[u8] = &[
            0, 4, 0, 0, 0, 0, 0, 0, 0, 42, 0, 0, 0, 3,
            2, b'x',                       // compact string
            0, 0, 0, 0, 0, 0, 0, 1,
            1, 9, 1, 0xaa,                 // an unknown tagged field is skipped
        ];
        for (bytes, leader_epoch) in [(v1, -1), (v4, 3)] {
            assert_eq!(
                decode(key, Some(bytes)).expect("decode"),
                Replayed::Offset {
                    group: "g".into(),
                    topic: "t".into(),
                    partition: 7,
                    value: Some(OffsetValue {
                        offset: 42,
                        leader_epoch,
                        metadata: "x".into(),
                        commit_timestamp_ms: 1
                    })
                }
            );
        }
        // GroupMetadataValue v0: no rebalance timeout (the session timeout
        // stands in), no state timestamp, no instance id.
        #[rustfmt::skip]
        let g0: &[u8] = &[
            0, 0, 0, 1, b'c', 0, 0, 0, 2, 0, 1, b'r', 0, 1, b'm',
            0, 0, 0, 1, 0, 1, b'm', 0, 1, b'c', 0, 1, b'h',
            0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        let Replayed::Group { value: Some(g), .. } =
            decode(&[0, 2, 0, 1, b'g'], Some(g0)).expect("decode")
        else {
            panic!("not a group");
        };
        assert_eq!(g.members[0].rebalance_timeout_ms, 10);
        assert_eq!(g.state_timestamp_ms, -1);
        // GroupMetadataValue v4 (flexible): compact strings, tags per member.
        #[rustfmt::skip]
        let g4: &[u8] = &[
            0, 4, 2, b'c', 0, 0, 0, 2, 2, b'r', 0, 0, 0, 0, 0, 0, 0, 0, 5,
            2, 2, b'm', 0, 2, b'c', 2, b'h', 0, 0, 0, 1, 0, 0, 0, 10, 1, 1, 0,
            0,
        ];
        let Replayed::Group { value: Some(g), .. } =
            decode(&[0, 2, 0, 1, b'g'], Some(g4)).expect("decode")
        else {
            panic!("not a group");
        };
        assert_eq!(g.leader, None);
        assert_eq!(g.members[0].instance_id, None);
        assert_eq!(g.members[0].rebalance_timeout_ms, 1);
        assert_eq!(g.members[0].subscription.len(), 0);
    }

    #[test]
    fn bad_records_are_errors_not_panics() {
        // Unknown record types (Kafka's other KIP-848 records) and versions.
        assert!(matches!(
            decode(&[0, 5, 0, 1, b'g'], None),
            Err(RecordError::UnknownKeyType(5))
        ));
        let key: &[u8] = &[0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 7];
        assert!(matches!(
            decode(key, Some(&[0, 9])),
            Err(RecordError::UnknownValueVersion { .. })
        ));
        // Truncated, trailing bytes, and a hostile member count.
        assert!(decode(&key[..6], None).is_err());
        let mut long = key.to_vec();
        long.push(0);
        assert!(matches!(
            decode(&long, None),
            Err(RecordError::TrailingBytes { .. })
        ));
        #[rustfmt::skip]
        let hostile: &[u8] = &[
            0, 3, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0,
            0x7f, 0xff, 0xff, 0xff,        // i32::MAX members, no bytes for them
        ];
        assert!(decode(&[0, 2, 0, 1, b'g'], Some(hostile)).is_err());
        // A string longer than the format allows is an encode error.
        let big = OffsetValue {
            metadata: "x".repeat(MAX_OFFSET_METADATA_BYTES + 1),
            ..offset_value()
        };
        assert!(LogRecord::offset("g", "t", 0, Some(&big)).is_err());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn text() -> impl Strategy<Value = String> {
            ".{0,40}"
        }

        fn member() -> impl Strategy<Value = MemberValue> {
            (
                text(),
                proptest::option::of(text()),
                text(),
                text(),
                any::<i32>(),
                any::<i32>(),
                proptest::collection::vec(any::<u8>(), 0..64),
                proptest::collection::vec(any::<u8>(), 0..64),
            )
                .prop_map(
                    |(id, instance, client, host, session, rebalance, sub, asg)| MemberValue {
                        member_id: id,
                        instance_id: instance,
                        client_id: client,
                        client_host: host,
                        session_timeout_ms: session,
                        rebalance_timeout_ms: rebalance,
                        subscription: Bytes::from(sub),
                        assignment: Bytes::from(asg),
                    },
                )
        }

        proptest! {
            #[test]
            fn offset_records_round_trip(
                group in text(), topic in text(), partition in any::<i32>(),
                offset in any::<i64>(), leader_epoch in any::<i32>(),
                metadata in text(), ts in any::<i64>(),
            ) {
                let value = OffsetValue { offset, leader_epoch, metadata, commit_timestamp_ms: ts };
                let r = LogRecord::offset(&group, &topic, partition, Some(&value)).expect("encode");
                prop_assert_eq!(
                    decode(&r.key, r.value.as_deref()).expect("decode"),
                    Replayed::Offset { group, topic, partition, value: Some(value) }
                );
            }

            #[test]
            fn classic_group_records_round_trip(
                group in text(),
                protocol_type in proptest::option::of(".{1,20}"),
                generation in any::<i32>(),
                protocol in proptest::option::of(text()),
                leader in proptest::option::of(text()),
                ts in any::<i64>(),
                members in proptest::collection::vec(member(), 0..4),
            ) {
                let value = GroupValue {
                    group_type: CLASSIC.into(), protocol_type, generation, protocol, leader,
                    state_timestamp_ms: ts, members,
                };
                let r = LogRecord::group(&group, &value).expect("encode");
                prop_assert_eq!(
                    decode(&r.key, r.value.as_deref()).expect("decode"),
                    Replayed::Group { group, value: Some(value) }
                );
            }

            #[test]
            fn consumer_group_records_round_trip(
                group in text(), epoch in any::<i32>(),
                assignor in proptest::option::of(text()), ts in any::<i64>(),
            ) {
                let value = GroupValue {
                    group_type: CONSUMER.into(), protocol_type: Some(CONSUMER.into()),
                    generation: epoch, protocol: assignor, leader: None,
                    state_timestamp_ms: ts, members: vec![],
                };
                let r = LogRecord::group(&group, &value).expect("encode");
                prop_assert_eq!(
                    decode(&r.key, r.value.as_deref()).expect("decode"),
                    Replayed::Group { group, value: Some(value) }
                );
            }

            /// Whatever the bytes, decoding answers (usually an error) and
            /// never panics or allocates beyond what the bytes justify.
            #[test]
            fn arbitrary_bytes_never_panic(
                key in proptest::collection::vec(any::<u8>(), 0..64),
                value in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..128)),
                record_type in 0i16..4,
            ) {
                let _ = decode(&key, value.as_deref());
                let mut typed = record_type.to_be_bytes().to_vec();
                typed.extend_from_slice(&key);
                let _ = decode(&typed, value.as_deref());
            }
        }
    }
}
