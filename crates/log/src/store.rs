//! [`SegmentStore`]: the seam between a [`crate::Log`] and the place its
//! files live. The default, [`LocalStore`], is the local file system with
//! the process-wide [`FileCache`].
//!
//! A log performs every *lifecycle* operation on its partition directory
//! through its store: creating and listing the directory, creating a
//! segment's files, the short-lived reads and `stat`s of recovery, the
//! atomic writes of checkpoints and the producer-state snapshot (the
//! "sidecar" files), deleting segments and the directory, and fsyncing the
//! directory. It also tells the store when a segment is sealed and asks it
//! before retention deletes one. Those two hooks are where compaction
//! (rewrite sealed segments, then swap them in) and tiered storage (copy
//! sealed segments out, delete the local copy once uploaded) attach; see
//! `docs/design.md`, "Storage seam".
//!
//! What does *not* go through the trait object: appends, reads and fsyncs.
//! At creation or open the store names each segment's files
//! ([`SegmentStore::segment_paths`]), and the log then takes their handles
//! from [`SegmentStore::file_cache`] directly, so the produce and fetch paths
//! cost no virtual call and still hand `FileSlice`s of real files to the
//! network. A store therefore keeps a segment's live files as local files;
//! a tiered store keeps the *copies* elsewhere.
//!
//! This module must not know about offsets inside files, indexes' contents
//! or locking: `segment.rs` and `log.rs` do.

use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::checkpoint;
use crate::error::LogError;
use crate::error::io_err;
use crate::file_cache::FileCache;

/// File name stem of a segment: its base offset, zero-padded to 20 digits.
pub fn file_stem(base_offset: i64) -> String {
    format!("{base_offset:020}")
}

/// One of the four files of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SegmentFile {
    /// `.log`: the record batches.
    Log,
    /// `.index`: the sparse offset index.
    OffsetIndex,
    /// `.timeindex`: the sparse time index.
    TimeIndex,
    /// `.txnindex`: the aborted-transaction index.
    TxnIndex,
}

impl SegmentFile {
    /// All four, in the order a segment's files are created and deleted
    /// (the `.log` first: without it, leftover index files are ignored).
    pub const ALL: [SegmentFile; 4] = [
        SegmentFile::Log,
        SegmentFile::OffsetIndex,
        SegmentFile::TimeIndex,
        SegmentFile::TxnIndex,
    ];

    /// The file name extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            SegmentFile::Log => "log",
            SegmentFile::OffsetIndex => "index",
            SegmentFile::TimeIndex => "timeindex",
            SegmentFile::TxnIndex => "txnindex",
        }
    }
}

/// Where one segment's files are, as its store named them. The log keeps
/// these per segment and takes handles for them from the store's
/// [`FileCache`] without calling the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentPaths {
    /// The `.log` file.
    pub log: PathBuf,
    /// The `.index` file.
    pub offset_index: PathBuf,
    /// The `.timeindex` file.
    pub time_index: PathBuf,
    /// The `.txnindex` file.
    pub txn_index: PathBuf,
}

impl SegmentPaths {
    /// The local layout: `dir/<20-digit base offset>.<extension>`.
    pub fn local(dir: &Path, base_offset: i64) -> SegmentPaths {
        let stem = file_stem(base_offset);
        let path = |f: SegmentFile| dir.join(format!("{stem}.{}", f.extension()));
        SegmentPaths {
            log: path(SegmentFile::Log),
            offset_index: path(SegmentFile::OffsetIndex),
            time_index: path(SegmentFile::TimeIndex),
            txn_index: path(SegmentFile::TxnIndex),
        }
    }

    /// The path of `file`.
    pub fn get(&self, file: SegmentFile) -> &Path {
        match file {
            SegmentFile::Log => &self.log,
            SegmentFile::OffsetIndex => &self.offset_index,
            SegmentFile::TimeIndex => &self.time_index,
            SegmentFile::TxnIndex => &self.txn_index,
        }
    }
}

/// A sealed segment (rolled; no longer appended to), as the log describes
/// it to its store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedSegment<'a> {
    /// The partition directory.
    pub dir: &'a Path,
    /// Offset of the segment's first batch.
    pub base_offset: i64,
    /// Offset after its last batch (the next segment's base offset).
    pub end_offset: i64,
    /// Bytes of its `.log` file.
    pub size_bytes: u64,
    /// Largest batch maxTimestamp in it, -1 if it is empty.
    pub max_timestamp: i64,
}

