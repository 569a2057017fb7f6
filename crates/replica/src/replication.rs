//! The leader's view of its followers (Kafka's ISR replication).
//!
//! Followers copy a partition's log with Fetch, sending their log end
//! offset as `fetch_offset`; under group commit a follower fsyncs what it
//! appended before it fetches again, so the offset it reports is durable on
//! it. The leader keeps one [`FollowerState`] per replica, and moves the high
//! watermark to the lowest of its own durable end and the reported ends of
//! every member of the *maximal* ISR: the ISR in the metadata plus any
//! replica an expansion in flight is adding. Counting a replica from the
//! moment its addition is asked for, not from when the controller commits
//! it, is what keeps the new member at or above the high watermark when it
//! joins (KIP-497's reasoning).
//!
//! ISR changes are proposed here and carried out by the controller
//! ([`IsrChange`], AlterPartition semantics): a follower that has not caught
//! up to the leader's end for `replica.lag.time.max.ms` leaves, one whose end
//! reaches the high watermark (and the start of the current leader epoch)
//! joins. One change per partition is in flight at a time; the next waits
//! until the metadata shows the outcome.

use std::collections::HashMap;

/// One follower as the leader sees it (Kafka's `ReplicaState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerState {
    /// The offset the follower fetched from last: everything below it is on
    /// the follower (durably, under group commit).
    pub log_end_offset: i64,
    /// Last time (ms) the follower was known to hold everything the leader
    /// had: it fetched from the leader's end, or from the end the leader had
    /// at its previous fetch.
    pub last_caught_up_ms: i64,
    /// When it last fetched (ms).
    last_fetch_ms: i64,
    /// The leader's log end at that fetch.
    leader_end_at_last_fetch: i64,
}

/// An ISR change to ask the controller for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrChange {
    /// The leader epoch the change is made under.
    pub leader_epoch: i32,
    /// The partition epoch the change is based on.
    pub partition_epoch: i32,
    /// The ISR wanted.
    pub new_isr: Vec<i32>,
}

/// A partition's replication state on its leader, from one metadata
/// change on; reset when leadership or the epoch changes.
#[derive(Debug, Default)]
pub(crate) struct Replication {
    /// Every replica, from the metadata.
    pub(crate) replicas: Vec<i32>,
    /// The ISR in the metadata.
    pub(crate) isr: Vec<i32>,
    /// The metadata's partition epoch for `isr`.
    pub(crate) partition_epoch: i32,
    /// The leader epoch the follower states were gathered under.
    pub(crate) leader_epoch: i32,
    /// An ISR change sent to the controller, not yet in the metadata.
    pub(crate) pending: Option<IsrChange>,
    /// Followers, by broker id.
    pub(crate) followers: HashMap<i32, FollowerState>,
    /// Where the current leader epoch starts in the log (a joining replica
    /// must hold at least up to here, so it has this leader's data).
    pub(crate) epoch_start_offset: i64,
    /// `min.insync.replicas` of the topic.
    pub(crate) min_insync_replicas: usize,
}

