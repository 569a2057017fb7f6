//! Batch body compression: gzip, snappy, lz4, zstd.
//!
//! Every decoder is capped at a caller-given limit (normally
//! [`MAX_DECOMPRESSED_BYTES`]) so a small hostile batch cannot expand into
//! gigabytes. Framing quirks, from KAFKA-NOTES.md:
//! - gzip: multi-member streams are decoded in full.
//! - snappy: Java clients use xerial framing (`\x82SNAPPY\0`, two i32s, then
//!   `[u32 BE length][raw block]`…); librdkafka may send one raw block. Both
//!   are accepted; we write xerial framing, which every client reads.
//! - lz4: LZ4 frame format, independent 64 KB blocks.
//! - zstd: frames may lack a content size, so we stream-decode.

use std::io::{self, Read, Write};

use crate::error::RecordsError;

/// Cap on the decompressed size of one batch body.
///
/// message.max.bytes defaults to ~1 MiB of *compressed* batch; text-like
/// payloads compress 10-20x, so 64 MiB leaves generous headroom while
/// bounding the memory one hostile batch can claim.
pub const MAX_DECOMPRESSED_BYTES: usize = 64 * 1024 * 1024;

pub(crate) const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\0";
pub(crate) const XERIAL_HEADER_BYTES: usize = 16;
/// Xerial block size we write (the Java client's default is 32 KiB).
const XERIAL_BLOCK_BYTES: usize = 32 * 1024;

/// Compression codec, attributes bits 0-2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// 0: uncompressed.
    #[default]
    None,
    /// 1: gzip.
    Gzip,
    /// 2: snappy.
    Snappy,
    /// 3: lz4 frame.
    Lz4,
    /// 4: zstd.
    Zstd,
}

impl Compression {
    /// All codecs, for tests.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// Codec from its attributes id.
    pub fn from_id(id: u8) -> Result<Compression, RecordsError> {
        Ok(match id {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            _ => return Err(RecordsError::UnknownCompression { id }),
        })
    }

    /// Attributes id of the codec.
    pub fn id(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// Lower-case codec name as Kafka spells it.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    /// Decompresses `data`, failing if the output would exceed `limit` bytes.
    pub fn decompress(self, data: &[u8], limit: usize) -> Result<Vec<u8>, RecordsError> {
        let codec = self.name();
        let io_err = |source| RecordsError::Decompress { codec, source };
        match self {
            Compression::None => {
                if data.len() > limit {
                    return Err(RecordsError::DecompressedTooLarge { limit });
                }
                Ok(data.to_vec())
            }
            Compression::Gzip => read_capped(flate2::read::MultiGzDecoder::new(data), limit, codec),
            Compression::Lz4 => read_capped(lz4_flex::frame::FrameDecoder::new(data), limit, codec),
            Compression::Zstd => {
                let decoder = zstd::stream::read::Decoder::new(data).map_err(io_err)?;
                read_capped(decoder, limit, codec)
            }
            Compression::Snappy => snappy_decompress(data, limit),
        }
    }

    /// Compresses `data`.
    pub fn compress(self, data: &[u8]) -> Result<Vec<u8>, RecordsError> {
        let codec = self.name();
        let io_err = |source| RecordsError::Compress { codec, source };
        match self {
            Compression::None => Ok(data.to_vec()),
            Compression::Gzip => {
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                enc.write_all(data).map_err(io_err)?;
                enc.finish().map_err(io_err)
            }
            Compression::Lz4 => {
                let info = lz4_flex::frame::FrameInfo::new()
                    .block_size(lz4_flex::frame::BlockSize::Max64KB)
                    .block_mode(lz4_flex::frame::BlockMode::Independent);
                let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
                enc.write_all(data).map_err(io_err)?;
                enc.finish().map_err(|e| io_err(io::Error::other(e)))
            }
            Compression::Zstd => zstd::encode_all(data, 3).map_err(io_err),
            Compression::Snappy => {
                let mut out = Vec::with_capacity(XERIAL_HEADER_BYTES + data.len() / 2);
                out.extend_from_slice(XERIAL_MAGIC);
                out.extend_from_slice(&1i32.to_be_bytes()); // version
                out.extend_from_slice(&1i32.to_be_bytes()); // minimum compatible version
                let mut enc = snap::raw::Encoder::new();
                for chunk in data.chunks(XERIAL_BLOCK_BYTES) {
                    let block = enc
                        .compress_vec(chunk)
                        .map_err(|e| io_err(io::Error::other(e)))?;
                    out.extend_from_slice(&(block.len() as u32).to_be_bytes());
                    out.extend_from_slice(&block);
                }
                Ok(out)
            }
        }
    }
}

fn read_capped(
    reader: impl Read,
    limit: usize,
    codec: &'static str,
) -> Result<Vec<u8>, RecordsError> {
    let mut out = Vec::new();
    // Read one byte past the limit so "exactly at the limit" is allowed.
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    reader
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|source| RecordsError::Decompress { codec, source })?;
    if out.len() > limit {
        return Err(RecordsError::DecompressedTooLarge { limit });
    }
    Ok(out)
}

