//! The replicated state machine: committed entries applied to the
//! metadata image, snapshots of it, and each applied entry published to
//! the node's listeners.
//!
//! The image is not persisted on every apply. A snapshot is: on start the
//! image is the last snapshot's, and openraft re-applies the committed
//! entries after it from the log (the committed id is saved, so a restarted
//! node replays without waiting to hear from a leader).
//!
//! Snapshot file (`__raft/snapshot`), also the bytes sent to a follower:
//!
//! ```text
//! magic "SLRS" | version u8 = 1 | meta length u32 | meta (postcard)
//! | image snapshot ("SLMS", sluice_metadata::snapshot) | crc32c u32 of all before
//! ```
//!
//! With encryption at rest on, the file holds instead
//! `magic "SLRE" | version u8 = 1 | sealed unit` (`key id | nonce |
//! ciphertext | tag`, see `sluice_log::encryption::Keyring::seal`) whose
//! plaintext is the snapshot above. Only the file is sealed: the bytes
//! sent to a follower are the plain snapshot (the controller listener's
//! TLS protects them in transit), and each node seals with its own keys.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{
    AnyError, BasicNode, EntryPayload, RaftSnapshotBuilder, StorageIOError, StoredMembership,
};
use sluice_metadata::codec::{self, Decoded};
use sluice_metadata::{MetadataDelta, MetadataImage, MetadataRecord};
use tokio::sync::{mpsc, watch};

use sluice_log::encryption::Keyring;

use crate::store::{RAFT_DIR, StoreError, replace_file, unseal};
use crate::{Applied, Entry, LogId, NodeId, Proposal, StorageError, TypeConfig};

const SNAPSHOT_FILE: &str = "snapshot";
const MAGIC: &[u8; 4] = b"SLRS";
const VERSION: u8 = 1;
/// Magic of a sealed snapshot file.
const SEALED_MAGIC: &[u8; 4] = b"SLRE";
/// Associated data of a sealed snapshot: a sealed log entry never opens
/// as a snapshot, nor the reverse.
const SNAPSHOT_AAD: &[u8] = b"sluice raft snapshot v1";

