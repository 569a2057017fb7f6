//! Encryption at rest: AES-256-GCM envelopes around record batches.
//!
//! Owns the [`Keyring`] (key ids and 256-bit keys, one of them active), the
//! per-batch envelope (encrypt on append, decrypt on read), the key-file
//! format and the data directory's encryption marker. It does no file I/O
//! on segments: the log calls [`Keyring::encrypt_batch`] before its
//! `pwrite` and [`decrypt_batches`] after its `pread`. The on-disk format
//! and the nonce argument are in `docs/design.md` ("Encryption at rest").
//!
//! An encrypted batch keeps the 61-byte Kafka header in the clear (recovery,
//! the indexes, retention and the producer state walk it) with attributes
//! bit [`ATTR_ENCRYPTED`] set, batchLength grown by
//! [`ENVELOPE_OVERHEAD_BYTES`] and the CRC recomputed over the stored bytes;
//! the records are replaced by `key id | nonce | ciphertext | tag`, with the
//! clear header as associated data.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use bytes::{Bytes, BytesMut};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, Tag, UnboundKey};
use sluice_records::BatchHeader;
use sluice_records::batch::{BATCH_HEADER_BYTES, LOG_OVERHEAD_BYTES, compute_crc};

/// Attributes bit 14 marks a stored batch as an encryption envelope. Kafka
/// uses bits 0-6; this bit never leaves the broker (reads strip it), and an
/// append carrying it is refused, so a client cannot forge an envelope.
pub const ATTR_ENCRYPTED: i16 = 0x4000;
/// Bytes of a key id in the envelope (big-endian u32).
pub const KEY_ID_BYTES: usize = 4;
/// AES-GCM's 96-bit nonce.
pub const NONCE_BYTES: usize = 12;
/// AES-GCM's 128-bit authentication tag.
pub const TAG_BYTES: usize = 16;
/// AES-256 key length.
pub const KEY_BYTES: usize = 32;
/// What the envelope adds to a batch: key id, nonce and tag.
pub const ENVELOPE_OVERHEAD_BYTES: usize = KEY_ID_BYTES + NONCE_BYTES + TAG_BYTES;
/// Most keys a key file may hold: rotation keeps old keys, but a key file
/// with thousands of entries is a mistake, not a rotation history.
pub const MAX_KEYS: usize = 1024;
/// Largest key file read, in bytes (a full [`MAX_KEYS`] file is ~80 KiB).
pub const MAX_KEY_FILE_BYTES: u64 = 1 << 20;
/// Name of the data directory's encryption marker.
pub const MARKER_FILE: &str = "encryption.state";
/// Environment variable that may carry keys instead of a key file.
pub const KEYS_ENV: &str = "SLUICE_ENCRYPTION_KEYS";

/// Associated data of a key-check value in the marker: binds it to its purpose.
const KEY_CHECK_AAD: &[u8] = b"sluice encryption key check v1";

/// A key id: the number written into every envelope.
pub type KeyId = u32;

/// Keys as configured: (id, 256-bit key) pairs.
pub type KeyList = Vec<(KeyId, [u8; KEY_BYTES])>;

pub use crate::error::EncryptionError;

/// The configured keys: id → AES-256-GCM cipher, and the active id new data uses.
#[derive(Clone)]
pub struct Keyring {
    keys: BTreeMap<KeyId, LessSafeKey>,
    active: KeyId,
}

impl fmt::Debug for Keyring {
    // Never print key material: ids only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .field("active", &self.active)
            .finish()
    }
}

impl PartialEq for Keyring {
    // Configs compare keyrings by ids; two keyrings built from the same
    // file are equal for the purpose of "did the log config change".
    fn eq(&self, other: &Self) -> bool {
        self.active == other.active && self.keys.keys().eq(other.keys.keys())
    }
}

impl Eq for Keyring {}

