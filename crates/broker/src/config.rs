//! Broker configuration: typed, layered, validated at start-up.
//!
//! Layers, later wins: built-in defaults (Kafka's, unless noted), a TOML
//! file, `SLUICE_*` environment variables, then command-line overrides.
//! Every leaf key `a.b_c` has the environment name `SLUICE_A_B_C`, so
//! `data_dir` is `SLUICE_DATA_DIR` and `log.segment_bytes` is
//! `SLUICE_LOG_SEGMENT_BYTES`. Every error names the full key and the value.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// Every leaf key the config understands, used to map environment variables
/// and `--set` overrides onto the tree. Kept in step with the structs below
/// by `every_known_key_deserializes`.
pub const KNOWN_KEYS: &[&str] = &[
    "node_id",
    "data_dir",
    "kafka_listener",
    "kafka_advertised_listener",
    "kafka_security_protocol",
    "http_listener",
    "controller_listener",
    "controller_advertised_listener",
    "controller_security_protocol",
    "cluster.voters",
    "cluster.election_timeout_ms",
    "cluster.heartbeat_interval_ms",
    "cluster.snapshot_entries",
    "broker.rack",
    "broker.session_timeout_ms",
    "broker.heartbeat_interval_ms",
    "replica.lag_time_max_ms",
    "replica.fetch_wait_max_ms",
    "replica.fetch_max_bytes",
    "replica.fetch_response_max_bytes",
    "replica.fetch_backoff_ms",
    "log.segment_bytes",
    "log.segment_ms",
    "log.retention_ms",
    "log.retention_bytes",
    "log.retention_check_interval_ms",
    "log.index_interval_bytes",
    "log.message_max_bytes",
    "log.message_timestamp_type",
    "log.message_timestamp_before_max_ms",
    "log.message_timestamp_after_max_ms",
    "log.flush_mode",
    "log.flush_messages",
    "log.flush_ms",
    "log.max_open_files",
    "topics.auto_create",
    "topics.num_partitions",
    "topics.default_replication_factor",
    "limits.max_connections",
    "limits.socket_request_max_bytes",
    "limits.connections_max_idle_ms",
    "limits.max_in_flight_requests_per_connection",
    "limits.fetch_max_bytes",
    "limits.queued_max_request_bytes",
    "limits.request_read_timeout_ms",
    "transactions.max_timeout_ms",
    "transactions.state_log_replication_factor",
    "groups.offsets_topic_num_partitions",
    "groups.offsets_topic_replication_factor",
    "groups.offsets_retention_minutes",
    "groups.offsets_retention_ms",
    "groups.offsets_retention_check_interval_ms",
    "groups.group_initial_rebalance_delay_ms",
    "groups.group_min_session_timeout_ms",
    "groups.group_max_session_timeout_ms",
    "groups.offset_metadata_max_bytes",
    "groups.consumer_session_timeout_ms",
    "groups.consumer_heartbeat_interval_ms",
];

/// The whole broker configuration.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// This broker's id in the cluster (Kafka's `node.id`).
    pub node_id: i32,
    /// Directory holding every partition, the metadata log and the lock file.
    pub data_dir: PathBuf,
    /// `host:port` the Kafka protocol listener binds.
    pub kafka_listener: String,
    /// `host:port` advertised to clients in Metadata; defaults to the listener.
    pub kafka_advertised_listener: Option<String>,
    /// Security protocol of the Kafka listener. Only PLAINTEXT exists today;
    /// TLS and SASL arrive with the security issue.
    pub kafka_security_protocol: SecurityProtocol,
    /// `host:port` of the HTTP API, metrics and console.
    pub http_listener: String,
    /// Broker-wide defaults for topic logs (Kafka's `log.*` broker configs).
    pub log: LogDefaults,
    /// Topic creation behaviour.
    pub topics: TopicDefaults,
    /// Bounds on what clients can make the broker hold.
    pub limits: Limits,
    /// Consumer group coordinator settings.
    pub groups: GroupConfig,
    /// Transaction coordinator settings.
    pub transactions: TransactionConfig,
    /// `host:port` the controller listener (Raft and broker-to-controller
    /// traffic) binds. Required with `cluster.voters`.
    pub controller_listener: Option<String>,
    /// `host:port` other nodes reach the controller listener at; defaults
    /// to the listener.
    pub controller_advertised_listener: Option<String>,
    /// Security protocol of the controller listener (PLAINTEXT until the
    /// security issue brings TLS).
    pub controller_security_protocol: SecurityProtocol,
    /// The metadata quorum.
    pub cluster: ClusterConfig,
    /// This node as a broker of the cluster.
    pub broker: BrokerConfig,
    /// Partition replication.
    pub replica: ReplicaConfig,
}

