//! The data directory: its exclusive lock and its layout.
//!
//! Only one process may use a data directory at a time. The lock is an
//! advisory `flock` on `<data_dir>/.lock`, held for the life of the
//! process; the kernel drops it when the process dies, even on `kill -9`,
//! so a crash never leaves a stale lock behind. The file also records the
//! holder's pid so `sluice stop` can find it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Name of the lock file inside the data directory.
pub const LOCK_FILE: &str = ".lock";

/// Errors opening the data directory.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    /// The directory could not be created or opened.
    #[error("cannot open data directory {path}: {source}")]
    Open {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Another process holds the lock.
    #[error(
        "data directory {path} is locked by another sluice process{holder}; only one broker may use a data directory at a time"
    )]
    Locked {
        /// The directory.
        path: PathBuf,
        /// ` (pid N)` when the holder's pid could be read.
        holder: String,
    },
}

/// An open, exclusively locked data directory. Dropping it releases the lock.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    /// Held for the flock; never read.
    _lock: File,
}

impl DataDir {
    /// Creates the directory if needed and takes its lock, or fails at once
    /// if another process has it.
    pub fn open(path: &Path) -> Result<DataDir, DataDirError> {
        let open_err = |source| DataDirError::Open {
            path: path.to_owned(),
            source,
        };
        std::fs::create_dir_all(path).map_err(open_err)?;
        let lock_path = path.join(LOCK_FILE);
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(open_err)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&lock_path)
                    .ok()
                    .and_then(|s| s.trim().parse::<u32>().ok())
                    .map(|pid| format!(" (pid {pid})"))
                    .unwrap_or_default();
                return Err(DataDirError::Locked {
                    path: path.to_owned(),
                    holder,
                });
            }
            Err(TryLockError::Error(e)) => return Err(open_err(e)),
        }
        // The pid is only a hint for `sluice stop` and for the error a
        // second process prints; the flock is what excludes. A full disk
        // must not stop the broker from starting read-only, so a failed
        // write is a warning.
        let pid = lock
            .set_len(0)
            .and_then(|()| writeln!(lock, "{}", std::process::id()))
            .and_then(|()| lock.sync_all());
        if let Err(e) = pid {
            tracing::warn!(path = %lock_path.display(), "cannot record the pid in the lock file: {e}");
        }
        Ok(DataDir {
            path: path.to_owned(),
            _lock: lock,
        })
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pid recorded by whoever holds (or last held) the lock.
    pub fn read_pid(path: &Path) -> Option<u32> {
        std::fs::read_to_string(path.join(LOCK_FILE))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl DataDir {
    /// The cluster id, created once and kept in `meta.properties` like Kafka.
    pub fn cluster_id(&self) -> Result<String, DataDirError> {
        cluster_id(self.path())
    }
}

fn cluster_id(dir: &std::path::Path) -> Result<String, DataDirError> {
    let path = dir.join("meta.properties");
    let io = |source| DataDirError::Open {
        path: dir.to_owned(),
        source,
    };
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Some(id) = text.lines().find_map(|l| l.strip_prefix("cluster.id="))
    {
        return Ok(id.trim().to_owned());
    }
    let id = base64_url_uuid(uuid::Uuid::new_v4());
    let tmp = dir.join("meta.properties.tmp");
    std::fs::write(&tmp, format!("version=1\ncluster.id={id}\n")).map_err(io)?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io)?;
    Ok(id)
}

/// Kafka prints cluster ids as URL-safe base64 of a UUID, without padding.
fn base64_url_uuid(id: uuid::Uuid) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = id.as_bytes();
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)) << (8 * (3 - chunk.len()));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Space on the file system holding a directory, in bytes, as `statvfs`
/// reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSpace {
    /// The file system's size.
    pub total_bytes: u64,
    /// In use (size less every free block, root's reserve included).
    pub used_bytes: u64,
    /// What an unprivileged writer such as Sluice can still use (`df`'s
    /// "Avail": blocks reserved for root excluded).
    pub available_bytes: u64,
}

/// [`DiskSpace`] of the file system holding `dir`, or `None` if the file
/// system would not say.
pub fn disk_space(dir: &Path) -> Option<DiskSpace> {
    let stats = rustix::fs::statvfs(dir).ok()?;
    // Block counts are in fragment-size units (`statvfs(3)`).
    let unit = stats.f_frsize;
    Some(DiskSpace {
        total_bytes: stats.f_blocks.saturating_mul(unit),
        used_bytes: stats
            .f_blocks
            .saturating_sub(stats.f_bfree)
            .saturating_mul(unit),
        available_bytes: stats.f_bavail.saturating_mul(unit),
    })
}

/// Use of the file system holding `data_dir`, in percent of the space an
/// unprivileged writer could use (blocks reserved for root excluded, as
/// `df` reports it), or `None` if the file system would not say. The
/// balancer stops placing replicas on a broker past its disk high-water
/// mark.
pub fn disk_used_percent(data_dir: &Path) -> Option<u8> {
    let stats = rustix::fs::statvfs(data_dir).ok()?;
    let used = stats.f_blocks.checked_sub(stats.f_bfree)?;
    let usable = used.checked_add(stats.f_bavail)?;
    if usable == 0 {
        return None;
    }
    let percent = used.saturating_mul(100).div_ceil(usable);
    u8::try_from(percent.min(100)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_open_of_a_locked_dir_fails_with_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = DataDir::open(dir.path()).expect("first open");
        let err = DataDir::open(dir.path()).expect_err("second open must fail");
        let msg = err.to_string();
        assert!(msg.contains("locked by another sluice process"), "{msg}");
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        drop(first);
        DataDir::open(dir.path()).expect("lock released on drop");
    }

    #[test]
    fn disk_use_of_a_real_directory_is_a_percentage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let used = disk_used_percent(dir.path()).expect("statvfs answers for a real directory");
        assert!(used <= 100, "{used}");
        assert_eq!(disk_used_percent(&dir.path().join("missing")), None);
    }

    #[test]
    fn disk_space_of_a_real_directory_adds_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let space = disk_space(dir.path()).expect("statvfs answers for a real directory");
        assert!(space.total_bytes > 0);
        assert!(
            space.used_bytes + space.available_bytes <= space.total_bytes,
            "{space:?}"
        );
        assert_eq!(disk_space(&dir.path().join("missing")), None);
    }
}
