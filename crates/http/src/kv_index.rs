//! The key-value view's index: for each partition of a compacted topic,
//! its keys in byte order with the offset and timestamp of each key's
//! latest record, all partitions' indexes under one memory budget
//! (`kv.index_max_bytes`).
//!
//! The index reads partitions only through [`Source`], so it knows nothing
//! of HTTP or of `Partition` and its tests drive it with an in-memory log.
//! It is built lazily the first time a partition is asked about, then
//! caught up from where it stopped at each request: a request costs a walk
//! over records appended since, never a scan of the whole log.
//!
//! What a catch-up does with the log it finds:
//! - a record with a value sets its key; a null value (a tombstone)
//!   removes it; a null key is ignored;
//! - the log start moved forward (retention with `compact,delete`,
//!   DeleteRecords): entries below it are dropped;
//! - the log is shorter than where the index stopped, or its leader epoch
//!   changed (a truncation can only follow a leader change), or the
//!   partition object was replaced (topic deleted and re-created): the
//!   index is rebuilt from the log start.
//!
//! Compaction keeps the latest record of every key, so a clean never
//! invalidates an index.

use std::collections::{BTreeMap, HashMap};
use std::ops::{Bound, ControlFlow};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

/// Bytes one entry is accounted on top of its key's length. The map is a
/// `BTreeMap<Box<[u8]>, Entry>`: a slot holds the boxed key's pointer and
/// length (16 bytes) and the [`Entry`] (16 bytes) in leaves of 11 slots,
/// and the key's own heap block costs glibc's header and rounding (16 to
/// 23 bytes). Measured as resident memory (`tests/kv_index_memory.rs`)
/// with 16-byte keys: 83 bytes per entry inserted in random order, 98 in
/// increasing order (leaves split half full), so 82 on top of the key in
/// the worst case; 96 leaves room for the rounding of other key lengths.
pub const ENTRY_OVERHEAD_BYTES: usize = 96;

/// How long a partition whose index did not fit in the budget answers the
/// limit error without trying again: rebuilding it means reading its whole
/// log, which a client retrying in a loop must not cause at every request.
pub const OVERSIZE_RETRY: Duration = Duration::from_secs(30);

/// Where a key's latest record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The record's offset.
    pub offset: i64,
    /// The record's timestamp, ms since the epoch.
    pub timestamp_ms: i64,
}

/// A visible record as the index sees it.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    /// Its offset.
    pub offset: i64,
    /// Its timestamp, ms since the epoch.
    pub timestamp_ms: i64,
    /// Its key; `None` for a null key.
    pub key: Option<&'a [u8]>,
    /// True for a null value.
    pub tombstone: bool,
}

/// A partition log the index reads: read_committed records only.
pub trait Source {
    /// Why a read failed.
    type Error;
    /// The leader epoch the log is read under: a change means the log may
    /// have been truncated and rewritten below where the index stopped.
    fn epoch(&self) -> i32;
    /// The first offset still in the log.
    fn log_start_offset(&self) -> i64;
    /// The offset below which records are visible (the last stable offset).
    fn upper(&self) -> i64;
    /// Hands each visible record from `from` to `seen`, without aborted
    /// transactions or control batches, until the upper bound or until
    /// `seen` breaks (after taking its record). Returns the offset to
    /// continue from.
    fn visit(
        &self,
        from: i64,
        seen: &mut dyn FnMut(Seen<'_>) -> ControlFlow<()>,
    ) -> Result<i64, Self::Error>;
}

/// Why the index cannot answer.
#[derive(Debug)]
pub enum KvIndexError<E> {
    /// The partition's index alone needs more than the budget.
    Limit {
        /// The budget, `kv.index_max_bytes`.
        max_bytes: usize,
    },
    /// The log could not be read.
    Read(E),
}

/// The index of one partition.
#[derive(Debug)]
pub struct PartitionIndex {
    entries: BTreeMap<Box<[u8]>, Entry>,
    /// The next offset to read.
    next_offset: i64,
    /// The log start offset the entries were last trimmed to.
    log_start_offset: i64,
    /// The leader epoch the index was built under.
    epoch: i32,
    /// Accounted bytes: key lengths plus [`ENTRY_OVERHEAD_BYTES`] each.
    bytes: usize,
    /// When a build last overflowed the budget.
    oversize_at: Option<Instant>,
}

impl PartitionIndex {
    fn new(epoch: i32, log_start_offset: i64) -> PartitionIndex {
        PartitionIndex {
            entries: BTreeMap::new(),
            next_offset: log_start_offset,
            log_start_offset,
            epoch,
            bytes: 0,
            oversize_at: None,
        }
    }

