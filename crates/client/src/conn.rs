//! One TCP connection to one broker, optionally over TLS
//! ([`ConnOptions::tls`]): framing, correlation ids, pipelining, and
//! ApiVersions negotiation.
//!
//! A writer task owns the write half and a reader task owns the read half.
//! Requests are pipelined: many may be outstanding, each waiting on a
//! oneshot keyed by its correlation id. When either half fails, every
//! outstanding request gets an error and the connection is marked dead so
//! the pool replaces it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use sluice_protocol::messages::api_versions::{ApiVersionsRequest, ApiVersionsResponse};
use sluice_protocol::{
    ApiKey, Decode, Request, RequestHeader, ResponseHeader, encode_request, response_header_version,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use crate::error::{ClientError, Result};

/// Largest response frame we accept. Kafka's `socket.request.max.bytes` is
/// 100 MiB; a fetch response is bounded by our own `max_bytes`, so anything
/// larger is a corrupt length prefix, not data.
pub const MAX_RESPONSE_BYTES: usize = 128 * 1024 * 1024;

/// Requests queued for the writer task. Bounded so a caller that outruns
/// the socket waits instead of buffering without limit.
const WRITE_QUEUE_DEPTH: usize = 1024;

type Pending = Arc<Mutex<HashMap<i32, oneshot::Sender<Result<Bytes>>>>>;

/// Connection settings.
#[derive(Debug, Clone)]
pub struct ConnOptions {
    /// `client.id` sent in every request header.
    pub client_id: String,
    /// Time allowed for TCP connect plus ApiVersions.
    pub connect_timeout: Duration,
    /// Time allowed for one request's response (fetches add their max wait).
    pub request_timeout: Duration,
    /// Speak TLS with this config (Kafka's `security.protocol=SSL`): its
    /// trusted CAs and, for mTLS, its client certificate. `None` is
    /// PLAINTEXT. The server name checked is the host of the address
    /// connected to.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Authenticate with SASL right after ApiVersions (a SASL_PLAINTEXT
    /// listener); `None` for PLAINTEXT.
    pub sasl: Option<SaslOptions>,
}

/// SASL credentials for a connection: PLAIN, SCRAM-SHA-256,
/// SCRAM-SHA-512 or OAUTHBEARER (the mechanisms of `sluice-auth`).
#[derive(Clone, PartialEq, Eq)]
pub struct SaslOptions {
    /// The SASL mechanism name.
    pub mechanism: String,
    /// The user name (unused by OAUTHBEARER: the token names the
    /// principal).
    pub username: String,
    /// The password; for OAUTHBEARER, the bearer token (a JWT).
    pub password: String,
}

impl SaslOptions {
    /// OAUTHBEARER with `token` (a JWT obtained from an identity
    /// provider; the client does not refresh it).
    pub fn oauthbearer(token: impl Into<String>) -> SaslOptions {
        SaslOptions {
            mechanism: sluice_auth::oauthbearer::MECHANISM.to_owned(),
            username: String::new(),
            password: token.into(),
        }
    }
}

impl std::fmt::Debug for SaslOptions {
    // The password stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslOptions")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Default for ConnOptions {
    fn default() -> Self {
        ConnOptions {
            client_id: "sluice".to_owned(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            tls: None,
            sasl: None,
        }
    }
}

/// The read side of a connection, TCP or TLS.
type ReadHalf = Box<dyn tokio::io::AsyncRead + Unpin + Send>;
/// The write side of a connection, TCP or TLS.
type WriteHalf = Box<dyn tokio::io::AsyncWrite + Unpin + Send>;

/// Runs the TLS handshake on `stream` as `config` says, checking the
/// server's certificate against the host of `addr`.
async fn tls_handshake(
    stream: TcpStream,
    addr: &str,
    config: Arc<rustls::ClientConfig>,
) -> Result<(ReadHalf, WriteHalf)> {
    let host = addr
        .rsplit_once(':')
        .map_or(addr, |(host, _)| host)
        .trim_matches(['[', ']']);
    let name = rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|e| {
        ClientError::Connect {
            addr: addr.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
        }
    })?;
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, stream)
        .await
        .map_err(|source| ClientError::Connect {
            addr: addr.to_owned(),
            source,
        })?;
    let (read, write) = tokio::io::split(stream);
    Ok((Box::new(read), Box::new(write)))
}

