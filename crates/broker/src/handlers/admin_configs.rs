//! DescribeConfigs (32), AlterConfigs (33) and IncrementalAlterConfigs (44).

use std::future::Future;
use std::sync::Arc;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::alter_configs::{
    AlterConfigsRequest, AlterConfigsResourceResponse, AlterConfigsResponse,
};
use sluice_protocol::messages::describe_configs::{
    DescribeConfigsRequest, DescribeConfigsResourceResult, DescribeConfigsResponse,
    DescribeConfigsResult,
};
use sluice_protocol::messages::incremental_alter_configs::{
    AlterConfigsResourceResponse as IncrementalResult, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};

use super::RequestContext;
use super::create_topics::{SOURCE_DEFAULT, SOURCE_TOPIC};
use crate::config::Config;
use sluice_metadata::controller::{AlterMode, ConfigOp};
use sluice_metadata::topic_config;
use sluice_metadata::{ApiError, Controller, MetadataImage};

/// Kafka's config resource types.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
/// DescribeConfigs source for values from the broker's static config.
const SOURCE_STATIC_BROKER: i8 = 4;

/// Handles DescribeConfigs: topics from `image` (unset keys show
/// `config`'s log defaults), this broker's static `config`.
pub fn describe(
    image: &MetadataImage,
    config: &Config,
    _ctx: &RequestContext,
    _header: &RequestHeader,
    request: DescribeConfigsRequest,
) -> impl Future<Output = DescribeConfigsResponse> + Send + 'static {
    let results = request
        .resources
        .into_iter()
        .map(|r| {
            let wanted = |name: &str| {
                r.configuration_keys
                    .as_ref()
                    .is_none_or(|keys| keys.iter().any(|k| k == name))
            };
            let mut result = DescribeConfigsResult {
                error_code: code::NONE,
                error_message: None,
                resource_type: r.resource_type,
                resource_name: r.resource_name.clone(),
                configs: Vec::new(),
                ..Default::default()
            };
            match r.resource_type {
                RESOURCE_TOPIC => match image.topics.get(&r.resource_name) {
                    None => {
                        result.error_code = code::UNKNOWN_TOPIC_OR_PARTITION;
                        result.error_message =
                            Some(format!("topic `{}` does not exist", r.resource_name));
                    }
                    Some(topic) => {
                        result.configs = topic_config::TOPIC_CONFIGS
                            .iter()
                            .filter(|d| wanted(d.name))
                            .map(|d| {
                                let set = topic.configs.get(d.name);
                                DescribeConfigsResourceResult {
                                    name: d.name.to_owned(),
                                    value: Some(set.cloned().unwrap_or_else(|| {
                                        topic_config::default_value(d.name, &config.log)
                                    })),
                                    read_only: false,
                                    is_default: set.is_none(),
                                    config_source: if set.is_some() {
                                        SOURCE_TOPIC
                                    } else {
                                        SOURCE_DEFAULT
                                    },
                                    is_sensitive: d.sensitive,
                                    config_type: topic_config::config_type(d),
                                    ..Default::default()
                                }
                            })
                            .collect();
                    }
                },
                RESOURCE_BROKER => {
                    if r.resource_name.is_empty() || r.resource_name == config.node_id.to_string() {
                        result.configs = broker_configs(config)
                            .into_iter()
                            .filter(|(name, _)| wanted(name))
                            .map(|(name, value)| DescribeConfigsResourceResult {
                                name: name.to_owned(),
                                value: Some(value),
                                read_only: true,
                                is_default: false,
                                config_source: SOURCE_STATIC_BROKER,
                                is_sensitive: false,
                                ..Default::default()
                            })
                            .collect();
                    } else {
                        result.error_code = code::INVALID_REQUEST;
                        result.error_message = Some(format!("this is broker {}", config.node_id));
                    }
                }
                other => {
                    result.error_code = code::INVALID_REQUEST;
                    result.error_message = Some(format!("resource type {other} is not supported"));
                }
            }
            result
        })
        .collect();
    std::future::ready(DescribeConfigsResponse {
        throttle_time_ms: 0,
        results,
        ..Default::default()
    })
}

