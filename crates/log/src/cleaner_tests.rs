//! Behaviour tests of the compaction core: each retention rule, the
//! byte-level guarantees (offsets kept, untouched batches identical, codec
//! kept, CRC valid), hostile input, cleaning in passes, and a property test
//! that compaction never changes what a reader of the log sees.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use proptest::prelude::*;
use sluice_records::batch::compute_crc;
use sluice_records::{
    BATCH_HEADER_BYTES, BatchBuilder, BatchHeader, Batches, Compression, NewRecord, NextBatch,
    Record, TimestampType, check_batch, decode_records,
};

use crate::AbortedTxn;
use crate::cleaner::{
    CleanRules, CleanStats, CleanerError, MapProgress, OffsetMap, TxnData, build_offset_map,
    clean_batches,
};
use crate::producer_state::{MarkerType, marker_key, marker_value, parse_marker};

/// Timestamp of every record unless a test says otherwise.
const TS: i64 = 10_000;

fn rec(key: Option<&str>, value: Option<&str>, timestamp_ms: i64) -> NewRecord {
    NewRecord {
        key: key.map(|k| Bytes::from(k.to_owned())),
        value: value.map(|v| Bytes::from(v.to_owned())),
        headers: vec![],
        timestamp_ms,
    }
}

/// A batch of the given (key, value) pairs at `TS`; `None` value = tombstone.
fn kv(pairs: &[(&str, Option<&str>)]) -> Vec<NewRecord> {
    pairs.iter().map(|(k, v)| rec(Some(k), *v, TS)).collect()
}

/// Builds a log of batches with sequential offsets, as the log would.
#[derive(Default)]
struct LogBuilder {
    bytes: Vec<u8>,
    next_offset: i64,
}

impl LogBuilder {
    fn push(&mut self, builder: BatchBuilder, records: Vec<NewRecord>) -> i64 {
        let base = self.next_offset;
        let mut builder = builder.base_offset(base);
        for r in records {
            builder.push(r);
        }
        let batch = builder.build().unwrap();
        let header = check_batch(&batch).unwrap();
        self.next_offset = header.next_offset();
        self.bytes.extend_from_slice(&batch);
        base
    }

    fn data(&mut self, records: Vec<NewRecord>) -> i64 {
        self.push(BatchBuilder::new(), records)
    }

    fn txn(&mut self, pid: i64, records: Vec<NewRecord>) -> i64 {
        self.push(
            BatchBuilder::new().producer(pid, 0, 0).transactional(true),
            records,
        )
    }

    fn marker(&mut self, pid: i64, kind: MarkerType, timestamp_ms: i64) -> i64 {
        let builder = BatchBuilder::new()
            .producer(pid, 0, -1)
            .transactional(true)
            .control(true);
        let record = NewRecord {
            key: Some(marker_key(kind)),
            value: Some(marker_value(0)),
            headers: vec![],
            timestamp_ms,
        };
        self.push(builder, vec![record])
    }
}

/// Every batch of a log: header and exact bytes.
fn batches(log: &[u8]) -> Vec<(BatchHeader, Vec<u8>)> {
    Batches::new(log)
        .map(|next| match next {
            NextBatch::Complete { header, bytes, .. } => (header, bytes.to_vec()),
            other => panic!("bad batch in test log: {other:?}"),
        })
        .collect()
}

/// A record as a reader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    offset: i64,
    timestamp_ms: i64,
    key: Option<Bytes>,
    value: Option<Bytes>,
}

/// The data records of a log with absolute offsets (control batches skipped).
fn records(log: &[u8]) -> Vec<Seen> {
    let mut out = Vec::new();
    for (header, bytes) in batches(log) {
        if header.is_control() || header.record_count == 0 {
            continue;
        }
        for r in decode_records(&Bytes::from(bytes)).unwrap() {
            out.push(Seen {
                offset: header.base_offset + i64::from(r.offset_delta),
                timestamp_ms: header.base_timestamp + r.timestamp_delta,
                key: r.key,
                value: r.value,
            });
        }
    }
    out
}

