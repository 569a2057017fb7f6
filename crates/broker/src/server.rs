//! The Kafka listener and the per-connection request loop.
//!
//! One task per connection. Frames are length-prefixed; the length is
//! checked against `socket.request.max.bytes`, the frame's bytes are taken
//! from the broker-wide request budget (`limits.queued_max_request_bytes`)
//! and given back when its reply has been produced, and the buffer grows
//! only as bytes arrive (see [`crate::frames`]). Requests are dispatched in
//! arrival order, and each handler runs
//! the part that must be ordered (appends, for produce) at dispatch time;
//! the rest (fsync, long-poll) completes concurrently, bounded by
//! `max_in_flight_requests_per_connection`. Responses are written strictly
//! in request order.
//!
//! The connection loop is generic over the byte stream
//! ([`Server::serve_connection`]), and the accept loop over the source of
//! streams ([`Server::serve`] takes any [`Acceptor`]): a TCP listener is
//! one; TLS ([`crate::tls::TlsAcceptor`]), or a simulated network in
//! tests, are others. Accepting only takes a connection; its
//! [`Handshake`] (TLS, for an SSL listener) runs in the connection's own
//! task, so a slow handshake never holds the accept loop, and a failed one
//! costs only its connection. Each [`Server`] serves one named listener
//! ([`ListenerInfo`]); a broker with several runs one per listener, sharing
//! the connection limit and request budget ([`Server::sharing_limits_with`]). Accept errors back off with the shared
//! [`sluice_runtime::AcceptBackoff`]; one shutdown signal (a
//! [`CancellationToken`]) stops the listener and every connection.
//!
//! A malformed request costs only its own connection: it is logged and the
//! connection is closed, or answered with an error when the header is
//! readable and Kafka defines one. A request that expects an answer but
//! whose reply could not be produced (a response that fails to encode, a
//! handler task that panicked: our bugs) closes the connection, as Kafka
//! does when it cannot send a response, so the client fails the request at
//! once and retries instead of waiting out its request timeout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes};
use futures::stream::{FuturesOrdered, StreamExt};
use sluice_protocol::{ApiKey, RequestHeader, SplicedFrame, request_header_version};
use sluice_runtime::{AcceptBackoff, CancellationToken};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::config::SecurityProtocol;
use crate::frames::{FrameError, FrameReader, RequestBudget};
use crate::handlers::{self, RequestContext};
use crate::zero_copy::{FrameWriter, write_frame};
use crate::{Broker, Principal};

/// How long a connection gets to finish in-flight work at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How long a connection whose SASL authentication was refused stays open
/// after the refusal is written, waiting for the client to close first (so
/// the refusal is not followed at once by the close; see `Server::run`).
/// Clients close as soon as they read the refusal; this bounds the ones
/// that do not.
const SASL_REFUSAL_LINGER: Duration = Duration::from_secs(1);

/// The name of the listener a broker configured with the legacy
/// `kafka_listener` key has: Kafka names a listener after its security
/// protocol unless configured otherwise.
pub const LISTENER_NAME: &str = "PLAINTEXT";

/// Accepts TCP connections on `listener` until `shutdown` is cancelled,
/// then waits for every connection to finish what it has in flight.
pub async fn serve(listener: TcpListener, broker: Arc<Broker>, shutdown: CancellationToken) {
    Server::new(broker, shutdown).serve_tcp(listener).await;
}

/// The listener a [`Server`] serves: what requests are attributed to
/// (`RequestContext.listener`) and how its connections are secured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerInfo {
    /// The listener's name, as in `listeners` (upper case).
    pub name: Arc<str>,
    /// Its security protocol: TLS for SSL and SASL_SSL (done by the
    /// acceptor), SASL authentication for SASL_PLAINTEXT and SASL_SSL (by
    /// the request loop).
    pub security_protocol: SecurityProtocol,
}

impl ListenerInfo {
    /// A listener named `name` with `security_protocol`.
    pub fn new(name: &str, security_protocol: SecurityProtocol) -> ListenerInfo {
        ListenerInfo {
            name: Arc::from(name),
            security_protocol,
        }
    }
}

/// A source of connections: the TCP listener, or anything else that yields
/// byte streams (TLS over TCP, a simulated network).
pub trait Acceptor: Send + Sync {
    /// An accepted connection, before its handshake.
    type Connection: Handshake;

    /// The next connection and its peer's address. Only accepts: the
    /// handshake runs later, in the connection's task. An error is retried
    /// after [`AcceptBackoff`]'s delay.
    fn accept(
        &self,
    ) -> impl std::future::Future<Output = std::io::Result<(Self::Connection, SocketAddr)>> + Send;
}

/// What turns an accepted connection into a byte stream and the principal
/// it authenticated as (TLS: the handshake and the client certificate).
pub trait Handshake: Send + 'static {
    /// The connection's read side.
    type Read: AsyncRead + Unpin + Send + 'static;
    /// The connection's write side.
    type Write: FrameWriter + 'static;

    /// Runs the handshake. An error closes the connection (logged), and
    /// nothing else.
    fn handshake(
        self,
    ) -> impl std::future::Future<Output = std::io::Result<Established<Self::Read, Self::Write>>> + Send;
}

/// A connection ready for requests.
#[derive(Debug)]
pub struct Established<R, W> {
    /// The read side.
    pub read: R,
    /// The write side.
    pub write: W,
    /// Who the transport says the client is: the mapped subject of its TLS
    /// client certificate, else `User:ANONYMOUS`.
    pub principal: Principal,
}

