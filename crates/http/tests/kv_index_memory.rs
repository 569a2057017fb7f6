//! Measures what one key of the key-value index really costs, as growth
//! of the process's resident memory, and checks that
//! `ENTRY_OVERHEAD_BYTES` covers it (docs/design.md, "Key-value view").
//! Its own test binary, one test: nothing else allocates meanwhile.

#![cfg(target_os = "linux")]

use std::ops::ControlFlow;
use std::sync::Arc;

use sluice_http::kv_index::{ENTRY_OVERHEAD_BYTES, KvIndexes, Seen, Source};

/// The process's resident memory, from `/proc/self/status` (`VmRSS`, in
/// kB): what entries really cost, allocator headers and rounding included.
fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// A log of distinct keys of `KEY_BYTES` bytes, one per offset.
struct Keys {
    keys: Vec<[u8; KEY_BYTES]>,
}

const KEY_BYTES: usize = 16;

impl Source for Keys {
    type Error = ();

    fn epoch(&self) -> i32 {
        0
    }

    fn log_start_offset(&self) -> i64 {
        0
    }

    fn upper(&self) -> i64 {
        self.keys.len() as i64
    }

    fn visit(
        &self,
        from: i64,
        seen: &mut dyn FnMut(Seen<'_>) -> ControlFlow<()>,
    ) -> Result<i64, ()> {
        for (offset, key) in self.keys.iter().enumerate().skip(from as usize) {
            let flow = seen(Seen {
                offset: offset as i64,
                timestamp_ms: 0,
                key: Some(key),
                tombstone: false,
            });
            if flow.is_break() {
                return Ok(offset as i64 + 1);
            }
        }
        Ok(self.keys.len() as i64)
    }
}

/// Resident bytes one entry costs when `keys` are indexed in their order,
/// as partition `partition` of `indexes` (kept alive, so the next
/// measurement cannot reuse its memory).
fn measured_bytes_per_entry(
    indexes: &KvIndexes<Keys>,
    partition: i32,
    source: &Arc<Keys>,
) -> usize {
    let count = source.keys.len();
    let before = rss_bytes();
    let held = indexes
        .with_index("t", partition, source, |i| i.len())
        .unwrap_or_else(|_| panic!("the index builds"));
    let after = rss_bytes();
    assert_eq!(held, count);
    after.saturating_sub(before) / count
}

#[test]
fn entry_overhead_covers_what_an_entry_really_costs() {
    const COUNT: u64 = 300_000;
    let key = |i: u64| {
        let mut k = [0u8; KEY_BYTES];
        k[..8].copy_from_slice(&i.to_be_bytes());
        k
    };
    // Keys in increasing order (ids written in sequence) fill B-tree
    // leaves least; a multiplicative hash gives a random order.
    let sequential = Arc::new(Keys {
        keys: (0..COUNT).map(key).collect(),
    });
    let random = Arc::new(Keys {
        keys: (0..COUNT)
            .map(|i| key(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
            .collect(),
    });
    let indexes = KvIndexes::new(usize::MAX);
    let measured = [
        measured_bytes_per_entry(&indexes, 0, &sequential),
        measured_bytes_per_entry(&indexes, 1, &random),
    ];
    println!(
        "resident bytes per entry with a {KEY_BYTES}-byte key (sequential, random): {measured:?}"
    );
    assert!(rss_bytes() > 0, "VmRSS is readable");
    let (accounted, keys) = indexes.totals();
    assert_eq!(keys as u64, 2 * COUNT);
    assert_eq!(accounted, keys * (KEY_BYTES + ENTRY_OVERHEAD_BYTES));
    for m in measured {
        assert!(
            m <= KEY_BYTES + ENTRY_OVERHEAD_BYTES,
            "an entry costs {m} bytes, more than the {} accounted",
            KEY_BYTES + ENTRY_OVERHEAD_BYTES
        );
    }
}
