//! The measured window of a bench run and what is counted inside it: the
//! headline counts, the whole-window latency histogram, and the per-period
//! time series for CSV and PNG. Owns no I/O and starts no tasks.
//!
//! A run has three phases, fixed once every client is connected (setup is
//! never measured): the warm-up, the measured window, and for `--duration`
//! runs the deadline that ends it. A *completion* (an acknowledgement, a
//! consumed batch) counts only when it happens inside the window, so the
//! warm-up and the drain after the deadline add nothing to the counts, the
//! percentiles or the time series. This is how the OpenMessaging Benchmark
//! reads its numbers: reset after warm-up, snapshot at the end.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;

use crate::chart::Sample;
use crate::common::CliError;

/// Latency histogram range: 1 µs to 10 minutes, 3 significant digits.
/// Anything slower is recorded as 10 minutes (the request time-out is far
/// shorter, so only a bug gets there).
const HIST_MAX_US: u64 = 600_000_000;
/// Period of the time series written to CSV/PNG.
pub const SAMPLE_PERIOD: Duration = Duration::from_secs(1);

/// The phases of one run.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Setup is done: producers and consumers start here.
    pub start: Instant,
    /// Wall-clock µs since the epoch at `start`, to stamp e2e values with
    /// a clock the consumer in this process reads the same way.
    start_epoch_us: u64,
    /// Completions before this are warm-up: not measured.
    pub warmup_end: Instant,
    /// A `--duration` run stops sending here, and nothing after it counts.
    pub deadline: Option<Instant>,
}

impl Window {
    /// Phases starting now: `warmup`, then `duration` if the run is timed.
    pub fn starting_now(warmup: Duration, duration: Option<Duration>) -> Window {
        let start = Instant::now();
        let start_epoch_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let warmup_end = start + warmup;
        Window {
            start,
            start_epoch_us,
            warmup_end,
            deadline: duration.map(|d| warmup_end + d),
        }
    }

    /// Whether a completion at `at` is measured.
    pub fn measures(&self, at: Instant) -> bool {
        at >= self.warmup_end && self.deadline.is_none_or(|d| at < d)
    }

    /// Whether a timed run has reached its deadline.
    pub fn is_over(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|d| now >= d)
    }

    /// `at` as µs since the epoch, on this run's monotonic clock (a wall
    /// clock step during the run does not show up as latency).
    pub fn epoch_us(&self, at: Instant) -> u64 {
        self.start_epoch_us + at.saturating_duration_since(self.start).as_micros() as u64
    }
}

/// Counters and histograms of one run, shared by every task.
pub struct Stats {
    window: Window,
    /// Every completion, warm-up included: drives the progress bar only.
    progress_messages: AtomicU64,
    /// Bytes of every completion, warm-up included (progress bar).
    progress_bytes: AtomicU64,
    /// What the report is made of. A std mutex: each completion holds it
    /// for a few histogram updates and never across an await.
    measured: Mutex<Measured>,
}

struct Measured {
    messages: u64,
    bytes: u64,
    latency_us: Histogram<u64>,
    /// The last measured completion: where a `--messages` run's window ends.
    last: Option<Instant>,
    series: Series,
}

/// The time series, built from completions rather than from a timer, so
/// each sample covers exactly one period of the window.
struct Series {
    /// Index of the period completions now land in (0 = the first period
    /// after the warm-up).
    current: u64,
    messages: u64,
    bytes: u64,
    latency_us: Histogram<u64>,
    /// Closed periods, in order, one per period with none missing.
    samples: Vec<Sample>,
}

/// The report's numbers, read once the run is over.
#[derive(Debug)]
pub struct Summary {
    /// Completed records in the window.
    pub messages: u64,
    /// Their value bytes.
    pub bytes: u64,
    /// Window length: warm-up end to the deadline, or to the last measured
    /// completion of a `--messages` run.
    pub elapsed: Duration,
    /// Latency percentiles in µs: p50, p90, p99, p99.9, max (0 if empty).
    pub latency_us: [u64; 5],
    /// Full periods of the window; a partial last one is dropped.
    pub samples: Vec<Sample>,
}

