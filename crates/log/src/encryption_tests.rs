//! Encryption at rest: envelopes on disk, plain batches out, typed errors otherwise.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use sluice_records::{BatchBuilder, Batches, NewRecord, NextBatch};

use crate::encryption::{
    self, ATTR_ENCRYPTED, ENVELOPE_OVERHEAD_BYTES, EncryptionError, KEY_BYTES, KeyId, Keyring,
};
use crate::error::{INVALID_RECORD, KAFKA_STORAGE_ERROR};
use crate::{Log, LogConfig, LogError};

const SECRET: &[u8] = b"TOP-SECRET-VALUE";

fn key(byte: u8) -> [u8; KEY_BYTES] {
    [byte; KEY_BYTES]
}

fn keyring(keys: &[(KeyId, u8)], active: KeyId) -> Arc<Keyring> {
    Arc::new(Keyring::new(keys.iter().map(|&(id, b)| (id, key(b))).collect(), active).unwrap())
}

fn config(keys: Option<Arc<Keyring>>) -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 256,
        encryption: keys,
        ..LogConfig::default()
    }
}

fn secret_batch(records: usize, ts: i64) -> BytesMut {
    let mut b = BatchBuilder::new();
    for i in 0..records {
        let mut value = SECRET.to_vec();
        value.extend_from_slice(format!("-{i}").as_bytes());
        b.push(NewRecord {
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(value)),
            headers: vec![],
            timestamp_ms: ts + i as i64,
        });
    }
    b.build().unwrap()
}

fn read_plain(log: &Log, from: i64) -> std::io::Result<Bytes> {
    log.read(from, u32::MAX, i64::MAX).unwrap().to_bytes()
}

/// Every batch of `bytes` as (base offset, bytes from the leader epoch on).
fn batches(bytes: &[u8]) -> Vec<(i64, Vec<u8>)> {
    Batches::new(bytes)
        .map(|i| match i {
            NextBatch::Complete { header, bytes, .. } => (header.base_offset, bytes[16..].to_vec()),
            other => panic!("not a plain batch: {other:?}"),
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn all_file_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        out.extend(std::fs::read(e.unwrap().path()).unwrap());
    }
    out
}

fn encryption_error(e: &std::io::Error) -> &EncryptionError {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<EncryptionError>())
        .expect("a typed encryption error")
}

#[test]
fn encrypted_batches_round_trip_and_never_reach_the_disk_in_the_clear() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config(Some(keyring(&[(1, 7)], 1)))).unwrap();
    let a = secret_batch(3, 1000);
    let b = secret_batch(2, 2000);
    log.append(a.clone(), 4, 0).unwrap();
    log.append(b.clone(), 4, 0).unwrap();
    log.flush().unwrap();
    let got = batches(&read_plain(&log, 0).unwrap());
    assert_eq!(got.len(), 2);
    // Byte-identical to what the producer sent (the CRC included), apart
    // from the epoch the log stamps.
    assert_eq!(&got[0].1[4..], &a[20..]);
    assert_eq!(&got[1].1[4..], &b[20..]);
    assert_eq!(got[1].0, 3);
    // The stored batches are envelopes: larger by the overhead, and no
    // value or key appears in any file of the directory.
    assert_eq!(
        log.size_bytes(),
        (a.len() + b.len() + 2 * ENVELOPE_OVERHEAD_BYTES) as u64
    );
    let files = all_file_bytes(dir.path());
    assert!(!contains(&files, SECRET));
    assert!(!contains(&files, b"key-1"));
    // And a reopen (recovery walks the envelopes) reads the same.
    drop(log);
    let log = Log::open(dir.path(), config(Some(keyring(&[(1, 7)], 1)))).unwrap();
    assert_eq!(batches(&read_plain(&log, 0).unwrap()), got);
    assert_eq!(log.log_end_offset(), 5);
}

