//! [`FileCache`]: a process-wide, bounded cache of open segment files.
//!
//! A log no longer holds its segment files open. Every `.log`, `.index`,
//! `.timeindex` and `.txnindex` handle comes from this cache by path, so
//! the number of open files is bounded by the cache, not by the number of
//! partitions (four files per segment would exhaust `RLIMIT_NOFILE` at a
//! few thousand partitions).
//!
//! Handles are `Arc<File>`: evicting one drops only the cache's reference,
//! so a read or fsync in progress keeps its own until it finishes. The
//! cache is split into shards, each an LRU behind its own short mutex, so
//! appends to different partitions rarely contend. The mutex is never held
//! across an `open` or any other I/O.
//!
//! Contract with the log: a path whose file is deleted or replaced must be
//! [`FileCache::forget`]ten (or re-[`FileCache::create`]d), so no caller is
//! ever handed a handle of an unlinked file for a new file of that name.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, RandomState};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// Default bound when nobody configured one (tests, tools). The broker
/// sets `log.max_open_files` at start, by default half of RLIMIT_NOFILE.
pub const DEFAULT_MAX_OPEN_FILES: usize = 1024;

/// Smallest bound accepted: one append touches up to four files of the
/// active segment, and a smaller cache would evict them within one append.
pub const MIN_MAX_OPEN_FILES: usize = 8;

/// Shards of the cache. More shards mean less contention between
/// partitions; each shard gets an equal part of the bound.
const SHARDS: usize = 16;

/// One shard: an LRU of open files.
#[derive(Debug, Default)]
struct Shard {
    /// Open file and its last-use tick, by path.
    files: HashMap<PathBuf, (Arc<File>, u64)>,
    /// Path by last-use tick; the first entry is the least recently used.
    lru: BTreeMap<u64, PathBuf>,
    /// Source of ticks: increases on every use.
    tick: u64,
}

impl Shard {
    fn touch(&mut self, path: &Path) -> Option<Arc<File>> {
        self.tick += 1;
        let tick = self.tick;
        let (file, last) = self.files.get_mut(path)?;
        self.lru.remove(last);
        *last = tick;
        self.lru.insert(tick, path.to_owned());
        Some(Arc::clone(file))
    }

    fn insert(&mut self, path: &Path, file: Arc<File>, capacity: usize) {
        self.remove(path);
        while self.files.len() >= capacity.max(1) {
            let Some((_, oldest)) = self.lru.pop_first() else {
                break;
            };
            self.files.remove(&oldest);
        }
        self.tick += 1;
        self.lru.insert(self.tick, path.to_owned());
        self.files.insert(path.to_owned(), (file, self.tick));
    }

    fn remove(&mut self, path: &Path) {
        if let Some((_, tick)) = self.files.remove(path) {
            self.lru.remove(&tick);
        }
    }
}

/// A bounded cache of open files, keyed by path. See the module docs.
#[derive(Debug)]
pub struct FileCache {
    shards: Vec<Mutex<Shard>>,
    /// Files each shard may hold open.
    per_shard: AtomicUsize,
    hasher: RandomState,
}

static GLOBAL: OnceLock<Arc<FileCache>> = OnceLock::new();

