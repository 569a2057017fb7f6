//! CreateTopics (19).

use std::future::Future;
use std::sync::Arc;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::create_topics::{
    CreatableTopicConfigs, CreatableTopicResult, CreateTopicsRequest, CreateTopicsResponse,
};

use super::RequestContext;
use sluice_metadata::config::LogDefaults;
use sluice_metadata::controller::NewTopic;
use sluice_metadata::topic_config;
use sluice_metadata::{ApiError, Controller};

/// Kafka's DescribeConfigs source codes.
pub(crate) const SOURCE_TOPIC: i8 = 1;
pub(crate) const SOURCE_DEFAULT: i8 = 5;

/// Handles CreateTopics through `controller`. A manual assignment may name
/// only `node_id`; unset configs are reported with their `log_defaults`.
pub fn handle(
    controller: &Arc<Controller>,
    node_id: i32,
    log_defaults: &LogDefaults,
    _ctx: &RequestContext,
    _header: &RequestHeader,
    request: CreateTopicsRequest,
) -> impl Future<Output = CreateTopicsResponse> + Send + 'static {
    let controller = Arc::clone(controller);
    let log_defaults = log_defaults.clone();
    async move {
        let names: Vec<String> = request.topics.iter().map(|t| t.name.clone()).collect();
        let new_topics = request
            .topics
            .into_iter()
            .map(|t| {
                if !t.assignments.is_empty() {
                    // Manual assignment: on one node it can only name this broker.
                    let bad = t.assignments.iter().any(|a| a.broker_ids.iter().any(|&b| b != node_id));
                    if bad {
                        return Err(ApiError::new(code::INVALID_REPLICA_ASSIGNMENT, "assignment names an unknown broker"));
                    }
                    if t.num_partitions != -1 || t.replication_factor != -1 {
                        return Err(ApiError::new(
                            code::INVALID_REQUEST,
                            "num_partitions and replication_factor must be -1 with a manual assignment",
                        ));
                    }
                    return Ok(NewTopic {
                        name: t.name,
                        num_partitions: t.assignments.len() as i32,
                        replication_factor: 1,
                        configs: t.configs.into_iter().map(|c| (c.name, c.value)).collect(),
                    });
                }
                Ok(NewTopic {
                    name: t.name,
                    num_partitions: t.num_partitions,
                    replication_factor: t.replication_factor,
                    configs: t.configs.into_iter().map(|c| (c.name, c.value)).collect(),
                })
            })
            .collect::<Vec<_>>();
        let valid: Vec<NewTopic> = new_topics
            .iter()
            .filter_map(|r| r.as_ref().ok().cloned())
            .collect();
        let mut created = controller
            .create_topics(valid, request.validate_only)
            .await
            .into_iter();
        let topics = names
            .into_iter()
            .zip(new_topics)
            .map(|(name, pre)| {
                let outcome = match pre {
                    Err(e) => Err(e),
                    Ok(_) => created.next().unwrap_or_else(|| {
                        Err(ApiError::new(code::UNKNOWN_SERVER_ERROR, "missing result"))
                    }),
                };
                match outcome {
                    Ok(c) => CreatableTopicResult {
                        topic_id: c.topic_id,
                        error_code: code::NONE,
                        error_message: None,
                        num_partitions: c.num_partitions,
                        replication_factor: c.replication_factor,
                        configs: Some(
                            topic_config::TOPIC_CONFIGS
                                .iter()
                                .map(|d| {
                                    let set = c.configs.get(d.name);
                                    CreatableTopicConfigs {
                                        name: d.name.to_owned(),
                                        value: Some(set.cloned().unwrap_or_else(|| {
                                            topic_config::default_value(d.name, &log_defaults)
                                        })),
                                        read_only: false,
                                        config_source: if set.is_some() {
                                            SOURCE_TOPIC
                                        } else {
                                            SOURCE_DEFAULT
                                        },
                                        is_sensitive: d.sensitive,
                                        ..Default::default()
                                    }
                                })
                                .collect(),
                        ),
                        name,
                        ..Default::default()
                    },
                    Err(e) => CreatableTopicResult {
                        name,
                        error_code: e.code,
                        error_message: Some(e.message),
                        num_partitions: -1,
                        replication_factor: -1,
                        configs: None,
                        ..Default::default()
                    },
                }
            })
            .collect();
        CreateTopicsResponse {
            throttle_time_ms: 0,
            topics,
            ..Default::default()
        }
    }
}
