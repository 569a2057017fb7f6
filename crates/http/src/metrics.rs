//! `/metrics`: the request-path families from [`sluice_metrics`], then
//! gauges read from broker state at scrape time, so a deleted partition's
//! label sets disappear with the partition.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use sluice_broker::Broker;
use sluice_metrics::{LagLabels, PartitionLabels};

/// One partition's lag for a group, as the scrape reports it.
#[derive(Debug, Clone)]
pub struct GroupLag {
    /// Group id.
    pub group: String,
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// High watermark minus committed offset, never negative.
    pub lag: i64,
}

/// The whole exposition: request-path families, then gauges read from the
/// broker now. `lags` is the consumer lag the caller computed.
pub fn encode(broker: &Broker, lags: &[GroupLag]) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::with_prefix("sluice");
    sluice_metrics::register(&mut registry);
    let end_offset = Family::<PartitionLabels, Gauge>::default();
    let high_watermark = Family::<PartitionLabels, Gauge>::default();
    let start_offset = Family::<PartitionLabels, Gauge>::default();
    let size = Family::<PartitionLabels, Gauge>::default();
    let dirty_ratio = Family::<PartitionLabels, Gauge<f64, AtomicU64>>::default();
    let since_clean = Family::<PartitionLabels, Gauge>::default();
    let now_ms = sluice_metadata::now_ms();
    for p in broker.replicas.all() {
        let labels = PartitionLabels {
            topic: p.tp.topic.clone(),
            partition: p.tp.partition.to_string(),
        };
        let log = p.log();
        end_offset.get_or_create(&labels).set(log.log_end_offset());
        high_watermark
            .get_or_create(&labels)
            .set(p.high_watermark());
        start_offset
            .get_or_create(&labels)
            .set(log.log_start_offset());
        size.get_or_create(&labels)
            .set(i64::try_from(log.size_bytes()).unwrap_or(i64::MAX));
        if let Some(ratio) = log.dirty_ratio(now_ms, p.high_watermark()) {
            dirty_ratio.get_or_create(&labels).set(ratio);
        }
        if let Some(at) = log.last_clean_ms() {
            since_clean
                .get_or_create(&labels)
                .set(now_ms.saturating_sub(at).max(0) / 1000);
        }
    }
    registry.register(
        "log_end_offset",
        "Offset the next append will get, by partition",
        end_offset,
    );
    registry.register(
        "log_high_watermark",
        "Offset below which records are visible to consumers, by partition",
        high_watermark,
    );
    registry.register(
        "log_start_offset",
        "First offset still in the log, by partition",
        start_offset,
    );
    registry.register(
        "log_size_bytes",
        "Bytes of segment files, by partition",
        size,
    );

    registry.register(
        "log_cleaner_dirty_ratio",
        "Dirty bytes over cleanable bytes of a compacted partition (compared with min.cleanable.dirty.ratio)",
        dirty_ratio,
    );
    registry.register(
        "log_cleaner_seconds_since_last_clean",
        "Seconds since the cleaner last finished a clean of a compacted partition (absent until the first since start)",
        since_clean,
    );

    let lag = Family::<LagLabels, Gauge>::default();
    for l in lags {
        lag.get_or_create(&LagLabels {
            group: l.group.clone(),
            topic: l.topic.clone(),
            partition: l.partition.to_string(),
        })
        .set(l.lag);
    }
    registry.register(
        "consumer_group_lag",
        "High watermark minus the group's committed offset, by group and partition",
        lag,
    );
    let uptime = Gauge::<i64>::default();
    uptime.set(i64::try_from(broker.started.elapsed().as_secs()).unwrap_or(i64::MAX));
    registry.register("uptime_seconds", "Seconds since the broker started", uptime);

    let mut out = String::new();
    encode_registry(&mut out, &registry)?;
    encode_eof(&mut out)?;
    Ok(out)
}
