//! Writes arbitrary bytes as a partition's only segment (optionally after a
//! valid prefix) and opens the log. Recovery must either refuse with an
//! error or yield a log whose every batch reads back with a valid CRC and
//! that accepts a new append.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sluice_log::{Log, LogConfig};
use sluice_records::{BatchBuilder, Batches, NewRecord, NextBatch};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let mut segment = Vec::new();
    if mode & 1 == 1 {
        // A valid batch first, so damage lands after good data.
        let b = BatchBuilder::new()
            .record(NewRecord { value: Some(Bytes::from_static(b"ok")), timestamp_ms: 1, ..NewRecord::default() })
            .build()
            .expect("valid batch");
        segment.extend_from_slice(&b);
    }
    segment.extend_from_slice(rest);
    std::fs::write(dir.path().join("00000000000000000000.log"), &segment).expect("write segment");
    let config = LogConfig { index_interval_bytes: 64, ..LogConfig::default() };
    let Ok(log) = Log::open(dir.path(), config.clone()) else { return };
    let start = log.log_start_offset();
    let bytes = log.read(start, u32::MAX, i64::MAX).expect("read").to_bytes().expect("pread");
    assert_eq!(bytes.len() as u64, log.size_bytes());
    for item in Batches::new(&bytes) {
        assert!(matches!(item, NextBatch::Complete { .. }), "recovered log holds a bad batch: {item:?}");
    }
    let extra = BatchBuilder::new()
        .record(NewRecord { value: Some(Bytes::from_static(b"new")), timestamp_ms: 2, ..NewRecord::default() })
        .build()
        .expect("valid batch");
    let info = log.append(extra, 0, 0).expect("append after recovery");
    assert_eq!(info.base_offset, log.log_end_offset() - 1);
    drop(log);
    // Recovery of a recovered log is a no-op.
    let again = Log::open(dir.path(), config).expect("reopen");
    assert_eq!(again.log_end_offset(), info.last_offset + 1);
});
