//! Replication throttles (Kafka's replication quotas, KIP-73): moving a
//! partition's data to a new replica must not starve clients.
//!
//! Each broker meters the bytes it replicates for *throttled* replicas, one
//! [`ReplicationQuota`] per direction:
//! - as a leader, the bytes it sends to followers for throttled partitions,
//!   bounded by the dynamic broker config `leader.replication.throttled.rate`;
//! - as a follower, the bytes it fetches for throttled partitions, bounded
//!   by `follower.replication.throttled.rate`.
//!
//! Both rates are bytes/s, unlimited by default (Kafka's `Long.MAX_VALUE`),
//! set per broker or as the cluster default with (Incremental)AlterConfigs
//! on a BROKER resource (`sluice_metadata::broker_config`).
//!
//! Which replicas are throttled comes from the topic configs
//! `leader.replication.throttled.replicas` (the leader-side replicas) and
//! `follower.replication.throttled.replicas` (the fetching replicas): empty,
//! `*`, or `partition:brokerId` lists, as `kafka-reassign-partitions
//! --throttle` sets them. Sluice adds one rule: a replica that a reassignment
//! in flight is adding (`adding_replicas`) is throttled on both sides without
//! any topic config, so the balancer's and operators' moves are bounded by
//! the rates alone.
//!
//! As in Kafka, a replica in the ISR is never held back (only its bytes
//! count), so throttling a move cannot shrink anybody's ISR; once the meter
//! exceeds the rate, the leader answers throttled partitions with no
//! records (not an error) and the follower leaves them out of its fetch.
//! The meter is Kafka's sampled rate, so a throttled replica still makes
//! progress at the rate and joins the ISR once it has caught up.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice_metadata::MetadataImage;
use sluice_metadata::broker_config::{self, FOLLOWER_THROTTLED_RATE, LEADER_THROTTLED_RATE};
use sluice_metadata::topic_config::{
    FOLLOWER_THROTTLED_REPLICAS, LEADER_THROTTLED_REPLICAS, replica_throttled,
};

/// Samples the rate is measured over: Kafka's `replication.quota.window.num`
/// default. With [`QUOTA_WINDOW_SIZE_MS`] it makes the rate an average over
/// the last 10-11 s, smooth enough that one large fetch does not stall
/// replication and short enough that a new rate takes hold within seconds.
pub const QUOTA_WINDOW_NUM: usize = 11;

/// Length of one sample: Kafka's `replication.quota.window.size.seconds`
/// default (1 s).
pub const QUOTA_WINDOW_SIZE_MS: i64 = 1_000;

/// A rate sampled over `window_num` windows of `window_size_ms` each
/// (Kafka's `SampledStat` with a `Rate`): the replication throttles' meter
/// and the client quotas' (`crate::quota`). Time is passed in (ms), so
/// tests drive it.
#[derive(Debug)]
pub struct SampledRate {
    /// How many samples the rate spans.
    window_num: usize,
    /// Length of one sample.
    window_size_ms: i64,
    /// Samples, oldest first, each `(start_ms, total)`. Held only to record
    /// or measure, never across an await.
    samples: Mutex<VecDeque<(i64, f64)>>,
}

impl SampledRate {
    /// A meter with nothing recorded. `window_num` is at least 1 and
    /// `window_size_ms` at least 1 (the config validates both).
    pub fn new(window_num: usize, window_size_ms: i64) -> Self {
        SampledRate {
            window_num: window_num.max(1),
            window_size_ms: window_size_ms.max(1),
            samples: Mutex::new(VecDeque::with_capacity(window_num.max(1))),
        }
    }

    /// Counts `value` at `now_ms`; a negative value takes back what was
    /// counted (Kafka's `unrecord`, for a fetch answered empty).
    pub fn record(&self, value: f64, now_ms: i64) {
        if value == 0.0 || !value.is_finite() {
            return;
        }
        let mut samples = self.lock();
        match samples.back_mut() {
            Some((start, total)) if now_ms < *start + self.window_size_ms => {
                *total += value;
            }
            _ => {
                samples.push_back((now_ms, value));
                while samples.len() > self.window_num {
                    samples.pop_front();
                }
            }
        }
    }

