//! What every CLI command shares: the bootstrap flag, the error type that
//! prints one line, the async runtime, and small parsers and formatters.

use std::time::Duration;

use clap::Args;
use sluice_broker::config::SecurityProtocol;
use sluice_client::{Client, ClientConfig, ClientError, Compression};

/// Connection flags shared by every client command.
#[derive(Debug, Clone, Args)]
pub struct ConnArgs {
    /// Kafka bootstrap servers, comma-separated host:port. Default: the
    /// profile's brokers, else 127.0.0.1:9092.
    #[arg(
        long = "bootstrap-server",
        short = 'b',
        env = "SLUICE_BOOTSTRAP",
        value_name = "HOST:PORT"
    )]
    pub bootstrap: Option<String>,
    /// Use this profile instead of the current one (see `sluice profile`).
    #[arg(long, env = "SLUICE_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,
    /// Override one setting, as rpk's -X does: `brokers=HOST:PORT,...`,
    /// `sasl.mechanism=M`, `user=NAME`, `pass=PASSWORD`,
    /// `sasl.password_file=FILE`, `security.protocol=P`,
    /// `ssl.ca.location=FILE`, `ssl.certificate.location=FILE` or
    /// `ssl.key.location=FILE`. Repeatable; flags win.
    #[arg(short = 'X', value_parser = parse_key_value, value_name = "KEY=VALUE")]
    pub overrides: Vec<(String, String)>,
    /// Give up on a request after this long (e.g. 10s, 500ms).
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub request_timeout: Duration,
    /// SASL mechanism for a SASL_PLAINTEXT listener: PLAIN, SCRAM-SHA-256,
    /// SCRAM-SHA-512 or OAUTHBEARER.
    #[arg(long, value_name = "MECHANISM")]
    pub sasl_mechanism: Option<String>,
    /// SASL user name.
    #[arg(long, value_name = "NAME")]
    pub sasl_username: Option<String>,
    /// File holding the SASL password (one trailing newline is ignored).
    #[arg(long, value_name = "FILE")]
    pub sasl_password_file: Option<std::path::PathBuf>,
    /// File holding an OAUTHBEARER token (a JWT; one trailing newline is
    /// ignored). Implies `--sasl-mechanism OAUTHBEARER`.
    #[arg(long, value_name = "FILE")]
    pub sasl_oauthbearer_token_file: Option<std::path::PathBuf>,
    /// Kafka client properties file (as Kafka's tools take):
    /// `security.protocol`, `sasl.mechanism`, `sasl.username`,
    /// `sasl.password`, for OAUTHBEARER `sasl.oauthbearer.token` or
    /// `sasl.oauthbearer.token.file`, and for TLS `ssl.ca.location`,
    /// `ssl.certificate.location` and `ssl.key.location`. Flags given on
    /// the command line win.
    #[arg(long, value_name = "FILE")]
    pub command_config: Option<std::path::PathBuf>,
    /// PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (Kafka's
    /// `security.protocol`). Default: SSL when a TLS file is given (SASL_SSL
    /// with SASL settings), else PLAINTEXT (SASL_PLAINTEXT with SASL).
    #[arg(long, value_parser = parse_security_protocol, value_name = "PROTOCOL")]
    pub security_protocol: Option<SecurityProtocol>,
    /// PEM file of the CAs that signed the broker's certificate (Kafka's
    /// `ssl.ca.location`); required for SSL and SASL_SSL. The broker's
    /// certificate must name the bootstrap host (a DNS name or an IP).
    #[arg(long, value_name = "FILE")]
    pub tls_ca_file: Option<std::path::PathBuf>,
    /// PEM certificate (chain) to present to a broker that asks for one
    /// (mutual TLS; `ssl.certificate.location`). Needs `--tls-key-file`.
    #[arg(long, value_name = "FILE", requires = "tls_key_file")]
    pub tls_cert_file: Option<std::path::PathBuf>,
    /// PEM private key of `--tls-cert-file` (`ssl.key.location`).
    #[arg(long, value_name = "FILE", requires = "tls_cert_file")]
    pub tls_key_file: Option<std::path::PathBuf>,
}

/// Parses a Kafka security protocol name (case-insensitive, as Kafka does).
pub fn parse_security_protocol(s: &str) -> Result<SecurityProtocol, String> {
    SecurityProtocol::from_name(s)
        .ok_or_else(|| format!("'{s}' is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"))
}