impl Keyring {
    /// Builds a keyring; `active` must be one of `keys`, and ids unique.
    pub fn new(
        keys: Vec<(KeyId, [u8; KEY_BYTES])>,
        active: KeyId,
    ) -> Result<Keyring, EncryptionError> {
        if keys.len() > MAX_KEYS {
            return Err(EncryptionError::BadKeyring(format!(
                "{} keys configured, at most {MAX_KEYS}",
                keys.len()
            )));
        }
        let mut map = BTreeMap::new();
        for (id, key) in keys {
            let cipher =
                LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).map_err(|_| {
                    EncryptionError::BadKeyring(format!("key id {id} is unusable"))
                })?);
            if map.insert(id, cipher).is_some() {
                return Err(EncryptionError::BadKeyring(format!(
                    "key id {id} is configured twice"
                )));
            }
        }
        if !map.contains_key(&active) {
            return Err(EncryptionError::BadKeyring(format!(
                "encryption.active_key_id = {active} names no configured key (configured: {:?})",
                map.keys().collect::<Vec<_>>()
            )));
        }
        Ok(Keyring { keys: map, active })
    }

    /// The key id new data is written with.
    pub fn active_key_id(&self) -> KeyId {
        self.active
    }

    /// Every configured key id, ascending.
    pub fn key_ids(&self) -> Vec<KeyId> {
        self.keys.keys().copied().collect()
    }

    /// Appends the envelope of `batch` (one whole, plain batch with its
    /// final offsets) to `out`. Control batches are copied unchanged: they
    /// hold only a marker type and a coordinator epoch, and recovery reads
    /// them to rebuild the producer state.
    pub fn encrypt_batch(&self, batch: &[u8], out: &mut Vec<u8>) -> Result<(), EncryptionError> {
        let header = BatchHeader::parse(batch).map_err(|_| EncryptionError::Malformed {
            position: 0,
            reason: "batch shorter than its header",
        })?;
        if header.attributes & ATTR_ENCRYPTED != 0 {
            return Err(EncryptionError::ReservedAttribute {
                base_offset: header.base_offset,
            });
        }
        if header.is_control() {
            out.extend_from_slice(batch);
            return Ok(());
        }
        let cipher = self
            .keys
            .get(&self.active)
            .ok_or(EncryptionError::KeyUnavailable {
                key_id: self.active,
                base_offset: header.base_offset,
            })?;
        let stored_length = batch.len() + ENVELOPE_OVERHEAD_BYTES - LOG_OVERHEAD_BYTES;
        let stored_length =
            i32::try_from(stored_length).map_err(|_| EncryptionError::Malformed {
                position: 0,
                reason: "batch too large to encrypt",
            })?;
        let nonce = fresh_nonce()?;
        let start = out.len();
        let mut stored = header;
        stored.batch_length = stored_length;
        stored.attributes |= ATTR_ENCRYPTED;
        stored.crc = 0;
        out.resize(start + BATCH_HEADER_BYTES, 0);
        stored.write_to(&mut out[start..]);
        out.extend_from_slice(&self.active.to_be_bytes());
        out.extend_from_slice(&nonce);
        let body = out.len();
        out.extend_from_slice(&batch[BATCH_HEADER_BYTES..]);
        let aad = envelope_aad(&out[start..body]);
        let tag = cipher
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&aad),
                &mut out[body..],
            )
            .map_err(|_| EncryptionError::Malformed {
                position: 0,
                reason: "batch too large for AES-GCM",
            })?;
        out.extend_from_slice(tag.as_ref());
        // The stored CRC covers the stored bytes, so recovery's framing and
        // torn-write checks work unchanged on envelopes.
        let crc = compute_crc(&out[start..]);
        out[start + 17..start + 21].copy_from_slice(&crc.to_be_bytes());
        Ok(())
    }

    /// Seals a unit of data kept outside record batches (the Raft log's
    /// entries and snapshots): `key id u32 | nonce | ciphertext | tag`
    /// under the active key, `aad` authenticated alongside (it binds the
    /// unit to its purpose; the key id is authenticated too). The nonce is
    /// random, as for batches.
    pub fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, EncryptionError> {
        let cipher = self
            .keys
            .get(&self.active)
            .ok_or(EncryptionError::SealedKeyUnavailable {
                key_id: self.active,
            })?;
        let nonce = fresh_nonce()?;
        let mut out = Vec::with_capacity(plain.len() + ENVELOPE_OVERHEAD_BYTES);
        out.extend_from_slice(&self.active.to_be_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plain);
        let tag = cipher
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(sealed_aad(aad, self.active)),
                &mut out[KEY_ID_BYTES + NONCE_BYTES..],
            )
            .map_err(|_| EncryptionError::Malformed {
                position: 0,
                reason: "unit too large for AES-GCM",
            })?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Opens what [`Keyring::seal`] made with the same `aad`: the plain
    /// bytes, or an error naming the key id when it is not configured or
    /// the tag does not verify (never unauthenticated bytes).
    pub fn unseal(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, EncryptionError> {
        let key_id = sealed_key_id(sealed)?;
        let cipher = self
            .keys
            .get(&key_id)
            .ok_or(EncryptionError::SealedKeyUnavailable { key_id })?;
        let body_at = KEY_ID_BYTES + NONCE_BYTES;
        let tag_at = sealed.len() - TAG_BYTES;
        let mut plain = sealed[body_at..tag_at].to_vec();
        let mut nonce = [0u8; NONCE_BYTES];
        nonce.copy_from_slice(&sealed[KEY_ID_BYTES..body_at]);
        Tag::try_from(&sealed[tag_at..])
            .and_then(|tag| {
                cipher.open_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(sealed_aad(aad, key_id)),
                    tag,
                    &mut plain,
                    0..,
                )
            })
            .map_err(|_| EncryptionError::SealedAuthenticationFailed { key_id })?;
        Ok(plain)
    }

    /// Decrypts one envelope (exactly one stored batch) into `out`, restoring the plain batch.
    fn decrypt_into(
        &self,
        stored: &[u8],
        header: &BatchHeader,
        out: &mut BytesMut,
    ) -> Result<(), EncryptionError> {
        decrypt_envelope(Some(self), stored, header, out)
    }

    /// A key-check value for `key_id`: a fresh nonce and the tag of an empty
    /// message, so a later start can tell the right key from a wrong one.
    fn key_check(&self, key_id: KeyId) -> Result<String, EncryptionError> {
        let cipher = self
            .keys
            .get(&key_id)
            .ok_or(EncryptionError::BadKeyring(format!(
                "key id {key_id} is not configured"
            )))?;
        let nonce = fresh_nonce()?;
        let tag = cipher
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(check_aad(key_id)),
                &mut [],
            )
            .map_err(|_| EncryptionError::BadKeyring("key check failed".into()))?;
        Ok(format!("{}:{}", hex::encode(nonce), hex::encode(tag)))
    }

    /// True if `check` (from [`Keyring::key_check`]) was made with this keyring's `key_id`.
    fn verify_key_check(&self, key_id: KeyId, check: &str) -> Option<bool> {
        let cipher = self.keys.get(&key_id)?;
        let (n, t) = check.split_once(':')?;
        let nonce: [u8; NONCE_BYTES] = hex::decode(n).ok()?.try_into().ok()?;
        let tag: [u8; TAG_BYTES] = hex::decode(t).ok()?.try_into().ok()?;
        let tag = Tag::try_from(&tag[..]).ok()?;
        Some(
            cipher
                .open_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(check_aad(key_id)),
                    tag,
                    &mut [],
                    0..,
                )
                .is_ok(),
        )
    }
}