#[test]
fn a_missing_key_id_is_a_typed_error_and_no_bytes() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), config(Some(keyring(&[(1, 7)], 1)))).unwrap();
        log.append(secret_batch(2, 0), 0, 0).unwrap();
        log.flush().unwrap();
    }
    // Encryption off: the envelope cannot be served.
    let log = Log::open(dir.path(), config(None)).unwrap();
    let e = read_plain(&log, 0).unwrap_err();
    assert!(matches!(
        encryption_error(&e),
        EncryptionError::KeyUnavailable {
            key_id: 1,
            base_offset: 0
        }
    ));
    drop(log);
    // Another key only.
    let log = Log::open(dir.path(), config(Some(keyring(&[(2, 9)], 2)))).unwrap();
    let e = read_plain(&log, 0).unwrap_err();
    assert!(matches!(
        encryption_error(&e),
        EncryptionError::KeyUnavailable { key_id: 1, .. }
    ));
    let log_error = LogError::Encryption(EncryptionError::KeyUnavailable {
        key_id: 1,
        base_offset: 0,
    });
    assert_eq!(log_error.kafka_error_code(), KAFKA_STORAGE_ERROR);
}

#[test]
fn a_wrong_key_under_the_right_id_fails_authentication() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), config(Some(keyring(&[(1, 7)], 1)))).unwrap();
        log.append(secret_batch(2, 0), 0, 0).unwrap();
        log.flush().unwrap();
    }
    let log = Log::open(dir.path(), config(Some(keyring(&[(1, 8)], 1)))).unwrap();
    let e = read_plain(&log, 0).unwrap_err();
    assert!(matches!(
        encryption_error(&e),
        EncryptionError::AuthenticationFailed {
            key_id: 1,
            base_offset: 0
        }
    ));
}

/// Flips one byte of the first stored batch at `at` and fixes its CRC, as
/// an attacker who knows the format would; the tag must still catch it.
fn tamper(dir: &Path, at: u64) {
    let path = dir.join("00000000000000000000.log");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let mut byte = [0u8; 1];
    f.read_exact_at(&mut byte, at).unwrap();
    byte[0] ^= 0x01;
    f.write_all_at(&byte, at).unwrap();
    let mut len = [0u8; 4];
    f.read_exact_at(&mut len, 8).unwrap();
    let total = 12 + u32::from_be_bytes(len) as usize;
    let mut batch = vec![0u8; total];
    f.read_exact_at(&mut batch, 0).unwrap();
    let crc = sluice_records::batch::compute_crc(&batch);
    f.write_all_at(&crc.to_be_bytes(), 17).unwrap();
}

#[test]
fn a_tampered_byte_anywhere_in_an_envelope_is_refused_not_served() {
    // Clear header fields (offset delta at 23, max timestamp at 35,
    // producer id at 43), the key id (61, stays 1 only by luck: flip the
    // low bit to 0), the nonce (65..77), the ciphertext, and the tag.
    for at in [0u64, 13, 23, 35, 43, 64, 70, 90, 140] {
        let dir = tempfile::tempdir().unwrap();
        let keys = keyring(&[(1, 7), (0, 3)], 1);
        {
            let log = Log::open(dir.path(), config(Some(keys.clone()))).unwrap();
            log.append(secret_batch(2, 0), 0, 0).unwrap();
            log.flush().unwrap();
        }
        tamper(dir.path(), at);
        // The recovery point covers the batch, so recovery trusts it; a
        // read must still not serve it.
        match Log::open(dir.path(), config(Some(keys))) {
            Ok(log) => match log.read(0, u32::MAX, i64::MAX) {
                Ok(r) => {
                    let e = r.to_bytes().unwrap_err();
                    assert!(
                        matches!(
                            encryption_error(&e),
                            EncryptionError::AuthenticationFailed { .. }
                                | EncryptionError::Malformed { .. }
                        ),
                        "byte {at}: {e}"
                    );
                }
                // A changed offset field may move the batch out of the range read.
                Err(e) => assert!(matches!(e, LogError::OffsetOutOfRange { .. }), "{e}"),
            },
            // Or recovery refuses outright (a changed batchLength): also no garbage.
            Err(e) => assert!(matches!(e, LogError::Corrupt { .. }), "byte {at}: {e}"),
        }
    }
}

