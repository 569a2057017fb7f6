//! The record format of `__transaction_state`: Kafka's `TransactionLogKey`
//! and `TransactionLogValue`, so tools that read the topic directly
//! understand it.
//!
//! One record per state change of a transactional id, keyed by the id, so
//! replaying a partition and keeping the last value per key rebuilds the
//! coordinator (and compaction, once it exists, keeps exactly that).
//!
//! - key: `[version i16 = 0][transactionalId STRING]` (an INT16 length, then
//!   UTF-8). Sluice's keys always had these bytes.
//! - value: `[version i16 = 1][TransactionLogValue v1]`, the flexible
//!   version: producerId i64, producerEpoch i16, transactionTimeoutMs i32,
//!   transactionStatus i8 (Kafka's state ids), transactionPartitions (compact
//!   array of topic and partition ids; null when Empty, as Kafka writes),
//!   transactionLastUpdateTimestampMs i64, transactionStartTimestampMs i64,
//!   tagged fields. What Kafka has no field for rides in tagged fields from
//!   [`SLUICE_TAG_BASE`], which Kafka's readers skip: [`TAG_LAST_PRODUCER_ID`],
//!   [`TAG_LAST_PRODUCER_EPOCH`], [`TAG_GROUPS`], [`TAG_PENDING_OFFSETS`].
//! - a null value is a tombstone.
//!
//! Before Kafka's format the value was `[version i16 = 0][JSON of
//! TxnRecord]`. Replay still reads it: a version 0 value whose next byte is
//! `{` is JSON (a Kafka version 0 value starts with a producer id, whose
//! first byte is 0 for any id below 2^56). Every write uses version 1, and
//! the later record of an id wins, so upgrading needs no step.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use sluice_protocol::codec;
use sluice_records::{BatchBuilder, NewRecord, RecordsError};

use crate::coordinator_record::{
    RecordError, SLUICE_TAG_BASE, TaggedFields, expect_end, read_tagged,
};

/// Name of the internal topic.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// Kafka's `transaction.state.log.num.partitions` default.
pub const TRANSACTION_STATE_PARTITIONS: i32 = 50;

/// Longest transactional id accepted: ids are keys on disk and in memory.
pub const MAX_TRANSACTIONAL_ID_BYTES: usize = 1024;

/// The partition of `__transaction_state` that holds `transactional_id`:
/// Kafka's `Utils.abs(transactionalId.hashCode) % partitions`, so an id
/// has the same coordinator partition as on a Kafka cluster.
///
/// Before this matched Kafka, Sluice masked the sign bit instead of taking
/// the absolute value, which differs for every negative hash; see
/// [`legacy_partition_for`] for how records written that way still load.
pub fn partition_for(transactional_id: &str) -> i32 {
    crate::internal_topics::partition_for_key(transactional_id, TRANSACTION_STATE_PARTITIONS)
}

/// The partition Sluice wrote `transactional_id` to before
/// [`partition_for`] matched Kafka (`hashCode & i32::MAX`). Load reads a
/// record found there only when the id's own partition has none.
pub fn legacy_partition_for(transactional_id: &str) -> i32 {
    (crate::internal_topics::java_string_hashcode(transactional_id) & i32::MAX)
        % TRANSACTION_STATE_PARTITIONS
}

/// A transaction's persisted state. Field names are those of the legacy
/// JSON format, still read on replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnRecord {
    /// Current producer id.
    pub producer_id: i64,
    /// Current epoch.
    pub producer_epoch: i16,
    /// Producer id before the last bump, -1 if none (KIP-360 retries).
    pub last_producer_id: i64,
    /// Epoch before the last bump, -1 if none.
    pub last_producer_epoch: i16,
    /// `transaction.timeout.ms` the producer asked for.
    pub timeout_ms: i32,
    /// State name, Kafka's spelling (`Ongoing`, `PrepareCommit`, ...).
    pub state: String,
    /// Partitions in the transaction.
    pub partitions: Vec<(String, i32)>,
    /// Consumer groups whose offsets are in the transaction.
    pub groups: Vec<String>,
    /// Offsets committed in the transaction (applied on commit): group,
    /// topic, partition, offset, leader epoch, metadata.
    pub pending_offsets: Vec<PendingOffset>,
    /// When the transaction started (ms since the epoch), -1 if none open.
    pub start_ms: i64,
    /// When this record was written.
    pub last_update_ms: i64,
}

