//! The Raft log on disk.
//!
//! Layout, under `<data_dir>/__raft/`:
//! - `raft.log`: the entries, appended in index order, each framed as
//!   `u32 length | u32 crc32c(payload) | payload` (big-endian), the payload
//!   a postcard-encoded openraft entry. An append returns once the frames
//!   are written and `fdatasync`ed. With encryption at rest on, bit 31 of
//!   the length ([`SEALED_FRAME_BIT`]) is set and the payload is `u64
//!   index | sealed entry` ([`Keyring::seal`] with the active key: `key id
//!   | nonce | ciphertext | tag`, the index in its associated data), so
//!   the checksum still finds a torn tail before any key is needed, frames
//!   written before encryption was turned on (or under an older key) stay
//!   readable, and purged frames are skipped without their key.
//! - `vote`, `committed`, `purged`: one small record each (`u32 crc32c |
//!   payload`), replaced atomically (write a temporary file, fsync it,
//!   rename it over the old one, fsync the directory). They hold only
//!   terms, node ids and indexes, never metadata, so they stay plain.
//!
//! Every entry after the last purged one is also kept in memory, so
//! replication reads never touch the disk. Snapshots bound that memory:
//! openraft purges entries a snapshot covers, and once the purged prefix is
//! more than half the file the file is rewritten without it.
//!
//! Opening recovers the file: a torn or damaged frame at the tail (a crash
//! mid-append) is cut away. That is safe because an append is acknowledged
//! only after its fsync, so what a crash can tear was never counted by a
//! leader. A gap in the indexes, though, is damage and refuses to open.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, RaftLogReader, StorageIOError};
use serde::Serialize;
use serde::de::DeserializeOwned;

use sluice_log::encryption::{EncryptionError, Keyring, sealed_key_id};

use crate::{Entry, LogId, StorageError, TypeConfig, Vote};

/// Directory of the Raft state inside the data directory.
pub const RAFT_DIR: &str = "__raft";

/// Largest encoded entry, in bytes. A frame header claiming more is damage,
/// not an allocation to attempt. The largest legitimate entry is one change
/// of a 10,000-partition topic, under 1 MiB.
pub const MAX_ENTRY_BYTES: u32 = 64 * 1024 * 1024;

/// Below this many purged bytes the log file is never rewritten: rewriting
/// a small file to save a few kilobytes costs more than it saves.
const MIN_COMPACT_BYTES: u64 = 1024 * 1024;

const LOG_FILE: &str = "raft.log";
const VOTE_FILE: &str = "vote";
const COMMITTED_FILE: &str = "committed";
const PURGED_FILE: &str = "purged";
const FRAME_HEADER_BYTES: u64 = 8;

/// Set in a frame's length field when its payload is sealed. Lengths are
/// bounded by [`MAX_ENTRY_BYTES`], far below bit 31, so the bit is free.
pub const SEALED_FRAME_BIT: u32 = 1 << 31;

/// Associated data of a sealed entry, before its index: ties the
/// ciphertext to its purpose, so a sealed unit from elsewhere (a snapshot)
/// never decodes as an entry.
const ENTRY_AAD: &[u8] = b"sluice raft log entry v1";

/// Bytes of the clear log index in front of a sealed entry.
const SEALED_INDEX_BYTES: usize = 8;

/// The associated data of the sealed entry at `index`: the purpose and the
/// index, so a sealed entry cannot be moved to another index unnoticed.
fn entry_aad(index: u64) -> Vec<u8> {
    let mut aad = ENTRY_AAD.to_vec();
    aad.extend_from_slice(&index.to_be_bytes());
    aad
}

/// A sealed frame's payload: its clear index and the sealed entry.
fn split_sealed(payload: &[u8]) -> Option<(u64, &[u8])> {
    let (index, sealed) = payload.split_first_chunk::<SEALED_INDEX_BYTES>()?;
    Some((u64::from_be_bytes(*index), sealed))
}

/// Why the Raft state on disk cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file could not be read or written.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A record's checksum or encoding is wrong.
    #[error("{path} is damaged: {reason}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Encrypted data could not be opened: its key is not configured (or
    /// encryption is off), or the key is wrong.
    #[error("{path}: {source}")]
    Encryption {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: EncryptionError,
    },
}