impl Acceptor for TcpListener {
    type Connection = tokio::net::TcpStream;

    async fn accept(&self) -> std::io::Result<(Self::Connection, SocketAddr)> {
        let (stream, peer) = TcpListener::accept(self).await?;
        let _ = stream.set_nodelay(true);
        Ok((stream, peer))
    }
}

/// A plain TCP connection: no handshake, anonymous.
impl Handshake for tokio::net::TcpStream {
    type Read = tokio::net::tcp::OwnedReadHalf;
    type Write = tokio::net::tcp::OwnedWriteHalf;

    async fn handshake(self) -> std::io::Result<Established<Self::Read, Self::Write>> {
        // A TCP stream splits without a lock.
        let (read, write) = self.into_split();
        Ok(Established {
            read,
            write,
            principal: Principal::anonymous(),
        })
    }
}

/// An already split stream (in-memory streams in tests): no handshake,
/// anonymous.
impl<R, W> Handshake for (R, W)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: FrameWriter + 'static,
{
    type Read = R;
    type Write = W;

    async fn handshake(self) -> std::io::Result<Established<R, W>> {
        Ok(Established {
            read: self.0,
            write: self.1,
            principal: Principal::anonymous(),
        })
    }
}

/// What every connection of one Kafka listener shares.
#[derive(Debug, Clone)]
pub struct Server {
    /// The handles the handlers work with.
    broker: Arc<Broker>,
    /// Bounds the bytes of requests held across all connections.
    budget: RequestBudget,
    /// Cancelled once, at shutdown: stops accepting, and each connection
    /// answers what it has read and closes.
    shutdown: CancellationToken,
    /// The listener served: requests carry its name.
    listener: ListenerInfo,
    /// Bounds open connections (`limits.max_connections`); an accept waits
    /// for a free slot. Shared by every listener of the broker.
    slots: Arc<Semaphore>,
    /// Set on a SASL_* listener: every connection authenticates first.
    sasl: Option<Arc<crate::sasl::SaslSettings>>,
}

impl Server {
    /// A server for `broker`'s first configured listener (the only one
    /// with the legacy `kafka_listener` key) that stops when `shutdown` is
    /// cancelled.
    pub fn new(broker: Arc<Broker>, shutdown: CancellationToken) -> Server {
        let listener = broker
            .config
            .listeners()
            .ok()
            .and_then(|l| l.into_iter().next())
            .map_or_else(
                || ListenerInfo::new(LISTENER_NAME, SecurityProtocol::Plaintext),
                |l| ListenerInfo::new(&l.name, l.security_protocol),
            );
        Server::for_listener(broker, listener, shutdown)
    }

    /// A server for `broker`'s listener `listener` that stops when
    /// `shutdown` is cancelled, with its own connection limit and request
    /// budget (see [`Server::sharing_limits_with`]).
    pub fn for_listener(
        broker: Arc<Broker>,
        listener: ListenerInfo,
        shutdown: CancellationToken,
    ) -> Server {
        let budget = RequestBudget::new(broker.config.limits.queued_max_request_bytes);
        let slots = Arc::new(Semaphore::new(
            broker.config.limits.max_connections as usize,
        ));
        let protocol = listener.security_protocol;
        Server {
            broker,
            budget,
            shutdown,
            listener,
            slots,
            sasl: None,
        }
        .with_security_protocol(protocol)
    }

    /// The same server for a listener with `protocol`: SASL_PLAINTEXT and
    /// SASL_SSL make every connection authenticate first (`[sasl]`).
    pub fn with_security_protocol(mut self, protocol: crate::config::SecurityProtocol) -> Server {
        self.sasl = crate::sasl::required(protocol).then(|| {
            Arc::new(crate::sasl::SaslSettings::from_config(
                &self.broker.config.sasl,
            ))
        });
        self
    }

    /// This server drawing on `other`'s connection slots and request
    /// budget, so `limits.max_connections` and
    /// `limits.queued_max_request_bytes` bound the broker as a whole, not
    /// each listener.
    pub fn sharing_limits_with(mut self, other: &Server) -> Server {
        self.budget = other.budget.clone();
        self.slots = Arc::clone(&other.slots);
        self
    }

    /// The listener this server serves.
    pub fn listener(&self) -> &ListenerInfo {
        &self.listener
    }

    /// Accepts TCP connections until shutdown, then waits (at most 10 s)
    /// for every connection to finish what it has in flight.
    pub async fn serve_tcp(&self, listener: TcpListener) {
        self.serve(listener).await;
    }