/// One offset commit inside a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingOffset {
    /// Consumer group.
    pub group: String,
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Next offset to consume.
    pub offset: i64,
    /// Leader epoch, -1 if unknown.
    pub leader_epoch: i32,
    /// Client metadata.
    pub metadata: Option<String>,
}

/// Why a record could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum StateLogError {
    /// The key is not a `TransactionLogKey`.
    #[error("bad __transaction_state key: {0}")]
    BadKey(RecordError),
    /// The value is not one we read.
    #[error("bad __transaction_state value: {0}")]
    BadValue(RecordError),
    /// The record could not be encoded.
    #[error("cannot encode a __transaction_state record: {0}")]
    Encode(RecordError),
    /// The batch did not decode.
    #[error(transparent)]
    Records(#[from] RecordsError),
}

/// Key version written and read (`TransactionLogKey`, Kafka's only one).
const KEY_VERSION: i16 = 0;
/// Value version written: the flexible one, so Sluice's extra fields can
/// ride in tagged fields.
const VALUE_VERSION: i16 = 1;
/// Sluice-only tag: producer id before the last bump, for KIP-360 retries
/// (int64; absent means -1). Kafka's own `PreviousProducerId` (tag 0) means
/// the id of the last committed transaction, which is not the same thing.
pub const TAG_LAST_PRODUCER_ID: u32 = SLUICE_TAG_BASE;
/// Sluice-only tag: epoch before the last bump (int16; absent means -1).
pub const TAG_LAST_PRODUCER_EPOCH: u32 = SLUICE_TAG_BASE + 1;
/// Sluice-only tag: consumer groups in the transaction (compact array of
/// compact strings; absent means none).
pub const TAG_GROUPS: u32 = SLUICE_TAG_BASE + 2;
/// Sluice-only tag: offsets committed in the transaction, applied on commit
/// (compact array of {group, topic compact strings, partition i32, offset
/// i64, leader epoch i32, metadata compact nullable string, tagged fields};
/// absent means none). Kafka keeps these in `__consumer_offsets` instead.
pub const TAG_PENDING_OFFSETS: u32 = SLUICE_TAG_BASE + 3;

/// Kafka's `TransactionState` ids, as `transactionStatus` stores them.
const STATES: [(&str, i8); 8] = [
    ("Empty", 0),
    ("Ongoing", 1),
    ("PrepareCommit", 2),
    ("PrepareAbort", 3),
    ("CompleteCommit", 4),
    ("CompleteAbort", 5),
    ("Dead", 6),
    ("PrepareEpochFence", 7),
];

const VALUE_RECORD: &str = "TransactionLogValue";

/// Encodes a key.
pub fn encode_key(transactional_id: &str) -> Result<Bytes, StateLogError> {
    let mut key = BytesMut::with_capacity(4 + transactional_id.len());
    codec::write_i16(&mut key, KEY_VERSION);
    codec::write_string(&mut key, transactional_id, false)
        .map_err(|e| StateLogError::Encode(e.into()))?;
    Ok(key.freeze())
}

/// Decodes a key.
pub fn decode_key(key: &[u8]) -> Result<String, StateLogError> {
    let read = || -> Result<String, RecordError> {
        let mut k = Bytes::copy_from_slice(key);
        let version = codec::read_i16(&mut k)?;
        if version != KEY_VERSION {
            return Err(RecordError::UnknownKeyType(version));
        }
        let id = codec::read_string(&mut k, false)?;
        expect_end(&k, "TransactionLogKey")?;
        Ok(id)
    };
    read().map_err(StateLogError::BadKey)
}

/// Encodes a value.
pub fn encode_value(record: &TxnRecord) -> Result<Bytes, StateLogError> {
    write_value(record).map_err(StateLogError::Encode)
}

