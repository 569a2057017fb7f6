//! The log really goes through its [`SegmentStore`]: tests with a second
//! store that records every call, can fail one, can hold segments back from
//! retention, and keeps the files somewhere other than where the log thinks.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use sluice_records::{BatchBuilder, NewRecord};

use crate::error::KAFKA_STORAGE_ERROR;
use crate::file_cache::FileCache;
use crate::store::{
    DeleteReason, LocalStore, SealOrigin, SealedSegment, SegmentFile, SegmentPaths, SegmentStore,
};
use crate::{Log, LogConfig, LogError};

/// One call the log made, as the test store saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    CreateDir,
    Recover,
    List,
    SyncDir,
    DeleteDir,
    Create(i64, SegmentFile),
    OpenUncached(i64, SegmentFile),
    Len(i64, SegmentFile),
    Read(i64, SegmentFile),
    Delete(i64, DeleteReason),
    Close(i64),
    WriteSidecar(String),
    ReadSidecar(String),
    RemoveSidecar(String),
    Sealed {
        base: i64,
        end: i64,
        origin: SealOrigin,
    },
    MayDelete(i64, DeleteReason),
}

/// A failure the test store injects once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fail {
    Create(SegmentFile),
    Delete,
}

/// A store that keeps the files of the logical directory the log was given
/// under another (physical) directory, records every call, fails the calls
/// it is told to, and holds segments from `keep_from` on back from retention
/// (as a tiered store does until a segment is uploaded).
#[derive(Debug)]
struct TestStore {
    inner: LocalStore,
    logical: PathBuf,
    physical: PathBuf,
    calls: Mutex<Vec<Call>>,
    fail: Mutex<Option<Fail>>,
    keep_from: Mutex<i64>,
}

impl TestStore {
    fn new(logical: &Path, physical: &Path) -> Arc<TestStore> {
        Arc::new(TestStore {
            inner: LocalStore::new(Arc::new(FileCache::new(64))),
            logical: logical.to_path_buf(),
            physical: physical.to_path_buf(),
            calls: Mutex::new(Vec::new()),
            fail: Mutex::new(None),
            keep_from: Mutex::new(i64::MAX),
        })
    }

    fn map(&self, dir: &Path) -> PathBuf {
        match dir.strip_prefix(&self.logical) {
            Ok(rest) => self.physical.join(rest),
            Err(_) => panic!("the log asked about {}", dir.display()),
        }
    }

    fn record(&self, call: Call) {
        self.calls.lock().unwrap().push(call);
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }

    fn fail_next(&self, fail: Fail) {
        *self.fail.lock().unwrap() = Some(fail);
    }

    fn injected(&self, fail: Fail, op: &'static str, path: PathBuf) -> Result<(), LogError> {
        let mut slot = self.fail.lock().unwrap();
        if *slot == Some(fail) {
            *slot = None;
            return Err(LogError::Io {
                op,
                path,
                source: std::io::Error::other("injected by the test store"),
            });
        }
        Ok(())
    }

    fn keep_from(&self, base: i64) {
        *self.keep_from.lock().unwrap() = base;
    }
}

impl SegmentStore for TestStore {
    fn file_cache(&self) -> &Arc<FileCache> {
        self.inner.file_cache()
    }

    fn segment_paths(&self, dir: &Path, base_offset: i64) -> SegmentPaths {
        self.inner.segment_paths(&self.map(dir), base_offset)
    }

    fn create_partition_dir(&self, dir: &Path) -> Result<(), LogError> {
        self.record(Call::CreateDir);
        self.inner.create_partition_dir(&self.map(dir))
    }

    fn recover_partition_dir(&self, dir: &Path) -> Result<(), LogError> {
        self.record(Call::Recover);
        self.inner.recover_partition_dir(&self.map(dir))
    }

    fn list_segments(&self, dir: &Path) -> Result<Vec<i64>, LogError> {
        self.record(Call::List);
        self.inner.list_segments(&self.map(dir))
    }

    fn sync_dir(&self, dir: &Path) -> Result<(), LogError> {
        self.record(Call::SyncDir);
        self.inner.sync_dir(&self.map(dir))
    }

