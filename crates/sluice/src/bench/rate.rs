//! `--rate`: a fixed offered load, and the schedule that holds a producer
//! to its share of it. Owns no I/O and no clock of its own: the caller says
//! when the schedule starts.

use std::time::{Duration, Instant};

/// The lowest pace we accept, in records per second across all producers:
/// below it a short run would send nothing and measure nothing.
pub const MIN_RECORDS_PER_SEC: f64 = 1.0;
/// The highest pace we accept. A timer cannot space sends finer than about
/// a millisecond, so beyond this a "rate" is only bursts; run without
/// `--rate` to send as fast as the producer can.
pub const MAX_RECORDS_PER_SEC: f64 = 1e9;
/// Longest `--rate` text we parse; anything longer is a typo, not a rate.
const MAX_RATE_TEXT: usize = 32;

/// A target load given with `--rate`, in total across producers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// Records per second (`--rate 20000`).
    Records(f64),
    /// Bytes of record values per second (`--rate 100MB`, `--rate 20MiB`).
    Bytes(f64),
}

impl Rate {
    /// Records per second for values of `message_size` bytes.
    pub fn records_per_sec(self, message_size: usize) -> f64 {
        match self {
            Rate::Records(n) => n,
            Rate::Bytes(b) => b / message_size.max(1) as f64,
        }
    }
}

/// Byte units `--rate` accepts. Decimal units are powers of 1000 and binary
/// ones powers of 1024, as in IEC 80000-13; `B` is always upper case so
/// that `Mb` (megabits) is refused instead of guessed.
const BYTE_UNITS: &[(&str, f64)] = &[
    ("B", 1.0),
    ("kB", 1e3),
    ("KB", 1e3),
    ("MB", 1e6),
    ("GB", 1e9),
    ("KiB", 1024.0),
    ("MiB", 1024.0 * 1024.0),
    ("GiB", 1024.0 * 1024.0 * 1024.0),
];

/// Parses `--rate`: `N` records per second, or `N` followed by a byte unit
/// (`B`, `kB`, `MB`, `GB`, `KiB`, `MiB`, `GiB`) for bytes of record values
/// per second. `N` may have a fraction; a trailing `/s` is allowed.
pub fn parse_rate(s: &str) -> Result<Rate, String> {
    let usage = || {
        format!(
            "'{s}' is not a rate: give records per second (20000) or bytes per second \
             with a unit (100MB, 20MiB; units B, kB, MB, GB, KiB, MiB, GiB)"
        )
    };
    if s.len() > MAX_RATE_TEXT {
        return Err(usage());
    }
    let text = s.strip_suffix("/s").unwrap_or(s);
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    // Only plain decimals: f64's parser would also take "inf", "NaN" and "1e9".
    let well_formed = !number.is_empty()
        && number.chars().filter(|&c| c == '.').count() <= 1
        && number.chars().any(|c| c.is_ascii_digit());
    let value: f64 = match number.parse() {
        Ok(v) if well_formed => v,
        _ => return Err(usage()),
    };
    if value <= 0.0 || !value.is_finite() {
        return Err(format!("'{s}' is not a rate: it must be above zero"));
    }
    if unit.is_empty() {
        return Ok(Rate::Records(value));
    }
    match BYTE_UNITS.iter().find(|(name, _)| *name == unit) {
        Some((_, scale)) => Ok(Rate::Bytes(value * scale)),
        None => Err(usage()),
    }
}

/// When each record of one producer is due: `first + k / per_sec` for the
/// k-th record. Latency is measured from these times, not from when the
/// send really happened, so a producer that falls behind during a stall
/// reports the stall instead of hiding it (coordinated omission).
#[derive(Debug)]
pub struct Schedule {
    first: Instant,
    per_sec: f64,
    next: u64,
}

impl Schedule {
    /// A schedule of `per_sec` records per second starting at `first`.
    pub fn new(first: Instant, per_sec: f64) -> Schedule {
        Schedule {
            first,
            per_sec,
            next: 0,
        }
    }

    /// The intended send time of the next record, or `None` once it lies
    /// beyond what `Instant` can represent (never, for accepted rates).
    pub fn next_due(&mut self) -> Option<Instant> {
        // `as u64` saturates, so a huge offset cannot wrap.
        let offset_ns = (self.next as f64 * 1e9 / self.per_sec) as u64;
        self.next += 1;
        self.first.checked_add(Duration::from_nanos(offset_ns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_records_or_bytes_with_a_unit() {
        assert_eq!(parse_rate("20000"), Ok(Rate::Records(20000.0)));
        assert_eq!(parse_rate("2.5"), Ok(Rate::Records(2.5)));
        assert_eq!(parse_rate("500/s"), Ok(Rate::Records(500.0)));
        assert_eq!(parse_rate("100MB"), Ok(Rate::Bytes(100e6)));
        assert_eq!(parse_rate("100MB/s"), Ok(Rate::Bytes(100e6)));
        assert_eq!(parse_rate("20MiB"), Ok(Rate::Bytes(20.0 * 1024.0 * 1024.0)));
        assert_eq!(parse_rate("1.5kB"), Ok(Rate::Bytes(1500.0)));
        assert_eq!(parse_rate("64B"), Ok(Rate::Bytes(64.0)));
    }

    #[test]
    fn malformed_rates_are_refused_with_the_syntax() {
        for bad in [
            "", "fast", "0", "0.0", "-5", "1e6", "inf", "NaN", "1.2.3", ".", "10Mb", "10 MB",
            "10mb", "10k", "MB", "10MB/h",
        ] {
            let err = parse_rate(bad).expect_err(bad);
            assert!(err.contains(&format!("'{bad}'")), "{bad}: {err}");
        }
        let long = "1".repeat(400);
        assert!(parse_rate(&long).is_err(), "a 400-digit rate is refused");
    }

    #[test]
    fn byte_rates_become_records_of_the_message_size() {
        assert_eq!(Rate::Bytes(1024.0 * 100.0).records_per_sec(1024), 100.0);
        assert_eq!(Rate::Records(7.0).records_per_sec(1024), 7.0);
        assert_eq!(Rate::Bytes(10.0).records_per_sec(0), 10.0);
    }

    #[test]
    fn a_schedule_spaces_records_evenly_from_its_start() {
        let start = Instant::now();
        let mut s = Schedule::new(start, 4.0);
        let due: Vec<Duration> = (0..5).map(|_| s.next_due().expect("due") - start).collect();
        let ms: Vec<u128> = due.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [0, 250, 500, 750, 1000]);
    }
}
