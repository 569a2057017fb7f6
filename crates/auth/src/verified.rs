//! A bounded memory of successful password checks against SCRAM
//! credentials, for callers that see the same password again and again
//! (HTTP basic authentication sends it on every request; each check is a
//! PBKDF2 of thousands of HMACs).
//!
//! Only successes are remembered, and only as a keyed hash: the entry for a
//! check is `HMAC-SHA-256(process key, user, password, mechanism, the
//! stored credential)`, with a random key drawn per process. No password
//! is stored, and the entries are useless to anyone without the key. The
//! stored credential is part of the hash, so a password change (a new
//! salt and new keys) or a deleted user can never match an old entry: the
//! caller looks the current credential up first and asks about that one.
//! A failed check is never remembered, so guessing still costs a full key
//! derivation every time (and the caller's failed-login limits still see
//! every failure).

use std::collections::HashMap;
use std::sync::Mutex;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::scram::{Credential, Mechanism, ScramError};

/// How many successful checks a [`VerifiedPasswords`] remembers by
/// default. Each entry is a 32-byte hash and a counter; 1024 covers every
/// user (and console or scraper) that logs in to one broker in practice,
/// while bounding the memory a stream of distinct valid logins can take.
pub const VERIFIED_PASSWORDS_MAX_ENTRIES: usize = 1024;

/// Bytes of the per-process HMAC key (SHA-256's block-size-independent
/// security level: 256 bits).
const KEY_BYTES: usize = 32;

/// The keyed hash naming one successful check.
type Tag = [u8; 32];

/// Remembered successful checks, least recently used evicted first.
pub struct VerifiedPasswords {
    /// HMAC key; random per process, never leaves it.
    key: [u8; KEY_BYTES],
    /// Most entries kept.
    capacity: usize,
    /// Held only to look up, insert or evict; never across a key derivation.
    entries: Mutex<Entries>,
}

/// The remembered tags with the tick of their last use.
#[derive(Default)]
struct Entries {
    last_used: HashMap<Tag, u64>,
    /// Advances on every hit and insert; orders entries by recency.
    clock: u64,
}

