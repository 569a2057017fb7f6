//! The record format of `__transaction_state`.
//!
//! One record per state change of a transactional id, keyed by the id, so
//! replaying a partition and keeping the last value per key rebuilds the
//! coordinator (and compaction, once it exists, keeps exactly that).
//!
//! - key: `[version i16 = 0][id length u16][id bytes, UTF-8]`
//! - value: `[version i16 = 0][JSON of TxnRecord]`; a null value is a tombstone.

use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use sluice_records::{BatchBuilder, NewRecord, RecordsError};

/// Name of the internal topic.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// Kafka's `transaction.state.log.num.partitions` default.
pub const TRANSACTION_STATE_PARTITIONS: i32 = 50;

/// Longest transactional id accepted: ids are keys on disk and in memory.
pub const MAX_TRANSACTIONAL_ID_BYTES: usize = 1024;

/// The partition of `__transaction_state` that holds `transactional_id`
/// (Java's `String.hashCode`, like Kafka, so the mapping is familiar).
pub fn partition_for(transactional_id: &str) -> i32 {
    let mut h: i32 = 0;
    for unit in transactional_id.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(i32::from(unit));
    }
    (h & i32::MAX) % TRANSACTION_STATE_PARTITIONS
}

/// A transaction's persisted state. Field names are the on-disk format.
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
    /// The key is not ours.
    #[error("bad __transaction_state key")]
    BadKey,
    /// The value is not ours.
    #[error("bad __transaction_state value: {0}")]
    BadValue(String),
    /// The batch did not decode.
    #[error(transparent)]
    Records(#[from] RecordsError),
}

/// Encodes a key.
pub fn encode_key(transactional_id: &str) -> Bytes {
    let mut key = Vec::with_capacity(4 + transactional_id.len());
    key.extend_from_slice(&0i16.to_be_bytes());
    // Ids are bounded by MAX_TRANSACTIONAL_ID_BYTES, well under u16::MAX.
    let len = u16::try_from(transactional_id.len()).unwrap_or(u16::MAX);
    key.extend_from_slice(&len.to_be_bytes());
    key.extend_from_slice(&transactional_id.as_bytes()[..usize::from(len)]);
    Bytes::from(key)
}

/// Decodes a key.
pub fn decode_key(key: &[u8]) -> Result<String, StateLogError> {
    if key.len() < 4 || key[0..2] != [0, 0] {
        return Err(StateLogError::BadKey);
    }
    let len = usize::from(u16::from_be_bytes([key[2], key[3]]));
    let id = key.get(4..4 + len).ok_or(StateLogError::BadKey)?;
    String::from_utf8(id.to_vec()).map_err(|_| StateLogError::BadKey)
}

/// Encodes a value.
pub fn encode_value(record: &TxnRecord) -> Result<Bytes, StateLogError> {
    let json = serde_json::to_vec(record).map_err(|e| StateLogError::BadValue(e.to_string()))?;
    let mut value = Vec::with_capacity(2 + json.len());
    value.extend_from_slice(&0i16.to_be_bytes());
    value.extend_from_slice(&json);
    Ok(Bytes::from(value))
}

/// Decodes a value.
pub fn decode_value(value: &[u8]) -> Result<TxnRecord, StateLogError> {
    if value.len() < 2 || value[0..2] != [0, 0] {
        return Err(StateLogError::BadValue("unknown version".into()));
    }
    serde_json::from_slice(&value[2..]).map_err(|e| StateLogError::BadValue(e.to_string()))
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
            key: Some(encode_key(transactional_id)),
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

    #[test]
    fn key_and_value_round_trip() {
        let r = TxnRecord {
            producer_id: 4,
            producer_epoch: 2,
            last_producer_id: -1,
            last_producer_epoch: 1,
            timeout_ms: 60_000,
            state: "Ongoing".into(),
            partitions: vec![("t".into(), 3)],
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
        };
        assert_eq!(decode_key(&encode_key("tx-é")).unwrap(), "tx-é");
        assert_eq!(decode_value(&encode_value(&r).unwrap()).unwrap(), r);
        assert!(decode_key(&[0, 0, 0, 9, b'a']).is_err());
        assert!(decode_value(&[0, 1, b'{']).is_err());
    }

    #[test]
    fn partition_matches_java_string_hash() {
        // "a".hashCode() == 97; "transactional-id".hashCode() is negative in Java.
        assert_eq!(partition_for("a"), 97 % 50);
        let p = partition_for("transactional-id");
        assert!((0..TRANSACTION_STATE_PARTITIONS).contains(&p));
    }
}
