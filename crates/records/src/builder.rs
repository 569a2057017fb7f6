//! [`BatchBuilder`]: build a RecordBatch v2 from records.

use bytes::{Bytes, BytesMut};

use crate::batch::{
    BATCH_HEADER_BYTES, BatchHeader, LOG_OVERHEAD_BYTES, MAGIC_V2, TimestampType, compute_crc,
};
use crate::compression::Compression;
use crate::error::RecordsError;
use crate::record::{Header, Record};

/// A record to put into a batch: absolute timestamp, nullable key and value, headers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewRecord {
    /// Key, `None` for null.
    pub key: Option<Bytes>,
    /// Value, `None` for null.
    pub value: Option<Bytes>,
    /// Headers in order; keys may repeat.
    pub headers: Vec<Header>,
    /// Record timestamp in ms since the epoch.
    pub timestamp_ms: i64,
}

/// Builds one RecordBatch v2. Defaults: no compression, CreateTime, no producer id.
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    base_offset: i64,
    partition_leader_epoch: i32,
    compression: Compression,
    timestamp_type: TimestampType,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    transactional: bool,
    control: bool,
    records: Vec<NewRecord>,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        BatchBuilder::new()
    }
}

impl BatchBuilder {
    /// A builder with Kafka's "no producer" defaults (-1 id, epoch, sequence).
    pub fn new() -> BatchBuilder {
        BatchBuilder {
            base_offset: 0,
            partition_leader_epoch: -1,
            compression: Compression::None,
            timestamp_type: TimestampType::CreateTime,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            transactional: false,
            control: false,
            records: Vec::new(),
        }
    }

    /// Sets baseOffset (the log overwrites it on append).
    pub fn base_offset(mut self, base_offset: i64) -> Self {
        self.base_offset = base_offset;
        self
    }

    /// Sets partitionLeaderEpoch.
    pub fn partition_leader_epoch(mut self, epoch: i32) -> Self {
        self.partition_leader_epoch = epoch;
        self
    }

    /// Sets the compression codec.
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Sets the timestamp type bit.
    pub fn timestamp_type(mut self, timestamp_type: TimestampType) -> Self {
        self.timestamp_type = timestamp_type;
        self
    }

    /// Sets producer id, epoch and base sequence (idempotent producers).
    pub fn producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// Marks the batch transactional.
    pub fn transactional(mut self, transactional: bool) -> Self {
        self.transactional = transactional;
        self
    }

    /// Marks the batch as a control batch.
    pub fn control(mut self, control: bool) -> Self {
        self.control = control;
        self
    }

    /// Adds a record.
    pub fn push(&mut self, record: NewRecord) -> &mut Self {
        self.records.push(record);
        self
    }

    /// Adds a record (builder style).
    pub fn record(mut self, record: NewRecord) -> Self {
        self.records.push(record);
        self
    }

