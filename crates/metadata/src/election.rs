//! Leader elections on request (Kafka's ElectLeaders, KIP-460) and the
//! choice of partitions for automatic preferred-leader balancing (Kafka's
//! `auto.leader.rebalance.enable`).
//!
//! - A *preferred* election hands leadership to a partition's first
//!   replica, if it is live and in the ISR; the ISR does not change.
//! - An *unclean* election gives a leaderless partition a leader: a live
//!   ISR member if there is one, else the first live replica, whose ISR
//!   becomes that replica alone (records only the others hold are lost).
//!
//! Pure functions of the image, like [`crate::placement`]; every record
//! goes through [`placement::partition_record`], so the partition epoch
//! rises by one and the leader epoch by one when the leader changes, and a
//! reassignment that the change completes completes in the same record.
//! The [`crate::Controller`] commits what they return.

use std::collections::{BTreeMap, BTreeSet};

use sluice_protocol::error::codes as code;

use crate::error::ApiError;
use crate::image::{MetadataImage, MetadataRecord, PartitionImage};
use crate::placement::{self, NO_LEADER, NextPartition};

/// Most partitions one ElectLeaders call may name. Kafka has no bound; ours
/// keeps one call's change (one record per partition) and its reply a
/// bounded size, like [`crate::reassignment::MAX_REASSIGNMENTS_PER_CALL`].
/// A call naming no partitions (all of them) is bounded by the cluster's
/// partition count instead.
pub const MAX_ELECTIONS_PER_CALL: usize = 10_000;

/// Which leader an election looks for (Kafka's `ElectionType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ElectionType {
    /// The first replica, if it is live and in sync (wire value 0).
    Preferred,
    /// Any live replica for a leaderless partition (wire value 1).
    Unclean,
}

impl ElectionType {
    /// The type with Kafka's wire value `value`, if there is one.
    pub fn from_wire(value: i8) -> Option<ElectionType> {
        match value {
            0 => Some(ElectionType::Preferred),
            1 => Some(ElectionType::Unclean),
            _ => None,
        }
    }
}

/// One partition's outcome in an ElectLeaders reply.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ElectionResult {
    /// The topic's name.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// Ok (a new leader was elected), or Kafka's per-partition error.
    pub result: Result<(), ApiError>,
}

fn unknown_partition(topic: &str, partition: i32) -> ApiError {
    ApiError::new(
        code::UNKNOWN_TOPIC_OR_PARTITION,
        format!("No such topic-partition as {topic}-{partition}."),
    )
}

fn not_needed(topic: &str, partition: i32, why: &str) -> ApiError {
    ApiError::new(
        code::ELECTION_NOT_NEEDED,
        format!("Leader election not needed for {topic}-{partition}: {why}."),
    )
}

/// The record electing a leader of `topic`-`partition` by `election_type`,
/// or Kafka's error:
///
/// - an unknown topic or partition: UNKNOWN_TOPIC_OR_PARTITION;
/// - preferred, and the first replica leads already: ELECTION_NOT_NEEDED;
///   it is not live or not in the ISR: PREFERRED_LEADER_NOT_AVAILABLE;
/// - unclean, and the partition has a leader: ELECTION_NOT_NEEDED; no
///   replica is live: ELIGIBLE_LEADERS_NOT_AVAILABLE.
pub fn election_record(
    image: &MetadataImage,
    node_id: i32,
    election_type: ElectionType,
    topic: &str,
    partition: i32,
) -> Result<MetadataRecord, ApiError> {
    let t = image
        .topics
        .get(topic)
        .ok_or_else(|| unknown_partition(topic, partition))?;
    let p = t
        .partitions
        .get(&partition)
        .ok_or_else(|| unknown_partition(topic, partition))?;
    let live = |b: i32| placement::is_live(image, node_id, b);
    let (leader, isr) = match election_type {
        ElectionType::Preferred => preferred(p, &live).map_err(|e| e.at(topic, partition))?,
        ElectionType::Unclean => unclean(p, &live).map_err(|e| e.at(topic, partition))?,
    };
    let next = NextPartition {
        leader,
        replicas: p.replicas.clone(),
        isr,
        adding_replicas: p.adding_replicas.clone(),
        removing_replicas: p.removing_replicas.clone(),
    };
    Ok(placement::partition_record(
        t.topic_id, partition, p, next, &live,
    ))
}

/// Why one partition gets no election, before it is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// The leader is the one the election would choose.
    NotNeeded(&'static str),
    /// The preferred replica cannot lead.
    PreferredUnavailable(i32),
    /// No replica can lead.
    NoEligibleLeader,
}

impl Refusal {
    fn at(self, topic: &str, partition: i32) -> ApiError {
        match self {
            Refusal::NotNeeded(why) => not_needed(topic, partition, why),
            Refusal::PreferredUnavailable(b) => ApiError::new(
                code::PREFERRED_LEADER_NOT_AVAILABLE,
                format!(
                    "The preferred leader {b} of {topic}-{partition} is not live or not in the ISR."
                ),
            ),
            Refusal::NoEligibleLeader => ApiError::new(
                code::ELIGIBLE_LEADERS_NOT_AVAILABLE,
                format!("No replica of {topic}-{partition} is live to lead it."),
            ),
        }
    }
}

