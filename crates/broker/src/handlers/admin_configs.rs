//! DescribeConfigs (32), AlterConfigs (33) and IncrementalAlterConfigs (44).
//!
//! Topics take every topic config. A BROKER resource (named by broker id,
//! or "" for the cluster-wide default) takes only the dynamic broker
//! configs, the replication throttle rates (KIP-73,
//! `sluice_metadata::broker_config`); every other broker config is static
//! and its alter is refused, as before.

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
use crate::authz::{self, Authorizer};
use crate::config::Config;
use sluice_metadata::acl::AclOperation;
use sluice_metadata::broker_config::{self, DYNAMIC_BROKER_CONFIGS};
use sluice_metadata::controller::{AlterMode, ConfigOp};
use sluice_metadata::image::{CLUSTER_DEFAULT_BROKER, DynamicSource};
use sluice_metadata::topic_config;
use sluice_metadata::{ApiError, Controller, MetadataImage};

/// Kafka's config resource types.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
/// DescribeConfigs sources (Kafka's `ConfigSource` ids): a dynamic config
/// set on this broker, one set as the cluster-wide default, and the
/// broker's static config.
const SOURCE_DYNAMIC_BROKER: i8 = 2;
const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;
const SOURCE_STATIC_BROKER: i8 = 4;
/// DescribeConfigs `config_type` LONG, the type of both throttle rates.
const CONFIG_TYPE_LONG: i8 = 5;

