//! The record codec inside an (uncompressed) batch body.
//!
//! ```text
//! length          varint   bytes after this field
//! attributes      int8     unused, 0
//! timestampDelta  varlong  relative to baseTimestamp
//! offsetDelta     varint   relative to baseOffset
//! keyLength       varint   -1 = null
//! key             bytes
//! valueLength     varint   -1 = null
//! value           bytes
//! headerCount     varint
//!   keyLength varint, key utf-8, valueLength varint (-1 = null), value bytes
//! ```
//!
//! Varints are zigzag-encoded, then written as unsigned LEB128 (Protocol
//! Buffers style). Decoding checks every length against the bytes that
//! remain before slicing or allocating.

use bytes::{Buf, Bytes};

use crate::error::RecordsError;

/// The smallest possible encoded record: seven one-byte fields.
pub const MIN_RECORD_BYTES: usize = 7;

/// One header of a record: key and nullable value. Keys can repeat; order matters.
pub type Header = (String, Option<Bytes>);

/// A decoded record. Offsets and timestamps are deltas from the batch header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// Record attributes (unused by Kafka, always 0 today).
    pub attributes: i8,
    /// Timestamp minus the batch's baseTimestamp.
    pub timestamp_delta: i64,
    /// Offset minus the batch's baseOffset.
    pub offset_delta: i32,
    /// Key, `None` for a null key.
    pub key: Option<Bytes>,
    /// Value, `None` for a null value (a tombstone).
    pub value: Option<Bytes>,
    /// Headers, in wire order.
    pub headers: Vec<Header>,
}

/// Appends a zigzag varint (i32).
pub fn put_varint(out: &mut Vec<u8>, v: i32) {
    put_unsigned_varint(out, ((v << 1) ^ (v >> 31)) as u32 as u64);
}