/// Reads Kafka-style `key=value` properties (`#` and `!` start comments).
pub fn parse_properties(text: &str) -> std::collections::HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| {
            let (k, v) = l.split_once('=').or_else(|| l.split_once(':'))?;
            Some((k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect()
}

fn without_newline(text: &str) -> String {
    let text = text.strip_suffix('\n').unwrap_or(text);
    text.strip_suffix('\r').unwrap_or(text).to_owned()
}

/// The broker address client commands use when nothing else names one.
pub const DEFAULT_BOOTSTRAP: &str = "127.0.0.1:9092";

/// Connection settings from `-X` overrides and the profile, below flags.
#[derive(Debug, Default)]
struct Settings {
    brokers: Option<String>,
    mechanism: Option<String>,
    username: Option<String>,
    password: Option<String>,
    password_file: Option<std::path::PathBuf>,
    protocol: Option<String>,
    ca_file: Option<std::path::PathBuf>,
    cert_file: Option<std::path::PathBuf>,
    key_file: Option<std::path::PathBuf>,
}

/// The TLS files from every source, flags first.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct TlsFiles {
    ca_file: Option<std::path::PathBuf>,
    cert_file: Option<std::path::PathBuf>,
    key_file: Option<std::path::PathBuf>,
}

impl ConnArgs {
    /// `-X` overrides over the profile's settings.
    fn settings(&self) -> Result<Settings, CliError> {
        let mut s = Settings::default();
        for (key, value) in &self.overrides {
            let slot = match key.as_str() {
                "brokers" => &mut s.brokers,
                "sasl.mechanism" => &mut s.mechanism,
                "user" | "sasl.username" => &mut s.username,
                "pass" | "sasl.password" => &mut s.password,
                "security.protocol" => &mut s.protocol,
                "sasl.password_file"
                | "ssl.ca.location"
                | "ssl.certificate.location"
                | "ssl.key.location" => {
                    let slot = match key.as_str() {
                        "sasl.password_file" => &mut s.password_file,
                        "ssl.ca.location" => &mut s.ca_file,
                        "ssl.certificate.location" => &mut s.cert_file,
                        _ => &mut s.key_file,
                    };
                    *slot = Some(value.into());
                    continue;
                }
                other => {
                    return Err(CliError::Usage(format!(
                        "-X {other}: unknown key (brokers, sasl.mechanism, user, pass, sasl.password_file, security.protocol, ssl.ca.location, ssl.certificate.location, ssl.key.location)"
                    )));
                }
            };
            *slot = Some(value.clone());
        }
        if let Some(p) = crate::profile_store::active(self.profile.as_deref())? {
            s.brokers = s.brokers.or(Some(p.brokers));
            s.mechanism = s.mechanism.or(p.sasl_mechanism);
            s.username = s.username.or(p.sasl_username);
            if s.password.is_none() {
                s.password_file = s.password_file.or(p.sasl_password_file);
            }
            s.protocol = s.protocol.or(p.security_protocol);
            s.ca_file = s.ca_file.or(p.tls_ca_file);
            s.cert_file = s.cert_file.or(p.tls_cert_file);
            s.key_file = s.key_file.or(p.tls_key_file);
        }
        Ok(s)
    }

    /// The `--command-config` properties, empty without the flag.
    fn properties(&self) -> Result<std::collections::HashMap<String, String>, CliError> {
        Ok(match &self.command_config {
            Some(path) => parse_properties(
                &std::fs::read_to_string(path)
                    .map_err(CliError::io(format!("reading {}", path.display())))?,
            ),
            None => Default::default(),
        })
    }

    /// The security protocol asked for, if any: the flag, then
    /// `--command-config`, then `-X`, then the profile.
    fn protocol(
        &self,
        props: &std::collections::HashMap<String, String>,
        settings: &Settings,
    ) -> Result<Option<SecurityProtocol>, CliError> {
        if let Some(p) = self.security_protocol {
            return Ok(Some(p));
        }
        let named = props
            .get("security.protocol")
            .map(|p| ("security.protocol in --command-config", p))
            .or_else(|| {
                settings
                    .protocol
                    .as_ref()
                    .map(|p| ("security.protocol (-X or profile)", p))
            });
        match named {
            None => Ok(None),
            Some((source, name)) => parse_security_protocol(name)
                .map(Some)
                .map_err(|e| CliError::Usage(format!("{source}: {e}"))),
        }
    }

    /// The TLS files: each the flag, then `--command-config`, then `-X`,
    /// then the profile.
    fn tls_files(
        &self,
        props: &std::collections::HashMap<String, String>,
        settings: &Settings,
    ) -> TlsFiles {
        let pick =
            |flag: &Option<std::path::PathBuf>, key: &str, setting: &Option<std::path::PathBuf>| {
                flag.clone()
                    .or_else(|| props.get(key).map(std::path::PathBuf::from))
                    .or_else(|| setting.clone())
            };
        TlsFiles {
            ca_file: pick(&self.tls_ca_file, "ssl.ca.location", &settings.ca_file),
            cert_file: pick(
                &self.tls_cert_file,
                "ssl.certificate.location",
                &settings.cert_file,
            ),
            key_file: pick(&self.tls_key_file, "ssl.key.location", &settings.key_file),
        }
    }

    /// True when connections start with a TLS handshake: SSL or SASL_SSL
    /// asked for, or no protocol named but a TLS file given.
    pub fn uses_tls(&self) -> Result<bool, CliError> {
        let props = self.properties()?;
        let settings = self.settings()?;
        let files = self.tls_files(&props, &settings);
        Ok(match self.protocol(&props, &settings)? {
            Some(p) => p.uses_tls(),
            None => files != TlsFiles::default(),
        })
    }

    /// The TLS config for SSL and SASL_SSL (see [`ConnArgs::uses_tls`]):
    /// trusts `--tls-ca-file` only (no platform roots are linked in, and
    /// there is no switch to skip verification) and, for mutual TLS,
    /// presents `--tls-cert-file` with `--tls-key-file`.
    pub fn tls(&self) -> Result<Option<std::sync::Arc<rustls::ClientConfig>>, CliError> {
        use sluice_broker::tls::{load_certificates, load_private_key, load_roots};
        if !self.uses_tls()? {
            return Ok(None);
        }
        let files = self.tls_files(&self.properties()?, &self.settings()?);
        let tls_error = |e: sluice_broker::tls::TlsError| CliError::Usage(e.to_string());
        let Some(ca_file) = &files.ca_file else {
            return Err(CliError::Usage(
                "TLS needs the CA that signed the broker's certificate: --tls-ca-file FILE (ssl.ca.location)".to_owned(),
            ));
        };
        let roots = load_roots("--tls-ca-file", ca_file).map_err(tls_error)?;
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| CliError::Other(format!("TLS: {e}")))?
            .with_root_certificates(roots);
        let config = match (&files.cert_file, &files.key_file) {
            (Some(cert), Some(key)) => builder
                .with_client_auth_cert(
                    load_certificates("--tls-cert-file", cert).map_err(tls_error)?,
                    load_private_key("--tls-key-file", key).map_err(tls_error)?,
                )
                .map_err(|e| {
                    CliError::Usage(format!(
                        "--tls-cert-file {} and --tls-key-file {}: {e}",
                        cert.display(),
                        key.display()
                    ))
                })?,
            (None, None) => builder.with_no_client_auth(),
            _ => {
                return Err(CliError::Usage(
                    "mutual TLS needs both --tls-cert-file and --tls-key-file (ssl.certificate.location and ssl.key.location)".to_owned(),
                ));
            }
        };
        Ok(Some(std::sync::Arc::new(config)))
    }

    /// The bootstrap servers: `-b` (or SLUICE_BOOTSTRAP), `-X brokers=`,
    /// the profile's, else [`DEFAULT_BOOTSTRAP`].
    pub fn bootstrap(&self) -> Result<String, CliError> {
        if let Some(b) = &self.bootstrap {
            return Ok(b.clone());
        }
        Ok(self
            .settings()?
            .brokers
            .unwrap_or_else(|| DEFAULT_BOOTSTRAP.to_owned()))
    }

    /// Connects, with a short connect timeout so an unreachable broker
    /// fails in seconds rather than after every retry.
    pub async fn connect(&self) -> Result<Client, CliError> {
        let mut config = ClientConfig::new(&self.bootstrap()?);
        config.conn.client_id = "sluice-cli".to_owned();
        config.conn.connect_timeout = Duration::from_secs(5);
        config.conn.request_timeout = self.request_timeout;
        config.conn.sasl = self.sasl()?;
        config.conn.tls = self.tls()?;
        config.retries = 2;
        let tls = config.conn.tls.is_some();
        Client::connect(config)
            .await
            .map_err(|e| with_listener_hint(e, tls))
    }

    /// SASL credentials from the flags and `--command-config`, if any.
    pub fn sasl(&self) -> Result<Option<sluice_client::conn::SaslOptions>, CliError> {
        let props = self.properties()?;
        // Each setting: the flag, then --command-config, then -X, then
        // the profile.
        let settings = self.settings()?;
        let protocol = self.protocol(&props, &settings)?;
        if let Some(token) = self.oauthbearer_token(&props)? {
            return Ok(Some(sluice_client::conn::SaslOptions::oauthbearer(token)));
        }
        let read_password = |path: &std::path::Path| -> Result<String, CliError> {
            Ok(without_newline(&std::fs::read_to_string(path).map_err(
                CliError::io(format!("reading {}", path.display())),
            )?))
        };
        let password = match (&self.sasl_password_file, props.get("sasl.password")) {
            (Some(path), _) => Some(read_password(path)?),
            (None, Some(p)) => Some(p.clone()),
            (None, None) => match (settings.password, &settings.password_file) {
                (Some(p), _) => Some(p),
                (None, Some(path)) => Some(read_password(path)?),
                (None, None) => None,
            },
        };
        let mechanism = self
            .sasl_mechanism
            .clone()
            .or_else(|| props.get("sasl.mechanism").cloned())
            .or(settings.mechanism);
        let username = self
            .sasl_username
            .clone()
            .or_else(|| props.get("sasl.username").cloned())
            .or(settings.username);
        let wanted = protocol.is_some_and(SecurityProtocol::uses_sasl)
            || mechanism.is_some()
            || username.is_some()
            || password.is_some();
        if !wanted {
            return Ok(None);
        }
        match (username, password) {
            (Some(username), Some(password)) => Ok(Some(sluice_client::conn::SaslOptions {
                mechanism: mechanism.unwrap_or_else(|| "SCRAM-SHA-512".to_owned()),
                username,
                password,
            })),
            _ => Err(CliError::Usage(
                "SASL needs a user name and a password (--sasl-username and --sasl-password-file, or sasl.username and sasl.password in --command-config)".to_owned(),
            )),
        }
    }
}