    /// Number of records added so far.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True if no record was added.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Encodes the batch, computing batchLength and CRC-32C.
    pub fn build(&self) -> Result<BytesMut, RecordsError> {
        let first = self.records.first().ok_or(RecordsError::EmptyBatch)?;
        let count = i32::try_from(self.records.len()).map_err(|_| RecordsError::BatchTooLarge {
            size: self.records.len(),
            max: i32::MAX as usize,
        })?;
        let base_timestamp = first.timestamp_ms;
        let max_timestamp = self
            .records
            .iter()
            .map(|r| r.timestamp_ms)
            .max()
            .unwrap_or(base_timestamp);
        let mut body = Vec::new();
        for (i, r) in self.records.iter().enumerate() {
            Record {
                attributes: 0,
                timestamp_delta: r.timestamp_ms.wrapping_sub(base_timestamp),
                offset_delta: i as i32,
                key: r.key.clone(),
                value: r.value.clone(),
                headers: r.headers.clone(),
            }
            .encode(&mut body);
        }
        let body = self.compression.compress(&body)?;
        let total = BATCH_HEADER_BYTES + body.len();
        let batch_length =
            i32::try_from(total - LOG_OVERHEAD_BYTES).map_err(|_| RecordsError::BatchTooLarge {
                size: total,
                max: i32::MAX as usize,
            })?;
        let mut attributes = i16::from(self.compression.id());
        if self.timestamp_type == TimestampType::LogAppendTime {
            attributes |= 0x08;
        }
        if self.transactional {
            attributes |= 0x10;
        }
        if self.control {
            attributes |= 0x20;
        }
        let header = BatchHeader {
            base_offset: self.base_offset,
            batch_length,
            partition_leader_epoch: self.partition_leader_epoch,
            magic: MAGIC_V2,
            crc: 0,
            attributes,
            last_offset_delta: count - 1,
            base_timestamp,
            max_timestamp,
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            base_sequence: self.base_sequence,
            record_count: count,
        };
        let mut out = BytesMut::zeroed(total);
        header.write_to(&mut out);
        out[BATCH_HEADER_BYTES..].copy_from_slice(&body);
        let crc = compute_crc(&out);
        out[17..21].copy_from_slice(&crc.to_be_bytes());
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{
        Batches, NextBatch, check_batch, check_producer_batch, decode_records, set_base_offset,
        set_log_append_time, set_partition_leader_epoch,
    };
    use crate::error::{CORRUPT_MESSAGE, INVALID_RECORD, MESSAGE_TOO_LARGE};
    use proptest::prelude::*;

    fn arb_bytes() -> impl Strategy<Value = Option<Bytes>> {
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from))
    }

    fn arb_record() -> impl Strategy<Value = NewRecord> {
        (
            arb_bytes(),
            arb_bytes(),
            proptest::collection::vec(("[a-c]{0,3}", arb_bytes()), 0..4),
            -1_000_000i64..2_000_000_000_000,
        )
            .prop_map(|(key, value, headers, timestamp_ms)| NewRecord {
                key,
                value,
                headers,
                timestamp_ms,
            })
    }

    fn arb_codec() -> impl Strategy<Value = Compression> {
        proptest::sample::select(Compression::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn build_parse_decode_round_trips(
            records in proptest::collection::vec(arb_record(), 1..20),
            codec in arb_codec(),
            pid in -1i64..100,
            txn in any::<bool>(),
        ) {
            let mut b = BatchBuilder::new().compression(codec).producer(pid, 3, 7).transactional(txn);
            for r in &records { b.push(r.clone()); }
            let bytes = b.build().unwrap().freeze();
            let header = check_producer_batch(&bytes, usize::MAX).unwrap();
            prop_assert_eq!(header.compression().unwrap(), codec);
            prop_assert_eq!(header.is_transactional(), txn);
            prop_assert_eq!(header.record_count as usize, records.len());
            prop_assert_eq!(header.producer_id, pid);
            let decoded = decode_records(&bytes).unwrap();
            prop_assert_eq!(decoded.len(), records.len());
            for (i, (d, r)) in decoded.iter().zip(&records).enumerate() {
                prop_assert_eq!(d.offset_delta as usize, i);
                prop_assert_eq!(header.base_timestamp + d.timestamp_delta, r.timestamp_ms);
                prop_assert_eq!(&d.key, &r.key);
                prop_assert_eq!(&d.value, &r.value);
                prop_assert_eq!(&d.headers, &r.headers);
            }
            prop_assert_eq!(header.max_timestamp, records.iter().map(|r| r.timestamp_ms).max().unwrap());
        }

        #[test]
        fn any_flipped_bit_after_epoch_is_caught(records in proptest::collection::vec(arb_record(), 1..4), at in any::<proptest::sample::Index>(), bit in 0u8..8) {
            let mut b = BatchBuilder::new();
            for r in &records { b.push(r.clone()); }
            let mut bytes = b.build().unwrap();
            // Byte 16 onward is magic + CRC-covered region (or the CRC itself).
            let i = 16 + at.index(bytes.len() - 16);
            bytes[i] ^= 1 << bit;
            prop_assert!(check_batch(&bytes).is_err());
        }
    }

    fn one(value: &'static [u8]) -> BytesMut {
        BatchBuilder::new()
            .record(NewRecord {
                value: Some(Bytes::from_static(value)),
                timestamp_ms: 1000,
                ..NewRecord::default()
            })
            .build()
            .unwrap()
    }

    #[test]
    fn rewrites_keep_the_crc_valid() {
        let mut b = one(b"x");
        set_base_offset(&mut b, 42);
        set_partition_leader_epoch(&mut b, 7);
        let h = check_batch(&b).unwrap();
        assert_eq!((h.base_offset, h.partition_leader_epoch), (42, 7));
        set_log_append_time(&mut b, 5555);
        let h = check_batch(&b).unwrap();
        assert_eq!(h.max_timestamp, 5555);
        assert_eq!(h.timestamp_type(), TimestampType::LogAppendTime);
    }

    #[test]
    fn validation_errors_map_to_kafka_codes() {
        let good = one(b"hello");
        let mut bad_magic = good.clone();
        bad_magic[16] = 1;
        assert_eq!(
            check_batch(&bad_magic).unwrap_err().kafka_error_code(),
            CORRUPT_MESSAGE
        );

        let mut bad_crc = good.clone();
        let last = bad_crc.len() - 1;
        bad_crc[last] ^= 0xff;
        assert!(matches!(
            check_batch(&bad_crc),
            Err(RecordsError::CrcMismatch { .. })
        ));

        let mut bad_count = good.clone();
        bad_count[57..61].copy_from_slice(&5i32.to_be_bytes());
        let crc = compute_crc(&bad_count);
        bad_count[17..21].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(
            check_producer_batch(&bad_count, 1 << 20)
                .unwrap_err()
                .kafka_error_code(),
            INVALID_RECORD
        );

        assert_eq!(
            check_producer_batch(&good, 10)
                .unwrap_err()
                .kafka_error_code(),
            MESSAGE_TOO_LARGE
        );

        let mut short_len = good.clone();
        short_len[8..12].copy_from_slice(&10i32.to_be_bytes());
        assert!(matches!(
            check_batch(&short_len),
            Err(RecordsError::BatchLengthTooSmall { .. })
        ));

        let mut huge_len = good.clone();
        huge_len[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(matches!(
            check_batch(&huge_len),
            Err(RecordsError::Truncated { .. })
        ));
        assert!(BatchBuilder::new().build().is_err());
    }

    #[test]
    fn iteration_distinguishes_complete_truncated_and_corrupt() {
        let a = one(b"a");
        let b = one(b"bb");
        let mut buf = Vec::new();
        buf.extend_from_slice(&a);
        buf.extend_from_slice(&b);
        let items: Vec<_> = Batches::new(&buf).collect();
        assert_eq!(items.len(), 2);
        assert!(
            items
                .iter()
                .all(|i| matches!(i, NextBatch::Complete { .. }))
        );

        let cut = &buf[..buf.len() - 3];
        let items: Vec<_> = Batches::new(cut).collect();
        assert!(
            matches!(items[1], NextBatch::TruncatedTail { position, .. } if position == a.len())
        );

        let mut corrupt = buf.clone();
        corrupt[a.len() + 30] ^= 1;
        let items: Vec<_> = Batches::new(&corrupt).collect();
        assert!(
            matches!(items[1], NextBatch::Corrupt { position, error: RecordsError::CrcMismatch { .. } } if position == a.len())
        );
    }
}
