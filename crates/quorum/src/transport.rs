//! How the controller listener's bytes travel: plain TCP, or TLS with a
//! certificate required on both ends (mutual TLS), so that only nodes
//! holding a certificate from the cluster's CA take part in Raft or
//! reach the active controller.
//!
//! This crate builds no TLS config: the broker loads the certificate
//! files (and reloads them) and hands over rustls configs through
//! [`ServerTlsSource`] and [`ClientTransport`]. It owns only the
//! handshake on each connection and its bound.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// How long either side gets to finish a TLS handshake on the controller
/// listener: a handshake is a few round trips on a cluster's network, and
/// the bound frees a connection slot held by a peer that never finishes.
pub const CONTROLLER_HANDSHAKE_TIMEOUT_MS: u64 = 10_000;

/// A byte stream to or from a peer: TCP, or TLS over it.
pub trait PeerStream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> PeerStream for T {}

/// The server side of TLS on the controller listener: the config a
/// connection accepted now gets. The source reloads certificate files;
/// open connections keep the config they were accepted with.
pub trait ServerTlsSource: Send + Sync + std::fmt::Debug {
    /// The current server config. It must require client certificates;
    /// [`accept`] refuses a peer without one in any case.
    fn server_config(&self) -> Arc<rustls::ServerConfig>;

    /// Whether the peer presenting `certs` (its chain, leaf first, already
    /// verified against the CA) may use the controller listener; `Err`
    /// says why not. Every verified peer by default.
    fn admit(&self, certs: &[CertificateDer<'_>]) -> Result<(), String> {
        let _ = certs;
        Ok(())
    }
}

/// The client side of the controller protocol's transport.
#[derive(Debug, Clone, Default)]
pub enum ClientTransport {
    /// Plain TCP.
    #[default]
    Plain,
    /// TLS: the config trusts the cluster's CA and presents this node's
    /// certificate.
    Tls(Arc<rustls::ClientConfig>),
}

/// Why a transport could not be established.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The TLS handshake failed (an untrusted certificate, no
    /// certificate, not TLS at all).
    #[error("TLS handshake: {0}")]
    Handshake(#[source] std::io::Error),
    /// The handshake took longer than [`CONTROLLER_HANDSHAKE_TIMEOUT_MS`].
    #[error("TLS handshake not finished within {CONTROLLER_HANDSHAKE_TIMEOUT_MS} ms")]
    Timeout,
    /// The peer presented no client certificate.
    #[error("the peer presented no client certificate")]
    NoCertificate,
    /// The peer's certificate is valid but names no cluster member.
    #[error("the peer's certificate is not a cluster member's: {0}")]
    NotAdmitted(String),
    /// The address has no host a certificate can be checked against.
    #[error("`{0}` has no host name or IP address to verify the certificate against")]
    ServerName(String),
}

fn handshake_timeout() -> Duration {
    Duration::from_millis(CONTROLLER_HANDSHAKE_TIMEOUT_MS)
}

impl ClientTransport {
    /// Wraps a connected `stream` to `addr` (`host:port`), running the TLS
    /// handshake if this transport uses TLS and checking the server's
    /// certificate against the host.
    pub async fn wrap(
        &self,
        stream: TcpStream,
        addr: &str,
    ) -> Result<Box<dyn PeerStream>, TransportError> {
        let config = match self {
            ClientTransport::Plain => return Ok(Box::new(stream)),
            ClientTransport::Tls(config) => Arc::clone(config),
        };
        let host = addr
            .rsplit_once(':')
            .map_or(addr, |(host, _)| host)
            .trim_matches(['[', ']']);
        let name = ServerName::try_from(host.to_owned())
            .map_err(|_| TransportError::ServerName(addr.to_owned()))?;
        let connect = tokio_rustls::TlsConnector::from(config).connect(name, stream);
        let tls = tokio::time::timeout(handshake_timeout(), connect)
            .await
            .map_err(|_| TransportError::Timeout)?
            .map_err(TransportError::Handshake)?;
        Ok(Box::new(tls))
    }
}

/// Runs the server side of an accepted connection's transport: TLS with a
/// required client certificate when `tls` is set, plain TCP otherwise.
pub async fn accept(
    stream: TcpStream,
    tls: Option<&Arc<dyn ServerTlsSource>>,
) -> Result<Box<dyn PeerStream>, TransportError> {
    let Some(tls) = tls else {
        return Ok(Box::new(stream));
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.server_config());
    let stream = tokio::time::timeout(handshake_timeout(), acceptor.accept(stream))
        .await
        .map_err(|_| TransportError::Timeout)?
        .map_err(TransportError::Handshake)?;
    // The config should already have refused a peer without a
    // certificate; a config that only asks for one must not let an
    // anonymous peer into the quorum.
    let certs = match stream.get_ref().1.peer_certificates() {
        Some(certs) if !certs.is_empty() => certs,
        _ => return Err(TransportError::NoCertificate),
    };
    tls.admit(certs).map_err(TransportError::NotAdmitted)?;
    Ok(Box::new(stream))
}