    /// Accepts connections from `acceptor` until shutdown, at most
    /// `limits.max_connections` open at once, backing off on accept
    /// errors; then waits (at most 10 s) for every connection
    /// to finish what it has in flight.
    pub async fn serve<A: Acceptor>(&self, acceptor: A) {
        let slots = Arc::clone(&self.slots);
        let mut backoff = AcceptBackoff::new("kafka");
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            let permit = tokio::select! {
                permit = Arc::clone(&slots).acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => break,
                },
                () = self.shutdown.cancelled() => break,
            };
            let (connection, peer) = tokio::select! {
                accepted = backoff.accept(|| acceptor.accept()) => accepted,
                () = self.shutdown.cancelled() => break,
            };
            // A broker whose leadership is suspended (cut off from the
            // controller: fenced) serves no one; to clients it is down,
            // and they go to the brokers that can answer for the cluster.
            if self.broker.replicas.leadership_suspended() {
                tracing::debug!(%peer, "leadership suspended: closing a new connection unserved");
                drop(connection);
                continue;
            }
            // KIP-612: a connection over its IP's `connection_creation_rate`
            // is held unserved for its throttle time, then closed (Kafka's
            // delayed close, so a client retrying at once is slowed too). It
            // keeps its connection slot meanwhile, so held connections stay
            // within `limits.max_connections`.
            let delay = self.broker.quotas.record_connection(
                &self.broker.metadata.image(),
                peer.ip(),
                sluice_metadata::now_ms(),
            );
            if !delay.is_zero() {
                let shutdown = self.shutdown.clone();
                tracing::debug!(%peer, ?delay, "connection over its IP's connection_creation_rate; closing it after the throttle");
                tasks.spawn(async move {
                    let _permit = permit;
                    let _held = connection;
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = shutdown.cancelled() => {}
                    }
                });
                continue;
            }
            let server = self.clone();
            tasks.spawn(async move {
                let _permit = permit;
                let _open = sluice_metrics::connection_opened();
                let established = tokio::select! {
                    established = connection.handshake() => established,
                    () = server.shutdown.cancelled() => return,
                };
                let Established {
                    read,
                    write,
                    principal,
                } = match established {
                    Ok(established) => established,
                    Err(e) => {
                        let listener = &server.listener.name;
                        tracing::info!(%peer, %listener, "handshake failed; closing connection: {e}");
                        return;
                    }
                };
                if let Err(e) = server.run(read, write, peer, principal).await {
                    tracing::warn!(%peer, "closing connection: {e}");
                }
            });
            // Reap finished connections so the set does not grow without
            // bound, and report any that panicked.
            while let Some(done) = tasks.try_join_next() {
                report_connection_task(done);
            }
        }
        drop(acceptor);
        let drain = async {
            while let Some(done) = tasks.join_next().await {
                report_connection_task(done);
            }
        };
        if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
            tracing::warn!("connections still busy after {SHUTDOWN_GRACE:?}; dropping them");
        }
    }

    /// Serves one connection over any byte stream until the peer closes it,
    /// it fails, or shutdown (after answering what was read). `peer` is
    /// the address requests are attributed to.
    pub async fn serve_connection<S>(
        &self,
        stream: S,
        peer: SocketAddr,
    ) -> Result<(), ConnectionError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (read, write) = tokio::io::split(stream);
        self.run(read, write, peer, Principal::anonymous()).await
    }

    /// The request loop of one connection. `transport_principal` is who
    /// the transport authenticated (a TLS client certificate's mapped
    /// subject, else `User:ANONYMOUS`); the listener's protocol is
    /// `self.listener.security_protocol`.
    async fn run<R, W>(
        &self,
        read: R,
        mut write: W,
        peer: SocketAddr,
        transport_principal: Principal,
    ) -> Result<(), ConnectionError>
    where
        R: AsyncRead + Unpin,
        W: FrameWriter,
    {
        let broker = &self.broker;
        let limits = &broker.config.limits;
        let idle = Duration::from_millis(limits.connections_max_idle_ms);
        let max_in_flight = limits.max_in_flight_requests_per_connection as usize;
        let mut frames = FrameReader::new(
            read,
            limits.socket_request_max_bytes,
            self.budget.clone(),
            Duration::from_millis(limits.request_read_timeout_ms),
        );
        let mut in_flight: FuturesOrdered<InFlight> = FuturesOrdered::new();
        // PRINCIPAL: the connection's principal, as the transport
        // authenticated it (SASL authentication replaces it on SASL listeners).
        let mut principal = Arc::new(transport_principal);
        let listener: Arc<str> = Arc::clone(&self.listener.name);
        // Client quotas mute the connection (KIP-219): no request is read
        // until the deadline a throttled response set.
        let throttle = crate::quota::ConnectionThrottle::default();
        let mut stopping = false;
        // A SASL refusal was answered: the close waits for the client.
        let mut refused = false;
        // On a SASL listener: authentication state, and small frames only
        // until it succeeds.
        let mut sasl = self
            .sasl
            .as_ref()
            .map(|s| crate::sasl::Session::new(Arc::clone(s)));
        if sasl.is_some() {
            frames.set_max_frame_bytes(
                limits
                    .socket_request_max_bytes
                    .min(crate::sasl::MAX_SASL_RECEIVE_BYTES),
            );
        }

        loop {
            let muted_until = throttle.muted_until();
            let can_read = !stopping && in_flight.len() < max_in_flight && muted_until.is_none();
            let handshake_deadline = sasl.as_ref().and_then(|s| s.handshake_deadline());
            tokio::select! {
                biased;
                Some(reply) = in_flight.next(), if !in_flight.is_empty() => {
                    write_reply(&mut write, reply).await?;
                }
                () = sleep_until_unmuted(muted_until), if muted_until.is_some() => {}
                frame = frames.next(), if can_read => {
                    let frame = match frame {
                        Ok(None) => break,
                        Ok(Some(frame)) => frame,
                        Err(e) => {
                            drain(&mut in_flight, &mut write).await?;
                            return Err(frame_error(e));
                        }
                    };
                    // Suspended (see `serve`): what was read is answered,
                    // nothing more, so the client's next request goes to
                    // another broker rather than to this stale view.
                    if broker.replicas.leadership_suspended() {
                        tracing::debug!(%peer, "leadership suspended: closing the connection");
                        break;
                    }
                    let expected = Expected::of(&frame.bytes);
                    if let Some(session) = sasl.as_mut() {
                        let now = tokio::time::Instant::now();
                        match session.on_frame(&broker.metadata.image(), &frame.bytes, now) {
                            crate::sasl::Gate::Dispatch => {}
                            crate::sasl::Gate::Answer { frame: reply, delay, close } => {
                                let budget = frame.budget;
                                in_flight.push_back(Box::pin(async move {
                                    tokio::time::sleep(delay).await;
                                    drop(budget);
                                    (expected, reply.map(SplicedFrame::from))
                                }));
                                if let Some(user) = session.user()
                                    && principal.name != user
                                {
                                    principal = Arc::new(Principal::user(user));
                                    frames.set_max_frame_bytes(limits.socket_request_max_bytes);
                                }
                                // A failed authentication is answered, then closed.
                                stopping |= close;
                                refused |= close;
                                continue;
                            }
                            crate::sasl::Gate::Close(e) => {
                                drain(&mut in_flight, &mut write).await?;
                                return Err(ConnectionError::Sasl(e));
                            }
                        }
                    }
                    let ctx = RequestContext {
                        peer,
                        principal: Arc::clone(&principal),
                        listener: Arc::clone(&listener),
                        throttle: throttle.clone(),
                    };
                    match handlers::dispatch_read_at(broker, ctx, frame.bytes, frame.read_at) {
                        Ok(reply) => {
                            // The frame's budget comes back once its reply is
                            // produced (or dropped with the connection).
                            let budget = frame.budget;
                            in_flight.push_back(Box::pin(async move {
                                let response = reply.await;
                                drop(budget);
                                (expected, response)
                            }));
                        }
                        Err(e) => {
                            drain(&mut in_flight, &mut write).await?;
                            return Err(ConnectionError::Request(e));
                        }
                    }
                }
                _ = tokio::time::sleep(idle), if in_flight.is_empty() && !stopping => {
                    return Err(ConnectionError::Idle(idle));
                }
                () = tokio::time::sleep_until(handshake_deadline.unwrap_or_else(tokio::time::Instant::now)),
                    if handshake_deadline.is_some() && !stopping =>
                {
                    let timeout = sasl.as_ref().map_or(Duration::ZERO, |s| s.handshake_timeout());
                    return Err(ConnectionError::Sasl(crate::sasl::SaslError::HandshakeTimeout(timeout)));
                }
                () = self.shutdown.cancelled(), if !stopping => {
                    // Finish what was read, answer it, then close.
                    stopping = true;
                }
            }
            if stopping && in_flight.is_empty() {
                break;
            }
        }
        drain(&mut in_flight, &mut write).await?;
        if refused {
            // The refusal is written; closing at once puts the close right
            // behind it, and kafka-python 3.0 drops bytes that arrive
            // together with the close (it never sees
            // SASL_AUTHENTICATION_FAILED). Let the client, which closes on
            // the refusal, close first; anything it still sends is dropped
            // unread. Bounded by SASL_REFUSAL_LINGER.
            let _ = tokio::time::timeout(SASL_REFUSAL_LINGER, async {
                while let Ok(Some(_)) = frames.next().await {}
            })
            .await;
        }
        let _ = write.shutdown().await;
        tracing::debug!(%peer, "connection closed");
        Ok(())
    }
}