fn histogram() -> Result<Histogram<u64>, CliError> {
    Histogram::new_with_bounds(1, HIST_MAX_US, 3)
        .map_err(|e| CliError::Other(format!("histogram: {e}")))
}

/// Microseconds as milliseconds, for reports.
pub fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

impl Stats {
    /// Empty stats for a run with these phases.
    pub fn new(window: Window) -> Result<Stats, CliError> {
        Ok(Stats {
            window,
            progress_messages: AtomicU64::new(0),
            progress_bytes: AtomicU64::new(0),
            measured: Mutex::new(Measured {
                messages: 0,
                bytes: 0,
                latency_us: histogram()?,
                last: None,
                series: Series {
                    current: 0,
                    messages: 0,
                    bytes: 0,
                    latency_us: histogram()?,
                    samples: Vec::new(),
                },
            }),
        })
    }

    /// The run's phases.
    pub fn window(&self) -> Window {
        self.window
    }

    /// Messages and bytes completed so far, warm-up included.
    pub fn progress(&self) -> (u64, u64) {
        (
            self.progress_messages.load(Ordering::Relaxed),
            self.progress_bytes.load(Ordering::Relaxed),
        )
    }

    /// Records `messages` records of `bytes` value bytes completed at
    /// `at`, with one latency (µs) per measured event: one per record for
    /// produce and e2e, one per fetch for consume.
    pub fn complete(
        &self,
        at: Instant,
        messages: u64,
        bytes: u64,
        latencies_us: impl IntoIterator<Item = u64>,
    ) {
        self.progress_messages
            .fetch_add(messages, Ordering::Relaxed);
        self.progress_bytes.fetch_add(bytes, Ordering::Relaxed);
        if !self.window.measures(at) {
            return;
        }
        let period = (at - self.window.warmup_end).as_nanos() / SAMPLE_PERIOD.as_nanos();
        let period = u64::try_from(period).unwrap_or(u64::MAX);
        let Ok(mut m) = self.measured.lock() else {
            return;
        };
        let m = &mut *m;
        m.messages += messages;
        m.bytes += bytes;
        m.last = Some(m.last.map_or(at, |last| last.max(at)));
        m.series.roll_to(period);
        m.series.messages += messages;
        m.series.bytes += bytes;
        for us in latencies_us {
            let us = us.max(1);
            m.latency_us.saturating_record(us);
            m.series.latency_us.saturating_record(us);
        }
    }

    /// The numbers of the run, with the window ending at the deadline for
    /// a timed run (or `now`, if it ended earlier) and at the last measured
    /// completion otherwise.
    pub fn summary(&self, now: Instant) -> Summary {
        let w = self.window;
        let Ok(mut m) = self.measured.lock() else {
            return Summary {
                messages: 0,
                bytes: 0,
                elapsed: Duration::ZERO,
                latency_us: [0; 5],
                samples: Vec::new(),
            };
        };
        let end = match w.deadline {
            Some(deadline) => deadline.min(now),
            None => m.last.unwrap_or(w.warmup_end),
        };
        let elapsed = end.saturating_duration_since(w.warmup_end);
        let full_periods = (elapsed.as_nanos() / SAMPLE_PERIOD.as_nanos()) as u64;
        let h = &m.latency_us;
        let q = |q: f64| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(q)
            }
        };
        let latency_us = [q(0.5), q(0.9), q(0.99), q(0.999), h.max()];
        let samples = m.series.finish(full_periods);
        Summary {
            messages: m.messages,
            bytes: m.bytes,
            elapsed,
            latency_us,
            samples,
        }
    }
}