/// Partition replication (`replica.*`), Kafka's `replica.*` settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ReplicaConfig {
    /// Kafka's `replica.lag.time.max.ms`: a follower that has not caught up
    /// to the leader's end for this long leaves the ISR.
    pub lag_time_max_ms: u64,
    /// Kafka's `replica.fetch.wait.max.ms`: a follower's long poll; well
    /// under `lag_time_max_ms`, so an idle follower is not shrunk out.
    pub fetch_wait_max_ms: u64,
    /// Kafka's `replica.fetch.max.bytes`: bytes per partition per fetch (a
    /// larger first batch still comes whole).
    pub fetch_max_bytes: u32,
    /// Kafka's `replica.fetch.response.max.bytes`: bytes per fetch response.
    pub fetch_response_max_bytes: u32,
    /// Kafka's `replica.fetch.backoff.ms`: pause after a failed fetch.
    pub fetch_backoff_ms: u64,
}

impl Default for ReplicaConfig {
    fn default() -> Self {
        ReplicaConfig {
            lag_time_max_ms: 30_000,
            fetch_wait_max_ms: 500,
            fetch_max_bytes: 1 << 20,
            fetch_response_max_bytes: 10 << 20,
            fetch_backoff_ms: 1_000,
        }
    }
}

/// The metadata quorum (`cluster.*`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// The initial voters, `"1@host1:9093,2@host2:9093,3@host3:9093"`. Unset:
    /// a single node with its local metadata log, no quorum.
    pub voters: Option<String>,
    /// Raft election timeout, lower bound (the upper is twice it). openraft
    /// first waits out the old leader's lease (the upper bound), so with
    /// 500 ms a follower stands 1.5–2 s after the leader's last heartbeat;
    /// Kafka's `controller.quorum.election.timeout.ms` is 1 s, which here
    /// would take 3–4 s and miss the 5 s failover target.
    pub election_timeout_ms: u64,
    /// Raft heartbeat interval; well under the election timeout.
    pub heartbeat_interval_ms: u64,
    /// Take a metadata snapshot (and cut the Raft log) every this many entries.
    pub snapshot_entries: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            voters: None,
            election_timeout_ms: 500,
            heartbeat_interval_ms: 200,
            snapshot_entries: 1_000,
        }
    }
}

/// This node as a broker (`broker.*`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerConfig {
    /// Kafka's `broker.rack`: replicas of a partition go to distinct racks.
    pub rack: Option<String>,
    /// Kafka's `broker.session.timeout.ms`: a broker silent this long is
    /// fenced and its partitions' leadership moves.
    pub session_timeout_ms: u64,
    /// Kafka's `broker.heartbeat.interval.ms`.
    pub heartbeat_interval_ms: u64,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            rack: None,
            // Below Kafka's 9 s / 2 s: a dead leader's partitions move
            // within the 5 s failover target (issue 13). Heartbeats are a
            // few bytes to the controller, so the faster rate is cheap.
            session_timeout_ms: 3_000,
            heartbeat_interval_ms: 500,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            node_id: 1,
            data_dir: PathBuf::from("./data"),
            kafka_listener: "127.0.0.1:9092".to_owned(),
            kafka_advertised_listener: None,
            kafka_security_protocol: SecurityProtocol::Plaintext,
            http_listener: "127.0.0.1:8080".to_owned(),
            log: LogDefaults::default(),
            topics: TopicDefaults::default(),
            limits: Limits::default(),
            groups: GroupConfig::default(),
            transactions: TransactionConfig::default(),
            controller_listener: None,
            controller_advertised_listener: None,
            controller_security_protocol: SecurityProtocol::Plaintext,
            cluster: ClusterConfig::default(),
            broker: BrokerConfig::default(),
            replica: ReplicaConfig::default(),
        }
    }
}

/// A listener's security protocol, as Kafka names them.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SecurityProtocol {
    /// No TLS, no authentication.
    Plaintext,
    /// TLS without SASL (not implemented yet; rejected at start-up).
    Ssl,
    /// SASL without TLS (not implemented yet; rejected at start-up).
    SaslPlaintext,
    /// SASL over TLS (not implemented yet; rejected at start-up).
    SaslSsl,
}

pub use sluice_metadata::config::{
    FlushMode, LogDefaults, MIN_MAX_OPEN_FILES, TimestampTypeConfig, TopicDefaults,
    derive_max_open_files,
};

/// Ceiling of `limits.queued_max_request_bytes`: tokio's semaphore holds at
/// most `usize::MAX >> 3` permits; 1 PiB is far above any real budget.
pub const MAX_QUEUED_REQUEST_BYTES: u64 = 1 << 50;

