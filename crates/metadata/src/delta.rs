//! Deltas: what one committed change did, in the shape KRaft publishes to
//! its brokers. A subscriber (the replica manager) receives each delta with
//! the image it produced and touches only the topics the delta names,
//! instead of reaching into the store and diffing whole images.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use crate::image::{MetadataImage, MetadataRecord};

/// The topics one committed change touched, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataDelta {
    /// Topics that came into being.
    pub created: BTreeSet<String>,
    /// Topics removed, with the id they had.
    pub removed: BTreeMap<String, Uuid>,
    /// Topics that existed before and whose partitions or configs changed.
    pub changed: BTreeSet<String>,
    /// The change allocated producer ids.
    pub producer_ids: bool,
    /// Brokers whose registration or fencing changed.
    pub brokers: BTreeSet<i32>,
}

impl MetadataDelta {
    /// The delta of `records`, applied to `before` (names of removed topics
    /// come from it) and giving `after` (names of new topics).
    pub fn of(before: &MetadataImage, records: &[MetadataRecord], after: &MetadataImage) -> Self {
        let mut delta = MetadataDelta::default();
        let name_of = |id: &Uuid| {
            after
                .topic_names
                .get(id)
                .or_else(|| before.topic_names.get(id))
                .cloned()
        };
        for record in records {
            match record {
                MetadataRecord::Topic { name, .. } => {
                    delta.removed.remove(name);
                    delta.created.insert(name.clone());
                }
                MetadataRecord::Partition { topic_id, .. }
                | MetadataRecord::TopicConfig { topic_id, .. } => {
                    if let Some(name) = name_of(topic_id)
                        && !delta.created.contains(&name)
                    {
                        delta.changed.insert(name);
                    }
                }
                MetadataRecord::RemoveTopic { topic_id } => {
                    if let Some(name) = before.topic_names.get(topic_id) {
                        delta.removed.insert(name.clone(), *topic_id);
                    }
                    if let Some(name) = name_of(topic_id) {
                        delta.created.remove(&name);
                        delta.changed.remove(&name);
                    }
                }
                MetadataRecord::ProducerIds { .. } => delta.producer_ids = true,
                MetadataRecord::RegisterBroker { broker_id, .. }
                | MetadataRecord::FenceBroker { broker_id, .. }
                | MetadataRecord::DecommissionBroker { broker_id, .. }
                | MetadataRecord::UnregisterBroker { broker_id } => {
                    delta.brokers.insert(*broker_id);
                }
                // Read from the image where they are used (cluster id when
                // reported, replication throttle rates on every fetch);
                // nothing follows them.
                MetadataRecord::ClusterId { .. }
                | MetadataRecord::BrokerConfig { .. }
                | MetadataRecord::ClientQuota { .. } => {}
                // Read from the image at each authentication.
                MetadataRecord::UserScramCredential { .. }
                | MetadataRecord::RemoveUserScramCredential { .. } => {}
                // Read from the image by the authorizer on every check.
                MetadataRecord::AccessControlEntry { .. }
                | MetadataRecord::RemoveAccessControlEntry { .. } => {}
                // Read from the image by the HTTP listener on every request.
                MetadataRecord::HttpToken(_) | MetadataRecord::RemoveHttpToken { .. } => {}
            }
        }
        delta
    }

    /// The delta between two images that need not be one change apart (a
    /// snapshot installed over an older image): topics only in `after` are
    /// created, only in `before` (or under another id) removed, and every
    /// other topic that differs changed.
    pub fn between(before: &MetadataImage, after: &MetadataImage) -> Self {
        let mut delta = MetadataDelta::default();
        for (name, topic) in &after.topics {
            match before.topics.get(name) {
                Some(old) if old.topic_id == topic.topic_id => {
                    if old != topic {
                        delta.changed.insert(name.clone());
                    }
                }
                Some(old) => {
                    delta.removed.insert(name.clone(), old.topic_id);
                    delta.created.insert(name.clone());
                }
                None => {
                    delta.created.insert(name.clone());
                }
            }
        }
        for (name, old) in &before.topics {
            if !after.topics.contains_key(name) {
                delta.removed.insert(name.clone(), old.topic_id);
            }
        }
        delta.producer_ids = before.next_producer_id != after.next_producer_id;
        for (id, broker) in &after.brokers {
            if before.brokers.get(id) != Some(broker) {
                delta.brokers.insert(*id);
            }
        }
        for id in before.brokers.keys() {
            if !after.brokers.contains_key(id) {
                delta.brokers.insert(*id);
            }
        }
        delta
    }

    /// True if no topic changed.
    pub fn touches_no_topic(&self) -> bool {
        self.created.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// Follows committed metadata: whatever hosts what the metadata describes.
/// The replica manager is the one implementation today; in a cluster every
/// broker's replica manager follows the quorum's log the same way.
pub trait MetadataListener: Send + Sync + std::fmt::Debug {
    /// Brings local state in line with `delta`, which produced `image`.
    /// Blocking (opens and deletes logs): the controller calls it from a
    /// blocking thread. An error means some partition could not be opened.
    fn apply(
        &self,
        delta: &MetadataDelta,
        image: &MetadataImage,
    ) -> Result<(), sluice_log::LogError>;

    /// Deletes the local data of `topic` before its removal is committed, to
    /// free space on a full disk or to undo a creation that failed. Blocking.
    fn discard_topic(&self, topic: &str);

    /// Removes partition directories `0..partitions` of `topic` that no
    /// hosted partition owns (left by a creation that failed). Blocking.
    fn remove_unhosted_dirs(&self, topic: &str, partitions: i32);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(image: &MetadataImage, records: &[MetadataRecord]) -> MetadataImage {
        let mut next = image.clone();
        for (i, r) in records.iter().enumerate() {
            next.apply(r, i as i64).expect("applies");
        }
        next
    }

    fn topic(name: &str, id: Uuid) -> Vec<MetadataRecord> {
        vec![
            MetadataRecord::Topic {
                name: name.to_owned(),
                topic_id: id,
            },
            MetadataRecord::Partition {
                topic_id: id,
                partition: 0,
                leader: 1,
                replicas: vec![1],
                isr: vec![1],
                leader_epoch: 0,
                partition_epoch: 0,
                adding_replicas: Vec::new(),
                removing_replicas: Vec::new(),
            },
        ]
    }

    #[test]
    fn a_delta_names_created_changed_and_removed_topics() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let empty = MetadataImage::default();
        let first = topic("a", a);
        let one = apply(&empty, &first);
        let created = MetadataDelta::of(&empty, &first, &one);
        assert_eq!(created.created, BTreeSet::from(["a".to_owned()]));
        assert!(created.changed.is_empty() && created.removed.is_empty());

        let mut second = topic("b", b);
        second.push(MetadataRecord::TopicConfig {
            topic_id: a,
            name: "retention.ms".to_owned(),
            value: Some("1".to_owned()),
        });
        let two = apply(&one, &second);
        let delta = MetadataDelta::of(&one, &second, &two);
        assert_eq!(delta.created, BTreeSet::from(["b".to_owned()]));
        assert_eq!(delta.changed, BTreeSet::from(["a".to_owned()]));

        let removal = vec![MetadataRecord::RemoveTopic { topic_id: a }];
        let three = apply(&two, &removal);
        let delta = MetadataDelta::of(&two, &removal, &three);
        assert_eq!(delta.removed, BTreeMap::from([("a".to_owned(), a)]));
        assert!(delta.created.is_empty() && delta.changed.is_empty());
        assert!(!delta.touches_no_topic());
    }
}
