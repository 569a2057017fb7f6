//! The RecordBatch v2 header: parse, validate, iterate, rewrite.
//!
//! Byte layout (big-endian), offsets from the start of the batch:
//!
//! | off | size | field                |
//! |----:|-----:|----------------------|
//! |   0 |    8 | baseOffset           |
//! |   8 |    4 | batchLength (bytes after this field) |
//! |  12 |    4 | partitionLeaderEpoch |
//! |  16 |    1 | magic (= 2)          |
//! |  17 |    4 | crc (CRC-32C of bytes 21..end) |
//! |  21 |    2 | attributes           |
//! |  23 |    4 | lastOffsetDelta      |
//! |  27 |    8 | baseTimestamp        |
//! |  35 |    8 | maxTimestamp         |
//! |  43 |    8 | producerId           |
//! |  51 |    2 | producerEpoch        |
//! |  53 |    4 | baseSequence         |
//! |  57 |    4 | recordCount          |
//! |  61 |    … | records              |
//!
//! baseOffset, batchLength and partitionLeaderEpoch sit outside the CRC so a
//! broker can assign offsets and stamp the epoch without recomputing it.

use bytes::Bytes;

use crate::compression::{Compression, MAX_DECOMPRESSED_BYTES};
use crate::error::RecordsError;
use crate::record::{MIN_RECORD_BYTES, Record};

/// Size of the fixed RecordBatch v2 header.
pub const BATCH_HEADER_BYTES: usize = 61;
/// Bytes before the batchLength count starts (baseOffset + batchLength).
pub const LOG_OVERHEAD_BYTES: usize = 12;
/// The only magic we accept.
pub const MAGIC_V2: i8 = 2;

const OFF_BASE_OFFSET: usize = 0;
const OFF_BATCH_LENGTH: usize = 8;
const OFF_LEADER_EPOCH: usize = 12;
const OFF_MAGIC: usize = 16;
const OFF_CRC: usize = 17;
const OFF_ATTRIBUTES: usize = 21;
const OFF_MAX_TIMESTAMP: usize = 35;

const ATTR_COMPRESSION_MASK: i16 = 0x07;
const ATTR_TIMESTAMP_TYPE: i16 = 0x08;
const ATTR_TRANSACTIONAL: i16 = 0x10;
const ATTR_CONTROL: i16 = 0x20;

/// Which clock the batch timestamps come from (attributes bit 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TimestampType {
    /// The producer's timestamps are kept (Kafka's default).
    #[default]
    CreateTime,
    /// The broker stamps maxTimestamp with its own clock at append.
    LogAppendTime,
}

/// The parsed 61-byte header of a RecordBatch v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Bytes after the batchLength field (total size is 12 + this).
    pub batch_length: i32,
    /// Leader epoch stamped by the broker that appended the batch.
    pub partition_leader_epoch: i32,
    /// Format version; always 2 once validated.
    pub magic: i8,
    /// CRC-32C of bytes 21..end.
    pub crc: u32,
    /// Compression, timestamp type, transactional and control flags.
    pub attributes: i16,
    /// Offset of the last record minus baseOffset.
    pub last_offset_delta: i32,
    /// Timestamp of the first record.
    pub base_timestamp: i64,
    /// Largest record timestamp (or the log append time).
    pub max_timestamp: i64,
    /// Idempotent producer id, -1 if none.
    pub producer_id: i64,
    /// Producer epoch, -1 if none.
    pub producer_epoch: i16,
    /// Sequence number of the first record, -1 if none.
    pub base_sequence: i32,
    /// Number of records in the batch.
    pub record_count: i32,
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    i32::from_be_bytes(a)
}
fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

