//! Wire primitives shared by the generated message code.
//!
//! Owns the byte-level rules of the Kafka protocol guide: big-endian
//! integers, unsigned varints, classic (`INT16`/`INT32` length) and compact
//! (`UNSIGNED_VARINT` length + 1) strings, bytes and arrays. It must not know
//! about any particular message.
//!
//! Every length or count read from the wire is checked against the bytes
//! that remain *before* anything is allocated, so a hostile frame costs at
//! most its own size.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use uuid::Uuid;

use crate::{DecodeError, EncodeError};

/// Largest element count accepted for any array.
///
/// The remaining-bytes check already bounds a count by the frame size; this
/// named cap gives a clear error for absurd counts and bounds loop lengths
/// for zero-cost elements. Kafka's own frame cap (100 MiB) divided by the
/// smallest element (1 byte) is about 10^8; no real request comes near 2^24.
pub const MAX_ARRAY_LEN: usize = 1 << 24;

/// Largest string length in bytes. Kafka refuses strings longer than
/// `i16::MAX` even in compact encoding, so we do the same both ways.
pub const MAX_STRING_LEN: usize = i16::MAX as usize;

/// Most elements reserved up front when decoding an array.
///
/// A Rust element can be much larger than its smallest wire form (an old
/// version may omit most fields), so reserving `count` slots could multiply a
/// frame's size in memory. Beyond this many, the `Vec` grows as elements are
/// actually decoded, so memory tracks real bytes consumed.
pub const PREALLOC_LIMIT: usize = 1024;

/// Capacity to reserve for an array of `n` already-validated elements.
pub fn prealloc(n: usize) -> usize {
    n.min(PREALLOC_LIMIT)
}

fn need(buf: &Bytes, n: usize) -> Result<(), DecodeError> {
    if buf.remaining() < n {
        Err(DecodeError::Truncated {
            needed: n,
            remaining: buf.remaining(),
        })
    } else {
        Ok(())
    }
}

/// Splits `n` bytes off the front of `buf` without copying.
pub fn take(buf: &mut Bytes, n: u32) -> Result<Bytes, DecodeError> {
    let n = n as usize;
    need(buf, n)?;
    Ok(buf.split_to(n))
}

macro_rules! fixed {
    ($read:ident, $write:ident, $t:ty, $get:ident, $put:ident, $n:expr) => {
        #[doc = concat!("Reads a big-endian `", stringify!($t), "`.")]
        pub fn $read(buf: &mut Bytes) -> Result<$t, DecodeError> {
            need(buf, $n)?;
            Ok(buf.$get())
        }
        #[doc = concat!("Writes a big-endian `", stringify!($t), "`.")]
        pub fn $write(buf: &mut BytesMut, v: $t) {
            buf.$put(v);
        }
    };
}

fixed!(read_i8, write_i8, i8, get_i8, put_i8, 1);
fixed!(read_i16, write_i16, i16, get_i16, put_i16, 2);
fixed!(read_i32, write_i32, i32, get_i32, put_i32, 4);
fixed!(read_i64, write_i64, i64, get_i64, put_i64, 8);
fixed!(read_u16, write_u16, u16, get_u16, put_u16, 2);
fixed!(read_u32, write_u32, u32, get_u32, put_u32, 4);
fixed!(read_f64, write_f64, f64, get_f64, put_f64, 8);

/// Reads a boolean; like Kafka, any non-zero byte is `true`.
pub fn read_bool(buf: &mut Bytes) -> Result<bool, DecodeError> {
    Ok(read_i8(buf)? != 0)
}

/// Writes a boolean as one byte, 0 or 1.
pub fn write_bool(buf: &mut BytesMut, v: bool) {
    buf.put_u8(u8::from(v));
}

/// Reads a 16-byte UUID.
pub fn read_uuid(buf: &mut Bytes) -> Result<Uuid, DecodeError> {
    need(buf, 16)?;
    let mut b = [0u8; 16];
    buf.copy_to_slice(&mut b);
    Ok(Uuid::from_bytes(b))
}

/// Writes a 16-byte UUID.
pub fn write_uuid(buf: &mut BytesMut, v: &Uuid) {
    buf.put_slice(v.as_bytes());
}