impl FileCache {
    /// A cache holding at most `max_open_files` files open (at least
    /// [`MIN_MAX_OPEN_FILES`]; rounded up to a multiple of the shard count,
    /// since each shard gets an equal part).
    pub fn new(max_open_files: usize) -> FileCache {
        let cache = FileCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard: AtomicUsize::new(1),
            hasher: RandomState::new(),
        };
        cache.set_max_open_files(max_open_files);
        cache
    }

    /// The process-wide cache every [`crate::Log::open`] uses.
    pub fn global() -> &'static Arc<FileCache> {
        GLOBAL.get_or_init(|| Arc::new(FileCache::new(DEFAULT_MAX_OPEN_FILES)))
    }

    /// Changes the bound; shards shrink as files are next inserted.
    pub fn set_max_open_files(&self, max_open_files: usize) {
        let bound = max_open_files.max(MIN_MAX_OPEN_FILES);
        self.per_shard
            .store(bound.div_ceil(SHARDS).max(1), Ordering::Relaxed);
    }

    /// The bound: files the cache itself may hold open.
    pub fn max_open_files(&self) -> usize {
        self.per_shard.load(Ordering::Relaxed) * SHARDS
    }

    /// Files the cache holds open now.
    pub fn open_files(&self) -> usize {
        self.shards.iter().map(|s| lock(s).files.len()).sum()
    }

    fn shard(&self, path: &Path) -> &Mutex<Shard> {
        &self.shards[(self.hasher.hash_one(path) as usize) % SHARDS]
    }

    /// The open file at `path` (read and write), opening it if the cache
    /// does not hold it. The file must exist.
    pub fn get(&self, path: &Path) -> std::io::Result<Arc<File>> {
        self.open(path, false)
    }

    /// Like [`FileCache::get`], but creates the file (empty) if it is
    /// missing: for index files, which recovery rebuilds when lost.
    pub fn get_or_create(&self, path: &Path) -> std::io::Result<Arc<File>> {
        self.open(path, true)
    }

    fn open(&self, path: &Path, create: bool) -> std::io::Result<Arc<File>> {
        let shard = self.shard(path);
        if let Some(file) = lock(shard).touch(path) {
            return Ok(file);
        }
        // Opened outside the lock; if another thread opened it meanwhile,
        // both handles refer to the same inode, so keeping either is right.
        let file = Arc::new(
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(create)
                .open(path)?,
        );
        let mut guard = lock(shard);
        if let Some(existing) = guard.touch(path) {
            return Ok(existing);
        }
        guard.insert(
            path,
            Arc::clone(&file),
            self.per_shard.load(Ordering::Relaxed),
        );
        Ok(file)
    }

    /// Creates (or truncates) the file at `path` and caches its handle,
    /// replacing any handle cached for an older file of that name.
    pub fn create(&self, path: &Path) -> std::io::Result<Arc<File>> {
        let file = Arc::new(
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(path)?,
        );
        lock(self.shard(path)).insert(
            path,
            Arc::clone(&file),
            self.per_shard.load(Ordering::Relaxed),
        );
        Ok(file)
    }

    /// Drops the cached handle of `path` (the file is being deleted).
    pub fn forget(&self, path: &Path) {
        lock(self.shard(path)).remove(path);
    }

    /// Drops every cached handle of a file under `dir` (a partition
    /// directory being removed or a log being closed).
    pub fn forget_dir(&self, dir: &Path) {
        for shard in &self.shards {
            let mut guard = lock(shard);
            let gone: Vec<PathBuf> = guard
                .files
                .keys()
                .filter(|p| p.starts_with(dir))
                .cloned()
                .collect();
            for path in gone {
                guard.remove(&path);
            }
        }
    }
}

fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    // A panic under the lock can only leave a handle cached or not; both
    // are safe, so keep going.
    shard.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileExt;

    use super::*;

    #[test]
    fn the_cache_never_holds_more_than_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FileCache::new(32);
        for i in 0..500 {
            let path = dir.path().join(format!("{i}"));
            cache.create(&path).unwrap().write_all_at(b"x", 0).unwrap();
            assert!(cache.open_files() <= cache.max_open_files());
        }
        assert_eq!(cache.max_open_files(), 32);
        // Evicted files reopen by path with their data.
        for i in 0..500 {
            let mut b = [0u8; 1];
            let f = cache.get(&dir.path().join(format!("{i}"))).unwrap();
            f.read_exact_at(&mut b, 0).unwrap();
            assert_eq!(&b, b"x");
        }
    }

    #[test]
    fn a_handle_outlives_its_eviction() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FileCache::new(MIN_MAX_OPEN_FILES);
        let kept = cache.create(&dir.path().join("kept")).unwrap();
        kept.write_all_at(b"still here", 0).unwrap();
        for i in 0..200 {
            cache.create(&dir.path().join(format!("{i}"))).unwrap();
        }
        let mut b = [0u8; 10];
        kept.read_exact_at(&mut b, 0).unwrap();
        assert_eq!(&b, b"still here");
    }

    #[test]
    fn create_replaces_the_handle_of_a_deleted_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg");
        let cache = FileCache::new(64);
        cache
            .create(&path)
            .unwrap()
            .write_all_at(b"old", 0)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        cache.create(&path).unwrap();
        // A lookup after the re-creation gets the new file, not the unlinked one.
        cache.get(&path).unwrap().write_all_at(b"new", 0).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
    }
}