/// How the store learns of a sealed segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealOrigin {
    /// The log just rolled past it (an append or `segment.ms`).
    Rolled,
    /// It was sealed before this log was opened (start-up or reopen); the
    /// store may have heard of it already and must not mind.
    Opened,
}

/// Why the log deletes a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteReason {
    /// `retention.ms`: its newest batch is too old.
    RetentionMs,
    /// `retention.bytes`: the log is too large without it.
    RetentionBytes,
    /// DeleteRecords moved the log start offset past it.
    LogStartOffset,
    /// `truncate_to` cut the log below its base offset.
    Truncation,
    /// Recovery found it past a torn tail, or a reopen found it past the
    /// durable offset: it holds no data the log keeps.
    Recovery,
    /// An install of a compacted segment replaced it
    /// ([`SegmentStore::install_staged`]).
    Compaction,
}

impl DeleteReason {
    /// True for retention, the only deletion a store may postpone
    /// ([`SegmentStore::may_delete`]); the others remove offsets the log
    /// no longer has, so the files must go.
    pub fn is_retention(self) -> bool {
        matches!(
            self,
            DeleteReason::RetentionMs | DeleteReason::RetentionBytes
        )
    }
}

/// Every lifecycle operation a [`crate::Log`] performs on the files of its
/// partition directory, plus the hooks for sealed segments. See the module
/// docs for what stays outside (appends, reads, fsyncs).
///
/// Contract: files are named by [`SegmentStore::segment_paths`]; a path
/// whose file is deleted or re-created must not stay in
/// [`SegmentStore::file_cache`] as the old file's handle. Errors are
/// [`LogError::Io`] naming the operation and path. The hooks run under the
/// partition's log lock: they must be quick (record or enqueue work), must
/// not block on I/O, and must never call back into the `Log`.
pub trait SegmentStore: fmt::Debug + Send + Sync {
    /// The cache the log takes segment file handles from (appends, reads,
    /// fsyncs) without calling the store.
    fn file_cache(&self) -> &Arc<FileCache>;

    /// Names the files of segment `base_offset` in `dir`. No I/O.
    fn segment_paths(&self, dir: &Path, base_offset: i64) -> SegmentPaths;

    /// Creates the partition directory if it is missing, durably (its
    /// parent is fsynced, so a power cut cannot lose it after its data was
    /// fsynced).
    fn create_partition_dir(&self, dir: &Path) -> Result<(), LogError>;

    /// Finishes or discards what an interrupted operation left in `dir`,
    /// before the log lists it: a sidecar's temporary file is removed, a
    /// committed [`SegmentStore::install_staged`] is completed, and staged
    /// files of one that never committed are removed. Called by every open
    /// (a reopen holds the log's flush lock); nothing else may stage files
    /// in this directory meanwhile.
    fn recover_partition_dir(&self, dir: &Path) -> Result<(), LogError>;

    /// Base offsets of the segments in `dir`, ascending. No side effects.
    fn list_segments(&self, dir: &Path) -> Result<Vec<i64>, LogError>;

    /// Fsyncs the directory, so created, renamed and deleted files in it
    /// are durable.
    fn sync_dir(&self, dir: &Path) -> Result<(), LogError>;

    /// Removes the partition directory and everything in it (DeleteTopics),
    /// durably. The log has already closed its files.
    fn delete_partition_dir(&self, dir: &Path) -> Result<(), LogError>;

    /// Creates one file of a segment empty (truncating a stale file of
    /// that name) and returns its cached handle.
    fn create_file(
        &self,
        dir: &Path,
        base_offset: i64,
        file: SegmentFile,
    ) -> Result<Arc<File>, LogError>;

    /// A read-only handle outside the cache, closed when dropped: recovery
    /// reads many segments once and must not hold them open.
    fn open_uncached(
        &self,
        dir: &Path,
        base_offset: i64,
        file: SegmentFile,
    ) -> Result<File, LogError>;

    /// The size of a file of a segment; `None` if it does not exist.
    fn file_len(
        &self,
        dir: &Path,
        base_offset: i64,
        file: SegmentFile,
    ) -> Result<Option<u64>, LogError>;

    /// The whole contents of a (small) file of a segment, through a
    /// short-lived handle; `None` if it does not exist.
    fn read_file(
        &self,
        dir: &Path,
        base_offset: i64,
        file: SegmentFile,
    ) -> Result<Option<Vec<u8>>, LogError>;

    /// Deletes the segment's files (those that exist), dropping their
    /// cached handles first. Handles taken earlier keep working until
    /// dropped, so a read planned before the delete still completes.
    fn delete_segment(
        &self,
        dir: &Path,
        base_offset: i64,
        reason: DeleteReason,
    ) -> Result<(), LogError>;