impl ConnArgs {
    /// The OAUTHBEARER token, if OAUTHBEARER is asked for (by
    /// `--sasl-oauthbearer-token-file`, or by the mechanism with a token
    /// in `--command-config`).
    fn oauthbearer_token(
        &self,
        props: &std::collections::HashMap<String, String>,
    ) -> Result<Option<String>, CliError> {
        let read = |path: &std::path::Path| -> Result<String, CliError> {
            Ok(without_newline(&std::fs::read_to_string(path).map_err(
                CliError::io(format!("reading {}", path.display())),
            )?))
        };
        if let Some(path) = &self.sasl_oauthbearer_token_file {
            return read(path).map(Some);
        }
        let mechanism = self
            .sasl_mechanism
            .as_deref()
            .or_else(|| props.get("sasl.mechanism").map(String::as_str));
        if mechanism != Some("OAUTHBEARER") {
            return Ok(None);
        }
        if let Some(token) = props.get("sasl.oauthbearer.token") {
            return Ok(Some(token.clone()));
        }
        match props.get("sasl.oauthbearer.token.file") {
            Some(path) => read(std::path::Path::new(path)).map(Some),
            None => Err(CliError::Usage(
                "OAUTHBEARER needs a token (--sasl-oauthbearer-token-file, or sasl.oauthbearer.token or sasl.oauthbearer.token.file in --command-config)".to_owned(),
            )),
        }
    }
}