/// The bytes of the snapshot file for snapshot `plain`: sealed with the
/// active key when encryption is on.
fn snapshot_file_bytes(keyring: Option<&Keyring>, plain: &[u8]) -> Result<Vec<u8>, String> {
    let Some(k) = keyring else {
        return Ok(plain.to_vec());
    };
    let sealed = k.seal(SNAPSHOT_AAD, plain).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(5 + sealed.len());
    out.extend_from_slice(SEALED_MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// The plain snapshot in a snapshot file's bytes, opening a sealed one.
fn snapshot_from_file(
    keyring: Option<&Keyring>,
    bytes: Vec<u8>,
    path: &Path,
) -> Result<Vec<u8>, StoreError> {
    match bytes.strip_prefix(SEALED_MAGIC.as_slice()) {
        Some([VERSION, sealed @ ..]) => unseal(keyring, SNAPSHOT_AAD, sealed, path),
        Some(_) => Err(StoreError::Damaged {
            path: path.to_owned(),
            reason: "sealed snapshot of an unknown version".into(),
        }),
        None => Ok(bytes),
    }
}

/// openraft's snapshot metadata for this cluster.
pub type Meta = SnapshotMeta<NodeId, BasicNode>;
/// Membership as stored with the applied state.
pub type Membership = StoredMembership<NodeId, BasicNode>;

/// One applied entry, on its way to the listeners.
#[derive(Debug)]
pub struct Publication {
    /// Its log index.
    pub index: u64,
    /// What it changed; `None` for entries that change no metadata (leader
    /// blanks, membership changes) and refused ones.
    pub delta: Option<MetadataDelta>,
    /// The image after it.
    pub image: Arc<MetadataImage>,
}

/// The image, shared between the state machine (which swaps it) and
/// readers (which clone the `Arc`).
#[derive(Debug)]
pub struct SharedImage {
    image: RwLock<Arc<MetadataImage>>,
}

impl SharedImage {
    /// The current image.
    pub fn get(&self) -> Arc<MetadataImage> {
        match self.image.read() {
            Ok(g) => Arc::clone(&g),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }

    fn set(&self, image: Arc<MetadataImage>) {
        match self.image.write() {
            Ok(mut g) => *g = image,
            Err(p) => *p.into_inner() = image,
        }
    }
}

/// A snapshot held in memory: its metadata and its encoded bytes.
#[derive(Debug, Clone)]
struct StoredSnapshot {
    meta: Meta,
    bytes: Vec<u8>,
}

/// The state machine openraft drives.
#[derive(Debug)]
pub struct MetadataStateMachine {
    dir: PathBuf,
    image: Arc<SharedImage>,
    last_applied: Option<LogId>,
    membership: Membership,
    snapshot: Arc<Mutex<Option<StoredSnapshot>>>,
    publish: mpsc::UnboundedSender<Publication>,
    applied: watch::Sender<u64>,
    /// Seals the snapshot file when encryption at rest is on.
    keyring: Option<Arc<Keyring>>,
}

fn sm_error(e: impl std::fmt::Display) -> StorageError {
    StorageError::from(StorageIOError::write_state_machine(AnyError::error(
        e.to_string(),
    )))
}

impl MetadataStateMachine {
    /// Opens the state machine under `data_dir`: the last snapshot, if
    /// any, else `seed` (the image of a single-node metadata log this node
    /// is upgrading from, or an empty one). Returns it with the shared image,
    /// the stream of publications and the applied-index watch. With
    /// `keyring`, snapshot files are sealed, and a sealed one needs its key.
    #[allow(clippy::type_complexity)]
    pub fn open(
        data_dir: &Path,
        seed: MetadataImage,
        keyring: Option<Arc<Keyring>>,
    ) -> Result<
        (
            MetadataStateMachine,
            Arc<SharedImage>,
            mpsc::UnboundedReceiver<Publication>,
            watch::Receiver<u64>,
        ),
        StoreError,
    > {
        let dir = data_dir.join(RAFT_DIR);
        std::fs::create_dir_all(&dir).map_err(|source| StoreError::Io {
            op: "create",
            path: dir.clone(),
            source,
        })?;
        let path = dir.join(SNAPSHOT_FILE);
        let stored = match std::fs::read(&path) {
            Ok(bytes) => {
                let bytes = snapshot_from_file(keyring.as_deref(), bytes, &path)?;
                let (meta, image) =
                    decode_snapshot_file(&bytes).map_err(|reason| StoreError::Damaged {
                        path: path.clone(),
                        reason,
                    })?;
                Some((meta, image, bytes))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(StoreError::Io {
                    op: "read",
                    path,
                    source,
                });
            }
        };
        let (image, last_applied, membership, snapshot) = match stored {
            Some((meta, image, bytes)) => (
                image,
                meta.last_log_id,
                meta.last_membership.clone(),
                Some(StoredSnapshot { meta, bytes }),
            ),
            None => (seed, None, Membership::default(), None),
        };
        let applied_index = last_applied.map_or(0, |l| l.index);
        let shared = Arc::new(SharedImage {
            image: RwLock::new(Arc::new(image)),
        });
        let (publish, publications) = mpsc::unbounded_channel();
        let (applied, applied_rx) = watch::channel(applied_index);
        Ok((
            MetadataStateMachine {
                dir,
                image: Arc::clone(&shared),
                last_applied,
                membership,
                snapshot: Arc::new(Mutex::new(snapshot)),
                publish,
                applied,
                keyring,
            },
            shared,
            publications,
            applied_rx,
        ))
    }

    fn apply_proposal(
        &mut self,
        proposal: &Proposal,
        index: u64,
    ) -> (Applied, Option<MetadataDelta>) {
        let before = self.image.get();
        let records = match decode_records(proposal) {
            Ok(records) => records,
            Err(reason) => {
                tracing::error!(index, "metadata entry does not decode, skipped: {reason}");
                return (
                    Applied {
                        refused: Some(reason),
                    },
                    None,
                );
            }
        };
        let offset = index as i64;
        match before.with_change(&records, offset, offset + 1) {
            Ok(after) => {
                let delta = MetadataDelta::of(&before, &records, &after);
                self.image.set(Arc::new(after));
                (Applied::default(), Some(delta))
            }
            Err(e) => {
                // Every node applies the same entries to the same image, so
                // every node skips this one alike.
                tracing::error!(index, "metadata entry does not apply, skipped: {e}");
                (
                    Applied {
                        refused: Some(e.to_string()),
                    },
                    None,
                )
            }
        }
    }

    fn announce(&self, index: u64, delta: Option<MetadataDelta>) {
        let image = self.image.get();
        // The receiver lives as long as the quorum; a send fails only at
        // shutdown, when nobody waits for publications.
        let _ = self.publish.send(Publication {
            index,
            delta,
            image,
        });
        self.applied.send_replace(index);
    }
}

/// Decodes a proposal's records; markers have no place in one.
pub fn decode_records(proposal: &Proposal) -> Result<Vec<MetadataRecord>, String> {
    proposal
        .records
        .iter()
        .enumerate()
        .map(|(i, value)| match codec::decode(value) {
            Ok(Decoded::Record(record)) => Ok(record),
            Ok(other) => Err(format!("record {i} is a marker ({other:?})")),
            Err(e) => Err(format!("record {i}: {e}")),
        })
        .collect()
}

/// Encodes a change's records as a proposal.
pub fn encode_records(records: &[MetadataRecord]) -> Result<Proposal, codec::CodecError> {
    let records = records
        .iter()
        .map(|r| codec::encode(r).map(bytes::Bytes::from))
        .collect::<Result<_, _>>()?;
    Ok(Proposal { records })
}

fn encode_snapshot_file(meta: &Meta, image: &MetadataImage) -> Result<Vec<u8>, String> {
    let meta_bytes = postcard::to_stdvec(meta).map_err(|e| e.to_string())?;
    let image_bytes =
        sluice_metadata::snapshot::encode_snapshot(image).map_err(|e| e.to_string())?;
    let meta_len = u32::try_from(meta_bytes.len()).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(13 + meta_bytes.len() + image_bytes.len());
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&meta_len.to_be_bytes());
    out.extend_from_slice(&meta_bytes);
    out.extend_from_slice(&image_bytes);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    Ok(out)
}

/// Checks and decodes a snapshot file (or the bytes a leader sent).
pub fn decode_snapshot_file(bytes: &[u8]) -> Result<(Meta, MetadataImage), String> {
    if bytes.len() < 13 || &bytes[..4] != MAGIC || bytes[4] != VERSION {
        return Err("not a raft snapshot (or an unknown version)".into());
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32c::crc32c(body).to_be_bytes() != crc {
        return Err("snapshot checksum mismatch".into());
    }
    let meta_len = u32::from_be_bytes([body[5], body[6], body[7], body[8]]) as usize;
    let rest = &body[9..];
    if meta_len > rest.len() {
        return Err("snapshot metadata length past the end".into());
    }
    let (meta_bytes, image_bytes) = rest.split_at(meta_len);
    let meta: Meta = postcard::from_bytes(meta_bytes).map_err(|e| e.to_string())?;
    let image =
        sluice_metadata::snapshot::decode_snapshot(image_bytes).map_err(|e| e.to_string())?;
    Ok((meta, image))
}

/// Builds a snapshot of the state as it was when the builder was made.
#[derive(Debug)]
pub struct SnapshotBuilder {
    dir: PathBuf,
    image: Arc<MetadataImage>,
    last_applied: Option<LogId>,
    membership: Membership,
    snapshot: Arc<Mutex<Option<StoredSnapshot>>>,
    keyring: Option<Arc<Keyring>>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let meta = Meta {
            last_log_id: self.last_applied,
            last_membership: self.membership.clone(),
            snapshot_id: format!(
                "{}-{}",
                self.last_applied.map_or(0, |l| l.leader_id.term),
                self.last_applied.map_or(0, |l| l.index)
            ),
        };
        let bytes = encode_snapshot_file(&meta, &self.image).map_err(sm_error)?;
        let path = self.dir.join(SNAPSHOT_FILE);
        let to_write = snapshot_file_bytes(self.keyring.as_deref(), &bytes).map_err(sm_error)?;
        sluice_runtime::blocking("raft-snapshot", move || replace_file(&path, &to_write))
            .await
            .map_err(sm_error)?
            .map_err(sm_error)?;
        tracing::info!(
            last = ?meta.last_log_id,
            bytes = bytes.len(),
            "metadata snapshot written"
        );
        *self
            .snapshot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(StoredSnapshot {
            meta: meta.clone(),
            bytes: bytes.clone(),
        });
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for MetadataStateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, Membership), StorageError> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut out = Vec::new();
        for entry in entries {
            let index = entry.log_id.index;
            self.last_applied = Some(entry.log_id);
            let (applied, delta) = match &entry.payload {
                EntryPayload::Blank => (Applied::default(), None),
                EntryPayload::Normal(proposal) => self.apply_proposal(proposal, index),
                EntryPayload::Membership(m) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), m.clone());
                    (Applied::default(), None)
                }
            };
            self.announce(index, delta);
            out.push(applied);
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder {
            dir: self.dir.clone(),
            image: self.image.get(),
            last_applied: self.last_applied,
            membership: self.membership.clone(),
            snapshot: Arc::clone(&self.snapshot),
            keyring: self.keyring.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let bytes = snapshot.into_inner();
        let (_, image) = decode_snapshot_file(&bytes).map_err(sm_error)?;
        let path = self.dir.join(SNAPSHOT_FILE);
        let to_write = snapshot_file_bytes(self.keyring.as_deref(), &bytes).map_err(sm_error)?;
        sluice_runtime::blocking("raft-install-snapshot", move || {
            replace_file(&path, &to_write)
        })
        .await
        .map_err(sm_error)?
        .map_err(sm_error)?;
        let before = self.image.get();
        let delta = MetadataDelta::between(&before, &image);
        self.image.set(Arc::new(image));
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        *self
            .snapshot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(StoredSnapshot {
            meta: meta.clone(),
            bytes,
        });
        tracing::info!(last = ?meta.last_log_id, "metadata snapshot installed from the leader");
        self.announce(meta.last_log_id.map_or(0, |l| l.index), Some(delta));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let stored = self
            .snapshot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        Ok(stored.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.bytes)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "secret-topic-name";

    fn keyring(id: u32, byte: u8) -> Option<Arc<Keyring>> {
        Some(Arc::new(
            Keyring::new(vec![(id, [byte; 32])], id).expect("keyring"),
        ))
    }

    /// The snapshot file of an image holding one topic named [`SECRET`].
    fn plain_snapshot() -> Vec<u8> {
        let records = vec![MetadataRecord::Topic {
            name: SECRET.to_owned(),
            topic_id: uuid::Uuid::new_v4(),
        }];
        let image = MetadataImage::default()
            .with_change(&records, 1, 2)
            .expect("image");
        encode_snapshot_file(&Meta::default(), &image).expect("encode")
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    fn write_file(dir: &Path, bytes: &[u8]) {
        let raft = dir.join(RAFT_DIR);
        std::fs::create_dir_all(&raft).expect("mkdir");
        std::fs::write(raft.join(SNAPSHOT_FILE), bytes).expect("write");
    }

    fn open_error(dir: &Path, keys: Option<Arc<Keyring>>) -> String {
        match MetadataStateMachine::open(dir, MetadataImage::default(), keys) {
            Err(e @ StoreError::Encryption { .. }) => e.to_string(),
            Err(e) => panic!("expected an encryption error, got {e}"),
            Ok(_) => panic!("a sealed snapshot opened without its key"),
        }
    }

    #[test]
    fn a_sealed_snapshot_file_holds_no_plaintext_and_opens_only_with_its_key() {
        let plain = plain_snapshot();
        assert!(contains(&plain, SECRET.as_bytes()), "the check can fail");
        let sealed = snapshot_file_bytes(keyring(3, 0x33).as_deref(), &plain).expect("seal");
        assert!(
            !contains(&sealed, SECRET.as_bytes()),
            "plaintext in the file"
        );
        assert_eq!(&sealed[..4], SEALED_MAGIC);
        // Without a keyring the file is the plain snapshot, unchanged.
        assert_eq!(snapshot_file_bytes(None, &plain).expect("plain"), plain);

        let dir = tempfile::tempdir().expect("tempdir");
        write_file(dir.path(), &sealed);
        let (_, image, _, _) =
            MetadataStateMachine::open(dir.path(), MetadataImage::default(), keyring(3, 0x33))
                .expect("opens with its key");
        assert!(image.get().topics.contains_key(SECRET));
        let missing = open_error(dir.path(), None);
        assert!(missing.contains("key id 3"), "{missing}");
        let wrong = open_error(dir.path(), keyring(3, 0x44));
        assert!(wrong.contains("fails authentication"), "{wrong}");
        // A sealed log entry is not a snapshot: the purposes differ.
        let entry = keyring(3, 0x33)
            .expect("keys")
            .seal(b"sluice raft log entry v1", &plain)
            .expect("seal");
        let mut forged = SEALED_MAGIC.to_vec();
        forged.push(VERSION);
        forged.extend_from_slice(&entry);
        write_file(dir.path(), &forged);
        let swapped = open_error(dir.path(), keyring(3, 0x33));
        assert!(swapped.contains("fails authentication"), "{swapped}");
    }
}