/// Handles DescribeConfigs: topics from `image` (unset keys show
/// `config`'s log defaults), this broker's static `config`.
pub fn describe(
    image: &MetadataImage,
    config: &Config,
    authorizer: &Authorizer,
    ctx: &RequestContext,
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
            if let Some(error_code) = config_denial(
                authorizer,
                ctx,
                r.resource_type,
                &r.resource_name,
                AclOperation::DescribeConfigs,
            ) {
                result.error_code = error_code;
                result.error_message = Some("DESCRIBE_CONFIGS is required".to_owned());
                return result;
            }
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
                        // "" is the cluster-wide default: only defaults show.
                        let broker_id = if r.resource_name.is_empty() {
                            CLUSTER_DEFAULT_BROKER
                        } else {
                            config.node_id
                        };
                        result.configs.extend(
                            DYNAMIC_BROKER_CONFIGS
                                .iter()
                                .filter(|name| wanted(name))
                                .map(|name| dynamic_broker_config(image, broker_id, name)),
                        );
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

/// A dynamic broker config of `broker_id` (-1: the cluster default) as
/// DescribeConfigs reports it: where its value comes from, or Kafka's
/// built-in default (unlimited) when it is set nowhere.
fn dynamic_broker_config(
    image: &MetadataImage,
    broker_id: i32,
    name: &str,
) -> DescribeConfigsResourceResult {
    let (value, source) = match image.broker_config(broker_id, name) {
        Some((v, DynamicSource::Broker)) if broker_id != CLUSTER_DEFAULT_BROKER => {
            (v.to_owned(), SOURCE_DYNAMIC_BROKER)
        }
        Some((v, _)) => (v.to_owned(), SOURCE_DYNAMIC_DEFAULT_BROKER),
        None => (broker_config::UNLIMITED_RATE.to_string(), SOURCE_DEFAULT),
    };
    DescribeConfigsResourceResult {
        name: name.to_owned(),
        value: Some(value),
        read_only: false,
        is_default: source == SOURCE_DEFAULT,
        config_source: source,
        is_sensitive: false,
        config_type: CONFIG_TYPE_LONG,
        ..Default::default()
    }
}

/// The broker a BROKER resource names: its id, or
/// [`CLUSTER_DEFAULT_BROKER`] for "" (the cluster-wide default).
fn broker_resource(name: &str) -> Result<i32, ApiError> {
    if name.is_empty() {
        return Ok(CLUSTER_DEFAULT_BROKER);
    }
    name.parse::<i32>()
        .ok()
        .filter(|&id| id >= 0)
        .ok_or_else(|| {
            ApiError::new(
                code::INVALID_REQUEST,
                format!("broker resource `{name}` is not a broker id"),
            )
        })
}

/// The broker's static configs under Kafka's names (DescribeConfigs on a
/// BROKER resource, and the HTTP API's broker configs).
pub fn broker_configs(c: &Config) -> Vec<(&'static str, String)> {
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
        ("log.cleaner.enable", c.log.cleaner_enable.to_string()),
        ("log.cleanup.policy", c.log.cleanup_policy.clone()),
        (
            "log.cleaner.delete.retention.ms",
            c.log.cleaner_delete_retention_ms.to_string(),
        ),
        (
            "log.cleaner.min.cleanable.ratio",
            c.log.cleaner_min_cleanable_ratio.to_string(),
        ),
        (
            "log.cleaner.min.compaction.lag.ms",
            c.log.cleaner_min_compaction_lag_ms.to_string(),
        ),
        (
            "log.cleaner.max.compaction.lag.ms",
            c.log.cleaner_max_compaction_lag_ms.to_string(),
        ),
        (
            "log.cleaner.backoff.ms",
            c.log.cleaner_backoff_ms.to_string(),
        ),
        (
            "log.cleaner.dedupe.buffer.size",
            c.log.cleaner_dedupe_buffer_bytes.to_string(),
        ),
        (
            "log.cleaner.io.max.bytes.per.second",
            match c.log.cleaner_io_max_bytes_per_second {
                // Kafka's default, Double.MAX_VALUE: no limit.
                0 => "1.7976931348623157E308".to_owned(),
                rate => rate.to_string(),
            },
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
        // Not a Kafka key: where this broker's HTTP API listens, so a
        // client holding only the Kafka address (`sluice status -b`) asks
        // the same broker's HTTP API, not whatever answers on a default.
        (HTTP_LISTENER_CONFIG, c.http_listener.clone()),
    ]
}

/// The read-only broker config naming the HTTP listener (`host:port`).
pub const HTTP_LISTENER_CONFIG: &str = "sluice.http.listener";

/// The error for altering a resource that is neither a topic nor a broker.
fn unsupported(resource_type: i8) -> ApiError {
    ApiError::new(
        code::INVALID_REQUEST,
        format!("resource type {resource_type} is not supported"),
    )
}

/// The error a config request on `(resource_type, name)` gets when the
/// principal may not do `operation` there (Kafka: topics by topic ACLs,
/// brokers and broker loggers by the cluster's); `None` when allowed.
/// Unknown resource types pass, to be refused as unsupported.
fn config_denial(
    authorizer: &Authorizer,
    ctx: &RequestContext,
    resource_type: i8,
    name: &str,
    operation: AclOperation,
) -> Option<i16> {
    match resource_type {
        RESOURCE_TOPIC => authz::check_topic(authorizer, ctx, operation, name).err(),
        RESOURCE_BROKER | RESOURCE_BROKER_LOGGER => {
            authz::check_cluster(authorizer, ctx, operation).err()
        }
        _ => None,
    }
}

/// Kafka's BROKER_LOGGER config resource type (checked like BROKER).
const RESOURCE_BROKER_LOGGER: i8 = 8;

/// For each `(resource type, name)` an alter would touch, the error code
/// refusing it, or `None` if the principal holds ALTER_CONFIGS on it.
/// Decided before the async part, which cannot borrow the context.
fn alter_denials<'a>(
    authorizer: &Authorizer,
    ctx: &RequestContext,
    resources: impl Iterator<Item = (i8, &'a str)>,
) -> Vec<Option<i16>> {
    resources
        .map(|(resource_type, name)| {
            config_denial(
                authorizer,
                ctx,
                resource_type,
                name,
                AclOperation::AlterConfigs,
            )
        })
        .collect()
}

/// The refusal of an alter the principal may not make.
fn alter_denied(error_code: i16) -> ApiError {
    ApiError::new(error_code, "ALTER_CONFIGS is required")
}

/// Handles AlterConfigs: each resource's list replaces its whole config.
pub fn alter(
    controller: &Arc<Controller>,
    authorizer: &Authorizer,
    ctx: &RequestContext,
    _header: &RequestHeader,
    request: AlterConfigsRequest,
) -> impl Future<Output = AlterConfigsResponse> + Send + 'static {
    let controller = Arc::clone(controller);
    let denials = alter_denials(
        authorizer,
        ctx,
        request
            .resources
            .iter()
            .map(|r| (r.resource_type, r.resource_name.as_str())),
    );
    async move {
        let mut responses = Vec::with_capacity(request.resources.len());
        for (r, denied) in request.resources.into_iter().zip(denials) {
            let ops: Vec<ConfigOp> = r
                .configs
                .into_iter()
                .map(|c| match c.value {
                    Some(v) => ConfigOp::Set(c.name, v),
                    None => ConfigOp::Delete(c.name),
                })
                .collect();
            let outcome = match r.resource_type {
                _ if denied.is_some() => Err(alter_denied(denied.unwrap_or_default())),
                RESOURCE_TOPIC => {
                    controller
                        .alter_topic_configs(
                            &r.resource_name,
                            ops,
                            AlterMode::Replace,
                            request.validate_only,
                        )
                        .await
                }
                RESOURCE_BROKER => match broker_resource(&r.resource_name) {
                    Ok(broker_id) => {
                        controller
                            .alter_broker_configs(
                                broker_id,
                                ops,
                                AlterMode::Replace,
                                request.validate_only,
                            )
                            .await
                    }
                    Err(e) => Err(e),
                },
                other => Err(unsupported(other)),
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
    authorizer: &Authorizer,
    ctx: &RequestContext,
    _header: &RequestHeader,
    request: IncrementalAlterConfigsRequest,
) -> impl Future<Output = IncrementalAlterConfigsResponse> + Send + 'static {
    let controller = Arc::clone(controller);
    let denials = alter_denials(
        authorizer,
        ctx,
        request
            .resources
            .iter()
            .map(|r| (r.resource_type, r.resource_name.as_str())),
    );
    async move {
        let mut responses = Vec::with_capacity(request.resources.len());
        for (r, denied) in request.resources.into_iter().zip(denials) {
            let outcome = if let Some(error_code) = denied {
                Err(alter_denied(error_code))
            } else if r.resource_type == RESOURCE_TOPIC || r.resource_type == RESOURCE_BROKER {
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
                    Ok(ops) if r.resource_type == RESOURCE_TOPIC => {
                        controller
                            .alter_topic_configs(
                                &r.resource_name,
                                ops,
                                AlterMode::Incremental,
                                request.validate_only,
                            )
                            .await
                    }
                    Ok(ops) => match broker_resource(&r.resource_name) {
                        Ok(broker_id) => {
                            controller
                                .alter_broker_configs(
                                    broker_id,
                                    ops,
                                    AlterMode::Incremental,
                                    request.validate_only,
                                )
                                .await
                        }
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(e),
                }
            } else {
                Err(unsupported(r.resource_type))
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
            &testing::allow_all(),
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
        let mut response = incremental_alter(
            &node.controller,
            &testing::allow_all(),
            &testing::ctx(),
            &header,
            request,
        )
        .await;
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
            assert_eq!(
                value(&result, HTTP_LISTENER_CONFIG).value,
                Some(node.config.http_listener.clone())
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
    async fn throttle_rates_are_dynamic_broker_configs_per_broker_and_cluster_default() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        let leader = broker_config::LEADER_THROTTLED_RATE;
        let follower = broker_config::FOLLOWER_THROTTLED_RATE;
        // Unset: Kafka's default, unlimited, alterable.
        let result = describe_one(&node, RESOURCE_BROKER, "1", None);
        let unset = value(&result, leader);
        assert_eq!(unset.value, Some(i64::MAX.to_string()));
        assert_eq!(
            (unset.is_default, unset.config_source),
            (true, SOURCE_DEFAULT)
        );
        assert!(!unset.read_only);
        assert_eq!(unset.config_type, CONFIG_TYPE_LONG);

        let (c, m) =
            incremental(&node, RESOURCE_BROKER, "", vec![(follower, 0, Some("300"))]).await;
        assert_eq!((c, m), (code::NONE, None));
        let (c, _) =
            incremental(&node, RESOURCE_BROKER, "1", vec![(leader, 0, Some("2000"))]).await;
        assert_eq!(c, code::NONE);
        // Another broker's config is accepted (the controller keeps it for
        // that broker) and does not show on this one.
        let (c, _) = incremental(&node, RESOURCE_BROKER, "2", vec![(follower, 0, Some("9"))]).await;
        assert_eq!(c, code::NONE);

        let result = describe_one(&node, RESOURCE_BROKER, "1", Some(&[leader, follower]));
        assert_eq!(result.configs.len(), 2, "only the keys asked for");
        let own = value(&result, leader);
        assert_eq!(own.value.as_deref(), Some("2000"));
        assert_eq!(
            (own.is_default, own.config_source),
            (false, SOURCE_DYNAMIC_BROKER)
        );
        let inherited = value(&result, follower);
        assert_eq!(inherited.value.as_deref(), Some("300"));
        assert_eq!(inherited.config_source, SOURCE_DYNAMIC_DEFAULT_BROKER);
        // "" describes the cluster default: broker 1's own value is not it.
        let default = describe_one(&node, RESOURCE_BROKER, "", Some(&[leader, follower]));
        assert_eq!(value(&default, leader).config_source, SOURCE_DEFAULT);
        assert_eq!(value(&default, follower).value.as_deref(), Some("300"));
        assert_eq!(
            value(&default, follower).config_source,
            SOURCE_DYNAMIC_DEFAULT_BROKER
        );

        // Static keys stay refused; bad values and resource names too; a
        // refused resource changes nothing.
        let (c, m) = incremental(
            &node,
            RESOURCE_BROKER,
            "1",
            vec![(leader, 0, Some("1")), ("num.partitions", 0, Some("3"))],
        )
        .await;
        assert_eq!(c, code::INVALID_REQUEST);
        assert!(m.is_some_and(|m| m.contains("num.partitions")));
        let (c, _) = incremental(&node, RESOURCE_BROKER, "1", vec![(leader, 0, Some("-1"))]).await;
        assert_eq!(c, code::INVALID_CONFIG);
        let (c, _) = incremental(&node, RESOURCE_BROKER, "one", vec![(leader, 0, Some("1"))]).await;
        assert_eq!(c, code::INVALID_REQUEST);
        assert_eq!(node.image().broker_configs[&1][leader], "2000");

        // DELETE falls back to the default; AlterConfigs replaces the set.
        let (c, _) = incremental(&node, RESOURCE_BROKER, "1", vec![(leader, 1, None)]).await;
        assert_eq!(c, code::NONE);
        assert!(!node.image().broker_configs.contains_key(&1));
        let request = AlterConfigsRequest {
            resources: vec![AlterConfigsResource {
                resource_type: RESOURCE_BROKER,
                resource_name: String::new(),
                configs: vec![AlterableConfig {
                    name: leader.to_owned(),
                    value: Some("77".to_owned()),
                }],
            }],
            validate_only: false,
            ..Default::default()
        };
        let header = testing::header(33, 2);
        let response = alter(
            &node.controller,
            &testing::allow_all(),
            &testing::ctx(),
            &header,
            request,
        )
        .await;
        assert_eq!(response.responses[0].error_code, code::NONE);
        let defaults = &node.image().broker_configs[&CLUSTER_DEFAULT_BROKER];
        assert_eq!(
            defaults,
            &std::collections::BTreeMap::from([(leader.to_owned(), "77".to_owned())]),
            "the follower rate is not in the new set"
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
        let response = alter(
            &node.controller,
            &testing::allow_all(),
            &testing::ctx(),
            &header,
            request,
        )
        .await;
        assert_eq!(response.responses[0].error_code, code::NONE);
        let configs = &node.image().topics["t"].configs;
        assert_eq!(
            configs.get("cleanup.policy").map(String::as_str),
            Some("compact")
        );
        assert!(!configs.contains_key("retention.ms"), "not in the new set");
    }
}