fn key_values(log: &[u8]) -> Vec<(i64, String, Option<String>)> {
    let text = |b: &Bytes| String::from_utf8(b.to_vec()).unwrap();
    records(log)
        .iter()
        .map(|s| {
            (
                s.offset,
                s.key.as_ref().map(text).unwrap_or_default(),
                s.value.as_ref().map(text),
            )
        })
        .collect()
}

/// The aborted transactions of a log, as `.txnindex` would list them.
fn aborted_txns(log: &[u8]) -> Vec<AbortedTxn> {
    let mut open: HashMap<i64, i64> = HashMap::new();
    let mut aborted = Vec::new();
    for (header, bytes) in batches(log) {
        if !header.is_transactional() {
            continue;
        }
        if header.is_control() {
            let (kind, _) = parse_marker(&Bytes::from(bytes)).unwrap();
            let first = open.remove(&header.producer_id);
            if let (MarkerType::Abort, Some(first_offset)) = (kind, first) {
                aborted.push(AbortedTxn {
                    producer_id: header.producer_id,
                    first_offset,
                    last_offset: header.base_offset,
                });
            }
        } else {
            open.entry(header.producer_id).or_insert(header.base_offset);
        }
    }
    aborted
}

/// Producer id → last offset of its last batch, as producer state knows it.
fn last_batches(log: &[u8]) -> HashMap<i64, i64> {
    batches(log)
        .into_iter()
        .filter(|(h, _)| h.producer_id >= 0)
        .map(|(h, _)| (h.producer_id, h.last_offset()))
        .collect()
}

/// One full pass: map everything, clean everything.
fn clean_once(log: &[u8], rules: &CleanRules<'_>) -> (Vec<u8>, CleanStats) {
    let mut map = OffsetMap::with_capacity(10_000);
    let progress = build_offset_map(&mut map, log, 0, i64::MAX, rules.aborted).unwrap();
    assert!(!progress.map_full);
    let mut out = Vec::new();
    let stats = clean_batches(log, &map, rules, &mut TxnData::default(), &mut out).unwrap();
    (out, stats)
}

fn rules(aborted: &[AbortedTxn]) -> CleanRules<'_> {
    CleanRules {
        delete_horizon_ms: 0,
        aborted,
        last_batch_of_producer: HashMap::new(),
        clean_below: 0,
    }
}

#[test]
fn offset_map_keeps_the_latest_offset_and_refuses_new_keys_when_full() {
    let mut map = OffsetMap::with_capacity(2);
    assert_eq!(map.latest_offset(), None);
    map.put(b"a", 5).unwrap();
    map.put(b"a", 3).unwrap(); // older: ignored
    map.put(b"b", 7).unwrap();
    assert_eq!(map.get(b"a"), Some(5));
    assert_eq!(map.get(b"b"), Some(7));
    assert_eq!(map.get(b"c"), None);
    assert!(matches!(
        map.put(b"c", 8),
        Err(CleanerError::MapFull { capacity: 2 })
    ));
    map.put(b"a", 9).unwrap(); // a known key still fits
    assert_eq!(
        (map.get(b"a"), map.latest_offset(), map.len()),
        (Some(9), Some(9), 2)
    );
    map.clear();
    assert!(map.is_empty());
    assert_eq!(map.latest_offset(), None);
    assert_eq!(OffsetMap::capacity_for_bytes(0), 1);
    assert_eq!(OffsetMap::capacity_for_bytes(64 * 1000), 1000);
}

#[test]
fn latest_record_per_key_survives_with_its_original_offset() {
    let mut log = LogBuilder::default();
    log.data(kv(&[
        ("k1", Some("a")),
        ("k2", Some("b")),
        ("k1", Some("c")),
    ]));
    log.data(kv(&[("k2", Some("d")), ("k3", Some("e"))]));
    let original = batches(&log.bytes);

    let (out, stats) = clean_once(&log.bytes, &rules(&[]));
    assert_eq!(
        key_values(&out),
        vec![
            (2, "k1".into(), Some("c".into())),
            (3, "k2".into(), Some("d".into())),
            (4, "k3".into(), Some("e".into())),
        ]
    );
    let cleaned = batches(&out);
    let (first, _) = &cleaned[0];
    let (was, _) = &original[0];
    assert_eq!(first.base_offset, 0);
    assert_eq!(first.last_offset_delta, 2, "offsets keep their gaps");
    assert_eq!(first.record_count, 1);
    assert_eq!(first.base_timestamp, was.base_timestamp);
    // The second batch lost nothing: copied byte for byte.
    assert_eq!(cleaned[1].1, original[1].1);
    assert_eq!(
        (
            stats.batches_read,
            stats.batches_written,
            stats.batches_rewritten
        ),
        (2, 2, 1)
    );
    assert_eq!((stats.records_read, stats.records_kept), (5, 3));
    assert_eq!(stats.removed_superseded, 2);
    assert_eq!(stats.bytes_in, log.bytes.len() as u64);
    assert_eq!(stats.bytes_out, out.len() as u64);
}