pub(crate) fn snappy_block(
    block: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<(), RecordsError> {
    let bad = |e: snap::Error| RecordsError::Decompress {
        codec: "snappy",
        source: io::Error::new(io::ErrorKind::InvalidData, e),
    };
    // The block states its own decompressed length; check it before allocating.
    let len = snap::raw::decompress_len(block).map_err(bad)?;
    if out.len().saturating_add(len) > limit {
        return Err(RecordsError::DecompressedTooLarge { limit });
    }
    let start = out.len();
    out.resize(start + len, 0);
    let n = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(bad)?;
    out.truncate(start + n);
    Ok(())
}

fn snappy_decompress(data: &[u8], limit: usize) -> Result<Vec<u8>, RecordsError> {
    let mut out = Vec::new();
    if data.len() < XERIAL_HEADER_BYTES || &data[..8] != XERIAL_MAGIC {
        snappy_block(data, &mut out, limit)?;
        return Ok(out);
    }
    let mut rest = &data[XERIAL_HEADER_BYTES..];
    while !rest.is_empty() {
        if rest.len() < 4 {
            return Err(RecordsError::Decompress {
                codec: "snappy",
                source: io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "xerial block length cut short",
                ),
            });
        }
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        rest = &rest[4..];
        if len > rest.len() {
            return Err(RecordsError::Decompress {
                codec: "snappy",
                source: io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "xerial block exceeds the data",
                ),
            });
        }
        snappy_block(&rest[..len], &mut out, limit)?;
        rest = &rest[len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn every_codec_round_trips(data in proptest::collection::vec(any::<u8>(), 0..100_000)) {
            for codec in Compression::ALL {
                let packed = codec.compress(&data).unwrap();
                prop_assert_eq!(&codec.decompress(&packed, MAX_DECOMPRESSED_BYTES).unwrap(), &data);
            }
        }
    }

    #[test]
    fn gzip_decodes_multiple_members() {
        let mut a = Compression::Gzip.compress(b"hello ").unwrap();
        a.extend(Compression::Gzip.compress(b"world").unwrap());
        assert_eq!(
            Compression::Gzip.decompress(&a, 100).unwrap(),
            b"hello world"
        );
    }

    #[test]
    fn snappy_accepts_raw_blocks() {
        let raw = snap::raw::Encoder::new()
            .compress_vec(b"raw snappy from librdkafka")
            .unwrap();
        assert_eq!(
            Compression::Snappy.decompress(&raw, 100).unwrap(),
            b"raw snappy from librdkafka"
        );
    }

    #[test]
    fn zstd_accepts_frames_without_content_size() {
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
        enc.include_contentsize(false).unwrap();
        enc.write_all(b"streamed").unwrap();
        let packed = enc.finish().unwrap();
        assert_eq!(
            Compression::Zstd.decompress(&packed, 100).unwrap(),
            b"streamed"
        );
    }

    #[test]
    fn decompression_bombs_hit_the_cap() {
        let zeros = vec![0u8; 1_000_000];
        for codec in Compression::ALL {
            let packed = codec.compress(&zeros).unwrap();
            let err = codec.decompress(&packed, 999_999).unwrap_err();
            assert!(
                matches!(err, RecordsError::DecompressedTooLarge { limit: 999_999 }),
                "{codec:?}: {err}"
            );
            assert_eq!(
                codec.decompress(&packed, 1_000_000).unwrap().len(),
                1_000_000
            );
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for codec in Compression::ALL {
            let _ = codec.decompress(b"\x82SNAPPY\0\0\0\0\x01\0\0\0\x01\xff\xff\xff\xff", 1000);
            let _ = codec.decompress(&[0xff; 40], 1000);
        }
    }
}