    /// The measured rate at `now_ms`, per second: the total of the samples
    /// still in the window over [`SampledRate::window_span_ms`].
    pub fn rate(&self, now_ms: i64) -> f64 {
        let mut samples = self.lock();
        self.purge(&mut samples, now_ms);
        let total: f64 = samples.iter().map(|&(_, v)| v).sum();
        if total == 0.0 {
            return 0.0;
        }
        total * 1_000.0 / self.span_of(&samples, now_ms).max(1) as f64
    }

    /// The time the rate is averaged over at `now_ms` (Kafka's
    /// `Rate.windowSize`): from the oldest sample still in the window to
    /// now, but at least `window_num - 1` whole windows, so a burst right
    /// after a quiet spell is spread over the whole window.
    pub fn window_span_ms(&self, now_ms: i64) -> i64 {
        let mut samples = self.lock();
        self.purge(&mut samples, now_ms);
        self.span_of(&samples, now_ms)
    }

    fn purge(&self, samples: &mut VecDeque<(i64, f64)>, now_ms: i64) {
        let window_ms = self.window_size_ms * self.window_num as i64;
        while samples
            .front()
            .is_some_and(|&(start, _)| start <= now_ms - window_ms)
        {
            samples.pop_front();
        }
    }

    fn span_of(&self, samples: &VecDeque<(i64, f64)>, now_ms: i64) -> i64 {
        let oldest = samples.front().map_or(now_ms, |&(start, _)| start);
        let mut elapsed_ms = (now_ms - oldest).max(0);
        let full_windows = elapsed_ms / self.window_size_ms;
        let min_windows = self.window_num as i64 - 1;
        if full_windows < min_windows {
            elapsed_ms += (min_windows - full_windows) * self.window_size_ms;
        }
        elapsed_ms
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(i64, f64)>> {
        // A panic while holding this lock leaves the samples consistent
        // (every update is one push or one add), so a poisoned lock is used.
        self.samples
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The bytes replicated for throttled replicas in one direction, as a
/// [`SampledRate`] over the last [`QUOTA_WINDOW_NUM`] windows of
/// [`QUOTA_WINDOW_SIZE_MS`].
#[derive(Debug)]
pub struct ReplicationQuota {
    /// The meter.
    meter: SampledRate,
}

impl Default for ReplicationQuota {
    fn default() -> Self {
        ReplicationQuota {
            meter: SampledRate::new(QUOTA_WINDOW_NUM, QUOTA_WINDOW_SIZE_MS),
        }
    }
}

impl ReplicationQuota {
    /// A meter with nothing recorded.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts `bytes` replicated at `now_ms`.
    pub fn record(&self, bytes: u64, now_ms: i64) {
        self.meter.record(bytes as f64, now_ms);
    }

    /// The measured rate at `now_ms`, in bytes/s (see [`SampledRate::rate`]).
    pub fn rate(&self, now_ms: i64) -> f64 {
        self.meter.rate(now_ms)
    }

    /// True if the measured rate is above `bound_bytes_per_s` (Kafka's
    /// quota violation). [`broker_config::UNLIMITED_RATE`] is never exceeded.
    pub fn is_exceeded(&self, bound_bytes_per_s: i64, now_ms: i64) -> bool {
        bound_bytes_per_s != broker_config::UNLIMITED_RATE
            && self.rate(now_ms) > bound_bytes_per_s as f64
    }

    /// How long until the rate is back within `bound_bytes_per_s` if
    /// nothing more is recorded; zero when it is within now. At most one
    /// window: samples age out at window boundaries, which can end the
    /// excess sooner than the average alone says.
    pub fn delay_until_within(&self, bound_bytes_per_s: i64, now_ms: i64) -> Duration {
        if !self.is_exceeded(bound_bytes_per_s, now_ms) {
            return Duration::ZERO;
        }
        let rate = self.rate(now_ms);
        let ms = if bound_bytes_per_s <= 0 {
            QUOTA_WINDOW_SIZE_MS
        } else {
            // rate * span / (span + d) <= bound  <=>  d >= span * (rate / bound - 1),
            // with span the measured span (at least the minimum window).
            let span_ms = (QUOTA_WINDOW_NUM as f64 - 1.0) * QUOTA_WINDOW_SIZE_MS as f64;
            let needed = span_ms * (rate / bound_bytes_per_s as f64 - 1.0);
            (needed.ceil() as i64).clamp(1, QUOTA_WINDOW_SIZE_MS)
        };
        Duration::from_millis(ms.unsigned_abs())
    }
}

/// This broker's two replication quotas and the clock they are read by.
#[derive(Debug, Default)]
pub struct ReplicationThrottles {
    /// Bytes this broker sends, as leader, for throttled replicas.
    pub leader: ReplicationQuota,
    /// Bytes this broker fetches, as follower, for throttled replicas.
    pub follower: ReplicationQuota,
    /// Where `now` comes from: the wall clock, or a test's hand.
    clock: Clock,
}

/// The time source of the quotas.
#[derive(Debug, Default)]
enum Clock {
    /// Wall-clock milliseconds.
    #[default]
    Wall,
    /// Milliseconds a test sets.
    Manual(Arc<AtomicI64>),
}

impl ReplicationThrottles {
    /// Throttles whose time is whatever the returned handle holds (ms), so
    /// a test moves time by hand.
    pub fn with_manual_clock(start_ms: i64) -> (Self, Arc<AtomicI64>) {
        let now = Arc::new(AtomicI64::new(start_ms));
        let throttles = ReplicationThrottles {
            clock: Clock::Manual(Arc::clone(&now)),
            ..Default::default()
        };
        (throttles, now)
    }

    /// The time to record and measure at, in ms.
    pub fn now_ms(&self) -> i64 {
        match &self.clock {
            Clock::Wall => sluice_metadata::now_ms(),
            Clock::Manual(now) => now.load(Ordering::Relaxed),
        }
    }
}

/// `leader.replication.throttled.rate` of broker `me` (its own, else the
/// cluster default, else unlimited), in bytes/s.
pub fn leader_rate(image: &MetadataImage, me: i32) -> i64 {
    broker_config::rate(
        image
            .broker_config(me, LEADER_THROTTLED_RATE)
            .map(|(v, _)| v),
    )
}

/// `follower.replication.throttled.rate` of broker `me`, in bytes/s.
pub fn follower_rate(image: &MetadataImage, me: i32) -> i64 {
    broker_config::rate(
        image
            .broker_config(me, FOLLOWER_THROTTLED_RATE)
            .map(|(v, _)| v),
    )
}

/// True if leader `me` throttles what it sends to `follower` for
/// `topic`/`partition`: the topic's `leader.replication.throttled.replicas`
/// is `*` or lists `partition:me`, or `follower` is a replica a
/// reassignment in flight is adding (Sluice's addition).
pub fn leader_throttled(
    image: &MetadataImage,
    topic: &str,
    partition: i32,
    me: i32,
    follower: i32,
) -> bool {
    let Some(t) = image.topics.get(topic) else {
        return false;
    };
    replica_throttled(&t.configs, LEADER_THROTTLED_REPLICAS, partition, me)
        || t.partitions
            .get(&partition)
            .is_some_and(|p| p.adding_replicas.contains(&follower))
}

/// True if follower `me` throttles its fetches of `topic`/`partition`: the
/// topic's `follower.replication.throttled.replicas` is `*` or lists
/// `partition:me`, or `me` is a replica a reassignment in flight is adding.
pub fn follower_throttled(image: &MetadataImage, topic: &str, partition: i32, me: i32) -> bool {
    let Some(t) = image.topics.get(topic) else {
        return false;
    };
    replica_throttled(&t.configs, FOLLOWER_THROTTLED_REPLICAS, partition, me)
        || t.partitions
            .get(&partition)
            .is_some_and(|p| p.adding_replicas.contains(&me))
}

/// True if `broker` is in the ISR of `topic`/`partition`: such a replica is
/// never held back by a throttle (Kafka's `shouldLeaderThrottle` and
/// `shouldFollowerThrottle`), only counted.
pub fn in_sync(image: &MetadataImage, topic: &str, partition: i32, broker: i32) -> bool {
    image
        .topics
        .get(topic)
        .and_then(|t| t.partitions.get(&partition))
        .is_some_and(|p| p.isr.contains(&broker))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use sluice_metadata::{PartitionImage, TopicImage};
    use uuid::Uuid;

    use super::*;

    #[test]
    fn an_idle_meter_is_never_exceeded_and_unlimited_never_is() {
        let q = ReplicationQuota::new();
        assert_eq!(q.rate(1_000), 0.0);
        assert!(!q.is_exceeded(0, 1_000), "nothing recorded");
        q.record(u64::MAX / 2, 1_000);
        assert!(!q.is_exceeded(broker_config::UNLIMITED_RATE, 1_000));
        assert!(q.is_exceeded(1_000_000, 1_000));
    }

    #[test]
    fn a_burst_is_spread_over_the_whole_window() {
        let q = ReplicationQuota::new();
        // 10 windows' worth at 1,000 B/s arrives at once: that is exactly
        // the rate over the minimum span (10 s), so it is not yet exceeded.
        q.record(10_000, 0);
        assert_eq!(q.rate(0), 1_000.0);
        assert!(!q.is_exceeded(1_000, 0));
        q.record(1, 0);
        assert!(q.is_exceeded(1_000, 0));
        // As time passes the same bytes average over more time.
        assert!(q.rate(10_500) < 1_000.0);
        assert!(!q.is_exceeded(1_000, 10_500));
    }

    #[test]
    fn samples_age_out_after_the_window() {
        let q = ReplicationQuota::new();
        q.record(50_000, 0);
        assert!(q.is_exceeded(1_000, 5_000));
        let window_ms = QUOTA_WINDOW_SIZE_MS * QUOTA_WINDOW_NUM as i64;
        assert!(q.rate(window_ms - 1) > 0.0);
        assert_eq!(q.rate(window_ms), 0.0, "the only sample aged out");
    }

    #[test]
    fn a_steady_sender_at_the_rate_settles_at_the_rate() {
        let q = ReplicationQuota::new();
        // Send 100 bytes every 100 ms whenever not exceeded, for a minute,
        // against a 500 B/s bound: the measured rate ends near the bound
        // and the bytes sent are within one window's burst of rate × time.
        let mut sent = 0u64;
        for step in 0..600 {
            let now = step * 100;
            if !q.is_exceeded(500, now) {
                q.record(100, now);
                sent += 100;
            }
        }
        let rate = q.rate(60_000);
        assert!((400.0..=600.0).contains(&rate), "rate {rate}");
        // 60 s at 500 B/s, plus at most one whole window (11 s) of burst.
        assert!(sent <= 500 * (60 + 11) + 100, "sent {sent}");
        assert!(sent >= 500 * 50, "sent {sent}");
    }

    #[test]
    fn the_delay_says_when_the_rate_is_back_within_the_bound() {
        let q = ReplicationQuota::new();
        assert_eq!(q.delay_until_within(100, 0), Duration::ZERO);
        q.record(2_000, 0);
        // 2,000 B over 10 s is 200 B/s; within 100 B/s after 10 more s, so
        // the delay is capped at one window.
        assert_eq!(
            q.delay_until_within(100, 0),
            Duration::from_millis(QUOTA_WINDOW_SIZE_MS as u64)
        );
        // Just above 199 B/s: a few ms are enough.
        let d = q.delay_until_within(199, 0);
        assert!(
            d > Duration::ZERO && d < Duration::from_millis(100),
            "{d:?}"
        );
        assert_eq!(q.delay_until_within(0, 0), Duration::from_millis(1_000));
    }

    fn image(configs: &[(&str, &str)], isr: &[i32], adding: &[i32]) -> MetadataImage {
        let mut image = MetadataImage::default();
        let partition = PartitionImage {
            leader: 1,
            replicas: vec![1, 2, 3],
            isr: isr.to_vec(),
            leader_epoch: 0,
            partition_epoch: 0,
            adding_replicas: adding.to_vec(),
            removing_replicas: Vec::new(),
        };
        image.topics.insert(
            "t".to_owned(),
            TopicImage {
                name: "t".to_owned(),
                topic_id: Uuid::from_u128(1),
                partitions: BTreeMap::from([(0, partition.clone()), (1, partition)]),
                configs: configs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            },
        );
        image
    }

    #[test]
    fn the_leader_throttles_listed_leader_replicas_and_adding_replicas() {
        let none = image(&[], &[1], &[]);
        assert!(!leader_throttled(&none, "t", 0, 1, 2));
        assert!(!leader_throttled(&none, "missing", 0, 1, 2));
        let listed = image(&[(LEADER_THROTTLED_REPLICAS, "0:1,1:3")], &[1], &[]);
        assert!(
            leader_throttled(&listed, "t", 0, 1, 2),
            "0:1 is this leader"
        );
        assert!(
            !leader_throttled(&listed, "t", 1, 1, 2),
            "1:3 names another leader-side replica"
        );
        // The follower list does not throttle the leader side.
        let follower_only = image(&[(FOLLOWER_THROTTLED_REPLICAS, "*")], &[1], &[]);
        assert!(!leader_throttled(&follower_only, "t", 0, 1, 2));
        let all = image(&[(LEADER_THROTTLED_REPLICAS, "*")], &[1], &[]);
        assert!(leader_throttled(&all, "t", 1, 1, 3));
        // A reassignment adding 3: its fetches are throttled, 2's are not.
        let moving = image(&[], &[1, 2], &[3]);
        assert!(leader_throttled(&moving, "t", 0, 1, 3));
        assert!(!leader_throttled(&moving, "t", 0, 1, 2));
        assert!(in_sync(&moving, "t", 0, 2) && !in_sync(&moving, "t", 0, 3));
    }

    #[test]
    fn the_follower_throttles_its_listed_replicas_and_its_additions() {
        let listed = image(&[(FOLLOWER_THROTTLED_REPLICAS, "0:2")], &[1], &[]);
        assert!(follower_throttled(&listed, "t", 0, 2));
        assert!(!follower_throttled(&listed, "t", 0, 3));
        assert!(!follower_throttled(&listed, "t", 1, 2));
        let leader_only = image(&[(LEADER_THROTTLED_REPLICAS, "*")], &[1], &[]);
        assert!(!follower_throttled(&leader_only, "t", 0, 2));
        let moving = image(&[], &[1], &[3]);
        assert!(follower_throttled(&moving, "t", 1, 3));
        assert!(!follower_throttled(&moving, "t", 1, 2));
    }

    #[test]
    fn rates_come_from_the_broker_then_the_cluster_default_then_unlimited() {
        use sluice_metadata::MetadataRecord;
        let mut image = MetadataImage::default();
        assert_eq!(leader_rate(&image, 1), broker_config::UNLIMITED_RATE);
        let set = |broker_id: i32, name: &str, value: &str| MetadataRecord::BrokerConfig {
            broker_id,
            name: name.to_owned(),
            value: Some(value.to_owned()),
        };
        image = image
            .with_change(
                &[
                    set(-1, LEADER_THROTTLED_RATE, "100"),
                    set(2, LEADER_THROTTLED_RATE, "7"),
                    set(2, FOLLOWER_THROTTLED_RATE, "9"),
                ],
                0,
                3,
            )
            .expect("applies");
        assert_eq!(leader_rate(&image, 1), 100);
        assert_eq!(leader_rate(&image, 2), 7);
        assert_eq!(follower_rate(&image, 2), 9);
        assert_eq!(follower_rate(&image, 1), broker_config::UNLIMITED_RATE);
    }
}