    fn delete_partition_dir(&self, dir: &Path) -> Result<(), LogError> {
        self.record(Call::DeleteDir);
        self.inner.delete_partition_dir(&self.map(dir))
    }

    fn create_file(
        &self,
        dir: &Path,
        base_offset: i64,
        file: SegmentFile,
    ) -> Result<Arc<File>, LogError> {
        self.record(Call::Create(base_offset, file));
        let dir = self.map(dir);
        let path = self.inner.segment_paths(&dir, base_offset).get(file).into();
        self.injected(Fail::Create(file), "create", path)?;
        self.inner.create_file(&dir, base_offset, file)
    }

    fn open_uncached(
        &self,
        dir: &Path,
        base_offset: i64,
        file: SegmentFile,
    ) -> Result<File, LogError> {
        self.record(Call::OpenUncached(base_offset, file));
        self.inner.open_uncached(&self.map(dir), base_offset, file)
    }

    fn file_len(
        &self,
        dir: &Path,
        base_offset: i64,
        file: SegmentFile,
    ) -> Result<Option<u64>, LogError> {
        self.record(Call::Len(base_offset, file));
        self.inner.file_len(&self.map(dir), base_offset, file)
    }

    fn read_file(
        &self,
        dir: &Path,
        base_offset: i64,
        file: SegmentFile,
    ) -> Result<Option<Vec<u8>>, LogError> {
        self.record(Call::Read(base_offset, file));
        self.inner.read_file(&self.map(dir), base_offset, file)
    }

    fn delete_segment(
        &self,
        dir: &Path,
        base_offset: i64,
        reason: DeleteReason,
    ) -> Result<(), LogError> {
        self.record(Call::Delete(base_offset, reason));
        let dir = self.map(dir);
        let path = self.inner.segment_paths(&dir, base_offset).log;
        self.injected(Fail::Delete, "delete", path)?;
        self.inner.delete_segment(&dir, base_offset, reason)
    }

    fn close_segment(&self, dir: &Path, base_offset: i64) {
        self.record(Call::Close(base_offset));
        self.inner.close_segment(&self.map(dir), base_offset)
    }

    fn create_staged_file(
        &self,
        dir: &Path,
        base_offset: i64,
        file: SegmentFile,
    ) -> Result<File, LogError> {
        self.inner
            .create_staged_file(&self.map(dir), base_offset, file)
    }

    fn install_staged(
        &self,
        dir: &Path,
        base_offset: i64,
        replaced: &[i64],
    ) -> Result<(), LogError> {
        self.inner
            .install_staged(&self.map(dir), base_offset, replaced)
    }

    fn write_sidecar(&self, dir: &Path, name: &str, contents: &str) -> Result<(), LogError> {
        self.record(Call::WriteSidecar(name.to_owned()));
        self.inner.write_sidecar(&self.map(dir), name, contents)
    }

    fn read_sidecar(&self, dir: &Path, name: &str) -> Result<Option<String>, LogError> {
        self.record(Call::ReadSidecar(name.to_owned()));
        self.inner.read_sidecar(&self.map(dir), name)
    }

    fn remove_sidecar(&self, dir: &Path, name: &str) -> Result<(), LogError> {
        self.record(Call::RemoveSidecar(name.to_owned()));
        self.inner.remove_sidecar(&self.map(dir), name)
    }

    fn segment_sealed(&self, segment: &SealedSegment<'_>, origin: SealOrigin) {
        assert_eq!(segment.dir, self.logical.join("p-0"));
        self.record(Call::Sealed {
            base: segment.base_offset,
            end: segment.end_offset,
            origin,
        });
    }

    fn may_delete(&self, segment: &SealedSegment<'_>, reason: DeleteReason) -> bool {
        self.record(Call::MayDelete(segment.base_offset, reason));
        segment.base_offset < *self.keep_from.lock().unwrap()
    }
}

/// A temp dir with a logical root (given to the log, never created) and
/// a physical one (where the test store keeps the files).
struct Dirs {
    tmp: tempfile::TempDir,
}