impl Series {
    /// Closes every period before `period`, an empty one for each gap (a
    /// stall shows as zero throughput, not as a missing point). A late
    /// completion from an earlier period counts in the current one.
    fn roll_to(&mut self, period: u64) {
        while self.current < period {
            self.close();
        }
    }

    fn close(&mut self) {
        let secs = SAMPLE_PERIOD.as_secs_f64();
        let h = &self.latency_us;
        let q = |q: f64| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(q)
            }
        };
        self.samples.push(Sample {
            elapsed_s: (self.current + 1) as f64 * secs,
            messages_per_sec: self.messages as f64 / secs,
            mb_per_sec: self.bytes as f64 / secs / (1024.0 * 1024.0),
            latency_ms_p50: ms(q(0.5)),
            latency_ms_p99: ms(q(0.99)),
            latency_ms_max: ms(h.max()),
        });
        self.current += 1;
        self.messages = 0;
        self.bytes = 0;
        self.latency_us.reset();
    }

    /// The first `full_periods` samples; the period still open is partial
    /// (the window ended inside it) and would read as a dip, so it is left
    /// out.
    fn finish(&mut self, full_periods: u64) -> Vec<Sample> {
        self.roll_to(full_periods);
        let mut samples = std::mem::take(&mut self.samples);
        samples.truncate(usize::try_from(full_periods).unwrap_or(usize::MAX));
        samples
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(warmup_ms: u64, duration_ms: Option<u64>) -> Window {
        Window::starting_now(
            Duration::from_millis(warmup_ms),
            duration_ms.map(Duration::from_millis),
        )
    }

    #[test]
    fn warm_up_and_after_the_deadline_are_not_measured() {
        let w = window(1000, Some(2000));
        let stats = Stats::new(w).expect("stats");
        let at = |ms: u64| w.start + Duration::from_millis(ms);
        stats.complete(at(500), 10, 100, [5_000]);
        stats.complete(at(1500), 3, 30, [1_000, 2_000, 3_000]);
        stats.complete(at(3200), 7, 70, [9_000_000]);
        assert_eq!(stats.progress(), (20, 200), "the bar sees everything");
        let s = stats.summary(at(4000));
        assert_eq!((s.messages, s.bytes), (3, 30));
        assert_eq!(s.elapsed, Duration::from_secs(2), "window, not wall time");
        // HDR reports the top of the 3-digit bucket holding 3000 µs.
        let max = s.latency_us[4];
        assert!(
            (3_000..3_010).contains(&max),
            "max {max} excludes warm-up and drain"
        );
    }

    #[test]
    fn a_count_run_ends_at_its_last_measured_completion() {
        let w = window(0, None);
        let stats = Stats::new(w).expect("stats");
        stats.complete(w.start + Duration::from_millis(2500), 1, 1, [1]);
        let s = stats.summary(w.start + Duration::from_secs(60));
        assert_eq!(s.elapsed, Duration::from_millis(2500));
        assert_eq!(s.samples.len(), 2, "the partial third second is dropped");
    }

    #[test]
    fn the_series_has_one_sample_per_full_period_and_zeros_for_stalls() {
        let w = window(0, Some(3500));
        let stats = Stats::new(w).expect("stats");
        let at = |ms: u64| w.start + Duration::from_millis(ms);
        stats.complete(at(100), 100, 1000, [10]);
        stats.complete(at(900), 100, 1000, [10]);
        // Nothing in the second period: a stall.
        stats.complete(at(2100), 50, 500, [10]);
        stats.complete(at(3400), 999, 9990, [10]);
        let s = stats.summary(at(3600));
        let rates: Vec<f64> = s.samples.iter().map(|x| x.messages_per_sec).collect();
        assert_eq!(rates, [200.0, 0.0, 50.0], "3.5 s hold three full periods");
        let ends: Vec<f64> = s.samples.iter().map(|x| x.elapsed_s).collect();
        assert_eq!(ends, [1.0, 2.0, 3.0]);
    }
}