#[test]
fn rewritten_batch_keeps_header_fields_and_recomputes_max_timestamp() {
    let mut log = LogBuilder::default();
    log.push(
        BatchBuilder::new()
            .producer(4, 2, 17)
            .partition_leader_epoch(6),
        vec![
            rec(Some("k"), Some("old"), 500),
            rec(Some("j"), Some("late"), 900),
            rec(Some("j"), Some("new"), 700),
        ],
    );
    let (out, _) = clean_once(&log.bytes, &rules(&[]));
    let (header, _) = &batches(&out)[0];
    let was = check_batch(&log.bytes).unwrap();
    assert_eq!(header.max_timestamp, 700, "max over the kept records");
    assert_eq!(header.record_count, 2);
    for (a, b) in [
        (header.producer_id, was.producer_id),
        (
            i64::from(header.producer_epoch),
            i64::from(was.producer_epoch),
        ),
        (
            i64::from(header.base_sequence),
            i64::from(was.base_sequence),
        ),
        (i64::from(header.partition_leader_epoch), 6),
        (i64::from(header.last_offset_delta), 2),
        (i64::from(header.attributes), i64::from(was.attributes)),
    ] {
        assert_eq!(a, b);
    }
    let seen = records(&out);
    assert_eq!(seen[0].timestamp_ms, 500);
    assert_eq!(seen[1].timestamp_ms, 700);
}

