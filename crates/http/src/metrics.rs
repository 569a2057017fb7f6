//! `/metrics`: the request-path families from [`sluice_metrics`], then
//! gauges read from broker state at scrape time, so a deleted partition's
//! label sets disappear with the partition, then the standard `process_*`
//! metrics (unprefixed).
//!
//! Everything read at scrape time is already in memory (log sizes and
//! segment counts, the ISR, the metadata image) or one small system call
//! (`statvfs`, `/proc/self`): a scrape never walks the data directory.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use sluice_broker::Broker;
use sluice_metadata::MetadataImage;
use sluice_metrics::{DirLabels, LagLabels, PartitionLabels};

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
    sluice_metrics::register_build_info(&mut registry);
    let end_offset = Family::<PartitionLabels, Gauge>::default();
    let high_watermark = Family::<PartitionLabels, Gauge>::default();
    let start_offset = Family::<PartitionLabels, Gauge>::default();
    let size = Family::<PartitionLabels, Gauge>::default();
    let dirty_ratio = Family::<PartitionLabels, Gauge<f64, AtomicU64>>::default();
    let since_clean = Family::<PartitionLabels, Gauge>::default();
    let segments = Family::<PartitionLabels, Gauge>::default();
    let now_ms = sluice_metadata::now_ms();
    let mut counts = PartitionCounts::default();
    let mut log_bytes: u64 = 0;
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
        let bytes = log.size_bytes();
        log_bytes = log_bytes.saturating_add(bytes);
        size.get_or_create(&labels)
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        segments
            .get_or_create(&labels)
            .set(i64::try_from(log.segment_count()).unwrap_or(i64::MAX));
        counts.add(p.is_leader(), p.replication_health());
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
    registry.register("log_segments", "Segment files, by partition", segments);
    counts.offline = offline_partitions(&broker.metadata.image());
    counts.register(&mut registry);
    register_disk(&mut registry, broker, log_bytes);

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

    let mut process = Registry::default();
    sluice_metrics::register_process(&mut process);

    let mut out = String::new();
    encode_registry(&mut out, &registry)?;
    encode_registry(&mut out, &process)?;
    encode_eof(&mut out)?;
    Ok(out)
}

/// Partition counts of one scrape (Kafka's ReplicaManager and controller
/// gauges).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct PartitionCounts {
    /// Replicas hosted here, led or followed (Kafka's PartitionCount).
    hosted: i64,
    /// Partitions led here (Kafka's LeaderCount).
    leader: i64,
    /// Led here with the ISR smaller than the replica set.
    under_replicated: i64,
    /// Led here with the ISR smaller than `min.insync.replicas`.
    under_min_isr: i64,
    /// Partitions of the cluster without a leader.
    offline: i64,
}

impl PartitionCounts {
    fn add(&mut self, leads: bool, health: sluice_replica::ReplicationHealth) {
        self.hosted += 1;
        self.leader += i64::from(leads);
        self.under_replicated += i64::from(health.under_replicated);
        self.under_min_isr += i64::from(health.under_min_isr);
    }

    fn register(self, registry: &mut Registry) {
        let gauges = [
            (
                "partitions",
                "Partition replicas hosted by this broker, led or followed",
                self.hosted,
            ),
            (
                "leader_partitions",
                "Partitions this broker leads",
                self.leader,
            ),
            (
                "under_replicated_partitions",
                "Partitions this broker leads whose ISR is smaller than their replica set",
                self.under_replicated,
            ),
            (
                "under_min_isr_partitions",
                "Partitions this broker leads whose ISR is smaller than min.insync.replicas (acks=all produces fail)",
                self.under_min_isr,
            ),
            (
                "offline_partitions",
                "Partitions of the cluster without a leader, as this broker's metadata image has them (the same on every broker: aggregate with max, not sum)",
                self.offline,
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = Gauge::<i64>::default();
            gauge.set(value);
            registry.register(name, help, gauge);
        }
    }
}

/// Partitions in `image` without a leader (Kafka's OfflinePartitionsCount:
/// the controller sets the leader to none when no ISR member is alive).
fn offline_partitions(image: &MetadataImage) -> i64 {
    let offline = image
        .topics
        .values()
        .flat_map(|t| t.partitions.values())
        .filter(|p| p.leader < 0)
        .count();
    i64::try_from(offline).unwrap_or(i64::MAX)
}

/// Disk gauges of the data directory: the file system's size, use and
/// space left, and the bytes of the partition logs in it (the sum of
/// `log_size_bytes`, kept in memory; segment files only).
fn register_disk(registry: &mut Registry, broker: &Broker, log_bytes: u64) {
    let labels = DirLabels {
        dir: broker.config.data_dir.display().to_string(),
    };
    let gauge = |value: u64| {
        let family = Family::<DirLabels, Gauge>::default();
        family
            .get_or_create(&labels)
            .set(i64::try_from(value).unwrap_or(i64::MAX));
        family
    };
    registry.register(
        "disk_log_bytes",
        "Bytes of partition segment files in the data directory",
        gauge(log_bytes),
    );
    // A file system that will not answer leaves the rest out rather than
    // failing the scrape; `/ready` reports offline logs.
    let Some(space) = sluice_broker::datadir::disk_space(&broker.config.data_dir) else {
        return;
    };
    registry.register(
        "disk_total_bytes",
        "Size of the file system holding the data directory",
        gauge(space.total_bytes),
    );
    registry.register(
        "disk_used_bytes",
        "Bytes in use on the file system holding the data directory",
        gauge(space.used_bytes),
    );
    registry.register(
        "disk_free_bytes",
        "Bytes Sluice can still write on the file system holding the data directory (root's reserve excluded)",
        gauge(space.available_bytes),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_partitions_are_the_leaderless_ones() {
        let mut image = MetadataImage::default();
        assert_eq!(offline_partitions(&image), 0);
        let mut topic = sluice_metadata::TopicImage {
            name: "t".to_owned(),
            topic_id: uuid::Uuid::from_u128(1),
            partitions: Default::default(),
            configs: Default::default(),
        };
        for (index, leader) in [(0, 1), (1, -1), (2, 3), (3, -1)] {
            topic.partitions.insert(
                index,
                sluice_metadata::PartitionImage {
                    leader,
                    replicas: vec![1, 2, 3],
                    isr: if leader < 0 { vec![] } else { vec![leader] },
                    leader_epoch: 0,
                    partition_epoch: 0,
                    adding_replicas: vec![],
                    removing_replicas: vec![],
                },
            );
        }
        image.topics.insert("t".to_owned(), topic);
        assert_eq!(offline_partitions(&image), 2);
    }

    #[test]
    fn partition_counts_add_up_led_and_short_partitions() {
        use sluice_replica::ReplicationHealth;
        let mut counts = PartitionCounts::default();
        counts.add(true, ReplicationHealth::of(3, 3, 2));
        counts.add(true, ReplicationHealth::of(3, 2, 2));
        counts.add(true, ReplicationHealth::of(3, 1, 2));
        // A follower reports nothing (`Partition::replication_health`).
        counts.add(false, ReplicationHealth::default());
        assert_eq!(
            counts,
            PartitionCounts {
                hosted: 4,
                leader: 3,
                under_replicated: 2,
                under_min_isr: 1,
                offline: 0,
            }
        );
    }
}
