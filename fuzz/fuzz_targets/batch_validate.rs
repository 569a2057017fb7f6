//! Feeds arbitrary bytes to batch validation, iteration, record decoding and
//! decompression. Nothing may panic or allocate from an unchecked length;
//! anything that validates must also decode consistently.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sluice_records::{Batches, NextBatch, check_batch, check_producer_batch, decode_records};

fuzz_target!(|data: &[u8]| {
    let _ = check_producer_batch(data, 1 << 20);
    for item in Batches::new(data) {
        if let NextBatch::Complete { header, bytes, .. } = item {
            assert_eq!(bytes.len(), header.total_size());
            assert!(check_batch(bytes).is_ok());
            if let Ok(records) = decode_records(&Bytes::copy_from_slice(bytes)) {
                assert_eq!(records.len() as i32, header.record_count);
            }
        }
    }
});