/// Opens a sealed unit from `path`; without a keyring the error names the
/// key id the unit needs.
pub(crate) fn unseal(
    keyring: Option<&Keyring>,
    aad: &[u8],
    sealed: &[u8],
    path: &Path,
) -> Result<Vec<u8>, StoreError> {
    let opened = match keyring {
        Some(k) => k.unseal(aad, sealed),
        None => Err(sealed_key_id(sealed)
            .map(|key_id| EncryptionError::SealedKeyUnavailable { key_id })
            .unwrap_or_else(|e| e)),
    };
    opened.map_err(|source| StoreError::Encryption {
        path: path.to_owned(),
        source,
    })
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// A storage failure in openraft's terms (it stops the Raft node).
fn log_error(e: impl std::error::Error) -> StorageError {
    StorageError::from(StorageIOError::write_logs(AnyError::error(e.to_string())))
}

/// The Raft log, vote and committed id of this node. Cheap to clone; the
/// clones share one log.
#[derive(Debug, Clone)]
pub struct LogStore {
    dir: PathBuf,
    memory: Arc<Mutex<Memory>>,
    file: Arc<Mutex<LogFile>>,
    /// Seals new entries when encryption at rest is on.
    keyring: Option<Arc<Keyring>>,
}

#[derive(Debug, Default)]
struct Memory {
    entries: BTreeMap<u64, Entry>,
    last_purged: Option<LogId>,
    vote: Option<Vote>,
    committed: Option<LogId>,
}

#[derive(Debug)]
struct LogFile {
    path: PathBuf,
    file: File,
    /// Byte position of each entry's frame still in the file.
    positions: BTreeMap<u64, u64>,
    len: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves the maps as they were between
    // two whole operations (each update is a single insert or removal).
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl LogStore {
    /// Opens (creating) the Raft state under `data_dir`, recovering the
    /// log; with `keyring`, new entries are sealed with its active key and
    /// sealed ones open with the key they name.
    pub fn open(data_dir: &Path, keyring: Option<Arc<Keyring>>) -> Result<LogStore, StoreError> {
        let dir = data_dir.join(RAFT_DIR);
        std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        let last_purged: Option<LogId> = read_small(&dir.join(PURGED_FILE))?;
        let vote: Option<Vote> = read_small(&dir.join(VOTE_FILE))?;
        let committed: Option<LogId> =
            read_small::<Option<LogId>>(&dir.join(COMMITTED_FILE))?.flatten();
        let path = dir.join(LOG_FILE);
        let (entries, positions, len) =
            recover(&path, last_purged.map(|l| l.index), keyring.as_deref())?;
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io("open", &path))?;
        tracing::info!(
            entries = entries.len(),
            last_purged = ?last_purged,
            vote = ?vote,
            "raft log recovered"
        );
        Ok(LogStore {
            dir,
            memory: Arc::new(Mutex::new(Memory {
                entries,
                last_purged,
                vote,
                committed,
            })),
            file: Arc::new(Mutex::new(LogFile {
                path,
                file,
                positions,
                len,
            })),
            keyring,
        })
    }

    /// True if this node has never voted nor stored an entry: a node that
    /// must be initialized or join.
    pub fn is_pristine(&self) -> bool {
        let memory = lock(&self.memory);
        memory.vote.is_none() && memory.entries.is_empty() && memory.last_purged.is_none()
    }

    fn entries_in(&self, range: impl RangeBounds<u64>) -> Vec<Entry> {
        lock(&self.memory)
            .entries
            .range(range)
            .map(|(_, e)| e.clone())
            .collect()
    }

    async fn blocking<T: Send + 'static>(
        &self,
        name: &'static str,
        f: impl FnOnce(&LogStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let this = self.clone();
        sluice_runtime::blocking(name, move || f(&this))
            .await
            .map_err(log_error)?
            .map_err(log_error)
    }
}

/// Reads every whole, checksummed frame; cuts a torn tail.
#[allow(clippy::type_complexity)]
fn recover(
    path: &Path,
    purged: Option<u64>,
    keyring: Option<&Keyring>,
) -> Result<(BTreeMap<u64, Entry>, BTreeMap<u64, u64>, u64), StoreError> {
    let mut entries = BTreeMap::new();
    let mut positions = BTreeMap::new();
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let f = File::create(path).map_err(io("create", path))?;
            f.sync_all().map_err(io("fsync", path))?;
            return Ok((entries, positions, 0));
        }
        Err(e) => return Err(io("open", path)(e)),
    };
    let size = file.metadata().map_err(io("stat", path))?.len();
    let mut reader = BufReader::new(file);
    let mut pos = 0u64;
    let mut previous: Option<u64> = None;
    let damaged = |reason: String| StoreError::Damaged {
        path: path.to_owned(),
        reason,
    };
    loop {
        let mut header = [0u8; FRAME_HEADER_BYTES as usize];
        match read_full(&mut reader, &mut header).map_err(io("read", path))? {
            0 => break,
            n if n < header.len() => {
                tracing::warn!(pos, "raft log ends inside a frame header; cutting it");
                break;
            }
            _ => {}
        }
        let field = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let sealed = field & SEALED_FRAME_BIT != 0;
        let len = field & !SEALED_FRAME_BIT;
        let crc = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        if len > MAX_ENTRY_BYTES || pos + FRAME_HEADER_BYTES + u64::from(len) > size {
            tracing::warn!(pos, len, "raft log ends inside a frame; cutting it");
            break;
        }
        let mut payload = vec![0u8; len as usize];
        reader.read_exact(&mut payload).map_err(io("read", path))?;
        if crc32c::crc32c(&payload) != crc {
            tracing::warn!(
                pos,
                "raft log frame fails its checksum; cutting the log there"
            );
            break;
        }
        // The checksum passed, so the frame is whole: a key that does not
        // open it is a configuration error, never a torn tail to cut. A
        // sealed frame already purged is not opened at all, so a retired
        // key is not needed for entries a snapshot covers.
        let (index, entry) = if sealed {
            let (index, sealed_entry) = split_sealed(&payload)
                .ok_or_else(|| damaged(format!("sealed entry at byte {pos} has no index")))?;
            if purged.is_some_and(|p| index <= p) {
                (index, None)
            } else {
                let plain = unseal(keyring, &entry_aad(index), sealed_entry, path)?;
                let entry: Entry = postcard::from_bytes(&plain)
                    .map_err(|e| damaged(format!("entry at byte {pos}: {e}")))?;
                if entry.log_id.index != index {
                    return Err(damaged(format!(
                        "sealed entry at byte {pos} claims index {index} but holds {}",
                        entry.log_id.index
                    )));
                }
                (index, Some(entry))
            }
        } else {
            let entry: Entry = postcard::from_bytes(&payload)
                .map_err(|e| damaged(format!("entry at byte {pos}: {e}")))?;
            (entry.log_id.index, Some(entry))
        };
        if let Some(prev) = previous
            && index != prev + 1
        {
            return Err(damaged(format!(
                "entry {index} at byte {pos} follows entry {prev}"
            )));
        }
        previous = Some(index);
        if let Some(entry) = entry
            && purged.is_none_or(|p| index > p)
        {
            positions.insert(index, pos);
            entries.insert(index, entry);
        }
        pos += FRAME_HEADER_BYTES + u64::from(len);
    }
    if pos < size {
        let f = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io("open", path))?;
        f.set_len(pos).map_err(io("truncate", path))?;
        f.sync_all().map_err(io("fsync", path))?;
    }
    Ok((entries, positions, pos))
}

fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Reads a small record file: `u32 crc32c | postcard payload`.
fn read_small<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, StoreError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("read", path)(e)),
    };
    let damaged = |reason: &str| StoreError::Damaged {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    if bytes.len() < 4 {
        return Err(damaged("shorter than its checksum"));
    }
    let (crc, payload) = bytes.split_at(4);
    if crc32c::crc32c(payload).to_be_bytes() != crc {
        return Err(damaged("checksum mismatch"));
    }
    postcard::from_bytes(payload)
        .map(Some)
        .map_err(|e| damaged(&e.to_string()))
}

/// Replaces a small record file atomically and durably.
fn write_small<T: Serialize>(path: &Path, value: &T) -> Result<(), StoreError> {
    let payload = postcard::to_stdvec(value).map_err(|e| StoreError::Damaged {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let mut bytes = crc32c::crc32c(&payload).to_be_bytes().to_vec();
    bytes.extend_from_slice(&payload);
    replace_file(path, &bytes)
}

/// Writes `bytes` to a temporary file, fsyncs it, renames it over `path`
/// and fsyncs the directory, so `path` is always either old or new.
pub(crate) fn replace_file(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).map_err(io("create", &tmp))?;
    f.write_all(bytes).map_err(io("write", &tmp))?;
    f.sync_all().map_err(io("fsync", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io("rename", path))?;
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io("fsync", dir))?;
    }
    Ok(())
}