#[test]
fn a_torn_encrypted_tail_is_cut_on_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keyring(&[(1, 7)], 1);
    let len_after_two;
    {
        let log = Log::open(dir.path(), config(Some(keys.clone()))).unwrap();
        log.append(secret_batch(2, 0), 0, 0).unwrap();
        log.append(secret_batch(2, 10), 0, 0).unwrap();
        log.flush().unwrap();
        len_after_two = log.size_bytes();
        log.append(secret_batch(3, 20), 0, 0).unwrap();
        // No flush: the third envelope is above the recovery point.
    }
    let path = dir.path().join("00000000000000000000.log");
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len_after_two + 40)
        .unwrap();
    let log = Log::open(dir.path(), config(Some(keys))).unwrap();
    assert_eq!(log.log_end_offset(), 4);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), len_after_two);
    assert_eq!(batches(&read_plain(&log, 0).unwrap()).len(), 2);
    // The log goes on from the cut.
    assert_eq!(
        log.append(secret_batch(1, 30), 0, 0).unwrap().base_offset,
        4
    );
    assert_eq!(batches(&read_plain(&log, 4).unwrap()).len(), 1);
}

#[test]
fn plain_segments_stay_readable_after_encryption_is_turned_on() {
    let dir = tempfile::tempdir().unwrap();
    let plain = secret_batch(3, 0);
    {
        let log = Log::open(dir.path(), config(None)).unwrap();
        // Enough plain data to roll into a second segment.
        for _ in 0..40 {
            log.append(plain.clone(), 0, 0).unwrap();
        }
        log.flush().unwrap();
        assert!(log.segment_count() > 1);
    }
    let log = Log::open(dir.path(), config(Some(keyring(&[(1, 7)], 1)))).unwrap();
    for _ in 0..40 {
        log.append(secret_batch(3, 5), 0, 0).unwrap();
    }
    let all = batches(&read_plain(&log, 0).unwrap());
    assert_eq!(all.len(), 80);
    assert_eq!(all[79].0, 237);
    assert!(all.iter().all(|(_, b)| contains(b, SECRET)));
    // Offset lookups land on the right batch in both kinds of segment.
    for offset in [0, 50, 119, 120, 121, 200, 239] {
        let r = log.read(offset, 1, i64::MAX).unwrap().to_bytes().unwrap();
        let got = batches(&r);
        assert_eq!(got.len(), 1);
        assert!(
            got[0].0 <= offset && offset < got[0].0 + 3,
            "offset {offset}"
        );
    }
    // The timestamp index works across both too, with record-level answers
    // from inside envelopes.
    assert_eq!(log.lookup_timestamp(6).unwrap(), Some((121, 6)));
    assert_eq!(log.lookup_timestamp(1).unwrap(), Some((1, 1)));
}

#[test]
fn a_read_stops_before_an_envelope_it_cannot_open_and_the_next_read_fails() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), config(None)).unwrap();
        log.append(secret_batch(2, 0), 0, 0).unwrap();
        log.flush().unwrap();
    }
    {
        let log = Log::open(dir.path(), config(Some(keyring(&[(1, 7)], 1)))).unwrap();
        log.append(secret_batch(2, 0), 0, 0).unwrap();
        log.append(secret_batch(2, 0), 0, 0).unwrap();
        log.flush().unwrap();
    }
    let log = Log::open(dir.path(), config(None)).unwrap();
    let got = batches(&read_plain(&log, 0).unwrap());
    assert_eq!(got.iter().map(|b| b.0).collect::<Vec<_>>(), vec![0]);
    let e = read_plain(&log, 2).unwrap_err();
    assert!(matches!(
        encryption_error(&e),
        EncryptionError::KeyUnavailable {
            key_id: 1,
            base_offset: 2
        }
    ));
}