/// A live connection to one broker.
#[derive(Debug)]
pub struct Connection {
    addr: String,
    options: ConnOptions,
    writes: mpsc::Sender<Bytes>,
    pending: Pending,
    next_correlation_id: AtomicI32,
    dead: Arc<AtomicBool>,
    /// api key -> (min, max) the broker advertised.
    versions: HashMap<i16, (i16, i16)>,
}

impl Connection {
    /// Connects to `addr` and negotiates API versions.
    pub async fn connect(addr: &str, options: ConnOptions) -> Result<Connection> {
        let stream =
            match tokio::time::timeout(options.connect_timeout, TcpStream::connect(addr)).await {
                Ok(Ok(s)) => s,
                Ok(Err(source)) => {
                    return Err(ClientError::Connect {
                        addr: addr.to_owned(),
                        source,
                    });
                }
                Err(_) => {
                    return Err(ClientError::ConnectTimeout {
                        addr: addr.to_owned(),
                        timeout: options.connect_timeout,
                    });
                }
            };
        // Small requests (acks, heartbeats) should not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let (read, write): (ReadHalf, WriteHalf) = match &options.tls {
            None => {
                let (read, write) = stream.into_split();
                (Box::new(read), Box::new(write))
            }
            Some(config) => {
                let handshake = tls_handshake(stream, addr, Arc::clone(config));
                match tokio::time::timeout(options.connect_timeout, handshake).await {
                    Ok(halves) => halves?,
                    Err(_) => {
                        return Err(ClientError::ConnectTimeout {
                            addr: addr.to_owned(),
                            timeout: options.connect_timeout,
                        });
                    }
                }
            }
        };
        let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
        let dead = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel(WRITE_QUEUE_DEPTH);
        tokio::spawn(write_loop(
            write,
            addr.to_owned(),
            rx,
            dead.clone(),
            pending.clone(),
        ));
        tokio::spawn(read_loop(
            read,
            addr.to_owned(),
            dead.clone(),
            pending.clone(),
        ));
        let mut conn = Connection {
            addr: addr.to_owned(),
            options,
            writes: tx,
            pending,
            next_correlation_id: AtomicI32::new(1),
            dead,
            versions: HashMap::new(),
        };
        let timeout = conn.options.connect_timeout;
        let versions = match tokio::time::timeout(timeout, conn.negotiate()).await {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                // An HTTP server may hang up on our binary request instead
                // of answering 400 (or its answer is lost to the reset of
                // its close): ask it in its own protocol before giving up.
                let hung_up =
                    matches!(e, ClientError::Disconnected { .. } | ClientError::Io { .. });
                if hung_up && conn.options.tls.is_none() && speaks_http(addr, timeout).await {
                    return Err(ClientError::HttpAnswer {
                        addr: addr.to_owned(),
                    });
                }
                return Err(e);
            }
            Err(_) => {
                return Err(ClientError::ConnectTimeout {
                    addr: addr.to_owned(),
                    timeout,
                });
            }
        };
        conn.versions = versions;
        if let Some(sasl) = conn.options.sasl.clone() {
            match tokio::time::timeout(timeout, conn.authenticate(&sasl)).await {
                Ok(outcome) => outcome?,
                Err(_) => {
                    return Err(ClientError::ConnectTimeout {
                        addr: addr.to_owned(),
                        timeout,
                    });
                }
            }
        }
        Ok(conn)
    }

    /// SaslHandshake v1, then the mechanism's SaslAuthenticate (v1)
    /// exchange; SCRAM also checks the broker's signature.
    async fn authenticate(&self, sasl: &SaslOptions) -> Result<()> {
        use sluice_auth::scram::{Mechanism, ScramClient};
        use sluice_protocol::messages::sasl_authenticate::{
            SaslAuthenticateRequest, SaslAuthenticateResponse,
        };
        use sluice_protocol::messages::sasl_handshake::SaslHandshakeRequest;

        let local = |reason: String| ClientError::Sasl {
            addr: self.addr.clone(),
            reason,
        };
        let handshake = self
            .send_at(
                &SaslHandshakeRequest {
                    mechanism: sasl.mechanism.clone(),
                    ..Default::default()
                },
                1,
            )
            .await?;
        if handshake.error_code != 0 {
            return Err(ClientError::kafka(
                "SaslHandshake",
                handshake.error_code,
                Some(format!(
                    "{} is not enabled; the broker offers {:?}",
                    sasl.mechanism, handshake.mechanisms
                )),
            ));
        }
        let step = |token: Vec<u8>| async move {
            let response: SaslAuthenticateResponse = self
                .send_at(
                    &SaslAuthenticateRequest {
                        auth_bytes: Bytes::from(token),
                        ..Default::default()
                    },
                    1,
                )
                .await?;
            if response.error_code != 0 {
                return Err(ClientError::kafka(
                    "SaslAuthenticate",
                    response.error_code,
                    response.error_message,
                ));
            }
            Ok(response.auth_bytes)
        };
        if sasl.mechanism == "PLAIN" {
            step(sluice_auth::plain::encode(&sasl.username, &sasl.password)).await?;
            return Ok(());
        }
        if sasl.mechanism == sluice_auth::oauthbearer::MECHANISM {
            let answer = step(sluice_auth::oauthbearer::client_initial_response(
                &sasl.password,
            ))
            .await?;
            if !answer.is_empty() {
                // RFC 7628: the broker refused the token with an error
                // JSON; acknowledging it makes the broker fail the
                // exchange with its reason, which `step` returns.
                step(sluice_auth::oauthbearer::CLIENT_ERROR_ACK.to_vec()).await?;
                return Err(local(format!(
                    "OAUTHBEARER token refused: {}",
                    String::from_utf8_lossy(&answer)
                )));
            }
            return Ok(());
        }
        let mechanism = Mechanism::from_name(&sasl.mechanism)
            .ok_or_else(|| local(format!("unknown SASL mechanism {:?}", sasl.mechanism)))?;
        let mut scram = ScramClient::new(mechanism, &sasl.username, sasl.password.as_bytes());
        let first = scram.client_first().map_err(|e| local(e.to_string()))?;
        let server_first = step(first).await?;
        let last = scram
            .server_first(&server_first)
            .map_err(|e| local(e.to_string()))?;
        let server_final = step(last).await?;
        scram
            .server_final(&server_final)
            .map_err(|e| local(e.to_string()))
    }

    async fn negotiate(&self) -> Result<HashMap<i16, (i16, i16)>> {
        let request = ApiVersionsRequest {
            client_software_name: "sluice-client".to_owned(),
            client_software_version: env!("CARGO_PKG_VERSION").to_owned(),
            ..Default::default()
        };
        let mut response: ApiVersionsResponse = self.send_at(&request, 3).await?;
        if response.error_code == sluice_protocol::error::codes::UNSUPPORTED_VERSION {
            response = self.send_at(&request, 0).await?;
        }
        if response.error_code != 0 {
            return Err(ClientError::kafka("ApiVersions", response.error_code, None));
        }
        Ok(response
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect())
    }

    /// host:port of the broker.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// True once the socket failed; the pool replaces dead connections.
    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }

    /// The broker's advertised (min, max) for an API, if any.
    pub fn api_range(&self, api: ApiKey) -> Option<(i16, i16)> {
        self.versions.get(&(api as i16)).copied()
    }

    /// Highest version both sides speak, given the client's range.
    pub fn pick_version(&self, api: ApiKey, client_min: i16, client_max: i16) -> Result<i16> {
        let unsupported = || ClientError::UnsupportedApi {
            api,
            addr: self.addr.clone(),
            client_min,
            client_max,
        };
        let (broker_min, broker_max) = self.api_range(api).ok_or_else(unsupported)?;
        let version = client_max.min(broker_max);
        if version < client_min.max(broker_min) {
            return Err(unsupported());
        }
        Ok(version)
    }

    /// Sends `request` at the highest common version within the client's range.
    pub async fn send<R: Request>(
        &self,
        request: &R,
        client_min: i16,
        client_max: i16,
    ) -> Result<(R::Response, i16)> {
        let version = self.pick_version(R::API_KEY, client_min, client_max)?;
        Ok((self.send_at(request, version).await?, version))
    }

    /// Sends `request` at exactly `version` and waits for the response.
    pub async fn send_at<R: Request>(&self, request: &R, version: i16) -> Result<R::Response> {
        self.send_at_with_timeout(request, version, self.options.request_timeout)
            .await
    }

    /// Like [`Connection::send_at`] with an explicit timeout (fetch long-polls).
    pub async fn send_at_with_timeout<R: Request>(
        &self,
        request: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response> {
        let api = R::API_KEY;
        let correlation_id = self.next_correlation_id.fetch_add(1, Ordering::Relaxed);
        let frame = self.encode(request, version, correlation_id)?;
        let (tx, rx) = oneshot::channel();
        {
            // Short critical section, no await: register before writing so
            // the reader can never see a response it cannot route.
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            pending.insert(correlation_id, tx);
        }
        if self.writes.send(frame).await.is_err() || self.is_dead() {
            self.forget(correlation_id);
            return Err(ClientError::Disconnected {
                addr: self.addr.clone(),
            });
        }
        let mut body = match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(Ok(body))) => body,
            Ok(Ok(Err(e))) => return Err(e),
            Ok(Err(_)) => {
                return Err(ClientError::Disconnected {
                    addr: self.addr.clone(),
                });
            }
            Err(_) => {
                self.forget(correlation_id);
                return Err(ClientError::RequestTimeout {
                    api,
                    addr: self.addr.clone(),
                    timeout,
                });
            }
        };
        ResponseHeader::decode(&mut body, response_header_version(api, version))
            .map_err(|source| ClientError::Decode { api, source })?;
        R::Response::decode(&mut body, version)
            .map_err(|source| ClientError::Decode { api, source })
    }

    /// Sends a request that gets no response (Produce with acks=0).
    pub async fn send_no_response<R: Request>(&self, request: &R, version: i16) -> Result<()> {
        let correlation_id = self.next_correlation_id.fetch_add(1, Ordering::Relaxed);
        let frame = self.encode(request, version, correlation_id)?;
        if self.writes.send(frame).await.is_err() || self.is_dead() {
            return Err(ClientError::Disconnected {
                addr: self.addr.clone(),
            });
        }
        Ok(())
    }

    fn encode<R: Request>(&self, request: &R, version: i16, correlation_id: i32) -> Result<Bytes> {
        let header = RequestHeader {
            request_api_key: R::API_KEY as i16,
            request_api_version: version,
            correlation_id,
            client_id: Some(self.options.client_id.clone()),
        };
        encode_request(&header, request)
            .map(BytesMut::freeze)
            .map_err(|source| ClientError::Encode {
                api: R::API_KEY,
                source,
            })
    }

    fn forget(&self, correlation_id: i32) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.remove(&correlation_id);
    }
}