/// Reads an `UNSIGNED_VARINT` of at most 5 bytes (a `u32`).
pub fn read_uvarint(buf: &mut Bytes) -> Result<u32, DecodeError> {
    let mut value: u32 = 0;
    for i in 0..5 {
        let b = read_i8(buf)? as u8;
        let part = u32::from(b & 0x7f);
        if i == 4 && part > 0x0f {
            return Err(DecodeError::VarintTooLong);
        }
        value |= part << (7 * i);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(DecodeError::VarintTooLong)
}

/// Writes an `UNSIGNED_VARINT`.
pub fn write_uvarint(buf: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        buf.put_u8((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// Writes a `usize` length as an `UNSIGNED_VARINT`.
pub fn write_uvarint_len(buf: &mut BytesMut, len: usize) -> Result<(), EncodeError> {
    let v = u32::try_from(len).map_err(|_| EncodeError::TooLong {
        what: "tagged field",
        length: len,
    })?;
    write_uvarint(buf, v);
    Ok(())
}

/// Reads a length prefix: `INT16`/`INT32` (classic) or `UNSIGNED_VARINT`
/// minus one (compact). `None` means null (-1 / 0).
fn read_len(buf: &mut Bytes, flexible: bool, wide: bool) -> Result<Option<usize>, DecodeError> {
    let raw: i64 = if flexible {
        i64::from(read_uvarint(buf)?) - 1
    } else if wide {
        i64::from(read_i32(buf)?)
    } else {
        i64::from(read_i16(buf)?)
    };
    match raw {
        -1 => Ok(None),
        n if n < -1 => Err(DecodeError::NegativeLength { length: n }),
        // Non-negative and at most u32::MAX, so it fits a usize on every
        // platform we build for.
        n => Ok(Some(n as usize)),
    }
}

fn write_len(
    buf: &mut BytesMut,
    len: usize,
    flexible: bool,
    wide: bool,
    what: &'static str,
) -> Result<(), EncodeError> {
    let too_long = || EncodeError::TooLong { what, length: len };
    if flexible {
        let v = u32::try_from(len)
            .ok()
            .and_then(|v| v.checked_add(1))
            .ok_or_else(too_long)?;
        write_uvarint(buf, v);
    } else if wide {
        buf.put_i32(i32::try_from(len).map_err(|_| too_long())?);
    } else {
        buf.put_i16(i16::try_from(len).map_err(|_| too_long())?);
    }
    Ok(())
}

fn write_null_len(buf: &mut BytesMut, flexible: bool, wide: bool) {
    if flexible {
        buf.put_u8(0);
    } else if wide {
        buf.put_i32(-1);
    } else {
        buf.put_i16(-1);
    }
}

/// Reads a nullable string; a null is an error unless `nullable`.
pub fn read_nullable_string(
    buf: &mut Bytes,
    flexible: bool,
    nullable: bool,
) -> Result<Option<String>, DecodeError> {
    let Some(len) = read_len(buf, flexible, false)? else {
        return if nullable {
            Ok(None)
        } else {
            Err(DecodeError::UnexpectedNull { what: "string" })
        };
    };
    if len > MAX_STRING_LEN {
        return Err(DecodeError::TooLong {
            what: "string",
            length: len,
            limit: MAX_STRING_LEN,
        });
    }
    need(buf, len)?;
    let raw = buf.split_to(len);
    String::from_utf8(raw.to_vec())
        .map(Some)
        .map_err(|_| DecodeError::InvalidUtf8)
}

/// Reads a non-null string.
pub fn read_string(buf: &mut Bytes, flexible: bool) -> Result<String, DecodeError> {
    read_nullable_string(buf, flexible, false)?
        .ok_or(DecodeError::UnexpectedNull { what: "string" })
}

/// Writes a non-null string.
pub fn write_string(buf: &mut BytesMut, s: &str, flexible: bool) -> Result<(), EncodeError> {
    if s.len() > MAX_STRING_LEN {
        return Err(EncodeError::TooLong {
            what: "string",
            length: s.len(),
        });
    }
    write_len(buf, s.len(), flexible, false, "string")?;
    buf.put_slice(s.as_bytes());
    Ok(())
}

/// Writes a null string.
pub fn write_null_string(buf: &mut BytesMut, flexible: bool) {
    write_null_len(buf, flexible, false);
}

/// Reads nullable bytes without copying; a null is an error unless `nullable`.
pub fn read_nullable_bytes(
    buf: &mut Bytes,
    flexible: bool,
    nullable: bool,
) -> Result<Option<Bytes>, DecodeError> {
    let Some(len) = read_len(buf, flexible, true)? else {
        return if nullable {
            Ok(None)
        } else {
            Err(DecodeError::UnexpectedNull { what: "bytes" })
        };
    };
    need(buf, len)?;
    Ok(Some(buf.split_to(len)))
}

/// Reads non-null bytes without copying.
pub fn read_bytes(buf: &mut Bytes, flexible: bool) -> Result<Bytes, DecodeError> {
    read_nullable_bytes(buf, flexible, false)?.ok_or(DecodeError::UnexpectedNull { what: "bytes" })
}

/// Writes non-null bytes.
pub fn write_bytes(buf: &mut BytesMut, b: &[u8], flexible: bool) -> Result<(), EncodeError> {
    write_len(buf, b.len(), flexible, true, "bytes")?;
    buf.put_slice(b);
    Ok(())
}

/// Writes a response's record set. A deferred set becomes a splice when
/// the frame is encoded by [`crate::encode_response_spliced`]; otherwise
/// its source copies its bytes in.
pub fn write_records(
    buf: &mut BytesMut,
    records: &crate::Records,
    flexible: bool,
) -> Result<(), EncodeError> {
    match records {
        crate::Records::Memory(b) => write_bytes(buf, b, flexible),
        crate::Records::Deferred(source) => {
            let len = source.len();
            write_len(buf, len, flexible, true, "records")?;
            if crate::records::splice(buf.len(), source) {
                return Ok(());
            }
            let start = buf.len();
            source
                .copy_to(buf)
                .map_err(|e| EncodeError::Records(e.to_string()))?;
            if buf.len() - start != len {
                return Err(EncodeError::Records(format!(
                    "the source gave {} bytes of the {len} it holds",
                    buf.len() - start
                )));
            }
            Ok(())
        }
    }
}

/// Writes null bytes.
pub fn write_null_bytes(buf: &mut BytesMut, flexible: bool) {
    write_null_len(buf, flexible, true);
}

/// Reads a nullable array count and checks it against the bytes remaining:
/// `count` elements of at least `min_elem_size` bytes each must fit.
pub fn read_nullable_array_len(
    buf: &mut Bytes,
    flexible: bool,
    min_elem_size: usize,
    nullable: bool,
) -> Result<Option<usize>, DecodeError> {
    let Some(count) = read_len(buf, flexible, true)? else {
        return if nullable {
            Ok(None)
        } else {
            Err(DecodeError::UnexpectedNull { what: "array" })
        };
    };
    if count > MAX_ARRAY_LEN {
        return Err(DecodeError::TooLong {
            what: "array",
            length: count,
            limit: MAX_ARRAY_LEN,
        });
    }
    // Every element costs at least one byte of input, even a struct whose
    // fields are all absent at this version, so a count can never exceed
    // the bytes that remain.
    let needed = count.saturating_mul(min_elem_size.max(1));
    if needed > buf.remaining() {
        return Err(DecodeError::ArrayTooLong {
            count,
            needed,
            remaining: buf.remaining(),
        });
    }
    Ok(Some(count))
}

/// Reads a non-null array count, checked as in [`read_nullable_array_len`].
pub fn read_array_len(
    buf: &mut Bytes,
    flexible: bool,
    min_elem_size: usize,
) -> Result<usize, DecodeError> {
    read_nullable_array_len(buf, flexible, min_elem_size, false)?
        .ok_or(DecodeError::UnexpectedNull { what: "array" })
}

/// Writes an array count.
pub fn write_array_len(buf: &mut BytesMut, len: usize, flexible: bool) -> Result<(), EncodeError> {
    write_len(buf, len, flexible, true, "array")
}

/// Writes a null array.
pub fn write_null_array(buf: &mut BytesMut, flexible: bool) {
    write_null_len(buf, flexible, true);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uvarint_round_trips_boundaries() {
        for v in [0u32, 1, 127, 128, 16_383, 16_384, u32::MAX] {
            let mut b = BytesMut::new();
            write_uvarint(&mut b, v);
            let mut r = b.freeze();
            assert_eq!(read_uvarint(&mut r).ok(), Some(v));
            assert!(r.is_empty());
        }
    }

    #[test]
    fn uvarint_longer_than_five_bytes_is_rejected() {
        let mut r = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert!(matches!(
            read_uvarint(&mut r),
            Err(DecodeError::VarintTooLong)
        ));
    }

    #[test]
    fn i32_max_bytes_length_is_an_error_not_an_allocation() {
        let mut b = BytesMut::new();
        b.put_i32(i32::MAX);
        b.put_slice(b"abc");
        let mut r = b.freeze();
        assert!(matches!(
            read_bytes(&mut r, false),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn negative_lengths_other_than_minus_one_are_rejected() {
        let mut r = Bytes::from_static(&[0xff, 0xfe]);
        assert!(matches!(
            read_nullable_string(&mut r, false, true),
            Err(DecodeError::NegativeLength { length: -2 })
        ));
        let mut r = Bytes::from_static(&[0xff, 0xff, 0xff, 0x00]);
        assert!(matches!(
            read_array_len(&mut r, false, 1),
            Err(DecodeError::NegativeLength { .. })
        ));
    }

    #[test]
    fn array_count_beyond_remaining_bytes_is_rejected() {
        let mut r = Bytes::from_static(&[0x00, 0x00, 0x00, 0x10, 1, 2, 3]);
        assert!(matches!(
            read_array_len(&mut r, false, 4),
            Err(DecodeError::ArrayTooLong { count: 16, .. })
        ));
    }

    #[test]
    fn null_where_not_nullable_is_rejected() {
        let mut r = Bytes::from_static(&[0x00]);
        assert!(matches!(
            read_string(&mut r, true),
            Err(DecodeError::UnexpectedNull { .. })
        ));
    }

    #[test]
    fn string_longer_than_i16_max_is_an_encode_error() {
        let s = "x".repeat(MAX_STRING_LEN + 1);
        let mut b = BytesMut::new();
        assert!(matches!(
            write_string(&mut b, &s, true),
            Err(EncodeError::TooLong { .. })
        ));
    }
}