fn frame(entry: &Entry, keyring: Option<&Keyring>) -> Result<Vec<u8>, StoreError> {
    let mut payload = postcard::to_stdvec(entry).map_err(|e| StoreError::Damaged {
        path: PathBuf::from(LOG_FILE),
        reason: format!("cannot encode entry {}: {e}", entry.log_id),
    })?;
    let mut flag = 0;
    if let Some(k) = keyring {
        let index = entry.log_id.index;
        let sealed =
            k.seal(&entry_aad(index), &payload)
                .map_err(|source| StoreError::Encryption {
                    path: PathBuf::from(LOG_FILE),
                    source,
                })?;
        payload = index.to_be_bytes().to_vec();
        payload.extend_from_slice(&sealed);
        flag = SEALED_FRAME_BIT;
    }
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|l| *l <= MAX_ENTRY_BYTES)
        .ok_or_else(|| StoreError::Damaged {
            path: PathBuf::from(LOG_FILE),
            reason: format!(
                "entry {} is {} bytes, over the {MAX_ENTRY_BYTES}-byte bound",
                entry.log_id,
                payload.len()
            ),
        })?;
    let mut out = Vec::with_capacity(payload.len() + FRAME_HEADER_BYTES as usize);
    out.extend_from_slice(&(len | flag).to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&payload).to_be_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

impl LogFile {
    fn append(&mut self, frames: &[(u64, Vec<u8>)]) -> Result<(), StoreError> {
        for (index, bytes) in frames {
            self.file
                .write_all(bytes)
                .map_err(io("write", &self.path))?;
            self.positions.insert(*index, self.len);
            self.len += bytes.len() as u64;
        }
        self.file.sync_data().map_err(io("fsync", &self.path))
    }

    fn truncate_from(&mut self, index: u64) -> Result<(), StoreError> {
        let Some(&pos) = self.positions.get(&index) else {
            return Ok(());
        };
        self.file.set_len(pos).map_err(io("truncate", &self.path))?;
        self.file.sync_data().map_err(io("fsync", &self.path))?;
        self.positions.split_off(&index);
        self.len = pos;
        Ok(())
    }