impl Dirs {
    fn new() -> Dirs {
        Dirs {
            tmp: tempfile::tempdir().unwrap(),
        }
    }
    fn logical(&self) -> PathBuf {
        self.tmp.path().join("logical")
    }
    fn physical(&self) -> PathBuf {
        self.tmp.path().join("physical")
    }
    fn partition(&self) -> PathBuf {
        self.logical().join("p-0")
    }
    fn store(&self) -> Arc<TestStore> {
        std::fs::create_dir_all(self.physical()).unwrap();
        TestStore::new(&self.logical(), &self.physical())
    }
    fn open(&self, store: &Arc<TestStore>, config: LogConfig) -> Result<Log, LogError> {
        Log::open_with_store(
            &self.partition(),
            config,
            Arc::clone(store) as Arc<dyn SegmentStore>,
        )
    }
}

fn batch(value_bytes: usize, ts: i64) -> BytesMut {
    let mut b = BatchBuilder::new();
    b.push(NewRecord {
        key: Some(Bytes::from_static(b"k")),
        value: Some(Bytes::from(vec![b'v'; value_bytes])),
        headers: vec![],
        timestamp_ms: ts,
    });
    b.build().unwrap()
}

/// Small segments (about a dozen 300-byte records), so appends roll often.
fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 256,
        ..LogConfig::default()
    }
}

fn segment_files_exist(store: &TestStore, base: i64) -> [bool; 4] {
    let paths = store.segment_paths(&store.logical.join("p-0"), base);
    SegmentFile::ALL.map(|f| paths.get(f).exists())
}

#[test]
fn a_log_touches_no_file_except_through_its_store() {
    // The store keeps everything under `physical`; the log only knows
    // `logical`. A single file operation past the store would create or
    // look for something under `logical`, which must never exist.
    let dirs = Dirs::new();
    let store = dirs.store();
    let config = LogConfig {
        retention_bytes: 8192,
        ..small_config()
    };
    let log = dirs.open(&store, config.clone()).unwrap();
    let mut end = 0;
    for i in 0..60 {
        end = log.append(batch(300, 1_000 + i), 3, 0).unwrap().last_offset + 1;
    }
    log.sync_until(end).unwrap();
    log.flush().unwrap();
    assert!(log.segment_count() > 3);
    assert!(log.apply_retention(0).unwrap() > 0);
    log.advance_log_start_offset(log.log_start_offset() + 1)
        .unwrap();
    log.truncate_to(end - 5).unwrap();
    let kept = log
        .read(log.log_start_offset(), u32::MAX, i64::MAX)
        .unwrap();
    let kept = kept.to_bytes().unwrap();
    let (start, log_end) = (log.log_start_offset(), log.log_end_offset());
    drop(log);
    assert!(
        !dirs.logical().exists(),
        "the log touched its directory directly"
    );

    // Recovery, from the files the store kept.
    let log = dirs.open(&store, config.clone()).unwrap();
    assert_eq!(
        (log.log_start_offset(), log.log_end_offset()),
        (start, log_end)
    );
    let again = log
        .read(start, u32::MAX, i64::MAX)
        .unwrap()
        .to_bytes()
        .unwrap();
    assert_eq!(again, kept);
    // A failed fsync and the reopen that recovers from it.
    log.append(batch(300, 2_000), 3, 0).unwrap();
    log.inject_sync_failure();
    assert!(log.flush().is_err());
    assert!(log.reopen().unwrap());
    assert_eq!(log.log_end_offset(), log_end);
    assert!(
        !dirs.logical().exists(),
        "the log touched its directory directly"
    );

    let calls = store.calls();
    let any = |f: fn(&Call) -> bool| calls.iter().any(f);
    assert!(any(|c| matches!(
        c,
        Call::Read(_, SegmentFile::OffsetIndex)
    )));
    assert!(any(|c| matches!(c, Call::Len(_, SegmentFile::Log))));
    assert!(any(|c| matches!(
        c,
        Call::OpenUncached(_, SegmentFile::Log)
    )));
    assert!(any(|c| matches!(
        c,
        Call::Delete(_, DeleteReason::RetentionBytes)
    )));
    assert!(any(|c| matches!(
        c,
        Call::Delete(_, DeleteReason::Truncation)
    )));
    assert!(any(|c| matches!(c, Call::Close(_))));
    for expected in [
        Call::CreateDir,
        Call::Recover,
        Call::List,
        Call::SyncDir,
        Call::Create(0, SegmentFile::Log),
        Call::WriteSidecar("leader-epoch-checkpoint".into()),
        Call::WriteSidecar("recovery-point-offset-checkpoint".into()),
        Call::WriteSidecar("log-start-offset-checkpoint".into()),
        Call::ReadSidecar("producer-state-checkpoint".into()),
        Call::RemoveSidecar("producer-state-checkpoint".into()),
    ] {
        assert!(
            calls.contains(&expected),
            "{expected:?} missing from {calls:?}"
        );
    }

    log.delete().unwrap();
    assert_eq!(store.calls().last(), Some(&Call::DeleteDir));
    assert!(!dirs.physical().join("p-0").exists());
    assert!(!dirs.logical().exists());
}