fn write_value(r: &TxnRecord) -> Result<Bytes, RecordError> {
    let status = STATES
        .iter()
        .find(|(name, _)| *name == r.state)
        .map(|(_, id)| *id)
        .ok_or_else(|| RecordError::Invalid {
            record: VALUE_RECORD,
            reason: format!("unknown transaction state {:?}", r.state),
        })?;
    let mut out = BytesMut::new();
    codec::write_i16(&mut out, VALUE_VERSION);
    codec::write_i64(&mut out, r.producer_id);
    codec::write_i16(&mut out, r.producer_epoch);
    codec::write_i32(&mut out, r.timeout_ms);
    codec::write_i8(&mut out, status);
    if r.state == "Empty" && r.partitions.is_empty() {
        codec::write_null_array(&mut out, true);
    } else {
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (topic, p) in &r.partitions {
            by_topic.entry(topic).or_default().push(*p);
        }
        codec::write_array_len(&mut out, by_topic.len(), true)?;
        for (topic, partitions) in by_topic {
            codec::write_string(&mut out, topic, true)?;
            codec::write_array_len(&mut out, partitions.len(), true)?;
            for p in partitions {
                codec::write_i32(&mut out, p);
            }
            TaggedFields::default().write(&mut out)?;
        }
    }
    codec::write_i64(&mut out, r.last_update_ms);
    codec::write_i64(&mut out, r.start_ms);
    let mut tags = TaggedFields::default();
    if r.last_producer_id != -1 {
        let mut b = BytesMut::new();
        codec::write_i64(&mut b, r.last_producer_id);
        tags.push(TAG_LAST_PRODUCER_ID, b);
    }
    if r.last_producer_epoch != -1 {
        let mut b = BytesMut::new();
        codec::write_i16(&mut b, r.last_producer_epoch);
        tags.push(TAG_LAST_PRODUCER_EPOCH, b);
    }
    if !r.groups.is_empty() {
        let mut b = BytesMut::new();
        codec::write_array_len(&mut b, r.groups.len(), true)?;
        for g in &r.groups {
            codec::write_string(&mut b, g, true)?;
        }
        tags.push(TAG_GROUPS, b);
    }
    if !r.pending_offsets.is_empty() {
        let mut b = BytesMut::new();
        codec::write_array_len(&mut b, r.pending_offsets.len(), true)?;
        for o in &r.pending_offsets {
            codec::write_string(&mut b, &o.group, true)?;
            codec::write_string(&mut b, &o.topic, true)?;
            codec::write_i32(&mut b, o.partition);
            codec::write_i64(&mut b, o.offset);
            codec::write_i32(&mut b, o.leader_epoch);
            match &o.metadata {
                Some(m) => codec::write_string(&mut b, m, true)?,
                None => codec::write_null_string(&mut b, true),
            }
            TaggedFields::default().write(&mut b)?;
        }
        tags.push(TAG_PENDING_OFFSETS, b);
    }
    tags.write(&mut out)?;
    Ok(out.freeze())
}

/// Decodes a value: Kafka's version 0 or 1, or the legacy JSON.
pub fn decode_value(value: &[u8]) -> Result<TxnRecord, StateLogError> {
    read_value(value).map_err(StateLogError::BadValue)
}

