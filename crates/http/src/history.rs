//! `/v1/metrics/history`: the broker's recent throughput, so the console's
//! charts show the last minutes on load instead of starting empty.
//!
//! A sampler task reads [`sluice_metrics::throughput_totals`] every
//! [`SAMPLE_INTERVAL`] and keeps the rates between two readings in a ring
//! of [`MAX_SAMPLES`]; memory is fixed whatever the traffic or the number
//! of topics. The buffer is per process and starts empty at boot.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use serde::Serialize;
use sluice_metrics::ThroughputTotals;
use sluice_runtime::CancellationToken;
use utoipa::ToSchema;

use super::AppState;
use super::auth::{Caller, Operation, Resource};
use super::error::ApiResult;

/// Time between two samples: fine enough to see a burst, coarse enough
/// that a quarter of an hour is a small buffer.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(5);

/// Samples kept: 15 minutes at [`SAMPLE_INTERVAL`] (a few KiB).
pub const MAX_SAMPLES: usize = 180;

/// Rates over one interval, ending at `t_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct HistorySample {
    /// End of the interval, ms since the epoch.
    pub t_ms: i64,
    /// Records appended per second, all topics.
    pub messages_in_per_s: f64,
    /// Record-batch bytes appended per second, all topics.
    pub bytes_in_per_s: f64,
    /// Record-batch bytes served to consumers per second, all topics.
    pub bytes_out_per_s: f64,
}

/// The recent history, oldest sample first.
#[derive(Debug, Serialize, ToSchema)]
pub struct MetricsHistory {
    /// Time between samples, ms.
    pub interval_ms: u64,
    /// How far back the buffer reaches when full, ms.
    pub retention_ms: u64,
    /// Samples since start (at most `retention_ms / interval_ms`).
    pub samples: Vec<HistorySample>,
}

/// The ring of samples and the reading the next rate is measured from.
#[derive(Debug, Default)]
pub struct History {
    /// Held for a push or a copy of at most [`MAX_SAMPLES`] entries; never
    /// across an `.await`.
    inner: Mutex<Ring>,
}

#[derive(Debug, Default)]
struct Ring {
    last: Option<(Instant, ThroughputTotals)>,
    samples: VecDeque<HistorySample>,
}

impl History {
    /// Records the totals read at `at` (wall clock `t_ms`): one sample of
    /// the rates since the previous reading; the first reading only sets
    /// the baseline.
    pub fn observe(&self, at: Instant, t_ms: i64, totals: ThroughputTotals) {
        let mut ring = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((then, before)) = ring.last {
            let secs = at.saturating_duration_since(then).as_secs_f64();
            if secs > 0.0 {
                // Counters only grow; saturating keeps a bug from showing
                // as a huge rate.
                let rate = |now: u64, was: u64| now.saturating_sub(was) as f64 / secs;
                if ring.samples.len() == MAX_SAMPLES {
                    ring.samples.pop_front();
                }
                ring.samples.push_back(HistorySample {
                    t_ms,
                    messages_in_per_s: rate(totals.messages_in, before.messages_in),
                    bytes_in_per_s: rate(totals.bytes_in, before.bytes_in),
                    bytes_out_per_s: rate(totals.bytes_out, before.bytes_out),
                });
            }
        }
        ring.last = Some((at, totals));
    }

    /// The samples, oldest first.
    pub fn samples(&self) -> Vec<HistorySample> {
        let ring = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        ring.samples.iter().copied().collect()
    }

    /// Samples every [`SAMPLE_INTERVAL`] until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(SAMPLE_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {
                    self.observe(
                        Instant::now(),
                        sluice_metadata::now_ms(),
                        sluice_metrics::throughput_totals(),
                    );
                }
            }
        }
    }
}

/// Throughput over the last minutes (all topics), for charts that should
/// not start empty.
#[utoipa::path(get, operation_id = "metrics_history", path = "/v1/metrics/history", tag = "cluster",
    responses((status = 200, description = "Recent throughput, oldest sample first", body = MetricsHistory)))]
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<axum::Json<MetricsHistory>> {
    caller.require(Operation::Describe, Resource::Cluster)?;
    Ok(axum::Json(MetricsHistory {
        interval_ms: SAMPLE_INTERVAL.as_millis() as u64,
        retention_ms: (SAMPLE_INTERVAL * MAX_SAMPLES as u32).as_millis() as u64,
        samples: state.history.samples(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(messages_in: u64, bytes_in: u64, bytes_out: u64) -> ThroughputTotals {
        ThroughputTotals {
            bytes_in,
            messages_in,
            bytes_out,
        }
    }

    #[test]
    fn rates_are_the_difference_over_the_interval() {
        let h = History::default();
        let t0 = Instant::now();
        h.observe(t0, 1_000, totals(100, 1_000, 0));
        assert!(
            h.samples().is_empty(),
            "the first reading is only a baseline"
        );
        h.observe(t0 + Duration::from_secs(5), 6_000, totals(150, 6_000, 500));
        assert_eq!(
            h.samples(),
            vec![HistorySample {
                t_ms: 6_000,
                messages_in_per_s: 10.0,
                bytes_in_per_s: 1_000.0,
                bytes_out_per_s: 100.0,
            }]
        );
    }

    #[test]
    fn the_ring_keeps_only_the_newest_samples() {
        let h = History::default();
        let t0 = Instant::now();
        for i in 0..(MAX_SAMPLES as u64 + 20) {
            h.observe(t0 + Duration::from_secs(i), i as i64, totals(i, 0, 0));
        }
        let samples = h.samples();
        assert_eq!(samples.len(), MAX_SAMPLES);
        assert_eq!(samples[0].t_ms, 20);
        assert_eq!(samples[MAX_SAMPLES - 1].t_ms, MAX_SAMPLES as i64 + 19);
    }
}