#[test]
fn rolling_tells_the_store_which_segment_was_sealed() {
    let dirs = Dirs::new();
    let store = dirs.store();
    let log = dirs.open(&store, small_config()).unwrap();
    store.take_calls();
    for i in 0..40 {
        log.append(batch(300, 1_000 + i), 0, 0).unwrap();
    }
    let sealed: Vec<(i64, i64, SealOrigin)> = store
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::Sealed { base, end, origin } => Some((base, end, origin)),
            _ => None,
        })
        .collect();
    // One call per roll, in order, each naming a segment that ends where the
    // next begins; the active segment is never announced.
    assert_eq!(sealed.len(), log.segment_count() - 1);
    assert_eq!(sealed[0].0, 0);
    for w in sealed.windows(2) {
        assert_eq!(w[0].1, w[1].0);
    }
    assert!(
        sealed
            .iter()
            .all(|&(b, e, o)| e > b && o == SealOrigin::Rolled)
    );
    // The roll creates the next segment's files before announcing the seal.
    let calls = store.calls();
    let first_seal = calls
        .iter()
        .position(|c| matches!(c, Call::Sealed { .. }))
        .unwrap();
    assert!(calls[..first_seal].contains(&Call::Create(sealed[0].1, SegmentFile::Log)));

    // `segment.ms` rolls through the same door.
    log.update_config(LogConfig {
        retention_ms: -1,
        ..small_config()
    });
    let before = log.segment_count();
    let end = log.log_end_offset();
    assert_eq!(log.apply_retention(i64::MAX / 2).unwrap(), 0);
    assert_eq!(log.segment_count(), before + 1);
    assert!(store.calls().contains(&Call::Sealed {
        base: sealed.last().unwrap().1,
        end,
        origin: SealOrigin::Rolled
    }));

    // On open the store hears of every sealed segment again.
    let count = log.segment_count();
    drop(log);
    store.take_calls();
    let log = dirs.open(&store, small_config()).unwrap();
    let opened = store
        .calls()
        .into_iter()
        .filter(|c| {
            matches!(
                c,
                Call::Sealed {
                    origin: SealOrigin::Opened,
                    ..
                }
            )
        })
        .count();
    assert_eq!(opened, count - 1);
    assert_eq!(log.segment_count(), count);
}

#[test]
fn retention_deletes_through_the_store_and_names_its_reason() {
    let dirs = Dirs::new();
    let store = dirs.store();
    let log = dirs
        .open(
            &store,
            LogConfig {
                retention_bytes: 8192,
                retention_ms: 10_000,
                ..small_config()
            },
        )
        .unwrap();
    for i in 0..60 {
        log.append(batch(300, i), 0, 0).unwrap();
    }
    store.take_calls();
    // At t = 0 nothing is older than retention.ms; retention.bytes deletes.
    let deleted = log.apply_retention(0).unwrap();
    assert!(deleted > 0);
    let calls = store.take_calls();
    let deletes: Vec<_> = calls
        .iter()
        .filter_map(|c| match c {
            Call::Delete(b, r) => Some((*b, *r)),
            _ => None,
        })
        .collect();
    assert_eq!(deletes.len() as u64, deleted);
    for (base, reason) in &deletes {
        assert_eq!(*reason, DeleteReason::RetentionBytes);
        // Asked first, then deleted.
        let asked = calls
            .iter()
            .position(|c| *c == Call::MayDelete(*base, DeleteReason::RetentionBytes))
            .expect("retention deleted without asking the store");
        let done = calls
            .iter()
            .position(|c| *c == Call::Delete(*base, DeleteReason::RetentionBytes))
            .unwrap();
        assert!(asked < done);
        assert_eq!(segment_files_exist(&store, *base), [false; 4]);
    }
    let last_deleted = deletes.last().unwrap().0;
    assert!(log.log_start_offset() > last_deleted);

    // retention.ms, once the newest timestamp is old enough (the active
    // segment is rolled so that it can go too).
    let deleted = log.apply_retention(1_000_000).unwrap();
    assert!(deleted > 0);
    let calls = store.take_calls();
    assert!(
        calls
            .iter()
            .any(|c| matches!(c, Call::Delete(_, DeleteReason::RetentionMs)))
    );
    assert!(
        !calls
            .iter()
            .any(|c| matches!(c, Call::Delete(_, DeleteReason::RetentionBytes)))
    );
}