impl BatchHeader {
    /// Parses the header fields from the first 61 bytes of `buf`; checks only that they exist.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, RecordsError> {
        if buf.len() < BATCH_HEADER_BYTES {
            return Err(RecordsError::Truncated {
                needed: BATCH_HEADER_BYTES,
                available: buf.len(),
            });
        }
        Ok(BatchHeader {
            base_offset: be_i64(buf, OFF_BASE_OFFSET),
            batch_length: be_i32(buf, OFF_BATCH_LENGTH),
            partition_leader_epoch: be_i32(buf, OFF_LEADER_EPOCH),
            magic: buf[OFF_MAGIC] as i8,
            crc: be_i32(buf, OFF_CRC) as u32,
            attributes: be_i16(buf, OFF_ATTRIBUTES),
            last_offset_delta: be_i32(buf, 23),
            base_timestamp: be_i64(buf, 27),
            max_timestamp: be_i64(buf, OFF_MAX_TIMESTAMP),
            producer_id: be_i64(buf, 43),
            producer_epoch: be_i16(buf, 51),
            base_sequence: be_i32(buf, 53),
            record_count: be_i32(buf, 57),
        })
    }

    /// Writes the header into the first 61 bytes of `out` (which must hold them).
    pub fn write_to(&self, out: &mut [u8]) {
        out[0..8].copy_from_slice(&self.base_offset.to_be_bytes());
        out[8..12].copy_from_slice(&self.batch_length.to_be_bytes());
        out[12..16].copy_from_slice(&self.partition_leader_epoch.to_be_bytes());
        out[16] = self.magic as u8;
        out[17..21].copy_from_slice(&self.crc.to_be_bytes());
        out[21..23].copy_from_slice(&self.attributes.to_be_bytes());
        out[23..27].copy_from_slice(&self.last_offset_delta.to_be_bytes());
        out[27..35].copy_from_slice(&self.base_timestamp.to_be_bytes());
        out[35..43].copy_from_slice(&self.max_timestamp.to_be_bytes());
        out[43..51].copy_from_slice(&self.producer_id.to_be_bytes());
        out[51..53].copy_from_slice(&self.producer_epoch.to_be_bytes());
        out[53..57].copy_from_slice(&self.base_sequence.to_be_bytes());
        out[57..61].copy_from_slice(&self.record_count.to_be_bytes());
    }

    /// Total size of the batch in bytes (12 + batchLength); 0 if batchLength is negative.
    pub fn total_size(&self) -> usize {
        usize::try_from(self.batch_length)
            .map(|l| l + LOG_OVERHEAD_BYTES)
            .unwrap_or(0)
    }

    /// Compression codec from attributes bits 0-2.
    pub fn compression(&self) -> Result<Compression, RecordsError> {
        Compression::from_id((self.attributes & ATTR_COMPRESSION_MASK) as u8)
    }

    /// Timestamp type from attributes bit 3.
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & ATTR_TIMESTAMP_TYPE != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// Attributes bit 4: the batch belongs to a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }

    /// Attributes bit 5: the batch is a control batch (commit/abort marker).
    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }

    /// Offset of the last record (baseOffset + lastOffsetDelta).
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// Offset just after the batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }
}

/// CRC-32C over attributes..end of one batch (`batch` is exactly one batch).
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[OFF_ATTRIBUTES..])
}

