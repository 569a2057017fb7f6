//! Atomic checkpoint files: write a temporary file, fsync it, rename it over
//! the old one, fsync the directory. A crash leaves either the old or the new
//! file, never a mix.
//!
//! Formats are Kafka-like text:
//! - single-offset checkpoints (`recovery-point-offset-checkpoint`,
//!   `log-start-offset-checkpoint`): `0\n<offset>\n` (version, value);
//! - `leader-epoch-checkpoint`: `0\n<count>\n<epoch> <start_offset>\n`….

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::LogError;

/// File holding the offset below which the log is known fsynced.
pub const RECOVERY_POINT_FILE: &str = "recovery-point-offset-checkpoint";
/// File holding the log start offset (advanced by DeleteRecords).
pub const LOG_START_FILE: &str = "log-start-offset-checkpoint";
/// File holding the cleaner's first dirty offset: everything below it was
/// compacted (Kafka keeps one `cleaner-offset-checkpoint` per data
/// directory; one per partition suits our store seam).
pub const CLEANER_OFFSET_FILE: &str = "cleaner-offset-checkpoint";
/// File holding the leader epoch cache.
pub const LEADER_EPOCH_FILE: &str = "leader-epoch-checkpoint";

/// Bound on leader-epoch entries read from disk: far more epochs than a
/// partition sees in practice, small enough to read without worry.
const MAX_EPOCH_ENTRIES: usize = 1 << 20;

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> LogError {
    let path = path.to_path_buf();
    move |source| LogError::Io { op, path, source }
}

/// Fsyncs a directory so renames and new files in it are durable.
pub fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("fsync directory", dir))?;
    #[cfg(test)]
    synced::record(dir);
    Ok(())
}

/// Distinguishes concurrent writers' temporary files: two threads
/// checkpointing the same file (a flush timer and a shutdown flush, say)
/// must not rename each other's temporary file away.
static TMP_SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// Atomically replaces `dir/name` with `contents`.
pub fn write_atomic(dir: &Path, name: &str, contents: &str) -> Result<(), LogError> {
    let path = dir.join(name);
    let seq = TMP_SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!("{name}.{seq}.tmp"));
    let mut f = File::create(&tmp).map_err(io("create", &tmp))?;
    f.write_all(contents.as_bytes())
        .map_err(io("write", &tmp))?;
    f.sync_all().map_err(io("fsync", &tmp))?;
    fs::rename(&tmp, &path).map_err(io("rename", &path))?;
    sync_dir(dir)
}

fn read_optional(path: &Path) -> Result<Option<String>, LogError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io("read", path)(e)),
    }
}

/// The text of a single-offset checkpoint.
pub fn offset_text(offset: i64) -> String {
    format!("0\n{offset}\n")
}

/// Writes a single-offset checkpoint.
pub fn write_offset(dir: &Path, name: &str, offset: i64) -> Result<(), LogError> {
    write_atomic(dir, name, &offset_text(offset))
}

/// Reads a single-offset checkpoint; `None` if the file does not exist.
pub fn read_offset(dir: &Path, name: &str) -> Result<Option<i64>, LogError> {
    let path = dir.join(name);
    let Some(text) = read_optional(&path)? else {
        return Ok(None);
    };
    parse_offset(&path, &text).map(Some)
}

/// Parses the text of a single-offset checkpoint read from `path`.
pub fn parse_offset(path: &Path, text: &str) -> Result<i64, LogError> {
    let bad = |reason| LogError::BadCheckpoint {
        path: path.to_path_buf(),
        reason,
    };
    let mut lines = text.lines();
    if lines.next() != Some("0") {
        return Err(bad("unknown version"));
    }
    let value = lines
        .next()
        .and_then(|l| l.trim().parse::<i64>().ok())
        .ok_or_else(|| bad("missing or malformed offset"))?;
    Ok(value)
}

/// The text of the leader epoch checkpoint.
pub fn epochs_text(epochs: &[(i32, i64)]) -> String {
    let mut s = format!("0\n{}\n", epochs.len());
    for (epoch, start) in epochs {
        s.push_str(&format!("{epoch} {start}\n"));
    }
    s
}

/// Writes the leader epoch cache.
pub fn write_epochs(dir: &Path, epochs: &[(i32, i64)]) -> Result<(), LogError> {
    write_atomic(dir, LEADER_EPOCH_FILE, &epochs_text(epochs))
}

/// Reads the leader epoch cache; empty if the file does not exist.
pub fn read_epochs(dir: &Path) -> Result<Vec<(i32, i64)>, LogError> {
    let path: PathBuf = dir.join(LEADER_EPOCH_FILE);
    let Some(text) = read_optional(&path)? else {
        return Ok(Vec::new());
    };
    parse_epochs(&path, &text)
}

/// Parses the text of a leader epoch checkpoint read from `path`.
pub fn parse_epochs(path: &Path, text: &str) -> Result<Vec<(i32, i64)>, LogError> {
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
    if count > MAX_EPOCH_ENTRIES {
        return Err(bad("too many entries"));
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let line = lines
            .next()
            .ok_or_else(|| bad("fewer entries than the count"))?;
        let mut parts = line.split_whitespace();
        let epoch = parts.next().and_then(|p| p.parse().ok());
        let start = parts.next().and_then(|p| p.parse().ok());
        match (epoch, start) {
            (Some(e), Some(s)) => out.push((e, s)),
            _ => return Err(bad("malformed entry")),
        }
    }
    Ok(out)
}

/// Test-only journal of successful fsyncs, so tests can prove a file or
/// directory was fsynced (the effect is invisible without a power cut).
#[cfg(test)]
pub(crate) mod synced {
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    static SYNCED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

    /// Records an fsync of `path`.
    pub(crate) fn record(path: &Path) {
        SYNCED
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(path.to_path_buf());
    }

    /// True if `path` was fsynced (tests use unique temp dirs).
    pub(crate) fn contains(path: &Path) -> bool {
        SYNCED
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|p| p == path)
    }
}