    /// Accounted bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The next offset the index will read.
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    /// Where `key`'s latest record is; `None` when absent or tombstoned.
    pub fn get(&self, key: &[u8]) -> Option<Entry> {
        self.entries.get(key).copied()
    }

    /// At most `limit` keys starting with `prefix` and, with `after`,
    /// sorting after it, in byte order.
    pub fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Vec<(Box<[u8]>, Entry)> {
        let lower = match after {
            Some(after) if after >= prefix => Bound::Excluded(after),
            _ => Bound::Included(prefix),
        };
        self.entries
            .range::<[u8], _>((lower, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, e)| (k.clone(), *e))
            .collect()
    }

    fn apply(&mut self, seen: Seen<'_>) {
        let Some(key) = seen.key else { return };
        if seen.tombstone {
            if self.entries.remove(key).is_some() {
                self.bytes -= key.len() + ENTRY_OVERHEAD_BYTES;
            }
            return;
        }
        let entry = Entry {
            offset: seen.offset,
            timestamp_ms: seen.timestamp_ms,
        };
        match self.entries.get_mut(key) {
            Some(old) => *old = entry,
            None => {
                self.entries.insert(key.into(), entry);
                self.bytes += key.len() + ENTRY_OVERHEAD_BYTES;
            }
        }
    }

    fn drop_below(&mut self, log_start_offset: i64) {
        let mut freed = 0;
        self.entries.retain(|k, e| {
            let keep = e.offset >= log_start_offset;
            if !keep {
                freed += k.len() + ENTRY_OVERHEAD_BYTES;
            }
            keep
        });
        self.bytes -= freed;
        self.log_start_offset = log_start_offset;
    }