/// True when `addr` answers an HTTP request with an HTTP status line.
/// A Kafka broker reads "HEAD" as a 1.2 GB frame length and hangs up.
async fn speaks_http(addr: &str, timeout: Duration) -> bool {
    let probe = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        stream
            .write_all(b"HEAD / HTTP/1.1\r\nHost: sluice\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut head = [0u8; 5];
        stream.read_exact(&mut head).await.ok()?;
        Some(&head == b"HTTP/")
    };
    matches!(tokio::time::timeout(timeout, probe).await, Ok(Some(true)))
}

async fn write_loop(
    mut write: WriteHalf,
    addr: String,
    mut rx: mpsc::Receiver<Bytes>,
    dead: Arc<AtomicBool>,
    pending: Pending,
) {
    while let Some(frame) = rx.recv().await {
        // The flush is a no-op on TCP; TLS sends its buffered record.
        let written = match write.write_all(&frame).await {
            Ok(()) => write.flush().await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            tracing::debug!("write failed: {e}");
            dead.store(true, Ordering::Release);
            fail_all(&pending, &ClientError::Io { addr, source: e });
            return;
        }
    }
}

async fn read_loop(mut read: ReadHalf, addr: String, dead: Arc<AtomicBool>, pending: Pending) {
    let error = loop {
        let mut prefix = [0u8; 4];
        if let Err(source) = read.read_exact(&mut prefix).await {
            break if source.kind() == std::io::ErrorKind::UnexpectedEof {
                ClientError::Disconnected { addr: addr.clone() }
            } else {
                ClientError::Io {
                    addr: addr.clone(),
                    source,
                }
            };
        }
        if &prefix == b"HTTP" {
            // "HTTP" read as a length is 1213486160: an HTTP server's
            // answer to our binary request, not a Kafka frame.
            break ClientError::HttpAnswer { addr: addr.clone() };
        }
        let length = i32::from_be_bytes(prefix);
        let Ok(len) = usize::try_from(length) else {
            break bad_length(&addr, length);
        };
        if !(4..=MAX_RESPONSE_BYTES).contains(&len) {
            break bad_length(&addr, length);
        }
        let mut frame = vec![0u8; len];
        if let Err(source) = read.read_exact(&mut frame).await {
            break ClientError::Io {
                addr: addr.clone(),
                source,
            };
        }
        let correlation_id = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
        let waiter = {
            let mut pending = pending.lock().unwrap_or_else(|e| e.into_inner());
            pending.remove(&correlation_id)
        };
        match waiter {
            Some(tx) => {
                let _ = tx.send(Ok(Bytes::from(frame)));
            }
            None => tracing::debug!(correlation_id, %addr, "response nobody waits for (timed out)"),
        }
    };
    dead.store(true, Ordering::Release);
    fail_all(&pending, &error);
}

