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
    "schema_registry_listener",
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
    "balancer.enabled",
    "balancer.interval_ms",
    "balancer.max_moves_in_flight",
    "balancer.imbalance_percent",
    "balancer.lost_broker_timeout_ms",
    "balancer.disk_high_watermark_percent",
    "replica.lag_time_max_ms",
    "replica.fetch_wait_max_ms",
    "replica.fetch_max_bytes",
    "replica.fetch_response_max_bytes",
    "replica.fetch_backoff_ms",
    "leader.auto_rebalance_enable",
    "leader.imbalance_per_broker_percentage",
    "leader.imbalance_check_interval_seconds",
    "super_users",
    "authorizer.enabled",
    "authorizer.allow_everyone_if_no_acl_found",
    "log.segment_bytes",
    "log.segment_ms",
    "log.retention_ms",
    "log.retention_bytes",
    "log.retention_check_interval_ms",
    "log.cleaner_enable",
    "log.cleaner_backoff_ms",
    "log.cleaner_dedupe_buffer_bytes",
    "log.cleaner_io_max_bytes_per_second",
    "log.cleanup_policy",
    "log.cleaner_delete_retention_ms",
    "log.cleaner_min_cleanable_ratio",
    "log.cleaner_min_compaction_lag_ms",
    "log.cleaner_max_compaction_lag_ms",
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
    "listeners",
    "advertised_listeners",
    "listener_security_protocol_map",
    "inter_broker_listener_name",
    "http_tls",
    "tls.cert_file",
    "tls.key_file",
    "tls.client_ca_file",
    "tls.ca_file",
    "tls.client_auth",
    "tls.principal_mapping_rules",
    "tls.reload_interval_ms",
    "sasl.enabled_mechanisms",
    "sasl.connections_max_reauth_ms",
    "sasl.failed_authentication_delay_ms",
    "sasl.handshake_timeout_ms",
    "sasl.oauthbearer.jwks_file",
    "sasl.oauthbearer.allow_unsecured",
    "sasl.oauthbearer.expected_audience",
    "sasl.oauthbearer.expected_issuer",
    "sasl.oauthbearer.sub_claim_name",
    "sasl.oauthbearer.clock_skew_s",
    "http_auth.enabled",
    "http_auth.token_max_lifetime_ms",
    "http_auth.realm",
    "encryption.enabled",
    "encryption.key_file",
    "encryption.keys",
    "encryption.active_key_id",
    "quota.window_num",
    "quota.window_size_ms",
    "kv.index_max_bytes",
];

/// Smallest `log.cleaner_dedupe_buffer_bytes`: 1 MiB holds about 16,000
/// keys, room for the keys of any one batch the cleaner must map whole.
pub const MIN_DEDUPE_BUFFER_BYTES: u64 = 1024 * 1024;
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
    /// `host:port` of the schema registry's REST API (Confluent's, at the
    /// root of its own listener, so serializers given this URL work
    /// unchanged); empty turns the registry's listener off. Default
    /// `127.0.0.1:8081`, Confluent's port.
    pub schema_registry_listener: String,
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
    /// Security protocol of the controller listener: PLAINTEXT, or SSL
    /// with client certificates required on both ends (mutual TLS).
    pub controller_security_protocol: SecurityProtocol,
    /// The metadata quorum.
    pub cluster: ClusterConfig,
    /// This node as a broker of the cluster.
    pub broker: BrokerConfig,
    /// Partition replication.
    pub replica: ReplicaConfig,
    /// Automatic partition balancing (a cluster only).
    pub balancer: BalancerSection,
    /// Automatic preferred-leader balancing.
    pub leader: LeaderBalanceConfig,
    /// Kafka's `listeners`: `NAME://host:port` for every Kafka listener
    /// (a list, or one comma-separated string). Unset: one listener from
    /// `kafka_listener` and `kafka_security_protocol`, named after its
    /// protocol. See [`Config::listeners`].
    pub listeners: Option<StringList>,
    /// Kafka's `advertised.listeners`: `NAME://host:port` per listener
    /// clients should be told about; a listener not named here advertises
    /// its bound address.
    pub advertised_listeners: Option<StringList>,
    /// Kafka's `listener.security.protocol.map`: `NAME:PROTOCOL` pairs.
    /// Listeners named PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL map to
    /// that protocol without an entry.
    pub listener_security_protocol_map: Option<StringList>,
    /// Kafka's `inter.broker.listener.name`: the listener other brokers
    /// connect to (replication, transaction markers); its advertised
    /// endpoint is the one registered as the broker's host and port.
    /// Defaults to the first listener.
    pub inter_broker_listener_name: Option<String>,
    /// Serve the HTTP API and console over TLS with the `[tls]`
    /// certificate (client certificates are not asked for there).
    pub http_tls: bool,
    /// TLS certificates and client authentication for SSL and SASL_SSL
    /// listeners (Kafka's `ssl.*`).
    pub tls: TlsSection,
    /// SASL authentication on SASL_* listeners, and the users written at
    /// start-up.
    pub sasl: SaslConfig,
    /// Kafka's `super.users`: principals (`User:admin`) every ACL check
    /// lets through.
    pub super_users: Vec<String>,
    /// ACL authorization (Kafka's `authorizer.class.name` and its settings).
    pub authorizer: AuthorizerConfig,
    /// Authentication of the HTTP API and console (`http_auth.*`).
    pub http_auth: HttpAuthConfig,
    /// Encryption at rest of partition logs and the metadata log.
    pub encryption: EncryptionSection,
    /// Client quota metering (`quota.*`).
    pub quota: QuotaConfig,
    /// The key-value view of compacted topics (`kv.*`).
    pub kv: KvConfig,
}

/// Authentication of the HTTP API and console (`http_auth.*`): HTTP basic
/// against the SCRAM users and bearer tokens, checked against the ACLs.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpAuthConfig {
    /// Off (the default) keeps the HTTP API open to anyone who reaches the
    /// listener, as before the security issue.
    pub enabled: bool,
    /// Longest lifetime a bearer token can ask for; longer requests are cut
    /// to it (Kafka's `delegation.token.max.lifetime.ms`, default 7 days).
    pub token_max_lifetime_ms: u64,
    /// The realm named in `WWW-Authenticate: Basic realm="..."`.
    pub realm: String,
}

/// Kafka's `delegation.token.max.lifetime.ms` default: 7 days.
pub const DEFAULT_TOKEN_MAX_LIFETIME_MS: u64 = 7 * 24 * 60 * 60 * 1000;

/// Bounds on `http_auth.token_max_lifetime_ms`: at least a minute (a token
/// must outlive the request that made it), at most a year (a leaked token
/// must die some day without an admin).
const TOKEN_MAX_LIFETIME_RANGE_MS: std::ops::RangeInclusive<u64> =
    60_000..=365 * 24 * 60 * 60 * 1000;

/// Longest `http_auth.realm`: it is echoed in every 401.
const MAX_REALM_LEN: usize = 128;

impl Default for HttpAuthConfig {
    fn default() -> Self {
        HttpAuthConfig {
            enabled: false,
            token_max_lifetime_ms: DEFAULT_TOKEN_MAX_LIFETIME_MS,
            realm: "sluice".to_owned(),
        }
    }
}

/// ACL authorization (`authorizer.*`). Off by default, as Kafka is without
/// `authorizer.class.name`: every request is then allowed and the ACL APIs
/// answer SECURITY_DISABLED.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthorizerConfig {
    /// Check every request against the ACLs.
    pub enabled: bool,
    /// Kafka's `allow.everyone.if.no.acl.found`: a resource no ACL applies
    /// to is open to everyone (false: only super users).
    pub allow_everyone_if_no_acl_found: bool,
}

/// A list of strings, written as a TOML array or as one comma-separated
/// string (as Kafka writes its list configs and `--set` passes them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringList(pub Vec<String>);

impl<'de> Deserialize<'de> for StringList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        let items = match Raw::deserialize(d)? {
            Raw::One(s) => s.split(',').map(str::to_owned).collect(),
            Raw::Many(v) => v,
        };
        Ok(StringList(
            items
                .into_iter()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
        ))
    }
}

/// Kafka's `ssl.client.auth`: whether an SSL listener asks clients for a
/// certificate.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// A client must present a certificate signed by `tls.client_ca_file`.
    Required,
    /// A client may present one; without it the principal is anonymous.
    Requested,
    /// Client certificates are not asked for.
    None,
}

/// Default of `tls.reload_interval_ms`: certificate files are checked for
/// changes this often. Rotations are rare; ten seconds keeps a rotated
/// certificate from waiting long while costing a few `stat` calls.
pub const DEFAULT_TLS_RELOAD_INTERVAL_MS: u64 = 10_000;

/// TLS for SSL and SASL_SSL listeners (`[tls]`), Kafka's `ssl.*` broker
/// settings with PEM files.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSection {
    /// PEM certificate chain the broker presents, leaf first. Required when
    /// a listener is SSL or SASL_SSL, or with `http_tls`.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file` (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
    /// PEM CA certificates client certificates must chain to; setting it
    /// enables mutual TLS (Kafka's `ssl.truststore.*` on the broker).
    pub client_ca_file: Option<PathBuf>,
    /// PEM CA certificates this broker trusts when it connects to other
    /// brokers over an SSL inter-broker listener; defaults to
    /// `client_ca_file`.
    pub ca_file: Option<PathBuf>,
    /// Kafka's `ssl.client.auth`; defaults to `required` when
    /// `client_ca_file` is set and `none` otherwise.
    pub client_auth: Option<ClientAuth>,
    /// Kafka's `ssl.principal.mapping.rules`: how a client certificate's
    /// subject (RFC 2253) becomes the principal name.
    pub principal_mapping_rules: String,
    /// How often the certificate, key and CA files are checked for changes
    /// (reloaded without a restart); 0 turns reloading off.
    pub reload_interval_ms: u64,
}

impl Default for TlsSection {
    fn default() -> Self {
        TlsSection {
            cert_file: None,
            key_file: None,
            client_ca_file: None,
            ca_file: None,
            client_auth: None,
            principal_mapping_rules: "DEFAULT".to_owned(),
            reload_interval_ms: DEFAULT_TLS_RELOAD_INTERVAL_MS,
        }
    }
}

/// SASL mechanisms this broker can serve, by their SASL names.
pub const SASL_MECHANISMS: &[&str] = &["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN", "OAUTHBEARER"];

/// The mechanisms enabled by default: those backed by the SCRAM user
/// store. OAUTHBEARER needs `[sasl.oauthbearer]` keys, so it is opt-in.
pub const DEFAULT_SASL_MECHANISMS: &[&str] = &["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"];

