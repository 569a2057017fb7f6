//! Validation of a batch as a producer sent it: the broker's side of Kafka's
//! `LogValidator` for client appends.
//!
//! A batch header is a claim, not a fact. [`validate_producer_batch`] checks
//! the claim against the records in the body and against the topic's rules,
//! then rewrites the one header field Kafka lets a broker correct:
//!
//! - framing, size, CRC-32C and `recordCount == lastOffsetDelta + 1 > 0`
//!   ([`check_producer_batch`]);
//! - zstd only where the Produce version allows it (v7+);
//! - walking the records yields exactly `recordCount` records, each well
//!   formed, whose `offsetDelta` is its index, with no bytes left over;
//! - for `CreateTime` topics, every record timestamp other than -1 lies in
//!   `[now - message.timestamp.before.max.ms, now + message.timestamp.after.max.ms]`;
//!   a producer may not claim `LogAppendTime` itself;
//! - on compacted topics every record has a key;
//! - `maxTimestamp` becomes the largest record timestamp (CRC recomputed)
//!   when the header says otherwise.
//!
//! Cost: uncompressed bodies are walked in place over the slice (varint
//! parsing, no allocation). Compressed bodies are decoded as a stream
//! through a [`STREAM_BUFFER_BYTES`] window and parsed incrementally, so the
//! records are never materialised; the decompressed total is still capped.
//! Raw (non-xerial) snappy is one block by definition and is decoded into
//! one buffer bounded by the same cap.

use std::io::{self, Read};

use crate::batch::{BATCH_HEADER_BYTES, BatchHeader, TimestampType, check_producer_batch};
use crate::compression::{Compression, XERIAL_HEADER_BYTES, XERIAL_MAGIC, snappy_block};
use crate::error::{RecordIssue, RecordsError};

/// Size of the window a compressed body is decoded through. Large enough
/// that refills are rare per record, small enough that a request with many
/// partitions costs little memory.
pub const STREAM_BUFFER_BYTES: usize = 16 * 1024;

/// Kafka's `RecordBatch.NO_TIMESTAMP`: a record without a timestamp.
pub const NO_TIMESTAMP: i64 = -1;

/// The topic rules a producer batch is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidationConfig {
    /// `message.timestamp.type` of the topic.
    pub timestamp_type: TimestampType,
    /// `message.timestamp.before.max.ms`: how far in the past a CreateTime record may be.
    pub timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: how far in the future a CreateTime record may be.
    pub timestamp_after_max_ms: i64,
    /// `cleanup.policy` includes `compact`: every record needs a key.
    pub compacted: bool,
    /// `max.message.bytes`: the largest batch accepted.
    pub max_batch_bytes: usize,
    /// Cap on the decompressed size of one batch body.
    pub max_decompressed_bytes: usize,
    /// Produce v7+ may use zstd; older versions get UNSUPPORTED_COMPRESSION_TYPE.
    pub zstd_allowed: bool,
}

/// Most refused records listed in one error; the rest are only counted.
/// Bounds the produce response a single hostile batch can cause.
pub const MAX_RECORD_ISSUES: usize = 100;

/// What validation learnt about a good batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidatedBatch {
    /// The header as it now stands in the buffer (after any rewrite).
    pub header: BatchHeader,
    /// Records actually in the body (equal to the header's count).
    pub record_count: i32,
    /// Largest record timestamp; for LogAppendTime topics, `now_ms`.
    pub max_timestamp: i64,
    /// offsetDelta of the record holding `max_timestamp` (the first one, on ties).
    pub offset_delta_of_max_timestamp: i32,
    /// True when the header's maxTimestamp was wrong and was rewritten.
    pub rewrote_max_timestamp: bool,
}