/// Waits until a muted connection may read again.
async fn sleep_until_unmuted(until: Option<tokio::time::Instant>) {
    if let Some(until) = until {
        tokio::time::sleep_until(until).await;
    }
}

/// A request being handled: what its reply must be, and the reply.
type InFlight =
    std::pin::Pin<Box<dyn std::future::Future<Output = (Expected, Option<SplicedFrame>)> + Send>>;

/// What a request's reply must be, read from its frame before dispatch:
/// every request but Produce with `acks=0` is answered.
#[derive(Debug, Clone, Copy)]
struct Expected {
    api_key: i16,
    correlation_id: i32,
    /// Whether Kafka sends a response.
    response: bool,
}

impl Expected {
    /// Reads the header's fixed prefix (and, for Produce, `acks`). A frame
    /// that does not parse is refused by dispatch anyway; it is marked as
    /// answered.
    fn of(frame: &Bytes) -> Expected {
        let mut expected = Expected {
            api_key: -1,
            correlation_id: -1,
            response: true,
        };
        // api_key (i16), api_version (i16), correlation_id (i32): the same
        // in every header version, read without decoding the rest.
        let Some(prefix) = frame.get(..8) else {
            return expected;
        };
        expected.api_key = i16::from_be_bytes([prefix[0], prefix[1]]);
        let version = i16::from_be_bytes([prefix[2], prefix[3]]);
        expected.correlation_id = i32::from_be_bytes([prefix[4], prefix[5], prefix[6], prefix[7]]);
        if expected.api_key == ApiKey::Produce as i16 {
            let mut buf = frame.clone();
            let header_version = request_header_version(ApiKey::Produce, version);
            if RequestHeader::decode(&mut buf, header_version).is_ok() {
                expected.response = produce_acks(&mut buf, version) != Some(0);
            }
        }
        expected
    }
}

/// `acks` of a Produce body at `version`: it follows `transactional_id`
/// (v3+; compact from v9, the first flexible version).
fn produce_acks(body: &mut Bytes, version: i16) -> Option<i16> {
    if version >= 3 {
        sluice_protocol::codec::read_nullable_string(body, version >= 9, true).ok()?;
    }
    (body.remaining() >= 2).then(|| body.get_i16())
}