/// Largest `sasl.oauthbearer.clock_skew_s`: an hour already accepts
/// tokens long expired by any issuer's reckoning.
pub const MAX_OAUTHBEARER_CLOCK_SKEW_S: u64 = 3600;

/// SASL authentication (`sasl.*`), used by listeners whose security
/// protocol is SASL_PLAINTEXT or SASL_SSL.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SaslConfig {
    /// Kafka's `sasl.enabled.mechanisms`, answered to SaslHandshake in this
    /// order. Kafka's default is GSSAPI, which Sluice does not have; ours
    /// is every mechanism backed by the SCRAM user store.
    pub enabled_mechanisms: Vec<String>,
    /// Kafka's `connections.max.reauth.ms` (KIP-368): when above 0, a
    /// session lasts this long; the client must re-authenticate before
    /// then or its next request closes the connection. 0 turns it off.
    pub connections_max_reauth_ms: u64,
    /// Kafka's `connection.failed.authentication.delay.ms`: a failed
    /// authentication's answer (and the close after it) waits this long,
    /// which slows password guessing on one connection.
    pub failed_authentication_delay_ms: u64,
    /// A connection must complete authentication within this long of
    /// being accepted, or it is closed. Kafka has no such bound (only
    /// `connections.max.idle.ms`); without one, unauthenticated clients
    /// could hold connection slots for ten minutes each.
    pub handshake_timeout_ms: u64,
    /// SCRAM users written at start-up when they have no credential for
    /// their mechanism yet (so a password changed through the API later
    /// is not reverted): the way to create the first admin user.
    pub bootstrap_users: Vec<BootstrapUser>,
    /// How OAUTHBEARER tokens are validated (`[sasl.oauthbearer]`).
    pub oauthbearer: OAuthBearerConfig,
}

/// `[sasl.oauthbearer]`: validation of OAUTHBEARER JWTs (Kafka's
/// `sasl.oauthbearer.*` broker settings, with a static JWKS file in place
/// of `sasl.oauthbearer.jwks.endpoint.url`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OAuthBearerConfig {
    /// A JSON Web Key Set (RFC 7517) whose RSA and EC keys verify signed
    /// tokens; read at start-up.
    pub jwks_file: Option<PathBuf>,
    /// Accept unsecured tokens (`alg: none`), as Kafka's default
    /// `OAuthBearerUnsecuredValidatorCallbackHandler` does: anyone can
    /// then claim any principal, so only for tests and development.
    pub allow_unsecured: bool,
    /// Kafka's `sasl.oauthbearer.expected.audience`: if not empty, a
    /// token's `aud` must name one of these.
    pub expected_audience: Vec<String>,
    /// Kafka's `sasl.oauthbearer.expected.issuer`: if set, a token's `iss`
    /// must equal it.
    pub expected_issuer: Option<String>,
    /// Kafka's `sasl.oauthbearer.sub.claim.name`: the claim naming the
    /// principal (`User:<claim>`).
    pub sub_claim_name: String,
    /// Kafka's `sasl.oauthbearer.clock.skew.seconds`: allowed difference
    /// between the issuer's clock and ours when checking `exp`, `nbf` and
    /// `iat`.
    pub clock_skew_s: u64,
}

impl Default for OAuthBearerConfig {
    fn default() -> Self {
        OAuthBearerConfig {
            jwks_file: None,
            allow_unsecured: false,
            expected_audience: Vec::new(),
            expected_issuer: None,
            sub_claim_name: "sub".to_owned(),
            clock_skew_s: 30,
        }
    }
}

impl OAuthBearerConfig {
    /// The token validator, reading and parsing `jwks_file`.
    pub fn validator(&self) -> Result<sluice_auth::oauthbearer::Validator, ConfigError> {
        use sluice_auth::oauthbearer::{Jwks, MAX_JWKS_BYTES, Validator};
        let key = "sasl.oauthbearer.jwks_file";
        let jwks = match &self.jwks_file {
            None => Jwks::default(),
            Some(path) => {
                let bytes = read_bounded(path, MAX_JWKS_BYTES)
                    .map_err(|e| invalid(key, format!("cannot read {}: {e}", path.display())))?;
                Jwks::parse(&bytes).map_err(|e| invalid(key, format!("{}: {e}", path.display())))?
            }
        };
        Ok(Validator {
            jwks,
            allow_unsecured: self.allow_unsecured,
            expected_audience: self.expected_audience.clone(),
            expected_issuer: self.expected_issuer.clone(),
            sub_claim_name: self.sub_claim_name.clone(),
            clock_skew_s: self.clock_skew_s,
        })
    }

    fn validate(&self, enabled: bool) -> Result<(), ConfigError> {
        if self.sub_claim_name.is_empty() {
            return Err(invalid(
                "sasl.oauthbearer.sub_claim_name",
                "must not be empty",
            ));
        }
        if self.clock_skew_s > MAX_OAUTHBEARER_CLOCK_SKEW_S {
            return Err(invalid(
                "sasl.oauthbearer.clock_skew_s",
                format!(
                    "{} is above {MAX_OAUTHBEARER_CLOCK_SKEW_S}",
                    self.clock_skew_s
                ),
            ));
        }
        if self.expected_audience.iter().any(String::is_empty) {
            return Err(invalid(
                "sasl.oauthbearer.expected_audience",
                "an audience must not be empty",
            ));
        }
        if self.expected_issuer.as_deref() == Some("") {
            return Err(invalid(
                "sasl.oauthbearer.expected_issuer",
                "must not be empty",
            ));
        }
        if enabled && self.jwks_file.is_none() && !self.allow_unsecured {
            return Err(invalid(
                "sasl.oauthbearer.jwks_file",
                "OAUTHBEARER is enabled but no token could be accepted: set \
                 sasl.oauthbearer.jwks_file (or sasl.oauthbearer.allow_unsecured for tests)",
            ));
        }
        if enabled {
            // Read and parse the key set now, so a bad file stops the boot.
            self.validator()?;
        }
        Ok(())
    }
}

/// The first `max_bytes + 1` bytes of `path` at most, so a huge file is
/// detected without being read whole.
fn read_bounded(path: &std::path::Path, max_bytes: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(
            u64::try_from(max_bytes)
                .unwrap_or(u64::MAX)
                .saturating_add(1),
        )
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

impl Default for SaslConfig {
    fn default() -> Self {
        SaslConfig {
            enabled_mechanisms: DEFAULT_SASL_MECHANISMS
                .iter()
                .map(|m| (*m).to_owned())
                .collect(),
            connections_max_reauth_ms: 0,
            failed_authentication_delay_ms: 100,
            handshake_timeout_ms: 30_000,
            bootstrap_users: Vec::new(),
            oauthbearer: OAuthBearerConfig::default(),
        }
    }
}

impl TlsSection {
    /// The effective `ssl.client.auth`.
    pub fn client_auth(&self) -> ClientAuth {
        match (self.client_auth, &self.client_ca_file) {
            (Some(auth), _) => auth,
            (None, Some(_)) => ClientAuth::Required,
            (None, None) => ClientAuth::None,
        }
    }

    /// The CA file outgoing TLS connections trust.
    pub fn trust_file(&self) -> Option<&std::path::Path> {
        self.ca_file.as_deref().or(self.client_ca_file.as_deref())
    }
}

/// One Kafka listener, resolved from `listeners` (or the legacy
/// `kafka_listener`), the protocol map and `advertised_listeners`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    /// Its name, upper case (Kafka normalises listener names).
    pub name: String,
    /// The address it binds.
    pub bind: SocketAddr,
    /// Its `advertised_listeners` entry, if any; otherwise clients are told
    /// the bound address.
    pub advertised: Option<(String, u16)>,
    /// How connections to it are secured and authenticated.
    pub security_protocol: SecurityProtocol,
}

/// One `[[sasl.bootstrap_users]]` entry.
#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BootstrapUser {
    /// The user name.
    pub name: String,
    /// The password, inline. Exactly one of `password` and
    /// `password_file` is set.
    #[serde(default)]
    pub password: Option<String>,
    /// A file whose content (less one trailing newline) is the password.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// SCRAM-SHA-256 or SCRAM-SHA-512.
    #[serde(default = "default_bootstrap_mechanism")]
    pub mechanism: String,
    /// PBKDF2 iterations (Kafka's bounds, 4096..=16384).
    #[serde(default = "default_bootstrap_iterations")]
    pub iterations: i32,
}