#[test]
fn rotating_the_active_key_keeps_old_data_readable() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), config(Some(keyring(&[(1, 7)], 1)))).unwrap();
        log.append(secret_batch(2, 0), 0, 0).unwrap();
        log.flush().unwrap();
    }
    let both = keyring(&[(1, 7), (2, 9)], 2);
    let log = Log::open(dir.path(), config(Some(both))).unwrap();
    log.append(secret_batch(2, 0), 0, 0).unwrap();
    log.flush().unwrap();
    assert_eq!(batches(&read_plain(&log, 0).unwrap()).len(), 2);
    drop(log);
    // The new batch names key 2: with key 1 alone, the first batch reads
    // and the second is refused.
    let log = Log::open(dir.path(), config(Some(keyring(&[(1, 7)], 1)))).unwrap();
    assert_eq!(
        batches(&log.read(0, 1, i64::MAX).unwrap().to_bytes().unwrap()).len(),
        1
    );
    let e = log.read(2, 1, i64::MAX).unwrap().to_bytes().unwrap_err();
    assert!(matches!(
        encryption_error(&e),
        EncryptionError::KeyUnavailable {
            key_id: 2,
            base_offset: 2
        }
    ));
}

#[test]
fn an_append_carrying_the_envelope_bit_is_refused() {
    let mut forged = secret_batch(1, 0);
    let attributes = i16::from_be_bytes([forged[21], forged[22]]) | ATTR_ENCRYPTED;
    forged[21..23].copy_from_slice(&attributes.to_be_bytes());
    let crc = sluice_records::batch::compute_crc(&forged);
    forged[17..21].copy_from_slice(&crc.to_be_bytes());
    for keys in [None, Some(keyring(&[(1, 7)], 1))] {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), config(keys)).unwrap();
        let e = log.append(forged.clone(), 0, 0).unwrap_err();
        assert!(
            matches!(
                e,
                LogError::Encryption(EncryptionError::ReservedAttribute { .. })
            ),
            "{e}"
        );
        assert_eq!(e.kafka_error_code(), INVALID_RECORD);
        assert_eq!(log.log_end_offset(), 0);
    }
}

#[test]
fn every_envelope_gets_a_fresh_nonce() {
    let keys = keyring(&[(1, 7)], 1);
    let batch = secret_batch(1, 0);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..1000 {
        let mut out = Vec::new();
        keys.encrypt_batch(&batch, &mut out).unwrap();
        assert!(seen.insert(out[65..77].to_vec()), "nonce repeated");
    }
}

#[test]
fn key_files_parse_and_bad_lines_are_named_without_the_key() {
    let text = format!(
        "# keys\n1:{}\n\n 2 : {} \n",
        "ab".repeat(32),
        "CD".repeat(32)
    );
    let keys = encryption::parse_keys(&text, "keys.txt").unwrap();
    assert_eq!(keys, vec![(1, [0xab; 32]), (2, [0xcd; 32])]);
    let env = format!("3:{},4:{}", "01".repeat(32), "02".repeat(32));
    assert_eq!(encryption::parse_keys(&env, "env").unwrap().len(), 2);
    for (bad, line) in [
        (format!("1:{}\nx:{}", "ab".repeat(32), "ab".repeat(32)), 2),
        (format!("1:{}", "ab".repeat(31)), 1),
        (format!("1:{}", "zz".repeat(32)), 1),
        ("1".to_string(), 1),
    ] {
        let e = encryption::parse_keys(&bad, "keys.txt").unwrap_err();
        assert!(
            matches!(e, EncryptionError::BadKeyLine { line: l, .. } if l == line),
            "{e}"
        );
        assert!(!e.to_string().contains("abab"), "{e}");
    }
    assert!(Keyring::new(vec![(1, key(1)), (1, key(2))], 1).is_err());
    assert!(Keyring::new(vec![(1, key(1))], 2).is_err());
    assert!(!format!("{:?}", keyring(&[(1, 0xab)], 1)).contains("ab, ab"));
}