/// The broker's static configs under Kafka's names.
fn broker_configs(c: &Config) -> Vec<(&'static str, String)> {
    vec![
        ("node.id", c.node_id.to_string()),
        ("broker.id", c.node_id.to_string()),
        ("log.dirs", c.data_dir.display().to_string()),
        (
            "auto.create.topics.enable",
            c.topics.auto_create.to_string(),
        ),
        ("num.partitions", c.topics.num_partitions.to_string()),
        (
            "default.replication.factor",
            c.topics.default_replication_factor.to_string(),
        ),
        ("log.segment.bytes", c.log.segment_bytes.to_string()),
        ("log.roll.ms", c.log.segment_ms.to_string()),
        ("log.retention.ms", c.log.retention_ms.to_string()),
        ("log.retention.bytes", c.log.retention_bytes.to_string()),
        (
            "log.retention.check.interval.ms",
            c.log.retention_check_interval_ms.to_string(),
        ),
        (
            "log.index.interval.bytes",
            c.log.index_interval_bytes.to_string(),
        ),
        ("message.max.bytes", c.log.message_max_bytes.to_string()),
        (
            "socket.request.max.bytes",
            c.limits.socket_request_max_bytes.to_string(),
        ),
        (
            "connections.max.idle.ms",
            c.limits.connections_max_idle_ms.to_string(),
        ),
        ("max.connections", c.limits.max_connections.to_string()),
    ]
}

/// The error for altering anything but a topic.
fn not_a_topic(resource_type: i8) -> ApiError {
    if resource_type == RESOURCE_BROKER {
        ApiError::new(
            code::INVALID_REQUEST,
            "broker configs are static; change the config file and restart",
        )
    } else {
        ApiError::new(
            code::INVALID_REQUEST,
            format!("resource type {resource_type} is not supported"),
        )
    }
}

/// Handles AlterConfigs: each resource's list replaces its whole config.
pub fn alter(
    controller: &Arc<Controller>,
    _ctx: &RequestContext,
    _header: &RequestHeader,
    request: AlterConfigsRequest,
) -> impl Future<Output = AlterConfigsResponse> + Send + 'static {
    let controller = Arc::clone(controller);
    async move {
        let mut responses = Vec::with_capacity(request.resources.len());
        for r in request.resources {
            let outcome = if r.resource_type == RESOURCE_TOPIC {
                let ops = r
                    .configs
                    .into_iter()
                    .map(|c| match c.value {
                        Some(v) => ConfigOp::Set(c.name, v),
                        None => ConfigOp::Delete(c.name),
                    })
                    .collect();
                controller
                    .alter_topic_configs(
                        &r.resource_name,
                        ops,
                        AlterMode::Replace,
                        request.validate_only,
                    )
                    .await
            } else {
                Err(not_a_topic(r.resource_type))
            };
            let (error_code, error_message) = split(outcome);
            responses.push(AlterConfigsResourceResponse {
                error_code,
                error_message,
                resource_type: r.resource_type,
                resource_name: r.resource_name,
                ..Default::default()
            });
        }
        AlterConfigsResponse {
            throttle_time_ms: 0,
            responses,
            ..Default::default()
        }
    }
}

/// Handles IncrementalAlterConfigs: SET, DELETE, APPEND, SUBTRACT per key.
pub fn incremental_alter(
    controller: &Arc<Controller>,
    _ctx: &RequestContext,
    _header: &RequestHeader,
    request: IncrementalAlterConfigsRequest,
) -> impl Future<Output = IncrementalAlterConfigsResponse> + Send + 'static {
    let controller = Arc::clone(controller);
    async move {
        let mut responses = Vec::with_capacity(request.resources.len());
        for r in request.resources {
            let outcome = if r.resource_type == RESOURCE_TOPIC {
                let ops: Result<Vec<ConfigOp>, ApiError> = r
                    .configs
                    .into_iter()
                    .map(|c| {
                        let value = || {
                            c.value.clone().ok_or_else(|| {
                                ApiError::new(
                                    code::INVALID_CONFIG,
                                    format!("`{}` needs a value", c.name),
                                )
                            })
                        };
                        Ok(match c.config_operation {
                            0 => ConfigOp::Set(c.name.clone(), value()?),
                            1 => ConfigOp::Delete(c.name.clone()),
                            2 => ConfigOp::Append(c.name.clone(), value()?),
                            3 => ConfigOp::Subtract(c.name.clone(), value()?),
                            op => {
                                return Err(ApiError::new(
                                    code::INVALID_REQUEST,
                                    format!("unknown config operation {op}"),
                                ));
                            }
                        })
                    })
                    .collect();
                match ops {
                    Ok(ops) => {
                        controller
                            .alter_topic_configs(
                                &r.resource_name,
                                ops,
                                AlterMode::Incremental,
                                request.validate_only,
                            )
                            .await
                    }
                    Err(e) => Err(e),
                }
            } else {
                Err(not_a_topic(r.resource_type))
            };
            let (error_code, error_message) = split(outcome);
            responses.push(IncrementalResult {
                error_code,
                error_message,
                resource_type: r.resource_type,
                resource_name: r.resource_name,
                ..Default::default()
            });
        }
        IncrementalAlterConfigsResponse {
            throttle_time_ms: 0,
            responses,
            ..Default::default()
        }
    }
}

