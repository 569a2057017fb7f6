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
//! A malformed request costs only its own connection: it is logged and the
//! connection is closed, or answered with an error when the header is
//! readable and Kafka defines one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use futures::stream::{FuturesOrdered, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::frames::{FrameError, FrameReader, RequestBudget};
use crate::handlers::{self, RequestContext};
use crate::{Broker, Principal};

/// How long a connection gets to finish in-flight work at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Accepts connections until `stop` flips, then waits for every connection
/// to finish what it has in flight.
pub async fn serve(listener: TcpListener, broker: Arc<Broker>, mut stop: watch::Receiver<bool>) {
    let limits = &broker.config.limits;
    // Bounds open connections; an accept waits for a free slot.
    let slots = Arc::new(Semaphore::new(limits.max_connections as usize));
    // Bounds the bytes of requests held across all connections.
    let budget = RequestBudget::new(limits.queued_max_request_bytes);
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stop.changed() => break,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let broker = Arc::clone(&broker);
        let stop = stop.clone();
        let budget = budget.clone();
        tasks.spawn(async move {
            let _permit = permit;
            let _open = sluice_metrics::connection_opened();
            if let Err(e) = Connection::new(stream, peer, broker, budget, stop)
                .run()
                .await
            {
                tracing::warn!(%peer, "closing connection: {e}");
            }
        });
        // Reap finished connections so the set does not grow without bound.
        while tasks.try_join_next().is_some() {}
    }
    drop(listener);
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        tracing::warn!("connections still busy after {SHUTDOWN_GRACE:?}; dropping them");
    }
}

/// Why a connection was closed by the broker.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// Socket read or write failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The frame length is negative or above `socket.request.max.bytes`.
    #[error("malformed frame: {0}")]
    Frame(String),
    /// The request could not be decoded and has no reply.
    #[error("malformed request: {0}")]
    Request(String),
    /// No request for `connections.max.idle.ms`.
    #[error("idle for {0:?}")]
    Idle(Duration),
}

struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    broker: Arc<Broker>,
    budget: RequestBudget,
    stop: watch::Receiver<bool>,
}

impl Connection {
    fn new(
        stream: TcpStream,
        peer: SocketAddr,
        broker: Arc<Broker>,
        budget: RequestBudget,
        stop: watch::Receiver<bool>,
    ) -> Self {
        Connection {
            stream,
            peer,
            broker,
            budget,
            stop,
        }
    }

    async fn run(self) -> Result<(), ConnectionError> {
        let Connection {
            stream,
            peer,
            broker,
            budget,
            mut stop,
        } = self;
        let _ = stream.set_nodelay(true);
        let limits = &broker.config.limits;
        let idle = Duration::from_millis(limits.connections_max_idle_ms);
        let max_in_flight = limits.max_in_flight_requests_per_connection as usize;
        let (read_half, mut write_half) = stream.into_split();
        let mut frames = FrameReader::new(
            read_half,
            limits.socket_request_max_bytes,
            budget,
            Duration::from_millis(limits.request_read_timeout_ms),
        );
        let mut in_flight = FuturesOrdered::new();
        let principal = Principal::anonymous();
        let mut stopping = false;

        loop {
            let can_read = !stopping && in_flight.len() < max_in_flight;
            tokio::select! {
                biased;
                Some(reply) = in_flight.next(), if !in_flight.is_empty() => {
                    let reply: Option<BytesMut> = reply;
                    if let Some(bytes) = reply {
                        write_half.write_all(&bytes).await?;
                    }
                }
                frame = frames.next(), if can_read => {
                    let frame = match frame {
                        Ok(None) => break,
                        Ok(Some(frame)) => frame,
                        Err(e) => {
                            drain(&mut in_flight, &mut write_half).await?;
                            return Err(frame_error(e));
                        }
                    };
                    let ctx = RequestContext { peer, principal: principal.clone() };
                    match handlers::dispatch(&broker, ctx, frame.bytes) {
                        Ok(reply) => {
                            // The frame's budget comes back once its reply is
                            // produced (or dropped with the connection).
                            let budget = frame.budget;
                            in_flight.push_back(Box::pin(async move {
                                let response = reply.await;
                                drop(budget);
                                response
                            }) as handlers::Reply);
                        }
                        Err(e) => {
                            drain(&mut in_flight, &mut write_half).await?;
                            return Err(e);
                        }
                    }
                }
                _ = tokio::time::sleep(idle), if in_flight.is_empty() && !stopping => {
                    return Err(ConnectionError::Idle(idle));
                }
                _ = stop.changed(), if !stopping => {
                    // Finish what was read, answer it, then close.
                    stopping = true;
                }
            }
            if stopping && in_flight.is_empty() {
                break;
            }
        }
        drain(&mut in_flight, &mut write_half).await?;
        let _ = write_half.shutdown().await;
        tracing::debug!(%peer, "connection closed");
        Ok(())
    }
}

/// Writes every pending reply, in order.
async fn drain(
    in_flight: &mut FuturesOrdered<handlers::Reply>,
    writer: &mut tokio::net::tcp::OwnedWriteHalf,
) -> Result<(), ConnectionError> {
    while let Some(reply) = in_flight.next().await {
        if let Some(bytes) = reply {
            writer.write_all(&bytes).await?;
        }
    }
    Ok(())
}

fn frame_error(e: FrameError) -> ConnectionError {
    match e {
        FrameError::Io(e) => ConnectionError::Io(e),
        other => ConnectionError::Frame(other.to_string()),
    }
}