/// The leader and ISR a preferred election gives `p`.
fn preferred(p: &PartitionImage, live: &dyn Fn(i32) -> bool) -> Result<(i32, Vec<i32>), Refusal> {
    // A partition always has a replica; without one nothing can lead.
    let Some(&first) = p.replicas.first() else {
        return Err(Refusal::PreferredUnavailable(NO_LEADER));
    };
    if p.leader == first {
        return Err(Refusal::NotNeeded("the preferred replica leads it"));
    }
    if !live(first) || !p.isr.contains(&first) {
        return Err(Refusal::PreferredUnavailable(first));
    }
    Ok((first, p.isr.clone()))
}

/// The leader and ISR an unclean election gives `p`: a live ISR member in
/// replica order (no loss), else the first live replica alone.
fn unclean(p: &PartitionImage, live: &dyn Fn(i32) -> bool) -> Result<(i32, Vec<i32>), Refusal> {
    if p.leader != NO_LEADER {
        return Err(Refusal::NotNeeded("it has a leader"));
    }
    if let Some(b) = p
        .replicas
        .iter()
        .copied()
        .find(|&b| p.isr.contains(&b) && live(b))
    {
        return Ok((b, p.isr.clone()));
    }
    p.replicas
        .iter()
        .copied()
        .find(|&b| live(b))
        .map(|b| (b, vec![b]))
        .ok_or(Refusal::NoEligibleLeader)
}

/// Refuses a whole call that names more than [`MAX_ELECTIONS_PER_CALL`]
/// partitions.
pub fn check_call_size(partitions: usize) -> Result<(), ApiError> {
    if partitions > MAX_ELECTIONS_PER_CALL {
        return Err(ApiError::new(
            code::INVALID_REQUEST,
            format!(
                "{partitions} partitions in one election call; at most {MAX_ELECTIONS_PER_CALL}"
            ),
        ));
    }
    Ok(())
}

/// The records of one ElectLeaders call against `image`, and the results.
///
/// With `partitions`, one result per named partition in request order; a
/// partition named twice is refused the second time with INVALID_REQUEST,
/// as [`crate::reassignment::reassignment_records`] does. With `None`,
/// every partition of every topic is tried, and those that need no
/// election are left out of the results, as Kafka does.
pub fn election_records(
    image: &MetadataImage,
    node_id: i32,
    election_type: ElectionType,
    partitions: Option<&[(String, i32)]>,
) -> (Vec<MetadataRecord>, Vec<ElectionResult>) {
    let mut records = Vec::new();
    let mut results = Vec::new();
    let mut elect = |topic: &str, partition: i32| -> Result<(), ApiError> {
        let record = election_record(image, node_id, election_type, topic, partition)?;
        records.push(record);
        Ok(())
    };
    match partitions {
        Some(named) => {
            let mut seen = BTreeSet::new();
            for (topic, partition) in named {
                let result = if seen.insert((topic.as_str(), *partition)) {
                    elect(topic, *partition)
                } else {
                    Err(ApiError::new(
                        code::INVALID_REQUEST,
                        format!("{topic}-{partition} is named more than once in one election call"),
                    ))
                };
                results.push(ElectionResult {
                    topic: topic.clone(),
                    partition: *partition,
                    result,
                });
            }
        }
        None => {
            for (name, topic) in &image.topics {
                for &partition in topic.partitions.keys() {
                    let result = elect(name, partition);
                    if result
                        .as_ref()
                        .is_err_and(|e| e.code == code::ELECTION_NOT_NEEDED)
                    {
                        continue;
                    }
                    results.push(ElectionResult {
                        topic: name.clone(),
                        partition,
                        result,
                    });
                }
            }
        }
    }
    (records, results)
}

/// One broker's share in [`imbalanced_preferred_elections`]: how many
/// partitions have it as their first replica, and those of them it does
/// not lead.
type Preference<'a> = (u64, Vec<(&'a str, i32, &'a PartitionImage)>);

/// The partitions automatic leader balancing hands back to their preferred
/// replica, as Kafka's controller chooses them: for each broker, the
/// partitions whose first replica it is are counted, and if more than
/// `percentage` percent of them are led by another broker, those of them
/// where it is live and in the ISR are returned. Partitions with a
/// reassignment in progress are left alone (the reassignment moves their
/// leader itself), as Kafka does. By topic and partition.
pub fn imbalanced_preferred_elections(
    image: &MetadataImage,
    node_id: i32,
    percentage: u32,
) -> Vec<(String, i32)> {
    // Per preferred broker: how many partitions prefer it, and which of
    // them it does not lead.
    let mut by_broker: BTreeMap<i32, Preference<'_>> = BTreeMap::new();
    for (name, topic) in &image.topics {
        for (&partition, p) in &topic.partitions {
            if p.reassignment_in_progress() {
                continue;
            }
            let Some(&first) = p.replicas.first() else {
                continue;
            };
            let entry = by_broker.entry(first).or_default();
            entry.0 += 1;
            if p.leader != first {
                entry.1.push((name, partition, p));
            }
        }
    }
    let live = |b: i32| placement::is_live(image, node_id, b);
    let mut out = Vec::new();
    for (broker, (preferred, not_leading)) in by_broker {
        // not_leading / preferred > percentage / 100, in integers.
        let imbalanced = not_leading.len() as u64 * 100 > u64::from(percentage) * preferred;
        if !imbalanced || !live(broker) {
            continue;
        }
        out.extend(
            not_leading
                .into_iter()
                .filter(|(_, _, p)| p.isr.contains(&broker))
                .map(|(name, partition, _)| (name.to_owned(), partition)),
        );
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests;