/// Validates the producer batch at the start of `buf` and corrects its
/// maxTimestamp in place; see the module docs for every rule.
///
/// `buf` may hold further batches after this one; only the first is
/// touched. On error nothing has been written.
pub fn validate_producer_batch(
    buf: &mut [u8],
    config: &ValidationConfig,
    now_ms: i64,
) -> Result<ValidatedBatch, RecordsError> {
    let mut header = check_producer_batch(buf, config.max_batch_bytes)?;
    let compression = header.compression()?;
    if compression == Compression::Zstd && !config.zstd_allowed {
        return Err(RecordsError::CompressionNotAllowed {
            codec: compression.name(),
        });
    }
    let size = header.total_size();
    let body = &buf[BATCH_HEADER_BYTES..size];
    let rules = Rules {
        config,
        header: &header,
        now_ms,
    };
    let summary = match compression {
        Compression::None => walk(&mut SliceSource { buf: body, pos: 0 }, &rules)?,
        Compression::Gzip => walk_stream(flate2::bufread::MultiGzDecoder::new(body), &rules)?,
        Compression::Lz4 => walk_stream(lz4_flex::frame::FrameDecoder::new(body), &rules)?,
        Compression::Zstd => {
            let decoder = zstd::stream::read::Decoder::with_buffer(body).map_err(|source| {
                RecordsError::Decompress {
                    codec: "zstd",
                    source,
                }
            })?;
            walk_stream(decoder, &rules)?
        }
        Compression::Snappy => walk_stream(
            SnappyReader::new(body, config.max_decompressed_bytes)?,
            &rules,
        )?,
    };
    let mut rewrote = false;
    let max_timestamp = match config.timestamp_type {
        // The log stamps the append time (and the CRC) itself.
        TimestampType::LogAppendTime => now_ms,
        TimestampType::CreateTime => {
            if header.max_timestamp != summary.max_timestamp
                || header.timestamp_type() != TimestampType::CreateTime
            {
                crate::batch::set_max_timestamp(
                    &mut buf[..size],
                    TimestampType::CreateTime,
                    summary.max_timestamp,
                );
                header = BatchHeader::parse(buf)?;
                rewrote = true;
            }
            summary.max_timestamp
        }
    };
    Ok(ValidatedBatch {
        header,
        record_count: header.record_count,
        max_timestamp,
        offset_delta_of_max_timestamp: summary.offset_delta_of_max_timestamp,
        rewrote_max_timestamp: rewrote,
    })
}

/// Everything the record walk needs to judge one record.
struct Rules<'a> {
    config: &'a ValidationConfig,
    header: &'a BatchHeader,
    now_ms: i64,
}

/// What the walk found.
struct Summary {
    max_timestamp: i64,
    offset_delta_of_max_timestamp: i32,
}

/// A forward-only source of decompressed record bytes.
trait Source {
    /// The next byte, or `None` at the end of the body.
    fn byte(&mut self) -> Result<Option<u8>, RecordsError>;
    /// Skips `n` bytes; false if the body ends first.
    fn skip(&mut self, n: usize) -> Result<bool, RecordsError>;
    /// True when no bytes remain.
    fn at_end(&mut self) -> Result<bool, RecordsError>;
    /// Bytes consumed so far.
    fn position(&self) -> u64;
}

/// An uncompressed body, walked in place.
struct SliceSource<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Source for SliceSource<'_> {
    #[inline]
    fn byte(&mut self) -> Result<Option<u8>, RecordsError> {
        let b = self.buf.get(self.pos).copied();
        if b.is_some() {
            self.pos += 1;
        }
        Ok(b)
    }

    #[inline]
    fn skip(&mut self, n: usize) -> Result<bool, RecordsError> {
        if n > self.buf.len() - self.pos {
            return Ok(false);
        }
        self.pos += n;
        Ok(true)
    }

    fn at_end(&mut self) -> Result<bool, RecordsError> {
        Ok(self.pos == self.buf.len())
    }

    #[inline]
    fn position(&self) -> u64 {
        self.pos as u64
    }
}

/// A compressed body, decoded through a fixed window and capped in total.
struct StreamSource<R> {
    inner: R,
    window: Vec<u8>,
    start: usize,
    end: usize,
    consumed: u64,
    decoded: u64,
    limit: u64,
    codec: &'static str,
}

impl<R: Read> StreamSource<R> {
    fn new(inner: R, limit: usize, codec: &'static str) -> Self {
        StreamSource {
            inner,
            window: vec![0; STREAM_BUFFER_BYTES],
            start: 0,
            end: 0,
            consumed: 0,
            decoded: 0,
            limit: limit as u64,
            codec,
        }
    }

    /// Refills an empty window; false at the end of the stream.
    fn refill(&mut self) -> Result<bool, RecordsError> {
        debug_assert_eq!(self.start, self.end);
        let n = loop {
            match self.inner.read(&mut self.window) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(unwrap_io(source, self.codec)),
            }
        };
        self.decoded += n as u64;
        if self.decoded > self.limit {
            return Err(RecordsError::DecompressedTooLarge {
                limit: self.limit as usize,
            });
        }
        self.start = 0;
        self.end = n;
        Ok(n > 0)
    }
}

impl<R: Read> Source for StreamSource<R> {
    fn byte(&mut self) -> Result<Option<u8>, RecordsError> {
        if self.start == self.end && !self.refill()? {
            return Ok(None);
        }
        let b = self.window[self.start];
        self.start += 1;
        self.consumed += 1;
        Ok(Some(b))
    }