impl Replication {
    /// The ISR the high watermark must respect: the committed ISR plus any
    /// replica a pending expansion adds.
    pub(crate) fn maximal_isr(&self) -> impl Iterator<Item = i32> + '_ {
        let extra = self
            .pending
            .iter()
            .flat_map(|p| p.new_isr.iter().copied())
            .filter(|b| !self.isr.contains(b));
        self.isr.iter().copied().chain(extra)
    }

    /// The high watermark the followers allow: the lowest log end among
    /// the maximal ISR's followers, capped by `leader_end`. A member that
    /// has not fetched under this leader epoch holds it at `current`.
    pub(crate) fn high_watermark(&self, me: i32, leader_end: i64, current: i64) -> i64 {
        self.maximal_isr()
            .filter(|&b| b != me)
            .map(|b| match self.followers.get(&b) {
                Some(f) if f.log_end_offset >= 0 => f.log_end_offset,
                _ => current,
            })
            .fold(leader_end, i64::min)
    }

    /// Starts over as leader at `leader_epoch`, whose first offset is
    /// `epoch_start_offset`: every ISR member gets a fresh state, its end
    /// unknown (so it holds the high watermark until it fetches) and
    /// counted as caught up now (so it has `replica.lag.time.max.ms` to
    /// fetch before it is shrunk out), as Kafka does on a leader change.
    pub(crate) fn reset(
        &mut self,
        me: i32,
        leader_epoch: i32,
        epoch_start_offset: i64,
        now_ms: i64,
    ) {
        self.leader_epoch = leader_epoch;
        self.epoch_start_offset = epoch_start_offset;
        self.pending = None;
        self.followers = self
            .isr
            .iter()
            .filter(|&&b| b != me)
            .map(|&b| {
                let state = FollowerState {
                    log_end_offset: -1,
                    last_caught_up_ms: now_ms,
                    last_fetch_ms: now_ms,
                    leader_end_at_last_fetch: epoch_start_offset,
                };
                (b, state)
            })
            .collect();
    }

    /// Records a follower's fetch from `fetch_offset` at `now_ms` while the
    /// leader's log ends at `leader_end` (Kafka's
    /// `Replica.updateFetchStateOrThrow`).
    pub(crate) fn record_fetch(
        &mut self,
        follower: i32,
        fetch_offset: i64,
        leader_end: i64,
        now_ms: i64,
    ) {
        let entry = self.followers.entry(follower).or_insert(FollowerState {
            log_end_offset: fetch_offset,
            last_caught_up_ms: if self.isr.contains(&follower) {
                now_ms
            } else {
                0
            },
            last_fetch_ms: now_ms,
            leader_end_at_last_fetch: leader_end,
        });
        if fetch_offset >= leader_end {
            entry.last_caught_up_ms = entry.last_caught_up_ms.max(now_ms);
        } else if fetch_offset >= entry.leader_end_at_last_fetch {
            entry.last_caught_up_ms = entry.last_caught_up_ms.max(entry.last_fetch_ms);
        }
        entry.log_end_offset = fetch_offset;
        entry.last_fetch_ms = now_ms;
        entry.leader_end_at_last_fetch = leader_end;
    }

    /// A change adding `follower` if it is a replica outside the ISR whose
    /// log reaches `high_watermark` and this epoch's start; `None` while
    /// another change is in flight.
    pub(crate) fn expansion(&self, follower: i32, high_watermark: i64) -> Option<IsrChange> {
        if self.pending.is_some()
            || self.isr.contains(&follower)
            || !self.replicas.contains(&follower)
        {
            return None;
        }
        let state = self.followers.get(&follower)?;
        if state.log_end_offset < 0
            || state.log_end_offset < high_watermark
            || state.log_end_offset < self.epoch_start_offset
        {
            return None;
        }
        let mut new_isr = self.isr.clone();
        new_isr.push(follower);
        Some(IsrChange {
            leader_epoch: self.leader_epoch,
            partition_epoch: self.partition_epoch,
            new_isr,
        })
    }

    /// A change removing every follower that has not caught up within
    /// `lag_max_ms` of `now_ms` (never `me`, the leader); `None` if none
    /// lags or a change is in flight.
    pub(crate) fn shrink(&self, me: i32, now_ms: i64, lag_max_ms: i64) -> Option<IsrChange> {
        if self.pending.is_some() {
            return None;
        }
        let lagging = |b: i32| {
            b != me
                && self
                    .followers
                    .get(&b)
                    .is_none_or(|f| now_ms - f.last_caught_up_ms > lag_max_ms)
        };
        if !self.isr.iter().any(|&b| lagging(b)) {
            return None;
        }
        Some(IsrChange {
            leader_epoch: self.leader_epoch,
            partition_epoch: self.partition_epoch,
            new_isr: self.isr.iter().copied().filter(|&b| !lagging(b)).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> Replication {
        Replication {
            replicas: vec![1, 2, 3],
            isr: vec![1, 2, 3],
            leader_epoch: 4,
            partition_epoch: 9,
            min_insync_replicas: 2,
            ..Default::default()
        }
    }

    #[test]
    fn high_watermark_is_the_lowest_end_in_the_isr() {
        let mut r = three();
        assert_eq!(r.high_watermark(1, 100, 10), 10, "no follower fetched yet");
        r.record_fetch(2, 80, 100, 1_000);
        assert_eq!(r.high_watermark(1, 100, 10), 10, "3 has not fetched");
        r.record_fetch(3, 90, 100, 1_000);
        assert_eq!(r.high_watermark(1, 100, 10), 80);
        r.record_fetch(2, 100, 100, 1_001);
        assert_eq!(r.high_watermark(1, 95, 10), 90, "3 is the slowest now");
        assert_eq!(
            r.high_watermark(1, 85, 10),
            85,
            "capped by the leader's durable end"
        );
    }

    #[test]
    fn a_pending_expansion_holds_the_high_watermark_back() {
        let mut r = three();
        r.isr = vec![1, 2];
        r.record_fetch(2, 100, 100, 1_000);
        r.record_fetch(3, 60, 100, 1_000);
        assert_eq!(r.high_watermark(1, 100, 10), 100, "3 is outside the ISR");
        let change = r.expansion(3, 50).expect("3 reached the high watermark");
        assert_eq!(change.new_isr, [1, 2, 3]);
        assert_eq!((change.leader_epoch, change.partition_epoch), (4, 9));
        r.pending = Some(change);
        assert_eq!(
            r.high_watermark(1, 100, 10),
            60,
            "counted from the request on"
        );
        assert_eq!(r.expansion(3, 50), None, "one change in flight at a time");
    }

    #[test]
    fn expansion_needs_the_high_watermark_and_the_epoch_start() {
        let mut r = three();
        r.isr = vec![1, 2];
        r.epoch_start_offset = 70;
        r.record_fetch(3, 60, 100, 1_000);
        assert_eq!(r.expansion(3, 50), None, "below this epoch's start");
        r.record_fetch(3, 70, 100, 1_001);
        assert_eq!(r.expansion(3, 80), None, "below the high watermark");
        assert!(r.expansion(3, 70).is_some());
        assert_eq!(r.expansion(4, 0), None, "not a replica");
        assert_eq!(r.expansion(2, 0), None, "already in the ISR");
    }

    #[test]
    fn a_follower_that_stops_catching_up_is_shrunk_out() {
        let mut r = three();
        r.record_fetch(2, 100, 100, 1_000);
        r.record_fetch(3, 100, 100, 1_000);
        assert_eq!(r.shrink(1, 20_000, 30_000), None);
        // 2 keeps fetching from the end; 3 fetches but never reaches it.
        r.record_fetch(2, 200, 200, 25_000);
        r.record_fetch(3, 150, 200, 25_000);
        r.record_fetch(2, 300, 300, 40_000);
        r.record_fetch(3, 160, 300, 40_000);
        assert_eq!(
            r.shrink(1, 31_000, 30_000),
            None,
            "3 last caught up at 1,000"
        );
        let change = r.shrink(1, 40_000, 30_000).expect("3 lags 39 s");
        assert_eq!(change.new_isr, [1, 2]);
    }

    #[test]
    fn reaching_the_end_seen_at_the_previous_fetch_counts_as_caught_up_then() {
        let mut r = three();
        r.record_fetch(3, 100, 200, 1_000);
        r.record_fetch(3, 200, 300, 5_000);
        assert_eq!(r.followers[&3].last_caught_up_ms, 1_000);
        r.record_fetch(3, 300, 400, 9_000);
        assert_eq!(r.followers[&3].last_caught_up_ms, 5_000);
    }

    #[test]
    fn a_new_leader_gives_its_isr_time_to_fetch() {
        let mut r = three();
        r.reset(1, 5, 100, 10_000);
        assert_eq!(r.high_watermark(1, 120, 90), 90, "ends unknown: held");
        assert_eq!(r.shrink(1, 39_000, 30_000), None);
        r.record_fetch(2, 120, 120, 39_000);
        assert_eq!(
            r.shrink(1, 41_000, 30_000).map(|c| c.new_isr),
            Some(vec![1, 2]),
            "3 never fetched under the new leader"
        );
    }

    #[test]
    fn a_follower_that_never_fetched_is_lagging() {
        let r = three();
        assert_eq!(
            r.shrink(1, 50_000, 30_000).map(|c| c.new_isr),
            Some(vec![1])
        );
    }
}