/// Appends a zigzag varlong (i64).
pub fn put_varlong(out: &mut Vec<u8>, v: i64) {
    put_unsigned_varint(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_unsigned_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Encoded size of a zigzag varint.
pub fn varint_len(v: i32) -> usize {
    unsigned_varint_len(((v << 1) ^ (v >> 31)) as u32 as u64)
}

/// Encoded size of a zigzag varlong.
pub fn varlong_len(v: i64) -> usize {
    unsigned_varint_len(((v << 1) ^ (v >> 63)) as u64)
}

fn unsigned_varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn get_unsigned_varint(buf: &mut Bytes, max_bytes: usize) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..max_bytes {
        if !buf.has_remaining() {
            return None;
        }
        let b = buf.get_u8();
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// Reads a zigzag varint (at most 5 bytes).
pub fn get_varint(buf: &mut Bytes) -> Option<i32> {
    let raw = get_unsigned_varint(buf, 5)?;
    let raw = u32::try_from(raw).ok()?;
    Some(((raw >> 1) as i32) ^ -((raw & 1) as i32))
}

/// Reads a zigzag varlong (at most 10 bytes).
pub fn get_varlong(buf: &mut Bytes) -> Option<i64> {
    let raw = get_unsigned_varint(buf, 10)?;
    Some(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

fn encode_nullable(out: &mut Vec<u8>, bytes: &Option<Bytes>) {
    match bytes {
        None => put_varint(out, -1),
        Some(b) => {
            put_varint(out, b.len() as i32);
            out.extend_from_slice(b);
        }
    }
}

fn nullable_len(bytes: &Option<Bytes>) -> usize {
    match bytes {
        None => 1,
        Some(b) => varint_len(b.len() as i32) + b.len(),
    }
}

impl Record {
    /// Size of the record body (everything after the length varint).
    fn body_len(&self) -> usize {
        let mut n = 1
            + varlong_len(self.timestamp_delta)
            + varint_len(self.offset_delta)
            + nullable_len(&self.key)
            + nullable_len(&self.value)
            + varint_len(self.headers.len() as i32);
        for (k, v) in &self.headers {
            n += varint_len(k.len() as i32) + k.len() + nullable_len(v);
        }
        n
    }

    /// Appends the encoded record to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let body = self.body_len();
        put_varint(out, body as i32);
        out.reserve(body);
        out.push(self.attributes as u8);
        put_varlong(out, self.timestamp_delta);
        put_varint(out, self.offset_delta);
        encode_nullable(out, &self.key);
        encode_nullable(out, &self.value);
        put_varint(out, self.headers.len() as i32);
        for (k, v) in &self.headers {
            put_varint(out, k.len() as i32);
            out.extend_from_slice(k.as_bytes());
            encode_nullable(out, v);
        }
    }

    /// Decodes one record from the front of `buf`, advancing it. `index` is for error messages.
    ///
    /// Keys, values and header values are zero-copy slices of `buf`.
    pub fn decode(buf: &mut Bytes, index: usize) -> Result<Record, RecordsError> {
        let bad = |reason| RecordsError::MalformedRecord { index, reason };
        let length = get_varint(buf).ok_or(bad("bad length varint"))?;
        let length = usize::try_from(length).map_err(|_| bad("negative record length"))?;
        if length > buf.remaining() {
            return Err(bad("record length exceeds the batch"));
        }
        let mut body = buf.split_to(length);
        if !body.has_remaining() {
            return Err(bad("empty record"));
        }
        let attributes = body.get_u8() as i8;
        let timestamp_delta = get_varlong(&mut body).ok_or(bad("bad timestampDelta"))?;
        let offset_delta = get_varint(&mut body).ok_or(bad("bad offsetDelta"))?;
        let key = get_nullable(&mut body).ok_or(bad("bad key"))?;
        let value = get_nullable(&mut body).ok_or(bad("bad value"))?;
        let count = get_varint(&mut body).ok_or(bad("bad header count"))?;
        let count = usize::try_from(count).map_err(|_| bad("negative header count"))?;
        // Each header takes at least two bytes (key length, value length).
        if count > body.remaining() / 2 {
            return Err(bad("header count exceeds the record"));
        }
        let mut headers = Vec::with_capacity(count);
        for _ in 0..count {
            let key_len = get_varint(&mut body).ok_or(bad("bad header key length"))?;
            let key_len =
                usize::try_from(key_len).map_err(|_| bad("negative header key length"))?;
            if key_len > body.remaining() {
                return Err(bad("header key exceeds the record"));
            }
            let key = body.split_to(key_len);
            let key =
                String::from_utf8(key.to_vec()).map_err(|_| bad("header key is not utf-8"))?;
            let value = get_nullable(&mut body).ok_or(bad("bad header value"))?;
            headers.push((key, value));
        }
        if body.has_remaining() {
            return Err(bad("trailing bytes in record"));
        }
        Ok(Record {
            attributes,
            timestamp_delta,
            offset_delta,
            key,
            value,
            headers,
        })
    }
}

/// Reads a nullable byte string: `None` outer = malformed, `Some(None)` = null.
fn get_nullable(buf: &mut Bytes) -> Option<Option<Bytes>> {
    let len = get_varint(buf)?;
    if len == -1 {
        return Some(None);
    }
    let len = usize::try_from(len).ok()?;
    if len > buf.remaining() {
        return None;
    }
    Some(Some(buf.split_to(len)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn varint_round_trips(v in any::<i32>()) {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            prop_assert_eq!(out.len(), varint_len(v));
            let mut b = Bytes::from(out);
            prop_assert_eq!(get_varint(&mut b), Some(v));
            prop_assert!(b.is_empty());
        }

        #[test]
        fn varlong_round_trips(v in any::<i64>()) {
            let mut out = Vec::new();
            put_varlong(&mut out, v);
            prop_assert_eq!(out.len(), varlong_len(v));
            let mut b = Bytes::from(out);
            prop_assert_eq!(get_varlong(&mut b), Some(v));
        }

        #[test]
        fn decode_of_garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut b = Bytes::from(data);
            let _ = Record::decode(&mut b, 0);
        }
    }

    #[test]
    fn zigzag_matches_kafka_examples() {
        let enc = |v| {
            let mut o = Vec::new();
            put_varint(&mut o, v);
            o
        };
        assert_eq!(enc(0), vec![0]);
        assert_eq!(enc(-1), vec![1]);
        assert_eq!(enc(1), vec![2]);
        assert_eq!(enc(-64), vec![0x7f]);
        assert_eq!(enc(64), vec![0x80, 0x01]);
    }

    #[test]
    fn huge_lengths_are_rejected_without_allocating() {
        // Record length i32::MAX with a few bytes behind it.
        let mut out = Vec::new();
        put_varint(&mut out, i32::MAX);
        out.extend_from_slice(&[0; 8]);
        assert!(Record::decode(&mut Bytes::from(out), 0).is_err());

        // A header count of i32::MAX inside a small record.
        let mut body = vec![0u8]; // attributes
        put_varlong(&mut body, 0);
        put_varint(&mut body, 0);
        put_varint(&mut body, -1);
        put_varint(&mut body, -1);
        put_varint(&mut body, i32::MAX);
        let mut rec = Vec::new();
        put_varint(&mut rec, body.len() as i32);
        rec.extend_from_slice(&body);
        let err = Record::decode(&mut Bytes::from(rec), 3).unwrap_err();
        assert!(matches!(
            err,
            RecordsError::MalformedRecord { index: 3, .. }
        ));
    }

    #[test]
    fn repeated_header_keys_keep_order() {
        let r = Record {
            headers: vec![
                ("a".into(), Some(Bytes::from_static(b"1"))),
                ("a".into(), None),
                ("b".into(), Some(Bytes::new())),
            ],
            key: None,
            value: Some(Bytes::from_static(b"v")),
            ..Record::default()
        };
        let mut out = Vec::new();
        r.encode(&mut out);
        let back = Record::decode(&mut Bytes::from(out), 0).unwrap();
        assert_eq!(back, r);
    }
}