/// Limits on what connections may make the broker hold.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Open Kafka connections at once; further accepts wait for a slot.
    pub max_connections: u32,
    /// Largest request frame, checked before any allocation
    /// (Kafka's `socket.request.max.bytes`, 100 MiB).
    pub socket_request_max_bytes: u32,
    /// Close a connection idle this long (Kafka's `connections.max.idle.ms`).
    pub connections_max_idle_ms: u64,
    /// Requests read ahead and in progress per connection before the broker
    /// stops reading from it; bounds per-connection memory.
    pub max_in_flight_requests_per_connection: u32,
    /// Largest Fetch response, whatever `max_bytes` the client asks for
    /// (Kafka's broker `fetch.max.bytes`, 55 MiB). The first batch of the
    /// first non-empty partition is still returned whole (KIP-74).
    pub fetch_max_bytes: u32,
    /// Bytes of request frames read or being read, across all connections,
    /// before the broker stops reading more (Kafka's
    /// `queued.max.request.bytes`). Kafka's default is unbounded; ours is
    /// 512 MiB so many connections each sending a large frame cannot
    /// exhaust memory. Must be at least `socket_request_max_bytes`, or the
    /// largest allowed frame could never be admitted.
    pub queued_max_request_bytes: u64,
    /// Once a frame's length is read and its bytes are admitted to the
    /// request budget, the rest of the frame must arrive within this long,
    /// or the connection is closed and the bytes go back to the budget.
    /// Without it a client could declare large frames, send nothing more,
    /// and hold the whole budget (stalling every other connection) until
    /// `connections_max_idle_ms`. Kafka has no such bound; 60 s carries a
    /// 100 MiB frame at under 2 MB/s.
    pub request_read_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 10_000,
            socket_request_max_bytes: 100 * 1024 * 1024,
            connections_max_idle_ms: 600_000,
            max_in_flight_requests_per_connection: 64,
            fetch_max_bytes: 55 * 1024 * 1024,
            queued_max_request_bytes: 512 * 1024 * 1024,
            request_read_timeout_ms: 60_000,
        }
    }
}

pub use sluice_coordinator::config::{GroupConfig, TransactionConfig};

/// A config that could not be loaded, always naming the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config file is not valid TOML.
    #[error("config file {path} is not valid TOML: {source}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's error; its message names line and column.
        #[source]
        source: toml::de::Error,
    },
    /// A `--set` argument is not `key=value`.
    #[error("override `{0}` is not of the form key=value")]
    Override(String),
    /// A key nobody knows, from an override.
    #[error("unknown config key `{key}`")]
    UnknownKey {
        /// The key as given.
        key: String,
    },
    /// A value has the wrong type or is out of range.
    #[error("invalid value for `{key}`: {message}")]
    Invalid {
        /// Full dotted key.
        key: String,
        /// What is wrong, with the value.
        message: String,
    },
}

/// Where a raw value came from, so errors can say so.
#[derive(Debug, Clone, Copy)]
pub enum Source {
    /// A `SLUICE_*` environment variable.
    Env,
    /// A command-line flag or `--set`.
    Flag,
}

/// Builds a [`Config`] from its layers.
#[derive(Debug, Default)]
pub struct ConfigLoader {
    table: toml::Table,
}