#[test]
fn delete_records_and_truncation_delete_through_the_store_without_asking() {
    let dirs = Dirs::new();
    let store = dirs.store();
    let log = dirs.open(&store, small_config()).unwrap();
    for i in 0..60 {
        log.append(batch(300, i), 0, 0).unwrap();
    }
    // The store would keep everything from retention...
    store.keep_from(0);
    store.take_calls();
    log.advance_log_start_offset(20).unwrap();
    let calls = store.take_calls();
    assert!(
        calls
            .iter()
            .any(|c| matches!(c, Call::Delete(_, DeleteReason::LogStartOffset)))
    );
    // ... but DeleteRecords removes offsets for good: the store is told, not asked.
    assert!(!calls.iter().any(|c| matches!(c, Call::MayDelete(..))));

    log.truncate_to(30).unwrap();
    let calls = store.take_calls();
    let truncated: Vec<i64> = calls
        .iter()
        .filter_map(|c| match c {
            Call::Delete(b, DeleteReason::Truncation) => Some(*b),
            _ => None,
        })
        .collect();
    assert!(!truncated.is_empty());
    assert!(truncated.iter().all(|&b| b >= 30));
    assert!(!calls.iter().any(|c| matches!(c, Call::MayDelete(..))));
}

#[test]
fn a_store_can_hold_sealed_segments_back_from_retention() {
    // What a tiered store does until a segment is uploaded.
    let dirs = Dirs::new();
    let store = dirs.store();
    let log = dirs
        .open(
            &store,
            LogConfig {
                retention_bytes: 0,
                ..small_config()
            },
        )
        .unwrap();
    for i in 0..60 {
        log.append(batch(300, i), 0, 0).unwrap();
    }
    let count = log.segment_count();
    assert!(count > 4);
    let bases: Vec<i64> = store
        .calls()
        .iter()
        .filter_map(|c| match c {
            Call::Sealed { base, .. } => Some(*base),
            _ => None,
        })
        .collect();
    // Only the two oldest segments are "uploaded".
    store.keep_from(bases[2]);
    assert_eq!(log.apply_retention(0).unwrap(), 2);
    assert_eq!(log.log_start_offset(), bases[2]);
    assert_eq!(log.segment_count(), count - 2);
    assert_eq!(segment_files_exist(&store, bases[2]), [true; 4]);
    // The pass stopped at the first refusal: the log stays contiguous.
    let asked: Vec<_> = store
        .calls()
        .into_iter()
        .filter(|c| matches!(c, Call::MayDelete(..)))
        .collect();
    assert_eq!(
        asked.last(),
        Some(&Call::MayDelete(bases[2], DeleteReason::RetentionBytes))
    );
    // Once the rest is "uploaded", retention catches up.
    store.keep_from(i64::MAX);
    assert_eq!(log.apply_retention(0).unwrap() as usize, count - 3);
    assert_eq!(log.segment_count(), 1);
}

