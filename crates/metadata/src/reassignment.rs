//! Partition reassignment (Kafka's KIP-455): moving a partition's replicas
//! to a target set without losing availability.
//!
//! A reassignment is nothing but the `adding_replicas` / `removing_replicas`
//! of a partition record. Starting one writes the union of the target and
//! the current replicas (target first, then the ones leaving), with the
//! new brokers as adding and the leaving ones as removing; the new brokers
//! host the partition and fetch from the leader like any follower, and join
//! the ISR through AlterPartition. The change that puts the last target
//! replica in the ISR completes it in the same record
//! ([`crate::placement`]'s `partition_record`), whoever makes that change.
//! Since every step is a record, a new controller resumes a reassignment
//! where the old one left it.
//!
//! Pure functions of the image, like [`crate::placement`]; the
//! [`crate::Controller`] commits what they return.

use std::collections::{BTreeMap, BTreeSet};

use sluice_protocol::error::codes as code;

use crate::error::ApiError;
use crate::image::{MetadataImage, MetadataRecord, PartitionImage};
use crate::placement::{self, NO_LEADER, NextPartition};

/// Most partitions one AlterPartitionReassignments call may name. Kafka has
/// no bound; ours keeps one call's change (one record per partition) and
/// its reply a bounded size, as [`crate::controller::MAX_PARTITIONS_PER_TOPIC`]
/// bounds topic creation.
pub const MAX_REASSIGNMENTS_PER_CALL: usize = 10_000;

/// One partition of an AlterPartitionReassignments call.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReassignmentRequest {
    /// The topic's name.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The replicas to move to, or `None` to cancel the reassignment in
    /// progress.
    pub target: Option<Vec<i32>>,
}

/// One partition's outcome in an AlterPartitionReassignments reply.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReassignmentResult {
    /// The topic's name.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// Ok, or Kafka's per-partition error.
    pub result: Result<(), ApiError>,
}

/// One partition with a reassignment in progress, as
/// ListPartitionReassignments reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OngoingReassignment {
    /// The topic's name.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// Every replica: the target, then the ones being removed.
    pub replicas: Vec<i32>,
    /// Replicas being added.
    pub adding_replicas: Vec<i32>,
    /// Replicas being removed.
    pub removing_replicas: Vec<i32>,
}

fn unknown_partition(topic: &str, partition: i32) -> ApiError {
    ApiError::new(
        code::UNKNOWN_TOPIC_OR_PARTITION,
        format!("This server does not host this topic-partition: {topic}-{partition}."),
    )
}

/// The `partition` record for one [`ReassignmentRequest`] against `image`,
/// `None` when nothing changes, or Kafka's error:
///
/// - an unknown topic or partition: UNKNOWN_TOPIC_OR_PARTITION;
/// - a target that is empty, repeats a broker or names an unregistered
///   one: INVALID_REPLICA_ASSIGNMENT;
/// - a cancel with no reassignment in progress: NO_REASSIGNMENT_IN_PROGRESS;
/// - a change that would leave no in-sync replica (every ISR member is a
///   replica being dropped): INVALID_REPLICA_ASSIGNMENT. Kafka instead
///   reverts uncleanly here; we refuse rather than lose acknowledged data.
///
/// A new target replacing a reassignment in progress is taken against the
/// original replicas (the current ones less the adding ones), as Kafka
/// does; a target equal to the original replicas is a cancel.
pub fn reassignment_record(
    image: &MetadataImage,
    node_id: i32,
    request: &ReassignmentRequest,
) -> Result<Option<MetadataRecord>, ApiError> {
    let ReassignmentRequest {
        topic,
        partition,
        target,
    } = request;
    let t = image
        .topics
        .get(topic)
        .ok_or_else(|| unknown_partition(topic, *partition))?;
    let p = t
        .partitions
        .get(partition)
        .ok_or_else(|| unknown_partition(topic, *partition))?;
    let original = p.original_replicas();
    let (replicas, adding_replicas, removing_replicas) = match target {
        None => {
            if !p.reassignment_in_progress() {
                return Err(ApiError::new(
                    code::NO_REASSIGNMENT_IN_PROGRESS,
                    format!("No ongoing reassignment for {topic}-{partition}."),
                ));
            }
            (original, Vec::new(), Vec::new())
        }
        Some(target) => {
            placement::check_manual_assignment(image, node_id, target, None)?;
            let adding: Vec<i32> = target
                .iter()
                .copied()
                .filter(|b| !original.contains(b))
                .collect();
            let removing: Vec<i32> = original
                .iter()
                .copied()
                .filter(|b| !target.contains(b))
                .collect();
            let mut replicas = target.clone();
            replicas.extend(&removing);
            (replicas, adding, removing)
        }
    };
    if replicas == p.replicas
        && adding_replicas == p.adding_replicas
        && removing_replicas == p.removing_replicas
    {
        return Ok(None);
    }
    let live = |b: i32| placement::is_live(image, node_id, b);
    let next =
        reassigned(p, replicas, adding_replicas, removing_replicas, &live).ok_or_else(|| {
            ApiError::new(
                code::INVALID_REPLICA_ASSIGNMENT,
                format!(
                    "reassigning {topic}-{partition} would leave no in-sync replica (ISR {:?})",
                    p.isr
                ),
            )
        })?;
    Ok(Some(placement::partition_record(
        t.topic_id, *partition, p, next, &live,
    )))
}

