//! Picking a partition for a record the caller did not place.
//!
//! Keyed records go where the Java client's `Utils.murmur2` and
//! librdkafka's `murmur2_random` put them, so a key lands on the same
//! partition whichever client wrote it.
//!
//! Records without a key follow the Java client's default since KIP-480
//! and KIP-794 (librdkafka's `sticky.partitioning.linger.ms` does the same
//! by time): they stick to one partition until `batch.size` bytes went to
//! it, then move on to the next. Spreading them one record per partition
//! would make a batch of every record once a topic has more partitions
//! than a linger holds records: with 1,000 partitions, a thousand
//! one-record batches, each its own append, fsync and response entry, where
//! the sticky choice sends a few full ones. Over time every partition gets
//! the same share.

use std::collections::HashMap;
use std::sync::Mutex;

pub use sluice_records::keys::{murmur2, partition_for_key, to_positive};

/// How records without a key are spread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NullKeys {
    /// Stick to one partition for `batch.size` bytes, then move to the
    /// next (the Java client's default; librdkafka's by time).
    #[default]
    Sticky,
    /// A different partition for every record: one-record batches when
    /// partitions outnumber what a linger gathers. The worst case, kept for
    /// measuring it.
    RoundRobin,
}

/// Picks partitions for one producer.
#[derive(Debug)]
pub struct Partitioner {
    null_keys: NullKeys,
    /// Bytes a sticky partition takes before the next one is used (the
    /// producer's `batch.size`).
    stick_bytes: usize,
    /// Per topic: where null-key records go now.
    sticky: Mutex<HashMap<String, Sticky>>,
}

#[derive(Debug, Clone, Copy)]
struct Sticky {
    partition: i32,
    bytes: usize,
}

impl Default for Partitioner {
    fn default() -> Self {
        Partitioner::new(NullKeys::default(), 16 * 1024)
    }
}

impl Partitioner {
    /// A partitioner spreading null keys as `null_keys` says, sticking for
    /// `stick_bytes` (at least one record) under [`NullKeys::Sticky`].
    pub fn new(null_keys: NullKeys, stick_bytes: usize) -> Partitioner {
        Partitioner {
            null_keys,
            stick_bytes,
            sticky: Mutex::new(HashMap::new()),
        }
    }

    /// Partition of `topic` (with `partitions` partitions) for a record of
    /// `size` bytes with an optional key.
    pub fn partition(&self, topic: &str, key: Option<&[u8]>, size: usize, partitions: i32) -> i32 {
        if let Some(k) = key {
            return partition_for_key(k, partitions);
        }
        if partitions <= 0 {
            return 0;
        }
        let mut sticky = self.sticky.lock().unwrap_or_else(|p| p.into_inner());
        let entry = match sticky.get_mut(topic) {
            Some(entry) => entry,
            None => sticky.entry(topic.to_owned()).or_insert(Sticky {
                // Producers start on different partitions.
                partition: start_partition(partitions),
                bytes: 0,
            }),
        };
        let moves = match self.null_keys {
            NullKeys::RoundRobin => entry.bytes > 0,
            NullKeys::Sticky => entry.bytes >= self.stick_bytes,
        };
        // A topic that shrank in our metadata (it cannot in Kafka, but a
        // deleted and recreated one can) must not keep a partition past
        // its end.
        if moves || entry.partition >= partitions {
            entry.partition = (entry.partition + 1) % partitions;
            entry.bytes = 0;
        }
        entry.bytes = entry.bytes.saturating_add(size.max(1));
        entry.partition
    }
}

/// A starting partition that differs between producers created at
/// different times, so several of them do not march in step.
fn start_partition(partitions: i32) -> i32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    to_positive(murmur2(&nanos.to_be_bytes())) % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_keys_stick_for_a_batch_then_move_and_reach_every_partition() {
        let p = Partitioner::new(NullKeys::Sticky, 1000);
        let first = p.partition("t", None, 100, 3);
        for _ in 0..9 {
            assert_eq!(
                p.partition("t", None, 100, 3),
                first,
                "moved before 1000 bytes"
            );
        }
        let second = p.partition("t", None, 100, 3);
        assert_eq!(second, (first + 1) % 3, "did not move after 1000 bytes");
        let mut counts = [0; 3];
        counts[first as usize] += 10;
        counts[second as usize] += 1;
        for _ in 0..(30 * 10 - 11) {
            counts[p.partition("t", None, 100, 3) as usize] += 1;
        }
        assert_eq!(counts, [100; 3], "every partition gets the same share");
        // Another topic has its own sticky partition and count.
        let other = p.partition("u", None, 5000, 2);
        assert_ne!(
            p.partition("u", None, 10, 2),
            other,
            "a full batch moves on"
        );
    }

    #[test]
    fn round_robin_moves_every_record_and_keys_ignore_the_sticky_choice() {
        let p = Partitioner::new(NullKeys::RoundRobin, 1 << 20);
        let mut seen = [false; 3];
        for _ in 0..3 {
            seen[p.partition("t", None, 10, 3) as usize] = true;
        }
        assert_eq!(seen, [true; 3]);
        let sticky = Partitioner::default();
        assert_eq!(
            sticky.partition("t", Some(b"key"), 10, 12),
            partition_for_key(b"key", 12),
            "a keyed record goes where murmur2 puts it"
        );
    }

    #[test]
    fn a_partition_past_a_shrunken_topic_is_never_returned() {
        let p = Partitioner::new(NullKeys::Sticky, 1 << 20);
        for _ in 0..5 {
            assert!(p.partition("t", None, 10, 8) < 8);
        }
        for _ in 0..5 {
            assert!(p.partition("t", None, 10, 2) < 2);
        }
        assert_eq!(p.partition("t", None, 10, 0), 0);
    }
}
