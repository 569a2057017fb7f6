//! TLS for SSL and SASL_SSL listeners: the server certificate from PEM
//! files, client certificates (mutual TLS) and the principal they carry,
//! and certificate reload without a restart.
//!
//! - [`ServerTls`] builds a rustls [`ServerConfig`] from the `[tls]`
//!   section's files and rebuilds it when they change
//!   ([`ServerTls::run_reload`]); a file that does not load keeps the old
//!   config and logs why. New connections take the config current when
//!   they are accepted; open ones keep theirs.
//! - [`TlsAcceptor`] is a [`crate::server::Acceptor`] over a TCP listener.
//!   Accepting only takes the TCP connection; the handshake runs in the
//!   connection's own task, bounded by [`TLS_HANDSHAKE_TIMEOUT`], so a slow
//!   or hostile client never holds the accept loop.
//! - [`PrincipalMapper`] is Kafka's `ssl.principal.mapping.rules`: a client
//!   certificate's subject, in RFC 2253 form as Java's
//!   `X500Principal.getName()` writes it ([`rfc2253_subject`]), becomes the
//!   principal `User:<mapped name>`; no client certificate is
//!   `User:ANONYMOUS`, as in Kafka.
//!
//! Only the ring crypto provider is linked (see `KAFKA-NOTES.md`: two
//! providers and no default make rustls panic), and every config is built
//! with it explicitly.
//!
//! This module owns no socket beyond the handshake; the request loop is
//! [`crate::server`]'s.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use sluice_runtime::CancellationToken;
use tokio::net::{TcpListener, TcpStream};

use crate::Principal;
use crate::config::{ClientAuth, TlsSection};
pub use crate::principal_map::{MappingError, PrincipalMapper};
use crate::server::{Acceptor, Established, Handshake};

/// How long a client gets to finish the TLS handshake. Kafka bounds it
/// only by `connections.max.idle.ms`; a handshake is a few round trips, so
/// ten seconds is generous on any network and frees a connection slot held
/// by a client that never sends its hello.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Most certificates read from one PEM file (a chain or a CA bundle): far
/// above any real chain or bundle, and a bound on what a wrong file (a
/// huge concatenation) can make the broker hold.
pub const MAX_PEM_CERTIFICATES: usize = 1024;

/// Why TLS could not be set up, or a client certificate not mapped.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or holds no valid PEM.
    #[error("{key} `{path}`: {message}")]
    File {
        /// The config key naming the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A required file is not configured.
    #[error("{0} is required for TLS")]
    Missing(&'static str),
    /// rustls refused the certificate, key or CAs (a key that does not
    /// match the certificate, an unusable CA).
    #[error("TLS config: {0}")]
    Config(String),
    /// `tls.principal_mapping_rules` does not parse, or no rule applies to
    /// a client certificate's subject.
    #[error(transparent)]
    Mapping(#[from] MappingError),
    /// A client certificate could not be parsed.
    #[error("client certificate: {0}")]
    Certificate(String),
}

fn file_error(key: &'static str, path: &Path, message: impl Into<String>) -> TlsError {
    TlsError::File {
        key,
        path: path.to_owned(),
        message: message.into(),
    }
}

/// The crypto provider every config uses.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads every certificate of a PEM file (at least one).
pub fn load_certificates(
    key: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let iter =
        CertificateDer::pem_file_iter(path).map_err(|e| file_error(key, path, e.to_string()))?;
    let mut certs = Vec::new();
    for cert in iter {
        let cert = cert.map_err(|e| file_error(key, path, e.to_string()))?;
        if certs.len() == MAX_PEM_CERTIFICATES {
            return Err(file_error(
                key,
                path,
                format!("more than {MAX_PEM_CERTIFICATES} certificates"),
            ));
        }
        certs.push(cert);
    }
    if certs.is_empty() {
        return Err(file_error(key, path, "holds no PEM certificate"));
    }
    Ok(certs)
}

/// Reads the private key of a PEM file.
pub fn load_private_key(
    key: &'static str,
    path: &Path,
) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| file_error(key, path, e.to_string()))
}