/// Says in one line what usually lies behind a failed first connection:
/// `-b` pointing at the broker's HTTP port, a TLS handshake that failed
/// (an untrusted certificate, a plaintext listener), or a plaintext
/// request answered in TLS. `tls`: whether the connection spoke TLS.
pub fn with_listener_hint(e: ClientError, tls: bool) -> CliError {
    let last = match &e {
        ClientError::NoBrokerReachable { source, .. } => source.as_ref(),
        other => other,
    };
    match last {
        ClientError::HttpAnswer { addr } => CliError::Usage(format!(
            "{addr} answered with HTTP; -b needs the Kafka listener (default 127.0.0.1:9092)"
        )),
        // The first bytes of a TLS record (an alert or a handshake, then
        // version 3.x) read as a Kafka frame length.
        ClientError::BadFrameLength { addr, length, .. }
            if !tls && matches!(length >> 16, 0x1503 | 0x1603) =>
        {
            CliError::Other(format!(
                "{addr}: the broker answered in TLS (an SSL or SASL_SSL listener? see --security-protocol and --tls-ca-file)"
            ))
        }
        // A TLS listener usually answers a plaintext request with an
        // alert (above), but its close may overtake the alert.
        ClientError::Disconnected { addr } if !tls => plaintext_closed(addr),
        ClientError::Io { addr, source } if !tls && is_closed(source) => plaintext_closed(addr),
        ClientError::Connect { addr, source } if tls => match tls_failure(source) {
            Some(reason) => CliError::Other(format!("{addr}: TLS handshake failed: {reason}")),
            None => e.into(),
        },
        // After our side of the handshake: a broker that refuses our
        // certificate (or its absence) sends an alert and closes, and the
        // close may overtake the alert (a reset drops what we had not
        // read yet).
        ClientError::Io { addr, source } if tls => match tls_failure(source) {
            Some(reason) => CliError::Other(format!("{addr}: TLS handshake failed: {reason}")),
            None if is_closed(source) => closed_after_handshake(addr),
            None => e.into(),
        },
        ClientError::Disconnected { addr } if tls => closed_after_handshake(addr),
        _ => e.into(),
    }
}

/// True for the ways a peer's close shows on a socket.
fn is_closed(source: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        source.kind(),
        ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
    )
}