#[test]
fn a_failed_segment_create_is_a_typed_error_and_takes_the_log_offline() {
    let dirs = Dirs::new();
    let store = dirs.store();
    let log = dirs.open(&store, small_config()).unwrap();
    let mut end = 0;
    for i in 0..10 {
        end = log.append(batch(300, i), 0, 0).unwrap().last_offset + 1;
    }
    log.sync_until(end).unwrap();
    let durable = end;
    // The next roll creates the `.log` and three index files; fail the last.
    store.fail_next(Fail::Create(SegmentFile::TxnIndex));
    let err = loop {
        match log.append(batch(300, 0), 0, 0) {
            Ok(info) => end = info.last_offset + 1,
            Err(e) => break e,
        }
    };
    match &err {
        LogError::Io { op, path, .. } => {
            assert_eq!(*op, "create");
            assert!(path.ends_with(format!("{end:020}.txnindex")));
        }
        other => panic!("expected LogError::Io, got {other:?}"),
    }
    assert_eq!(err.kafka_error_code(), KAFKA_STORAGE_ERROR);
    assert!(log.is_offline());
    assert!(matches!(
        log.append(batch(300, 0), 0, 0),
        Err(LogError::Failed { .. })
    ));
    // The half-created segment is on disk; the reopen removes it through the
    // store and the log takes writes again at the durable offset (what was
    // appended after the last fsync is dropped, as after any failure).
    assert!(segment_files_exist(&store, end)[0]);
    store.take_calls();
    assert!(log.reopen().unwrap());
    assert!(
        store
            .calls()
            .contains(&Call::Delete(end, DeleteReason::Recovery))
    );
    assert_eq!(segment_files_exist(&store, end), [false; 4]);
    assert_eq!(log.log_end_offset(), durable);
    assert_eq!(
        log.append(batch(300, 0), 0, 0).unwrap().base_offset,
        durable
    );
}

#[test]
fn a_failed_segment_delete_in_the_store_fences_the_log() {
    let dirs = Dirs::new();
    let store = dirs.store();
    let log = dirs
        .open(
            &store,
            LogConfig {
                retention_bytes: 1,
                ..small_config()
            },
        )
        .unwrap();
    for i in 0..30 {
        log.append(batch(300, i), 0, 0).unwrap();
    }
    store.fail_next(Fail::Delete);
    match log.apply_retention(0) {
        Err(LogError::Io { op: "delete", .. }) => {}
        other => panic!("expected a failed delete, got {other:?}"),
    }
    assert!(log.is_offline());
    assert!(matches!(
        log.append(batch(1, 0), 0, 0),
        Err(LogError::Failed { .. })
    ));
}

/// Names of the files in `dir` that an install or a cleaning left behind.
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".cleaned") || n.ends_with(".swap"))
        .collect()
}

/// Stages, for `first`, a "compacted" segment that keeps every batch of
/// segments `first` and `second` (their `.log` bytes, concatenated), with
/// empty indexes for recovery to rebuild: what a cleaner that found
/// nothing to remove would write.
fn stage_merge(store: &TestStore, dir: &Path, first: i64, second: i64) {
    use std::os::unix::fs::FileExt;
    let mut bytes = store
        .read_file(dir, first, SegmentFile::Log)
        .unwrap()
        .unwrap();
    bytes.extend(
        store
            .read_file(dir, second, SegmentFile::Log)
            .unwrap()
            .unwrap(),
    );
    store
        .create_staged_file(dir, first, SegmentFile::Log)
        .unwrap()
        .write_all_at(&bytes, 0)
        .unwrap();
    for file in [
        SegmentFile::OffsetIndex,
        SegmentFile::TimeIndex,
        SegmentFile::TxnIndex,
    ] {
        store.create_staged_file(dir, first, file).unwrap();
    }
}

/// A flushed, closed log of several segments; returns (the bases of its
/// segments, all of its bytes).
fn closed_log(dirs: &Dirs, store: &Arc<TestStore>) -> (Vec<i64>, Bytes) {
    let log = dirs.open(store, small_config()).unwrap();
    for i in 0..40 {
        log.append(batch(300, 1_000 + i), 0, 0).unwrap();
    }
    log.flush().unwrap();
    let bytes = log.read(0, u32::MAX, i64::MAX).unwrap().to_bytes().unwrap();
    // The sealed segments, then the active one (where the last sealed ends).
    let sealed: Vec<(i64, i64)> = store
        .calls()
        .iter()
        .filter_map(|c| match c {
            Call::Sealed { base, end, .. } => Some((*base, *end)),
            _ => None,
        })
        .collect();
    let mut bases: Vec<i64> = sealed.iter().map(|&(b, _)| b).collect();
    bases.extend(sealed.last().map(|&(_, e)| e));
    assert_eq!(bases.len(), log.segment_count());
    assert!(bases.len() >= 3);
    (bases, bytes)
}