impl std::fmt::Debug for VerifiedPasswords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedPasswords")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl VerifiedPasswords {
    /// An empty memory of at most `capacity` entries, keyed by a fresh
    /// random key.
    pub fn new(capacity: usize) -> Result<VerifiedPasswords, ScramError> {
        let mut key = [0u8; KEY_BYTES];
        getrandom::fill(&mut key).map_err(|_| ScramError::NoRandomness)?;
        Ok(VerifiedPasswords::with_key(key, capacity))
    }

    /// An empty memory with a given key (tests).
    pub fn with_key(key: [u8; KEY_BYTES], capacity: usize) -> VerifiedPasswords {
        VerifiedPasswords {
            key,
            capacity,
            entries: Mutex::new(Entries::default()),
        }
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.lock().last_used.len()
    }

    /// True if nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `password` is `user`'s according to `credential`: true at
    /// once if this exact check succeeded before, else the credential's own
    /// (slow) check, remembered if it succeeds.
    pub fn verify(
        &self,
        user: &str,
        password: &[u8],
        mechanism: Mechanism,
        credential: &Credential,
    ) -> bool {
        self.verify_with(user, password, mechanism, credential, || {
            credential.verify_password(mechanism, password)
        })
    }

    /// [`VerifiedPasswords::verify`] with the slow check supplied, so a
    /// test can count how often it runs.
    fn verify_with(
        &self,
        user: &str,
        password: &[u8],
        mechanism: Mechanism,
        credential: &Credential,
        derive: impl FnOnce() -> bool,
    ) -> bool {
        let tag = self.tag(user, password, mechanism, credential);
        {
            let mut entries = self.lock();
            entries.clock += 1;
            let now = entries.clock;
            if let Some(used) = entries.last_used.get_mut(&tag) {
                *used = now;
                return true;
            }
        }
        // Outside the lock: the derivation takes milliseconds.
        if !derive() {
            return false;
        }
        self.remember(tag);
        true
    }

    fn remember(&self, tag: Tag) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.lock();
        entries.clock += 1;
        let now = entries.clock;
        if !entries.last_used.contains_key(&tag) && entries.last_used.len() >= self.capacity {
            // A linear scan for the least recently used: it runs only after
            // a key derivation, which costs far more than looking at
            // `capacity` entries.
            let oldest = entries
                .last_used
                .iter()
                .min_by_key(|(_, used)| **used)
                .map(|(t, _)| *t);
            if let Some(oldest) = oldest {
                entries.last_used.remove(&oldest);
            }
        }
        entries.last_used.insert(tag, now);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A panic while holding the lock cannot leave the map half-updated
        // in a way that matters: every entry is a valid past success.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The keyed hash of one check. Every variable-length field is
    /// length-prefixed, so no two different inputs share an encoding.
    fn tag(
        &self,
        user: &str,
        password: &[u8],
        mechanism: Mechanism,
        credential: &Credential,
    ) -> Tag {
        // An HMAC takes a key of any length, so this cannot fail; a
        // zero tag would only ever cause a miss.
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&self.key) else {
            return [0u8; 32];
        };
        let mut field = |bytes: &[u8]| {
            mac.update(&(bytes.len() as u64).to_be_bytes());
            mac.update(bytes);
        };
        field(user.as_bytes());
        field(password);
        field(&[mechanism.kafka_type() as u8]);
        field(&credential.iterations.to_be_bytes());
        field(&credential.salt);
        field(&credential.stored_key);
        field(&credential.server_key);
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::cell::Cell;

    use super::*;

    const M: Mechanism = Mechanism::Sha512;

    /// One iteration keeps the tests fast; the cache does not look at the
    /// count except as part of the credential.
    fn credential(password: &[u8], salt: u8) -> Credential {
        Credential::from_password(M, password, &[salt; 32], 1)
    }

    /// Runs a check and says whether the slow derivation ran.
    fn check(
        cache: &VerifiedPasswords,
        user: &str,
        password: &[u8],
        c: &Credential,
    ) -> (bool, bool) {
        let derived = Cell::new(false);
        let ok = cache.verify_with(user, password, M, c, || {
            derived.set(true);
            c.verify_password(M, password)
        });
        (ok, derived.get())
    }

    #[test]
    fn a_second_successful_check_skips_the_key_derivation() {
        let cache = VerifiedPasswords::with_key([1; 32], 8);
        let c = credential(b"secret", 1);
        assert_eq!(check(&cache, "alice", b"secret", &c), (true, true));
        assert_eq!(check(&cache, "alice", b"secret", &c), (true, false));
        assert_eq!(check(&cache, "alice", b"secret", &c), (true, false));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn failed_checks_are_not_remembered() {
        let cache = VerifiedPasswords::with_key([1; 32], 8);
        let c = credential(b"secret", 1);
        for _ in 0..3 {
            assert_eq!(check(&cache, "alice", b"wrong", &c), (false, true));
        }
        assert!(cache.is_empty());
        // A remembered success does not make a wrong password pass.
        assert_eq!(check(&cache, "alice", b"secret", &c), (true, true));
        assert_eq!(check(&cache, "alice", b"wrong", &c), (false, true));
        // Nor does it pass for another user with the same credential bytes.
        assert_eq!(check(&cache, "bob", b"secret", &c), (true, true));
    }

    #[test]
    fn a_changed_credential_is_checked_afresh() {
        let cache = VerifiedPasswords::with_key([1; 32], 8);
        let old = credential(b"secret", 1);
        assert_eq!(check(&cache, "alice", b"secret", &old), (true, true));
        // The password changed: the old one no longer passes, even though
        // it was remembered against the old credential.
        let new = credential(b"new-secret", 2);
        assert_eq!(check(&cache, "alice", b"secret", &new), (false, true));
        assert_eq!(check(&cache, "alice", b"new-secret", &new), (true, true));
        // Same password, new salt (the user was deleted and created again):
        // derived afresh, not taken from the old entry.
        let again = credential(b"secret", 3);
        assert_eq!(check(&cache, "alice", b"secret", &again), (true, true));
        // More iterations alone also make a different credential.
        let stronger = Credential::from_password(M, b"secret", &[1; 32], 2);
        assert_eq!(check(&cache, "alice", b"secret", &stronger), (true, true));
    }

    #[test]
    fn the_bound_holds_and_the_least_recently_used_goes_first() {
        let cache = VerifiedPasswords::with_key([1; 32], 3);
        let c = credential(b"pw", 1);
        for user in ["a", "b", "c"] {
            assert_eq!(check(&cache, user, b"pw", &c), (true, true));
        }
        // Touch "a" so that "b" is now the least recently used.
        assert_eq!(check(&cache, "a", b"pw", &c), (true, false));
        assert_eq!(check(&cache, "d", b"pw", &c), (true, true));
        assert_eq!(cache.len(), 3);
        assert_eq!(check(&cache, "a", b"pw", &c), (true, false));
        assert_eq!(check(&cache, "c", b"pw", &c), (true, false));
        assert_eq!(check(&cache, "d", b"pw", &c), (true, false));
        assert_eq!(check(&cache, "b", b"pw", &c), (true, true), "b was evicted");
        for i in 0..100 {
            check(&cache, &format!("user-{i}"), b"pw", &c);
            assert!(cache.len() <= 3);
        }
    }

    #[test]
    fn a_zero_capacity_remembers_nothing() {
        let cache = VerifiedPasswords::with_key([1; 32], 0);
        let c = credential(b"pw", 1);
        assert_eq!(check(&cache, "a", b"pw", &c), (true, true));
        assert_eq!(check(&cache, "a", b"pw", &c), (true, true));
        assert!(cache.is_empty());
    }

    #[test]
    fn entries_are_keyed_per_process_and_hold_no_password() {
        let c = credential(b"hunter2", 1);
        let one = VerifiedPasswords::with_key([1; 32], 8);
        let two = VerifiedPasswords::with_key([2; 32], 8);
        let t1 = one.tag("alice", b"hunter2", M, &c);
        assert_ne!(t1, two.tag("alice", b"hunter2", M, &c));
        assert!(!t1.windows(7).any(|w| w == b"hunter2"));
        // Length prefixes: moving bytes between user and password changes the tag.
        assert_ne!(one.tag("ab", b"c", M, &c), one.tag("a", b"bc", M, &c));
        assert!(VerifiedPasswords::new(4).is_ok());
    }
}
