//! What the records of the coordinators' internal topics (`__consumer_offsets`,
//! `__transaction_state`) have in common: Kafka's framing of a key and a value
//! and the tagged-field section of flexible value versions.
//!
//! Kafka writes each key as `[record type i16][key fields]` and each value as
//! `[version i16][value fields at that version]`, with the same primitives as
//! the wire protocol (`sluice_protocol::codec`). Flexible versions end each
//! struct with tagged fields: `[count uvarint]([tag uvarint][size uvarint]
//! [bytes])*`, tags ascending. Readers skip tags they do not know, which is
//! how Sluice carries fields Kafka has no place for (see
//! [`SLUICE_TAG_BASE`]).
//!
//! Owns only these framing rules; the record layouts live with their topic
//! (`group::offsets_log`, `txn::state_log`).

use bytes::{Buf, Bytes, BytesMut};
use sluice_protocol::codec;
use sluice_protocol::{DecodeError, EncodeError};

/// Why a coordinator record could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// A primitive did not decode (truncated, bad length, bad UTF-8).
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A value cannot be carried by the format (a string over 32767 bytes).
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The key's record type is not one this broker reads.
    #[error("unknown record key type {0}")]
    UnknownKeyType(i16),
    /// The value's version is not one this broker reads.
    #[error("unknown {record} version {version}")]
    UnknownValueVersion {
        /// Record name, Kafka's (`OffsetCommitValue`).
        record: &'static str,
        /// Version read.
        version: i16,
    },
    /// Bytes were left after the last field: the record is not what its
    /// version says.
    #[error("{bytes} bytes left over after {record}")]
    TrailingBytes {
        /// Record name.
        record: &'static str,
        /// Bytes left.
        bytes: usize,
    },
    /// Tagged fields must ascend.
    #[error("tagged field {tag} out of order")]
    TagsOutOfOrder {
        /// The tag that did not ascend.
        tag: u32,
    },
    /// A field holds a value the format does not define.
    #[error("{record}: {reason}")]
    Invalid {
        /// Record name.
        record: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A record in the JSON format of Sluice before Kafka's formats.
    #[error("legacy JSON record: {0}")]
    LegacyJson(#[from] serde_json::Error),
}

/// First tag number of the tagged fields only Sluice writes. Kafka numbers
/// its own tags from 0 and has used fewer than ten per record so far, so
/// starting far away keeps the two from ever colliding; Kafka's readers
/// keep unknown tags aside and ignore them.
pub const SLUICE_TAG_BASE: u32 = 10_000;

/// Most tagged fields accepted in one struct. Every field costs at least two
/// bytes, so the bytes remaining bound the count too; this names the limit
/// for absurd counts. Kafka's records define fewer than ten.
const MAX_TAGGED_FIELDS: usize = 1024;

/// Tagged fields read from a struct, by tag.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TaggedFields(Vec<(u32, Bytes)>);

impl TaggedFields {
    /// Reads a tagged-field section. Tags must ascend, as Kafka requires.
    pub fn read(buf: &mut Bytes) -> Result<TaggedFields, RecordError> {
        let count = codec::read_uvarint(buf)? as usize;
        if count > MAX_TAGGED_FIELDS || count.saturating_mul(2) > buf.remaining() {
            return Err(DecodeError::TooLong {
                what: "tagged fields",
                length: count,
                limit: MAX_TAGGED_FIELDS.min(buf.remaining() / 2),
            }
            .into());
        }
        let mut fields = Vec::with_capacity(count);
        let mut last: Option<u32> = None;
        for _ in 0..count {
            let tag = codec::read_uvarint(buf)?;
            if last.is_some_and(|l| tag <= l) {
                return Err(RecordError::TagsOutOfOrder { tag });
            }
            last = Some(tag);
            let size = codec::read_uvarint(buf)?;
            fields.push((tag, codec::take(buf, size)?));
        }
        Ok(TaggedFields(fields))
    }

    /// The bytes of `tag`, if present.
    pub fn get(&self, tag: u32) -> Option<Bytes> {
        self.0
            .iter()
            .find(|(t, _)| *t == tag)
            .map(|(_, b)| b.clone())
    }

    /// Adds a field; fields must be added in ascending tag order.
    pub fn push(&mut self, tag: u32, value: BytesMut) {
        debug_assert!(self.0.last().is_none_or(|(t, _)| *t < tag));
        self.0.push((tag, value.freeze()));
    }

    /// Writes the section.
    pub fn write(&self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        codec::write_uvarint_len(buf, self.0.len())?;
        for (tag, value) in &self.0 {
            codec::write_uvarint(buf, *tag);
            codec::write_uvarint_len(buf, value.len())?;
            buf.extend_from_slice(value);
        }
        Ok(())
    }
}

/// Fails unless `buf` was read to its end: left-over bytes mean the record
/// was not what its version said.
pub fn expect_end(buf: &Bytes, record: &'static str) -> Result<(), RecordError> {
    if buf.is_empty() {
        Ok(())
    } else {
        Err(RecordError::TrailingBytes {
            record,
            bytes: buf.len(),
        })
    }
}

/// Decodes a tagged field's bytes with `read`, which must consume all of them.
pub fn read_tagged<T>(
    bytes: Bytes,
    record: &'static str,
    read: impl FnOnce(&mut Bytes) -> Result<T, RecordError>,
) -> Result<T, RecordError> {
    let mut buf = bytes;
    let value = read(&mut buf)?;
    expect_end(&buf, record)?;
    Ok(value)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tagged_fields_round_trip_and_reject_hostile_counts() {
        let mut fields = TaggedFields::default();
        fields.push(0, BytesMut::from(&[1u8][..]));
        fields.push(SLUICE_TAG_BASE, BytesMut::from(&[2u8, 3][..]));
        let mut out = BytesMut::new();
        fields.write(&mut out).unwrap();
        // count 2; tag 0 size 1; tag 10000 (varint 0x90 0x4e) size 2.
        assert_eq!(&out[..], &[2, 0, 1, 1, 0x90, 0x4e, 2, 2, 3]);
        let mut buf = out.freeze();
        let read = TaggedFields::read(&mut buf).unwrap();
        assert_eq!(read, fields);
        assert_eq!(read.get(SLUICE_TAG_BASE).as_deref(), Some(&[2u8, 3][..]));
        assert!(read.get(7).is_none());

        // A count far beyond the bytes present is refused before any work.
        let mut hostile = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(TaggedFields::read(&mut hostile).is_err());
        // A size beyond the bytes present is refused.
        let mut short = Bytes::from_static(&[1, 0, 9, 1]);
        assert!(TaggedFields::read(&mut short).is_err());
        // Tags out of order are refused.
        let mut unordered = Bytes::from_static(&[2, 5, 0, 1, 0]);
        assert!(TaggedFields::read(&mut unordered).is_err());
    }
}
