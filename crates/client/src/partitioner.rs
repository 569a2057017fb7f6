//! Key partitioning identical to the Java client's `Utils.murmur2` and
//! librdkafka's `murmur2_random` partitioner, so a key lands on the same
//! partition whichever client wrote it.

use std::sync::atomic::{AtomicU32, Ordering};

pub use sluice_records::keys::{murmur2, partition_for_key, to_positive};

/// Picks partitions: murmur2 for keyed records, round-robin for null keys
/// (librdkafka's `murmur2_random` picks randomly; any spread is valid).
#[derive(Debug, Default)]
pub struct Partitioner {
    next: AtomicU32,
}

impl Partitioner {
    /// Partition for an optional key among `partitions`.
    pub fn partition(&self, key: Option<&[u8]>, partitions: i32) -> i32 {
        match key {
            Some(k) => partition_for_key(k, partitions),
            None if partitions > 0 => {
                let n = self.next.fetch_add(1, Ordering::Relaxed);
                (n % partitions as u32) as i32
            }
            None => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_keys_spread_over_all_partitions() {
        let p = Partitioner::default();
        let mut seen = [false; 3];
        for _ in 0..3 {
            seen[p.partition(None, 3) as usize] = true;
        }
        assert_eq!(seen, [true; 3]);
    }
}