#[test]
fn an_installed_staged_segment_replaces_the_segments_it_covers() {
    let dirs = Dirs::new();
    let store = dirs.store();
    let (bases, bytes) = closed_log(&dirs, &store);
    let count = bases.len();
    let dir = dirs.partition();
    stage_merge(&store, &dir, bases[0], bases[1]);
    store
        .install_staged(&dir, bases[0], &[bases[0], bases[1]])
        .unwrap();
    assert_eq!(segment_files_exist(&store, bases[1]), [false; 4]);
    assert!(leftovers(&dirs.physical().join("p-0")).is_empty());

    let log = dirs.open(&store, small_config()).unwrap();
    assert_eq!(log.segment_count(), count - 1);
    assert_eq!(
        log.read(0, u32::MAX, i64::MAX).unwrap().to_bytes().unwrap(),
        bytes
    );
    // Reads within the merged segment find their batches (indexes rebuilt).
    let one = log.read(bases[1], 1, i64::MAX).unwrap();
    assert_eq!(one.slices.len(), 1);
    log.append(batch(300, 0), 0, 0).unwrap();
}

#[test]
fn recovery_discards_an_uninstalled_staged_segment() {
    let dirs = Dirs::new();
    let store = dirs.store();
    let (bases, bytes) = closed_log(&dirs, &store);
    let dir = dirs.partition();
    // A cleaner crashed before installing: the staged files never count.
    stage_merge(&store, &dir, bases[0], bases[1]);
    assert_eq!(leftovers(&dirs.physical().join("p-0")).len(), 4);
    let log = dirs.open(&store, small_config()).unwrap();
    assert!(leftovers(&dirs.physical().join("p-0")).is_empty());
    assert_eq!(log.segment_count(), bases.len());
    assert_eq!(
        log.read(0, u32::MAX, i64::MAX).unwrap().to_bytes().unwrap(),
        bytes
    );
}

#[test]
fn recovery_finishes_an_install_interrupted_after_its_commit() {
    let dirs = Dirs::new();
    let store = dirs.store();
    let (bases, bytes) = closed_log(&dirs, &store);
    let dir = dirs.partition();
    let physical = dirs.physical().join("p-0");
    stage_merge(&store, &dir, bases[0], bases[1]);
    // The crash: the commit record is durable and only the `.log` was
    // renamed into place; the old indexes and the second segment remain.
    store
        .write_sidecar(
            &dir,
            &crate::store::swap_record_name(bases[0]),
            &crate::store::swap_record_text(&[bases[0], bases[1]]),
        )
        .unwrap();
    let live = store.segment_paths(&dir, bases[0]).log;
    std::fs::rename(crate::store::staged_path(&live), &live).unwrap();
    assert!(segment_files_exist(&store, bases[1])[0]);

    let log = dirs.open(&store, small_config()).unwrap();
    assert!(leftovers(&physical).is_empty());
    assert_eq!(segment_files_exist(&store, bases[1]), [false; 4]);
    assert_eq!(log.segment_count(), bases.len() - 1);
    assert_eq!(
        log.read(0, u32::MAX, i64::MAX).unwrap().to_bytes().unwrap(),
        bytes
    );
}

#[test]
fn a_damaged_install_record_is_refused() {
    let dirs = Dirs::new();
    let store = dirs.store();
    let (bases, _) = closed_log(&dirs, &store);
    let dir = dirs.partition();
    store
        .write_sidecar(&dir, &crate::store::swap_record_name(bases[0]), "0\n3\n0\n")
        .unwrap();
    match dirs.open(&store, small_config()) {
        Err(LogError::BadCheckpoint { reason, .. }) => {
            assert_eq!(reason, "entry count does not match")
        }
        other => panic!("expected a refused open, got {other:?}"),
    }
}
