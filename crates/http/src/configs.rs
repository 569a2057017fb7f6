//! Config listings with their defaults, for the console's config editors:
//! every topic config with the broker default it falls back to, and this
//! broker's own configs. The same values Kafka's DescribeConfigs reports
//! (the broker's `admin_configs` handler); changes go through
//! `PATCH /v1/topics/{topic}/configs`.

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::{Caller, Operation, Resource};
use super::error::{ApiResult, ErrorBody, HttpError, Path};
use super::{AppState, unknown_topic};
use sluice_metadata::broker_config::DYNAMIC_BROKER_CONFIGS;
use sluice_metadata::image::DynamicSource;
use sluice_metadata::topic_config;
use sluice_protocol::error::codes as code;

/// One config and where its value comes from.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigEntry {
    /// Kafka's name, e.g. `retention.ms`.
    pub name: String,
    /// The value in force; null for a sensitive config.
    pub value: Option<String>,
    /// True when nothing overrides it: the value is the default.
    pub is_default: bool,
    /// Kafka's config source: `TOPIC_CONFIG` (set on the topic),
    /// `DEFAULT_CONFIG`, `STATIC_BROKER_CONFIG`, `DYNAMIC_BROKER_CONFIG` or
    /// `DYNAMIC_DEFAULT_BROKER_CONFIG`.
    pub source: String,
    /// Marked sensitive: its value is not shown.
    pub sensitive: bool,
    /// False for a config only the broker's config file sets.
    pub editable: bool,
}

/// Configs of one resource, sorted by name.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigList {
    /// Every config, set or not.
    pub configs: Vec<ConfigEntry>,
}

/// Every config of a topic: the ones set on it and, for the rest, the
/// broker default in force (Kafka's DescribeConfigs with all synonyms off).
#[utoipa::path(get, operation_id = "describe_topic_configs", path = "/v1/topics/{topic}/configs", tag = "topics",
    params(("topic" = String, Path, description = "Topic name")),
    responses(
        (status = 200, description = "Every topic config", body = ConfigList),
        (status = 404, description = "No such topic", body = ErrorBody),
    ))]
pub async fn topic_configs(
    State(state): State<AppState>,
    caller: Caller,
    Path(topic): Path<String>,
) -> ApiResult<axum::Json<ConfigList>> {
    caller.require(Operation::DescribeConfigs, Resource::Topic(&topic))?;
    let image = state.broker.metadata.image();
    let t = image
        .topics
        .get(&topic)
        .ok_or_else(|| unknown_topic(&topic))?;
    let log = &state.broker.config.log;
    let mut configs: Vec<ConfigEntry> = topic_config::TOPIC_CONFIGS
        .iter()
        .map(|d| {
            let set = t.configs.get(d.name);
            let value = set
                .cloned()
                .unwrap_or_else(|| topic_config::default_value(d.name, log));
            ConfigEntry {
                name: d.name.to_owned(),
                value: (!d.sensitive).then_some(value),
                is_default: set.is_none(),
                source: if set.is_some() {
                    "TOPIC_CONFIG"
                } else {
                    "DEFAULT_CONFIG"
                }
                .to_owned(),
                sensitive: d.sensitive,
                editable: true,
            }
        })
        .collect();
    configs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(axum::Json(ConfigList { configs }))
}

/// A broker's configs: its static ones (from its config file, read-only)
/// and the dynamic replication throttles. Only the broker answering knows
/// its static configs, so another broker's id is refused with a pointer
/// to that broker's own HTTP listener.
#[utoipa::path(get, operation_id = "describe_broker_configs", path = "/v1/cluster/brokers/{node_id}/configs", tag = "cluster",
    params(("node_id" = i32, Path, description = "Broker id")),
    responses(
        (status = 200, description = "The broker's configs", body = ConfigList),
        (status = 400, description = "Another broker (INVALID_REQUEST): ask its own HTTP listener", body = ErrorBody),
        (status = 404, description = "No such broker (BROKER_ID_NOT_REGISTERED)", body = ErrorBody),
    ))]
pub async fn broker_configs(
    State(state): State<AppState>,
    caller: Caller,
    Path(node_id): Path<i32>,
) -> ApiResult<axum::Json<ConfigList>> {
    // Kafka's DescribeConfigs on a BROKER resource: DESCRIBE_CONFIGS on
    // the cluster.
    caller.require(Operation::DescribeConfigs, Resource::Cluster)?;
    let config = &state.broker.config;
    let image = state.broker.metadata.image();
    if node_id != config.node_id {
        // As Kafka's DescribeConfigs sent to the wrong broker.
        if !image.brokers.contains_key(&node_id) {
            return Err(HttpError::kafka(
                code::BROKER_ID_NOT_REGISTERED,
                format!("broker {node_id} is not registered"),
            ));
        }
        return Err(HttpError::kafka(
            code::INVALID_REQUEST,
            format!(
                "this is broker {}; broker {node_id}'s configs are served by its own HTTP listener",
                config.node_id
            ),
        ));
    }
    let mut configs: Vec<ConfigEntry> = sluice_broker::handlers::broker_configs(config)
        .into_iter()
        .map(|(name, value)| ConfigEntry {
            name: name.to_owned(),
            value: Some(value),
            is_default: false,
            source: "STATIC_BROKER_CONFIG".to_owned(),
            sensitive: false,
            editable: false,
        })
        .collect();
    for name in DYNAMIC_BROKER_CONFIGS {
        let (value, source) = match image.broker_config(node_id, name) {
            Some((v, DynamicSource::Broker)) => (v.to_owned(), "DYNAMIC_BROKER_CONFIG"),
            Some((v, _)) => (v.to_owned(), "DYNAMIC_DEFAULT_BROKER_CONFIG"),
            None => (
                sluice_metadata::broker_config::UNLIMITED_RATE.to_string(),
                "DEFAULT_CONFIG",
            ),
        };
        configs.push(ConfigEntry {
            name: (*name).to_owned(),
            value: Some(value),
            is_default: source == "DEFAULT_CONFIG",
            source: source.to_owned(),
            sensitive: false,
            editable: false,
        });
    }
    configs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(axum::Json(ConfigList { configs }))
}
