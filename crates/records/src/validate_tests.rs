//! Tests of producer batch validation: lying headers, hostile counts, and
//! every codec.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::*;
use crate::batch::{check_batch, compute_crc};
use crate::builder::{BatchBuilder, NewRecord};
use crate::compression::MAX_DECOMPRESSED_BYTES;
use crate::record::Record;

const NOW: i64 = 1_700_000_000_000;
const OFF_CRC: usize = 17;
const OFF_LAST_OFFSET_DELTA: usize = 23;
const OFF_MAX_TIMESTAMP: usize = 35;
const OFF_RECORD_COUNT: usize = 57;

fn config() -> ValidationConfig {
    ValidationConfig {
        timestamp_type: TimestampType::CreateTime,
        timestamp_before_max_ms: i64::MAX,
        timestamp_after_max_ms: 3_600_000,
        compacted: false,
        max_batch_bytes: 1 << 20,
        max_decompressed_bytes: MAX_DECOMPRESSED_BYTES,
        zstd_allowed: true,
    }
}

fn record(key: Option<&'static [u8]>, ts: i64) -> NewRecord {
    NewRecord {
        key: key.map(Bytes::from_static),
        value: Some(Bytes::from_static(b"value")),
        headers: vec![("h".into(), Some(Bytes::from_static(b"1")))],
        timestamp_ms: ts,
    }
}

fn batch(codec: Compression, timestamps: &[i64]) -> BytesMut {
    let mut b = BatchBuilder::new().compression(codec);
    for &ts in timestamps {
        b.push(record(Some(b"k"), ts));
    }
    b.build().unwrap()
}