/// The key id of a unit [`Keyring::seal`] made (to name it in errors even
/// without a keyring).
pub fn sealed_key_id(sealed: &[u8]) -> Result<KeyId, EncryptionError> {
    if sealed.len() < ENVELOPE_OVERHEAD_BYTES {
        return Err(EncryptionError::Malformed {
            position: 0,
            reason: "sealed unit shorter than key id, nonce and tag",
        });
    }
    let mut id = [0u8; KEY_ID_BYTES];
    id.copy_from_slice(&sealed[..KEY_ID_BYTES]);
    Ok(KeyId::from_be_bytes(id))
}

/// The associated data of a sealed unit: the caller's purpose, then the key id.
fn sealed_aad(aad: &[u8], key_id: KeyId) -> Vec<u8> {
    let mut out = Vec::with_capacity(aad.len() + KEY_ID_BYTES);
    out.extend_from_slice(aad);
    out.extend_from_slice(&key_id.to_be_bytes());
    out
}

/// A random 96-bit nonce from the OS CSPRNG. Random nonces under one key
/// are safe for far more batches than a key should ever seal (NIST SP
/// 800-38D's 2^32 limit); rotating the active key resets the count.
fn fresh_nonce() -> Result<[u8; NONCE_BYTES], EncryptionError> {
    let mut nonce = [0u8; NONCE_BYTES];
    getrandom::fill(&mut nonce).map_err(|e| EncryptionError::Random(e.to_string()))?;
    Ok(nonce)
}