/// Writes one reply. A request that expected a response but has none
/// (it failed to encode, or its task panicked; both logged where they
/// happened) closes the connection.
async fn write_reply<W: FrameWriter>(
    writer: &mut W,
    (expected, reply): (Expected, Option<SplicedFrame>),
) -> Result<(), ConnectionError> {
    match reply {
        Some(frame) => {
            write_frame(writer, &frame).await?;
            // A no-op on TCP; a TLS stream sends its buffered record.
            writer.flush().await?;
        }
        None if expected.response => {
            tracing::error!(
                api_key = expected.api_key,
                correlation_id = expected.correlation_id,
                "no response could be produced for a request; closing the connection"
            );
            return Err(ConnectionError::Unanswered {
                api_key: expected.api_key,
                correlation_id: expected.correlation_id,
            });
        }
        None => {}
    }
    Ok(())
}

/// Writes every pending reply, in order.
async fn drain<W: FrameWriter>(
    in_flight: &mut FuturesOrdered<InFlight>,
    writer: &mut W,
) -> Result<(), ConnectionError> {
    while let Some(reply) = in_flight.next().await {
        write_reply(writer, reply).await?;
    }
    Ok(())
}

/// A connection task that panicked is a bug: logged and counted, the
/// listener carries on.
fn report_connection_task(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done
        && e.is_panic()
    {
        tracing::error!(task = "kafka-connection", "task panicked: {e}");
        sluice_metrics::task_panicked("kafka-connection");
    }
}