fn put_i32(buf: &mut [u8], at: usize, v: i32) {
    buf[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

fn put_i64(buf: &mut [u8], at: usize, v: i64) {
    buf[at..at + 8].copy_from_slice(&v.to_be_bytes());
}

/// Re-seals a hand-edited batch so only the edit, not the CRC, is wrong.
fn reseal(buf: &mut [u8]) {
    let crc = compute_crc(buf);
    buf[OFF_CRC..OFF_CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

/// A batch whose body is `records` encoded as given (uncompressed).
fn raw_batch(records: &[Record], record_count: i32, last_offset_delta: i32) -> BytesMut {
    let mut b = batch(Compression::None, &[NOW]);
    b.truncate(BATCH_HEADER_BYTES);
    for r in records {
        let mut out = Vec::new();
        r.encode(&mut out);
        b.extend_from_slice(&out);
    }
    let len = (b.len() - 12) as i32;
    put_i32(&mut b, 8, len);
    put_i32(&mut b, OFF_RECORD_COUNT, record_count);
    put_i32(&mut b, OFF_LAST_OFFSET_DELTA, last_offset_delta);
    reseal(&mut b);
    b
}

fn plain(offset_delta: i32) -> Record {
    Record {
        offset_delta,
        key: Some(Bytes::from_static(b"k")),
        value: Some(Bytes::from_static(b"v")),
        ..Record::default()
    }
}

#[test]
fn a_lying_max_timestamp_is_rewritten_and_the_crc_stays_valid() {
    for codec in Compression::ALL {
        let mut b = batch(codec, &[NOW - 5, NOW - 1, NOW - 3]);
        put_i64(&mut b, OFF_MAX_TIMESTAMP, -1);
        reseal(&mut b);
        let v = validate_producer_batch(&mut b, &config(), NOW).unwrap();
        assert_eq!(v.max_timestamp, NOW - 1, "{codec:?}");
        assert_eq!(v.offset_delta_of_max_timestamp, 1, "{codec:?}");
        assert!(v.rewrote_max_timestamp);
        let header = check_batch(&b).expect("CRC recomputed after the rewrite");
        assert_eq!(header.max_timestamp, NOW - 1);
        assert_eq!(v.header, header);
    }
}

#[test]
fn an_honest_header_is_left_byte_for_byte() {
    for codec in Compression::ALL {
        let mut b = batch(codec, &[NOW - 2, NOW]);
        let before = b.clone();
        let v = validate_producer_batch(&mut b, &config(), NOW).unwrap();
        assert!(!v.rewrote_max_timestamp);
        assert_eq!(v.record_count, 2);
        assert_eq!(b, before, "{codec:?}");
    }
}

#[test]
fn a_huge_record_count_with_one_real_record_is_refused() {
    // i32::MAX claimed, one record present: passes the header rules, fails the walk.
    let mut b = raw_batch(&[plain(0)], i32::MAX, i32::MAX - 1);
    let err = validate_producer_batch(&mut b, &config(), NOW).unwrap_err();
    assert!(
        matches!(err, RecordsError::RecordCountMismatch { found: 1, .. }),
        "{err}"
    );
    assert_eq!(err.kafka_error_code(), crate::error::INVALID_RECORD);
    // 2^31 wraps to a negative count in the i32 field.
    let mut b = raw_batch(&[plain(0)], i32::MIN, i32::MAX);
    let err = validate_producer_batch(&mut b, &config(), NOW).unwrap_err();
    assert_eq!(err.kafka_error_code(), crate::error::INVALID_RECORD);
}

#[test]
fn fewer_records_claimed_than_present_is_refused() {
    let mut b = raw_batch(&[plain(0), plain(1)], 1, 0);
    let err = validate_producer_batch(&mut b, &config(), NOW).unwrap_err();
    assert!(matches!(err, RecordsError::MalformedRecord { .. }), "{err}");
    assert_eq!(err.kafka_error_code(), crate::error::INVALID_RECORD);
}

#[test]
fn offset_deltas_must_run_from_zero() {
    for deltas in [[1, 2], [0, 0], [0, 5]] {
        let mut b = raw_batch(&[plain(deltas[0]), plain(deltas[1])], 2, 1);
        let err = validate_producer_batch(&mut b, &config(), NOW).unwrap_err();
        assert!(
            matches!(err, RecordsError::OffsetDeltaMismatch { .. }),
            "{deltas:?}: {err}"
        );
        assert_eq!(err.kafka_error_code(), crate::error::INVALID_RECORD);
        assert_eq!(err.record_errors().len(), 1);
    }
}

#[test]
fn trailing_garbage_after_the_records_is_refused() {
    let mut b = raw_batch(&[plain(0)], 1, 0);
    b.extend_from_slice(&[0, 0, 0]);
    let len = (b.len() - 12) as i32;
    put_i32(&mut b, 8, len);
    reseal(&mut b);
    let err = validate_producer_batch(&mut b, &config(), NOW).unwrap_err();
    assert!(
        matches!(
            err,
            RecordsError::MalformedRecord {
                reason: "trailing bytes after the last record",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_bad_crc_is_corrupt_and_nothing_is_rewritten() {
    let mut b = batch(Compression::None, &[NOW]);
    put_i64(&mut b, OFF_MAX_TIMESTAMP, -1);
    let before = b.clone();
    let err = validate_producer_batch(&mut b, &config(), NOW).unwrap_err();
    assert_eq!(err.kafka_error_code(), crate::error::CORRUPT_MESSAGE);
    assert_eq!(b, before, "a corrupt batch must not be re-sealed");
}

#[test]
fn timestamps_outside_the_window_are_refused_per_record() {
    let cfg = ValidationConfig {
        timestamp_before_max_ms: 1000,
        timestamp_after_max_ms: 1000,
        ..config()
    };
    for codec in Compression::ALL {
        let mut b = batch(codec, &[NOW, NOW - 5000, NOW + 500, NOW + 5000]);
        let err = validate_producer_batch(&mut b, &cfg, NOW).unwrap_err();
        assert_eq!(err.kafka_error_code(), crate::error::INVALID_TIMESTAMP);
        let indexes: Vec<i32> = err.record_errors().iter().map(|(i, _)| *i).collect();
        assert_eq!(indexes, vec![1, 3], "{codec:?}");
    }
    // Inside the window, and the edges themselves, are fine.
    let mut b = batch(Compression::None, &[NOW - 1000, NOW + 1000]);
    validate_producer_batch(&mut b, &cfg, NOW).unwrap();
    // LogAppendTime topics do not judge producer timestamps.
    let mut b = batch(Compression::None, &[0]);
    let lat = ValidationConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..cfg
    };
    assert_eq!(
        validate_producer_batch(&mut b, &lat, NOW)
            .unwrap()
            .max_timestamp,
        NOW
    );
}

#[test]
fn the_default_after_max_refuses_records_from_the_far_future() {
    let mut b = batch(Compression::None, &[NOW + 2 * 3_600_000]);
    let err = validate_producer_batch(&mut b, &config(), NOW).unwrap_err();
    assert_eq!(err.kafka_error_code(), crate::error::INVALID_TIMESTAMP);
}

#[test]
fn a_producer_may_not_claim_log_append_time_on_a_log_append_time_topic() {
    let mut b = BatchBuilder::new()
        .timestamp_type(TimestampType::LogAppendTime)
        .record(record(Some(b"k"), NOW))
        .build()
        .unwrap();
    let lat = ValidationConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..config()
    };
    let err = validate_producer_batch(&mut b, &lat, NOW).unwrap_err();
    assert_eq!(err.kafka_error_code(), crate::error::INVALID_TIMESTAMP);
}

#[test]
fn compacted_topics_refuse_records_without_keys() {
    let compacted = ValidationConfig {
        compacted: true,
        ..config()
    };
    let mut b = BatchBuilder::new()
        .record(record(Some(b"k"), NOW))
        .record(record(None, NOW))
        .build()
        .unwrap();
    let err = validate_producer_batch(&mut b, &compacted, NOW).unwrap_err();
    assert_eq!(err.kafka_error_code(), crate::error::INVALID_RECORD);
    assert_eq!(err.record_errors()[0].0, 1);
    validate_producer_batch(&mut b, &config(), NOW).expect("keys are optional elsewhere");
}

#[test]
fn zstd_is_refused_where_the_request_version_does_not_allow_it() {
    let cfg = ValidationConfig {
        zstd_allowed: false,
        ..config()
    };
    let mut b = batch(Compression::Zstd, &[NOW]);
    let err = validate_producer_batch(&mut b, &cfg, NOW).unwrap_err();
    assert_eq!(
        err.kafka_error_code(),
        crate::error::UNSUPPORTED_COMPRESSION_TYPE
    );
    let mut b = batch(Compression::Lz4, &[NOW]);
    validate_producer_batch(&mut b, &cfg, NOW).unwrap();
}

#[test]
fn decompression_bombs_hit_the_cap_while_streaming() {
    let big = vec![b'x'; 200_000];
    for codec in Compression::ALL {
        if codec == Compression::None {
            continue;
        }
        let mut b = BatchBuilder::new()
            .compression(codec)
            .record(NewRecord {
                key: Some(Bytes::from_static(b"k")),
                value: Some(Bytes::from(big.clone())),
                headers: vec![],
                timestamp_ms: NOW,
            })
            .build()
            .unwrap();
        let cfg = ValidationConfig {
            max_decompressed_bytes: 100_000,
            ..config()
        };
        let err = validate_producer_batch(&mut b, &cfg, NOW).unwrap_err();
        assert!(
            matches!(err, RecordsError::DecompressedTooLarge { limit: 100_000 }),
            "{codec:?}: {err}"
        );
        assert_eq!(err.kafka_error_code(), crate::error::MESSAGE_TOO_LARGE);
    }
}

#[test]
fn raw_snappy_bodies_are_accepted() {
    let mut b = batch(Compression::None, &[NOW, NOW - 1]);
    let body = b.split_off(BATCH_HEADER_BYTES);
    let packed = snap::raw::Encoder::new().compress_vec(&body).unwrap();
    b.extend_from_slice(&packed);
    let len = (b.len() - 12) as i32;
    put_i32(&mut b, 8, len);
    let attrs = i16::from_be_bytes([b[21], b[22]]) | Compression::Snappy.id() as i16;
    b[21..23].copy_from_slice(&attrs.to_be_bytes());
    reseal(&mut b);
    let v = validate_producer_batch(&mut b, &config(), NOW).unwrap();
    assert_eq!(v.record_count, 2);
    assert_eq!(v.max_timestamp, NOW);
}

#[test]
fn only_the_first_batch_of_the_buffer_is_touched() {
    let mut first = batch(Compression::None, &[NOW]);
    put_i64(&mut first, OFF_MAX_TIMESTAMP, -1);
    reseal(&mut first);
    let second = batch(Compression::None, &[NOW]);
    let mut buf = first.clone();
    buf.extend_from_slice(&second);
    let v = validate_producer_batch(&mut buf, &config(), NOW).unwrap();
    assert_eq!(v.header.total_size(), first.len());
    assert_eq!(&buf[first.len()..], &second[..]);
}

proptest! {
    #[test]
    fn validation_agrees_with_the_full_decoder(
        timestamps in proptest::collection::vec(NOW - 1_000_000..NOW + 1_000, 1..20),
        codec_id in 0u8..5,
        lie in any::<i64>(),
    ) {
        let codec = Compression::from_id(codec_id).unwrap();
        let mut b = batch(codec, &timestamps);
        put_i64(&mut b, OFF_MAX_TIMESTAMP, lie);
        reseal(&mut b);
        let v = validate_producer_batch(&mut b, &config(), NOW).unwrap();
        let max = *timestamps.iter().max().unwrap();
        prop_assert_eq!(v.max_timestamp, max);
        let first_max = timestamps.iter().position(|&t| t == max).unwrap() as i32;
        prop_assert_eq!(v.offset_delta_of_max_timestamp, first_max);
        prop_assert_eq!(check_batch(&b).unwrap().max_timestamp, max);
        let records = crate::batch::decode_records(&b.freeze()).unwrap();
        prop_assert_eq!(records.len(), timestamps.len());
    }

    #[test]
    fn garbage_bodies_are_errors_not_panics(
        body in proptest::collection::vec(any::<u8>(), 0..200),
        count in 1i32..5,
        codec_id in 0u8..5,
    ) {
        let mut b = batch(Compression::None, &[NOW]);
        b.truncate(BATCH_HEADER_BYTES);
        b.extend_from_slice(&body);
        let len = (b.len() - 12) as i32;
        put_i32(&mut b, 8, len);
        put_i32(&mut b, OFF_RECORD_COUNT, count);
        put_i32(&mut b, OFF_LAST_OFFSET_DELTA, count - 1);
        let attrs = i16::from(codec_id);
        b[21..23].copy_from_slice(&attrs.to_be_bytes());
        reseal(&mut b);
        let _ = validate_producer_batch(&mut b, &config(), NOW);
    }
}