fn check_aad(key_id: KeyId) -> Vec<u8> {
    let mut aad = KEY_CHECK_AAD.to_vec();
    aad.extend_from_slice(&key_id.to_be_bytes());
    aad
}

/// The associated data of an envelope: its clear header without the CRC
/// (bytes 0..17 and 21..61, the CRC is computed after the tag) and the
/// key id. The nonce is authenticated by GCM itself.
fn envelope_aad(clear: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(BATCH_HEADER_BYTES - 4 + KEY_ID_BYTES);
    aad.extend_from_slice(&clear[..17]);
    aad.extend_from_slice(&clear[21..BATCH_HEADER_BYTES + KEY_ID_BYTES]);
    aad
}

/// True if the stored batch with this header is an envelope.
pub fn is_envelope(header: &BatchHeader) -> bool {
    header.attributes & ATTR_ENCRYPTED != 0
}

fn decrypt_envelope(
    keyring: Option<&Keyring>,
    stored: &[u8],
    header: &BatchHeader,
    out: &mut BytesMut,
) -> Result<(), EncryptionError> {
    let min = BATCH_HEADER_BYTES + ENVELOPE_OVERHEAD_BYTES;
    if stored.len() < min || stored.len() != header.total_size() {
        return Err(EncryptionError::Malformed {
            position: 0,
            reason: "envelope shorter than header, key id, nonce and tag",
        });
    }
    let id_at = BATCH_HEADER_BYTES;
    let mut id = [0u8; KEY_ID_BYTES];
    id.copy_from_slice(&stored[id_at..id_at + KEY_ID_BYTES]);
    let key_id = KeyId::from_be_bytes(id);
    let base_offset = header.base_offset;
    let cipher =
        keyring
            .and_then(|k| k.keys.get(&key_id))
            .ok_or(EncryptionError::KeyUnavailable {
                key_id,
                base_offset,
            })?;
    let nonce_at = id_at + KEY_ID_BYTES;
    let body_at = nonce_at + NONCE_BYTES;
    let tag_at = stored.len() - TAG_BYTES;
    let start = out.len();
    let mut plain = *header;
    plain.batch_length = header.batch_length - ENVELOPE_OVERHEAD_BYTES as i32;
    plain.attributes &= !ATTR_ENCRYPTED;
    plain.crc = 0;
    out.resize(start + BATCH_HEADER_BYTES, 0);
    plain.write_to(&mut out[start..]);
    out.extend_from_slice(&stored[body_at..tag_at]);
    let aad = envelope_aad(&stored[..body_at]);
    let mut nonce = [0u8; NONCE_BYTES];
    nonce.copy_from_slice(&stored[nonce_at..body_at]);
    let ok = Tag::try_from(&stored[tag_at..]).and_then(|tag| {
        cipher.open_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&aad),
            tag,
            &mut out[start + BATCH_HEADER_BYTES..],
            0..,
        )
    });
    if ok.is_err() {
        // Never leave unauthenticated plaintext in the caller's buffer.
        out.truncate(start);
        return Err(EncryptionError::AuthenticationFailed {
            key_id,
            base_offset,
        });
    }
    // The producer's CRC covered exactly these plain bytes, so recomputing
    // it restores the batch the producer sent, byte for byte.
    let crc = compute_crc(&out[start..]);
    out[start + 17..start + 21].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// Turns stored batches (as read from a segment) into plain Kafka batches.