impl std::fmt::Debug for BootstrapUser {
    // The password stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootstrapUser")
            .field("name", &self.name)
            .field("password_file", &self.password_file)
            .field("mechanism", &self.mechanism)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

fn default_bootstrap_mechanism() -> String {
    "SCRAM-SHA-512".to_owned()
}

fn default_bootstrap_iterations() -> i32 {
    sluice_auth::scram::MIN_ITERATIONS
}

impl BootstrapUser {
    /// The password, read from `password_file` if that is how it is given.
    pub fn read_password(&self) -> Result<String, ConfigError> {
        match (&self.password, &self.password_file) {
            (Some(p), None) => Ok(p.clone()),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    invalid(
                        "sasl.bootstrap_users.password_file",
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                let password = text.strip_suffix('\n').unwrap_or(&text);
                let password = password.strip_suffix('\r').unwrap_or(password);
                Ok(password.to_owned())
            }
            _ => Err(invalid(
                "sasl.bootstrap_users",
                format!(
                    "user {:?}: set exactly one of password and password_file",
                    self.name
                ),
            )),
        }
    }
}

impl SaslConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.enabled_mechanisms.is_empty() {
            return Err(invalid(
                "sasl.enabled_mechanisms",
                "must name at least one mechanism",
            ));
        }
        for m in &self.enabled_mechanisms {
            if !SASL_MECHANISMS.contains(&m.as_str()) {
                return Err(invalid(
                    "sasl.enabled_mechanisms",
                    format!("{m:?} is not one of {SASL_MECHANISMS:?}"),
                ));
            }
        }
        if self.handshake_timeout_ms < 1 {
            return Err(invalid("sasl.handshake_timeout_ms", "0 is below 1"));
        }
        self.oauthbearer
            .validate(self.enabled_mechanisms.iter().any(|m| m == "OAUTHBEARER"))?;
        // Kafka bounds the delay by the connection's idle time; a minute
        // is already far beyond any useful delay.
        if self.failed_authentication_delay_ms > 60_000 {
            return Err(invalid(
                "sasl.failed_authentication_delay_ms",
                format!("{} is above 60000", self.failed_authentication_delay_ms),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for user in &self.bootstrap_users {
            let key = "sasl.bootstrap_users";
            if user.name.is_empty() || user.name.len() > sluice_auth::MAX_USER_NAME_BYTES {
                return Err(invalid(
                    key,
                    format!(
                        "user name {:?} must be 1 to {} bytes",
                        user.name,
                        sluice_auth::MAX_USER_NAME_BYTES
                    ),
                ));
            }
            if sluice_auth::scram::Mechanism::from_name(&user.mechanism).is_none() {
                return Err(invalid(
                    key,
                    format!(
                        "user {:?}: mechanism {:?} is not SCRAM-SHA-256 or SCRAM-SHA-512",
                        user.name, user.mechanism
                    ),
                ));
            }
            let range = sluice_auth::scram::MIN_ITERATIONS..=sluice_auth::scram::MAX_ITERATIONS;
            if !range.contains(&user.iterations) {
                return Err(invalid(
                    key,
                    format!(
                        "user {:?}: iterations {} is outside {range:?}",
                        user.name, user.iterations
                    ),
                ));
            }
            if user.password.is_some() == user.password_file.is_some() {
                return Err(invalid(
                    key,
                    format!(
                        "user {:?}: set exactly one of password and password_file",
                        user.name
                    ),
                ));
            }
            if !seen.insert((user.name.as_str(), user.mechanism.as_str())) {
                return Err(invalid(
                    key,
                    format!(
                        "user {:?} is listed twice for {}",
                        user.name, user.mechanism
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl HttpAuthConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if !TOKEN_MAX_LIFETIME_RANGE_MS.contains(&self.token_max_lifetime_ms) {
            return Err(invalid(
                "http_auth.token_max_lifetime_ms",
                format!(
                    "{} is outside {}..={}",
                    self.token_max_lifetime_ms,
                    TOKEN_MAX_LIFETIME_RANGE_MS.start(),
                    TOKEN_MAX_LIFETIME_RANGE_MS.end()
                ),
            ));
        }
        // Printable ASCII without `"` or `\`: the realm is a quoted string
        // in a response header.
        let printable = |c: char| (c.is_ascii_graphic() && c != '"' && c != '\\') || c == ' ';
        if self.realm.is_empty()
            || self.realm.len() > MAX_REALM_LEN
            || !self.realm.chars().all(printable)
        {
            return Err(invalid(
                "http_auth.realm",
                format!(
                    "{:?} must be 1 to {MAX_REALM_LEN} printable ASCII characters without `\"` or `\\`",
                    self.realm
                ),
            ));
        }
        Ok(())
    }
}

/// Encryption at rest (`[encryption]`): AES-256-GCM envelopes around every
/// record batch written (docs/security.md, "Encryption at rest").
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EncryptionSection {
    /// Seal new batches; off by default, like Kafka (which has none).
    pub enabled: bool,
    /// A file of keys, one `<key id>:<64 hex digits>` per line (`#`
    /// comments). Should be readable by the broker's user only; a start
    /// with a group- or world-readable file logs a warning.
    pub key_file: Option<PathBuf>,
    /// Keys in the same format, `,`-separated; meant for the environment
    /// (`SLUICE_ENCRYPTION_KEYS`), never printed. Merged with `key_file`.
    pub keys: Option<SecretKeys>,
    /// The key id new data is written with; every configured key still reads.
    pub active_key_id: Option<u32>,
}

/// Key material from config: compared and cloned, never printed.
#[derive(Clone, Default, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct SecretKeys(String);

impl std::fmt::Debug for SecretKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKeys(<redacted>)")
    }
}

/// Most samples a client quota meter may keep: each metered entity holds up
/// to this many, so it bounds a meter's memory.
pub const MAX_QUOTA_WINDOW_NUM: u32 = 100;

/// Longest client quota sample: a throttle time is a multiple of the window
/// span, and a span of hours would mute clients for hours.
pub const MAX_QUOTA_WINDOW_SIZE_MS: u64 = 60_000;

/// How client quotas are metered (Kafka's `quota.window.num` and
/// `quota.window.size.seconds`): the rate is averaged over `window_num`
/// samples of `window_size_ms` each.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct QuotaConfig {
    /// Kafka's `quota.window.num`: samples kept. 1 to [`MAX_QUOTA_WINDOW_NUM`].
    pub window_num: u32,
    /// Kafka's `quota.window.size.seconds`, in ms: one sample's length.
    /// 1 to [`MAX_QUOTA_WINDOW_SIZE_MS`]; Kafka's floor is 1 s, Sluice
    /// allows less so tests can use short windows.
    pub window_size_ms: u64,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        QuotaConfig {
            window_num: 11,
            window_size_ms: 1_000,
        }
    }
}

/// Default `kv.index_max_bytes`: 64 MiB holds about 600,000 keys of
/// 16 bytes (112 bytes each with the index's overhead), enough for the
/// tables a console or a CLI browses.
pub const DEFAULT_KV_INDEX_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// Smallest `kv.index_max_bytes`: below a KiB not even a handful of keys
/// fit, which is a typo rather than a choice.
pub const MIN_KV_INDEX_MAX_BYTES: u64 = 1024;

/// The key-value view of compacted topics (`kv.*`): the HTTP API's
/// `/v1/topics/{topic}/keys` routes, served from an in-memory index of
/// each partition's latest record per key.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KvConfig {
    /// Most memory, in bytes, all key indexes together may account for
    /// (docs/design.md, "Key-value view"); least recently used partition
    /// indexes are dropped to stay under it. At least
    /// [`MIN_KV_INDEX_MAX_BYTES`].
    pub index_max_bytes: u64,
}

impl Default for KvConfig {
    fn default() -> Self {
        KvConfig {
            index_max_bytes: DEFAULT_KV_INDEX_MAX_BYTES,
        }
    }
}

/// Automatic partition balancing (`balancer.*`), run by the active
/// controller. Kafka has none built in (Cruise Control is separate); the
/// names and defaults follow Redpanda's continuous balancing where it has
/// one.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BalancerSection {
    /// The off switch: false stops every automatic move (decommissions,
    /// lost brokers and balancing); operator reassignments still run.
    pub enabled: bool,
    /// How often the active controller plans moves.
    pub interval_ms: u64,
    /// Partitions moving at once (the balancer's and operators' together):
    /// bounds the replication traffic moves add.
    pub max_moves_in_flight: u32,
    /// How far (percent of the mean, at least one) brokers' replica and
    /// preferred-leader counts may differ before replicas move.
    pub imbalance_percent: u32,
    /// A broker fenced this long is lost: its replicas are re-created on
    /// other brokers. Redpanda's default; long enough for a restart or a
    /// rolling upgrade not to move data.
    pub lost_broker_timeout_ms: u64,
    /// Disk use (percent of the data directory's file system) past which a
    /// broker takes no new replica and sheds replicas.
    pub disk_high_watermark_percent: u8,
}

impl Default for BalancerSection {
    fn default() -> Self {
        BalancerSection {
            enabled: true,
            interval_ms: 2_000,
            max_moves_in_flight: 8,
            imbalance_percent: 10,
            lost_broker_timeout_ms: 900_000,
            disk_high_watermark_percent: 80,
        }
    }
}

/// Longest `leader.imbalance_check_interval_seconds`: the check runs on a
/// timer whose deadline must stay representable; a week is far past any
/// useful period (Kafka's default is 5 minutes).
pub const MAX_LEADER_IMBALANCE_CHECK_INTERVAL_SECONDS: u64 = 7 * 24 * 3600;

/// Automatic preferred-leader balancing (`leader.*`), Kafka's
/// `auto.leader.rebalance.enable` and `leader.imbalance.*` settings: the
/// active controller periodically hands leadership back to each
/// partition's first replica where a broker leads too few of the
/// partitions it is preferred for.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LeaderBalanceConfig {
    /// Kafka's `auto.leader.rebalance.enable`.
    pub auto_rebalance_enable: bool,
    /// Kafka's `leader.imbalance.per.broker.percentage`: a broker whose
    /// share of preferred partitions led by others exceeds this gets them
    /// back. 0 to 100.
    pub imbalance_per_broker_percentage: u32,
    /// Kafka's `leader.imbalance.check.interval.seconds`: how often the
    /// active controller checks.
    pub imbalance_check_interval_seconds: u64,
}

impl Default for LeaderBalanceConfig {
    fn default() -> Self {
        LeaderBalanceConfig {
            auto_rebalance_enable: true,
            imbalance_per_broker_percentage: 10,
            imbalance_check_interval_seconds: 300,
        }
    }
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
            schema_registry_listener: "127.0.0.1:8081".to_owned(),
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
            balancer: BalancerSection::default(),
            leader: LeaderBalanceConfig::default(),
            listeners: None,
            advertised_listeners: None,
            listener_security_protocol_map: None,
            inter_broker_listener_name: None,
            http_tls: false,
            tls: TlsSection::default(),
            sasl: SaslConfig::default(),
            super_users: Vec::new(),
            authorizer: AuthorizerConfig::default(),
            http_auth: HttpAuthConfig::default(),
            encryption: EncryptionSection::default(),
            quota: QuotaConfig::default(),
            kv: KvConfig::default(),
        }
    }
}

/// A listener's security protocol, as Kafka names them.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SecurityProtocol {
    /// No TLS, no authentication.
    Plaintext,
    /// TLS; with a client certificate (mTLS) the principal comes from it.
    Ssl,
    /// SASL without TLS: clients authenticate before anything else.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// Every protocol, in Kafka's id order.
    pub const ALL: [SecurityProtocol; 4] = [
        SecurityProtocol::Plaintext,
        SecurityProtocol::Ssl,
        SecurityProtocol::SaslPlaintext,
        SecurityProtocol::SaslSsl,
    ];

    /// Kafka's name (`SASL_SSL`).
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// Kafka's id (`SecurityProtocol.id`), as registration records carry it.
    pub fn id(self) -> i16 {
        match self {
            SecurityProtocol::Plaintext => 0,
            SecurityProtocol::Ssl => 1,
            SecurityProtocol::SaslPlaintext => 2,
            SecurityProtocol::SaslSsl => 3,
        }
    }

    /// The protocol of Kafka id `id`.
    pub fn from_id(id: i16) -> Option<SecurityProtocol> {
        SecurityProtocol::ALL.into_iter().find(|p| p.id() == id)
    }

    /// The protocol named `name` (case-insensitive, as Kafka parses it).
    pub fn from_name(name: &str) -> Option<SecurityProtocol> {
        SecurityProtocol::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name))
    }

    /// True for SSL and SASL_SSL: connections start with a TLS handshake.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// True for SASL_PLAINTEXT and SASL_SSL: clients authenticate with SASL.
    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

