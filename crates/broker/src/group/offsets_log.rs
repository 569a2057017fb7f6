//! The `__consumer_offsets` topic: how committed offsets and group metadata
//! are written to it and replayed from it.
//!
//! Owns the record format (documented in `docs/design.md`, "Consumer
//! groups"). It must not hold group state: the coordinator decides what to
//! write, this module only encodes, appends and decodes.
//!
//! Every record has a JSON key and a JSON value (or a null value, a
//! tombstone). Keys are externally tagged so the two kinds cannot be
//! confused:
//! - `{"offset":{"group":"g","topic":"t","partition":0}}` with an
//!   [`OffsetValue`];
//! - `{"group":{"group":"g"}}` with a [`GroupValue`].
//!
//! Later records win; a tombstone deletes the key. The topic is created with
//! `cleanup.policy=compact` and no time or size retention, so nothing is lost
//! to retention; compaction itself is not implemented yet, so the log only
//! grows and a restart replays all of it.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use sluice_log::LogError;
use sluice_records::{BatchBuilder, Batches, NewRecord, NextBatch, decode_records};

use crate::partition::Partition;

/// The internal topic's name, as in Kafka.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Bytes of encoded records per batch; well below the 1 MiB default
/// `max.message.bytes`, so one batch is never refused by the log.
const MAX_BATCH_BYTES: usize = 256 * 1024;

/// Bytes read per step when replaying a partition.
const REPLAY_READ_BYTES: u32 = 4 * 1024 * 1024;

/// The key of a record in `__consumer_offsets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RecordKey {
    /// A committed offset of one partition.
    Offset {
        /// Group id.
        group: String,
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
    },
    /// A group's metadata.
    Group {
        /// Group id.
        group: String,
    },
}

impl RecordKey {
    /// The group the record belongs to.
    pub fn group(&self) -> &str {
        match self {
            RecordKey::Offset { group, .. } | RecordKey::Group { group } => group,
        }
    }
}

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Metadata for the selected protocol, hex.
    pub subscription: String,
    /// The leader's assignment for this member, hex.
    pub assignment: String,
}

/// A group's metadata, as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupValue {
    /// "classic" or "consumer" (KIP-848).
    pub group_type: String,
    /// Classic protocol type ("consumer", "connect", ...), if any.
    pub protocol_type: Option<String>,
    /// Classic generation or KIP-848 group epoch.
    pub generation: i32,
    /// Selected classic protocol (assignor).
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

fn to_json<T: Serialize>(value: &T) -> Bytes {
    // Serializing these plain structs cannot fail: no maps with non-string
    // keys, no floats.
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

impl LogRecord {
    /// An offset commit.
    pub fn offset(group: &str, topic: &str, partition: i32, value: Option<&OffsetValue>) -> Self {
        LogRecord {
            key: to_json(&RecordKey::Offset {
                group: group.to_owned(),
                topic: topic.to_owned(),
                partition,
            }),
            value: value.map(to_json),
        }
    }

    /// Group metadata.
    pub fn group(group: &str, value: Option<&GroupValue>) -> Self {
        LogRecord {
            key: to_json(&RecordKey::Group {
                group: group.to_owned(),
            }),
            value: value.map(to_json),
        }
    }

    fn size(&self) -> usize {
        self.key.len() + self.value.as_ref().map_or(0, Bytes::len) + 32
    }
}

/// Decodes one record. A record we cannot parse is skipped with a warning
/// by the caller: it may come from a newer version of the broker.
pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Replayed, serde_json::Error> {
    let key: RecordKey = serde_json::from_slice(key)?;
    Ok(match key {
        RecordKey::Offset {
            group,
            topic,
            partition,
        } => Replayed::Offset {
            group,
            topic,
            partition,
            value: value.map(serde_json::from_slice).transpose()?,
        },
        RecordKey::Group { group } => Replayed::Group {
            group,
            value: value.map(serde_json::from_slice).transpose()?,
        },
    })
}

/// Appends `records` to `partition` as one or more batches (one log append,
/// so they land contiguously). Returns the log end offset after the append;
/// call `Partition::commit` with it before acknowledging.
pub fn append(
    partition: &Arc<Partition>,
    records: &[LogRecord],
    now_ms: i64,
) -> Result<i64, OffsetsLogError> {
    let mut out = BytesMut::new();
    let mut builder = BatchBuilder::new();
    let mut size = 0;
    for record in records {
        if size + record.size() > MAX_BATCH_BYTES && !builder.is_empty() {
            out.extend_from_slice(&builder.build()?);
            builder = BatchBuilder::new();
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
    let info = partition.append(out, now_ms)?;
    Ok(info.last_offset + 1)
}

/// Reads every record of `partition` up to its high watermark, in offset
/// order, calling `apply` for each. Undecodable records are logged and
/// skipped; a corrupt batch stops the replay of this partition with an error
/// in the log (recovery has already truncated torn tails).
pub fn replay(
    partition: &Partition,
    mut apply: impl FnMut(Replayed),
) -> Result<usize, OffsetsLogError> {
    let mut offset = partition.log().log_start_offset();
    let end = partition.high_watermark();
    let mut count = 0;
    while offset < end {
        let read = partition.read(offset, REPLAY_READ_BYTES)?;
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
            if header.is_control() {
                continue;
            }
            let batch = bytes.slice(position..position + header.total_size());
            for record in decode_records(&batch)? {
                let Some(key) = record.key else { continue };
                match decode(&key, record.value.as_deref()) {
                    Ok(r) => {
                        count += 1;
                        apply(r);
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

/// Kafka's `String.hashCode` over UTF-16 code units, so a group maps to the
/// same `__consumer_offsets` partition as on a Kafka cluster.
pub fn java_string_hashcode(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// The partition of `__consumer_offsets` that holds `group_id`:
/// `Utils.abs(groupId.hashCode) % partitions`, where Kafka's `abs` maps
/// `i32::MIN` to 0.
pub fn partition_for(group_id: &str, partitions: i32) -> i32 {
    let h = java_string_hashcode(group_id);
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions.max(1)
}

/// Lower-case hex, for opaque bytes in JSON values.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Parses [`hex`] output; `None` if malformed.
pub fn unhex(s: &str) -> Option<Bytes> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    s.as_bytes()
        .chunks(2)
        .map(|p| Some((digit(p[0])? << 4) | digit(p[1])?))
        .collect::<Option<Vec<u8>>>()
        .map(Bytes::from)
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

    #[test]
    fn records_round_trip_and_tombstones_decode() {
        let value = OffsetValue {
            offset: 42,
            leader_epoch: 3,
            metadata: "meta".into(),
            commit_timestamp_ms: 1,
        };
        let r = LogRecord::offset("g", "t", 7, Some(&value));
        assert_eq!(
            decode(&r.key, r.value.as_deref()).expect("decode"),
            Replayed::Offset {
                group: "g".into(),
                topic: "t".into(),
                partition: 7,
                value: Some(value)
            }
        );
        let t = LogRecord::group("g", None);
        assert_eq!(
            decode(&t.key, None).expect("decode"),
            Replayed::Group {
                group: "g".into(),
                value: None
            }
        );
        assert!(decode(b"{\"nope\":{}}", None).is_err());
    }

    #[test]
    fn hex_round_trips_and_rejects_garbage() {
        let data = [0u8, 1, 0xab, 0xff];
        assert_eq!(unhex(&hex(&data)).as_deref(), Some(&data[..]));
        assert!(unhex("abc").is_none());
        assert!(unhex("zz").is_none());
    }
}
