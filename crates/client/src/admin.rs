//! [`Admin`]: topics, partitions, configs, offsets and groups. Also the
//! offset and coordinator primitives the consumer reuses.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use sluice_protocol::messages::create_partitions::{
    CreatePartitionsRequest, CreatePartitionsTopic,
};
use sluice_protocol::messages::create_topics::{
    CreatableTopic, CreatableTopicConfig, CreateTopicsRequest,
};
use sluice_protocol::messages::delete_groups::DeleteGroupsRequest;
use sluice_protocol::messages::delete_topics::{DeleteTopicState, DeleteTopicsRequest};
use sluice_protocol::messages::describe_cluster::DescribeClusterRequest;
use sluice_protocol::messages::describe_configs::{
    DescribeConfigsRequest, DescribeConfigsResource,
};
use sluice_protocol::messages::describe_groups::DescribeGroupsRequest;
use sluice_protocol::messages::find_coordinator::FindCoordinatorRequest;
use sluice_protocol::messages::incremental_alter_configs::{
    AlterConfigsResource, AlterableConfig, IncrementalAlterConfigsRequest,
};
use sluice_protocol::messages::list_groups::ListGroupsRequest;
use sluice_protocol::messages::list_offsets::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use sluice_protocol::messages::offset_commit::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use sluice_protocol::messages::offset_fetch::{OffsetFetchRequest, OffsetFetchRequestTopic};

use crate::client::{BrokerInfo, Client, TopicInfo};
use crate::conn::Connection;
use crate::error::{ClientError, Result};
use crate::group;

/// ListOffsets timestamp meaning "the log start offset".
pub const EARLIEST_TIMESTAMP: i64 = -2;
/// ListOffsets timestamp meaning "the log end offset" (high watermark).
pub const LATEST_TIMESTAMP: i64 = -1;

/// DescribeConfigs / IncrementalAlterConfigs resource type for topics.
const RESOURCE_TOPIC: i8 = 2;
/// Resource type for brokers.
const RESOURCE_BROKER: i8 = 4;

/// A topic to create.
#[derive(Debug, Clone)]
pub struct NewTopic {
    /// Name.
    pub name: String,
    /// Partition count (-1: broker default).
    pub partitions: i32,
    /// Replication factor (-1: broker default).
    pub replication_factor: i16,
    /// Topic configs.
    pub configs: Vec<(String, String)>,
}

/// One config entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// Key.
    pub name: String,
    /// Value (None when sensitive or unset).
    pub value: Option<String>,
    /// True if the value is the default.
    pub is_default: bool,
    /// Read-only.
    pub read_only: bool,
    /// Kafka config source id (1 dynamic topic, 5 static broker, 5 default...).
    pub source: i8,
}

/// A config change for `alter_topic_config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigOp {
    /// Set key to value.
    Set(String, String),
    /// Reset key to its default.
    Delete(String),
}

/// A group as ListGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// Group id.
    pub group_id: String,
    /// Protocol type ("consumer" for consumer groups).
    pub protocol_type: String,
    /// State, when the broker reports it.
    pub state: String,
    /// Group type (KIP-848): `classic` (JoinGroup/SyncGroup) or
    /// `consumer` (ConsumerGroupHeartbeat); empty when the broker does not
    /// say (ListGroups before v5).
    pub group_type: String,
}

/// A group member as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMemberInfo {
    /// Member id.
    pub member_id: String,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Assigned partitions, decoded from the consumer protocol.
    pub assignment: Vec<(String, i32)>,
}

/// DescribeGroups result for one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// Group id.
    pub group_id: String,
    /// State (Empty, Stable, PreparingRebalance, Dead...).
    pub state: String,
    /// Protocol type.
    pub protocol_type: String,
    /// Chosen assignor.
    pub protocol: String,
    /// Members.
    pub members: Vec<GroupMemberInfo>,
}

/// An admin client.
#[derive(Debug, Clone)]
pub struct Admin {
    client: Client,
    /// Broker-side timeout for topic operations.
    pub timeout: Duration,
}

fn timeout_ms(d: Duration) -> i32 {
    d.as_millis().min(i32::MAX as u128) as i32
}

fn check(context: impl FnOnce() -> String, code: i16, message: Option<String>) -> Result<()> {
    if code == 0 {
        Ok(())
    } else {
        Err(ClientError::kafka(context(), code, message))
    }
}