    /// Forgets frames up to `index`; rewrites the file without them once
    /// they are most of it.
    fn purge_upto(&mut self, index: u64) -> Result<(), StoreError> {
        let keep = self.positions.split_off(&(index + 1));
        self.positions = keep;
        let start = self.positions.values().next().copied().unwrap_or(self.len);
        if start < MIN_COMPACT_BYTES || start < self.len / 2 {
            return Ok(());
        }
        let mut rest = Vec::with_capacity((self.len - start) as usize);
        {
            let mut f = File::open(&self.path).map_err(io("open", &self.path))?;
            std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(start))
                .map_err(io("seek", &self.path))?;
            f.read_to_end(&mut rest).map_err(io("read", &self.path))?;
        }
        replace_file(&self.path, &rest)?;
        self.file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(io("open", &self.path))?;
        for pos in self.positions.values_mut() {
            *pos -= start;
        }
        self.len -= start;
        tracing::info!(dropped_bytes = start, "raft log file compacted");
        Ok(())
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + std::fmt::Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        Ok(self.entries_in(range))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let memory = lock(&self.memory);
        let last = memory
            .entries
            .values()
            .next_back()
            .map(|e| e.log_id)
            .or(memory.last_purged);
        Ok(LogState {
            last_purged_log_id: memory.last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> LogStore {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let vote = *vote;
        self.blocking("raft-save-vote", move |s| {
            write_small(&s.dir.join(VOTE_FILE), &vote)
        })
        .await?;
        lock(&self.memory).vote = Some(vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(lock(&self.memory).vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.blocking("raft-save-committed", move |s| {
            write_small(&s.dir.join(COMMITTED_FILE), &committed)
        })
        .await?;
        lock(&self.memory).committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(lock(&self.memory).committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let mut frames = Vec::with_capacity(entries.len());
        for entry in &entries {
            frames.push((
                entry.log_id.index,
                frame(entry, self.keyring.as_deref()).map_err(log_error)?,
            ));
        }
        {
            let mut memory = lock(&self.memory);
            for entry in entries {
                memory.entries.insert(entry.log_id.index, entry);
            }
        }
        // openraft awaits each storage call before the next, so writing
        // here, before returning, keeps every write in log order.
        let written = self
            .blocking("raft-append", move |s| lock(&s.file).append(&frames))
            .await;
        match written {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                tracing::error!("raft log append failed: {e}");
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(e)
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let index = log_id.index;
        lock(&self.memory).entries.split_off(&index);
        self.blocking("raft-truncate", move |s| lock(&s.file).truncate_from(index))
            .await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.blocking("raft-purge", move |s| {
            write_small(&s.dir.join(PURGED_FILE), &log_id)?;
            lock(&s.file).purge_upto(log_id.index)
        })
        .await?;
        let mut memory = lock(&self.memory);
        let keep = memory.entries.split_off(&(log_id.index + 1));
        memory.entries = keep;
        memory.last_purged = Some(log_id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, EntryPayload};

    fn entry(term: u64, index: u64, n: u8) -> Entry {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
            payload: EntryPayload::Normal(crate::Proposal {
                records: vec![bytes::Bytes::from(vec![n; 10])],
            }),
        }
    }

    fn write_direct(store: &LogStore, entries: &[Entry]) {
        let frames: Vec<_> = entries
            .iter()
            .map(|e| {
                let bytes = frame(e, store.keyring.as_deref()).expect("frame");
                (e.log_id.index, bytes)
            })
            .collect();
        lock(&store.file).append(&frames).expect("append");
        let mut memory = lock(&store.memory);
        for e in entries {
            memory.entries.insert(e.log_id.index, e.clone());
        }
    }

    #[test]
    fn entries_survive_reopen_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = LogStore::open(dir.path(), None).expect("open");
            assert!(store.is_pristine());
            write_direct(&store, &[entry(1, 1, 1), entry(1, 2, 2), entry(2, 3, 3)]);
        }
        let path = dir.path().join(RAFT_DIR).join(LOG_FILE);
        let whole = std::fs::metadata(&path).expect("stat").len();
        // A crash in the middle of the last frame.
        OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_len(whole - 3))
            .expect("cut");
        let store = LogStore::open(dir.path(), None).expect("reopen");
        let indexes: Vec<u64> = store
            .entries_in(..)
            .iter()
            .map(|e| e.log_id.index)
            .collect();
        assert_eq!(indexes, vec![1, 2]);
        // New entries continue after the cut.
        write_direct(&store, &[entry(2, 3, 9)]);
        drop(store);
        let store = LogStore::open(dir.path(), None).expect("reopen again");
        let entries = store.entries_in(..);
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[2], entry(2, 3, 9));
    }

    #[test]
    fn a_damaged_frame_in_the_middle_cuts_the_log_there() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = LogStore::open(dir.path(), None).expect("open");
            write_direct(&store, &[entry(1, 1, 1), entry(1, 2, 2), entry(1, 3, 3)]);
        }
        let path = dir.path().join(RAFT_DIR).join(LOG_FILE);
        let mut bytes = std::fs::read(&path).expect("read");
        let second = frame(&entry(1, 1, 1), None).expect("frame").len();
        bytes[second + 12] ^= 0xff;
        std::fs::write(&path, &bytes).expect("write");
        let store = LogStore::open(dir.path(), None).expect("reopen");
        assert_eq!(store.entries_in(..).len(), 1);
    }

