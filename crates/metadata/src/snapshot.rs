//! Snapshots of the metadata image, the way KRaft takes them: the records
//! that rebuild the image from nothing, plus how far the log had applied.
//! A Raft follower that is too far behind, or a new node, loads one instead
//! of replaying the whole log; the metadata log can then be cut at the
//! snapshot's offset.
//!
//! Byte layout (big-endian), documented in `docs/design.md`:
//!
//! ```text
//! magic "SLMS" | version u8 = 1 | next_offset i64 | records u32
//! then per record: length u32 | record value (codec version 1)
//! ```
//!
//! Decoding checks every length against what is left, so a damaged or
//! hostile snapshot is an error, never a panic or a large allocation.

use crate::codec::{self, CodecError, Decoded};
use crate::image::{MetadataImage, MetadataRecord};

const MAGIC: &[u8; 4] = b"SLMS";
const VERSION: u8 = 1;
const HEADER_BYTES: usize = 4 + 1 + 8 + 4;

/// A snapshot that cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The bytes do not start with the snapshot magic and a known version.
    #[error("not a metadata snapshot (or an unknown version)")]
    NotASnapshot,
    /// The bytes end before the header, a length, or a record.
    #[error("snapshot truncated in record {0}")]
    Truncated(u32),
    /// Bytes follow the last record.
    #[error("{0} bytes after the last snapshot record")]
    TrailingBytes(usize),
    /// A record value does not decode.
    #[error("snapshot record {index}: {source}")]
    Record {
        /// Which record.
        index: u32,
        /// Why.
        #[source]
        source: CodecError,
    },
    /// A value decodes to a change marker, which snapshots never hold.
    #[error("snapshot record {0} is a change marker")]
    Marker(u32),
    /// A record contradicts the image built so far.
    #[error("snapshot record {index} does not apply: {source}")]
    Apply {
        /// Which record.
        index: u32,
        /// Why.
        #[source]
        source: crate::image::ApplyError,
    },
}

/// The records that rebuild `image` from an empty one: each topic, its
/// partitions and configs, then the producer id watermark.
pub fn snapshot_records(image: &MetadataImage) -> Vec<MetadataRecord> {
    let mut records = Vec::new();
    if let Some(cluster_id) = &image.cluster_id {
        records.push(MetadataRecord::ClusterId {
            cluster_id: cluster_id.clone(),
        });
    }
    for topic in image.topics.values() {
        records.push(MetadataRecord::Topic {
            name: topic.name.clone(),
            topic_id: topic.topic_id,
        });
        for (&partition, p) in &topic.partitions {
            records.push(MetadataRecord::Partition {
                topic_id: topic.topic_id,
                partition,
                leader: p.leader,
                replicas: p.replicas.clone(),
                isr: p.isr.clone(),
                leader_epoch: p.leader_epoch,
                partition_epoch: p.partition_epoch,
                adding_replicas: p.adding_replicas.clone(),
                removing_replicas: p.removing_replicas.clone(),
            });
        }
        for (name, value) in &topic.configs {
            records.push(MetadataRecord::TopicConfig {
                topic_id: topic.topic_id,
                name: name.clone(),
                value: Some(value.clone()),
            });
        }
    }
    if image.next_producer_id > 0 {
        records.push(MetadataRecord::ProducerIds {
            next_producer_id: image.next_producer_id,
        });
    }
    for broker in image.brokers.values() {
        records.push(MetadataRecord::RegisterBroker {
            broker_id: broker.broker_id,
            incarnation_id: broker.incarnation_id,
            epoch: broker.epoch,
            host: broker.host.clone(),
            port: broker.port,
            rack: broker.rack.clone(),
            endpoints: broker.endpoints.clone(),
        });
        if !broker.fenced {
            records.push(MetadataRecord::FenceBroker {
                broker_id: broker.broker_id,
                fenced: false,
            });
        }
        if broker.decommissioning {
            records.push(MetadataRecord::DecommissionBroker {
                broker_id: broker.broker_id,
                decommissioning: true,
            });
        }
    }
    // Dynamic broker configs need no registration (the cluster default and
    // configs of brokers not registered yet), so they follow the brokers.
    for (&broker_id, configs) in &image.broker_configs {
        for (name, value) in configs {
            records.push(MetadataRecord::BrokerConfig {
                broker_id,
                name: name.clone(),
                value: Some(value.clone()),
            });
        }
    }
    for (name, credentials) in &image.scram_credentials {
        for (&mechanism, c) in credentials {
            records.push(MetadataRecord::UserScramCredential {
                name: name.clone(),
                mechanism,
                salt: c.salt.clone(),
                stored_key: c.stored_key.clone(),
                server_key: c.server_key.clone(),
                iterations: c.iterations,
            });
        }
    }
    for (&id, acl) in image.acls.iter() {
        records.push(MetadataRecord::AccessControlEntry {
            id,
            acl: acl.clone(),
        });
    }
    // Tokens depend on nothing else in the image.
    for token in image.http_tokens.values() {
        records.push(MetadataRecord::HttpToken(token.clone()));
    }
    for (entity, quotas) in &image.client_quotas {
        for (key, value) in quotas {
            records.push(MetadataRecord::ClientQuota {
                entity: entity.clone(),
                key: key.clone(),
                value: Some(*value),
            });
        }
    }
    records
}