impl Admin {
    /// An admin client over `client`.
    pub fn new(client: Client) -> Admin {
        Admin {
            client,
            timeout: Duration::from_secs(30),
        }
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Creates topics; fails on the first per-topic error.
    pub async fn create_topics(&self, topics: &[NewTopic]) -> Result<()> {
        let request = CreateTopicsRequest {
            topics: topics
                .iter()
                .map(|t| CreatableTopic {
                    name: t.name.clone(),
                    num_partitions: t.partitions,
                    replication_factor: t.replication_factor,
                    configs: t
                        .configs
                        .iter()
                        .map(|(k, v)| CreatableTopicConfig {
                            name: k.clone(),
                            value: Some(v.clone()),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            timeout_ms: timeout_ms(self.timeout),
            ..Default::default()
        };
        let conn = self.controller().await?;
        let (resp, _) = conn.send(&request, 2, 7).await?;
        for t in resp.topics {
            check(
                || format!("create topic '{}'", t.name),
                t.error_code,
                t.error_message,
            )?;
        }
        let names: Vec<String> = topics.iter().map(|t| t.name.clone()).collect();
        let _ = self.client.refresh_metadata(Some(&names)).await;
        Ok(())
    }

    /// Deletes topics by name.
    pub async fn delete_topics(&self, names: &[String]) -> Result<()> {
        let request = DeleteTopicsRequest {
            topics: names
                .iter()
                .map(|n| DeleteTopicState {
                    name: Some(n.clone()),
                    ..Default::default()
                })
                .collect(),
            topic_names: names.to_vec(),
            timeout_ms: timeout_ms(self.timeout),
            ..Default::default()
        };
        let conn = self.controller().await?;
        let (resp, _) = conn.send(&request, 1, 6).await?;
        for t in resp.responses {
            let name = t.name.unwrap_or_default();
            check(
                || format!("delete topic '{name}'"),
                t.error_code,
                t.error_message,
            )?;
        }
        let _ = self.client.refresh_metadata(None).await;
        Ok(())
    }

    /// Grows a topic to `total` partitions.
    pub async fn create_partitions(&self, topic: &str, total: i32) -> Result<()> {
        let request = CreatePartitionsRequest {
            topics: vec![CreatePartitionsTopic {
                name: topic.to_owned(),
                count: total,
                assignments: None,
                ..Default::default()
            }],
            timeout_ms: timeout_ms(self.timeout),
            validate_only: false,
            ..Default::default()
        };
        let conn = self.controller().await?;
        let (resp, _) = conn.send(&request, 0, 3).await?;
        for r in resp.results {
            check(
                || format!("add partitions to '{}'", r.name),
                r.error_code,
                r.error_message,
            )?;
        }
        let _ = self
            .client
            .refresh_metadata(Some(&[topic.to_owned()]))
            .await;
        Ok(())
    }

    /// All topics (fresh metadata), internal ones included.
    pub async fn list_topics(&self) -> Result<Vec<TopicInfo>> {
        let md = self.client.refresh_metadata(None).await?;
        Ok(md.topics.into_values().collect())
    }

    /// One topic's metadata, fresh.
    pub async fn describe_topic(&self, topic: &str) -> Result<TopicInfo> {
        let md = self
            .client
            .refresh_metadata(Some(&[topic.to_owned()]))
            .await?;
        md.topics
            .get(topic)
            .cloned()
            .ok_or_else(|| ClientError::UnknownTopic {
                topic: topic.to_owned(),
            })
    }

    /// Topic configs.
    pub async fn describe_topic_config(&self, topic: &str) -> Result<Vec<ConfigEntry>> {
        self.describe_config(RESOURCE_TOPIC, topic).await
    }

    /// Broker configs.
    pub async fn describe_broker_config(&self, node_id: i32) -> Result<Vec<ConfigEntry>> {
        self.describe_config(RESOURCE_BROKER, &node_id.to_string())
            .await
    }

    async fn describe_config(&self, resource_type: i8, name: &str) -> Result<Vec<ConfigEntry>> {
        let request = DescribeConfigsRequest {
            resources: vec![DescribeConfigsResource {
                resource_type,
                resource_name: name.to_owned(),
                configuration_keys: None,
                ..Default::default()
            }],
            ..Default::default()
        };
        let (resp, version) = self
            .client
            .send_any("describe configs", &request, 1, 4)
            .await?;
        let mut out = Vec::new();
        for r in resp.results {
            check(
                || format!("describe configs of '{name}'"),
                r.error_code,
                r.error_message,
            )?;
            for c in r.configs {
                // v0 has is_default; v1+ has a source (5 = DEFAULT_CONFIG).
                let is_default = if version == 0 {
                    c.is_default
                } else {
                    c.config_source == 5
                };
                out.push(ConfigEntry {
                    name: c.name,
                    value: c.value,
                    is_default,
                    read_only: c.read_only,
                    source: c.config_source,
                });
            }
        }
        Ok(out)
    }

    /// Changes topic configs incrementally.
    pub async fn alter_topic_config(&self, topic: &str, ops: &[ConfigOp]) -> Result<()> {
        let request = IncrementalAlterConfigsRequest {
            resources: vec![AlterConfigsResource {
                resource_type: RESOURCE_TOPIC,
                resource_name: topic.to_owned(),
                configs: ops
                    .iter()
                    .map(|op| match op {
                        ConfigOp::Set(k, v) => AlterableConfig {
                            name: k.clone(),
                            config_operation: 0,
                            value: Some(v.clone()),
                            ..Default::default()
                        },
                        ConfigOp::Delete(k) => AlterableConfig {
                            name: k.clone(),
                            config_operation: 1,
                            value: None,
                            ..Default::default()
                        },
                    })
                    .collect(),
                ..Default::default()
            }],
            validate_only: false,
            ..Default::default()
        };
        let (resp, _) = self
            .client
            .send_any("alter configs", &request, 0, 1)
            .await?;
        for r in resp.responses {
            check(
                || format!("alter configs of '{topic}'"),
                r.error_code,
                r.error_message,
            )?;
        }
        Ok(())
    }

    /// Cluster id, controller and brokers (DescribeCluster, else Metadata).
    pub async fn describe_cluster(&self) -> Result<(Option<String>, i32, Vec<BrokerInfo>)> {
        let request = DescribeClusterRequest::default();
        match self
            .client
            .send_any("describe cluster", &request, 0, 1)
            .await
        {
            Ok((resp, _)) if resp.error_code == 0 => Ok((
                Some(resp.cluster_id),
                resp.controller_id,
                resp.brokers
                    .into_iter()
                    .map(|b| BrokerInfo {
                        node_id: b.broker_id,
                        host: b.host,
                        port: b.port,
                        rack: b.rack,
                    })
                    .collect(),
            )),
            _ => {
                let md = self.client.refresh_metadata(Some(&[])).await?;
                Ok((
                    md.cluster_id,
                    md.controller_id,
                    md.brokers.into_values().collect(),
                ))
            }
        }
    }

    /// Offsets for (topic, partition, timestamp); timestamp may be
    /// [`EARLIEST_TIMESTAMP`] or [`LATEST_TIMESTAMP`]. Returns offsets in
    /// input order; -1 when no record has a timestamp at or after the one given.
    pub async fn list_offsets(&self, queries: &[(String, i32, i64)]) -> Result<Vec<i64>> {
        list_offsets(&self.client, queries).await
    }

    /// Consumer groups on every broker.
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>> {
        let md = self.client.metadata();
        let mut out = Vec::new();
        for node in md.brokers.keys() {
            let conn = self.client.broker(*node).await?;
            let (resp, _) = conn.send(&ListGroupsRequest::default(), 0, 5).await?;
            check(|| "list groups".to_owned(), resp.error_code, None)?;
            for g in resp.groups {
                out.push(GroupListing {
                    group_id: g.group_id,
                    protocol_type: g.protocol_type,
                    state: g.group_state,
                    group_type: g.group_type,
                });
            }
        }
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        Ok(out)
    }

    /// Describes one group.
    pub async fn describe_group(&self, group_id: &str) -> Result<GroupDescription> {
        let conn = find_coordinator(&self.client, group_id).await?;
        let request = DescribeGroupsRequest {
            groups: vec![group_id.to_owned()],
            ..Default::default()
        };
        let (resp, _) = conn.send(&request, 0, 5).await?;
        let g = resp
            .groups
            .into_iter()
            .next()
            .ok_or_else(|| ClientError::Invalid {
                what: "describe groups response",
                reason: "no group in the response".to_owned(),
            })?;
        check(
            || format!("describe group '{group_id}'"),
            g.error_code,
            g.error_message,
        )?;
        Ok(GroupDescription {
            group_id: g.group_id,
            state: g.group_state,
            protocol_type: g.protocol_type.clone(),
            protocol: g.protocol_data,
            members: g
                .members
                .into_iter()
                .map(|m| GroupMemberInfo {
                    member_id: m.member_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    assignment: if g.protocol_type == group::CONSUMER_PROTOCOL_TYPE {
                        group::decode_assignment(m.member_assignment).unwrap_or_default()
                    } else {
                        Vec::new()
                    },
                })
                .collect(),
        })
    }

    /// Deletes groups (they must be empty).
    pub async fn delete_groups(&self, group_ids: &[String]) -> Result<()> {
        for group_id in group_ids {
            let conn = find_coordinator(&self.client, group_id).await?;
            let request = DeleteGroupsRequest {
                groups_names: vec![group_id.clone()],
                ..Default::default()
            };
            let (resp, _) = conn.send(&request, 0, 2).await?;
            for r in resp.results {
                check(
                    || format!("delete group '{}'", r.group_id),
                    r.error_code,
                    None,
                )?;
            }
        }
        Ok(())
    }

    /// Committed offsets of a group: all partitions (`None`) or the given ones.
    pub async fn committed_offsets(
        &self,
        group_id: &str,
        partitions: Option<&[(String, i32)]>,
    ) -> Result<BTreeMap<(String, i32), i64>> {
        fetch_committed(&self.client, group_id, partitions).await
    }

    /// Overwrites a group's committed offsets (the group must have no active members).
    pub async fn alter_committed_offsets(
        &self,
        group_id: &str,
        offsets: &BTreeMap<(String, i32), i64>,
    ) -> Result<()> {
        commit_offsets(&self.client, group_id, -1, "", offsets).await
    }

    async fn controller(&self) -> Result<Arc<Connection>> {
        let md = self.client.metadata();
        if md.controller_id >= 0 && md.brokers.contains_key(&md.controller_id) {
            return self.client.broker(md.controller_id).await;
        }
        self.client.any_connection().await
    }
}

/// See [`Admin::list_offsets`].
pub async fn list_offsets(client: &Client, queries: &[(String, i32, i64)]) -> Result<Vec<i64>> {
    // One request per (leader, round): a partition may appear only once per
    // request, so a second query for the same partition goes in a later round.
    let mut by_leader: BTreeMap<(i32, usize), Vec<usize>> = BTreeMap::new();
    let mut seen: BTreeMap<(&str, i32), usize> = BTreeMap::new();
    for (i, (topic, partition, _)) in queries.iter().enumerate() {
        let leader = client.leader(topic, *partition).await?;
        let round = seen.entry((topic.as_str(), *partition)).or_insert(0);
        by_leader.entry((leader, *round)).or_default().push(i);
        *round += 1;
    }
    let mut out = vec![-1i64; queries.len()];
    for ((leader, _), indexes) in by_leader {
        let mut topics: BTreeMap<&str, Vec<ListOffsetsPartition>> = BTreeMap::new();
        for &i in &indexes {
            let (topic, partition, timestamp) = &queries[i];
            topics
                .entry(topic.as_str())
                .or_default()
                .push(ListOffsetsPartition {
                    partition_index: *partition,
                    timestamp: *timestamp,
                    ..Default::default()
                });
        }
        let request = ListOffsetsRequest {
            replica_id: -1,
            isolation_level: 0,
            topics: topics
                .into_iter()
                .map(|(name, partitions)| ListOffsetsTopic {
                    name: name.to_owned(),
                    partitions,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let response = client
            .with_retry("list offsets", || async {
                let conn = client.broker(leader).await?;
                let (resp, _) = conn.send(&request, 1, 7).await?;
                Ok(resp)
            })
            .await?;
        for &i in &indexes {
            let (topic, partition, _) = &queries[i];
            let p = response
                .topics
                .iter()
                .filter(|t| &t.name == topic)
                .flat_map(|t| t.partitions.iter())
                .find(|p| p.partition_index == *partition)
                .ok_or_else(|| ClientError::Invalid {
                    what: "list offsets response",
                    reason: format!("no result for {topic}-{partition}"),
                })?;
            check(
                || format!("list offsets of {topic}-{partition}"),
                p.error_code,
                None,
            )?;
            out[i] = p.offset;
        }
    }
    Ok(out)
}

/// The group coordinator's connection (FindCoordinator, retried).
pub async fn find_coordinator(client: &Client, group_id: &str) -> Result<Arc<Connection>> {
    let request = FindCoordinatorRequest {
        key: group_id.to_owned(),
        key_type: 0,
        coordinator_keys: vec![group_id.to_owned()],
        ..Default::default()
    };
    client
        .with_retry("find coordinator", || async {
            let (resp, version) = client.send_any("find coordinator", &request, 0, 4).await?;
            let (code, message, node_id) = if version >= 4 {
                let c = resp
                    .coordinators
                    .first()
                    .ok_or_else(|| ClientError::Invalid {
                        what: "find coordinator response",
                        reason: "no coordinator in the response".to_owned(),
                    })?;
                (c.error_code, c.error_message.clone(), c.node_id)
            } else {
                (resp.error_code, resp.error_message.clone(), resp.node_id)
            };
            check(
                || format!("find coordinator for group '{group_id}'"),
                code,
                message,
            )?;
            match client.broker(node_id).await {
                Err(ClientError::UnknownBroker { .. }) => {
                    client.refresh_metadata(Some(&[])).await?;
                    client.broker(node_id).await
                }
                other => other,
            }
        })
        .await
}

/// Committed offsets of a group (-1 entries are omitted).
pub async fn fetch_committed(
    client: &Client,
    group_id: &str,
    partitions: Option<&[(String, i32)]>,
) -> Result<BTreeMap<(String, i32), i64>> {
    let topics = partitions.map(|ps| {
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (t, p) in ps {
            by_topic.entry(t.as_str()).or_default().push(*p);
        }
        by_topic
            .into_iter()
            .map(|(name, partition_indexes)| OffsetFetchRequestTopic {
                name: name.to_owned(),
                partition_indexes,
                ..Default::default()
            })
            .collect()
    });
    let request = OffsetFetchRequest {
        group_id: group_id.to_owned(),
        topics,
        ..Default::default()
    };
    let resp = client
        .with_retry("offset fetch", || async {
            let conn = find_coordinator(client, group_id).await?;
            let (resp, _) = conn.send(&request, 1, 7).await?;
            check(
                || format!("fetch offsets of group '{group_id}'"),
                resp.error_code,
                None,
            )?;
            Ok(resp)
        })
        .await?;
    let mut out = BTreeMap::new();
    for t in resp.topics {
        for p in t.partitions {
            check(
                || format!("fetch offset of {}-{}", t.name, p.partition_index),
                p.error_code,
                None,
            )?;
            if p.committed_offset >= 0 {
                out.insert((t.name.clone(), p.partition_index), p.committed_offset);
            }
        }
    }
    Ok(out)
}

/// Commits offsets for a group member (`generation_id` -1 and empty
/// `member_id` for a standalone commit).
pub async fn commit_offsets(
    client: &Client,
    group_id: &str,
    generation_id: i32,
    member_id: &str,
    offsets: &BTreeMap<(String, i32), i64>,
) -> Result<()> {
    let mut by_topic: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
    for ((topic, partition), offset) in offsets {
        by_topic
            .entry(topic.as_str())
            .or_default()
            .push(OffsetCommitRequestPartition {
                partition_index: *partition,
                committed_offset: *offset,
                committed_metadata: Some(String::new()),
                ..Default::default()
            });
    }
    let request = OffsetCommitRequest {
        group_id: group_id.to_owned(),
        generation_id_or_member_epoch: generation_id,
        member_id: member_id.to_owned(),
        topics: by_topic
            .into_iter()
            .map(|(name, partitions)| OffsetCommitRequestTopic {
                name: name.to_owned(),
                partitions,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let resp = client
        .with_retry("offset commit", || async {
            let conn = find_coordinator(client, group_id).await?;
            let (resp, _) = conn.send(&request, 2, 8).await?;
            Ok(resp)
        })
        .await?;
    for t in resp.topics {
        for p in t.partitions {
            check(
                || {
                    format!(
                        "commit offset of {}-{} for group '{group_id}'",
                        t.name, p.partition_index
                    )
                },
                p.error_code,
                None,
            )?;
        }
    }
    Ok(())
}