    /// Drops the segment's cached handles (its log is closing); the files stay.
    fn close_segment(&self, dir: &Path, base_offset: i64);

    /// Compaction's first step: creates (truncating) a *staged* file of the
    /// segment that will replace `base_offset` and returns a handle outside
    /// the cache. Staged files are invisible to [`SegmentStore::list_segments`]
    /// and discarded by recovery unless installed.
    fn create_staged_file(
        &self,
        dir: &Path,
        base_offset: i64,
        file: SegmentFile,
    ) -> Result<File, LogError>;

    /// Compaction's last step: makes the four staged files of `base_offset`
    /// the live segment of that base, and deletes the live segments in
    /// `replaced` (other than `base_offset` itself). Crash-safe: once this
    /// has fsynced its commit record, recovery finishes it; before that,
    /// recovery discards the staged files and the old segments stay. The
    /// cached handles of replaced files are dropped first; handles taken
    /// earlier keep reading the old files.
    fn install_staged(
        &self,
        dir: &Path,
        base_offset: i64,
        replaced: &[i64],
    ) -> Result<(), LogError>;

    /// Atomically replaces the sidecar file `name` in `dir` (a checkpoint
    /// or the producer-state snapshot): after a crash it holds the old or
    /// the new contents, never a mix.
    fn write_sidecar(&self, dir: &Path, name: &str, contents: &str) -> Result<(), LogError>;

    /// Reads the sidecar file `name`; `None` if it does not exist.
    fn read_sidecar(&self, dir: &Path, name: &str) -> Result<Option<String>, LogError>;

    /// Removes the sidecar file `name`; a missing file is not an error.
    fn remove_sidecar(&self, dir: &Path, name: &str) -> Result<(), LogError>;

    /// Hook: `segment` is sealed. Its files no longer change, except that
    /// a truncation below its end deletes it. Its bytes may still be only
    /// in the page cache: a copy must wait until the log's recovery point
    /// reaches `end_offset`. Called once per roll, and for every sealed
    /// segment found when the log is opened.
    fn segment_sealed(&self, segment: &SealedSegment<'_>, origin: SealOrigin) {
        let _ = (segment, origin);
    }

    /// Hook: may retention delete `segment` now? Asked only for retention
    /// ([`DeleteReason::is_retention`]), oldest segment first; a `false`
    /// stops this retention pass at that segment, so the log stays
    /// contiguous. A tiered store answers `false` until its copy is
    /// uploaded.
    fn may_delete(&self, segment: &SealedSegment<'_>, reason: DeleteReason) -> bool {
        let _ = (segment, reason);
        true
    }
}

/// The local file system: today's layout (see `docs/design.md`), with file
/// handles from a [`FileCache`].
#[derive(Debug, Clone)]
pub struct LocalStore {
    cache: Arc<FileCache>,
}

impl LocalStore {
    /// A store taking file handles from `cache`.
    pub fn new(cache: Arc<FileCache>) -> LocalStore {
        LocalStore { cache }
    }

    /// A store on the process-wide [`FileCache::global`].
    pub fn global() -> LocalStore {
        LocalStore::new(Arc::clone(FileCache::global()))
    }
}

/// Suffix of a staged (compacted, not yet installed) segment file.
const STAGED_SUFFIX: &str = ".cleaned";

/// Suffix of an install's commit record, `<20-digit base>.swap`: it lists
/// the segments the install replaces, so recovery can finish it.
const SWAP_SUFFIX: &str = ".swap";

/// Bound on the segments one install may replace: the commit record is read
/// whole at recovery, and a cleaner groups far fewer segments than this.
pub const MAX_REPLACED_SEGMENTS: usize = 1 << 16;

/// The staged counterpart of a live segment file.
pub(crate) fn staged_path(live: &Path) -> PathBuf {
    let mut name: OsString = live.as_os_str().to_owned();
    name.push(STAGED_SUFFIX);
    PathBuf::from(name)
}

/// The name of the commit record of an install at `base_offset`.
pub(crate) fn swap_record_name(base_offset: i64) -> String {
    format!("{}{SWAP_SUFFIX}", file_stem(base_offset))
}

/// Text of a commit record: version, count, then one replaced base per line.
pub(crate) fn swap_record_text(replaced: &[i64]) -> String {
    let mut text = format!("0\n{}\n", replaced.len());
    for base in replaced {
        text.push_str(&format!("{base}\n"));
    }
    text
}