#[test]
fn a_world_readable_key_file_is_reported() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys");
    std::fs::write(&path, format!("1:{}\n", "ab".repeat(32))).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(!encryption::read_key_file(&path).unwrap().1);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(encryption::read_key_file(&path).unwrap().1);
}

#[test]
fn the_data_dir_marker_refuses_a_start_without_or_with_the_wrong_keys() {
    let dir = tempfile::tempdir().unwrap();
    // No marker, encryption off: fine, and nothing is written.
    encryption::check_data_dir(dir.path(), None).unwrap();
    assert!(!dir.path().join(encryption::MARKER_FILE).exists());
    // First encrypted start records key 1.
    encryption::check_data_dir(dir.path(), Some(&keyring(&[(1, 7)], 1))).unwrap();
    encryption::check_data_dir(dir.path(), Some(&keyring(&[(1, 7)], 1))).unwrap();
    // Turning encryption off is refused, naming the key id.
    let e = encryption::check_data_dir(dir.path(), None).unwrap_err();
    assert!(matches!(&e, EncryptionError::EncryptedButDisabled { key_ids, .. } if key_ids == &[1]));
    // The wrong key under id 1.
    let e = encryption::check_data_dir(dir.path(), Some(&keyring(&[(1, 8)], 1))).unwrap_err();
    assert!(
        matches!(e, EncryptionError::WrongKey { key_id: 1, .. }),
        "{e}"
    );
    // Key 1 dropped from the key file.
    let e = encryption::check_data_dir(dir.path(), Some(&keyring(&[(2, 9)], 2))).unwrap_err();
    assert!(
        matches!(e, EncryptionError::MissingKey { key_id: 1, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("key id 1"));
    // Rotation: key 2 joins, and from then on both are required.
    encryption::check_data_dir(dir.path(), Some(&keyring(&[(1, 7), (2, 9)], 2))).unwrap();
    let e = encryption::check_data_dir(dir.path(), Some(&keyring(&[(1, 7)], 1))).unwrap_err();
    assert!(
        matches!(e, EncryptionError::MissingKey { key_id: 2, .. }),
        "{e}"
    );
}

// ---- property test: an encrypted log behaves like a plain one ----

#[derive(Debug, Clone)]
enum Op {
    Append {
        records: usize,
        value_bytes: usize,
    },
    Read {
        at: proptest::sample::Index,
        max_bytes: u32,
    },
    Truncate {
        at: proptest::sample::Index,
    },
    Flush,
    Reopen,
    /// Crash: reopen after cutting the unflushed tail at some byte.
    TearTail {
        at: proptest::sample::Index,
    },
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1usize..5, 0usize..300).prop_map(|(records, value_bytes)| Op::Append { records, value_bytes }),
        3 => (any::<proptest::sample::Index>(), 1u32..3000).prop_map(|(at, max_bytes)| Op::Read { at, max_bytes }),
        1 => any::<proptest::sample::Index>().prop_map(|at| Op::Truncate { at }),
        1 => Just(Op::Flush),
        1 => Just(Op::Reopen),
        1 => any::<proptest::sample::Index>().prop_map(|at| Op::TearTail { at }),
    ]
}

fn model_config(keys: Option<Arc<Keyring>>) -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        index_interval_bytes: 300,
        retention_ms: -1,
        encryption: keys,
        ..LogConfig::default()
    }
}

fn value_batch(records: usize, value_bytes: usize) -> BytesMut {
    let mut b = BatchBuilder::new();
    for i in 0..records {
        b.push(NewRecord {
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(vec![b'v'; value_bytes])),
            headers: vec![],
            timestamp_ms: 1000 + i as i64,
        });
    }
    b.build().unwrap()
}