/// `p` with new replicas and reassignment lists: the ISR keeps only
/// members that stay replicas, and a leader that is no longer in it gives
/// way to the first live ISR member (in replica order), or to none when no
/// member is live. `None` if no ISR member stays.
fn reassigned(
    p: &PartitionImage,
    replicas: Vec<i32>,
    adding_replicas: Vec<i32>,
    removing_replicas: Vec<i32>,
    live: &dyn Fn(i32) -> bool,
) -> Option<NextPartition> {
    let isr: Vec<i32> = p
        .isr
        .iter()
        .copied()
        .filter(|b| replicas.contains(b))
        .collect();
    if isr.is_empty() {
        return None;
    }
    let leader = if isr.contains(&p.leader) {
        p.leader
    } else {
        replicas
            .iter()
            .copied()
            .find(|&b| isr.contains(&b) && live(b))
            .unwrap_or(NO_LEADER)
    };
    Some(NextPartition {
        leader,
        replicas,
        isr,
        adding_replicas,
        removing_replicas,
    })
}

/// Refuses a whole call that names more than [`MAX_REASSIGNMENTS_PER_CALL`]
/// partitions.
pub fn check_call_size(requests: usize) -> Result<(), ApiError> {
    if requests > MAX_REASSIGNMENTS_PER_CALL {
        return Err(ApiError::new(
            code::INVALID_REQUEST,
            format!(
                "{requests} partitions in one reassignment call; at most {MAX_REASSIGNMENTS_PER_CALL}"
            ),
        ));
    }
    Ok(())
}

/// The records of one AlterPartitionReassignments call against `image`,
/// and each partition's result in request order. A partition named twice
/// is refused the second time with INVALID_REQUEST (two targets for one
/// partition in one call contradict each other).
pub fn reassignment_records(
    image: &MetadataImage,
    node_id: i32,
    requests: &[ReassignmentRequest],
) -> (Vec<MetadataRecord>, Vec<ReassignmentResult>) {
    let mut records = Vec::new();
    let mut results = Vec::with_capacity(requests.len());
    let mut seen = BTreeSet::new();
    for request in requests {
        let result = if seen.insert((request.topic.as_str(), request.partition)) {
            reassignment_record(image, node_id, request).map(|record| records.extend(record))
        } else {
            Err(ApiError::new(
                code::INVALID_REQUEST,
                format!(
                    "{}-{} is named more than once in one reassignment call",
                    request.topic, request.partition
                ),
            ))
        };
        results.push(ReassignmentResult {
            topic: request.topic.clone(),
            partition: request.partition,
            result,
        });
    }
    (records, results)
}

/// The partitions of `image` with a reassignment in progress, by topic and
/// partition; with `filter`, only those named (a topic absent from the
/// image, or a partition absent from its topic, is left out, as Kafka
/// does).
pub fn ongoing_reassignments(
    image: &MetadataImage,
    filter: Option<&BTreeMap<String, Vec<i32>>>,
) -> Vec<OngoingReassignment> {
    let mut out = Vec::new();
    for (name, topic) in &image.topics {
        let wanted = match filter {
            None => None,
            Some(f) => match f.get(name) {
                None => continue,
                Some(partitions) => Some(partitions),
            },
        };
        for (&partition, p) in &topic.partitions {
            if !p.reassignment_in_progress() || wanted.is_some_and(|w| !w.contains(&partition)) {
                continue;
            }
            out.push(OngoingReassignment {
                topic: name.clone(),
                partition,
                replicas: p.replicas.clone(),
                adding_replicas: p.adding_replicas.clone(),
                removing_replicas: p.removing_replicas.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests;