/// A store of the CA certificates in `path`.
pub fn load_roots(key: &'static str, path: &Path) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in load_certificates(key, path)? {
        roots
            .add(cert)
            .map_err(|e| file_error(key, path, format!("not a usable CA: {e}")))?;
    }
    Ok(roots)
}

/// Builds a server config from the `[tls]` files, asking for client
/// certificates as `client_auth` says.
fn build_server_config(
    section: &TlsSection,
    client_auth: ClientAuth,
) -> Result<ServerConfig, TlsError> {
    let cert_file = section
        .cert_file
        .as_deref()
        .ok_or(TlsError::Missing("tls.cert_file"))?;
    let key_file = section
        .key_file
        .as_deref()
        .ok_or(TlsError::Missing("tls.key_file"))?;
    let certs = load_certificates("tls.cert_file", cert_file)?;
    let key = load_private_key("tls.key_file", key_file)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match (client_auth, section.client_ca_file.as_deref()) {
        (ClientAuth::None, _) | (_, None) => builder.with_no_client_auth(),
        (auth, Some(ca)) => {
            let roots = load_roots("tls.client_ca_file", ca)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
            let verifier = if auth == ClientAuth::Requested {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier
                .build()
                .map_err(|e| TlsError::Config(format!("tls.client_ca_file: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    builder
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(format!("tls.cert_file and tls.key_file: {e}")))
}

/// What a file looked like when last loaded: its modification time and
/// length (a rewrite within the file system's time granularity usually
/// changes the length too).
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// The server side of TLS: the current rustls config, rebuilt when its
/// files change, and the principal mapping rules.
#[derive(Debug)]
pub struct ServerTls {
    /// The files and settings it was built from.
    section: TlsSection,
    /// Whether client certificates are asked for (`none` for HTTP).
    client_auth: ClientAuth,
    /// The config new connections get. A std lock: held only to clone or
    /// swap an `Arc`, never across an await.
    current: RwLock<Arc<ServerConfig>>,
    /// The files' stamps when `current` was built. A std lock, short
    /// sections only, taken by the one reload task.
    stamps: Mutex<Vec<Stamp>>,
    /// Maps client certificate subjects to principal names.
    mapper: PrincipalMapper,
}

impl ServerTls {
    /// Loads the `[tls]` files for a Kafka listener (client certificates
    /// as `tls.client_auth` says).
    pub fn load(section: &TlsSection) -> Result<ServerTls, TlsError> {
        ServerTls::load_with(section, section.client_auth())
    }

    /// Loads the `[tls]` files, asking for client certificates as
    /// `client_auth` says (the HTTP listener asks for none).
    pub fn load_with(section: &TlsSection, client_auth: ClientAuth) -> Result<ServerTls, TlsError> {
        let mapper = PrincipalMapper::parse(&section.principal_mapping_rules)?;
        let stamps = ServerTls::file_stamps(section);
        let config = build_server_config(section, client_auth)?;
        Ok(ServerTls {
            section: section.clone(),
            client_auth,
            current: RwLock::new(Arc::new(config)),
            stamps: Mutex::new(stamps),
            mapper,
        })
    }

    fn file_stamps(section: &TlsSection) -> Vec<Stamp> {
        [
            &section.cert_file,
            &section.key_file,
            &section.client_ca_file,
        ]
        .into_iter()
        .map(|p| p.as_deref().and_then(stamp))
        .collect()
    }

    /// The config a connection accepted now gets.
    pub fn config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// The principal mapping rules.
    pub fn mapper(&self) -> &PrincipalMapper {
        &self.mapper
    }

    /// Rebuilds the config if a file changed since the last load. `Ok(true)`
    /// when a new config is in place; on an error the old config stays
    /// (and the change is retried at the next check).
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let stamps = ServerTls::file_stamps(&self.section);
        let mut last = self.stamps.lock().unwrap_or_else(|p| p.into_inner());
        if *last == stamps {
            return Ok(false);
        }
        let config = build_server_config(&self.section, self.client_auth)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
        *last = stamps;
        Ok(true)
    }

    /// Checks the files every `tls.reload_interval_ms` (never when it is
    /// 0) until `stop`, swapping in a rebuilt config when they change.
    pub async fn run_reload(self: Arc<Self>, stop: CancellationToken) {
        let interval_ms = self.section.reload_interval_ms;
        if interval_ms == 0 {
            return;
        }
        let mut tick = tokio::time::interval(Duration::from_millis(interval_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = stop.cancelled() => return,
            }
            let this = Arc::clone(&self);
            // File reads and key parsing are blocking work.
            match sluice_runtime::blocking("tls-reload", move || this.reload_if_changed()).await {
                Ok(Ok(true)) => tracing::info!(
                    "TLS certificate files changed; new connections use the reloaded certificate"
                ),
                Ok(Ok(false)) => {}
                Ok(Err(e)) => tracing::error!(
                    "TLS certificate files changed but do not load; keeping the previous certificate: {e}"
                ),
                Err(e) => tracing::error!("TLS reload task failed: {e}"),
            }
        }
    }
}

/// TLS on the controller listener: the `[tls]` certificate with client
/// certificates required, and which peers are cluster members. With the
/// authorizer on, a member is a certificate whose mapped principal is in
/// `super_users` (what Kafka's CLUSTER_ACTION on a controller comes to
/// for brokers); with it off, any certificate `tls.client_ca_file` signed.
#[derive(Debug)]
pub struct ControllerTls {
    /// The server config, reloaded by its own task.
    server: Arc<ServerTls>,
    /// `super_users` when the authorizer is on.
    members: Option<Vec<String>>,
}

impl ControllerTls {
    /// Members are certificates whose principal is in `members`, or every
    /// verified certificate when `members` is `None`.
    pub fn new(server: Arc<ServerTls>, members: Option<Vec<String>>) -> ControllerTls {
        ControllerTls { server, members }
    }
}

/// The controller listener takes the config current at each accept, so a
/// reloaded certificate reaches new controller connections too.
impl sluice_quorum::ServerTlsSource for ControllerTls {
    fn server_config(&self) -> Arc<ServerConfig> {
        self.server.config()
    }

    fn admit(&self, certs: &[CertificateDer<'_>]) -> Result<(), String> {
        let Some(members) = &self.members else {
            return Ok(());
        };
        let principal =
            principal_of(Some(certs), &self.server.mapper).map_err(|e| e.to_string())?;
        let name = format!("{}:{}", principal.principal_type, principal.name);
        if members.contains(&name) {
            Ok(())
        } else {
            Err(format!(
                "{name} is not in super_users (the authorizer is on)"
            ))
        }
    }
}

/// A TCP listener whose connections speak TLS.
#[derive(Debug)]
pub struct TlsAcceptor {
    listener: TcpListener,
    tls: Arc<ServerTls>,
}

impl TlsAcceptor {
    /// Serves TLS with `tls`'s current config on `listener`.
    pub fn new(listener: TcpListener, tls: Arc<ServerTls>) -> TlsAcceptor {
        TlsAcceptor { listener, tls }
    }
}

/// A TCP connection accepted on a TLS listener, before its handshake.
#[derive(Debug)]
pub struct TlsConnection {
    stream: TcpStream,
    config: Arc<ServerConfig>,
    tls: Arc<ServerTls>,
}

impl Acceptor for TlsAcceptor {
    type Connection = TlsConnection;

    async fn accept(&self) -> std::io::Result<(TlsConnection, SocketAddr)> {
        let (stream, peer) = self.listener.accept().await?;
        let _ = stream.set_nodelay(true);
        Ok((
            TlsConnection {
                stream,
                config: self.tls.config(),
                tls: Arc::clone(&self.tls),
            },
            peer,
        ))
    }
}

type ServerStream = tokio_rustls::server::TlsStream<TcpStream>;

impl Handshake for TlsConnection {
    type Read = tokio::io::ReadHalf<ServerStream>;
    type Write = tokio::io::WriteHalf<ServerStream>;

    async fn handshake(self) -> std::io::Result<Established<Self::Read, Self::Write>> {
        let acceptor = tokio_rustls::TlsAcceptor::from(self.config);
        let stream = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(self.stream))
            .await
            .map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("TLS handshake not finished within {TLS_HANDSHAKE_TIMEOUT:?}"),
                )
            })??;
        let principal = principal_of(stream.get_ref().1.peer_certificates(), &self.tls.mapper)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::PermissionDenied, e))?;
        let (read, write) = tokio::io::split(stream);
        Ok(Established {
            read,
            write,
            principal,
        })
    }
}