///
/// Plain batches pass through; if there is no envelope at all, `stored` is
/// returned as is, without a copy. An envelope without its key, or whose
/// tag fails, ends the result before it; if it is the first batch, the
/// result is the error. No byte of such an envelope reaches a client.
pub fn decrypt_batches(keyring: Option<&Keyring>, stored: Bytes) -> Result<Bytes, EncryptionError> {
    let mut pos = 0usize;
    let mut any = false;
    while pos < stored.len() {
        let header = parse_at(&stored, pos)?;
        let end = pos + header.total_size();
        if is_envelope(&header) {
            any = true;
        } else if keyring.is_some() && compute_crc(&stored[pos..end]) != header.crc {
            // With keys configured, a plain batch must still carry the CRC
            // it was appended with: an envelope whose bit 14 was cleared on
            // disk (damage, or tampering that did not also forge the CRC)
            // would otherwise be served as ciphertext posing as records.
            if pos == 0 {
                return Err(EncryptionError::Malformed {
                    position: pos,
                    reason: "plain batch fails its CRC in an encrypted log",
                });
            }
            return decrypt_batches(keyring, stored.slice(..pos));
        }
        pos = end;
    }
    if !any {
        return Ok(stored);
    }
    let mut out = BytesMut::with_capacity(stored.len());
    let mut pos = 0usize;
    while pos < stored.len() {
        let header = parse_at(&stored, pos)?;
        let end = pos + header.total_size();
        if is_envelope(&header) {
            if let Err(e) = decrypt_envelope(keyring, &stored[pos..end], &header, &mut out) {
                // Serve the whole batches before the bad one, as a read
                // that stopped there would; the next read starts at the
                // bad batch and gets the error.
                if out.is_empty() {
                    return Err(e);
                }
                return Ok(out.freeze());
            }
        } else {
            out.extend_from_slice(&stored[pos..end]);
        }
        pos = end;
    }
    Ok(out.freeze())
}

fn parse_at(buf: &[u8], pos: usize) -> Result<BatchHeader, EncryptionError> {
    let header = BatchHeader::parse(&buf[pos..]).map_err(|_| EncryptionError::Malformed {
        position: pos,
        reason: "partial batch header",
    })?;
    let size = header.total_size();
    if size < BATCH_HEADER_BYTES || pos + size > buf.len() {
        return Err(EncryptionError::Malformed {
            position: pos,
            reason: "batchLength runs past the read",
        });
    }
    Ok(header)
}

/// Decrypts one stored batch if it is an envelope (for the log's own record-level reads).
pub fn decrypt_one(keyring: Option<&Keyring>, stored: Bytes) -> Result<Bytes, EncryptionError> {
    let header = parse_at(&stored, 0)?;
    if !is_envelope(&header) {
        return Ok(stored);
    }
    let mut out = BytesMut::with_capacity(stored.len());
    match keyring {
        Some(k) => k.decrypt_into(&stored[..header.total_size()], &header, &mut out)?,
        None => decrypt_envelope(None, &stored, &header, &mut out)?,
    }
    Ok(out.freeze())
}

/// Parses keys: one per line, `<key id>:<64 hex digits>`; blank lines and
/// lines starting with `#` are skipped; `,` also separates entries (for
/// the environment variable). `source_name` names the origin in errors;
/// errors never quote key material.
pub fn parse_keys(text: &str, source_name: &str) -> Result<KeyList, EncryptionError> {
    let bad = |line: usize, reason: &'static str| EncryptionError::BadKeyLine {
        source_name: source_name.to_owned(),
        line,
        reason,
    };
    let mut keys = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        for entry in raw.split(',') {
            let entry = entry.trim();
            if entry.is_empty() || entry.starts_with('#') {
                continue;
            }
            let (id, hex_key) = entry
                .split_once(':')
                .ok_or(bad(i + 1, "expected <key id>:<64 hex digits>"))?;
            let id: KeyId = id
                .trim()
                .parse()
                .map_err(|_| bad(i + 1, "key id must be an integer 0..=4294967295"))?;
            let hex_key = hex_key.trim();
            if hex_key.len() != 2 * KEY_BYTES {
                return Err(bad(i + 1, "key must be 64 hex digits (256 bits)"));
            }
            let mut key = [0u8; KEY_BYTES];
            hex::decode_to_slice(hex_key, &mut key)
                .map_err(|_| bad(i + 1, "key must be 64 hex digits (256 bits)"))?;
            keys.push((id, key));
            if keys.len() > MAX_KEYS {
                return Err(bad(i + 1, "more than 1024 keys"));
            }
        }
    }
    Ok(keys)
}