/// Why a connection was closed by the broker.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// Socket read or write failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The frame length is negative or above `socket.request.max.bytes`,
    /// or the frame did not arrive whole in time.
    #[error("malformed frame: {0}")]
    Frame(#[source] FrameError),
    /// The request could not be decoded and has no reply.
    #[error("malformed request: {0}")]
    Request(#[from] sluice_protocol::RequestDecodeError),
    /// No request for `connections.max.idle.ms`.
    #[error("idle for {0:?}")]
    Idle(Duration),
    /// SASL closed the connection: a request before authentication, an
    /// expired session, a malformed SASL request, or no authentication in
    /// time. (A failed authentication is answered first, then closed.)
    #[error("{0}")]
    Sasl(#[source] crate::sasl::SaslError),
    /// A request that expects a response got none: its response failed to
    /// encode or its handler panicked (our bug, logged where it happened).
    #[error("no response could be produced for request {correlation_id} (api key {api_key})")]
    Unanswered {
        /// The request's API.
        api_key: i16,
        /// The request's correlation id.
        correlation_id: i32,
    },
}

fn frame_error(e: FrameError) -> ConnectionError {
    match e {
        FrameError::Io(e) => ConnectionError::Io(e),
        other => ConnectionError::Frame(other),
    }
}

#[cfg(test)]
mod tests {
    use sluice_protocol::messages::api_versions::{ApiVersionsRequest, ApiVersionsResponse};
    use sluice_protocol::messages::create_topics::{CreatableTopic, CreateTopicsRequest};
    use sluice_protocol::messages::produce::ProduceRequest;
    use sluice_protocol::{Decode, ResponseHeader, encode_request, response_header_version};
    use tokio::io::{AsyncReadExt, DuplexStream};

    use super::*;

    /// Bound on waits for work that takes milliseconds; hitting it means
    /// the behaviour under test did not happen.
    const DEADLINE: Duration = Duration::from_secs(10);

    fn peer() -> SocketAddr {
        "127.0.0.1:1".parse().expect("addr")
    }

    fn header(api_key: ApiKey, version: i16, correlation_id: i32) -> RequestHeader {
        RequestHeader {
            request_api_key: api_key as i16,
            request_api_version: version,
            correlation_id,
            client_id: Some("test".to_owned()),
        }
    }

    /// A broker served over one in-memory stream; returns the client end.
    async fn serve_in_memory(
        dir: &std::path::Path,
    ) -> (
        DuplexStream,
        CancellationToken,
        tokio::task::JoinHandle<Result<(), ConnectionError>>,
    ) {
        let broker = crate::testing::broker_in(dir).await;
        let shutdown = CancellationToken::new();
        let server = Server::new(broker, shutdown.clone());
        let (client, server_end) = tokio::io::duplex(1 << 20);
        let task = tokio::spawn(async move { server.serve_connection(server_end, peer()).await });
        (client, shutdown, task)
    }

    /// Reads one response frame; `None` when the server closed the stream.
    async fn read_frame(client: &mut DuplexStream) -> Option<Bytes> {
        let mut prefix = [0u8; 4];
        match tokio::time::timeout(DEADLINE, client.read_exact(&mut prefix)).await {
            Err(_) => panic!("no response and no close within {DEADLINE:?}"),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return None,
            Ok(Err(e)) => panic!("read failed: {e}"),
            Ok(Ok(_)) => {}
        }
        let len = usize::try_from(i32::from_be_bytes(prefix)).expect("length");
        let mut body = vec![0u8; len];
        tokio::time::timeout(DEADLINE, client.read_exact(&mut body))
            .await
            .expect("body in time")
            .expect("body");
        Some(Bytes::from(body))
    }

    /// Sends ApiVersions v3 and checks the answer.
    async fn api_versions_round_trip(client: &mut DuplexStream, correlation_id: i32) {
        let request = encode_request(
            &header(ApiKey::ApiVersions, 3, correlation_id),
            &ApiVersionsRequest::default(),
        )
        .expect("encode");
        client.write_all(&request).await.expect("write");
        let mut frame = read_frame(client).await.expect("a response");
        let response_header =
            ResponseHeader::decode(&mut frame, response_header_version(ApiKey::ApiVersions, 3))
                .expect("header");
        assert_eq!(response_header.correlation_id, correlation_id);
        let response = ApiVersionsResponse::decode(&mut frame, 3).expect("body");
        assert_eq!(response.error_code, 0);
        assert!(
            response
                .api_keys
                .iter()
                .any(|k| k.api_key == ApiKey::Produce as i16),
            "Produce is advertised: {response:?}"
        );
    }

    #[tokio::test]
    async fn api_versions_round_trips_over_an_in_memory_stream() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut client, shutdown, task) = serve_in_memory(dir.path()).await;
        api_versions_round_trip(&mut client, 42).await;
        // Shutdown closes the connection cleanly.
        shutdown.cancel();
        tokio::time::timeout(DEADLINE, task)
            .await
            .expect("connection ends on shutdown")
            .expect("task")
            .expect("clean close");
    }

    #[tokio::test]
    async fn a_response_that_cannot_be_encoded_closes_the_connection_instead_of_going_unanswered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut client, _shutdown, task) = serve_in_memory(dir.path()).await;
        // A name of the longest length a non-flexible string can carry: the
        // refusal's message quotes it, so the response's error_message is
        // longer than CreateTopics v4 can encode.
        let name = "a".repeat(i16::MAX as usize);
        let request = CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name,
                num_partitions: 1,
                replication_factor: 1,
                ..Default::default()
            }],
            ..Default::default()
        };
        let frame = encode_request(&header(ApiKey::CreateTopics, 4, 7), &request).expect("encode");
        client.write_all(&frame).await.expect("write");
        assert!(
            read_frame(&mut client).await.is_none(),
            "the connection is closed, not left waiting for an answer"
        );
        let outcome = tokio::time::timeout(DEADLINE, task)
            .await
            .expect("connection ends")
            .expect("task");
        assert!(
            matches!(
                outcome,
                Err(ConnectionError::Unanswered {
                    correlation_id: 7,
                    ..
                })
            ),
            "{outcome:?}"
        );
    }

    type DuplexRead = tokio::io::ReadHalf<DuplexStream>;
    type DuplexWrite = tokio::io::WriteHalf<DuplexStream>;
    type Accepted = std::io::Result<((DuplexRead, DuplexWrite), SocketAddr)>;

    /// Hands out scripted accept results in order, then waits forever.
    struct ScriptedAcceptor(std::sync::Mutex<std::collections::VecDeque<Accepted>>);

    impl Acceptor for ScriptedAcceptor {
        type Connection = (DuplexRead, DuplexWrite);

        async fn accept(&self) -> Accepted {
            let next = self.0.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
            match next {
                Some(accepted) => accepted,
                None => std::future::pending().await,
            }
        }
    }

    #[tokio::test]
    async fn accept_errors_back_off_without_ending_the_accept_loop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = crate::testing::broker_in(dir.path()).await;
        let shutdown = CancellationToken::new();
        let server = Server::new(broker, shutdown.clone());
        let (mut client, server_end) = tokio::io::duplex(1 << 20);
        let (read, write) = tokio::io::split(server_end);
        // EMFILE twice (out of file descriptors), then a connection.
        let emfile = || Err(std::io::Error::from_raw_os_error(24));
        let acceptor = ScriptedAcceptor(std::sync::Mutex::new(
            [emfile(), emfile(), Ok(((read, write), peer()))].into(),
        ));
        let serving = tokio::spawn(async move { server.serve(acceptor).await });
        api_versions_round_trip(&mut client, 5).await;
        // One signal stops the accept loop and closes the connection.
        shutdown.cancel();
        tokio::time::timeout(DEADLINE, serving)
            .await
            .expect("the listener stops on shutdown")
            .expect("task");
        assert!(read_frame(&mut client).await.is_none(), "connection closed");
    }

    #[tokio::test]
    async fn a_produce_over_its_quota_gets_kafkas_throttle_time_and_mutes_the_connection() {
        use sluice_metadata::client_quota::QuotaAlteration;
        use sluice_protocol::messages::produce::{
            PartitionProduceData, ProduceResponse, TopicProduceData,
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = crate::testing::broker_in(dir.path()).await;
        crate::testing::create_topic(&broker, "t", 1).await;
        let request = ProduceRequest {
            acks: 1,
            timeout_ms: 10_000,
            topic_data: vec![TopicProduceData {
                name: "t".to_owned(),
                partition_data: vec![PartitionProduceData {
                    index: 0,
                    records: crate::testing::batch_with_value(&[7u8; 10_000]),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let produce = encode_request(&header(ApiKey::Produce, 9, 1), &request).expect("encode");
        // The quota the frame's bytes exceed by 5 % when spread over the
        // 10 s minimum span of Kafka's default window (11 x 1 s).
        let frame_bytes = (produce.len() - 4) as f64;
        let quota = (frame_bytes / 10.0 / 1.05).floor();
        let set = QuotaAlteration {
            entity: vec![("client-id".to_owned(), Some("test".to_owned()))],
            ops: vec![("producer_byte_rate".to_owned(), Some(quota))],
        };
        let results = broker
            .controller
            .alter_client_quotas(vec![set], false)
            .await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");

        let shutdown = CancellationToken::new();
        let server = Server::new(broker, shutdown.clone());
        let (mut client, server_end) = tokio::io::duplex(1 << 20);
        let _task = tokio::spawn(async move { server.serve_connection(server_end, peer()).await });
        // The mute starts after the broker has read this request, so the
        // time since the write is a lower bound that load cannot shorten.
        let sent = tokio::time::Instant::now();
        client.write_all(&produce).await.expect("write");
        let mut frame = read_frame(&mut client).await.expect("a response");
        ResponseHeader::decode(&mut frame, response_header_version(ApiKey::Produce, 9))
            .expect("header");
        let response = ProduceResponse::decode(&mut frame, 9).expect("body");
        // Kafka's ClientQuotaManager: (rate - quota) / quota * span.
        let expected = ((frame_bytes / 10.0 - quota) / quota * 10_000.0).round() as i32;
        assert_eq!(response.throttle_time_ms, expected);
        assert!(response.throttle_time_ms > 0);
        // v9 throttles itself (KIP-219): the answer came at once, and the
        // next request is not read until the throttle time has passed.
        let next = encode_request(
            &header(ApiKey::ApiVersions, 3, 2),
            &ApiVersionsRequest::default(),
        )
        .expect("encode");
        client.write_all(&next).await.expect("write");
        read_frame(&mut client).await.expect("a response");
        let muted_for = sent.elapsed();
        assert!(
            muted_for >= Duration::from_millis(expected as u64),
            "answered after {muted_for:?}, throttle {expected} ms"
        );
        shutdown.cancel();
    }

    #[test]
    fn produce_with_acks_zero_expects_no_response_and_everything_else_does() {
        for version in [3, 8, 9, 11] {
            for (acks, answered) in [(0, false), (1, true), (-1, true)] {
                let request = ProduceRequest {
                    transactional_id: Some("tx".to_owned()),
                    acks,
                    ..Default::default()
                };
                let frame =
                    encode_request(&header(ApiKey::Produce, version, 1), &request).expect("encode");
                let expected = Expected::of(&frame.freeze().slice(4..));
                assert_eq!(expected.response, answered, "v{version} acks={acks}");
                assert_eq!(expected.correlation_id, 1);
            }
        }
        let frame = encode_request(
            &header(ApiKey::ApiVersions, 3, 9),
            &ApiVersionsRequest::default(),
        )
        .expect("encode");
        let expected = Expected::of(&frame.freeze().slice(4..));
        assert!(expected.response);
        assert_eq!(expected.correlation_id, 9);
    }

    /// The client's SASL (`sluice_client::conn::SaslOptions`) against this
    /// server over TCP, for every mechanism; a wrong password is the broker's
    /// SASL_AUTHENTICATION_FAILED.
    #[tokio::test]
    async fn sluices_own_client_authenticates_with_every_mechanism() {
        use sluice_client::conn::{ConnOptions, Connection, SaslOptions};

        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = crate::config::Config {
            kafka_security_protocol: crate::config::SecurityProtocol::SaslPlaintext,
            ..crate::config::Config::default()
        };
        config.sasl.bootstrap_users = ["SCRAM-SHA-512", "SCRAM-SHA-256"]
            .into_iter()
            .map(|mechanism| crate::config::BootstrapUser {
                name: "admin".to_owned(),
                password: Some("secret".to_owned()),
                password_file: None,
                mechanism: mechanism.to_owned(),
                iterations: 4096,
            })
            .collect();
        let broker = crate::testing::broker_with(dir.path(), config).await;
        crate::sasl::bootstrap::write_bootstrap_users(&broker)
            .await
            .expect("users");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let shutdown = sluice_runtime::CancellationToken::new();
        let server = Server::new(broker, shutdown.clone());
        let serving = tokio::spawn(async move { server.serve_tcp(listener).await });

        let options = |mechanism: &str, password: &str| ConnOptions {
            sasl: Some(SaslOptions {
                mechanism: mechanism.to_owned(),
                username: "admin".to_owned(),
                password: password.to_owned(),
            }),
            ..ConnOptions::default()
        };
        for mechanism in ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] {
            let conn = Connection::connect(&addr, options(mechanism, "secret"))
                .await
                .unwrap_or_else(|e| panic!("{mechanism}: {e}"));
            let metadata = conn
                .send_at(
                    &sluice_protocol::messages::metadata::MetadataRequest::default(),
                    4,
                )
                .await
                .expect("served after authentication");
            assert!(!metadata.brokers.is_empty());
            let refused = Connection::connect(&addr, options(mechanism, "wrong"))
                .await
                .expect_err("wrong password");
            assert_eq!(
                refused.code(),
                Some(sluice_protocol::error::ErrorCode::from_code(
                    sluice_protocol::error::codes::SASL_AUTHENTICATION_FAILED
                )),
                "{mechanism}: {refused}"
            );
        }
        // Without SASL, the first request after ApiVersions closes the
        // connection.
        let plain = Connection::connect(&addr, ConnOptions::default())
            .await
            .expect("ApiVersions is served before authentication");
        assert!(
            plain
                .send_at(
                    &sluice_protocol::messages::metadata::MetadataRequest::default(),
                    4
                )
                .await
                .is_err()
        );
        shutdown.cancel();
        serving.await.expect("server stops");
    }

    /// kafka-python 3.0 drops the bytes that arrive together with the close
    /// (it reads until the socket would block, then discards what it read
    /// if it also saw the end), so a refusal closed at once never reaches
    /// it. The broker answers the refusal and waits for the client to close.
    #[tokio::test]
    async fn a_refused_sasl_login_is_answered_and_the_client_closes_first() {
        use sluice_protocol::messages::sasl_authenticate::{
            SaslAuthenticateRequest, SaslAuthenticateResponse,
        };
        use sluice_protocol::messages::sasl_handshake::SaslHandshakeRequest;

        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = crate::config::Config {
            kafka_security_protocol: crate::config::SecurityProtocol::SaslPlaintext,
            ..crate::config::Config::default()
        };
        config.sasl.bootstrap_users = vec![crate::config::BootstrapUser {
            name: "admin".to_owned(),
            password: Some("secret".to_owned()),
            password_file: None,
            mechanism: "SCRAM-SHA-512".to_owned(),
            iterations: 4096,
        }];
        let broker = crate::testing::broker_with(dir.path(), config).await;
        crate::sasl::bootstrap::write_bootstrap_users(&broker)
            .await
            .expect("users");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shutdown = sluice_runtime::CancellationToken::new();
        let server = Server::new(broker, shutdown.clone());
        let serving = tokio::spawn(async move { server.serve_tcp(listener).await });

        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let handshake = encode_request(
            &header(ApiKey::SaslHandshake, 1, 1),
            &SaslHandshakeRequest {
                mechanism: "PLAIN".to_owned(),
            },
        )
        .expect("encode");
        stream.write_all(&handshake).await.expect("write");
        let login = encode_request(
            &header(ApiKey::SaslAuthenticate, 2, 2),
            &SaslAuthenticateRequest {
                auth_bytes: Bytes::from_static(b"\0admin\0wrong"),
            },
        )
        .expect("encode");
        stream.write_all(&login).await.expect("write");
        let mut frames = Vec::new();
        for _ in 0..2 {
            let mut prefix = [0u8; 4];
            tokio::time::timeout(DEADLINE, stream.read_exact(&mut prefix))
                .await
                .expect("an answer in time")
                .expect("an answer, not a close");
            let len = usize::try_from(i32::from_be_bytes(prefix)).expect("length");
            let mut body = vec![0u8; len];
            stream.read_exact(&mut body).await.expect("body");
            frames.push(Bytes::from(body));
        }
        let mut refusal = frames.pop().expect("two frames");
        let version = response_header_version(ApiKey::SaslAuthenticate, 2);
        let response_header = ResponseHeader::decode(&mut refusal, version).expect("header");
        assert_eq!(response_header.correlation_id, 2);
        let response = SaslAuthenticateResponse::decode(&mut refusal, 2).expect("body");
        assert_eq!(
            response.error_code,
            sluice_protocol::error::codes::SASL_AUTHENTICATION_FAILED
        );
        // The close does not follow the refusal: nothing more arrives
        // while the client has not closed (the linger is a second).
        let mut byte = [0u8; 1];
        let early = tokio::time::timeout(Duration::from_millis(300), stream.read(&mut byte)).await;
        assert!(
            early.is_err(),
            "the broker closed right behind the refusal: {early:?}"
        );
        // Once the client closes, so does the broker.
        stream.shutdown().await.expect("client close");
        let end = tokio::time::timeout(DEADLINE, stream.read(&mut byte))
            .await
            .expect("the broker closes after the client");
        assert!(matches!(end, Ok(0)), "{end:?}");
        shutdown.cancel();
        serving.await.expect("server stops");
    }

    /// The client's OAUTHBEARER against this server over TCP: a valid
    /// token opens the connection; an expired one ends in the broker's
    /// SASL_AUTHENTICATION_FAILED with its reason, after RFC 7628's error
    /// exchange.
    #[tokio::test]
    async fn sluices_own_client_authenticates_with_oauthbearer() {
        use base64::Engine;
        use sluice_client::conn::{ConnOptions, Connection, SaslOptions};

        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = crate::config::Config {
            kafka_security_protocol: crate::config::SecurityProtocol::SaslPlaintext,
            ..crate::config::Config::default()
        };
        config.sasl.enabled_mechanisms = vec!["OAUTHBEARER".to_owned()];
        config.sasl.oauthbearer.allow_unsecured = true;
        let broker = crate::testing::broker_with(dir.path(), config).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let shutdown = sluice_runtime::CancellationToken::new();
        let server = Server::new(broker, shutdown.clone());
        let serving = tokio::spawn(async move { server.serve_tcp(listener).await });

        let now_s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs();
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let jwt = |exp: u64| {
            format!(
                "{}.{}.",
                b64(r#"{"alg":"none"}"#),
                b64(&format!(r#"{{"sub":"alice","exp":{exp}}}"#))
            )
        };
        let options = |token: String| ConnOptions {
            sasl: Some(SaslOptions::oauthbearer(token)),
            ..ConnOptions::default()
        };
        let conn = Connection::connect(&addr, options(jwt(now_s + 600)))
            .await
            .expect("a valid token authenticates");
        conn.send_at(
            &sluice_protocol::messages::metadata::MetadataRequest::default(),
            4,
        )
        .await
        .expect("served after authentication");
        let refused = Connection::connect(&addr, options(jwt(now_s - 600)))
            .await
            .expect_err("expired token");
        assert_eq!(
            refused.code(),
            Some(sluice_protocol::error::ErrorCode::from_code(
                sluice_protocol::error::codes::SASL_AUTHENTICATION_FAILED
            )),
            "{refused}"
        );
        assert!(refused.to_string().contains("expired"), "{refused}");
        shutdown.cancel();
        serving.await.expect("server stops");
    }
}