/// The principal of a TLS connection: `User:<mapped subject>` of the
/// client's certificate (the first of its chain), `User:ANONYMOUS` without
/// one.
pub fn principal_of(
    certs: Option<&[CertificateDer<'_>]>,
    mapper: &PrincipalMapper,
) -> Result<Principal, TlsError> {
    let Some(leaf) = certs.and_then(|c| c.first()) else {
        return Ok(Principal::anonymous());
    };
    let subject = rfc2253_subject(leaf)?;
    Ok(Principal {
        principal_type: "User".to_owned(),
        name: mapper.map(&subject)?,
    })
}

/// A certificate's subject in RFC 2253 form as Java's
/// `X500Principal.getName()` writes it (what Kafka maps): the last RDN
/// first, `,` between RDNs and `+` inside one, the RFC's keywords (CN, L,
/// ST, O, OU, C, STREET, DC, UID) and dotted OIDs with `#`-hex values for
/// other attributes, special characters escaped with `\`.
pub fn rfc2253_subject(cert: &CertificateDer<'_>) -> Result<String, TlsError> {
    use x509_parser::der_parser::asn1_rs::ToDer;
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
    let rdns: Vec<String> = parsed
        .subject()
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|atv| {
                    let oid = atv.attr_type().to_id_string();
                    match (keyword(&oid), atv.as_str()) {
                        (Some(k), Ok(value)) => format!("{k}={}", escape_rfc2253(value)),
                        _ => {
                            let der = atv.attr_value().to_der_vec().unwrap_or_default();
                            let hex: String = der.iter().map(|b| format!("{b:02x}")).collect();
                            format!("{oid}=#{hex}")
                        }
                    }
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    Ok(rdns.into_iter().rev().collect::<Vec<_>>().join(","))
}

/// RFC 2253's attribute type keywords (Java writes these by name).
fn keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.6" => "C",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

/// Escapes an attribute value as RFC 2253 section 2.4 says.
fn escape_rfc2253(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The client side of TLS for this broker's own connections to other
/// brokers: trusts `tls.ca_file` (or `tls.client_ca_file`) and presents
/// the broker's certificate, so an inter-broker listener that requires
/// client certificates accepts it.
pub fn inter_broker_client_config(section: &TlsSection) -> Result<rustls::ClientConfig, TlsError> {
    let trust = section
        .trust_file()
        .ok_or(TlsError::Missing("tls.ca_file (or tls.client_ca_file)"))?;
    let roots = load_roots("tls.ca_file", trust)?;
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots);
    match (&section.cert_file, &section.key_file) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(
                load_certificates("tls.cert_file", cert)?,
                load_private_key("tls.key_file", key)?,
            )
            .map_err(|e| TlsError::Config(format!("tls.cert_file and tls.key_file: {e}"))),
        _ => Ok(builder.with_no_client_auth()),
    }
}

#[cfg(test)]
mod tests;
