//! Automatic preferred-leader balancing (Kafka's
//! `auto.leader.rebalance.enable`): every
//! `leader.imbalance_check_interval_seconds`, the active controller hands
//! leadership back to the first replica of partitions whose preferred
//! broker leads too few of its partitions (see
//! [`sluice_metadata::election::imbalanced_preferred_elections`]).
//!
//! Leadership moves away from a broker when it is fenced (a crash, a
//! restart, a controlled shutdown) and nothing brings it back on its own:
//! after a rolling restart the last broker restarted leads nothing. This
//! task is what evens it out again. It only chooses partitions and asks
//! the controller for preferred elections, whose rules (the preferred
//! replica live and in the ISR) keep every move safe.

use std::sync::Arc;
use std::time::Duration;

use sluice_metadata::ElectionType;
use sluice_metadata::election::{MAX_ELECTIONS_PER_CALL, imbalanced_preferred_elections};
use sluice_quorum::Quorum;
use tokio_util::sync::CancellationToken;

use crate::Broker;

/// Runs the balancing check every `leader.imbalance_check_interval_seconds`
/// until `stop`, while `leader.auto_rebalance_enable` is on; each check
/// does something only on the active controller (the quorum's leader),
/// where the elections commit without a round trip.
pub async fn run_leader_balance(broker: Arc<Broker>, quorum: Arc<Quorum>, stop: CancellationToken) {
    let config = &broker.config.leader;
    if !config.auto_rebalance_enable {
        tracing::info!("automatic leader balancing is off (leader.auto_rebalance_enable)");
        return;
    }
    let period = Duration::from_secs(config.imbalance_check_interval_seconds);
    // The first check waits a whole period, as Kafka's scheduled task
    // does: brokers restarting together get time to rejoin the ISR first.
    let mut checks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    // A check that ran long is not made up for with a burst.
    checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = checks.tick() => {}
        }
        if quorum.is_leader() {
            balance_once(&broker).await;
        }
    }
}

/// One balancing check against this node's image: the preferred elections
/// [`imbalanced_preferred_elections`] picks, through the broker's
/// controller, in calls of at most [`MAX_ELECTIONS_PER_CALL`] partitions.
/// Returns how many partitions changed leader. A refused call (this node
/// stopped being the controller, a failed commit) is logged; the next
/// check tries again.
pub async fn balance_once(broker: &Broker) -> usize {
    let image = broker.metadata.image();
    let picked = imbalanced_preferred_elections(
        &image,
        broker.config.node_id,
        broker.config.leader.imbalance_per_broker_percentage,
    );
    let mut elected = 0;
    for chunk in picked.chunks(MAX_ELECTIONS_PER_CALL) {
        match broker
            .controller
            .elect_leaders(ElectionType::Preferred, Some(chunk.to_vec()))
            .await
        {
            Ok(results) => {
                for r in &results {
                    match &r.result {
                        Ok(()) => elected += 1,
                        // The image moved on between the pick and the
                        // commit (a fence, an ISR shrink): nothing to do.
                        Err(e) => tracing::debug!(
                            topic = %r.topic,
                            partition = r.partition,
                            "preferred election skipped: {}",
                            e.message
                        ),
                    }
                }
            }
            Err(e) => {
                tracing::warn!(
                    code = e.code,
                    "automatic leader balancing failed: {}",
                    e.message
                );
                break;
            }
        }
    }
    if elected > 0 {
        tracing::info!(
            elected,
            "automatic leader balancing moved leadership back to preferred replicas"
        );
    }
    elected
}

#[cfg(test)]
mod tests {
    use sluice_metadata::MetadataRecord;
    use sluice_metadata::controller::{NewTopic, ReplicaAssignment};

    use super::*;
    use crate::config::Config;
    use crate::testing;

    /// A broker (node 1) with brokers 1 to 3 registered and topic `t`:
    /// partitions on [2, 1], [2, 3] and [1, 2], the first two then led by
    /// their second replica, as after broker 2 restarted.
    async fn displaced(dir: &std::path::Path, percentage: u32) -> Arc<Broker> {
        let mut config = Config::default();
        config.leader.imbalance_per_broker_percentage = percentage;
        let broker = testing::broker_with(dir, config).await;
        let mut records = Vec::new();
        for broker_id in 1..=3 {
            records.push(MetadataRecord::RegisterBroker {
                broker_id,
                incarnation_id: uuid::Uuid::new_v4(),
                epoch: 1,
                host: format!("broker-{broker_id}"),
                port: 9000 + broker_id,
                rack: None,
                endpoints: Vec::new(),
            });
            records.push(MetadataRecord::FenceBroker {
                broker_id,
                fenced: false,
            });
        }
        broker
            .controller
            .commit(Box::new(move |_| Ok(records)))
            .await
            .expect("register");
        let on = |partition_index, broker_ids: &[i32]| ReplicaAssignment {
            partition_index,
            broker_ids: broker_ids.to_vec(),
        };
        let topic = NewTopic {
            name: "t".to_owned(),
            num_partitions: -1,
            replication_factor: -1,
            configs: Vec::new(),
            assignments: vec![on(0, &[2, 1]), on(1, &[2, 3]), on(2, &[1, 2])],
        };
        let created = broker.controller.create_topics(vec![topic], false).await;
        assert!(created.iter().all(|r| r.is_ok()), "{created:?}");
        let image = broker.metadata.image();
        let t = &image.topics["t"];
        let moved: Vec<MetadataRecord> = [0, 1]
            .into_iter()
            .map(|partition| {
                let p = &t.partitions[&partition];
                MetadataRecord::Partition {
                    topic_id: t.topic_id,
                    partition,
                    leader: p.replicas[1],
                    replicas: p.replicas.clone(),
                    isr: p.isr.clone(),
                    leader_epoch: p.leader_epoch + 1,
                    partition_epoch: p.partition_epoch + 1,
                    adding_replicas: Vec::new(),
                    removing_replicas: Vec::new(),
                }
            })
            .collect();
        broker
            .controller
            .commit(Box::new(move |_| Ok(moved)))
            .await
            .expect("move leaders");
        broker
    }

    fn leaders(broker: &Broker) -> Vec<i32> {
        let image = broker.metadata.image();
        image.topics["t"]
            .partitions
            .values()
            .map(|p| p.leader)
            .collect()
    }

    #[tokio::test]
    async fn a_check_hands_leadership_back_to_an_imbalanced_preferred_broker() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = displaced(dir.path(), 10).await;
        assert_eq!(leaders(&broker), [1, 3, 1]);
        assert_eq!(balance_once(&broker).await, 2);
        assert_eq!(leaders(&broker), [2, 2, 1]);
        // Balanced: the next check changes nothing.
        assert_eq!(balance_once(&broker).await, 0);
        assert_eq!(leaders(&broker), [2, 2, 1]);
    }

    #[tokio::test]
    async fn a_check_leaves_an_imbalance_within_the_threshold_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Broker 2 leads none of its two partitions: 100%, not above 100.
        let broker = displaced(dir.path(), 100).await;
        assert_eq!(balance_once(&broker).await, 0);
        assert_eq!(leaders(&broker), [1, 3, 1]);
    }
}