/// Parses a commit record read from `path`.
fn parse_swap_record(path: &Path, text: &str) -> Result<Vec<i64>, LogError> {
    let bad = |reason| LogError::BadCheckpoint {
        path: path.to_path_buf(),
        reason,
    };
    let mut lines = text.lines();
    if lines.next() != Some("0") {
        return Err(bad("unknown version"));
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| bad("missing or malformed count"))?;
    if count > MAX_REPLACED_SEGMENTS {
        return Err(bad("too many replaced segments"));
    }
    let replaced: Vec<i64> = lines
        .by_ref()
        .take(count)
        .map(|l| l.trim().parse().map_err(|_| bad("malformed base offset")))
        .collect::<Result<_, _>>()?;
    if replaced.len() != count || lines.next().is_some() {
        return Err(bad("entry count does not match"));
    }
    Ok(replaced)
}

/// Parses a segment's `.log` file name (`<20 digits>.log`) into its base offset.
pub fn parse_segment_file_name(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(".log")?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

fn missing_is_none<T>(r: std::io::Result<T>) -> std::io::Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl LocalStore {
    /// The part of an install after its commit record: idempotent, so
    /// recovery can repeat it after a crash at any point.
    fn finish_install(
        &self,
        dir: &Path,
        base_offset: i64,
        replaced: &[i64],
    ) -> Result<(), LogError> {
        let paths = SegmentPaths::local(dir, base_offset);
        for file in SegmentFile::ALL {
            let live = paths.get(file);
            let staged = staged_path(live);
            // Forgotten first, so no later lookup gets the replaced file.
            self.cache.forget(live);
            // Missing: renamed already by an install a crash interrupted.
            missing_is_none(fs::rename(&staged, live)).map_err(io_err("rename", live))?;
        }
        for &base in replaced.iter().filter(|&&b| b != base_offset) {
            self.delete_segment(dir, base, DeleteReason::Compaction)?;
        }
        checkpoint::sync_dir(dir)?;
        self.remove_sidecar(dir, &swap_record_name(base_offset))?;
        checkpoint::sync_dir(dir)
    }
}

impl SegmentStore for LocalStore {
    fn file_cache(&self) -> &Arc<FileCache> {
        &self.cache
    }

    fn segment_paths(&self, dir: &Path, base_offset: i64) -> SegmentPaths {
        SegmentPaths::local(dir, base_offset)
    }

    fn create_partition_dir(&self, dir: &Path) -> Result<(), LogError> {
        if dir.is_dir() {
            return Ok(());
        }
        fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
        // The new directory's entry is durable only once its parent is
        // fsynced; without it a power cut can lose the whole partition
        // even after its data was fsynced.
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            checkpoint::sync_dir(parent)?;
        }
        Ok(())
    }

    fn recover_partition_dir(&self, dir: &Path) -> Result<(), LogError> {
        let mut swaps = Vec::new();
        let mut staged = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_err("list", dir))? {
            let entry = entry.map_err(io_err("list", dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".tmp") {
                // A checkpoint write that never got renamed into place.
                let _ = fs::remove_file(entry.path());
            } else if name.ends_with(STAGED_SUFFIX) {
                staged.push(entry.path());
            } else if let Some(stem) = name.strip_suffix(SWAP_SUFFIX)
                && let Some(base) = parse_segment_file_name(&format!("{stem}.log"))
            {
                swaps.push(base);
            }
        }
        // Committed installs first: they consume their staged files.
        swaps.sort_unstable();
        for base in swaps {
            let name = swap_record_name(base);
            let path = dir.join(&name);
            let text = self
                .read_sidecar(dir, &name)?
                .ok_or_else(|| io_err("read", &path)(std::io::ErrorKind::NotFound.into()))?;
            let replaced = parse_swap_record(&path, &text)?;
            tracing::warn!(dir = %dir.display(), base, ?replaced, "finishing an interrupted segment install");
            self.finish_install(dir, base, &replaced)?;
        }
        let mut removed = false;
        for path in staged.into_iter().filter(|p| p.exists()) {
            tracing::info!(file = %path.display(), "removing a staged segment file that was never installed");
            missing_is_none(fs::remove_file(&path)).map_err(io_err("delete", &path))?;
            removed = true;
        }
        if removed {
            checkpoint::sync_dir(dir)?;
        }
        Ok(())
    }

    fn list_segments(&self, dir: &Path) -> Result<Vec<i64>, LogError> {
        let mut bases = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_err("list", dir))? {
            let entry = entry.map_err(io_err("list", dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(base) = parse_segment_file_name(&name) {
                bases.push(base);
            }
        }
        bases.sort_unstable();
        Ok(bases)
    }

    fn sync_dir(&self, dir: &Path) -> Result<(), LogError> {
        checkpoint::sync_dir(dir)
    }

    fn delete_partition_dir(&self, dir: &Path) -> Result<(), LogError> {
        fs::remove_dir_all(dir).map_err(io_err("delete directory", dir))?;
        if let Some(parent) = dir.parent() {
            checkpoint::sync_dir(parent)?;
        }
        Ok(())
    }

    fn create_file(
        &self,
        dir: &Path,
        base_offset: i64,
        file: SegmentFile,
    ) -> Result<Arc<File>, LogError> {
        let paths = SegmentPaths::local(dir, base_offset);
        let path = paths.get(file);
        self.cache.create(path).map_err(io_err("create", path))
    }

    fn open_uncached(
        &self,
        dir: &Path,
        base_offset: i64,
        file: SegmentFile,
    ) -> Result<File, LogError> {
        let paths = SegmentPaths::local(dir, base_offset);
        let path = paths.get(file);
        File::open(path).map_err(io_err("open", path))
    }

    fn file_len(
        &self,
        dir: &Path,
        base_offset: i64,
        file: SegmentFile,
    ) -> Result<Option<u64>, LogError> {
        let paths = SegmentPaths::local(dir, base_offset);
        let path = paths.get(file);
        missing_is_none(fs::metadata(path).map(|m| m.len())).map_err(io_err("stat", path))
    }

    fn read_file(
        &self,
        dir: &Path,
        base_offset: i64,
        file: SegmentFile,
    ) -> Result<Option<Vec<u8>>, LogError> {
        let paths = SegmentPaths::local(dir, base_offset);
        let path = paths.get(file);
        missing_is_none(fs::read(path)).map_err(io_err("read", path))
    }

    fn delete_segment(
        &self,
        dir: &Path,
        base_offset: i64,
        _reason: DeleteReason,
    ) -> Result<(), LogError> {
        let paths = SegmentPaths::local(dir, base_offset);
        for file in SegmentFile::ALL {
            let path = paths.get(file);
            // Forgotten first, so no later lookup gets the unlinked file.
            self.cache.forget(path);
            missing_is_none(fs::remove_file(path)).map_err(io_err("delete", path))?;
        }
        Ok(())
    }

    fn close_segment(&self, dir: &Path, base_offset: i64) {
        let paths = SegmentPaths::local(dir, base_offset);
        for file in SegmentFile::ALL {
            self.cache.forget(paths.get(file));
        }
    }

    fn create_staged_file(
        &self,
        dir: &Path,
        base_offset: i64,
        file: SegmentFile,
    ) -> Result<File, LogError> {
        let path = staged_path(SegmentPaths::local(dir, base_offset).get(file));
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(io_err("create", &path))
    }

    fn install_staged(
        &self,
        dir: &Path,
        base_offset: i64,
        replaced: &[i64],
    ) -> Result<(), LogError> {
        if replaced.len() > MAX_REPLACED_SEGMENTS {
            return Err(LogError::BadCheckpoint {
                path: dir.join(swap_record_name(base_offset)),
                reason: "too many replaced segments",
            });
        }
        // Every staged file must be whole and durable before the commit
        // record says "install these".
        let paths = SegmentPaths::local(dir, base_offset);
        for file in SegmentFile::ALL {
            let staged = staged_path(paths.get(file));
            File::open(&staged)
                .and_then(|f| f.sync_all())
                .map_err(io_err("fsync", &staged))?;
        }
        // The commit point: written atomically and fsynced with its directory.
        self.write_sidecar(
            dir,
            &swap_record_name(base_offset),
            &swap_record_text(replaced),
        )?;
        self.finish_install(dir, base_offset, replaced)
    }

    fn write_sidecar(&self, dir: &Path, name: &str, contents: &str) -> Result<(), LogError> {
        checkpoint::write_atomic(dir, name, contents)
    }

    fn read_sidecar(&self, dir: &Path, name: &str) -> Result<Option<String>, LogError> {
        let path = dir.join(name);
        missing_is_none(fs::read_to_string(&path)).map_err(io_err("read", &path))
    }

    fn remove_sidecar(&self, dir: &Path, name: &str) -> Result<(), LogError> {
        let path = dir.join(name);
        missing_is_none(fs::remove_file(&path))
            .map(|_| ())
            .map_err(io_err("remove", &path))
    }
}