/// The broker closed a plaintext connection before answering its first
/// request: what a TLS listener does with one.
fn plaintext_closed(addr: &str) -> CliError {
    CliError::Other(format!(
        "{addr} closed the connection before answering (an SSL or SASL_SSL listener? see --security-protocol and --tls-ca-file)"
    ))
}

/// The broker closed a TLS connection before answering its first request
/// (a refused client certificate, or a SASL_SSL listener spoken to as SSL).
fn closed_after_handshake(addr: &str) -> CliError {
    CliError::Other(format!(
        "{addr}: the broker closed the TLS connection before answering (does it require a client certificate, --tls-cert-file and --tls-key-file, or SASL, --security-protocol SASL_SSL?)"
    ))
}

/// Why a TLS handshake failed, in words that point at the flag to fix, or
/// `None` when `source` is not a TLS failure (a refused TCP connect).
fn tls_failure(source: &std::io::Error) -> Option<String> {
    use rustls::{AlertDescription, CertificateError, Error};
    let Some(error) = source
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<Error>())
    else {
        return is_closed(source).then(|| {
            "the broker closed the connection (a PLAINTEXT or SASL_PLAINTEXT listener? see --security-protocol)".to_owned()
        });
    };
    Some(match error {
        Error::InvalidCertificate(CertificateError::UnknownIssuer | CertificateError::BadSignature) => {
            "certificate not trusted (--tls-ca-file?)".to_owned()
        }
        Error::InvalidCertificate(CertificateError::NotValidForName) => {
            "the certificate does not name the host in -b (use a name or IP it lists)".to_owned()
        }
        Error::InvalidCertificate(CertificateError::Expired) => {
            "the broker's certificate has expired".to_owned()
        }
        Error::InvalidCertificate(other) => format!("bad broker certificate: {other:?}"),
        Error::AlertReceived(AlertDescription::CertificateRequired) => {
            "the broker requires a client certificate (--tls-cert-file and --tls-key-file)"
                .to_owned()
        }
        Error::AlertReceived(
            AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateUnknown
            | AlertDescription::AccessDenied,
        ) => "the broker refused our client certificate (--tls-cert-file?)".to_owned(),
        Error::InvalidMessage(_) | Error::InappropriateMessage { .. } => {
            "the broker does not speak TLS there (a PLAINTEXT or SASL_PLAINTEXT listener? see --security-protocol)".to_owned()
        }
        other => other.to_string(),
    })
}

/// Adds to "topic does not exist" the command that creates it.
pub fn with_create_hint(e: ClientError) -> CliError {
    match e {
        ClientError::UnknownTopic { topic } => CliError::Other(format!(
            "topic '{topic}' does not exist; create it with: sluice topic create {topic}"
        )),
        other => other.into(),
    }
}

/// A command failure: printed as one `error: ...` line, exit status 1.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// From the client library.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Local I/O (stdin, files, stdout).
    #[error("{context}: {source}")]
    Io {
        /// What we were doing.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A bad argument combination or value clap could not catch.
    #[error("{0}")]
    Usage(String),
    /// The CLI's profiles file.
    #[error(transparent)]
    Profile(#[from] crate::profile_store::ProfileError),
    /// A task of ours panicked or was cancelled.
    #[error("{task} task failed: {source}")]
    Task {
        /// Which task.
        task: &'static str,
        /// What tokio reported.
        #[source]
        source: tokio::task::JoinError,
    },
    /// Anything else worth one line (HTTP status, missing process...).
    #[error("{0}")]
    Other(String),
}

impl CliError {
    /// An I/O error with context.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> CliError {
        let context = context.into();
        move |source| CliError::Io { context, source }
    }
}

/// Runs an async command on a fresh runtime and maps the result to an exit code.
pub fn run<F>(fut: F) -> std::process::ExitCode
where
    F: std::future::Future<Output = Result<(), CliError>>,
{
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(fut) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Parses `10s`, `500ms`, `2m` (humantime) or a bare number of milliseconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if let Ok(ms) = s.parse::<u64>() {
        return Ok(Duration::from_millis(ms));
    }
    humantime::parse_duration(s)
        .map_err(|e| format!("'{s}' is not a duration like 10s or 500ms: {e}"))
}

/// Parses a compression codec name.
pub fn parse_compression(s: &str) -> Result<Compression, String> {
    match s {
        "none" => Ok(Compression::None),
        "gzip" => Ok(Compression::Gzip),
        "snappy" => Ok(Compression::Snappy),
        "lz4" => Ok(Compression::Lz4),
        "zstd" => Ok(Compression::Zstd),
        other => Err(format!(
            "'{other}' is not one of none, gzip, snappy, lz4, zstd"
        )),
    }
}

/// Parses `key=value`.
pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("'{s}' is not key=value")),
    }
}