impl ConfigLoader {
    /// Starts from a TOML file's contents, or from nothing.
    pub fn from_file(path: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        let Some(path) = path else {
            return Ok(ConfigLoader::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let table = text
            .parse::<toml::Table>()
            .map_err(|source| ConfigError::Syntax {
                path: path.to_owned(),
                source,
            })?;
        Ok(ConfigLoader { table })
    }

    /// Applies every `SLUICE_<KEY>` variable from `vars` for the known keys.
    pub fn apply_env<I: IntoIterator<Item = (String, String)>>(
        &mut self,
        vars: I,
    ) -> Result<(), ConfigError> {
        for (name, value) in vars {
            let Some(rest) = name.strip_prefix("SLUICE_") else {
                continue;
            };
            let Some(key) = KNOWN_KEYS
                .iter()
                .find(|k| env_name(k) == format!("SLUICE_{rest}"))
            else {
                continue; // SLUICE_BIN, SLUICE_BOOTSTRAP and friends belong to other tools.
            };
            self.set(key, &value, Source::Env)?;
        }
        Ok(())
    }

    /// Sets one dotted key from a raw string (`--set key=value`, env, or a flag).
    pub fn set(&mut self, key: &str, raw: &str, _source: Source) -> Result<(), ConfigError> {
        if !KNOWN_KEYS.contains(&key) {
            return Err(ConfigError::UnknownKey {
                key: key.to_owned(),
            });
        }
        let value = parse_raw_value(raw);
        let mut table = &mut self.table;
        let mut parts = key.split('.').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                table.insert(part.to_owned(), value);
                break;
            }
            let entry = table
                .entry(part.to_owned())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(t) => table = t,
                _ => {
                    return Err(ConfigError::Invalid {
                        key: part.to_owned(),
                        message: "expected a table".to_owned(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Applies a `key=value` override.
    pub fn apply_override(&mut self, spec: &str) -> Result<(), ConfigError> {
        let (key, value) = spec
            .split_once('=')
            .ok_or_else(|| ConfigError::Override(spec.to_owned()))?;
        self.set(key.trim(), value.trim(), Source::Flag)
    }

    /// Deserializes and validates the layered table.
    pub fn build(self) -> Result<Config, ConfigError> {
        let value = toml::Value::Table(self.table);
        let config: Config = serde_path_to_error::deserialize(value).map_err(|e| {
            let key = e.path().to_string();
            ConfigError::Invalid {
                key,
                message: e.into_inner().to_string(),
            }
        })?;
        config.validate()?;
        Ok(config)
    }
}

/// The environment variable for a dotted key.
pub fn env_name(key: &str) -> String {
    format!("SLUICE_{}", key.replace('.', "_").to_uppercase())
}

/// Reads a raw override as a TOML value when it parses as one (numbers,
/// booleans, quoted strings), and as a bare string otherwise.
fn parse_raw_value(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match doc.parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.to_owned())),
        Err(_) => toml::Value::String(raw.to_owned()),
    }
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        message: message.into(),
    }
}

impl Config {
    /// The initial voters, if this node is part of a quorum.
    pub fn voters(&self) -> Result<Option<Vec<sluice_quorum::Voter>>, ConfigError> {
        self.cluster
            .voters
            .as_deref()
            .map(|v| {
                sluice_quorum::parse_voters(v).map_err(|e| invalid("cluster.voters", e.to_string()))
            })
            .transpose()
    }

    /// The controller address other nodes use: the advertised listener, or
    /// the listener itself.
    pub fn controller_advertised(&self) -> Option<&str> {
        self.controller_advertised_listener
            .as_deref()
            .or(self.controller_listener.as_deref())
    }

    fn validate_cluster(&self) -> Result<(), ConfigError> {
        let cluster = &self.cluster;
        if cluster.election_timeout_ms < 100 {
            return Err(invalid(
                "cluster.election_timeout_ms",
                format!("{} is below 100", cluster.election_timeout_ms),
            ));
        }
        if cluster.heartbeat_interval_ms < 10
            || cluster.heartbeat_interval_ms * 2 > cluster.election_timeout_ms
        {
            return Err(invalid(
                "cluster.heartbeat_interval_ms",
                format!(
                    "{} must be at least 10 and at most half of cluster.election_timeout_ms ({})",
                    cluster.heartbeat_interval_ms, cluster.election_timeout_ms
                ),
            ));
        }
        if cluster.snapshot_entries < 2 {
            return Err(invalid("cluster.snapshot_entries", "must be at least 2"));
        }
        let broker = &self.broker;
        if broker.heartbeat_interval_ms < 10 {
            return Err(invalid(
                "broker.heartbeat_interval_ms",
                "must be at least 10",
            ));
        }
        if broker.session_timeout_ms <= broker.heartbeat_interval_ms {
            return Err(invalid(
                "broker.session_timeout_ms",
                format!(
                    "{} must exceed broker.heartbeat_interval_ms ({})",
                    broker.session_timeout_ms, broker.heartbeat_interval_ms
                ),
            ));
        }
        let replica = &self.replica;
        if replica.lag_time_max_ms < 100 {
            return Err(invalid("replica.lag_time_max_ms", "must be at least 100"));
        }
        if replica.fetch_wait_max_ms >= replica.lag_time_max_ms {
            return Err(invalid(
                "replica.fetch_wait_max_ms",
                format!(
                    "{} must be below replica.lag_time_max_ms ({}), or idle followers leave the ISR",
                    replica.fetch_wait_max_ms, replica.lag_time_max_ms
                ),
            ));
        }
        if replica.fetch_max_bytes < 1024 || replica.fetch_response_max_bytes < 1024 {
            return Err(invalid(
                "replica.fetch_max_bytes",
                "replica.fetch_max_bytes and replica.fetch_response_max_bytes must be at least 1024",
            ));
        }
        if self.controller_security_protocol != SecurityProtocol::Plaintext {
            return Err(invalid(
                "controller_security_protocol",
                format!(
                    "{:?} is not supported yet; use PLAINTEXT",
                    self.controller_security_protocol
                ),
            ));
        }
        if let Some(l) = &self.controller_listener {
            parse_addr("controller_listener", l)?;
        }
        if let Some(adv) = &self.controller_advertised_listener {
            parse_host_port("controller_advertised_listener", adv)?;
        }
        let Some(voters) = self.voters()? else {
            if self.controller_listener.is_some() {
                return Err(invalid(
                    "controller_listener",
                    "is set but cluster.voters is not; a controller listener serves a quorum",
                ));
            }
            return Ok(());
        };
        let Some(advertised) = self.controller_advertised() else {
            return Err(invalid(
                "controller_listener",
                "is required when cluster.voters is set",
            ));
        };
        if let Some(me) = voters.iter().find(|v| v.id == self.node_id)
            && me.addr != advertised
        {
            return Err(invalid(
                "cluster.voters",
                format!(
                    "names node {} at {}, but this node's controller listener is advertised as {advertised}",
                    self.node_id, me.addr
                ),
            ));
        }
        Ok(())
    }

    /// Checks ranges and cross-field rules that types alone cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.node_id < 0 {
            return Err(invalid("node_id", format!("{} is negative", self.node_id)));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must not be empty"));
        }
        parse_addr("kafka_listener", &self.kafka_listener)?;
        parse_addr("http_listener", &self.http_listener)?;
        if let Some(adv) = &self.kafka_advertised_listener {
            parse_host_port("kafka_advertised_listener", adv)?;
        }
        if self.kafka_security_protocol != SecurityProtocol::Plaintext {
            return Err(invalid(
                "kafka_security_protocol",
                format!(
                    "{:?} is not supported yet; use PLAINTEXT",
                    self.kafka_security_protocol
                ),
            ));
        }
        let log = &self.log;
        // Kafka's lower bound: a segment must hold at least one batch header.
        if log.segment_bytes < 1024 {
            return Err(invalid(
                "log.segment_bytes",
                format!("{} is below 1024", log.segment_bytes),
            ));
        }
        if log.segment_ms < 1 {
            return Err(invalid(
                "log.segment_ms",
                format!("{} is below 1", log.segment_ms),
            ));
        }
        if log.retention_ms < -1 {
            return Err(invalid(
                "log.retention_ms",
                format!("{} is below -1", log.retention_ms),
            ));
        }
        if log.retention_bytes < -1 {
            return Err(invalid(
                "log.retention_bytes",
                format!("{} is below -1", log.retention_bytes),
            ));
        }
        // Kafka's lower bound for both: 0 (only "now" is accepted).
        if log.message_timestamp_before_max_ms < 0 {
            return Err(invalid(
                "log.message_timestamp_before_max_ms",
                format!("{} is below 0", log.message_timestamp_before_max_ms),
            ));
        }
        if log.message_timestamp_after_max_ms < 0 {
            return Err(invalid(
                "log.message_timestamp_after_max_ms",
                format!("{} is below 0", log.message_timestamp_after_max_ms),
            ));
        }
        if log.retention_check_interval_ms < 1 {
            return Err(invalid(
                "log.retention_check_interval_ms",
                "must be at least 1",
            ));
        }
        if log.message_max_bytes < 64 {
            return Err(invalid(
                "log.message_max_bytes",
                format!("{} is below 64", log.message_max_bytes),
            ));
        }
        if log.message_max_bytes > self.limits.socket_request_max_bytes {
            return Err(invalid(
                "log.message_max_bytes",
                format!(
                    "{} exceeds limits.socket_request_max_bytes ({})",
                    log.message_max_bytes, self.limits.socket_request_max_bytes
                ),
            ));
        }
        if log.max_open_files != 0 && log.max_open_files < MIN_MAX_OPEN_FILES {
            return Err(invalid(
                "log.max_open_files",
                format!(
                    "{} is below {MIN_MAX_OPEN_FILES} (0 derives it from RLIMIT_NOFILE)",
                    log.max_open_files
                ),
            ));
        }
        if log.flush_messages < 1 {
            return Err(invalid("log.flush_messages", "must be at least 1"));
        }
        if self.topics.num_partitions < 1 {
            return Err(invalid(
                "topics.num_partitions",
                format!("{} is below 1", self.topics.num_partitions),
            ));
        }
        if self.topics.default_replication_factor < 1 {
            return Err(invalid(
                "topics.default_replication_factor",
                format!("{} is below 1", self.topics.default_replication_factor),
            ));
        }
        if self.cluster.voters.is_none() && self.topics.default_replication_factor != 1 {
            return Err(invalid(
                "topics.default_replication_factor",
                "a single node (no cluster.voters) supports only 1",
            ));
        }
        self.validate_cluster()?;
        let limits = &self.limits;
        if limits.max_connections < 1 {
            return Err(invalid("limits.max_connections", "must be at least 1"));
        }
        if limits.socket_request_max_bytes < 1024 {
            return Err(invalid(
                "limits.socket_request_max_bytes",
                "must be at least 1024",
            ));
        }
        if limits.max_in_flight_requests_per_connection < 1 {
            return Err(invalid(
                "limits.max_in_flight_requests_per_connection",
                "must be at least 1",
            ));
        }
        // Kafka's lower bound for fetch.max.bytes.
        if limits.fetch_max_bytes < 1024 {
            return Err(invalid(
                "limits.fetch_max_bytes",
                format!("{} is below 1024", limits.fetch_max_bytes),
            ));
        }
        if limits.queued_max_request_bytes < u64::from(limits.socket_request_max_bytes) {
            return Err(invalid(
                "limits.queued_max_request_bytes",
                format!(
                    "{} is below limits.socket_request_max_bytes ({}): a frame of the largest allowed size could never be read",
                    limits.queued_max_request_bytes, limits.socket_request_max_bytes
                ),
            ));
        }
        if limits.request_read_timeout_ms < 1 {
            return Err(invalid(
                "limits.request_read_timeout_ms",
                format!("{} is below 1", limits.request_read_timeout_ms),
            ));
        }
        // The budget is a tokio semaphore, whose permit count has a ceiling.
        if limits.queued_max_request_bytes > MAX_QUEUED_REQUEST_BYTES {
            return Err(invalid(
                "limits.queued_max_request_bytes",
                format!(
                    "{} exceeds {MAX_QUEUED_REQUEST_BYTES}",
                    limits.queued_max_request_bytes
                ),
            ));
        }
        if self.transactions.max_timeout_ms < 1 {
            return Err(invalid(
                "transactions.max_timeout_ms",
                format!("{} is below 1", self.transactions.max_timeout_ms),
            ));
        }
        // Kafka's minimum for both; the live brokers cap them at creation.
        if self.transactions.state_log_replication_factor < 1 {
            return Err(invalid(
                "transactions.state_log_replication_factor",
                format!(
                    "{} is below 1",
                    self.transactions.state_log_replication_factor
                ),
            ));
        }
        let groups = &self.groups;
        if groups.offsets_topic_replication_factor < 1 {
            return Err(invalid(
                "groups.offsets_topic_replication_factor",
                format!("{} is below 1", groups.offsets_topic_replication_factor),
            ));
        }
        if !(1..=sluice_metadata::controller::MAX_PARTITIONS_PER_TOPIC)
            .contains(&groups.offsets_topic_num_partitions)
        {
            return Err(invalid(
                "groups.offsets_topic_num_partitions",
                format!(
                    "{} is not between 1 and 10000",
                    groups.offsets_topic_num_partitions
                ),
            ));
        }
        if groups.offsets_retention_minutes < 1 {
            return Err(invalid(
                "groups.offsets_retention_minutes",
                "must be at least 1",
            ));
        }
        if let Some(ms) = groups.offsets_retention_ms
            && ms < 1
        {
            return Err(invalid(
                "groups.offsets_retention_ms",
                format!("{ms} must be at least 1"),
            ));
        }
        if groups.offsets_retention_check_interval_ms < 1 {
            return Err(invalid(
                "groups.offsets_retention_check_interval_ms",
                "must be at least 1",
            ));
        }
        if groups.group_min_session_timeout_ms < 1
            || groups.group_min_session_timeout_ms > groups.group_max_session_timeout_ms
        {
            return Err(invalid(
                "groups.group_min_session_timeout_ms",
                format!(
                    "{} must be positive and at most groups.group_max_session_timeout_ms ({})",
                    groups.group_min_session_timeout_ms, groups.group_max_session_timeout_ms
                ),
            ));
        }
        if groups.offset_metadata_max_bytes as usize
            > sluice_coordinator::group::offsets_log::MAX_OFFSET_METADATA_BYTES
        {
            // The metadata is a STRING (INT16 length) in Kafka's
            // OffsetCommitValue record, so longer metadata could not be stored.
            return Err(invalid(
                "groups.offset_metadata_max_bytes",
                format!(
                    "{} exceeds {}, the longest string __consumer_offsets records can hold",
                    groups.offset_metadata_max_bytes,
                    sluice_coordinator::group::offsets_log::MAX_OFFSET_METADATA_BYTES
                ),
            ));
        }
        if groups.consumer_session_timeout_ms < 1 || groups.consumer_heartbeat_interval_ms < 1 {
            return Err(invalid(
                "groups.consumer_session_timeout_ms",
                "consumer session timeout and heartbeat interval must be positive",
            ));
        }
        Ok(())
    }