/// The last segment file of `dir`, and the position, size and base
/// offset of its last stored batch (None if that segment is empty).
fn last_batch(dir: &Path) -> Option<(std::path::PathBuf, u64, u64, i64)> {
    let mut logs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    let path = logs.last()?.clone();
    let bytes = std::fs::read(&path).unwrap();
    let mut pos = 0usize;
    let mut last = None;
    while pos < bytes.len() {
        let header = sluice_records::BatchHeader::parse(&bytes[pos..]).unwrap();
        last = Some((pos as u64, header.total_size() as u64, header.base_offset));
        pos += header.total_size();
    }
    last.map(|(pos, len, base)| (path, pos, len, base))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn an_encrypted_log_behaves_like_a_plain_one(ops in proptest::collection::vec(arb_op(), 1..50)) {
        let plain_dir = tempfile::tempdir().unwrap();
        let enc_dir = tempfile::tempdir().unwrap();
        let keys = keyring(&[(5, 0x42)], 5);
        let mut plain = Log::open(plain_dir.path(), model_config(None)).unwrap();
        let mut enc = Log::open(enc_dir.path(), model_config(Some(keys.clone()))).unwrap();
        for op in ops {
            match op {
                Op::Append { records, value_bytes } => {
                    let b = value_batch(records, value_bytes);
                    let p = plain.append(b.clone(), 1, 0).unwrap();
                    let e = enc.append(b, 1, 0).unwrap();
                    prop_assert_eq!(p, e);
                }
                Op::Read { at, max_bytes } => {
                    let (start, end) = (plain.log_start_offset(), plain.log_end_offset());
                    let offset = start + at.index((end - start + 1) as usize) as i64;
                    // The encrypted log counts envelope bytes against max_bytes;
                    // compare the first batches, which both always return.
                    let p = plain.read(offset, max_bytes, i64::MAX).unwrap().to_bytes().unwrap();
                    let e = enc.read(offset, max_bytes, i64::MAX).unwrap().to_bytes().unwrap();
                    let (p, e) = (batches(&p), batches(&e));
                    prop_assert_eq!(p.is_empty(), e.is_empty());
                    prop_assert!(e.len() <= p.len());
                    prop_assert_eq!(&p[..e.len()], &e[..]);
                }
                Op::Truncate { at } => {
                    let (start, end) = (plain.log_start_offset(), plain.log_end_offset());
                    let to = start + at.index((end - start + 1) as usize) as i64;
                    plain.truncate_to(to).unwrap();
                    enc.truncate_to(to).unwrap();
                }
                Op::Flush => {
                    plain.flush().unwrap();
                    enc.flush().unwrap();
                }
                Op::Reopen => {
                    drop(plain);
                    drop(enc);
                    plain = Log::open(plain_dir.path(), model_config(None)).unwrap();
                    enc = Log::open(enc_dir.path(), model_config(Some(keys.clone()))).unwrap();
                }
                Op::TearTail { at } => {
                    // A crash cuts the encrypted log inside its last
                    // envelope, if that one is not yet durable: recovery
                    // must drop exactly that batch, as truncation does to
                    // the plain log.
                    let rp = enc.recovery_point();
                    drop(enc);
                    if let Some((path, pos, len, base)) = last_batch(enc_dir.path())
                        && base >= rp
                    {
                        let cut = pos + at.index(len as usize) as u64;
                        OpenOptions::new().write(true).open(&path).unwrap().set_len(cut).unwrap();
                        plain.truncate_to(base).unwrap();
                    }
                    enc = Log::open(enc_dir.path(), model_config(Some(keys.clone()))).unwrap();
                }
            }
            prop_assert_eq!(plain.log_end_offset(), enc.log_end_offset());
            prop_assert_eq!(plain.log_start_offset(), enc.log_start_offset());
        }
        let p = plain.read(plain.log_start_offset(), u32::MAX, i64::MAX).unwrap().to_bytes().unwrap();
        let e = enc.read(enc.log_start_offset(), u32::MAX, i64::MAX).unwrap().to_bytes().unwrap();
        prop_assert_eq!(batches(&p), batches(&e));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any single changed byte of an envelope is refused, except the stored
    /// CRC, which is outside the tag and recomputed on open.
    #[test]
    fn a_changed_envelope_byte_never_opens_to_different_bytes(
        value in proptest::collection::vec(any::<u8>(), 0..200),
        at in any::<proptest::sample::Index>(),
        mask in 1u8..=255,
    ) {
        let keys = keyring(&[(1, 7)], 1);
        let mut b = BatchBuilder::new();
        b.push(NewRecord { key: None, value: Some(Bytes::from(value)), headers: vec![], timestamp_ms: 1 });
        let plain = b.build().unwrap();
        let mut sealed = Vec::new();
        keys.encrypt_batch(&plain, &mut sealed).unwrap();
        let opened = encryption::decrypt_batches(Some(&keys), Bytes::from(sealed.clone())).unwrap();
        prop_assert_eq!(&opened[..], &plain[..]);
        let position = at.index(sealed.len());
        sealed[position] ^= mask;
        match encryption::decrypt_batches(Some(&keys), Bytes::from(sealed)) {
            Ok(out) => {
                prop_assert!((17..21).contains(&position), "byte {} changed and opened", position);
                prop_assert_eq!(&out[..], &plain[..]);
            }
            Err(_) => prop_assert!(!(17..21).contains(&position)),
        }
    }

    /// Arbitrary stored bytes never panic the decoder, and nothing it
    /// returns is still an envelope.
    #[test]
    fn the_envelope_decoder_survives_arbitrary_bytes(stored in proptest::collection::vec(any::<u8>(), 0..400)) {
        let keys = keyring(&[(1, 7)], 1);
        if let Ok(out) = encryption::decrypt_batches(Some(&keys), Bytes::from(stored)) {
            let mut pos = 0;
            while pos < out.len() {
                let h = sluice_records::BatchHeader::parse(&out[pos..]).unwrap();
                prop_assert!(!encryption::is_envelope(&h));
                pos += h.total_size();
            }
        }
    }
}

#[test]
fn sealed_units_round_trip_name_their_key_and_refuse_a_wrong_key_aad_or_change() {
    let old = keyring(&[(1, 0x11)], 1);
    let sealed = old.seal(b"purpose", SECRET).expect("seal");
    assert_eq!(sealed.len(), SECRET.len() + ENVELOPE_OVERHEAD_BYTES);
    assert!(!sealed.windows(SECRET.len()).any(|w| w == SECRET));
    assert_eq!(encryption::sealed_key_id(&sealed).expect("id"), 1);
    assert_eq!(old.unseal(b"purpose", &sealed).expect("unseal"), SECRET);
    // After rotation the old key still opens old units; new ones use key 2.
    let rotated = keyring(&[(1, 0x11), (2, 0x22)], 2);
    assert_eq!(
        rotated.unseal(b"purpose", &sealed).expect("old unit"),
        SECRET
    );
    let new = rotated.seal(b"purpose", SECRET).expect("seal");
    assert_eq!(encryption::sealed_key_id(&new).expect("id"), 2);
    assert!(matches!(
        old.unseal(b"purpose", &new),
        Err(EncryptionError::SealedKeyUnavailable { key_id: 2 })
    ));
    let wrong = keyring(&[(1, 0x99)], 1);
    assert!(matches!(
        wrong.unseal(b"purpose", &sealed),
        Err(EncryptionError::SealedAuthenticationFailed { key_id: 1 })
    ));
    assert!(matches!(
        old.unseal(b"other purpose", &sealed),
        Err(EncryptionError::SealedAuthenticationFailed { key_id: 1 })
    ));
    let mut flipped = sealed.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert!(old.unseal(b"purpose", &flipped).is_err());
    assert!(matches!(
        old.unseal(b"purpose", &sealed[..ENVELOPE_OVERHEAD_BYTES - 1]),
        Err(EncryptionError::Malformed { .. })
    ));
}