    fn skip(&mut self, mut n: usize) -> Result<bool, RecordsError> {
        while n > 0 {
            if self.start == self.end && !self.refill()? {
                return Ok(false);
            }
            let step = n.min(self.end - self.start);
            self.start += step;
            self.consumed += step as u64;
            n -= step;
        }
        Ok(true)
    }

    fn at_end(&mut self) -> Result<bool, RecordsError> {
        Ok(self.start == self.end && !self.refill()?)
    }

    fn position(&self) -> u64 {
        self.consumed
    }
}

/// A decoder error; a [`RecordsError`] the snappy reader tunnelled through
/// `io::Error` comes back out unchanged (so the cap stays MESSAGE_TOO_LARGE).
fn unwrap_io(source: io::Error, codec: &'static str) -> RecordsError {
    if source
        .get_ref()
        .is_some_and(|inner| inner.is::<RecordsError>())
    {
        if let Some(inner) = source.into_inner()
            && let Ok(e) = inner.downcast::<RecordsError>()
        {
            return *e;
        }
        return RecordsError::Decompress {
            codec,
            source: io::Error::other("snappy decoder error"),
        };
    }
    RecordsError::Decompress { codec, source }
}

fn walk_stream<R: Read>(reader: R, rules: &Rules<'_>) -> Result<Summary, RecordsError> {
    let codec = rules.header.compression()?.name();
    let mut source = StreamSource::new(reader, rules.config.max_decompressed_bytes, codec);
    walk(&mut source, rules)
}

/// Reads a zigzag varint of at most `max_bytes` bytes (5 for int, 10 for long).
#[inline]
fn varlong<S: Source>(src: &mut S, max_bytes: u32) -> Result<Option<i64>, RecordsError> {
    let mut raw = 0u64;
    for i in 0..max_bytes {
        let Some(b) = src.byte()? else {
            return Ok(None);
        };
        raw |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some(((raw >> 1) as i64) ^ -((raw & 1) as i64)));
        }
    }
    Ok(None)
}

#[inline]
fn varint<S: Source>(src: &mut S) -> Result<Option<i32>, RecordsError> {
    Ok(varlong(src, 5)?.and_then(|v| i32::try_from(v).ok()))
}

/// Walks exactly `recordCount` records, judging each; see the module docs.
fn walk<S: Source>(src: &mut S, rules: &Rules<'_>) -> Result<Summary, RecordsError> {
    let header = rules.header;
    let config = rules.config;
    let expected = header.record_count;
    let producer_log_append_time = header.timestamp_type() == TimestampType::LogAppendTime;
    let min_ts = rules.now_ms.saturating_sub(config.timestamp_before_max_ms);
    let max_ts = rules.now_ms.saturating_add(config.timestamp_after_max_ms);
    let mut summary = Summary {
        max_timestamp: NO_TIMESTAMP,
        offset_delta_of_max_timestamp: -1,
    };
    let mut issues: Vec<(i32, RecordIssue)> = Vec::new();
    let mut issue_count = 0usize;
    for index in 0..expected {
        if src.at_end()? {
            return Err(RecordsError::RecordCountMismatch {
                expected,
                found: index as usize,
            });
        }
        let bad = |reason| RecordsError::MalformedRecord {
            index: index as usize,
            reason,
        };
        let length = varint(src)?.ok_or(bad("bad length varint"))?;
        let length = u64::try_from(length).map_err(|_| bad("negative record length"))?;
        let start = src.position();
        let end = start + length;
        // Every field must end inside the record's declared length.
        let within = |src: &S| src.position() <= end;
        src.byte()?.ok_or(bad("record cut short"))?; // attributes, unused
        let timestamp_delta = varlong(src, 10)?.ok_or(bad("bad timestampDelta"))?;
        let offset_delta = varint(src)?.ok_or(bad("bad offsetDelta"))?;
        let key_len = varint(src)?.ok_or(bad("bad key length"))?;
        let has_key = key_len >= 0;
        skip_nullable(src, key_len, end, bad("bad key"))?;
        let value_len = varint(src)?.ok_or(bad("bad value length"))?;
        skip_nullable(src, value_len, end, bad("bad value"))?;
        let headers = varint(src)?.ok_or(bad("bad header count"))?;
        if headers < 0 || !within(src) {
            return Err(bad("bad header count"));
        }
        for _ in 0..headers {
            let key_len = varint(src)?.ok_or(bad("bad header key length"))?;
            if key_len < 0 {
                return Err(bad("null header key"));
            }
            skip_nullable(src, key_len, end, bad("bad header key"))?;
            let value_len = varint(src)?.ok_or(bad("bad header value length"))?;
            skip_nullable(src, value_len, end, bad("bad header value"))?;
        }
        if src.position() != end {
            return Err(bad("record length does not match its fields"));
        }
        if offset_delta != index {
            return Err(RecordsError::OffsetDeltaMismatch {
                index,
                offset_delta,
            });
        }
        // A LogAppendTime batch's records all read as maxTimestamp, as in Kafka.
        let timestamp = if producer_log_append_time {
            header.max_timestamp
        } else {
            header.base_timestamp.wrapping_add(timestamp_delta)
        };
        let issue = if config.compacted && !has_key {
            Some(RecordIssue::NoKeyOnCompactedTopic)
        } else if config.timestamp_type == TimestampType::CreateTime && timestamp != NO_TIMESTAMP {
            (timestamp < min_ts || timestamp > max_ts).then_some(RecordIssue::TimestampOutOfRange {
                timestamp,
                min: min_ts,
                max: max_ts,
            })
        } else if producer_log_append_time {
            Some(RecordIssue::LogAppendTimeFromProducer)
        } else {
            None
        };
        if let Some(issue) = issue {
            issue_count += 1;
            if issues.len() < MAX_RECORD_ISSUES {
                issues.push((index, issue));
            }
        }
        if timestamp > summary.max_timestamp {
            summary.max_timestamp = timestamp;
            summary.offset_delta_of_max_timestamp = offset_delta;
        }
    }
    if !src.at_end()? {
        return Err(RecordsError::MalformedRecord {
            index: expected as usize,
            reason: "trailing bytes after the last record",
        });
    }
    if !issues.is_empty() {
        return Err(RecordsError::RejectedRecords {
            issues,
            total: issue_count,
        });
    }
    Ok(summary)
}