impl std::fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
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
    #[error("unknown config key `{key}`{}", did_you_mean(key))]
    UnknownKey {
        /// The key as given.
        key: String,
    },
    /// A `SLUICE_*` environment variable that is neither a config key nor
    /// one of the variables other tools read ([`OTHER_SLUICE_VARS`]).
    #[error(
        "unknown environment variable {name}: no config key is named `{key}`{}",
        did_you_mean(key)
    )]
    UnknownEnv {
        /// The variable's name.
        name: String,
        /// The config key it would stand for.
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
                if OTHER_SLUICE_VARS.contains(&name.as_str()) {
                    continue;
                }
                // A misspelt variable would otherwise leave its setting at
                // the default without a word; unknown TOML keys and `--set`
                // keys are refused too.
                return Err(ConfigError::UnknownEnv {
                    key: env_key_guess(rest),
                    name,
                });
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
        // With `listeners` set, the legacy single-listener keys would be
        // silently ignored; Kafka has no such pair, so both is a mistake.
        if self.table.contains_key("listeners") {
            for legacy in [
                "kafka_listener",
                "kafka_advertised_listener",
                "kafka_security_protocol",
            ] {
                if self.table.contains_key(legacy) {
                    return Err(invalid(
                        legacy,
                        "cannot be set together with `listeners`; use `listeners`, `advertised_listeners` and `listener_security_protocol_map`",
                    ));
                }
            }
        }
        let value = toml::Value::Table(self.table);
        let config: Config = serde_path_to_error::deserialize(value).map_err(|e| {
            let key = e.path().to_string();
            ConfigError::Invalid {
                key,
                message: plain_type_error(&e.into_inner().to_string()),
            }
        })?;
        config.validate()?;
        Ok(config)
    }
}

/// `SLUICE_*` variables that are not config keys: the CLI's, the log
/// filter, and those of the test, bench and fault scripts. `sluice serve`
/// refuses any other `SLUICE_*` name; a new variable read anywhere must be
/// added here.
pub const OTHER_SLUICE_VARS: &[&str] = &[
    "SLUICE_LOG",
    "SLUICE_BOOTSTRAP",
    "SLUICE_PROFILE",
    "SLUICE_HTTP",
    "SLUICE_SCHEMA_REGISTRY",
    "SLUICE_CONTROLLER",
    "SLUICE_CHART_FONT",
    // Read when the binary is built (`sluice_build_info`'s commit label),
    // so it may still be set in the shell that then runs `sluice serve`.
    "SLUICE_COMMIT",
    "SLUICE_BIN",
    "SLUICE_UPGRADE_FROM_BIN",
    "SLUICE_BENCH_DIR",
    "SLUICE_FUZZ_SECONDS",
    "SLUICE_FAULT_KILLS",
    "SLUICE_FAULT_TIMEOUT_S",
];

/// The dotted key an unknown `SLUICE_<REST>` variable would stand for,
/// for the error message: lower case, and `_` after a known section name
/// read as the dot.
fn env_key_guess(rest: &str) -> String {
    let lower = rest.to_lowercase();
    KNOWN_KEYS
        .iter()
        .filter_map(|k| k.split_once('.').map(|(section, _)| section))
        .find_map(|section| {
            lower
                .strip_prefix(section)
                .and_then(|tail| tail.strip_prefix('_'))
                .map(|tail| format!("{section}.{tail}"))
        })
        .unwrap_or(lower)
}

/// `; did you mean `k` (SLUICE_K)?` for the known key closest to `key`, or
/// nothing when none is close.
fn did_you_mean(key: &str) -> String {
    // Up to a third of the characters wrong: a typo, not another key.
    let limit = (key.len() / 3).max(2);
    KNOWN_KEYS
        .iter()
        .map(|k| (edit_distance(key, k), k))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, k)| format!("; did you mean `{k}` ({})?", env_name(k)))
        .unwrap_or_default()
}