#[test]
fn log_append_time_batches_keep_their_max_timestamp() {
    let mut log = LogBuilder::default();
    log.push(
        BatchBuilder::new().timestamp_type(TimestampType::LogAppendTime),
        kv(&[("k", Some("a")), ("k", Some("b"))]),
    );
    let mut bytes = log.bytes.clone();
    sluice_records::set_log_append_time(&mut bytes, 99_999);
    let (out, _) = clean_once(&bytes, &rules(&[]));
    let (header, _) = &batches(&out)[0];
    assert_eq!(header.timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(header.max_timestamp, 99_999);
}

#[test]
fn tombstone_is_kept_until_the_delete_horizon() {
    let mut log = LogBuilder::default();
    log.data(vec![rec(Some("k"), Some("v"), 1_000)]);
    log.data(vec![rec(Some("k"), None, 2_000)]);
    log.data(vec![
        rec(Some("other"), None, 2_000),
        rec(Some("other"), Some("x"), 3_000),
    ]);

    let mut before = rules(&[]);
    before.delete_horizon_ms = 2_000; // the tombstone is not older than this
    let (out, stats) = clean_once(&log.bytes, &before);
    assert_eq!(
        key_values(&out),
        vec![(1, "k".into(), None), (3, "other".into(), Some("x".into()))]
    );
    assert_eq!(stats.removed_tombstones, 0);

    let mut after = rules(&[]);
    after.delete_horizon_ms = 2_001;
    let (out, stats) = clean_once(&log.bytes, &after);
    assert_eq!(
        key_values(&out),
        vec![(3, "other".into(), Some("x".into()))]
    );
    assert_eq!(stats.removed_tombstones, 1);
    assert_eq!(
        stats.removed_superseded, 2,
        "the value under the tombstone, the superseded tombstone"
    );
}

#[test]
fn tombstone_past_what_the_map_covers_is_kept() {
    let mut log = LogBuilder::default();
    log.data(vec![rec(Some("k"), Some("v"), 1_000)]);
    log.data(vec![rec(Some("k"), None, 1_000)]);
    // The map covers only offset 0: it cannot vouch that the tombstone is
    // the latest, and removing it would bring "v" back.
    let mut map = OffsetMap::with_capacity(10);
    build_offset_map(&mut map, &log.bytes, 0, 1, &[]).unwrap();
    let mut past = rules(&[]);
    past.delete_horizon_ms = 5_000;
    let mut out = Vec::new();
    let stats = clean_batches(&log.bytes, &map, &past, &mut TxnData::default(), &mut out).unwrap();
    assert_eq!(out, log.bytes);
    assert_eq!(stats.removed_tombstones, 0);
}

#[test]
fn aborted_data_is_removed_and_committed_data_kept() {
    let mut log = LogBuilder::default();
    log.data(kv(&[("k", Some("committed-before"))]));
    log.txn(7, kv(&[("k", Some("aborted")), ("a", Some("aborted"))]));
    log.txn(8, kv(&[("c", Some("committed"))]));
    log.marker(7, MarkerType::Abort, TS);
    log.marker(8, MarkerType::Commit, TS);
    let aborted = aborted_txns(&log.bytes);
    assert_eq!(aborted.len(), 1);

    let (out, stats) = clean_once(&log.bytes, &rules(&aborted));
    assert_eq!(
        key_values(&out),
        vec![
            // An aborted record must not supersede the committed one before it.
            (0, "k".into(), Some("committed-before".into())),
            (3, "c".into(), Some("committed".into())),
        ]
    );
    assert_eq!(stats.removed_aborted, 2);
    let markers = batches(&out)
        .into_iter()
        .filter(|(h, _)| h.is_control())
        .count();
    assert_eq!(markers, 2, "markers stay before the horizon");
}

#[test]
fn markers_go_after_the_delete_horizon_once_their_data_is_gone() {
    let mut log = LogBuilder::default();
    // Producer 8 commits "c" and later overwrites it outside a transaction;
    // producer 9 aborts; producer 10 commits data that stays the latest.
    log.txn(8, kv(&[("c", Some("committed"))]));
    log.marker(8, MarkerType::Commit, 5_000);
    log.txn(9, kv(&[("a", Some("aborted"))]));
    log.marker(9, MarkerType::Abort, 5_000);
    log.txn(10, kv(&[("live", Some("committed"))]));
    log.marker(10, MarkerType::Commit, 5_000);
    log.data(kv(&[("c", Some("newer"))]));
    let aborted = aborted_txns(&log.bytes);
    let mut past = rules(&aborted);
    past.delete_horizon_ms = 5_001;
    let (out, stats) = clean_once(&log.bytes, &past);
    let markers: Vec<i64> = batches(&out)
        .iter()
        .filter(|(h, _)| h.is_control())
        .map(|(h, _)| h.producer_id)
        .collect();
    // Producer 10's data is still there: without its marker, a rebuild of
    // producer state would see that transaction open for ever.
    assert_eq!(markers, vec![10]);
    assert_eq!(stats.removed_markers, 2);
    // At the horizon itself nothing is past it: every marker stays.
    let mut at = rules(&aborted);
    at.delete_horizon_ms = 5_000;
    let (out, stats) = clean_once(&log.bytes, &at);
    assert_eq!(stats.removed_markers, 0);
    assert_eq!(
        batches(&out).iter().filter(|(h, _)| h.is_control()).count(),
        3
    );
}

#[test]
fn a_marker_stays_while_any_chunk_before_it_kept_its_data() {
    // The data and its marker reach `clean_batches` in different calls (two
    // chunks of one pass): what the first kept decides the second.
    let mut log = LogBuilder::default();
    log.txn(8, kv(&[("k", Some("committed"))]));
    let split = log.next_offset;
    log.marker(8, MarkerType::Commit, 5_000);
    let (data, marker) = split_at_offset(&log.bytes, split);
    let mut past = rules(&[]);
    past.delete_horizon_ms = 5_001;
    let mut map = OffsetMap::with_capacity(16);
    build_offset_map(&mut map, &log.bytes, 0, i64::MAX, &[]).unwrap();
    let mut txns = TxnData::default();
    let mut out = Vec::new();
    clean_batches(&data, &map, &past, &mut txns, &mut out).unwrap();
    let stats = clean_batches(&marker, &map, &past, &mut txns, &mut out).unwrap();
    assert_eq!(stats.removed_markers, 0);
    assert_eq!(out, log.bytes);
    // A fresh pass that starts at the marker saw no data: it goes.
    let stats = clean_batches(&marker, &map, &past, &mut TxnData::default(), &mut out).unwrap();
    assert_eq!(stats.removed_markers, 1);
}

#[test]
fn records_without_a_key_are_removed() {
    let mut log = LogBuilder::default();
    log.data(vec![
        rec(None, Some("x"), TS),
        rec(Some("k"), Some("v"), TS),
    ]);
    log.data(vec![rec(None, Some("y"), TS)]);
    let (out, stats) = clean_once(&log.bytes, &rules(&[]));
    assert_eq!(key_values(&out), vec![(1, "k".into(), Some("v".into()))]);
    assert_eq!(stats.removed_null_key, 2);
    assert_eq!(stats.batches_written, 1, "the emptied batch is dropped");
}

#[test]
fn producers_last_batch_is_kept_empty_with_its_header() {
    for codec in [Compression::None, Compression::Gzip] {
        let mut log = LogBuilder::default();
        log.push(
            BatchBuilder::new()
                .producer(9, 3, 41)
                .partition_leader_epoch(2)
                .compression(codec),
            kv(&[("k", Some("a")), ("j", Some("b"))]),
        );
        log.data(kv(&[("k", Some("c")), ("j", Some("d"))]));
        let was = check_batch(&log.bytes).unwrap();

        let (out, _) = clean_once(&log.bytes, &rules(&[]));
        assert_eq!(
            batches(&out).len(),
            1,
            "without the rule the empty batch goes"
        );

        let mut keep = rules(&[]);
        keep.last_batch_of_producer = last_batches(&log.bytes);
        assert_eq!(keep.last_batch_of_producer.get(&9), Some(&1));
        let (out, stats) = clean_once(&log.bytes, &keep);
        assert_eq!(stats.batches_emptied, 1);
        let cleaned = batches(&out);
        let (empty, bytes) = &cleaned[0];
        assert_eq!(bytes.len(), BATCH_HEADER_BYTES, "header only");
        check_batch(bytes).unwrap();
        assert_eq!(empty.record_count, 0);
        assert_eq!(
            (
                empty.base_offset,
                empty.last_offset_delta,
                empty.last_offset()
            ),
            (0, 1, 1)
        );
        assert_eq!(
            (empty.producer_id, empty.producer_epoch, empty.base_sequence),
            (9, 3, 41)
        );
        assert_eq!(empty.partition_leader_epoch, 2);
        assert_eq!(empty.base_timestamp, was.base_timestamp);
        assert_eq!(empty.max_timestamp, was.max_timestamp);
        assert_eq!(empty.compression().unwrap(), Compression::None);
        assert!(
            decode_records(&Bytes::from(bytes.clone()))
                .unwrap()
                .is_empty()
        );

        // Cleaning again keeps it as it is.
        let (again, _) = clean_once(&out, &keep);
        assert_eq!(again, out);
    }
}

#[test]
fn compressed_batches_are_recompressed_with_their_codec() {
    for codec in Compression::ALL {
        let mut log = LogBuilder::default();
        log.push(
            BatchBuilder::new().compression(codec),
            kv(&[("k1", Some("a")), ("k2", Some("b")), ("k1", Some("c"))]),
        );
        let (out, _) = clean_once(&log.bytes, &rules(&[]));
        let header = check_batch(&out).unwrap();
        assert_eq!(header.compression().unwrap(), codec, "{codec:?}");
        assert_eq!(header.total_size(), out.len());
        assert_eq!(
            key_values(&out),
            vec![
                (1, "k2".into(), Some("b".into())),
                (2, "k1".into(), Some("c".into()))
            ],
            "{codec:?}"
        );
    }
}

fn hostile_cases() -> Vec<(&'static str, Vec<u8>)> {
    let mut log = LogBuilder::default();
    log.data(kv(&[("k", Some("a")), ("k", Some("b"))]));
    let good = log.bytes.clone();

    let truncated = good[..good.len() - 1].to_vec();
    let mut bad_crc = good.clone();
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 0x40;
    let garbage: Vec<u8> = (0..200u32)
        .map(|i| (i.wrapping_mul(37) % 251) as u8)
        .collect();
    let mut out_of_order = good.clone();
    out_of_order.extend_from_slice(&good);

    // A batch whose record claims an offset past the batch's last offset.
    let header = check_batch(&good).unwrap();
    let mut body = Vec::new();
    Record {
        offset_delta: 5,
        key: Some(Bytes::from_static(b"k")),
        value: Some(Bytes::from_static(b"v")),
        ..Record::default()
    }
    .encode(&mut body);
    let mut bad_delta = vec![0u8; BATCH_HEADER_BYTES];
    BatchHeader {
        batch_length: (BATCH_HEADER_BYTES - 12 + body.len()) as i32,
        record_count: 1,
        ..header
    }
    .write_to(&mut bad_delta);
    bad_delta.extend_from_slice(&body);
    let crc = compute_crc(&bad_delta);
    bad_delta[17..21].copy_from_slice(&crc.to_be_bytes());

    // A record count the body cannot hold.
    let mut bad_count = good.clone();
    bad_count[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
    let crc = compute_crc(&bad_count);
    bad_count[17..21].copy_from_slice(&crc.to_be_bytes());

    vec![
        ("truncated", truncated),
        ("bad crc", bad_crc),
        ("garbage", garbage),
        ("out of order", out_of_order),
        ("offset delta past the batch", bad_delta),
        ("record count", bad_count),
    ]
}

#[test]
fn hostile_input_is_an_error_not_a_panic() {
    for (name, input) in hostile_cases() {
        let mut map = OffsetMap::with_capacity(100);
        assert!(
            build_offset_map(&mut map, &input, 0, i64::MAX, &[]).is_err(),
            "map: {name}"
        );
        let mut out = Vec::new();
        let map = OffsetMap::with_capacity(100);
        assert!(
            clean_batches(&input, &map, &rules(&[]), &mut TxnData::default(), &mut out).is_err(),
            "clean: {name}"
        );
    }
}

#[test]
fn map_stops_at_a_batch_boundary_when_full() {
    let mut log = LogBuilder::default();
    log.data(kv(&[("a", Some("1")), ("b", Some("1"))])); // 0..=1
    log.data(kv(&[("a", Some("2")), ("c", Some("2"))])); // 2..=3
    log.data(kv(&[("d", Some("3")), ("e", Some("3"))])); // 4..=5

    let mut map = OffsetMap::with_capacity(3);
    let progress = build_offset_map(&mut map, &log.bytes, 0, i64::MAX, &[]).unwrap();
    assert_eq!(
        progress,
        MapProgress {
            next_offset: 4,
            map_full: true,
            records_mapped: 4
        }
    );
    assert_eq!((map.get(b"a"), map.latest_offset()), (Some(2), Some(3)));

    // A range: only offsets in [1, 3) are mapped.
    let mut map = OffsetMap::with_capacity(3);
    let progress = build_offset_map(&mut map, &log.bytes, 1, 3, &[]).unwrap();
    assert_eq!((progress.next_offset, progress.map_full), (3, false));
    assert_eq!(
        (map.get(b"a"), map.get(b"b"), map.get(b"c")),
        (Some(2), Some(1), None)
    );

    let mut tiny = OffsetMap::with_capacity(1);
    assert!(matches!(
        build_offset_map(&mut tiny, &log.bytes, 0, i64::MAX, &[]),
        Err(CleanerError::MapTooSmall { keys: 2, .. })
    ));
}

/// Splits a log at the first batch starting at or after `offset`.
fn split_at_offset(log: &[u8], offset: i64) -> (Vec<u8>, Vec<u8>) {
    let at = batches(log)
        .iter()
        .take_while(|(h, _)| h.base_offset < offset)
        .map(|(_, b)| b.len())
        .sum();
    (log[..at].to_vec(), log[at..].to_vec())
}

/// Kafka's "clean in passes": map as much as fits, clean up to there, repeat.
fn clean_in_passes(log: &[u8], rules: &CleanRules<'_>, capacity: usize) -> (Vec<u8>, usize) {
    let mut map = OffsetMap::with_capacity(capacity);
    let mut current = log.to_vec();
    let mut start = 0;
    let mut passes = 0;
    loop {
        map.clear();
        let progress =
            build_offset_map(&mut map, &current, start, i64::MAX, rules.aborted).unwrap();
        let (dirty, rest) = split_at_offset(&current, progress.next_offset);
        let mut cleaned = Vec::new();
        clean_batches(&dirty, &map, rules, &mut TxnData::default(), &mut cleaned).unwrap();
        cleaned.extend_from_slice(&rest);
        current = cleaned;
        passes += 1;
        if !progress.map_full {
            return (current, passes);
        }
        start = progress.next_offset;
    }
}

/// A batch as a reader sees it: framing fields and its records.
#[derive(Debug, PartialEq, Eq)]
struct BatchView {
    base_offset: i64,
    last_offset_delta: i32,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    /// Attributes without the codec bits (an emptied batch drops its codec).
    flags: i16,
    records: Vec<Seen>,
}

fn view(log: &[u8]) -> Vec<BatchView> {
    batches(log)
        .into_iter()
        .map(|(h, bytes)| {
            check_batch(&bytes).unwrap();
            BatchView {
                base_offset: h.base_offset,
                last_offset_delta: h.last_offset_delta,
                producer_id: h.producer_id,
                producer_epoch: h.producer_epoch,
                base_sequence: h.base_sequence,
                flags: h.attributes & !0x07,
                records: records(&bytes),
            }
        })
        .collect()
}

/// A random history: (key index, value or tombstone, timestamp) records in
/// batches that are plain, or in transactions that commit or abort.
#[derive(Debug, Clone)]
enum Step {
    Plain(Vec<(u8, Option<u8>, i64)>, Compression),
    Txn {
        pid: i64,
        batches: Vec<Vec<(u8, Option<u8>, i64)>>,
        commit: bool,
        compression: Compression,
    },
}

fn arb_records() -> impl Strategy<Value = Vec<(u8, Option<u8>, i64)>> {
    proptest::collection::vec(
        (
            0u8..6,
            proptest::option::weighted(0.8, any::<u8>()),
            0i64..100,
        ),
        1..5,
    )
}

fn arb_step() -> impl Strategy<Value = Step> {
    let codec = proptest::sample::select(Compression::ALL.to_vec());
    prop_oneof![
        3 => (arb_records(), codec.clone()).prop_map(|(r, c)| Step::Plain(r, c)),
        2 => (1i64..4, proptest::collection::vec(arb_records(), 1..3), any::<bool>(), codec)
            .prop_map(|(pid, batches, commit, compression)| Step::Txn { pid, batches, commit, compression }),
    ]
}

fn history_log(steps: &[Step]) -> Vec<u8> {
    let to_records = |records: &[(u8, Option<u8>, i64)]| -> Vec<NewRecord> {
        records
            .iter()
            .map(|(k, v, ts)| NewRecord {
                key: Some(Bytes::from(format!("key{k}"))),
                value: v.map(|v| Bytes::from(format!("value{v}"))),
                headers: vec![],
                timestamp_ms: *ts,
            })
            .collect()
    };
    let mut log = LogBuilder::default();
    for step in steps {
        match step {
            Step::Plain(records, codec) => {
                log.push(BatchBuilder::new().compression(*codec), to_records(records));
            }
            Step::Txn {
                pid,
                batches,
                commit,
                compression,
            } => {
                for records in batches {
                    log.push(
                        BatchBuilder::new()
                            .producer(*pid, 0, 0)
                            .transactional(true)
                            .compression(*compression),
                        to_records(records),
                    );
                }
                let kind = if *commit {
                    MarkerType::Commit
                } else {
                    MarkerType::Abort
                };
                log.marker(*pid, kind, 50);
            }
        }
    }
    log.bytes
}

/// key → latest value, reading from offset 0, skipping aborted data,
/// applying tombstones as deletes.
fn table(log: &[u8], aborted: &[AbortedTxn]) -> BTreeMap<Bytes, Bytes> {
    let mut table = BTreeMap::new();
    for (header, bytes) in batches(log) {
        let is_aborted = header.is_transactional()
            && !header.is_control()
            && aborted.iter().any(|a| {
                a.producer_id == header.producer_id
                    && a.first_offset <= header.base_offset
                    && header.base_offset <= a.last_offset
            });
        if is_aborted || header.is_control() || header.record_count == 0 {
            continue;
        }
        for r in decode_records(&Bytes::from(bytes)).unwrap() {
            let Some(key) = r.key else { continue };
            match r.value {
                Some(value) => table.insert(key, value),
                None => table.remove(&key),
            };
        }
    }
    table
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn compaction_never_changes_what_a_reader_sees(
        steps in proptest::collection::vec(arb_step(), 1..12),
        horizon in 0i64..120,
    ) {
        let log = history_log(&steps);
        let aborted = aborted_txns(&log);
        let rules = CleanRules {
            delete_horizon_ms: horizon,
            aborted: &aborted,
            last_batch_of_producer: last_batches(&log),
            clean_below: 0,
        };
        let (cleaned, stats) = clean_once(&log, &rules);
        prop_assert_eq!(table(&cleaned, &aborted), table(&log, &aborted));

        // Every kept record is the original record at the same offset.
        let original: HashMap<i64, Seen> = records(&log).into_iter().map(|s| (s.offset, s)).collect();
        for seen in records(&cleaned) {
            prop_assert_eq!(Some(&seen), original.get(&seen.offset));
        }
        // No aborted data is left, and every batch is valid.
        prop_assert_eq!(table(&cleaned, &[]), table(&log, &aborted));
        for (header, bytes) in batches(&cleaned) {
            prop_assert_eq!(check_batch(&bytes).unwrap(), header);
        }
        prop_assert_eq!(stats.records_read, stats.records_kept
            + stats.removed_superseded + stats.removed_tombstones + stats.removed_aborted
            + stats.removed_null_key + stats.removed_markers);

        // Cleaning in passes with a tiny map gives the result of one pass.
        let (passed, _) = clean_in_passes(&log, &rules, 8);
        prop_assert_eq!(view(&passed), view(&cleaned));
        // And cleaning again changes nothing a reader sees.
        let (twice, _) = clean_once(&cleaned, &rules);
        prop_assert_eq!(view(&twice), view(&cleaned));
    }
}

#[test]
fn cleaning_in_passes_matches_one_pass() {
    let mut log = LogBuilder::default();
    for round in 0..10 {
        let k = |i: usize| format!("k{}", (round * 3 + i) % 11);
        log.data(vec![
            rec(Some(&k(0)), Some(&format!("v{round}")), 100 + round as i64),
            rec(Some(&k(1)), None, 100 + round as i64),
            rec(Some(&k(2)), Some("x"), 100 + round as i64),
        ]);
        if round % 3 == 0 {
            log.txn(5, kv(&[(k(1).as_str(), Some("t"))]));
            log.marker(
                5,
                if round % 2 == 0 {
                    MarkerType::Abort
                } else {
                    MarkerType::Commit
                },
                100,
            );
        }
    }
    let aborted = aborted_txns(&log.bytes);
    let mut rules = rules(&aborted);
    rules.delete_horizon_ms = 105;
    rules.last_batch_of_producer = last_batches(&log.bytes);

    let (once, _) = clean_once(&log.bytes, &rules);
    let (passed, passes) = clean_in_passes(&log.bytes, &rules, 4);
    assert!(passes > 3, "the tiny map forces several passes ({passes})");
    assert_eq!(view(&passed), view(&once));
    assert_eq!(table(&passed, &aborted), table(&log.bytes, &aborted));
}

#[test]
fn untouched_log_is_copied_byte_for_byte() {
    let mut log = LogBuilder::default();
    log.data(kv(&[("a", Some("1"))]));
    log.push(
        BatchBuilder::new().compression(Compression::Zstd),
        kv(&[("b", Some("2"))]),
    );
    log.data(kv(&[("c", None)]));
    let (out, stats) = clean_once(&log.bytes, &rules(&[]));
    assert_eq!(out, log.bytes);
    assert_eq!(stats.batches_rewritten, 0);
}