/// Reads a key file: size-bounded, and `Ok(true)` in the second field if
/// its permissions let group or others read it (the caller warns).
pub fn read_key_file(path: &Path) -> Result<(KeyList, bool), EncryptionError> {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let io = |op| {
        let path = path.to_path_buf();
        move |source| EncryptionError::Io { op, path, source }
    };
    let file = std::fs::File::open(path).map_err(io("open"))?;
    let meta = file.metadata().map_err(io("stat"))?;
    if meta.len() > MAX_KEY_FILE_BYTES {
        return Err(EncryptionError::BadKeyring(format!(
            "key file {} is {} bytes, at most {MAX_KEY_FILE_BYTES}",
            path.display(),
            meta.len()
        )));
    }
    let too_open = meta.permissions().mode() & 0o077 != 0;
    let mut text = String::new();
    file.take(MAX_KEY_FILE_BYTES)
        .read_to_string(&mut text)
        .map_err(io("read"))?;
    Ok((parse_keys(&text, &path.display().to_string())?, too_open))
}

/// Checks the data directory's encryption marker against the keyring, and
/// records the active key in it.
///
/// The marker (`<data_dir>/encryption.state`) lists every key id that has
/// written data here, each with a key-check value. With encryption off
/// (`keyring` None) a marker listing keys refuses the start. With it on,
/// every listed key must be configured and pass its check; the active key
/// is added if new. Written atomically (temporary file, fsync, rename).
pub fn check_data_dir(data_dir: &Path, keyring: Option<&Keyring>) -> Result<(), EncryptionError> {
    let path = data_dir.join(MARKER_FILE);
    let recorded = read_marker(&path)?;
    let Some(keyring) = keyring else {
        if recorded.is_empty() {
            return Ok(());
        }
        return Err(EncryptionError::EncryptedButDisabled {
            key_ids: recorded.keys().copied().collect(),
            path,
        });
    };
    for (&key_id, check) in &recorded {
        match keyring.verify_key_check(key_id, check) {
            None if !keyring.keys.contains_key(&key_id) => {
                return Err(EncryptionError::MissingKey { path, key_id });
            }
            Some(true) => {}
            _ => return Err(EncryptionError::WrongKey { path, key_id }),
        }
    }
    if recorded.contains_key(&keyring.active) {
        return Ok(());
    }
    let mut recorded = recorded;
    recorded.insert(keyring.active, keyring.key_check(keyring.active)?);
    let mut text = String::from(
        "# Key ids that wrote data in this directory; see docs/security.md.\nversion=1\n",
    );
    for (id, check) in &recorded {
        text.push_str(&format!("key.{id}={check}\n"));
    }
    crate::checkpoint::write_atomic(data_dir, MARKER_FILE, &text).map_err(|e| EncryptionError::Io {
        op: "write",
        path: path.clone(),
        source: std::io::Error::other(e.to_string()),
    })
}

fn read_marker(path: &Path) -> Result<BTreeMap<KeyId, String>, EncryptionError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(source) => {
            return Err(EncryptionError::Io {
                op: "read",
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let bad = |reason| EncryptionError::BadMarker {
        path: path.to_path_buf(),
        reason,
    };
    let mut keys = BTreeMap::new();
    let mut version = false;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line == "version=1" {
            version = true;
            continue;
        }
        let (k, v) = line.split_once('=').ok_or(bad("a line is not key=value"))?;
        let id = k
            .strip_prefix("key.")
            .and_then(|id| id.parse::<KeyId>().ok())
            .ok_or(bad("unknown entry"))?;
        keys.insert(id, v.to_owned());
    }
    if !version {
        return Err(bad("missing version=1"));
    }
    Ok(keys)
}