    #[tokio::test]
    async fn truncate_purge_and_vote_persist() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut store = LogStore::open(dir.path(), None).expect("open");
            write_direct(
                &store,
                &(1..=6).map(|i| entry(1, i, i as u8)).collect::<Vec<_>>(),
            );
            store
                .truncate(entry(1, 5, 0).log_id)
                .await
                .expect("truncate");
            store.purge(entry(1, 2, 0).log_id).await.expect("purge");
            let vote = Vote::new(3, 2);
            store.save_vote(&vote).await.expect("vote");
            let state = store.get_log_state().await.expect("state");
            assert_eq!(state.last_log_id.map(|l| l.index), Some(4));
            assert_eq!(state.last_purged_log_id.map(|l| l.index), Some(2));
        }
        let mut store = LogStore::open(dir.path(), None).expect("reopen");
        assert!(!store.is_pristine());
        let indexes: Vec<u64> = store
            .entries_in(..)
            .iter()
            .map(|e| e.log_id.index)
            .collect();
        assert_eq!(indexes, vec![3, 4]);
        assert_eq!(
            store.read_vote().await.expect("vote"),
            Some(Vote::new(3, 2))
        );
        let state = store.get_log_state().await.expect("state");
        assert_eq!(state.last_purged_log_id.map(|l| l.index), Some(2));
    }

    #[tokio::test]
    async fn a_mostly_purged_file_is_rewritten_without_the_prefix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let big = |i: u64| Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), i),
            payload: EntryPayload::Normal(crate::Proposal {
                records: vec![bytes::Bytes::from(vec![7u8; 300 * 1024])],
            }),
        };
        let path = dir.path().join(RAFT_DIR).join(LOG_FILE);
        {
            let mut store = LogStore::open(dir.path(), None).expect("open");
            write_direct(&store, &(1..=8).map(big).collect::<Vec<_>>());
            let before = std::fs::metadata(&path).expect("stat").len();
            store.purge(big(6).log_id).await.expect("purge");
            let after = std::fs::metadata(&path).expect("stat").len();
            assert!(after < before / 3, "{after} of {before} bytes kept");
            write_direct(&store, &[big(9)]);
        }
        let store = LogStore::open(dir.path(), None).expect("reopen");
        let indexes: Vec<u64> = store
            .entries_in(..)
            .iter()
            .map(|e| e.log_id.index)
            .collect();
        assert_eq!(indexes, vec![7, 8, 9]);
    }

    const SECRET: &[u8] = b"secret-topic-name";

    fn keyring(keys: &[(u32, u8)], active: u32) -> Option<Arc<Keyring>> {
        let keys = keys.iter().map(|&(id, b)| (id, [b; 32])).collect();
        Some(Arc::new(Keyring::new(keys, active).expect("keyring")))
    }

    fn secret_entry(index: u64) -> Entry {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(crate::Proposal {
                records: vec![bytes::Bytes::from_static(SECRET)],
            }),
        }
    }

    fn log_bytes(dir: &Path) -> Vec<u8> {
        std::fs::read(dir.join(RAFT_DIR).join(LOG_FILE)).expect("read log")
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    fn open_error(dir: &Path, keys: Option<Arc<Keyring>>) -> EncryptionError {
        match LogStore::open(dir, keys) {
            Err(StoreError::Encryption { source, .. }) => source,
            other => panic!("expected an encryption error, got {other:?}"),
        }
    }

    #[test]
    fn sealed_entries_round_trip_and_leave_no_plaintext_on_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let entries = [secret_entry(1), secret_entry(2), secret_entry(3)];
        {
            let store = LogStore::open(dir.path(), keyring(&[(1, 0x11)], 1)).expect("open");
            write_direct(&store, &entries);
        }
        let raw = log_bytes(dir.path());
        assert!(!contains(&raw, SECRET), "plaintext in the raft log");
        // Each frame is flagged as sealed.
        assert_ne!(raw[0] & 0x80, 0);
        let store = LogStore::open(dir.path(), keyring(&[(1, 0x11)], 1)).expect("reopen");
        assert_eq!(store.entries_in(..), entries.to_vec());
        // Without encryption the same entries are plain: the check above
        // can fail.
        let plain = tempfile::tempdir().expect("tempdir");
        let store = LogStore::open(plain.path(), None).expect("open");
        write_direct(&store, &entries);
        assert!(contains(&log_bytes(plain.path()), SECRET));
    }

    #[test]
    fn a_missing_or_wrong_key_refuses_to_open_naming_the_key_id() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = LogStore::open(dir.path(), keyring(&[(7, 0x11)], 7)).expect("open");
            write_direct(&store, &[secret_entry(1), secret_entry(2)]);
        }
        let before = log_bytes(dir.path());
        assert!(matches!(
            open_error(dir.path(), None),
            EncryptionError::SealedKeyUnavailable { key_id: 7 }
        ));
        assert!(matches!(
            open_error(dir.path(), keyring(&[(8, 0x11)], 8)),
            EncryptionError::SealedKeyUnavailable { key_id: 7 }
        ));
        let wrong = open_error(dir.path(), keyring(&[(7, 0x99)], 7));
        assert!(
            matches!(
                wrong,
                EncryptionError::SealedAuthenticationFailed { key_id: 7 }
            ),
            "{wrong}"
        );
        assert!(wrong.to_string().contains("key id 7"), "{wrong}");
        // A refused open never cuts the log as if it were torn.
        assert_eq!(log_bytes(dir.path()), before);
    }

    #[test]
    fn rotation_keeps_old_entries_readable_and_seals_new_ones_with_the_active_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            // Written before encryption was on: stays readable.
            let store = LogStore::open(dir.path(), None).expect("open");
            write_direct(&store, &[entry(1, 1, 1)]);
        }
        {
            let store = LogStore::open(dir.path(), keyring(&[(1, 0x11)], 1)).expect("key 1");
            write_direct(&store, &[secret_entry(2)]);
        }
        {
            let both = keyring(&[(1, 0x11), (2, 0x22)], 2);
            let store = LogStore::open(dir.path(), both).expect("keys 1 and 2");
            write_direct(&store, &[secret_entry(3)]);
        }
        let both = keyring(&[(1, 0x11), (2, 0x22)], 2);
        let store = LogStore::open(dir.path(), both).expect("reopen");
        assert_eq!(
            store.entries_in(..),
            vec![entry(1, 1, 1), secret_entry(2), secret_entry(3)]
        );
        drop(store);
        // Frames name their key: entry 2 under key 1, entry 3 under key 2.
        let raw = log_bytes(dir.path());
        let first = frame(&entry(1, 1, 1), None).expect("frame").len();
        let second_len =
            u32::from_be_bytes(raw[first..first + 4].try_into().expect("len")) & !SEALED_FRAME_BIT;
        let key_at = |frame_at: usize| {
            let at = frame_at + FRAME_HEADER_BYTES as usize + SEALED_INDEX_BYTES;
            u32::from_be_bytes(raw[at..at + 4].try_into().expect("key id"))
        };
        assert_eq!(key_at(first), 1);
        assert_eq!(
            key_at(first + FRAME_HEADER_BYTES as usize + second_len as usize),
            2
        );
        // Dropping key 1 while entries still need it is refused.
        assert!(matches!(
            open_error(dir.path(), keyring(&[(2, 0x22)], 2)),
            EncryptionError::SealedKeyUnavailable { key_id: 1 }
        ));
    }

    #[test]
    fn a_torn_sealed_tail_is_cut_like_a_plain_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = LogStore::open(dir.path(), keyring(&[(1, 0x11)], 1)).expect("open");
            write_direct(&store, &[secret_entry(1), secret_entry(2)]);
        }
        let path = dir.path().join(RAFT_DIR).join(LOG_FILE);
        let whole = std::fs::metadata(&path).expect("stat").len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_len(whole - 5))
            .expect("cut");
        let store = LogStore::open(dir.path(), keyring(&[(1, 0x11)], 1)).expect("reopen");
        assert_eq!(store.entries_in(..), vec![secret_entry(1)]);
    }

    #[test]
    fn purged_sealed_entries_are_skipped_without_their_retired_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = LogStore::open(dir.path(), keyring(&[(1, 0x11)], 1)).expect("key 1");
            write_direct(&store, &[secret_entry(1), secret_entry(2)]);
        }
        {
            let both = keyring(&[(1, 0x11), (2, 0x22)], 2);
            let store = LogStore::open(dir.path(), both).expect("keys 1 and 2");
            write_direct(&store, &[secret_entry(3)]);
        }
        // Without a snapshot covering them, entries 1 and 2 need key 1.
        assert!(matches!(
            open_error(dir.path(), keyring(&[(2, 0x22)], 2)),
            EncryptionError::SealedKeyUnavailable { key_id: 1 }
        ));
        // Once purged (a snapshot covers them), key 1 can be retired.
        let purged = secret_entry(2).log_id;
        write_small(&dir.path().join(RAFT_DIR).join(PURGED_FILE), &purged).expect("purged");
        let store = LogStore::open(dir.path(), keyring(&[(2, 0x22)], 2)).expect("key 2 only");
        assert_eq!(store.entries_in(..), vec![secret_entry(3)]);
    }
}