fn bad_length(addr: &str, length: i32) -> ClientError {
    ClientError::BadFrameLength {
        addr: addr.to_owned(),
        length: i64::from(length),
        limit: MAX_RESPONSE_BYTES,
    }
}

/// Fails every waiter with `error`. Each waiter gets its own value (errors
/// are not `Clone`), of the same kind where the kind matters (retriable,
/// the HTTP hint), and with the address said once.
fn fail_all(pending: &Pending, error: &ClientError) {
    let waiters: Vec<_> = {
        let mut pending = pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.drain().map(|(_, tx)| tx).collect()
    };
    for tx in waiters {
        let err = match error {
            ClientError::Disconnected { addr } => ClientError::Disconnected { addr: addr.clone() },
            ClientError::HttpAnswer { addr } => ClientError::HttpAnswer { addr: addr.clone() },
            ClientError::BadFrameLength {
                addr,
                length,
                limit,
            } => ClientError::BadFrameLength {
                addr: addr.clone(),
                length: *length,
                limit: *limit,
            },
            ClientError::Io { addr, source } => ClientError::Io {
                addr: addr.clone(),
                source: copy_io_error(source),
            },
            other => ClientError::Invalid {
                what: "connection",
                reason: other.to_string(),
            },
        };
        let _ = tx.send(Err(err));
    }
}