/// Encodes a snapshot of `image`.
pub fn encode_snapshot(image: &MetadataImage) -> Result<Vec<u8>, CodecError> {
    let records = snapshot_records(image);
    let count = u32::try_from(records.len()).map_err(|_| CodecError::TooLong("records"))?;
    let mut out = Vec::with_capacity(HEADER_BYTES + 64 * records.len());
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&image.next_offset.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    for record in &records {
        let value = codec::encode(record)?;
        let len = u32::try_from(value.len()).map_err(|_| CodecError::TooLong("record"))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&value);
    }
    Ok(out)
}

/// A checksum of everything the image holds (its snapshot's crc32c): two
/// nodes whose images have applied the same records have the same digest.
pub fn image_digest(image: &MetadataImage) -> Result<u32, CodecError> {
    Ok(crc32c::crc32c(&encode_snapshot(image)?))
}

/// Rebuilds the image a snapshot holds.
pub fn decode_snapshot(bytes: &[u8]) -> Result<MetadataImage, SnapshotError> {
    if bytes.len() < HEADER_BYTES || &bytes[..4] != MAGIC || bytes[4] != VERSION {
        return Err(SnapshotError::NotASnapshot);
    }
    let next_offset = i64::from_be_bytes(
        bytes[5..13]
            .try_into()
            .map_err(|_| SnapshotError::Truncated(0))?,
    );
    let count = u32::from_be_bytes(
        bytes[13..17]
            .try_into()
            .map_err(|_| SnapshotError::Truncated(0))?,
    );
    let mut rest = &bytes[HEADER_BYTES..];
    let mut image = MetadataImage::default();
    for index in 0..count {
        let (len, after) = rest
            .split_at_checked(4)
            .ok_or(SnapshotError::Truncated(index))?;
        let len = u32::from_be_bytes(
            len.try_into()
                .map_err(|_| SnapshotError::Truncated(index))?,
        );
        let len = usize::try_from(len).map_err(|_| SnapshotError::Truncated(index))?;
        let (value, after) = after
            .split_at_checked(len)
            .ok_or(SnapshotError::Truncated(index))?;
        rest = after;
        let record =
            match codec::decode(value).map_err(|source| SnapshotError::Record { index, source })? {
                Decoded::Record(record) => record,
                Decoded::Begin { .. } | Decoded::End | Decoded::Abort => {
                    return Err(SnapshotError::Marker(index));
                }
            };
        image
            .apply(&record, i64::from(index))
            .map_err(|source| SnapshotError::Apply { index, source })?;
    }
    if !rest.is_empty() {
        return Err(SnapshotError::TrailingBytes(rest.len()));
    }
    image.next_offset = next_offset;
    Ok(image)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use uuid::Uuid;

    use super::*;

    /// One admin action, turned into the records the controller would
    /// write for it against the current image (so every sequence is one a
    /// real log can hold).
    #[derive(Debug, Clone)]
    enum Op {
        Create {
            name: u8,
            partitions: u8,
        },
        Grow {
            name: u8,
            by: u8,
        },
        SetConfig {
            name: u8,
            key: u8,
            value: Option<u8>,
        },
        Lead {
            name: u8,
            partition: u8,
            leader: u8,
        },
        Remove {
            name: u8,
        },
        ProducerIds {
            by: u16,
        },
        Register {
            broker: u8,
            rack: Option<u8>,
        },
        Fence {
            broker: u8,
            fenced: bool,
        },
        Unregister {
            broker: u8,
        },
        /// A dynamic broker config; broker 0 stands for the cluster default.
        BrokerConfig {
            broker: u8,
            key: u8,
            value: Option<u8>,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..6u8, 1..5u8).prop_map(|(name, partitions)| Op::Create { name, partitions }),
            (0..6u8, 1..3u8).prop_map(|(name, by)| Op::Grow { name, by }),
            (0..6u8, 0..3u8, proptest::option::of(0..4u8))
                .prop_map(|(name, key, value)| Op::SetConfig { name, key, value }),
            (0..6u8, 0..6u8, 1..4u8).prop_map(|(name, partition, leader)| Op::Lead {
                name,
                partition,
                leader
            }),
            (0..6u8).prop_map(|name| Op::Remove { name }),
            (1..3000u16).prop_map(|by| Op::ProducerIds { by }),
            (0..5u8, proptest::option::of(0..3u8))
                .prop_map(|(broker, rack)| Op::Register { broker, rack }),
            (0..5u8, any::<bool>()).prop_map(|(broker, fenced)| Op::Fence { broker, fenced }),
            (0..5u8).prop_map(|broker| Op::Unregister { broker }),
            (0..4u8, 0..2u8, proptest::option::of(0..4u8))
                .prop_map(|(broker, key, value)| Op::BrokerConfig { broker, key, value }),
        ]
    }

    fn topic_name(n: u8) -> String {
        format!("topic-{n}")
    }

    fn partition(
        topic_id: Uuid,
        partition: i32,
        leader: i32,
        epoch: i32,
        partition_epoch: i32,
    ) -> MetadataRecord {
        MetadataRecord::Partition {
            topic_id,
            partition,
            leader,
            replicas: vec![1, 2, 3],
            isr: vec![leader],
            leader_epoch: epoch,
            partition_epoch,
            // Some partitions are mid-reassignment, so replays and
            // snapshots cover both lists.
            adding_replicas: if leader == 2 { vec![3] } else { vec![] },
            removing_replicas: if leader == 3 { vec![1] } else { vec![] },
        }
    }

    /// The records for `op` against `image`; none if the controller would
    /// refuse it.
    fn records_for(image: &MetadataImage, op: &Op, ids: &mut u128) -> Vec<MetadataRecord> {
        let topic = |n: u8| image.topics.get(&topic_name(n));
        match op {
            Op::Create { name, partitions } if topic(*name).is_none() => {
                *ids += 1;
                let topic_id = Uuid::from_u128(*ids);
                let mut records = vec![MetadataRecord::Topic {
                    name: topic_name(*name),
                    topic_id,
                }];
                records
                    .extend((0..i32::from(*partitions)).map(|p| partition(topic_id, p, 1, 0, 0)));
                records
            }
            Op::Grow { name, by } => topic(*name).map_or_else(Vec::new, |t| {
                let current = t.partitions.len() as i32;
                (current..current + i32::from(*by))
                    .map(|p| partition(t.topic_id, p, 1, 0, 0))
                    .collect()
            }),
            Op::SetConfig { name, key, value } => topic(*name).map_or_else(Vec::new, |t| {
                vec![MetadataRecord::TopicConfig {
                    topic_id: t.topic_id,
                    name: format!("config.{key}"),
                    value: value.map(|v| v.to_string()),
                }]
            }),
            Op::Lead {
                name,
                partition: p,
                leader,
            } => topic(*name)
                .and_then(|t| Some((t, t.partitions.get(&i32::from(*p))?)))
                .map_or_else(Vec::new, |(t, current)| {
                    vec![partition(
                        t.topic_id,
                        i32::from(*p),
                        i32::from(*leader),
                        current.leader_epoch + 1,
                        current.partition_epoch + 1,
                    )]
                }),
            Op::Remove { name } => topic(*name).map_or_else(Vec::new, |t| {
                vec![MetadataRecord::RemoveTopic {
                    topic_id: t.topic_id,
                }]
            }),
            Op::ProducerIds { by } => vec![MetadataRecord::ProducerIds {
                next_producer_id: image.next_producer_id + i64::from(*by),
            }],
            Op::Register { broker, rack } => {
                *ids += 1;
                let broker_id = i32::from(*broker);
                vec![MetadataRecord::RegisterBroker {
                    broker_id,
                    incarnation_id: Uuid::from_u128(*ids),
                    epoch: image.brokers.get(&broker_id).map_or(0, |b| b.epoch + 1),
                    host: format!("host-{broker}"),
                    port: 9092 + i32::from(*broker),
                    rack: rack.map(|r| format!("rack-{r}")),
                    endpoints: Vec::new(),
                }]
            }
            Op::Fence { broker, fenced } if image.brokers.contains_key(&i32::from(*broker)) => {
                vec![MetadataRecord::FenceBroker {
                    broker_id: i32::from(*broker),
                    fenced: *fenced,
                }]
            }
            Op::Unregister { broker } if image.brokers.contains_key(&i32::from(*broker)) => {
                vec![MetadataRecord::UnregisterBroker {
                    broker_id: i32::from(*broker),
                }]
            }
            Op::BrokerConfig { broker, key, value } => vec![MetadataRecord::BrokerConfig {
                broker_id: if *broker == 0 {
                    crate::image::CLUSTER_DEFAULT_BROKER
                } else {
                    i32::from(*broker)
                },
                name: format!("broker.config.{key}"),
                value: value.map(|v| v.to_string()),
            }],
            Op::Create { .. } | Op::Fence { .. } | Op::Unregister { .. } => Vec::new(),
        }
    }

    /// Applies `ops` from an empty image, as a log replay would, and
    /// returns the image and every record written.
    fn replay(ops: &[Op]) -> (MetadataImage, Vec<MetadataRecord>) {
        let mut image = MetadataImage::default();
        let mut log = Vec::new();
        let mut ids = 0;
        for op in ops {
            for record in records_for(&image, op, &mut ids) {
                image
                    .apply(&record, log.len() as i64)
                    .expect("controller records apply");
                log.push(record);
            }
        }
        image.next_offset = log.len() as i64;
        (image, log)
    }

    proptest! {
        /// The image is a function of the records: every node that applies
        /// the same log gets the same image.
        #[test]
        fn the_same_records_give_the_same_image(ops in proptest::collection::vec(op(), 0..60)) {
            let (image, log) = replay(&ops);
            let mut again = MetadataImage::default();
            for (offset, record) in log.iter().enumerate() {
                again.apply(record, offset as i64).expect("applies again");
            }
            again.next_offset = log.len() as i64;
            prop_assert_eq!(&again, &image);
            // And through the byte encoding the log stores.
            let mut decoded = MetadataImage::default();
            for (offset, record) in log.iter().enumerate() {
                let value = codec::encode(record).expect("encodes");
                let Decoded::Record(r) = codec::decode(&value).expect("decodes") else {
                    panic!("a record decodes as a record");
                };
                decoded.apply(&r, offset as i64).expect("applies");
            }
            decoded.next_offset = log.len() as i64;
            prop_assert_eq!(decoded, image);
        }

        /// A snapshot rebuilds exactly the image it was taken of.
        #[test]
        fn snapshots_round_trip(ops in proptest::collection::vec(op(), 0..60)) {
            let (image, _) = replay(&ops);
            let bytes = encode_snapshot(&image).expect("encodes");
            prop_assert_eq!(decode_snapshot(&bytes).expect("decodes"), image);
        }

        /// Damaged snapshots are errors, never panics.
        #[test]
        fn damaged_snapshots_are_errors(
            ops in proptest::collection::vec(op(), 1..20),
            cut in any::<prop::sample::Index>(),
            flip in any::<prop::sample::Index>(),
        ) {
            let (image, _) = replay(&ops);
            let bytes = encode_snapshot(&image).expect("encodes");
            let short = &bytes[..cut.index(bytes.len())];
            prop_assert!(decode_snapshot(short).is_err());
            let mut flipped = bytes.clone();
            let at = flip.index(flipped.len());
            flipped[at] ^= 0xff;
            // A flipped byte may still be a valid snapshot of another image;
            // it must not panic either way.
            let _ = decode_snapshot(&flipped);
        }
    }

    /// An image of topic 0 (`topic_id`) with one partition at epoch 0.
    fn one_partition(topic_id: Uuid) -> MetadataImage {
        let mut image = MetadataImage::default();
        let records = [
            MetadataRecord::Topic {
                name: topic_name(0),
                topic_id,
            },
            partition(topic_id, 0, 1, 4, 0),
        ];
        for (offset, record) in (0..).zip(&records) {
            image.apply(record, offset).expect("applies");
        }
        image
    }

    #[test]
    fn the_digest_and_the_snapshot_cover_the_partition_epoch() {
        let topic_id = Uuid::from_u128(1);
        let mut image = one_partition(topic_id);
        let before = image_digest(&image).expect("digest");
        image
            .apply(&partition(topic_id, 0, 1, 4, 1), 2)
            .expect("applies");
        assert_ne!(image_digest(&image).expect("digest"), before);
        let rebuilt = decode_snapshot(&encode_snapshot(&image).expect("encodes")).expect("decodes");
        assert_eq!(
            rebuilt.topics[&topic_name(0)].partitions[&0].partition_epoch,
            1
        );
    }

    #[test]
    fn the_digest_and_the_snapshot_cover_a_reassignment_in_progress() {
        let topic_id = Uuid::from_u128(1);
        let mut image = one_partition(topic_id);
        let before = image_digest(&image).expect("digest");
        image
            .apply(&partition(topic_id, 0, 3, 5, 1), 2)
            .expect("applies");
        assert_ne!(image_digest(&image).expect("digest"), before);
        let rebuilt = decode_snapshot(&encode_snapshot(&image).expect("encodes")).expect("decodes");
        let p = &rebuilt.topics[&topic_name(0)].partitions[&0];
        assert_eq!(
            (p.adding_replicas.as_slice(), p.removing_replicas.as_slice()),
            (&[][..], &[1][..])
        );
        assert_eq!(rebuilt, image);
    }

    #[test]
    fn the_digest_and_the_snapshot_cover_dynamic_broker_configs() {
        let topic_id = Uuid::from_u128(1);
        let mut image = one_partition(topic_id);
        let before = image_digest(&image).expect("digest");
        let set = |broker_id: i32, value: Option<&str>| MetadataRecord::BrokerConfig {
            broker_id,
            name: "follower.replication.throttled.rate".to_owned(),
            value: value.map(str::to_owned),
        };
        image.apply(&set(-1, Some("100")), 2).expect("applies");
        image.apply(&set(2, Some("5")), 3).expect("applies");
        assert_ne!(image_digest(&image).expect("digest"), before);
        let rebuilt = decode_snapshot(&encode_snapshot(&image).expect("encodes")).expect("decodes");
        assert_eq!(rebuilt, image);
        let name = "follower.replication.throttled.rate";
        use crate::image::DynamicSource;
        assert_eq!(
            rebuilt.broker_config(2, name),
            Some(("5", DynamicSource::Broker))
        );
        assert_eq!(
            rebuilt.broker_config(7, name),
            Some(("100", DynamicSource::ClusterDefault))
        );
        // Removing both leaves no trace: the same digest as before.
        image.apply(&set(-1, None), 4).expect("applies");
        image.apply(&set(2, None), 5).expect("applies");
        assert!(image.broker_configs.is_empty());
        assert_eq!(image.broker_config(2, name), None);
        assert_eq!(image_digest(&image).expect("digest"), before);
    }

    #[test]
    fn the_digest_and_the_snapshot_cover_acls() {
        use crate::acl::*;
        let acl = AclBinding {
            resource_type: ResourceType::Group,
            resource_name: "g".to_owned(),
            pattern_type: PatternType::Literal,
            principal: "User:a".to_owned(),
            host: "*".to_owned(),
            operation: AclOperation::Read,
            permission: AclPermission::Allow,
        };
        let id = Uuid::from_u128(5);
        let empty = MetadataImage::default();
        let with = empty
            .with_change(
                &[MetadataRecord::AccessControlEntry {
                    id,
                    acl: acl.clone(),
                }],
                0,
                1,
            )
            .expect("applies");
        assert_ne!(
            image_digest(&empty).expect("digest"),
            image_digest(&with).expect("digest")
        );
        let back = decode_snapshot(&encode_snapshot(&with).expect("encode")).expect("decode");
        assert_eq!(back, with);
        assert_eq!(back.acls.iter().next(), Some((&id, &acl)));
        let removed = with
            .with_change(&[MetadataRecord::RemoveAccessControlEntry { id }], 1, 2)
            .expect("applies");
        assert!(removed.acls.is_empty());
        assert!(with.acls.len() == 1, "the older image keeps its ACLs");
        assert!(
            removed
                .with_change(&[MetadataRecord::RemoveAccessControlEntry { id }], 2, 3)
                .is_err(),
            "removing an unknown ACL is a damaged log"
        );
    }

    #[test]
    fn the_snapshot_keeps_http_token_hashes_and_forgets_revoked_tokens() {
        let topic_id = Uuid::from_u128(1);
        let mut image = one_partition(topic_id);
        let before = image_digest(&image).expect("digest");
        let token = |id: &str, byte: u8| {
            MetadataRecord::HttpToken(crate::image::HttpTokenImage {
                id: id.to_owned(),
                principal: "User:alice".to_owned(),
                sha256: [byte; 32],
                created_ms: 10,
                expires_ms: 20,
            })
        };
        image.apply(&token("a", 1), 2).expect("applies");
        image.apply(&token("b", 2), 3).expect("applies");
        // The same id twice is a damaged log, not a replacement.
        assert!(image.apply(&token("a", 3), 4).is_err());
        let bytes = encode_snapshot(&image).expect("encodes");
        let rebuilt = decode_snapshot(&bytes).expect("decodes");
        assert_eq!(rebuilt, image);
        assert_eq!(rebuilt.http_tokens["b"].sha256, [2; 32]);
        image
            .apply(&MetadataRecord::RemoveHttpToken { id: "a".to_owned() }, 5)
            .expect("applies");
        image
            .apply(&MetadataRecord::RemoveHttpToken { id: "b".to_owned() }, 6)
            .expect("applies");
        assert!(
            image
                .apply(&MetadataRecord::RemoveHttpToken { id: "b".to_owned() }, 7)
                .is_err()
        );
        assert_eq!(image_digest(&image).expect("digest"), before);
    }

    #[test]
    fn the_digest_and_the_snapshot_cover_client_quotas() {
        let mut image = one_partition(Uuid::from_u128(1));
        let before = image_digest(&image).expect("digest");
        let quota = |entity: Vec<(String, Option<String>)>, value: Option<f64>| {
            MetadataRecord::ClientQuota {
                entity,
                key: "producer_byte_rate".to_owned(),
                value,
            }
        };
        let slow = vec![("client-id".to_owned(), Some("slow".to_owned()))];
        let user_default = vec![("user".to_owned(), None)];
        image
            .apply(&quota(slow.clone(), Some(1024.0)), 2)
            .expect("applies");
        image
            .apply(&quota(user_default.clone(), Some(2048.0)), 3)
            .expect("applies");
        assert_ne!(image_digest(&image).expect("digest"), before);
        let rebuilt = decode_snapshot(&encode_snapshot(&image).expect("encodes")).expect("decodes");
        assert_eq!(rebuilt, image);
        assert_eq!(rebuilt.client_quotas.len(), 2);
        image.apply(&quota(slow, None), 4).expect("applies");
        image.apply(&quota(user_default, None), 5).expect("applies");
        assert!(image.client_quotas.is_empty());
        assert_eq!(image_digest(&image).expect("digest"), before);
    }

    #[test]
    fn an_empty_image_and_garbage() {
        let empty = MetadataImage::default();
        let bytes = encode_snapshot(&empty).expect("encodes");
        assert_eq!(decode_snapshot(&bytes).expect("decodes"), empty);
        assert!(matches!(
            decode_snapshot(b"not a snapshot at all"),
            Err(SnapshotError::NotASnapshot)
        ));
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(matches!(
            decode_snapshot(&extra),
            Err(SnapshotError::TrailingBytes(1))
        ));
        // A header claiming four billion records with nothing behind it.
        let mut lying = bytes;
        lying[13..17].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            decode_snapshot(&lying),
            Err(SnapshotError::Truncated(0))
        ));
    }
}
