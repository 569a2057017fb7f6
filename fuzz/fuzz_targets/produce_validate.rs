//! Fuzzes the produce-path validator (`validate_producer_batch`) against the
//! full record decoder.
//!
//! The harness fixes the framing fields a fuzzer would almost never get
//! right by chance (magic, batchLength, CRC), so mutations reach the record
//! walk and the decompressors: the checks that decide whether a batch whose
//! header lies is refused. What must hold:
//! - nothing panics, and nothing allocates from an unchecked length;
//! - a batch the validator accepts still has a valid CRC after its
//!   maxTimestamp rewrite, and the full decoder agrees with it: the same
//!   number of records, offset deltas 0..n-1, and (CreateTime) the same
//!   maximum timestamp, which is now also the header's.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sluice_records::batch::{BATCH_HEADER_BYTES, LOG_OVERHEAD_BYTES, MAGIC_V2, compute_crc};
use sluice_records::{TimestampType, ValidationConfig, check_batch, decode_records, validate_producer_batch};

/// The broker's clock for every execution, so the timestamp window is fixed.
const NOW_MS: i64 = 1_700_000_000_000;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if rest.len() < BATCH_HEADER_BYTES {
        return;
    }
    let mut batch = rest.to_vec();
    // baseOffset 0, a true batchLength, magic 2, then a CRC over the rest.
    batch[..8].copy_from_slice(&0i64.to_be_bytes());
    let batch_length = (batch.len() - LOG_OVERHEAD_BYTES) as i32;
    batch[8..12].copy_from_slice(&batch_length.to_be_bytes());
    batch[16] = MAGIC_V2 as u8;
    let crc = compute_crc(&batch);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());

    let config = ValidationConfig {
        timestamp_type: if mode & 1 == 0 { TimestampType::CreateTime } else { TimestampType::LogAppendTime },
        timestamp_before_max_ms: if mode & 2 == 0 { i64::MAX } else { 86_400_000 },
        timestamp_after_max_ms: 3_600_000,
        compacted: mode & 4 != 0,
        max_batch_bytes: 1 << 20,
        max_decompressed_bytes: 1 << 22,
        zstd_allowed: mode & 8 == 0,
    };
    let Ok(validated) = validate_producer_batch(&mut batch, &config, NOW_MS) else {
        return;
    };
    let header = check_batch(&batch).expect("a validated batch keeps a valid CRC");
    assert_eq!(header, validated.header);
    assert_eq!(header.record_count, validated.record_count);
    let records = decode_records(&Bytes::from(batch)).expect("a validated batch decodes");
    assert_eq!(records.len() as i32, validated.record_count);
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record.offset_delta as usize, i, "offset deltas run 0..n-1");
    }
    if config.timestamp_type == TimestampType::CreateTime {
        let max = records
            .iter()
            .map(|r| header.base_timestamp.wrapping_add(r.timestamp_delta))
            .max()
            .expect("a validated batch has a record");
        assert_eq!(validated.max_timestamp, max, "the validator's maximum is the records' maximum");
        assert_eq!(header.max_timestamp, max, "the header now carries the records' maximum");
    }
});