/// A copy of `source` for each waiter (`io::Error` is not `Clone`): a TLS
/// error (an alert from the broker, say) stays a `rustls::Error`, so
/// callers can tell why, and anything else becomes its text.
fn copy_io_error(source: &std::io::Error) -> std::io::Error {
    match source
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => std::io::Error::new(source.kind(), tls.clone()),
        None => std::io::Error::new(source.kind(), source.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A fake broker that reads one request and answers with `reply`.
    async fn fake_broker(reply: Vec<u8>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut len = [0u8; 4];
            sock.read_exact(&mut len).await.unwrap();
            let mut req = vec![0u8; i32::from_be_bytes(len) as usize];
            sock.read_exact(&mut req).await.unwrap();
            sock.write_all(&reply).await.unwrap();
            // Keep the socket open so only the frame length can fail us.
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        addr
    }

    #[tokio::test]
    async fn a_response_claiming_i32_max_bytes_is_an_error_not_an_allocation() {
        let mut reply = i32::MAX.to_be_bytes().to_vec();
        reply.extend_from_slice(&1i32.to_be_bytes());
        let addr = fake_broker(reply).await;
        let err = Connection::connect(&addr, ConnOptions::default())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("bad length"), "{err}");
    }

    #[tokio::test]
    async fn an_http_answer_is_named_as_such() {
        let addr = fake_broker(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec()).await;
        let err = Connection::connect(&addr, ConnOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::HttpAnswer { .. }), "{err}");
        assert_eq!(err.to_string(), format!("{addr} answered with HTTP"));
    }

    #[tokio::test]
    async fn an_http_server_that_hangs_up_on_binary_is_still_named() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            loop {
                let (mut sock, _) = listener.accept().await.unwrap();
                let mut first = [0u8; 4];
                sock.read_exact(&mut first).await.unwrap();
                // Binary: hang up. A request line: answer it.
                if &first == b"HEAD" {
                    sock.write_all(b"HTTP/1.1 404 Not Found\r\n\r\n")
                        .await
                        .unwrap();
                }
            }
        });
        let err = Connection::connect(&addr, ConnOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::HttpAnswer { .. }), "{err}");
    }

    #[tokio::test]
    async fn a_negative_response_length_is_an_error() {
        let addr = fake_broker((-5i32).to_be_bytes().to_vec()).await;
        let err = Connection::connect(&addr, ConnOptions::default())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("bad length"), "{err}");
    }

    #[tokio::test]
    async fn connecting_to_a_closed_port_is_a_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let err = Connection::connect(&addr, ConnOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Connect { .. }), "{err}");
    }
}