/// Parses an RFC 3339 date-time (`2026-11-23T10:00:00Z`, seconds optional,
/// or a bare date) or a number of ms since the epoch, into ms since the epoch.
pub fn parse_datetime_ms(s: &str) -> Result<i64, String> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    let candidates = [
        s.to_owned(),
        format!("{s}:00"),
        format!("{s}T00:00:00"),
        s.replace(' ', "T"),
    ];
    for c in candidates {
        let c = c.trim_end_matches('Z');
        if let Ok(t) = humantime::parse_rfc3339_weak(c) {
            return t
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .map_err(|_| format!("'{s}' is before 1970"));
        }
    }
    Err(format!(
        "'{s}' is not a date-time like 2026-11-23T10:00:00Z or ms since the epoch"
    ))
}

/// Formats ms since the epoch as RFC 3339 UTC with milliseconds.
pub fn format_ms(ms: i64) -> String {
    if ms < 0 {
        return "-".to_owned();
    }
    let t = std::time::UNIX_EPOCH + Duration::from_millis(ms as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

/// Human-readable byte count.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Prints rows as left-aligned columns under a header.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        println!("{}", s.trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row.clone());
    }
}

/// Percent-encodes text for a URL path segment or query value (subjects,
/// topics and keys may hold `/`, `:`, `&`, spaces and non-ASCII).
pub fn percent_encode(segment: &str) -> String {
    let mut out = String::new();
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The broker config (read-only, not Kafka's) in which a Sluice broker
/// names its HTTP listener.
const HTTP_LISTENER_CONFIG: &str = "sluice.http.listener";

/// The HTTP API of the broker a command is connected to, checked to be
/// that broker's: `/v1/cluster` answered there with the cluster id (and
/// node id) the Kafka side reports.
pub struct BrokerHttp {
    /// host:port of the HTTP listener.
    pub addr: String,
    /// The `/v1/cluster` document.
    pub cluster: serde_json::Value,
}

/// Finds the HTTP API of the broker `client` reached through `-b`, so
/// figures from HTTP (disk use, uptime, sizes) never describe another
/// broker. With `explicit` (`--http-server` or `SLUICE_HTTP`) that address
/// is used, and refused if it belongs to another cluster or broker.
/// Without it the broker's `sluice.http.listener` config names it (a bind
/// to all interfaces is reached on the `-b` host), else the default
/// 127.0.0.1:8080 is tried and skipped if it is another broker's.
/// `Ok(None)`: no HTTP API of this broker answered.
pub async fn broker_http(
    client: &Client,
    explicit: Option<&str>,
) -> Result<Option<BrokerHttp>, CliError> {
    let md = client.metadata();
    let kafka_addr = client.any_connection().await?.addr().to_owned();
    // The broker we talk to: the one advertising the address we reached,
    // or the only one.
    let node_id = md
        .brokers
        .values()
        .find(|b| b.addr() == kafka_addr)
        .or_else(|| {
            (md.brokers.len() == 1)
                .then(|| md.brokers.values().next())
                .flatten()
        })
        .map(|b| b.node_id);
    let addr = match explicit {
        Some(addr) => addr.to_owned(),
        None => match advertised_http(client, node_id, &kafka_addr).await {
            Some(addr) => addr,
            None => DEFAULT_HTTP.to_owned(),
        },
    };
    let Ok(body) = http_get(&addr, "/v1/cluster", Duration::from_secs(2)).await else {
        return Ok(None);
    };
    let Ok(cluster) = serde_json::from_str::<serde_json::Value>(&body) else {
        return Ok(None);
    };
    let http_cluster = cluster.get("cluster_id").and_then(|v| v.as_str());
    let http_node = cluster.get("node_id").and_then(|v| v.as_i64());
    let same_cluster = http_cluster.is_some() && http_cluster == md.cluster_id.as_deref();
    let same_node = node_id.is_none_or(|n| http_node == Some(i64::from(n)));
    if same_cluster && same_node {
        return Ok(Some(BrokerHttp { addr, cluster }));
    }
    if explicit.is_none() {
        // A default that happens to be another broker's: leave HTTP
        // figures unknown rather than mix two brokers.
        return Ok(None);
    }
    let show = |v: Option<&str>| v.unwrap_or("unknown").to_owned();
    Err(CliError::Usage(format!(
        "--http-server {addr} is the HTTP API of cluster {} node {}, but -b {kafka_addr} reached cluster {} node {}; give the HTTP address of the broker at {kafka_addr}, or leave --http-server out to ask that broker",
        show(http_cluster),
        http_node.map_or_else(|| "unknown".to_owned(), |n| n.to_string()),
        show(md.cluster_id.as_deref()),
        node_id.map_or_else(|| "unknown".to_owned(), |n| n.to_string()),
    )))
}

/// Where brokers serve HTTP unless configured otherwise.
const DEFAULT_HTTP: &str = "127.0.0.1:8080";

/// The HTTP listener broker `node_id` names in its configs, with a
/// wildcard host replaced by the host we reached it on.
async fn advertised_http(
    client: &Client,
    node_id: Option<i32>,
    kafka_addr: &str,
) -> Option<String> {
    let admin = sluice_client::Admin::new(client.clone());
    let configs = admin.describe_broker_config(node_id?).await.ok()?;
    let listener = configs
        .into_iter()
        .find(|c| c.name == HTTP_LISTENER_CONFIG)?
        .value?;
    let (host, port) = listener.rsplit_once(':')?;
    let wildcard = matches!(host, "" | "0.0.0.0" | "::" | "[::]");
    Some(if wildcard {
        let (kafka_host, _) = kafka_addr.rsplit_once(':')?;
        format!("{kafka_host}:{port}")
    } else {
        listener
    })
}

/// One call to a JSON API on one of the broker's HTTP listeners: the JSON
/// of a 2xx answer, else a [`CliError`] reading `{what} error <error_code>
/// (HTTP <status>): <message>` from the error body. `hint` follows a
/// connection failure (which flag names the address).
pub async fn http_json(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    timeout: Duration,
    (what, hint): (&str, &str),
) -> Result<serde_json::Value, CliError> {
    use serde_json::Value;
    let (status, text) = http_request(addr, method, path, body, timeout)
        .await
        .map_err(|e| match e {
            CliError::Io { context, source } => {
                CliError::Other(format!("{context}: {source} ({hint})"))
            }
            other => other,
        })?;
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if (200..300).contains(&status) {
        return Ok(value);
    }
    let code = value
        .get("error_code")
        .cloned()
        .unwrap_or(Value::from(status));
    let code = code
        .as_str()
        .map_or_else(|| code.to_string(), str::to_owned);
    let message = value
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("no message");
    Err(CliError::Other(format!(
        "{what} error {code} (HTTP {status}): {message}"
    )))
}

/// A minimal HTTP/1.1 GET for the broker's own HTTP API (plain text, local).
/// Returns the body of a 2xx response.
pub async fn http_get(addr: &str, path: &str, timeout: Duration) -> Result<String, CliError> {
    let (status, body) = http_request(addr, "GET", path, None, timeout).await?;
    if !(200..300).contains(&status) {
        return Err(CliError::Other(format!("HTTP {status} from {addr}{path}")));
    }
    Ok(body)
}

/// A minimal HTTP/1.1 request to one of the broker's own HTTP listeners
/// (plain text): `method` on `path`, with a JSON `body` if given. Returns
/// the status and the body, whatever the status.
pub async fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    timeout: Duration,
) -> Result<(u16, String), CliError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fut = async {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(CliError::io(format!(
                "cannot connect to HTTP API at {addr}"
            )))?;
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\nConnection: close\r\n"
        );
        if let Some(body) = body {
            request.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        request.push_str("\r\n");
        if let Some(body) = body {
            request.push_str(body);
        }
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(CliError::io("HTTP request"))?;
        let mut raw = Vec::new();
        // Responses we read are small JSON documents; 16 MiB is far beyond any.
        (&mut stream)
            .take(16 * 1024 * 1024)
            .read_to_end(&mut raw)
            .await
            .map_err(CliError::io("HTTP response"))?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| CliError::Other(format!("malformed HTTP response from {addr}")))?;
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(0);
        let chunked = head.lines().any(|l| {
            l.to_ascii_lowercase().starts_with("transfer-encoding:")
                && l.to_ascii_lowercase().contains("chunked")
        });
        Ok((
            status,
            if chunked {
                dechunk(body)
            } else {
                body.to_owned()
            },
        ))
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| CliError::Other(format!("HTTP API at {addr} did not answer in {timeout:?}")))?
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Connection flags with none set but a bootstrap and `--command-config props`.
    fn with_properties(props: &std::path::Path) -> ConnArgs {
        ConnArgs {
            bootstrap: Some("x:1".to_owned()),
            profile: None,
            overrides: Vec::new(),
            request_timeout: Duration::from_secs(1),
            sasl_mechanism: None,
            sasl_username: None,
            sasl_password_file: None,
            sasl_oauthbearer_token_file: None,
            command_config: Some(props.to_owned()),
            security_protocol: None,
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
        }
    }

    #[test]
    fn command_config_properties_give_sasl_credentials_and_flags_win() {
        let dir = tempfile::tempdir().expect("tempdir");
        let props = dir.path().join("client.properties");
        std::fs::write(
            &props,
            "# admin\nsecurity.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-256\nsasl.username = alice\nsasl.password=pw\n",
        )
        .expect("write");
        let args = |mechanism: Option<&str>| ConnArgs {
            sasl_mechanism: mechanism.map(str::to_owned),
            ..with_properties(&props)
        };
        let sasl = args(None).sasl().expect("ok").expect("sasl");
        assert_eq!(
            (
                sasl.mechanism.as_str(),
                sasl.username.as_str(),
                sasl.password.as_str()
            ),
            ("SCRAM-SHA-256", "alice", "pw")
        );
        let sasl = args(Some("PLAIN")).sasl().expect("ok").expect("sasl");
        assert_eq!(sasl.mechanism, "PLAIN");
        let none = ConnArgs {
            command_config: None,
            ..args(None)
        };
        assert!(
            none.sasl().expect("ok").is_none(),
            "no SASL without settings"
        );
        std::fs::write(&props, "security.protocol=SASL_PLAINTEXT\n").expect("write");
        assert!(
            args(None).sasl().is_err(),
            "SASL without credentials is a usage error"
        );
    }

    #[test]
    fn oauthbearer_tokens_come_from_a_flag_file_or_the_command_config() {
        let dir = tempfile::tempdir().expect("tempdir");
        let props = dir.path().join("client.properties");
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, "file.token.sig\n").expect("write");
        let args = with_properties(&props);
        std::fs::write(
            &props,
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=OAUTHBEARER\nsasl.oauthbearer.token=inline.token.\n",
        )
        .expect("write");
        let sasl = args.sasl().expect("ok").expect("sasl");
        assert_eq!(
            (sasl.mechanism.as_str(), sasl.password.as_str()),
            ("OAUTHBEARER", "inline.token.")
        );
        std::fs::write(
            &props,
            format!(
                "sasl.mechanism=OAUTHBEARER\nsasl.oauthbearer.token.file={}\n",
                token_file.display()
            ),
        )
        .expect("write");
        assert_eq!(
            args.sasl().expect("ok").expect("sasl").password,
            "file.token.sig"
        );
        // The flag alone is enough and wins over the properties.
        let flag = ConnArgs {
            sasl_oauthbearer_token_file: Some(token_file.clone()),
            command_config: None,
            ..args.clone()
        };
        let sasl = flag.sasl().expect("ok").expect("sasl");
        assert_eq!(
            (sasl.mechanism.as_str(), sasl.password.as_str()),
            ("OAUTHBEARER", "file.token.sig")
        );
        std::fs::write(&props, "sasl.mechanism=OAUTHBEARER\n").expect("write");
        assert!(args.sasl().is_err(), "OAUTHBEARER without a token");
    }

    #[test]
    fn tls_settings_come_from_flags_properties_and_x_and_ssl_needs_a_ca() {
        let dir = tempfile::tempdir().expect("tempdir");
        let props = dir.path().join("client.properties");
        let args = with_properties(&props);
        std::fs::write(&props, "security.protocol=ssl\n").expect("write");
        assert!(args.uses_tls().expect("ok"), "SSL, case-insensitive");
        let err = args.tls().expect_err("SSL without a CA file").to_string();
        assert!(err.contains("--tls-ca-file"), "{err}");
        // Flags win over the properties file.
        let plain = ConnArgs {
            security_protocol: Some(SecurityProtocol::Plaintext),
            ..args.clone()
        };
        assert!(plain.tls().expect("ok").is_none());
        // A CA file alone implies SSL; one that is not PEM names its flag.
        let not_pem = dir.path().join("ca.pem");
        std::fs::write(&not_pem, "not a certificate\n").expect("write");
        std::fs::write(&props, "").expect("write");
        let x = ConnArgs {
            overrides: vec![("ssl.ca.location".to_owned(), not_pem.display().to_string())],
            ..args.clone()
        };
        assert!(x.uses_tls().expect("ok"));
        let err = x.tls().expect_err("not PEM").to_string();
        assert!(err.starts_with("--tls-ca-file"), "{err}");
        std::fs::write(&props, "security.protocol=TLS\n").expect("write");
        let err = args.sasl().expect_err("unknown protocol").to_string();
        assert!(err.contains("security.protocol"), "{err}");
        // SASL_SSL asks for SASL credentials as SASL_PLAINTEXT does.
        std::fs::write(&props, "security.protocol=SASL_SSL\n").expect("write");
        assert!(args.sasl().is_err(), "SASL_SSL without credentials");
    }

    #[test]
    fn datetimes_parse_in_several_shapes() {
        assert_eq!(parse_datetime_ms("1970-01-01T00:00:01Z"), Ok(1000));
        assert_eq!(parse_datetime_ms("1970-01-02"), Ok(86_400_000));
        assert_eq!(parse_datetime_ms("1234"), Ok(1234));
        assert!(parse_datetime_ms("yesterday-ish").is_err());
    }

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(dechunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), "abcde");
    }
}