fn split(outcome: Result<(), ApiError>) -> (i16, Option<String>) {
    match outcome {
        Ok(()) => (code::NONE, None),
        Err(e) => (e.code, Some(e.message)),
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;
    use sluice_protocol::messages::alter_configs::{AlterConfigsResource, AlterableConfig};
    use sluice_protocol::messages::describe_configs::DescribeConfigsResource;
    use sluice_protocol::messages::incremental_alter_configs::{
        AlterConfigsResource as IncrementalResource, AlterableConfig as IncrementalConfig,
    };

    use super::*;
    use crate::testing::{self, Node};

    fn describe_one(
        node: &Node,
        resource_type: i8,
        resource_name: &str,
        keys: Option<&[&str]>,
    ) -> DescribeConfigsResult {
        let request = DescribeConfigsRequest {
            resources: vec![DescribeConfigsResource {
                resource_type,
                resource_name: resource_name.to_owned(),
                configuration_keys: keys.map(|ks| ks.iter().map(|k| (*k).to_owned()).collect()),
            }],
            ..Default::default()
        };
        let header = testing::header(32, 4);
        let mut response = describe(
            &node.image(),
            &node.config,
            &testing::ctx(),
            &header,
            request,
        )
        .now_or_never()
        .expect("answers at once");
        response.results.remove(0)
    }

    fn value<'a>(
        result: &'a DescribeConfigsResult,
        name: &str,
    ) -> &'a DescribeConfigsResourceResult {
        result
            .configs
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("{name} described"))
    }

    async fn incremental(
        node: &Node,
        resource_type: i8,
        name: &str,
        configs: Vec<(&str, i8, Option<&str>)>,
    ) -> (i16, Option<String>) {
        let request = IncrementalAlterConfigsRequest {
            resources: vec![IncrementalResource {
                resource_type,
                resource_name: name.to_owned(),
                configs: configs
                    .into_iter()
                    .map(|(n, op, v)| IncrementalConfig {
                        name: n.to_owned(),
                        config_operation: op,
                        value: v.map(str::to_owned),
                    })
                    .collect(),
            }],
            validate_only: false,
            ..Default::default()
        };
        let header = testing::header(44, 1);
        let mut response =
            incremental_alter(&node.controller, &testing::ctx(), &header, request).await;
        let r = response.responses.remove(0);
        assert_eq!(r.resource_name, name);
        (r.error_code, r.error_message)
    }

    #[tokio::test]
    async fn a_topic_shows_its_own_values_and_the_defaults_with_their_sources() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        node.create_topic("t", 1).await;
        let (c, _) = incremental(
            &node,
            RESOURCE_TOPIC,
            "t",
            vec![("retention.ms", 0, Some("1000"))],
        )
        .await;
        assert_eq!(c, code::NONE);
        let result = describe_one(&node, RESOURCE_TOPIC, "t", None);
        assert_eq!(result.error_code, code::NONE);
        assert_eq!(result.configs.len(), topic_config::TOPIC_CONFIGS.len());
        let set = value(&result, "retention.ms");
        assert_eq!(set.value.as_deref(), Some("1000"));
        assert_eq!((set.is_default, set.config_source), (false, SOURCE_TOPIC));
        let default = value(&result, "cleanup.policy");
        assert_eq!(default.value.as_deref(), Some("delete"));
        assert_eq!(
            (default.is_default, default.config_source),
            (true, SOURCE_DEFAULT)
        );
        // Only the keys asked for.
        let result = describe_one(&node, RESOURCE_TOPIC, "t", Some(&["cleanup.policy"]));
        assert_eq!(result.configs.len(), 1);
    }

    #[tokio::test]
    async fn unknown_topics_other_brokers_and_other_resource_types_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        let missing = describe_one(&node, RESOURCE_TOPIC, "missing", None);
        assert_eq!(missing.error_code, code::UNKNOWN_TOPIC_OR_PARTITION);
        assert!(missing.configs.is_empty());
        let other = describe_one(&node, RESOURCE_BROKER, "99", None);
        assert_eq!(other.error_code, code::INVALID_REQUEST);
        let group = describe_one(&node, 3, "g", None);
        assert_eq!(group.error_code, code::INVALID_REQUEST);
    }

    #[tokio::test]
    async fn this_broker_describes_its_static_configs_read_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        for name in ["", "1"] {
            let result = describe_one(&node, RESOURCE_BROKER, name, None);
            assert_eq!(result.error_code, code::NONE);
            let id = value(&result, "node.id");
            assert_eq!(id.value.as_deref(), Some("1"));
            assert!(id.read_only);
            assert_eq!(id.config_source, SOURCE_STATIC_BROKER);
            assert_eq!(
                value(&result, "message.max.bytes").value,
                Some(node.config.log.message_max_bytes.to_string())
            );
        }
    }

    #[tokio::test]
    async fn incremental_alter_sets_and_deletes_keys_and_refuses_bad_operations() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        node.create_topic("t", 1).await;
        let (c, _) = incremental(
            &node,
            RESOURCE_TOPIC,
            "t",
            vec![
                ("retention.ms", 0, Some("5000")),
                ("cleanup.policy", 0, Some("compact")),
            ],
        )
        .await;
        assert_eq!(c, code::NONE);
        let (c, _) = incremental(
            &node,
            RESOURCE_TOPIC,
            "t",
            vec![("cleanup.policy", 1, None)],
        )
        .await;
        assert_eq!(c, code::NONE);
        let configs = &node.image().topics["t"].configs;
        assert_eq!(
            configs.get("retention.ms").map(String::as_str),
            Some("5000")
        );
        assert!(!configs.contains_key("cleanup.policy"), "deleted");

        let (c, m) = incremental(&node, RESOURCE_TOPIC, "t", vec![("retention.ms", 0, None)]).await;
        assert_eq!(c, code::INVALID_CONFIG);
        assert!(m.is_some_and(|m| m.contains("retention.ms")));
        let (c, _) = incremental(
            &node,
            RESOURCE_TOPIC,
            "t",
            vec![("retention.ms", 9, Some("1"))],
        )
        .await;
        assert_eq!(c, code::INVALID_REQUEST);
        let (c, _) = incremental(
            &node,
            RESOURCE_BROKER,
            "1",
            vec![("num.partitions", 0, Some("3"))],
        )
        .await;
        assert_eq!(c, code::INVALID_REQUEST);
        let (c, _) = incremental(
            &node,
            RESOURCE_TOPIC,
            "missing",
            vec![("retention.ms", 0, Some("1"))],
        )
        .await;
        assert_eq!(c, code::UNKNOWN_TOPIC_OR_PARTITION);
        assert_eq!(
            node.image().topics["t"]
                .configs
                .get("retention.ms")
                .map(String::as_str),
            Some("5000"),
            "refused changes left the topic alone"
        );
    }

    #[tokio::test]
    async fn alter_configs_replaces_the_whole_set() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        node.create_topic("t", 1).await;
        let (c, _) = incremental(
            &node,
            RESOURCE_TOPIC,
            "t",
            vec![("retention.ms", 0, Some("5000"))],
        )
        .await;
        assert_eq!(c, code::NONE);
        let request = AlterConfigsRequest {
            resources: vec![AlterConfigsResource {
                resource_type: RESOURCE_TOPIC,
                resource_name: "t".to_owned(),
                configs: vec![AlterableConfig {
                    name: "cleanup.policy".to_owned(),
                    value: Some("compact".to_owned()),
                }],
            }],
            validate_only: false,
            ..Default::default()
        };
        let header = testing::header(33, 2);
        let response = alter(&node.controller, &testing::ctx(), &header, request).await;
        assert_eq!(response.responses[0].error_code, code::NONE);
        let configs = &node.image().topics["t"].configs;
        assert_eq!(
            configs.get("cleanup.policy").map(String::as_str),
            Some("compact")
        );
        assert!(!configs.contains_key("retention.ms"), "not in the new set");
    }
}
