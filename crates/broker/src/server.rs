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
//! one; TLS, or a simulated network in tests, are others. Accept errors back off with the shared
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

use bytes::{Buf, Bytes, BytesMut};
use futures::stream::{FuturesOrdered, StreamExt};
use sluice_protocol::{ApiKey, RequestHeader, request_header_version};
use sluice_runtime::{AcceptBackoff, CancellationToken};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::frames::{FrameError, FrameReader, RequestBudget};
use crate::handlers::{self, RequestContext};
use crate::{Broker, Principal};

/// How long a connection gets to finish in-flight work at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The Kafka listener's name. Kafka names a listener after its security
/// protocol unless configured otherwise; the only protocol today is
/// PLAINTEXT (`kafka_security_protocol` refuses the others at start).
pub const LISTENER_NAME: &str = "PLAINTEXT";

/// Accepts TCP connections on `listener` until `shutdown` is cancelled,
/// then waits for every connection to finish what it has in flight.
pub async fn serve(listener: TcpListener, broker: Arc<Broker>, shutdown: CancellationToken) {
    Server::new(broker, shutdown).serve_tcp(listener).await;
}

/// A source of connections: the TCP listener, or anything else that yields
/// byte streams (TLS over TCP, a simulated network).
pub trait Acceptor: Send + Sync {
    /// The connection's read side.
    type Read: AsyncRead + Unpin + Send + 'static;
    /// The connection's write side.
    type Write: AsyncWrite + Unpin + Send + 'static;

    /// The next connection, split, and its peer's address. An error is
    /// retried after [`AcceptBackoff`]'s delay.
    fn accept(
        &self,
    ) -> impl std::future::Future<Output = std::io::Result<(Self::Read, Self::Write, SocketAddr)>> + Send;
}

impl Acceptor for TcpListener {
    type Read = tokio::net::tcp::OwnedReadHalf;
    type Write = tokio::net::tcp::OwnedWriteHalf;

    async fn accept(&self) -> std::io::Result<(Self::Read, Self::Write, SocketAddr)> {
        let (stream, peer) = TcpListener::accept(self).await?;
        let _ = stream.set_nodelay(true);
        // A TCP stream splits without a lock.
        let (read, write) = stream.into_split();
        Ok((read, write, peer))
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
}

impl Server {
    /// A server for `broker`'s listener that stops when `shutdown` is
    /// cancelled.
    pub fn new(broker: Arc<Broker>, shutdown: CancellationToken) -> Server {
        let budget = RequestBudget::new(broker.config.limits.queued_max_request_bytes);
        Server {
            broker,
            budget,
            shutdown,
        }
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
        let limits = &self.broker.config.limits;
        // Bounds open connections; an accept waits for a free slot.
        let slots = Arc::new(Semaphore::new(limits.max_connections as usize));
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
            let (read, write, peer) = tokio::select! {
                accepted = backoff.accept(|| acceptor.accept()) => accepted,
                () = self.shutdown.cancelled() => break,
            };
            let server = self.clone();
            tasks.spawn(async move {
                let _permit = permit;
                let _open = sluice_metrics::connection_opened();
                if let Err(e) = server.run(read, write, peer).await {
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
        self.run(read, write, peer).await
    }

    async fn run<R, W>(
        &self,
        read: R,
        mut write: W,
        peer: SocketAddr,
    ) -> Result<(), ConnectionError>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
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
        let principal = Arc::new(Principal::anonymous());
        let listener: Arc<str> = Arc::from(LISTENER_NAME);
        let mut stopping = false;

        loop {
            let can_read = !stopping && in_flight.len() < max_in_flight;
            tokio::select! {
                biased;
                Some(reply) = in_flight.next(), if !in_flight.is_empty() => {
                    write_reply(&mut write, reply).await?;
                }
                frame = frames.next(), if can_read => {
                    let frame = match frame {
                        Ok(None) => break,
                        Ok(Some(frame)) => frame,
                        Err(e) => {
                            drain(&mut in_flight, &mut write).await?;
                            return Err(frame_error(e));
                        }
                    };
                    let expected = Expected::of(&frame.bytes);
                    let ctx = RequestContext {
                        peer,
                        principal: Arc::clone(&principal),
                        listener: Arc::clone(&listener),
                    };
                    match handlers::dispatch(broker, ctx, frame.bytes) {
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
        let _ = write.shutdown().await;
        tracing::debug!(%peer, "connection closed");
        Ok(())
    }
}

/// A request being handled: what its reply must be, and the reply.
type InFlight =
    std::pin::Pin<Box<dyn std::future::Future<Output = (Expected, Option<BytesMut>)> + Send>>;

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
async fn write_reply<W: AsyncWrite + Unpin>(
    writer: &mut W,
    (expected, reply): (Expected, Option<BytesMut>),
) -> Result<(), ConnectionError> {
    match reply {
        Some(bytes) => {
            writer.write_all(&bytes).await?;
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
async fn drain<W: AsyncWrite + Unpin>(
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
    type Accepted = std::io::Result<(DuplexRead, DuplexWrite, SocketAddr)>;

    /// Hands out scripted accept results in order, then waits forever.
    struct ScriptedAcceptor(std::sync::Mutex<std::collections::VecDeque<Accepted>>);

    impl Acceptor for ScriptedAcceptor {
        type Read = DuplexRead;
        type Write = DuplexWrite;

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
            [emfile(), emfile(), Ok((read, write, peer()))].into(),
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
}