/// Levenshtein distance between two short keys.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Says in plain words what serde's `invalid type: string "abc", expected
/// i64` means: `"abc" is not an integer`. Other messages pass unchanged.
fn plain_type_error(message: &str) -> String {
    // The TOML deserializer adds "\nin `key`"; the key is said already.
    let message = message.lines().next().unwrap_or(message);
    let Some((got, expected)) = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))
        .and_then(|rest| rest.split_once(", expected "))
    else {
        return message.to_owned();
    };
    // `string "abc"`, `integer `5``, `boolean `true``, `floating point `1.5``.
    let value = got
        .strip_prefix("floating point ")
        .or_else(|| got.split_once(' ').map(|(_, v)| v))
        .unwrap_or(got)
        .trim_matches('`');
    let expected = expected.trim();
    let wanted = match expected {
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "an integer",
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a non-negative integer",
        "f32" | "f64" => "a number",
        "a boolean" | "bool" => "true or false",
        "a string" | "a borrowed string" | "string" | "a character" => "a string",
        "a sequence" => "a list",
        "struct" | "a map" => "a table",
        other => return format!("{value} is not {other}"),
    };
    if message.starts_with("invalid value: ") {
        // Right type, out of the type's range (a negative count).
        return format!("{value} is out of range: expected {wanted}");
    }
    format!("{value} is not {wanted}")
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
    /// The keyring `[encryption]` describes, or `None` when it is off: reads
    /// the key file (warning if group or others may read it) and the keys
    /// from `encryption.keys`. Errors name the key (and line), never key material.
    pub fn encryption_keyring(
        &self,
    ) -> Result<Option<std::sync::Arc<sluice_log::Keyring>>, ConfigError> {
        use sluice_log::encryption;
        let e = &self.encryption;
        if !e.enabled {
            return Ok(None);
        }
        let mut keys = Vec::new();
        if let Some(path) = &e.key_file {
            let (file_keys, too_open) = encryption::read_key_file(path)
                .map_err(|err| invalid("encryption.key_file", err.to_string()))?;
            if too_open {
                tracing::warn!(
                    key_file = %path.display(),
                    "encryption key file is readable by group or others; chmod 600 it"
                );
            }
            keys.extend(file_keys);
        }
        if let Some(SecretKeys(text)) = &e.keys {
            let env_keys = encryption::parse_keys(text, "encryption.keys")
                .map_err(|err| invalid("encryption.keys", err.to_string()))?;
            keys.extend(env_keys);
        }
        let active = e
            .active_key_id
            .ok_or_else(|| invalid("encryption.active_key_id", "required when enabled"))?;
        let keyring = sluice_log::Keyring::new(keys, active)
            .map_err(|err| invalid("encryption.active_key_id", err.to_string()))?;
        Ok(Some(std::sync::Arc::new(keyring)))
    }

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

    /// `controller_security_protocol`: SASL is refused (nodes prove their
    /// membership with certificates, as KRaft controllers commonly do),
    /// and SSL needs this node's certificate and key (it is both server
    /// and client) and the CA that peers' certificates are checked against.
    fn validate_controller_security(&self) -> Result<(), ConfigError> {
        let protocol = self.controller_security_protocol;
        if protocol.uses_sasl() {
            return Err(invalid(
                "controller_security_protocol",
                format!(
                    "{} is not supported: nodes authenticate to each other's controller listener with certificates; use SSL (mutual TLS) or PLAINTEXT",
                    protocol.name()
                ),
            ));
        }
        if protocol != SecurityProtocol::Ssl {
            return Ok(());
        }
        let tls = &self.tls;
        for (key, set) in [
            ("tls.cert_file", tls.cert_file.is_some()),
            ("tls.key_file", tls.key_file.is_some()),
            ("tls.client_ca_file", tls.client_ca_file.is_some()),
        ] {
            if !set {
                return Err(invalid(
                    key,
                    "is required with controller_security_protocol = \"SSL\": every node presents its certificate to its peers and checks theirs against tls.client_ca_file",
                ));
            }
        }
        Ok(())
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
        let balancer = &self.balancer;
        if balancer.interval_ms < 10 {
            return Err(invalid("balancer.interval_ms", "must be at least 10"));
        }
        if balancer.max_moves_in_flight < 1 {
            return Err(invalid(
                "balancer.max_moves_in_flight",
                "must be at least 1",
            ));
        }
        if balancer.disk_high_watermark_percent < 1 || balancer.disk_high_watermark_percent > 100 {
            return Err(invalid(
                "balancer.disk_high_watermark_percent",
                format!(
                    "{} must be between 1 and 100",
                    balancer.disk_high_watermark_percent
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
        if !(1..=MAX_QUOTA_WINDOW_NUM).contains(&self.quota.window_num) {
            return Err(invalid(
                "quota.window_num",
                format!(
                    "{} is not 1 to {MAX_QUOTA_WINDOW_NUM}",
                    self.quota.window_num
                ),
            ));
        }
        if !(1..=MAX_QUOTA_WINDOW_SIZE_MS).contains(&self.quota.window_size_ms) {
            return Err(invalid(
                "quota.window_size_ms",
                format!(
                    "{} is not 1 to {MAX_QUOTA_WINDOW_SIZE_MS}",
                    self.quota.window_size_ms
                ),
            ));
        }
        if self.kv.index_max_bytes < MIN_KV_INDEX_MAX_BYTES {
            return Err(invalid(
                "kv.index_max_bytes",
                format!(
                    "{} is below the minimum of {MIN_KV_INDEX_MAX_BYTES}",
                    self.kv.index_max_bytes
                ),
            ));
        }
        let leader = &self.leader;
        if leader.imbalance_per_broker_percentage > 100 {
            return Err(invalid(
                "leader.imbalance_per_broker_percentage",
                format!(
                    "{} is above 100 (a share of partitions)",
                    leader.imbalance_per_broker_percentage
                ),
            ));
        }
        if !(1..=MAX_LEADER_IMBALANCE_CHECK_INTERVAL_SECONDS)
            .contains(&leader.imbalance_check_interval_seconds)
        {
            return Err(invalid(
                "leader.imbalance_check_interval_seconds",
                format!(
                    "{} is not 1 to {MAX_LEADER_IMBALANCE_CHECK_INTERVAL_SECONDS}",
                    leader.imbalance_check_interval_seconds
                ),
            ));
        }
        self.validate_controller_security()?;
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
        self.schema_registry_addr()?;
        self.http_auth.validate()?;
        if let Some(adv) = &self.kafka_advertised_listener {
            parse_host_port("kafka_advertised_listener", adv)?;
        }
        self.validate_listeners()?;
        self.sasl.validate()?;
        if self.encryption.enabled {
            if self.encryption.key_file.is_none() && self.encryption.keys.is_none() {
                return Err(invalid(
                    "encryption.key_file",
                    "encryption is enabled but neither encryption.key_file nor encryption.keys (SLUICE_ENCRYPTION_KEYS) is set",
                ));
            }
            if self.encryption.active_key_id.is_none() {
                return Err(invalid(
                    "encryption.active_key_id",
                    "required when encryption.enabled = true",
                ));
            }
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
        if log.cleaner_backoff_ms < 1 {
            return Err(invalid("log.cleaner_backoff_ms", "must be at least 1"));
        }
        // The topic-config defaults are checked as the topic configs are.
        for (key, topic_key, value) in [
            (
                "log.cleanup_policy",
                "cleanup.policy",
                log.cleanup_policy.clone(),
            ),
            (
                "log.cleaner_delete_retention_ms",
                "delete.retention.ms",
                log.cleaner_delete_retention_ms.to_string(),
            ),
            (
                "log.cleaner_min_cleanable_ratio",
                "min.cleanable.dirty.ratio",
                log.cleaner_min_cleanable_ratio.to_string(),
            ),
            (
                "log.cleaner_min_compaction_lag_ms",
                "min.compaction.lag.ms",
                log.cleaner_min_compaction_lag_ms.to_string(),
            ),
            (
                "log.cleaner_max_compaction_lag_ms",
                "max.compaction.lag.ms",
                log.cleaner_max_compaction_lag_ms.to_string(),
            ),
        ] {
            sluice_metadata::topic_config::validate(topic_key, Some(&value))
                .map_err(|e| invalid(key, e.to_string()))?;
        }
        if log.cleaner_dedupe_buffer_bytes < MIN_DEDUPE_BUFFER_BYTES {
            return Err(invalid(
                "log.cleaner_dedupe_buffer_bytes",
                format!(
                    "{} is below {MIN_DEDUPE_BUFFER_BYTES} (the cleaner needs room for one batch's keys)",
                    log.cleaner_dedupe_buffer_bytes
                ),
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
        for user in &self.super_users {
            sluice_metadata::acl::validate_principal(user)
                .map_err(|e| invalid("super_users", e.to_string()))?;
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

    /// The schema registry's listener address, `None` when it is off
    /// (validated at load).
    pub fn schema_registry_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        if self.schema_registry_listener.is_empty() {
            return Ok(None);
        }
        parse_addr("schema_registry_listener", &self.schema_registry_listener).map(Some)
    }

    /// Every Kafka listener, in the order configured (validated at load).
    /// With `listeners` unset: one listener at `kafka_listener`, named
    /// after `kafka_security_protocol`, advertised at
    /// `kafka_advertised_listener`.
    pub fn listeners(&self) -> Result<Vec<ListenerConfig>, ConfigError> {
        let Some(listeners) = &self.listeners else {
            for key in ["advertised_listeners", "listener_security_protocol_map"] {
                let set = match key {
                    "advertised_listeners" => self.advertised_listeners.is_some(),
                    _ => self.listener_security_protocol_map.is_some(),
                };
                if set {
                    return Err(invalid(
                        key,
                        "needs `listeners` (the legacy kafka_listener has kafka_advertised_listener and kafka_security_protocol)",
                    ));
                }
            }
            let security_protocol = self.kafka_security_protocol;
            let advertised = self
                .kafka_advertised_listener
                .as_deref()
                .map(|adv| parse_host_port("kafka_advertised_listener", adv))
                .transpose()?;
            return Ok(vec![ListenerConfig {
                name: security_protocol.name().to_owned(),
                bind: parse_addr("kafka_listener", &self.kafka_listener)?,
                advertised,
                security_protocol,
            }]);
        };
        let map = self.security_protocol_map()?;
        let mut out: Vec<ListenerConfig> = Vec::new();
        for entry in &listeners.0 {
            let (name, host, port) = parse_listener("listeners", entry)?;
            if out.iter().any(|l| l.name == name) {
                return Err(invalid(
                    "listeners",
                    format!("listener name {name} appears more than once"),
                ));
            }
            if port != 0 && out.iter().any(|l| l.bind.port() == port) {
                return Err(invalid(
                    "listeners",
                    format!("port {port} is used by more than one listener (`{entry}`)"),
                ));
            }
            // An empty host binds every interface, as in Kafka.
            let ip: std::net::IpAddr = if host.is_empty() {
                std::net::Ipv4Addr::UNSPECIFIED.into()
            } else {
                host.parse().map_err(|_| {
                    invalid(
                        "listeners",
                        format!("`{entry}`: `{host}` is not an IP address to bind"),
                    )
                })?
            };
            let security_protocol = match map.iter().find(|(n, _)| *n == name) {
                Some((_, p)) => *p,
                None => SecurityProtocol::from_name(&name).ok_or_else(|| {
                    invalid(
                        "listener_security_protocol_map",
                        format!("has no security protocol for listener {name}"),
                    )
                })?,
            };
            out.push(ListenerConfig {
                name,
                bind: SocketAddr::new(ip, port),
                advertised: None,
                security_protocol,
            });
        }
        if out.is_empty() {
            return Err(invalid("listeners", "names no listener"));
        }
        for entry in self.advertised_listeners.iter().flat_map(|l| &l.0) {
            let (name, host, port) = parse_listener("advertised_listeners", entry)?;
            let Some(listener) = out.iter_mut().find(|l| l.name == name) else {
                return Err(invalid(
                    "advertised_listeners",
                    format!("`{entry}` names no listener in `listeners`"),
                ));
            };
            if listener.advertised.is_some() {
                return Err(invalid(
                    "advertised_listeners",
                    format!("listener {name} is advertised more than once"),
                ));
            }
            if host.is_empty() || port == 0 {
                return Err(invalid(
                    "advertised_listeners",
                    format!("`{entry}` needs a host and a port clients can reach"),
                ));
            }
            listener.advertised = Some((host, port));
        }
        Ok(out)
    }

    /// The `listener_security_protocol_map` entries, names upper case.
    fn security_protocol_map(&self) -> Result<Vec<(String, SecurityProtocol)>, ConfigError> {
        let key = "listener_security_protocol_map";
        let mut map: Vec<(String, SecurityProtocol)> = Vec::new();
        for entry in self
            .listener_security_protocol_map
            .iter()
            .flat_map(|m| &m.0)
        {
            let (name, protocol) = entry
                .split_once(':')
                .ok_or_else(|| invalid(key, format!("`{entry}` is not NAME:PROTOCOL")))?;
            let name = name.trim().to_ascii_uppercase();
            let protocol = SecurityProtocol::from_name(protocol.trim()).ok_or_else(|| {
                invalid(
                    key,
                    format!(
                        "`{entry}`: unknown security protocol (PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL)"
                    ),
                )
            })?;
            if name.is_empty() {
                return Err(invalid(key, format!("`{entry}` has no listener name")));
            }
            if map.iter().any(|(n, _)| *n == name) {
                return Err(invalid(key, format!("listener {name} is mapped twice")));
            }
            map.push((name, protocol));
        }
        Ok(map)
    }

    /// The name of the listener other brokers connect to.
    pub fn inter_broker_listener(&self) -> Result<String, ConfigError> {
        let listeners = self.listeners()?;
        match &self.inter_broker_listener_name {
            Some(name) => {
                let name = name.trim().to_ascii_uppercase();
                if listeners.iter().any(|l| l.name == name) {
                    Ok(name)
                } else {
                    Err(invalid(
                        "inter_broker_listener_name",
                        format!("{name} is not a listener in `listeners`"),
                    ))
                }
            }
            None => Ok(listeners
                .first()
                .map(|l| l.name.clone())
                .unwrap_or_default()),
        }
    }

    fn validate_listeners(&self) -> Result<(), ConfigError> {
        let listeners = self.listeners()?;
        if listeners.len() > MAX_LISTENERS {
            return Err(invalid(
                "listeners",
                format!("{} listeners; at most {MAX_LISTENERS}", listeners.len()),
            ));
        }
        self.inter_broker_listener()?;
        // Map entries must name configured listeners, as Kafka requires.
        if self.listeners.is_some() {
            for (name, _) in self.security_protocol_map()? {
                if !listeners.iter().any(|l| l.name == name)
                    && SecurityProtocol::from_name(&name).is_none()
                {
                    return Err(invalid(
                        "listener_security_protocol_map",
                        format!("maps {name}, which is not in `listeners`"),
                    ));
                }
            }
        }
        let tls = &self.tls;
        let needs_cert = self.http_tls || listeners.iter().any(|l| l.security_protocol.uses_tls());
        match (&tls.cert_file, &tls.key_file) {
            (Some(_), Some(_)) => {}
            (None, None) if !needs_cert => {}
            (None, _) => {
                return Err(invalid(
                    "tls.cert_file",
                    "is required with an SSL or SASL_SSL listener, with http_tls, and with tls.key_file",
                ));
            }
            (Some(_), None) => {
                return Err(invalid("tls.key_file", "is required with tls.cert_file"));
            }
        }
        if tls.client_ca_file.is_none()
            && matches!(
                tls.client_auth,
                Some(ClientAuth::Required | ClientAuth::Requested)
            )
        {
            return Err(invalid(
                "tls.client_auth",
                "needs tls.client_ca_file, the CAs client certificates are checked against",
            ));
        }
        // Brokers of a cluster connect to each other's inter-broker
        // listener; over TLS they must know which CA to trust.
        let inter_broker = self.inter_broker_listener()?;
        if self.cluster.voters.is_some()
            && tls.trust_file().is_none()
            && listeners
                .iter()
                .any(|l| l.name == inter_broker && l.security_protocol.uses_tls())
        {
            return Err(invalid(
                "tls.ca_file",
                format!(
                    "(or tls.client_ca_file) is required: the inter-broker listener {inter_broker} uses TLS and brokers must verify each other"
                ),
            ));
        }
        // Brokers reach each other without SASL credentials (replication,
        // transaction markers): a SASL inter-broker listener would refuse
        // them, and the cluster would silently stop replicating.
        if self.cluster.voters.is_some()
            && listeners
                .iter()
                .any(|l| l.name == inter_broker && l.security_protocol.uses_sasl())
        {
            return Err(invalid(
                "inter_broker_listener_name",
                format!(
                    "{inter_broker} uses SASL, and brokers connect to each other without SASL credentials; name a PLAINTEXT or SSL listener"
                ),
            ));
        }
        crate::principal_map::PrincipalMapper::parse(&tls.principal_mapping_rules)
            .map_err(|e| invalid("tls.principal_mapping_rules", e.to_string()))?;
        Ok(())
    }
}

/// Most Kafka listeners one broker serves: each is registered in the
/// metadata (`sluice_metadata::placement::MAX_BROKER_ENDPOINTS`).
pub const MAX_LISTENERS: usize = 16;

/// Parses `NAME://host:port` (host may be empty or a bracketed IPv6
/// address); the name comes back upper case.
pub fn parse_listener(key: &str, value: &str) -> Result<(String, String, u16), ConfigError> {
    let (name, rest) = value
        .split_once("://")
        .ok_or_else(|| invalid(key, format!("`{value}` is not NAME://host:port")))?;
    let name = name.trim().to_ascii_uppercase();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(invalid(
            key,
            format!("`{value}`: a listener name is letters, digits, `_` and `-`"),
        ));
    }
    if name == sluice_registry::REGISTRY_ENDPOINT {
        return Err(invalid(
            key,
            format!(
                "`{value}`: {name} names the schema registry's endpoint; pick another listener name"
            ),
        ));
    }
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| invalid(key, format!("`{value}` has no port")))?;
    let port = port
        .parse::<u16>()
        .map_err(|_| invalid(key, format!("`{value}` has a bad port")))?;
    Ok((name, host.trim_matches(['[', ']']).to_owned(), port))
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
        assert_eq!(c.schema_registry_listener, "127.0.0.1:8081");
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
    fn super_users_must_be_principals_and_the_authorizer_is_off_by_default() {
        let config = ConfigLoader::default().build().expect("defaults");
        assert!(!config.authorizer.enabled);
        assert!(!config.authorizer.allow_everyone_if_no_acl_found);
        assert!(config.super_users.is_empty());
        let mut loader = ConfigLoader::default();
        loader
            .apply_override(r#"super_users=["User:admin", "User:ops"]"#)
            .expect("set");
        loader
            .apply_override("authorizer.enabled=true")
            .expect("set");
        let config = loader.build().expect("valid");
        assert_eq!(config.super_users, ["User:admin", "User:ops"]);
        assert!(config.authorizer.enabled);
        let mut loader = ConfigLoader::default();
        loader
            .apply_override(r#"super_users=["admin"]"#)
            .expect("set");
        let err = loader.build().expect_err("no principal type").to_string();
        assert!(
            err.contains("super_users") && err.contains("admin"),
            "{err}"
        );
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
                "kafka_listener" | "http_listener" | "schema_registry_listener" => {
                    "\"127.0.0.1:1\""
                }
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
                "balancer.enabled" => "false",
                "balancer.disk_high_watermark_percent" => "90",
                "leader.auto_rebalance_enable" => "false",
                "leader.imbalance_per_broker_percentage" => "25",
                "listeners" => "\"PLAINTEXT://127.0.0.1:1\"",
                "advertised_listeners" => "[\"PLAINTEXT://localhost:1\"]",
                "listener_security_protocol_map" => "\"PLAINTEXT:PLAINTEXT\"",
                "inter_broker_listener_name" => "\"PLAINTEXT\"",
                "http_tls" | "log.cleaner_enable" => "true",
                "log.cleaner_dedupe_buffer_bytes" => "2097152",
                "log.cleaner_io_max_bytes_per_second" => "1048576",
                "log.cleanup_policy" => "\"compact,delete\"",
                "log.cleaner_min_cleanable_ratio" => "0.25",
                "tls.cert_file" | "tls.key_file" | "tls.client_ca_file" | "tls.ca_file" => {
                    "\"/tmp/x.pem\""
                }
                "tls.client_auth" => "\"none\"",
                "tls.principal_mapping_rules" => "\"RULE:^CN=(.*)$/$1/L,DEFAULT\"",
                "sasl.enabled_mechanisms" => "[\"PLAIN\"]",
                "sasl.connections_max_reauth_ms" => "0",
                "sasl.oauthbearer.jwks_file" => "\"/tmp/jwks.json\"",
                "sasl.oauthbearer.allow_unsecured" => "true",
                "sasl.oauthbearer.expected_audience" => "[\"kafka\"]",
                "sasl.oauthbearer.expected_issuer" => "\"https://issuer\"",
                "sasl.oauthbearer.sub_claim_name" => "\"sub\"",
                "sasl.oauthbearer.clock_skew_s" => "30",
                "super_users" => "[\"User:admin\"]",
                "authorizer.enabled" | "authorizer.allow_everyone_if_no_acl_found" => "true",
                "http_auth.enabled" => "true",
                "http_auth.realm" => "\"sluice test\"",
                "http_auth.token_max_lifetime_ms" => "3600000",
                // Enabling alone lacks its keys: checked in its own test.
                "encryption.enabled" => "false",
                "encryption.key_file" => "\"/tmp/keys\"",
                "encryption.keys" => "\"1:00\"",
                "encryption.active_key_id" => "1",
                "quota.window_num" => "30",
                "quota.window_size_ms" => "500",
                _ => "8000",
            };
            if matches!(
                *key,
                "advertised_listeners" | "listener_security_protocol_map"
            ) {
                loader
                    .set("listeners", "\"PLAINTEXT://127.0.0.1:1\"", Source::Flag)
                    .expect("listeners");
            }
            if key.starts_with("tls.") || *key == "http_tls" {
                loader
                    .set("tls.cert_file", "\"/tmp/c.pem\"", Source::Flag)
                    .expect("cert");
                loader
                    .set("tls.key_file", "\"/tmp/c.key\"", Source::Flag)
                    .expect("key");
            }
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
    fn sasl_plaintext_is_accepted_and_sasl_settings_are_checked_by_full_key() {
        let build = |toml: &str| {
            let table: toml::Table = toml.parse().expect("toml");
            ConfigLoader { table }.build()
        };
        let config = build(
            "kafka_security_protocol = \"SASL_PLAINTEXT\"\n\
             [[sasl.bootstrap_users]]\nname = \"admin\"\npassword = \"pw\"\n",
        )
        .expect("SASL_PLAINTEXT with a bootstrap user");
        assert_eq!(
            config.kafka_security_protocol,
            SecurityProtocol::SaslPlaintext
        );
        assert_eq!(config.sasl.bootstrap_users[0].mechanism, "SCRAM-SHA-512");
        assert_eq!(config.sasl.bootstrap_users[0].iterations, 4096);
        for (toml, key) in [
            // SASL over TLS is served, and needs the TLS certificate.
            ("kafka_security_protocol = \"SASL_SSL\"", "tls.cert_file"),
            (
                "[sasl]\nenabled_mechanisms = [\"GSSAPI\"]",
                "sasl.enabled_mechanisms",
            ),
            ("[sasl]\nenabled_mechanisms = []", "sasl.enabled_mechanisms"),
            (
                "[sasl]\nhandshake_timeout_ms = 0",
                "sasl.handshake_timeout_ms",
            ),
            (
                "[[sasl.bootstrap_users]]\nname = \"a\"",
                "sasl.bootstrap_users",
            ),
            (
                "[[sasl.bootstrap_users]]\nname = \"a\"\npassword = \"p\"\npassword_file = \"f\"",
                "sasl.bootstrap_users",
            ),
            (
                "[[sasl.bootstrap_users]]\nname = \"a\"\npassword = \"p\"\nmechanism = \"PLAIN\"",
                "sasl.bootstrap_users",
            ),
            (
                "[[sasl.bootstrap_users]]\nname = \"a\"\npassword = \"p\"\niterations = 100",
                "sasl.bootstrap_users",
            ),
            (
                "[[sasl.bootstrap_users]]\nname = \"\"\npassword = \"p\"",
                "sasl.bootstrap_users",
            ),
            (
                "[sasl]\nenabled_mechanisms = [\"OAUTHBEARER\"]",
                "sasl.oauthbearer.jwks_file",
            ),
            (
                "[sasl]\nenabled_mechanisms = [\"OAUTHBEARER\"]\n\
                 [sasl.oauthbearer]\njwks_file = \"/nonexistent/jwks.json\"",
                "sasl.oauthbearer.jwks_file",
            ),
            (
                "[sasl.oauthbearer]\nclock_skew_s = 3601",
                "sasl.oauthbearer.clock_skew_s",
            ),
            (
                "[sasl.oauthbearer]\nsub_claim_name = \"\"",
                "sasl.oauthbearer.sub_claim_name",
            ),
            (
                "[sasl.oauthbearer]\nexpected_audience = [\"\"]",
                "sasl.oauthbearer.expected_audience",
            ),
        ] {
            match build(toml) {
                Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key, "{toml}"),
                other => panic!("{toml}: expected an error naming {key}, got {other:?}"),
            }
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
    fn an_ssl_controller_listener_needs_a_certificate_and_a_client_ca_and_sasl_is_refused() {
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
        let voters = ("cluster.voters", "1@127.0.0.1:9093");
        let listener = ("controller_listener", "127.0.0.1:9093");
        let ssl = ("controller_security_protocol", r#""SSL""#);
        let cert = ("tls.cert_file", r#""/node.pem""#);
        let key = ("tls.key_file", r#""/node.key""#);
        let client_ca = ("tls.client_ca_file", r#""/ca.pem""#);
        let ok = build(&[voters, listener, ssl, cert, key, client_ca]).expect("mutual TLS");
        assert_eq!(ok.controller_security_protocol, SecurityProtocol::Ssl);
        assert_eq!(err(&[voters, listener, ssl]).0, "tls.cert_file");
        assert_eq!(
            err(&[voters, listener, ssl, cert, key]).0,
            "tls.client_ca_file"
        );
        for sasl in [r#""SASL_SSL""#, r#""SASL_PLAINTEXT""#] {
            let (bad, message) = err(&[
                voters,
                listener,
                ("controller_security_protocol", sasl),
                cert,
                key,
                client_ca,
            ]);
            assert_eq!(bad, "controller_security_protocol");
            assert!(message.contains("use SSL"), "{message}");
        }
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
    fn encryption_needs_keys_and_an_active_id_and_never_prints_keys() {
        let build = |pairs: &[(&str, &str)]| {
            let mut loader = ConfigLoader::default();
            for (k, v) in pairs {
                loader.set(k, v, Source::Env).expect("known key");
            }
            loader.build()
        };
        let off = build(&[]).expect("defaults");
        assert!(!off.encryption.enabled);
        assert!(off.encryption_keyring().expect("off").is_none());
        let on = ("encryption.enabled", "true");
        match build(&[on, ("encryption.active_key_id", "1")]) {
            Err(ConfigError::Invalid { key, .. }) => assert_eq!(key, "encryption.key_file"),
            other => panic!("{other:?}"),
        }
        let key = format!("1:{}", "ab".repeat(32));
        match build(&[on, ("encryption.keys", &key)]) {
            Err(ConfigError::Invalid { key, .. }) => assert_eq!(key, "encryption.active_key_id"),
            other => panic!("{other:?}"),
        }
        // Keys from the environment, the way operators are told to pass them.
        let mut loader = ConfigLoader::default();
        loader
            .apply_env([
                ("SLUICE_ENCRYPTION_ENABLED".to_owned(), "true".to_owned()),
                ("SLUICE_ENCRYPTION_KEYS".to_owned(), key.clone()),
                ("SLUICE_ENCRYPTION_ACTIVE_KEY_ID".to_owned(), "1".to_owned()),
            ])
            .expect("env");
        let config = loader.build().expect("valid");
        let keyring = config.encryption_keyring().expect("keys").expect("on");
        assert_eq!(keyring.active_key_id(), 1);
        assert!(!format!("{config:?}").contains("abab"));
        // An active id that names no key, and a bad key line, name their keys.
        let c = build(&[
            on,
            ("encryption.keys", &key),
            ("encryption.active_key_id", "2"),
        ])
        .expect("shape is valid");
        match c.encryption_keyring() {
            Err(ConfigError::Invalid { key, .. }) => assert_eq!(key, "encryption.active_key_id"),
            other => panic!("{other:?}"),
        }
        let c = build(&[
            on,
            ("encryption.keys", "1:zz"),
            ("encryption.active_key_id", "1"),
        ])
        .expect("shape is valid");
        match c.encryption_keyring() {
            Err(ConfigError::Invalid { key, message }) => {
                assert_eq!(key, "encryption.keys");
                assert!(message.contains("line 1"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        // A key file and the environment together.
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("keys");
        std::fs::write(&file, format!("# rotated 2026\n2:{}\n", "cd".repeat(32))).expect("write");
        let c = build(&[
            on,
            ("encryption.keys", &key),
            ("encryption.key_file", &format!("\"{}\"", file.display())),
            ("encryption.active_key_id", "2"),
        ])
        .expect("valid");
        let keyring = c.encryption_keyring().expect("keys").expect("on");
        assert_eq!(keyring.key_ids(), vec![1, 2]);
    }

    #[test]
    fn quota_window_keys_default_to_kafkas_and_are_bounded() {
        let c = ConfigLoader::default().build().expect("defaults");
        assert_eq!(
            c.quota,
            QuotaConfig {
                window_num: 11,
                window_size_ms: 1_000,
            }
        );
        for (key, value) in [
            ("quota.window_num", "0"),
            ("quota.window_num", "101"),
            ("quota.window_size_ms", "0"),
            ("quota.window_size_ms", "60001"),
        ] {
            let mut loader = ConfigLoader::default();
            loader.set(key, value, Source::Env).expect("known key");
            match loader.build() {
                Err(ConfigError::Invalid { key: named, .. }) => assert_eq!(named, key),
                other => panic!("{key}={value}: {other:?}"),
            }
        }
    }

    #[test]
    fn leader_balance_keys_default_to_kafkas_and_are_bounded() {
        let c = ConfigLoader::default().build().expect("defaults");
        assert_eq!(
            c.leader,
            LeaderBalanceConfig {
                auto_rebalance_enable: true,
                imbalance_per_broker_percentage: 10,
                imbalance_check_interval_seconds: 300,
            }
        );
        for (key, value) in [
            ("leader.imbalance_per_broker_percentage", "101"),
            ("leader.imbalance_check_interval_seconds", "0"),
            ("leader.imbalance_check_interval_seconds", "604801"),
            ("leader.auto_rebalance_enable", "sometimes"),
        ] {
            let mut loader = ConfigLoader::default();
            loader.set(key, value, Source::Env).expect("known key");
            match loader.build() {
                Err(ConfigError::Invalid {
                    key: named,
                    message,
                }) => {
                    assert_eq!(named, key, "{message}");
                }
                other => panic!("{key} = {value}: {other:?}"),
            }
        }
        let mut loader = ConfigLoader::default();
        loader
            .apply_env([
                (
                    "SLUICE_LEADER_IMBALANCE_PER_BROKER_PERCENTAGE".to_owned(),
                    "100".to_owned(),
                ),
                (
                    "SLUICE_LEADER_IMBALANCE_CHECK_INTERVAL_SECONDS".to_owned(),
                    "1".to_owned(),
                ),
                (
                    "SLUICE_LEADER_AUTO_REBALANCE_ENABLE".to_owned(),
                    "false".to_owned(),
                ),
            ])
            .expect("env");
        let c = loader.build().expect("in range");
        assert_eq!(
            c.leader,
            LeaderBalanceConfig {
                auto_rebalance_enable: false,
                imbalance_per_broker_percentage: 100,
                imbalance_check_interval_seconds: 1,
            }
        );
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
    fn a_value_of_the_wrong_type_is_explained_in_plain_words() {
        let refused = |key: &str, raw: &str| {
            let mut loader = ConfigLoader::default();
            loader.set(key, raw, Source::Flag).expect("known key");
            loader.build().expect_err("must fail").to_string()
        };
        assert_eq!(
            refused("log.retention_ms", "abc"),
            "invalid value for `log.retention_ms`: \"abc\" is not an integer"
        );
        assert_eq!(
            refused("log.cleaner_enable", "7"),
            "invalid value for `log.cleaner_enable`: 7 is not true or false"
        );
        let err = refused("log.segment_bytes", "-5");
        assert!(
            err.starts_with("invalid value for `log.segment_bytes`: -5 "),
            "{err}"
        );
        assert!(
            !err.contains("expected i") && !err.contains("expected u"),
            "{err}"
        );
    }

    #[test]
    fn unknown_sluice_environment_variables_are_refused_with_the_closest_key() {
        let err = ConfigLoader::default()
            .apply_env([("SLUICE_LOG_RETENTION_MSS".to_owned(), "1".to_owned())])
            .expect_err("must fail")
            .to_string();
        assert_eq!(
            err,
            "unknown environment variable SLUICE_LOG_RETENTION_MSS: no config key is named \
             `log.retention_mss`; did you mean `log.retention_ms` (SLUICE_LOG_RETENTION_MS)?"
        );
        // The CLI's and the scripts' own variables are not config keys.
        let mut loader = ConfigLoader::default();
        loader
            .apply_env(
                OTHER_SLUICE_VARS
                    .iter()
                    .map(|v| (v.to_string(), "x".to_owned())),
            )
            .expect("other tools' variables pass");
        loader.build().expect("valid");
        let err = ConfigLoader::default()
            .apply_override("log.segment_byte=1")
            .expect_err("must fail")
            .to_string();
        assert!(err.contains("did you mean `log.segment_bytes`"), "{err}");
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
    fn the_cleaner_settings_are_bounded() {
        for (setting, key) in [
            ("log.cleaner_backoff_ms=0", "log.cleaner_backoff_ms"),
            ("log.cleanup_policy=\"shred\"", "log.cleanup_policy"),
            (
                "log.cleaner_min_cleanable_ratio=1.5",
                "log.cleaner_min_cleanable_ratio",
            ),
            (
                "log.cleaner_delete_retention_ms=-1",
                "log.cleaner_delete_retention_ms",
            ),
            (
                "log.cleaner_dedupe_buffer_bytes=1000",
                "log.cleaner_dedupe_buffer_bytes",
            ),
        ] {
            let mut loader = ConfigLoader::default();
            loader.apply_override(setting).expect("set");
            let err = loader.build().expect_err("must fail").to_string();
            assert!(err.contains(key), "{err}");
        }
        let mut loader = ConfigLoader::default();
        loader
            .apply_override("log.cleaner_enable=false")
            .expect("set");
        let config = loader.build().expect("valid");
        assert!(!config.log.cleaner_enable);
        assert_eq!(config.log.cleaner_dedupe_buffer_bytes, 32 * 1024 * 1024);
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

    fn build_with(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut loader = ConfigLoader::default();
        for (k, v) in pairs {
            loader.set(k, v, Source::Flag).expect("known key");
        }
        loader.build()
    }

    /// The key a config with `pairs` is refused for.
    fn refused_key(pairs: &[(&str, &str)]) -> String {
        match build_with(pairs) {
            Err(ConfigError::Invalid { key, .. }) => key,
            other => panic!("expected {pairs:?} to be refused, got {other:?}"),
        }
    }

    #[test]
    fn named_listeners_resolve_protocols_advertised_addresses_and_the_inter_broker_listener() {
        let c = build_with(&[
            (
                "listeners",
                r#"["client://127.0.0.1:9092", "SECURE://:9094", "SSL://[::1]:9095"]"#,
            ),
            (
                "listener_security_protocol_map",
                r#""CLIENT:PLAINTEXT, SECURE:sasl_ssl""#,
            ),
            ("advertised_listeners", r#""SECURE://broker.example:19094""#),
            ("inter_broker_listener_name", r#""secure""#),
            ("tls.cert_file", r#""/c.pem""#),
            ("tls.key_file", r#""/c.key""#),
        ])
        .expect("valid");
        let listeners = c.listeners().expect("listeners");
        let summary: Vec<_> = listeners
            .iter()
            .map(|l| {
                (
                    l.name.as_str(),
                    l.bind.to_string(),
                    l.advertised.clone(),
                    l.security_protocol,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "CLIENT",
                    "127.0.0.1:9092".to_owned(),
                    None,
                    SecurityProtocol::Plaintext
                ),
                (
                    "SECURE",
                    "0.0.0.0:9094".to_owned(),
                    Some(("broker.example".to_owned(), 19094)),
                    SecurityProtocol::SaslSsl
                ),
                // Kafka's default map: a listener named after a protocol.
                ("SSL", "[::1]:9095".to_owned(), None, SecurityProtocol::Ssl),
            ]
        );
        assert_eq!(c.inter_broker_listener().expect("inter-broker"), "SECURE");
        // The first listener by default.
        let c = build_with(&[
            (
                "listeners",
                r#""PLAINTEXT://127.0.0.1:1,SSL://127.0.0.1:2""#,
            ),
            ("tls.cert_file", r#""/c""#),
            ("tls.key_file", r#""/k""#),
        ])
        .expect("valid");
        assert_eq!(
            c.inter_broker_listener().expect("inter-broker"),
            "PLAINTEXT"
        );
    }

    #[test]
    fn the_legacy_kafka_listener_keys_form_one_listener_named_after_its_protocol() {
        let c = ConfigLoader::default().build().expect("defaults");
        let listeners = c.listeners().expect("listeners");
        assert_eq!(listeners.len(), 1);
        assert_eq!(listeners[0].name, "PLAINTEXT");
        assert_eq!(listeners[0].bind.to_string(), "127.0.0.1:9092");
        let c = build_with(&[
            ("kafka_listener", r#""127.0.0.1:9093""#),
            ("kafka_advertised_listener", r#""example:1""#),
            ("kafka_security_protocol", r#""SSL""#),
            ("tls.cert_file", r#""/c.pem""#),
            ("tls.key_file", r#""/c.key""#),
        ])
        .expect("valid");
        let listeners = c.listeners().expect("listeners");
        assert_eq!(
            (
                listeners[0].name.as_str(),
                listeners[0].advertised.clone(),
                listeners[0].security_protocol
            ),
            (
                "SSL",
                Some(("example".to_owned(), 1)),
                SecurityProtocol::Ssl
            )
        );
    }

    #[test]
    fn a_cluster_refuses_a_sasl_inter_broker_listener() {
        let voters = ("cluster.voters", r#""1@127.0.0.1:9093""#);
        let controller = ("controller_listener", r#""127.0.0.1:9093""#);
        let sasl = ("listeners", r#""SASL_PLAINTEXT://127.0.0.1:9092""#);
        assert_eq!(
            refused_key(&[voters, controller, sasl]),
            "inter_broker_listener_name"
        );
        // A single node has no peers to reach.
        build_with(&[sasl]).expect("a single SASL node");
        // A PLAINTEXT inter-broker listener beside a SASL one for clients.
        build_with(&[
            voters,
            controller,
            (
                "listeners",
                r#""INTERNAL://127.0.0.1:9092,CLIENT://127.0.0.1:9094""#,
            ),
            (
                "listener_security_protocol_map",
                r#""INTERNAL:PLAINTEXT,CLIENT:SASL_PLAINTEXT""#,
            ),
        ])
        .expect("a cluster with a PLAINTEXT inter-broker listener");
    }

    #[test]
    fn every_listener_and_tls_mistake_is_refused_naming_its_key() {
        let tls = [
            ("tls.cert_file", r#""/c.pem""#),
            ("tls.key_file", r#""/c.key""#),
        ];
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (
                vec![
                    ("listeners", r#""PLAINTEXT://127.0.0.1:1""#),
                    ("kafka_listener", r#""127.0.0.1:2""#),
                ],
                "kafka_listener",
            ),
            (
                vec![
                    ("listeners", r#""PLAINTEXT://127.0.0.1:1""#),
                    ("kafka_security_protocol", r#""PLAINTEXT""#),
                ],
                "kafka_security_protocol",
            ),
            (vec![("listeners", r#""127.0.0.1:1""#)], "listeners"),
            (
                vec![("listeners", r#""PLAINTEXT://127.0.0.1""#)],
                "listeners",
            ),
            (
                vec![("listeners", r#""PLAINTEXT://localhost:1""#)],
                "listeners",
            ),
            (vec![("listeners", r#""P L://127.0.0.1:1""#)], "listeners"),
            (vec![("listeners", r#""""#)], "listeners"),
            (
                vec![(
                    "listeners",
                    r#""PLAINTEXT://127.0.0.1:1,plaintext://127.0.0.1:2""#,
                )],
                "listeners",
            ),
            (
                vec![
                    (
                        "listeners",
                        r#""PLAINTEXT://127.0.0.1:1,CLIENT://127.0.0.1:1""#,
                    ),
                    ("listener_security_protocol_map", r#""CLIENT:PLAINTEXT""#),
                ],
                "listeners",
            ),
            (
                vec![("listeners", r#""CLIENT://127.0.0.1:1""#)],
                "listener_security_protocol_map",
            ),
            (
                vec![
                    ("listeners", r#""CLIENT://127.0.0.1:1""#),
                    ("listener_security_protocol_map", r#""CLIENT""#),
                ],
                "listener_security_protocol_map",
            ),
            (
                vec![
                    ("listeners", r#""CLIENT://127.0.0.1:1""#),
                    ("listener_security_protocol_map", r#""CLIENT:TLS""#),
                ],
                "listener_security_protocol_map",
            ),
            (
                vec![
                    ("listeners", r#""CLIENT://127.0.0.1:1""#),
                    (
                        "listener_security_protocol_map",
                        r#""CLIENT:PLAINTEXT,client:SSL""#,
                    ),
                ],
                "listener_security_protocol_map",
            ),
            (
                vec![
                    ("listeners", r#""CLIENT://127.0.0.1:1""#),
                    (
                        "listener_security_protocol_map",
                        r#""CLIENT:PLAINTEXT,OTHER:SSL""#,
                    ),
                ],
                "listener_security_protocol_map",
            ),
            (
                vec![("listener_security_protocol_map", r#""PLAINTEXT:PLAINTEXT""#)],
                "listener_security_protocol_map",
            ),
            (
                vec![("advertised_listeners", r#""PLAINTEXT://h:1""#)],
                "advertised_listeners",
            ),
            (
                vec![
                    ("listeners", r#""PLAINTEXT://127.0.0.1:1""#),
                    ("advertised_listeners", r#""OTHER://h:1""#),
                ],
                "advertised_listeners",
            ),
            (
                vec![
                    ("listeners", r#""PLAINTEXT://127.0.0.1:1""#),
                    (
                        "advertised_listeners",
                        r#""PLAINTEXT://h:1,PLAINTEXT://h:2""#,
                    ),
                ],
                "advertised_listeners",
            ),
            (
                vec![
                    ("listeners", r#""PLAINTEXT://127.0.0.1:1""#),
                    ("advertised_listeners", r#""PLAINTEXT://:1""#),
                ],
                "advertised_listeners",
            ),
            (
                vec![
                    ("listeners", r#""PLAINTEXT://127.0.0.1:1""#),
                    ("inter_broker_listener_name", r#""OTHER""#),
                ],
                "inter_broker_listener_name",
            ),
            (
                vec![("listeners", r#""SSL://127.0.0.1:1""#)],
                "tls.cert_file",
            ),
            (vec![("http_tls", "true")], "tls.cert_file"),
            (vec![("tls.key_file", r#""/k""#)], "tls.cert_file"),
            (vec![("tls.cert_file", r#""/c""#)], "tls.key_file"),
            (
                vec![tls[0], tls[1], ("tls.client_auth", r#""required""#)],
                "tls.client_auth",
            ),
            (
                vec![tls[0], tls[1], ("tls.client_auth", r#""sometimes""#)],
                "tls.client_auth",
            ),
            (
                vec![("tls.principal_mapping_rules", r#""RULE:^CN=(.*$/$1/""#)],
                "tls.principal_mapping_rules",
            ),
            (
                vec![("tls.principal_mapping_rules", r#""DEFAULT/L""#)],
                "tls.principal_mapping_rules",
            ),
        ];
        for (pairs, key) in cases {
            assert_eq!(refused_key(&pairs), key, "{pairs:?}");
        }
    }

    #[test]
    fn client_auth_defaults_to_required_with_a_ca_and_none_without() {
        let tls = [
            ("tls.cert_file", r#""/c.pem""#),
            ("tls.key_file", r#""/c.key""#),
        ];
        let c = build_with(&tls).expect("valid");
        assert_eq!(c.tls.client_auth(), ClientAuth::None);
        assert_eq!(c.tls.reload_interval_ms, 10_000);
        let c =
            build_with(&[tls[0], tls[1], ("tls.client_ca_file", r#""/ca.pem""#)]).expect("valid");
        assert_eq!(c.tls.client_auth(), ClientAuth::Required);
        assert_eq!(c.tls.trust_file(), Some(std::path::Path::new("/ca.pem")));
        let c = build_with(&[
            tls[0],
            tls[1],
            ("tls.client_ca_file", r#""/ca.pem""#),
            ("tls.client_auth", r#""requested""#),
            ("tls.ca_file", r#""/trust.pem""#),
        ])
        .expect("valid");
        assert_eq!(c.tls.client_auth(), ClientAuth::Requested);
        assert_eq!(c.tls.trust_file(), Some(std::path::Path::new("/trust.pem")));
    }

    #[test]
    fn listener_keys_come_from_the_environment_as_kafka_style_strings() {
        let mut loader = ConfigLoader::default();
        loader
            .apply_env([
                (
                    "SLUICE_LISTENERS".to_owned(),
                    "CLIENT://127.0.0.1:9092,INTERNAL://127.0.0.1:9095".to_owned(),
                ),
                (
                    "SLUICE_LISTENER_SECURITY_PROTOCOL_MAP".to_owned(),
                    "CLIENT:PLAINTEXT,INTERNAL:PLAINTEXT".to_owned(),
                ),
                (
                    "SLUICE_INTER_BROKER_LISTENER_NAME".to_owned(),
                    "INTERNAL".to_owned(),
                ),
            ])
            .expect("env");
        let c = loader.build().expect("valid");
        let names: Vec<_> = c
            .listeners()
            .expect("listeners")
            .into_iter()
            .map(|l| l.name)
            .collect();
        assert_eq!(names, ["CLIENT", "INTERNAL"]);
        assert_eq!(c.inter_broker_listener().expect("ib"), "INTERNAL");
    }
    #[test]
    fn kv_index_max_bytes_defaults_to_64_mib_and_refuses_tiny_values() {
        let config = ConfigLoader::default().build().expect("defaults");
        assert_eq!(config.kv.index_max_bytes, DEFAULT_KV_INDEX_MAX_BYTES);
        let mut loader = ConfigLoader::default();
        loader
            .set("kv.index_max_bytes", "10", Source::Flag)
            .expect("known key");
        let err = loader.build().expect_err("too small").to_string();
        assert!(err.contains("kv.index_max_bytes"), "{err}");
    }

    #[test]
    fn http_auth_is_off_by_default_and_its_keys_are_checked() {
        let config = ConfigLoader::default().build().expect("defaults");
        assert!(!config.http_auth.enabled);
        assert_eq!(config.http_auth.realm, "sluice");
        assert_eq!(
            config.http_auth.token_max_lifetime_ms,
            DEFAULT_TOKEN_MAX_LIFETIME_MS
        );
        for (key, raw) in [
            ("http_auth.token_max_lifetime_ms", "10"),
            ("http_auth.realm", "\"a\\\"b\""),
            ("http_auth.realm", "\"\""),
        ] {
            let mut loader = ConfigLoader::default();
            loader.set(key, raw, Source::Flag).expect("known key");
            let err = loader.build().expect_err(raw);
            assert!(err.to_string().contains(key), "{key}={raw}: {err}");
        }
    }
}