fn read_value(value: &[u8]) -> Result<TxnRecord, RecordError> {
    let mut v = Bytes::copy_from_slice(value);
    let version = codec::read_i16(&mut v)?;
    if version == 0 && v.first() == Some(&b'{') {
        return Ok(serde_json::from_slice(&v)?);
    }
    if !(0..=VALUE_VERSION).contains(&version) {
        return Err(RecordError::UnknownValueVersion {
            record: VALUE_RECORD,
            version,
        });
    }
    let flexible = version >= 1;
    let producer_id = codec::read_i64(&mut v)?;
    let producer_epoch = codec::read_i16(&mut v)?;
    let timeout_ms = codec::read_i32(&mut v)?;
    let status = codec::read_i8(&mut v)?;
    let state = STATES
        .iter()
        .find(|(_, id)| *id == status)
        .map(|(name, _)| (*name).to_owned())
        .ok_or_else(|| RecordError::Invalid {
            record: VALUE_RECORD,
            reason: format!("unknown transaction status {status}"),
        })?;
    // A topic entry is at least a string length and an array count.
    let min_topic = if flexible { 3 } else { 6 };
    let topics = codec::read_nullable_array_len(&mut v, flexible, min_topic, true)?;
    let mut partitions = Vec::new();
    for _ in 0..topics.unwrap_or(0) {
        let topic = codec::read_string(&mut v, flexible)?;
        let count = codec::read_array_len(&mut v, flexible, 4)?;
        for _ in 0..count {
            partitions.push((topic.clone(), codec::read_i32(&mut v)?));
        }
        if flexible {
            TaggedFields::read(&mut v)?;
        }
    }
    let last_update_ms = codec::read_i64(&mut v)?;
    let start_ms = codec::read_i64(&mut v)?;
    let tags = if flexible {
        TaggedFields::read(&mut v)?
    } else {
        TaggedFields::default()
    };
    expect_end(&v, VALUE_RECORD)?;
    let last_producer_id = tags
        .get(TAG_LAST_PRODUCER_ID)
        .map(|b| read_tagged(b, VALUE_RECORD, |b| Ok(codec::read_i64(b)?)))
        .transpose()?
        .unwrap_or(-1);
    let last_producer_epoch = tags
        .get(TAG_LAST_PRODUCER_EPOCH)
        .map(|b| read_tagged(b, VALUE_RECORD, |b| Ok(codec::read_i16(b)?)))
        .transpose()?
        .unwrap_or(-1);
    let groups = tags
        .get(TAG_GROUPS)
        .map(|b| read_tagged(b, VALUE_RECORD, read_groups))
        .transpose()?
        .unwrap_or_default();
    let pending_offsets = tags
        .get(TAG_PENDING_OFFSETS)
        .map(|b| read_tagged(b, VALUE_RECORD, read_pending_offsets))
        .transpose()?
        .unwrap_or_default();
    Ok(TxnRecord {
        producer_id,
        producer_epoch,
        last_producer_id,
        last_producer_epoch,
        timeout_ms,
        state,
        partitions,
        groups,
        pending_offsets,
        start_ms,
        last_update_ms,
    })
}

fn read_groups(b: &mut Bytes) -> Result<Vec<String>, RecordError> {
    let count = codec::read_array_len(b, true, 1)?;
    let mut groups = Vec::with_capacity(codec::prealloc(count));
    for _ in 0..count {
        groups.push(codec::read_string(b, true)?);
    }
    Ok(groups)
}

fn read_pending_offsets(b: &mut Bytes) -> Result<Vec<PendingOffset>, RecordError> {
    /// Two compact strings, i32, i64, i32, a compact string, a tag count.
    const MIN_OFFSET_BYTES: usize = 1 + 1 + 4 + 8 + 4 + 1 + 1;
    let count = codec::read_array_len(b, true, MIN_OFFSET_BYTES)?;
    let mut offsets = Vec::with_capacity(codec::prealloc(count));
    for _ in 0..count {
        let group = codec::read_string(b, true)?;
        let topic = codec::read_string(b, true)?;
        let partition = codec::read_i32(b)?;
        let offset = codec::read_i64(b)?;
        let leader_epoch = codec::read_i32(b)?;
        let metadata = codec::read_nullable_string(b, true, true)?;
        TaggedFields::read(b)?;
        offsets.push(PendingOffset {
            group,
            topic,
            partition,
            offset,
            leader_epoch,
            metadata,
        });
    }
    Ok(offsets)
}