/// Skips a nullable byte string of length `len` (-1 = null) that must end by `end`.
#[inline]
fn skip_nullable<S: Source>(
    src: &mut S,
    len: i32,
    end: u64,
    bad: RecordsError,
) -> Result<(), RecordsError> {
    if len == -1 {
        return if src.position() <= end {
            Ok(())
        } else {
            Err(bad)
        };
    }
    let Ok(n) = usize::try_from(len) else {
        return Err(bad);
    };
    if src.position() + n as u64 > end || !src.skip(n)? {
        return Err(bad);
    }
    Ok(())
}

/// Streams snappy: xerial framing block by block, or one raw block.
struct SnappyReader<'a> {
    rest: &'a [u8],
    xerial: bool,
    block: Vec<u8>,
    pos: usize,
    decoded: usize,
    limit: usize,
}

impl<'a> SnappyReader<'a> {
    fn new(data: &'a [u8], limit: usize) -> Result<Self, RecordsError> {
        let xerial = data.len() >= XERIAL_HEADER_BYTES && &data[..8] == XERIAL_MAGIC;
        let rest = if xerial {
            &data[XERIAL_HEADER_BYTES..]
        } else {
            data
        };
        Ok(SnappyReader {
            rest,
            xerial,
            block: Vec::new(),
            pos: 0,
            decoded: 0,
            limit,
        })
    }

    /// Decodes the next block into `self.block`; false when none is left.
    fn next_block(&mut self) -> Result<bool, RecordsError> {
        if self.rest.is_empty() {
            return Ok(false);
        }
        let compressed = if self.xerial {
            let cut = |what| RecordsError::Decompress {
                codec: "snappy",
                source: io::Error::new(io::ErrorKind::UnexpectedEof, what),
            };
            if self.rest.len() < 4 {
                return Err(cut("xerial block length cut short"));
            }
            let len = u32::from_be_bytes([self.rest[0], self.rest[1], self.rest[2], self.rest[3]])
                as usize;
            if len > self.rest.len() - 4 {
                return Err(cut("xerial block exceeds the data"));
            }
            let block = &self.rest[4..4 + len];
            self.rest = &self.rest[4 + len..];
            block
        } else {
            std::mem::take(&mut self.rest)
        };
        self.block.clear();
        // Each block is checked against what is left of the cap before it is decoded.
        let limit = self.limit;
        snappy_block(compressed, &mut self.block, limit - self.decoded).map_err(|e| match e {
            RecordsError::DecompressedTooLarge { .. } => {
                RecordsError::DecompressedTooLarge { limit }
            }
            other => other,
        })?;
        self.decoded += self.block.len();
        self.pos = 0;
        Ok(true)
    }
}

impl Read for SnappyReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.block.len() {
            match self.next_block() {
                Ok(true) => {}
                Ok(false) => return Ok(0),
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
        }
        let n = out.len().min(self.block.len() - self.pos);
        out[..n].copy_from_slice(&self.block[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