/// Checks the structure and CRC of the batch at the start of `buf`.
///
/// `buf` may hold more bytes after the batch. Checks: header present, magic
/// 2, batchLength at least a header and within `buf`, CRC-32C. It does not
/// check recordCount against lastOffsetDelta, because compaction legitimately
/// breaks that for stored batches; see [`check_producer_batch`].
pub fn check_batch(buf: &[u8]) -> Result<BatchHeader, RecordsError> {
    let header = check_batch_framing(buf)?;
    let batch = &buf[..header.total_size()];
    let computed = compute_crc(batch);
    if computed != header.crc {
        return Err(RecordsError::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    Ok(header)
}

/// Checks header, magic and batchLength (not the CRC) of the batch at the start of `buf`.
pub fn check_batch_framing(buf: &[u8]) -> Result<BatchHeader, RecordsError> {
    let header = BatchHeader::parse(buf)?;
    if header.magic != MAGIC_V2 {
        return Err(RecordsError::BadMagic {
            magic: header.magic,
        });
    }
    let min = (BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES) as i32;
    if header.batch_length < min {
        return Err(RecordsError::BatchLengthTooSmall {
            batch_length: header.batch_length,
            min,
        });
    }
    let needed = header.total_size();
    if needed > buf.len() {
        return Err(RecordsError::Truncated {
            needed,
            available: buf.len(),
        });
    }
    Ok(header)
}

/// Checks a batch as a producer sent it: [`check_batch`], a size limit, and
/// recordCount == lastOffsetDelta + 1 > 0 (Kafka's LogValidator rule).
pub fn check_producer_batch(
    buf: &[u8],
    max_batch_bytes: usize,
) -> Result<BatchHeader, RecordsError> {
    // Size first: a too-large batch is MESSAGE_TOO_LARGE even if it is also truncated.
    if buf.len() >= BATCH_HEADER_BYTES {
        let claimed = BatchHeader::parse(buf)?.total_size();
        if claimed > max_batch_bytes {
            return Err(RecordsError::BatchTooLarge {
                size: claimed,
                max: max_batch_bytes,
            });
        }
    }
    let header = check_batch(buf)?;
    if header.record_count <= 0
        || i64::from(header.record_count) != i64::from(header.last_offset_delta) + 1
    {
        return Err(RecordsError::InvalidRecordCount {
            record_count: header.record_count,
            last_offset_delta: header.last_offset_delta,
        });
    }
    Ok(header)
}

/// One step of iterating over concatenated batches.
#[derive(Debug)]
pub enum NextBatch<'a> {
    /// A whole batch whose framing and CRC check out.
    Complete {
        /// Byte position of the batch in the buffer.
        position: usize,
        /// Its parsed header.
        header: BatchHeader,
        /// Exactly the batch's bytes.
        bytes: &'a [u8],
    },
    /// The buffer ends inside a batch: a header or body cut short. Iteration stops.
    TruncatedTail {
        /// Byte position of the partial batch.
        position: usize,
        /// Bytes present from `position` to the end.
        available: usize,
    },
    /// The bytes at `position` are not a valid batch. Iteration stops.
    Corrupt {
        /// Byte position of the bad batch.
        position: usize,
        /// What is wrong.
        error: RecordsError,
    },
}

/// Iterator over the batches in a buffer of concatenated batches.
///
/// Yields [`NextBatch::Complete`] for each good batch, then possibly one
/// [`NextBatch::TruncatedTail`] or [`NextBatch::Corrupt`], then stops. A
/// batch whose batchLength reaches past the end of the buffer is a truncated
/// tail only if its magic is 2; otherwise the length cannot be trusted and
/// it is reported as corrupt.
#[derive(Debug, Clone)]
pub struct Batches<'a> {
    buf: &'a [u8],
    position: usize,
    verify_crc: bool,
    done: bool,
}