/// One batch holding one state record.
pub fn batch(
    transactional_id: &str,
    record: Option<&TxnRecord>,
    now_ms: i64,
) -> Result<BytesMut, StateLogError> {
    let value = record.map(encode_value).transpose()?;
    Ok(BatchBuilder::new()
        .record(NewRecord {
            key: Some(encode_key(transactional_id)?),
            value,
            headers: vec![],
            timestamp_ms: now_ms,
        })
        .build()?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ongoing() -> TxnRecord {
        TxnRecord {
            producer_id: 4,
            producer_epoch: 2,
            last_producer_id: -1,
            last_producer_epoch: 1,
            timeout_ms: 60_000,
            state: "Ongoing".into(),
            partitions: vec![("t".into(), 3), ("t".into(), 5), ("u".into(), 0)],
            groups: vec!["g".into()],
            pending_offsets: vec![PendingOffset {
                group: "g".into(),
                topic: "t".into(),
                partition: 0,
                offset: 9,
                leader_epoch: -1,
                metadata: None,
            }],
            start_ms: 1,
            last_update_ms: 2,
        }
    }

    /// The old encoder: `[version 0][serde_json of TxnRecord]`.
    fn legacy_value(r: &TxnRecord) -> Vec<u8> {
        let mut v = vec![0, 0];
        v.extend_from_slice(&serde_json::to_vec(r).unwrap());
        v
    }

    #[test]
    fn key_and_value_round_trip() {
        let r = ongoing();
        assert_eq!(decode_key(&encode_key("tx-é").unwrap()).unwrap(), "tx-é");
        assert_eq!(decode_value(&encode_value(&r).unwrap()).unwrap(), r);
        // Every field at a non-default value survives too.
        let full = TxnRecord {
            last_producer_id: 3,
            pending_offsets: vec![PendingOffset {
                metadata: Some("m".into()),
                ..ongoing().pending_offsets[0].clone()
            }],
            ..ongoing()
        };
        assert_eq!(decode_value(&encode_value(&full).unwrap()).unwrap(), full);
        assert!(decode_key(&[0, 0, 0, 9, b'a']).is_err());
        assert!(decode_key(&[0, 1, 0, 1, b'a']).is_err());
        assert!(decode_value(&[0, 2, b'{']).is_err());
    }

    /// Expected bytes written out by hand from Kafka's `TransactionLogKey`
    /// and `TransactionLogValue` v1 specs (flexible: compact arrays and
    /// strings are length + 1 as an unsigned varint; tagged fields at the end
    /// of each struct).
    #[test]
    fn records_are_kafkas_transaction_log_key_and_value_v1() {
        assert_eq!(&encode_key("tx").unwrap()[..], &[0, 0, 0, 2, b't', b'x']);
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0, 1,                          // version 1
            0, 0, 0, 0, 0, 0, 0, 4,        // ProducerId
            0, 2,                          // ProducerEpoch
            0, 0, 0xea, 0x60,              // TransactionTimeoutMs 60000
            1,                             // TransactionStatus: Ongoing
            3,                             // TransactionPartitions: 2 topics
            2, b't', 3, 0, 0, 0, 3, 0, 0, 0, 5, 0, //   t: [3, 5], no tags
            2, b'u', 2, 0, 0, 0, 0, 0,     //   u: [0], no tags
            0, 0, 0, 0, 0, 0, 0, 2,        // TransactionLastUpdateTimestampMs
            0, 0, 0, 0, 0, 0, 0, 1,        // TransactionStartTimestampMs
            3,                             // three tagged fields
            0x91, 0x4e, 2, 0, 1,           //   10001 last epoch: int16 1
            0x92, 0x4e, 3, 2, 2, b'g',     //   10002 groups: ["g"]
            0x93, 0x4e, 23,                //   10003 pending offsets, 23 bytes
            2, 2, b'g', 2, b't', 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 9, 0xff, 0xff, 0xff, 0xff, 0, 0,
        ];
        assert_eq!(&encode_value(&ongoing()).unwrap()[..], expected);

        // An Empty transaction: null partitions (as Kafka writes), no tags.
        let empty = TxnRecord {
            last_producer_epoch: -1,
            state: "Empty".into(),
            partitions: vec![],
            groups: vec![],
            pending_offsets: vec![],
            start_ms: -1,
            ..ongoing()
        };
        let bytes = encode_value(&empty).unwrap();
        assert_eq!(bytes[16], 0, "null compact array");
        assert_eq!(bytes.len(), 2 + 8 + 2 + 4 + 1 + 1 + 8 + 8 + 1);
        assert_eq!(decode_value(&bytes).unwrap(), empty);
    }

    #[test]
    fn kafka_version_0_and_unknown_tags_decode() {
        #[rustfmt::skip]
        let v0: &[u8] = &[
            0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 100, 4,
            0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 1, 0, 0, 0, 2,
            0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 6,
        ];
        let r = decode_value(v0).unwrap();
        assert_eq!(r.producer_id, 7);
        assert_eq!(r.state, "CompleteCommit");
        assert_eq!(r.partitions, vec![("t".to_owned(), 2)]);
        assert_eq!(
            (r.last_update_ms, r.start_ms, r.last_producer_id),
            (5, 6, -1)
        );
        // Kafka's own tag 0 (PreviousProducerId) is skipped, not misread.
        let mut v1 = encode_value(&ongoing()).unwrap().to_vec();
        // The tag section: count, then 5, 6 and 3 + 23 bytes of fields.
        let tags_at = v1.len() - (1 + 5 + 6 + 3 + 23);
        v1[tags_at] = 4;
        v1.splice(tags_at + 1..tags_at + 1, [0, 8, 0, 0, 0, 0, 0, 0, 0, 9]);
        assert_eq!(decode_value(&v1).unwrap(), ongoing());
        assert!(decode_value(&[0, 1, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 100, 9]).is_err());
    }

    #[test]
    fn legacy_json_values_still_decode() {
        let r = ongoing();
        assert_eq!(decode_value(&legacy_value(&r)).unwrap(), r);
        // As the old encoder wrote it, byte for byte.
        let old = br#"{"producer_id":4,"producer_epoch":2,"last_producer_id":-1,"last_producer_epoch":1,"timeout_ms":60000,"state":"Ongoing","partitions":[["t",3]],"groups":["g"],"pending_offsets":[],"start_ms":1,"last_update_ms":2}"#;
        let mut v = vec![0, 0];
        v.extend_from_slice(old);
        let decoded = decode_value(&v).unwrap();
        assert_eq!(decoded.partitions, vec![("t".to_owned(), 3)]);
        assert_eq!(decoded.last_producer_epoch, 1);
    }

    fn broker_in(dir: &std::path::Path) -> std::sync::Arc<crate::testing::Node> {
        crate::testing::bare_node(
            dir,
            crate::testing::group_config(),
            crate::config::TransactionConfig::default(),
        )
    }

    /// A `__transaction_state` written by Sluice before Kafka's format (JSON
    /// values, tombstones included) loads into the same coordinator state,
    /// and a later record in Kafka's format wins over an older JSON one.
    #[tokio::test]
    async fn legacy_json_transaction_log_loads_on_start() {
        let dir = tempfile::tempdir().unwrap();
        let complete = TxnRecord {
            state: "CompleteCommit".into(),
            partitions: vec![],
            groups: vec![],
            pending_offsets: vec![],
            start_ms: -1,
            ..ongoing()
        };
        // Ongoing with a day-long timeout, so the load does not abort it.
        let open = TxnRecord {
            timeout_ms: 86_400_000,
            start_ms: sluice_metadata::now_ms(),
            ..ongoing()
        };
        {
            let broker = broker_in(dir.path());
            broker
                .controller
                .ensure_internal_topic(TRANSACTION_STATE_TOPIC, TRANSACTION_STATE_PARTITIONS)
                .await
                .unwrap();
            let legacy = |id: &str, r: Option<&TxnRecord>| {
                BatchBuilder::new()
                    .record(NewRecord {
                        key: Some(encode_key(id).unwrap()),
                        value: r.map(|r| Bytes::from(legacy_value(r))),
                        headers: vec![],
                        timestamp_ms: 0,
                    })
                    .build()
                    .unwrap()
            };
            let writes = [
                ("old-open", legacy("old-open", Some(&open))),
                ("old-done", legacy("old-done", Some(&complete))),
                ("old-gone", legacy("old-gone", Some(&complete))),
                ("old-gone", legacy("old-gone", None)),
                ("upgraded", legacy("upgraded", Some(&open))),
                ("upgraded", batch("upgraded", Some(&complete), 0).unwrap()),
            ];
            for (id, batch) in writes {
                let partition = broker
                    .replicas
                    .partition(TRANSACTION_STATE_TOPIC, partition_for(id))
                    .unwrap();
                let info = partition.append(batch, 0).unwrap();
                partition.commit(info.last_offset + 1).await.unwrap();
            }
            broker.replicas.flush_all().expect("flush");
        }
        let broker = broker_in(dir.path());
        broker
            .txn
            .load(&sluice_runtime::Tasks::new())
            .await
            .unwrap();
        let record = |id: &str| {
            let broker = broker.clone();
            let id = id.to_owned();
            async move {
                match broker.txn.get(&id) {
                    Some(slot) => slot.snapshot().await.map(|m| m.to_record()),
                    None => None,
                }
            }
        };
        assert_eq!(record("old-open").await, Some(open.clone()));
        assert_eq!(record("old-done").await, Some(complete.clone()));
        assert_eq!(record("old-gone").await, None);
        assert_eq!(record("upgraded").await, Some(complete));
    }

    #[test]
    fn partition_matches_java_string_hash() {
        // "a".hashCode() == 97; "transactional-id".hashCode() == 510590431.
        assert_eq!(partition_for("a"), 97 % 50);
        assert_eq!(partition_for("transactional-id"), 510_590_431 % 50);
    }

    /// Kafka maps an id with a negative hash through `Utils.abs`:
    /// "my-txn".hashCode() == -1061187895, so its partition is
    /// 1061187895 % 50 == 45 on a Kafka cluster; masking the sign bit
    /// (what Sluice did) gives 3, another coordinator.
    #[test]
    fn partition_of_a_negative_hash_is_kafkas_absolute_value() {
        assert_eq!(
            crate::internal_topics::java_string_hashcode("my-txn"),
            -1_061_187_895
        );
        assert_eq!(partition_for("my-txn"), 45);
        assert_eq!(legacy_partition_for("my-txn"), 3);
        // i32::MIN has no absolute value; Kafka's abs maps it to 0.
        assert_eq!(partition_for("polygenelubricants"), 0);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn text() -> impl Strategy<Value = String> {
            ".{0,30}"
        }

        fn pending() -> impl Strategy<Value = PendingOffset> {
            (
                text(),
                text(),
                any::<i32>(),
                any::<i64>(),
                any::<i32>(),
                proptest::option::of(text()),
            )
                .prop_map(
                    |(group, topic, partition, offset, leader_epoch, metadata)| PendingOffset {
                        group,
                        topic,
                        partition,
                        offset,
                        leader_epoch,
                        metadata,
                    },
                )
        }

        proptest! {
            #[test]
            fn values_round_trip(
                producer_id in any::<i64>(), producer_epoch in any::<i16>(),
                last_producer_id in any::<i64>(), last_producer_epoch in any::<i16>(),
                timeout_ms in any::<i32>(), state in 0usize..STATES.len(),
                // As the coordinator keeps them: a set, so sorted and unique.
                partitions in proptest::collection::btree_set((text(), any::<i32>()), 0..6),
                groups in proptest::collection::vec(text(), 0..3),
                pending_offsets in proptest::collection::vec(pending(), 0..3),
                start_ms in any::<i64>(), last_update_ms in any::<i64>(),
            ) {
                let r = TxnRecord {
                    producer_id, producer_epoch, last_producer_id, last_producer_epoch,
                    timeout_ms, state: STATES[state].0.to_owned(),
                    partitions: partitions.into_iter().collect(), groups, pending_offsets,
                    start_ms, last_update_ms,
                };
                prop_assert_eq!(decode_value(&encode_value(&r).expect("encode")).expect("decode"), r);
            }

            #[test]
            fn arbitrary_bytes_never_panic(
                bytes in proptest::collection::vec(any::<u8>(), 0..160),
                version in 0i16..2,
            ) {
                let _ = decode_key(&bytes);
                let _ = decode_value(&bytes);
                let mut v = version.to_be_bytes().to_vec();
                v.extend_from_slice(&bytes);
                let _ = decode_value(&v);
            }
        }
    }
}