    /// The Kafka listener address (validated at load).
    pub fn kafka_addr(&self) -> Result<SocketAddr, ConfigError> {
        parse_addr("kafka_listener", &self.kafka_listener)
    }

    /// The HTTP listener address (validated at load).
    pub fn http_addr(&self) -> Result<SocketAddr, ConfigError> {
        parse_addr("http_listener", &self.http_listener)
    }
}

fn parse_addr(key: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value
        .parse()
        .map_err(|_| invalid(key, format!("`{value}` is not an ip:port address")))
}

/// Parses `host:port` where host may be a name.
pub fn parse_host_port(key: &str, value: &str) -> Result<(String, u16), ConfigError> {
    let (host, port) = value
        .rsplit_once(':')
        .ok_or_else(|| invalid(key, format!("`{value}` is not host:port")))?;
    let port = port
        .parse::<u16>()
        .map_err(|_| invalid(key, format!("`{value}` has a bad port")))?;
    if host.is_empty() {
        return Err(invalid(key, format!("`{value}` has no host")));
    }
    Ok((host.trim_matches(['[', ']']).to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_kafka() {
        let c = ConfigLoader::default().build().expect("defaults");
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.kafka_listener, "127.0.0.1:9092");
        assert_eq!(c.http_listener, "127.0.0.1:8080");
        assert_eq!(c.log.segment_bytes, 1 << 30);
        assert_eq!(c.log.index_interval_bytes, 4096);
        assert_eq!(c.limits.socket_request_max_bytes, 104_857_600);
        assert_eq!(c.log.flush_mode, FlushMode::GroupCommit);
        assert_eq!(c.log.message_timestamp_before_max_ms, i64::MAX);
        assert_eq!(c.log.message_timestamp_after_max_ms, 3_600_000);
        assert_eq!(c.limits.fetch_max_bytes, 57_671_680);
        assert_eq!(c.transactions.max_timeout_ms, 900_000);
    }

    #[test]
    fn request_budget_below_the_largest_frame_is_refused() {
        let mut loader = ConfigLoader::default();
        loader
            .apply_override("limits.queued_max_request_bytes=1048576")
            .expect("set");
        let err = loader.build().expect_err("must fail").to_string();
        assert!(err.contains("limits.queued_max_request_bytes"), "{err}");
        assert!(err.contains("limits.socket_request_max_bytes"), "{err}");
        let mut loader = ConfigLoader::default();
        loader
            .apply_override("limits.socket_request_max_bytes=2097152")
            .expect("set");
        loader
            .apply_override("limits.queued_max_request_bytes=2097152")
            .expect("set");
        loader.build().expect("equal to the largest frame is fine");
    }

    #[test]
    fn tiny_fetch_cap_and_nonpositive_transaction_timeout_are_refused() {
        for (key, value) in [
            ("limits.fetch_max_bytes", "100"),
            ("transactions.max_timeout_ms", "0"),
        ] {
            let mut loader = ConfigLoader::default();
            loader
                .apply_override(&format!("{key}={value}"))
                .expect("set");
            let err = loader.build().expect_err(key).to_string();
            assert!(err.contains(key), "{err}");
        }
    }

    #[test]
    fn every_known_key_deserializes() {
        // A key listed but missing from the structs would fail deny_unknown_fields.
        for key in KNOWN_KEYS {
            let mut loader = ConfigLoader::default();
            let raw = match *key {
                "data_dir" => "\"/tmp/x\"",
                "kafka_listener" | "http_listener" => "\"127.0.0.1:1\"",
                "kafka_advertised_listener" => "\"localhost:1\"",
                "kafka_security_protocol" => "\"PLAINTEXT\"",
                "log.message_timestamp_type" => "\"LogAppendTime\"",
                "log.flush_mode" => "\"interval\"",
                "topics.auto_create" => "false",
                "topics.default_replication_factor" => "1",
                "groups.group_max_session_timeout_ms" => "1800000",
                // Must stay above the default log.message_max_bytes.
                "limits.socket_request_max_bytes" => "2097152",
                // Must stay at or above the default socket_request_max_bytes.
                "limits.queued_max_request_bytes" => "1073741824",
                "controller_listener" => "\"127.0.0.1:9093\"",
                "controller_advertised_listener" => "\"localhost:9093\"",
                "controller_security_protocol" => "\"PLAINTEXT\"",
                "cluster.voters" => "\"1@localhost:9093\"",
                "cluster.heartbeat_interval_ms" => "100",
                "broker.rack" => "\"rack-a\"",
                "broker.heartbeat_interval_ms" => "1000",
                _ => "8000",
            };
            // The controller keys only make sense in a quorum, and a quorum
            // needs both a voter list and a controller listener.
            if key.starts_with("controller") || key.starts_with("cluster.") {
                loader
                    .set("cluster.voters", "\"1@localhost:9093\"", Source::Flag)
                    .expect("voters");
                loader
                    .set("controller_listener", "\"127.0.0.1:9093\"", Source::Flag)
                    .expect("listener");
                loader
                    .set(
                        "controller_advertised_listener",
                        "\"localhost:9093\"",
                        Source::Flag,
                    )
                    .expect("advertised");
            }
            loader.set(key, raw, Source::Flag).expect("known key");
            loader.build().unwrap_or_else(|e| panic!("{key}: {e}"));
        }
    }

    #[test]
    fn cluster_keys_are_checked_together() {
        let build = |pairs: &[(&str, &str)]| {
            let mut loader = ConfigLoader::default();
            for (k, v) in pairs {
                loader.set(k, v, Source::Env).expect("known key");
            }
            loader.build()
        };
        let err = |pairs: &[(&str, &str)]| match build(pairs) {
            Err(ConfigError::Invalid { key, message }) => (key, message),
            other => panic!("expected an invalid key for {pairs:?}, got {other:?}"),
        };
        let voters = ("cluster.voters", "1@127.0.0.1:9093,2@127.0.0.1:9094");
        let listener = ("controller_listener", "127.0.0.1:9093");
        let ok = build(&[voters, listener]).expect("a voter with its listener");
        assert_eq!(ok.voters().expect("voters").map(|v| v.len()), Some(2));
        assert_eq!(ok.controller_advertised(), Some("127.0.0.1:9093"));
        assert_eq!(err(&[voters]).0, "controller_listener");
        assert_eq!(err(&[listener]).0, "controller_listener");
        assert_eq!(
            err(&[("cluster.voters", "1@a"), listener]).0,
            "cluster.voters"
        );
        // This node's entry must be where its controller listener is.
        let (key, message) = err(&[voters, ("controller_listener", "127.0.0.1:9999")]);
        assert_eq!(key, "cluster.voters");
        assert!(message.contains("127.0.0.1:9999"), "{message}");
        // A node not among the voters joins as a broker: any listener will do.
        build(&[
            voters,
            ("node_id", "7"),
            ("controller_listener", "127.0.0.1:9999"),
        ])
        .expect("a learner");
        assert_eq!(
            err(&[voters, listener, ("cluster.heartbeat_interval_ms", "600")]).0,
            "cluster.heartbeat_interval_ms"
        );
        assert_eq!(
            err(&[voters, listener, ("broker.session_timeout_ms", "500")]).0,
            "broker.session_timeout_ms"
        );
        assert_eq!(
            err(&[voters, listener, ("replica.fetch_wait_max_ms", "30000")]).0,
            "replica.fetch_wait_max_ms"
        );
        assert_eq!(
            err(&[("topics.default_replication_factor", "3")]).0,
            "topics.default_replication_factor"
        );
        build(&[voters, listener, ("topics.default_replication_factor", "3")])
            .expect("replication in a cluster");
    }

    #[test]
    fn internal_topic_replication_factors_default_to_kafkas_3_and_must_be_positive() {
        let c = ConfigLoader::default().build().expect("defaults");
        assert_eq!(c.groups.offsets_topic_replication_factor, 3);
        assert_eq!(c.transactions.state_log_replication_factor, 3);
        for key in [
            "groups.offsets_topic_replication_factor",
            "transactions.state_log_replication_factor",
        ] {
            let mut loader = ConfigLoader::default();
            loader.set(key, "0", Source::Env).expect("known key");
            match loader.build() {
                Err(ConfigError::Invalid { key: named, .. }) => assert_eq!(named, key),
                other => panic!("{key} = 0: {other:?}"),
            }
            let mut loader = ConfigLoader::default();
            loader.set(key, "2", Source::Env).expect("known key");
            loader.build().unwrap_or_else(|e| panic!("{key} = 2: {e}"));
        }
    }

    #[test]
    fn layers_apply_in_order_file_env_flag() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("sluice.toml");
        std::fs::write(&file, "node_id = 3\n[log]\nsegment_bytes = 2048\n").expect("write");
        let mut loader = ConfigLoader::from_file(Some(&file)).expect("load");
        loader
            .apply_env([
                ("SLUICE_NODE_ID".to_owned(), "4".to_owned()),
                ("SLUICE_DATA_DIR".to_owned(), "/srv/sluice".to_owned()),
                ("SLUICE_BIN".to_owned(), "ignored".to_owned()),
            ])
            .expect("env");
        loader.apply_override("node_id=5").expect("flag");
        let c = loader.build().expect("valid");
        assert_eq!(c.node_id, 5);
        assert_eq!(c.data_dir, PathBuf::from("/srv/sluice"));
        assert_eq!(c.log.segment_bytes, 2048);
    }

    #[test]
    fn bad_value_names_the_full_key() {
        let mut loader = ConfigLoader::default();
        loader
            .apply_override("log.segment_bytes=banana")
            .expect("set");
        let err = loader.build().expect_err("must fail").to_string();
        assert!(err.contains("log.segment_bytes"), "{err}");
        assert!(err.contains("banana"), "{err}");
    }

    #[test]
    fn out_of_range_value_names_the_key() {
        let mut loader = ConfigLoader::default();
        loader
            .apply_env([("SLUICE_KAFKA_LISTENER".to_owned(), "nowhere".to_owned())])
            .expect("env");
        let err = loader.build().expect_err("must fail").to_string();
        assert!(
            err.contains("kafka_listener") && err.contains("nowhere"),
            "{err}"
        );
    }

    #[test]
    fn offset_metadata_max_bytes_is_bounded_by_the_record_format() {
        let mut loader = ConfigLoader::default();
        loader
            .apply_override("groups.offset_metadata_max_bytes=32767")
            .expect("set");
        loader.build().expect("the longest STRING is allowed");
        let mut loader = ConfigLoader::default();
        loader
            .apply_override("groups.offset_metadata_max_bytes=32768")
            .expect("set");
        let err = loader
            .build()
            .expect_err("longer than a STRING can hold")
            .to_string();
        assert!(err.contains("groups.offset_metadata_max_bytes"), "{err}");
    }

    #[test]
    fn max_open_files_is_zero_or_at_least_the_minimum() {
        let mut loader = ConfigLoader::default();
        loader.apply_override("log.max_open_files=3").expect("set");
        let err = loader.build().expect_err("must fail").to_string();
        assert!(
            err.contains("log.max_open_files") && err.contains('3'),
            "{err}"
        );
        let mut loader = ConfigLoader::default();
        loader.apply_override("log.max_open_files=0").expect("set");
        assert_eq!(loader.build().expect("0 derives").log.max_open_files, 0);
    }

    #[test]
    fn the_derived_file_cache_bound_is_half_the_descriptor_limit() {
        assert_eq!(derive_max_open_files(1_048_576), 524_288);
        assert_eq!(derive_max_open_files(1024), 512);
        assert_eq!(derive_max_open_files(4), MIN_MAX_OPEN_FILES);
    }

    #[test]
    fn offsets_retention_ms_overrides_minutes() {
        let c = ConfigLoader::default().build().expect("defaults");
        assert_eq!(c.groups.offsets_retention_ms(), 7 * 24 * 3_600_000);
        let mut loader = ConfigLoader::default();
        loader
            .apply_override("groups.offsets_retention_ms=1500")
            .expect("set");
        let c = loader.build().expect("valid");
        assert_eq!(c.groups.offsets_retention_ms(), 1500);
        let mut loader = ConfigLoader::default();
        loader
            .apply_override("groups.offsets_retention_ms=0")
            .expect("set");
        let err = loader.build().expect_err("zero refused").to_string();
        assert!(err.contains("groups.offsets_retention_ms"), "{err}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("sluice.toml");
        std::fs::write(&file, "[log]\nsegment_bytez = 1\n").expect("write");
        let err = ConfigLoader::from_file(Some(&file))
            .expect("load")
            .build()
            .expect_err("fail");
        assert!(err.to_string().contains("segment_bytez"), "{err}");
        assert!(matches!(
            ConfigLoader::default().apply_override("nope=1"),
            Err(ConfigError::UnknownKey { .. })
        ));
    }
}