impl<'a> Batches<'a> {
    /// Iterates over `buf`, checking each batch's CRC.
    pub fn new(buf: &'a [u8]) -> Batches<'a> {
        Batches {
            buf,
            position: 0,
            verify_crc: true,
            done: false,
        }
    }

    /// Iterates over `buf` checking framing only (for data already known good).
    pub fn without_crc(buf: &'a [u8]) -> Batches<'a> {
        Batches {
            verify_crc: false,
            ..Batches::new(buf)
        }
    }

    /// Byte position of the next batch (after iteration: the end of the last complete batch).
    pub fn position(&self) -> usize {
        self.position
    }
}

impl<'a> Iterator for Batches<'a> {
    type Item = NextBatch<'a>;

    fn next(&mut self) -> Option<NextBatch<'a>> {
        if self.done || self.position >= self.buf.len() {
            return None;
        }
        let rest = &self.buf[self.position..];
        let position = self.position;
        let checked = if self.verify_crc {
            check_batch(rest)
        } else {
            check_batch_framing(rest)
        };
        match checked {
            Ok(header) => {
                let size = header.total_size();
                self.position += size;
                Some(NextBatch::Complete {
                    position,
                    header,
                    bytes: &rest[..size],
                })
            }
            Err(RecordsError::Truncated { available, .. }) => {
                self.done = true;
                Some(NextBatch::TruncatedTail {
                    position,
                    available,
                })
            }
            Err(error) => {
                self.done = true;
                Some(NextBatch::Corrupt { position, error })
            }
        }
    }
}

/// Rewrites baseOffset (outside the CRC, so the CRC stays valid).
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[OFF_BASE_OFFSET..OFF_BASE_OFFSET + 8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Rewrites partitionLeaderEpoch (outside the CRC).
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[OFF_LEADER_EPOCH..OFF_LEADER_EPOCH + 4].copy_from_slice(&epoch.to_be_bytes());
}

/// Stamps LogAppendTime: sets maxTimestamp, sets attributes bit 3, recomputes the CRC.
///
/// `batch` must be exactly one batch (checked framing).
pub fn set_log_append_time(batch: &mut [u8], timestamp_ms: i64) {
    set_max_timestamp(batch, TimestampType::LogAppendTime, timestamp_ms);
}

/// Sets maxTimestamp and the timestamp-type bit, then recomputes the CRC.
///
/// `batch` must be exactly one batch (checked framing). Kafka lets a broker
/// correct these two fields; everything else under the CRC is the producer's.
pub fn set_max_timestamp(batch: &mut [u8], timestamp_type: TimestampType, timestamp_ms: i64) {
    batch[OFF_MAX_TIMESTAMP..OFF_MAX_TIMESTAMP + 8].copy_from_slice(&timestamp_ms.to_be_bytes());
    let attributes = match timestamp_type {
        TimestampType::LogAppendTime => be_i16(batch, OFF_ATTRIBUTES) | ATTR_TIMESTAMP_TYPE,
        TimestampType::CreateTime => be_i16(batch, OFF_ATTRIBUTES) & !ATTR_TIMESTAMP_TYPE,
    };
    batch[OFF_ATTRIBUTES..OFF_ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    let crc = compute_crc(batch);
    batch[OFF_CRC..OFF_CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Decodes all records of one batch (decompressing with [`MAX_DECOMPRESSED_BYTES`] as the cap).
///
/// `batch` must be exactly one batch; its framing is checked but not its CRC
/// (call [`check_batch`] first for untrusted bytes).
pub fn decode_records(batch: &Bytes) -> Result<Vec<Record>, RecordsError> {
    let header = check_batch_framing(batch)?;
    let body = batch.slice(BATCH_HEADER_BYTES..header.total_size());
    let data = match header.compression()? {
        Compression::None => body,
        codec => Bytes::from(codec.decompress(&body, MAX_DECOMPRESSED_BYTES)?),
    };
    let count =
        usize::try_from(header.record_count).map_err(|_| RecordsError::RecordCountMismatch {
            expected: header.record_count,
            found: 0,
        })?;
    // Never size an allocation from the wire alone: a record is at least
    // MIN_RECORD_BYTES, so the data bounds how many there can be.
    let mut records = Vec::with_capacity(count.min(data.len() / MIN_RECORD_BYTES));
    let mut cursor = data;
    for index in 0..count {
        if cursor.is_empty() {
            return Err(RecordsError::RecordCountMismatch {
                expected: header.record_count,
                found: index,
            });
        }
        records.push(Record::decode(&mut cursor, index)?);
    }
    if !cursor.is_empty() {
        return Err(RecordsError::MalformedRecord {
            index: count,
            reason: "trailing bytes after the last record",
        });
    }
    Ok(records)
}
