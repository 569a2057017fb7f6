//! Writes arbitrary bytes as a partition's only segment (optionally after a
//! valid prefix) and opens the log. Recovery must either refuse with an
//! error or yield a log whose every batch reads back with a valid CRC and
//! that accepts a new append.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sluice_log::encryption::is_envelope;
use sluice_log::{EncryptionError, Log, LogConfig};
use sluice_records::{BatchBuilder, Batches, NewRecord, NextBatch};

/// Inputs past this are cut: recovery cost grows with the segment, and the
/// interesting damage (torn tails, bad headers, CRC mismatches) shows up in
/// a few batches.
const MAX_INPUT_BYTES: usize = 16 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let rest = &rest[..rest.len().min(MAX_INPUT_BYTES)];
    let dir = scratch_dir();
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
    // Small segments and index spacing so a short input rolls and indexes.
    let config = LogConfig { index_interval_bytes: 64, segment_bytes: 4096, ..LogConfig::default() };
    let Ok(log) = Log::open(dir.path(), config.clone()) else { return };
    let start = log.log_start_offset();
    let read = log.read(start, u32::MAX, i64::MAX).expect("read");
    let bytes = match read.to_bytes() {
        Ok(bytes) => bytes,
        // A batch forged with the encryption bit: this log has no keys, so
        // the read refuses it with the typed error instead of serving it.
        Err(e) => {
            assert!(e.get_ref().is_some_and(|i| i.is::<EncryptionError>()), "read failed: {e}");
            return;
        }
    };
    // A read stops before an envelope it cannot open, so it may be shorter
    // than the log only when the stored bytes hold one.
    if bytes.len() as u64 != log.size_bytes() {
        let stored: Vec<u8> = read.slices.iter().flat_map(|s| s.read_to_bytes().expect("pread")).collect();
        assert!(has_envelope(&stored), "read {} of {} bytes", bytes.len(), log.size_bytes());
        return;
    }
    for item in Batches::new(&bytes) {
        assert!(matches!(item, NextBatch::Complete { .. }), "recovered log holds a bad batch: {item:?}");
    }
    if log.is_offline() {
        // Recovery could not write (the scratch file system is full): the
        // log opened read-only, which the reads above already checked.
        return;
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

/// True if any batch header, walking `stored` by batchLength, has the envelope bit.
fn has_envelope(stored: &[u8]) -> bool {
    let mut pos = 0;
    while pos < stored.len() {
        let Ok(h) = sluice_records::BatchHeader::parse(&stored[pos..]) else { return false };
        if is_envelope(&h) {
            return true;
        }
        if h.total_size() == 0 {
            return false;
        }
        pos += h.total_size();
    }
    false
}

/// A temporary directory in memory when the machine has one: `Log::open`
/// fsyncs files and directories, which on a disk costs milliseconds per
/// execution and is a no-op on tmpfs. What is fuzzed is the recovery logic,
/// not the disk.
fn scratch_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().expect("temp dir")
}
