//! Which partitions of one internal topic this broker coordinates, and
//! whether each one's state is loaded yet.
//!
//! Kafka's rule: the coordinator of a key (group id, transactional id) is
//! the leader of the internal partition the key hashes to. A broker that
//! does not own the key's partition answers NOT_COORDINATOR; one that owns
//! it but is still replaying it answers COORDINATOR_LOAD_IN_PROGRESS. Both
//! are retriable: a client looks the coordinator up again, or waits.
//!
//! Owns only the bookkeeping; the coordinators decide when a partition
//! starts and finishes loading (see `GroupCoordinator::follow` and
//! `TransactionCoordinator::follow`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use sluice_protocol::error::codes as code;

/// Where an owned partition's state stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadState {
    /// Being replayed; requests for its keys wait (LOAD_IN_PROGRESS).
    Loading,
    /// In memory; requests for its keys are served.
    Loaded,
}

/// The partitions of one internal topic this broker coordinates.
#[derive(Debug, Default)]
pub struct Ownership {
    /// Owned partitions by index. A std mutex held only to read or change
    /// one entry, never across I/O or an await.
    partitions: Mutex<BTreeMap<i32, LoadState>>,
}

impl Ownership {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<i32, LoadState>> {
        self.partitions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// May a request for a key in partition `index` be served here? The
    /// error is the Kafka code to answer with.
    pub fn check(&self, index: i32) -> Result<(), i16> {
        match self.map().get(&index) {
            Some(LoadState::Loaded) => Ok(()),
            Some(LoadState::Loading) => Err(code::COORDINATOR_LOAD_IN_PROGRESS),
            None => Err(code::NOT_COORDINATOR),
        }
    }

    /// Partition `index` is now owned, and being loaded.
    pub fn begin_load(&self, index: i32) {
        self.map().insert(index, LoadState::Loading);
    }

    /// Partition `index` finished loading (if it is still owned).
    pub fn finish_load(&self, index: i32) {
        if let Some(state) = self.map().get_mut(&index) {
            *state = LoadState::Loaded;
        }
    }

    /// Partition `index` is no longer owned.
    pub fn unload(&self, index: i32) {
        self.map().remove(&index);
    }

    /// Every owned partition, loaded or loading.
    pub fn owned(&self) -> BTreeSet<i32> {
        self.map().keys().copied().collect()
    }

    /// True if some owned partition is still loading (ListGroups and
    /// ListTransactions then say so with COORDINATOR_LOAD_IN_PROGRESS).
    pub fn any_loading(&self) -> bool {
        self.map().values().any(|s| *s == LoadState::Loading)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_is_not_coordinated_until_owned_and_served_once_loaded() {
        let owned = Ownership::default();
        assert_eq!(owned.check(3), Err(code::NOT_COORDINATOR));
        owned.begin_load(3);
        assert_eq!(owned.check(3), Err(code::COORDINATOR_LOAD_IN_PROGRESS));
        assert!(owned.any_loading());
        owned.finish_load(3);
        assert_eq!(owned.check(3), Ok(()));
        assert!(!owned.any_loading());
        assert_eq!(owned.owned(), BTreeSet::from([3]));
        owned.unload(3);
        assert_eq!(owned.check(3), Err(code::NOT_COORDINATOR));
        // Finishing a load of a partition given up meanwhile owns nothing.
        owned.finish_load(3);
        assert_eq!(owned.check(3), Err(code::NOT_COORDINATOR));
    }
}