    /// Reads what `source` appended since the last catch-up (see the
    /// module doc for truncations and log start moves). A build that
    /// passes `max_bytes` is dropped and answers [`KvIndexError::Limit`].
    fn catch_up<S: Source>(
        &mut self,
        source: &S,
        max_bytes: usize,
    ) -> Result<(), KvIndexError<S::Error>> {
        let epoch = source.epoch();
        let start = source.log_start_offset();
        let upper = source.upper();
        if let Some(at) = self.oversize_at
            && epoch == self.epoch
            && at.elapsed() < OVERSIZE_RETRY
        {
            return Err(KvIndexError::Limit { max_bytes });
        }
        if epoch != self.epoch || self.next_offset > upper || self.oversize_at.is_some() {
            *self = PartitionIndex::new(epoch, start);
        }
        if start > self.log_start_offset {
            self.drop_below(start);
        }
        self.next_offset = self.next_offset.max(start);
        if self.next_offset >= upper {
            return Ok(());
        }
        let mut over = false;
        let visited = source.visit(self.next_offset, &mut |seen| {
            self.apply(seen);
            if self.bytes > max_bytes {
                over = true;
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        match visited {
            Ok(_) if over => {
                *self = PartitionIndex::new(epoch, start);
                self.oversize_at = Some(Instant::now());
                Err(KvIndexError::Limit { max_bytes })
            }
            Ok(next) => {
                self.next_offset = next;
                Ok(())
            }
            Err(e) => {
                // Records applied before the failure would be read again
                // from `next_offset`; start over rather than guess.
                *self = PartitionIndex::new(epoch, start);
                Err(KvIndexError::Read(e))
            }
        }
    }
}

/// One partition's index and what the budget knows of it.
struct Slot<S> {
    /// The partition object it was built from: a new one (topic
    /// re-created) is a different log. A `Weak` keeps the allocation's
    /// address from being reused while the slot exists.
    source: Weak<S>,
    index: Arc<Mutex<PartitionIndex>>,
    /// Bytes and keys at the end of the last request.
    bytes: usize,
    keys: usize,
    /// The request counter when it was last used: the least recently used
    /// slot is evicted first.
    last_used: u64,
}

struct Slots<S> {
    by_partition: HashMap<(String, i32), Slot<S>>,
    clock: u64,
}

/// Every partition's index under one budget.
pub struct KvIndexes<S> {
    max_bytes: usize,
    // A std Mutex: held only to find, account or evict slots, never while
    // a log is read (each index has its own lock for that).
    slots: Mutex<Slots<S>>,
}

impl<S> std::fmt::Debug for KvIndexes<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvIndexes")
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<S: Source> KvIndexes<S> {
    /// Indexes that together account at most `max_bytes`.
    pub fn new(max_bytes: usize) -> KvIndexes<S> {
        KvIndexes {
            max_bytes,
            slots: Mutex::new(Slots {
                by_partition: HashMap::new(),
                clock: 0,
            }),
        }
    }

    /// The budget.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Catches the index of `topic`/`partition` up with `source` and runs
    /// `read` on it; then evicts least recently used indexes of other
    /// partitions until all fit the budget. Reads the log: call it off the
    /// async workers.
    pub fn with_index<R>(
        &self,
        topic: &str,
        partition: i32,
        source: &Arc<S>,
        read: impl FnOnce(&PartitionIndex) -> R,
    ) -> Result<R, KvIndexError<S::Error>> {
        let name = (topic.to_owned(), partition);
        let index = {
            let mut slots = lock(&self.slots);
            slots.clock += 1;
            let now = slots.clock;
            let fresh = || Slot {
                source: Arc::downgrade(source),
                index: Arc::new(Mutex::new(PartitionIndex::new(-1, 0))),
                bytes: 0,
                keys: 0,
                last_used: now,
            };
            let slot = slots.by_partition.entry(name.clone()).or_insert_with(fresh);
            if !Weak::ptr_eq(&slot.source, &Arc::downgrade(source)) {
                *slot = fresh();
            }
            slot.last_used = now;
            Arc::clone(&slot.index)
        };
        let (result, bytes, keys) = {
            let mut guard = lock(&index);
            let caught_up = guard.catch_up(source.as_ref(), self.max_bytes);
            (caught_up.map(|()| read(&guard)), guard.bytes(), guard.len())
        };
        let mut slots = lock(&self.slots);
        if let Some(slot) = slots.by_partition.get_mut(&name) {
            // Evicted or replaced meanwhile: that index is no longer counted.
            if Arc::ptr_eq(&slot.index, &index) {
                slot.bytes = bytes;
                slot.keys = keys;
            }
        }
        evict(&mut slots, &name, self.max_bytes);
        let (bytes, keys) = totals(&slots);
        sluice_metrics::kv_index_size(bytes as u64, keys as u64);
        result
    }

    /// Accounted bytes and keys of every index.
    pub fn totals(&self) -> (usize, usize) {
        totals(&lock(&self.slots))
    }

    /// True when `topic`/`partition` has an index in memory.
    pub fn holds(&self, topic: &str, partition: i32) -> bool {
        lock(&self.slots)
            .by_partition
            .contains_key(&(topic.to_owned(), partition))
    }
}

fn totals<S>(slots: &Slots<S>) -> (usize, usize) {
    slots
        .by_partition
        .values()
        .fold((0, 0), |(b, k), s| (b + s.bytes, k + s.keys))
}

/// Drops whole indexes, least recently used first and never `keep`, until
/// the total fits `max_bytes`; also drops indexes whose partition is gone.
fn evict<S>(slots: &mut Slots<S>, keep: &(String, i32), max_bytes: usize) {
    slots
        .by_partition
        .retain(|name, slot| name == keep || slot.source.strong_count() > 0);
    while totals(slots).0 > max_bytes {
        let victim = slots
            .by_partition
            .iter()
            .filter(|(name, _)| *name != keep)
            .min_by_key(|(_, slot)| slot.last_used)
            .map(|(name, _)| name.clone());
        match victim {
            Some(name) => {
                slots.by_partition.remove(&name);
            }
            None => break, // only `keep`, which fits alone
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI32, AtomicI64, AtomicUsize, Ordering::SeqCst};

    use super::*;

    /// One record of the fake log: offset, key, value (None = tombstone),
    /// and whether it belongs to an aborted transaction.
    #[derive(Clone)]
    struct Rec {
        offset: i64,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
        aborted: bool,
    }

    /// An in-memory log; `visit` skips aborted records like the real
    /// read_committed walk.
    #[derive(Default)]
    struct FakeLog {
        records: Mutex<Vec<Rec>>,
        start: AtomicI64,
        epoch: AtomicI32,
        /// The last stable offset; `None` means the end of the log.
        lso: Mutex<Option<i64>>,
        visits: AtomicUsize,
        /// Offsets each visit started from.
        froms: Mutex<Vec<i64>>,
    }

    impl FakeLog {
        fn push(&self, key: &str, value: Option<&str>) -> i64 {
            self.push_raw(Some(key.as_bytes()), value.map(str::as_bytes), false)
        }

        fn push_raw(&self, key: Option<&[u8]>, value: Option<&[u8]>, aborted: bool) -> i64 {
            let mut records = lock(&self.records);
            let offset = records.last().map_or(0, |r| r.offset + 1);
            records.push(Rec {
                offset,
                key: key.map(<[u8]>::to_vec),
                value: value.map(<[u8]>::to_vec),
                aborted,
            });
            offset
        }

        fn end(&self) -> i64 {
            lock(&self.records).last().map_or(0, |r| r.offset + 1)
        }

        fn truncate_to(&self, offset: i64) {
            lock(&self.records).retain(|r| r.offset < offset);
        }

        fn set_lso(&self, lso: Option<i64>) {
            *lock(&self.lso) = lso;
        }

        fn froms(&self) -> Vec<i64> {
            lock(&self.froms).clone()
        }
    }

    impl Source for FakeLog {
        type Error = String;

        fn epoch(&self) -> i32 {
            self.epoch.load(SeqCst)
        }

        fn log_start_offset(&self) -> i64 {
            self.start.load(SeqCst)
        }

        fn upper(&self) -> i64 {
            let lso = *lock(&self.lso);
            lso.unwrap_or_else(|| self.end())
        }

        fn visit(
            &self,
            from: i64,
            seen: &mut dyn FnMut(Seen<'_>) -> ControlFlow<()>,
        ) -> Result<i64, String> {
            self.visits.fetch_add(1, SeqCst);
            lock(&self.froms).push(from);
            let upper = self.upper();
            let mut next = from;
            let start = self.start.load(SeqCst);
            for r in lock(&self.records).iter() {
                if r.offset < from || r.offset < start || r.offset >= upper {
                    continue;
                }
                next = r.offset + 1;
                if r.aborted {
                    continue;
                }
                let flow = seen(Seen {
                    offset: r.offset,
                    timestamp_ms: 1_000 + r.offset,
                    key: r.key.as_deref(),
                    tombstone: r.value.is_none(),
                });
                if flow.is_break() {
                    return Ok(next);
                }
            }
            Ok(next.max(from).max(upper.min(self.end())))
        }
    }

    const BIG: usize = 1 << 20;

    fn get(indexes: &KvIndexes<FakeLog>, log: &Arc<FakeLog>, key: &str) -> Option<i64> {
        indexes
            .with_index("t", 0, log, |i| i.get(key.as_bytes()))
            .ok()
            .flatten()
            .map(|e| e.offset)
    }

    #[test]
    fn catch_up_adds_and_overwrites_keys_reading_only_new_records() {
        let log = Arc::new(FakeLog::default());
        let indexes = KvIndexes::new(BIG);
        log.push("a", Some("1"));
        log.push("b", Some("1"));
        assert_eq!(get(&indexes, &log, "a"), Some(0));
        let a2 = log.push("a", Some("2"));
        assert_eq!(get(&indexes, &log, "a"), Some(a2));
        assert_eq!(get(&indexes, &log, "b"), Some(1));
        // The second catch-up started where the first stopped; the third
        // had nothing new to read.
        assert_eq!(log.froms(), vec![0, 2]);
        let (bytes, keys) = indexes.totals();
        assert_eq!(keys, 2);
        assert_eq!(bytes, 2 * (1 + ENTRY_OVERHEAD_BYTES));
    }

    #[test]
    fn a_tombstone_removes_its_key_and_null_keys_are_ignored() {
        let log = Arc::new(FakeLog::default());
        let indexes = KvIndexes::new(BIG);
        log.push("a", Some("1"));
        log.push_raw(None, Some(b"no key"), false);
        assert_eq!(get(&indexes, &log, "a"), Some(0));
        log.push("a", None);
        assert_eq!(get(&indexes, &log, "a"), None);
        assert_eq!(indexes.totals(), (0, 0));
        log.push("a", Some("again"));
        assert_eq!(get(&indexes, &log, "a"), Some(3));
    }

    #[test]
    fn aborted_and_unstable_records_are_invisible() {
        let log = Arc::new(FakeLog::default());
        let indexes = KvIndexes::new(BIG);
        log.push("a", Some("committed"));
        log.push_raw(Some(b"a"), Some(b"aborted"), true);
        log.push_raw(Some(b"b"), Some(b"aborted"), true);
        assert_eq!(get(&indexes, &log, "a"), Some(0));
        assert_eq!(get(&indexes, &log, "b"), None);
        // An open transaction past the last stable offset is not read yet,
        // and is read once it commits.
        log.set_lso(Some(log.end()));
        let open = log.push("c", Some("open"));
        assert_eq!(get(&indexes, &log, "c"), None);
        log.set_lso(None);
        assert_eq!(get(&indexes, &log, "c"), Some(open));
    }

    #[test]
    fn a_log_start_move_drops_entries_below_it() {
        let log = Arc::new(FakeLog::default());
        let indexes = KvIndexes::new(BIG);
        log.push("old", Some("1"));
        log.push("kept", Some("1"));
        assert_eq!(get(&indexes, &log, "old"), Some(0));
        log.start.store(1, SeqCst);
        assert_eq!(get(&indexes, &log, "old"), None);
        assert_eq!(get(&indexes, &log, "kept"), Some(1));
        assert_eq!(indexes.totals(), (4 + ENTRY_OVERHEAD_BYTES, 1));
    }

    #[test]
    fn a_truncation_or_a_new_leader_epoch_rebuilds_the_index() {
        let log = Arc::new(FakeLog::default());
        let indexes = KvIndexes::new(BIG);
        log.push("a", Some("1"));
        log.push("b", Some("1"));
        log.push("c", Some("1"));
        assert_eq!(get(&indexes, &log, "c"), Some(2));
        // Truncated below where the index stopped: rebuilt from the start.
        log.truncate_to(1);
        assert_eq!(get(&indexes, &log, "c"), None);
        assert_eq!(get(&indexes, &log, "a"), Some(0));
        // Truncated and rewritten past the old end under a new epoch.
        log.truncate_to(0);
        log.push("x", Some("1"));
        log.push("y", Some("1"));
        log.push("z", Some("1"));
        log.push("w", Some("1"));
        log.epoch.store(1, SeqCst);
        assert_eq!(get(&indexes, &log, "a"), None);
        assert_eq!(get(&indexes, &log, "w"), Some(3));
        assert_eq!(log.froms(), vec![0, 0, 0]);
    }

    #[test]
    fn a_replaced_partition_object_is_a_new_index() {
        let indexes = KvIndexes::new(BIG);
        let old = Arc::new(FakeLog::default());
        old.push("a", Some("1"));
        assert_eq!(get(&indexes, &old, "a"), Some(0));
        let new = Arc::new(FakeLog::default());
        new.push("b", Some("1"));
        assert_eq!(get(&indexes, &new, "a"), None);
        assert_eq!(get(&indexes, &new, "b"), Some(0));
    }

    #[test]
    fn scan_lists_a_prefix_in_byte_order_and_pages_after_a_key() {
        let log = Arc::new(FakeLog::default());
        let indexes = KvIndexes::new(BIG);
        for key in ["user:3", "user:1", "order:1", "user:2", "userx"] {
            log.push(key, Some("v"));
        }
        let scan = |after: Option<&str>, limit| {
            indexes
                .with_index("t", 0, &log, |i| {
                    i.scan(b"user:", after.map(str::as_bytes), limit)
                })
                .expect("scan")
                .into_iter()
                .map(|(k, _)| String::from_utf8_lossy(&k).into_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(scan(None, 10), ["user:1", "user:2", "user:3"]);
        assert_eq!(scan(None, 2), ["user:1", "user:2"]);
        assert_eq!(scan(Some("user:2"), 2), ["user:3"]);
        assert_eq!(scan(Some("a"), 1), ["user:1"]);
        assert!(scan(Some("user:3"), 5).is_empty());
    }

    #[test]
    fn least_recently_used_indexes_are_evicted_to_fit_the_budget() {
        let per_key = 1 + ENTRY_OVERHEAD_BYTES;
        // Room for 5 keys.
        let indexes: KvIndexes<FakeLog> = KvIndexes::new(5 * per_key);
        let logs: Vec<Arc<FakeLog>> = (0..3).map(|_| Arc::new(FakeLog::default())).collect();
        for log in &logs {
            log.push("a", Some("1"));
            log.push("b", Some("1"));
        }
        let touch = |p: usize| {
            indexes
                .with_index("t", p as i32, &logs[p], |i| i.len())
                .expect("fits")
        };
        assert_eq!(touch(0), 2);
        assert_eq!(touch(1), 2);
        assert_eq!(indexes.totals(), (4 * per_key, 4));
        // Partition 2 makes 6 keys: partition 0, used least recently, goes.
        assert_eq!(touch(2), 2);
        assert!(!indexes.holds("t", 0));
        assert!(indexes.holds("t", 1) && indexes.holds("t", 2));
        assert_eq!(indexes.totals(), (4 * per_key, 4));
        // Touching 1 makes 2 the oldest.
        touch(1);
        touch(0);
        assert!(!indexes.holds("t", 2));
        assert_eq!(indexes.totals().1, 4);
    }

    #[test]
    fn an_index_larger_than_the_whole_budget_errors_and_is_not_rebuilt_at_once() {
        let per_key = 1 + ENTRY_OVERHEAD_BYTES;
        let indexes: KvIndexes<FakeLog> = KvIndexes::new(3 * per_key);
        let log = Arc::new(FakeLog::default());
        for key in ["a", "b", "c", "d"] {
            log.push(key, Some("1"));
        }
        let answer = indexes.with_index("t", 0, &log, |i| i.len());
        assert!(
            matches!(answer, Err(KvIndexError::Limit { max_bytes }) if max_bytes == 3 * per_key)
        );
        // Nothing partial is kept or counted.
        assert_eq!(indexes.totals(), (0, 0));
        // A retry right away answers the same without reading the log.
        let visits = log.visits.load(SeqCst);
        let again = indexes.with_index("t", 0, &log, |i| i.len());
        assert!(matches!(again, Err(KvIndexError::Limit { .. })));
        assert_eq!(log.visits.load(SeqCst), visits);
    }

    #[test]
    fn a_read_error_answers_the_error_and_starts_over_next_time() {
        struct Failing;
        impl Source for Failing {
            type Error = String;
            fn epoch(&self) -> i32 {
                0
            }
            fn log_start_offset(&self) -> i64 {
                0
            }
            fn upper(&self) -> i64 {
                10
            }
            fn visit(
                &self,
                _from: i64,
                _seen: &mut dyn FnMut(Seen<'_>) -> ControlFlow<()>,
            ) -> Result<i64, String> {
                Err("disk".to_owned())
            }
        }
        let indexes = KvIndexes::new(BIG);
        let answer = indexes.with_index("t", 0, &Arc::new(Failing), |i| i.len());
        assert!(matches!(answer, Err(KvIndexError::Read(e)) if e == "disk"));
    }
}
