//! Reading length-prefixed request frames under a broker-wide memory budget.
//!
//! A frame is a 4-byte big-endian length and that many bytes. The length is
//! checked against `socket.request.max.bytes`, then that many bytes are taken
//! from the [`RequestBudget`] shared by every connection (Kafka's
//! `queued.max.request.bytes`) before the body is read. While the budget is
//! exhausted the connection simply does not read; other connections carry on.
//!
//! The buffer grows with the bytes that arrive, never to the declared length
//! up front: it is at most twice what has arrived (at least 4 KiB), so a
//! client that announces 100 MiB and sends ten bytes makes the broker hold
//! 4 KiB, not 100 MiB. (tokio-util's
//! `LengthDelimitedCodec` reserves the declared length as soon as it has
//! read the prefix, which is why this module exists.)
//!
//! [`FrameReader::next`] is cancel-safe: all progress (prefix bytes, the
//! budget wait, body bytes) lives in the reader, so the connection loop can
//! drop the future in a `select!` and call it again.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::{BufMut, Bytes};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore};

/// First growth of a frame's buffer: a frame that has not sent a byte of
/// its body costs at most this much, and small requests take one read.
pub const MIN_GROWTH_BYTES: usize = 4096;

/// The bytes of request frames read or being read, across all connections.
#[derive(Debug, Clone)]
pub struct RequestBudget {
    semaphore: Arc<Semaphore>,
    total_bytes: u64,
}

impl RequestBudget {
    /// A budget of `total_bytes` (at most tokio's semaphore ceiling, which
    /// config validation guarantees).
    pub fn new(total_bytes: u64) -> RequestBudget {
        let permits = usize::try_from(total_bytes)
            .unwrap_or(Semaphore::MAX_PERMITS)
            .min(Semaphore::MAX_PERMITS);
        RequestBudget {
            semaphore: Arc::new(Semaphore::new(permits)),
            total_bytes,
        }
    }

    /// Bytes not held by any frame right now.
    pub fn available_bytes(&self) -> usize {
        self.semaphore.available_permits()
    }

    /// The whole budget.
    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }
}

/// One request frame and its share of the budget, given back when dropped.
#[derive(Debug)]
pub struct Frame {
    /// The frame's bytes, without the length prefix.
    pub bytes: Bytes,
    /// Held until the request's reply is produced.
    pub budget: FramePermit,
    /// When the frame's last byte was read: the start of its queue time
    /// (`sluice_kafka_request_queue_duration_seconds`).
    pub read_at: std::time::Instant,
}

/// A frame's share of the [`RequestBudget`]; returned on drop.
#[derive(Debug)]
pub struct FramePermit {
    _permit: OwnedSemaphorePermit,
    _gauge: sluice_metrics::QueuedRequestGuard,
}

/// Why a frame could not be read. Every variant closes the connection.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The length prefix is negative.
    #[error("frame length {0} is negative")]
    Negative(i32),
    /// The length prefix is above `socket.request.max.bytes`.
    #[error("frame length {length} exceeds socket.request.max.bytes ({max_bytes})")]
    TooLarge {
        /// Declared length.
        length: i32,
        /// The limit.
        max_bytes: u32,
    },
    /// The rest of an admitted frame did not arrive within
    /// `limits.request_read_timeout_ms`.
    #[error("frame not complete within {timeout_ms} ms ({read_bytes} of {length} bytes)")]
    ReadTimeout {
        /// The limit.
        timeout_ms: u128,
        /// Bytes of the frame (prefix included) that arrived.
        read_bytes: usize,
        /// Bytes expected (prefix included).
        length: usize,
    },
    /// The peer closed the connection part-way through a frame.
    #[error("connection closed in the middle of a frame ({read_bytes} of {length} bytes)")]
    Truncated {
        /// Bytes of the frame (prefix included) that arrived.
        read_bytes: usize,
        /// Bytes expected (prefix included).
        length: usize,
    },
    /// The budget was closed (never happens while the broker runs).
    #[error("request budget closed")]
    BudgetClosed(#[from] AcquireError),
}

type Acquire = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>;

/// A frame whose length is known.
struct Pending {
    length: usize,
    /// The budget wait, kept across cancellations so the connection keeps
    /// its place in the semaphore's queue.
    acquire: Option<Acquire>,
    permit: Option<FramePermit>,
    /// When the rest of the frame must have arrived (set once admitted).
    deadline: Option<tokio::time::Instant>,
    body: Vec<u8>,
}

/// Reads frames from one connection.
pub struct FrameReader<R> {
    reader: R,
    max_frame_bytes: u32,
    budget: RequestBudget,
    read_timeout: std::time::Duration,
    prefix: [u8; 4],
    prefix_len: usize,
    pending: Option<Pending>,
}

impl<R> std::fmt::Debug for FrameReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameReader")
            .field("max_frame_bytes", &self.max_frame_bytes)
            .field("pending_length", &self.pending.as_ref().map(|p| p.length))
            .finish_non_exhaustive()
    }
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A reader of frames up to `max_frame_bytes` long, each of which must
    /// arrive whole within `read_timeout` of being admitted to the budget.
    pub fn new(
        reader: R,
        max_frame_bytes: u32,
        budget: RequestBudget,
        read_timeout: std::time::Duration,
    ) -> FrameReader<R> {
        FrameReader {
            reader,
            max_frame_bytes,
            budget,
            read_timeout,
            prefix: [0; 4],
            prefix_len: 0,
            pending: None,
        }
    }

    /// Changes the longest frame accepted from the next length prefix on:
    /// a SASL listener accepts only small frames before authentication.
    pub fn set_max_frame_bytes(&mut self, max_frame_bytes: u32) {
        self.max_frame_bytes = max_frame_bytes;
    }

    /// The buffer capacity of the frame being read (tests and metrics).
    pub fn buffered_capacity(&self) -> usize {
        self.pending.as_ref().map_or(0, |p| p.body.capacity())
    }

    /// The next frame, or `None` when the peer closed between frames.
    /// Cancel-safe.
    pub async fn next(&mut self) -> Result<Option<Frame>, FrameError> {
        if self.pending.is_none() {
            while self.prefix_len < self.prefix.len() {
                let n = self
                    .reader
                    .read(&mut self.prefix[self.prefix_len..])
                    .await?;
                if n == 0 {
                    if self.prefix_len == 0 {
                        return Ok(None);
                    }
                    return Err(FrameError::Truncated {
                        read_bytes: self.prefix_len,
                        length: self.prefix.len(),
                    });
                }
                self.prefix_len += n;
            }
            self.prefix_len = 0;
            let length = i32::from_be_bytes(self.prefix);
            let Ok(length_bytes) = u32::try_from(length) else {
                return Err(FrameError::Negative(length));
            };
            if length_bytes > self.max_frame_bytes {
                return Err(FrameError::TooLarge {
                    length,
                    max_bytes: self.max_frame_bytes,
                });
            }
            let available = self.budget.available_bytes();
            if available < length_bytes as usize {
                tracing::debug!(
                    frame_bytes = length_bytes,
                    available_bytes = available,
                    "request budget (limits.queued_max_request_bytes) exhausted; waiting before reading the frame"
                );
            }
            let semaphore = Arc::clone(&self.budget.semaphore);
            self.pending = Some(Pending {
                length: length_bytes as usize,
                acquire: Some(Box::pin(semaphore.acquire_many_owned(length_bytes))),
                permit: None,
                deadline: None,
                body: Vec::new(),
            });
        }
        let Some(pending) = self.pending.as_mut() else {
            unreachable!("set above");
        };
        if let Some(acquire) = pending.acquire.as_mut() {
            let permit = acquire.await?;
            pending.permit = Some(FramePermit {
                _permit: permit,
                _gauge: sluice_metrics::request_queued(pending.length),
            });
            pending.acquire = None;
            pending.deadline = Some(tokio::time::Instant::now() + self.read_timeout);
        }
        let deadline = pending
            .deadline
            .unwrap_or_else(|| tokio::time::Instant::now() + self.read_timeout);
        while pending.body.len() < pending.length {
            let remaining = pending.length - pending.body.len();
            if pending.body.capacity() == pending.body.len() {
                // Grow with what has arrived: double (from 4 KiB), never
                // past the declared length. A client must send N bytes to
                // make the broker hold about 2N; growing by a fixed chunk
                // instead would copy a 100 MiB frame hundreds of times.
                let arrived = pending.body.len();
                let target = (arrived + arrived.max(MIN_GROWTH_BYTES)).min(pending.length);
                pending.body.reserve_exact(target - arrived);
            }
            let spare = pending.body.capacity() - pending.body.len();
            let outcome = {
                let mut limited = (&mut pending.body).limit(remaining.min(spare));
                tokio::time::timeout_at(deadline, self.reader.read_buf(&mut limited)).await
            };
            let Ok(n) = outcome else {
                let error = FrameError::ReadTimeout {
                    timeout_ms: self.read_timeout.as_millis(),
                    read_bytes: 4 + pending.body.len(),
                    length: 4 + pending.length,
                };
                // Give the bytes back to the budget now, not when the
                // connection is torn down.
                self.pending = None;
                return Err(error);
            };
            let n = n?;
            if n == 0 {
                return Err(FrameError::Truncated {
                    read_bytes: 4 + pending.body.len(),
                    length: 4 + pending.length,
                });
            }
        }
        let Some(done) = self.pending.take() else {
            unreachable!("checked above");
        };
        let Some(permit) = done.permit else {
            unreachable!("acquired above");
        };
        Ok(Some(Frame {
            bytes: Bytes::from(done.body),
            budget: permit,
            read_at: std::time::Instant::now(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::AsyncWriteExt;

    use super::*;

    const MIB: u32 = 1024 * 1024;
    /// Long enough never to fire in the tests that are not about it.
    const TIMEOUT: Duration = Duration::from_secs(600);

    fn framed(payload: &[u8]) -> Vec<u8> {
        let mut out = (payload.len() as i32).to_be_bytes().to_vec();
        out.extend_from_slice(payload);
        out
    }

    #[tokio::test]
    async fn a_large_declared_length_does_not_allocate_until_bytes_arrive() {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let budget = RequestBudget::new(u64::from(200 * MIB));
        let mut reader = FrameReader::new(server, 100 * MIB, budget.clone(), TIMEOUT);
        client
            .write_all(&(100 * MIB as i32).to_be_bytes())
            .await
            .expect("write");
        client.write_all(&[7u8; 10]).await.expect("write");
        // The frame cannot complete; stop waiting once the ten bytes are in.
        let read = tokio::time::timeout(Duration::from_millis(200), reader.next()).await;
        assert!(
            read.is_err(),
            "a frame that has not arrived is not returned"
        );
        let capacity = reader.buffered_capacity();
        assert!(
            (10..=MIN_GROWTH_BYTES).contains(&capacity),
            "buffer capacity {capacity} for 10 bytes of a 100 MiB frame"
        );
        // Once more arrives, the buffer stays within twice what arrived.
        client.write_all(&vec![7u8; 300_000]).await.expect("write");
        let read = tokio::time::timeout(Duration::from_millis(200), reader.next()).await;
        assert!(read.is_err(), "still incomplete");
        let capacity = reader.buffered_capacity();
        assert!(
            (300_010..=2 * 300_010 + MIN_GROWTH_BYTES).contains(&capacity),
            "buffer capacity {capacity} for 300010 bytes of a 100 MiB frame"
        );
        // The whole declared length is reserved from the budget, so the
        // frame can always finish once admitted.
        assert_eq!(budget.available_bytes(), (100 * MIB) as usize);
    }

    #[tokio::test]
    async fn frames_are_read_whole_across_cancellations_and_budget_comes_back() {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let budget = RequestBudget::new(u64::from(4 * MIB));
        let mut reader = FrameReader::new(server, MIB, budget.clone(), TIMEOUT);
        let payload: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        let mut wire = framed(&payload);
        wire.extend(framed(b"second"));
        let writer = tokio::spawn(async move {
            for piece in wire.chunks(1000) {
                client.write_all(piece).await.expect("write");
            }
            client
        });
        // Cancel the read over and over; progress must not be lost.
        let first = loop {
            match tokio::time::timeout(Duration::from_micros(50), reader.next()).await {
                Ok(result) => break result.expect("frame").expect("not closed"),
                Err(_) => continue,
            }
        };
        assert_eq!(first.bytes.as_ref(), payload.as_slice());
        assert_eq!(budget.available_bytes(), (4 * MIB) as usize - payload.len());
        drop(first);
        assert_eq!(budget.available_bytes(), (4 * MIB) as usize);
        let second = reader.next().await.expect("frame").expect("not closed");
        assert_eq!(second.bytes.as_ref(), b"second");
        drop(writer.await.expect("writer"));
        assert!(reader.next().await.expect("clean close").is_none());
    }

    #[tokio::test]
    async fn negative_and_oversized_lengths_are_refused_before_any_allocation() {
        for (length, oversized) in [(-1i32, false), (i32::MIN, false), (i32::MAX, true)] {
            let (mut client, server) = tokio::io::duplex(64);
            let mut reader = FrameReader::new(
                server,
                100 * MIB,
                RequestBudget::new(u64::from(200 * MIB)),
                TIMEOUT,
            );
            client
                .write_all(&length.to_be_bytes())
                .await
                .expect("write");
            let err = reader.next().await.expect_err("refused");
            match err {
                FrameError::Negative(n) => assert!(!oversized && n == length),
                FrameError::TooLarge { length: n, .. } => assert!(oversized && n == length),
                other => panic!("unexpected {other:?}"),
            }
            assert_eq!(reader.buffered_capacity(), 0);
        }
    }

    #[tokio::test]
    async fn a_close_inside_a_frame_is_reported() {
        let (mut client, server) = tokio::io::duplex(64);
        let mut reader = FrameReader::new(server, MIB, RequestBudget::new(u64::from(MIB)), TIMEOUT);
        client
            .write_all(&100i32.to_be_bytes())
            .await
            .expect("write");
        client.write_all(b"short").await.expect("write");
        drop(client);
        assert!(matches!(
            reader.next().await,
            Err(FrameError::Truncated {
                read_bytes: 9,
                length: 104
            })
        ));
    }

    #[tokio::test]
    async fn an_exhausted_budget_holds_the_next_frame_until_released() {
        let budget = RequestBudget::new(u64::from(MIB));
        let (mut client_a, server_a) = tokio::io::duplex(1 << 20);
        let (mut client_b, server_b) = tokio::io::duplex(1 << 20);
        let mut reader_a = FrameReader::new(server_a, MIB, budget.clone(), TIMEOUT);
        let mut reader_b = FrameReader::new(server_b, MIB, budget.clone(), TIMEOUT);
        let big = vec![1u8; (MIB as usize) * 3 / 4];
        client_a.write_all(&framed(&big)).await.expect("write a");
        let held = reader_a.next().await.expect("a").expect("frame a");
        // B's frame needs more than what is left: B waits without reading.
        let small = vec![2u8; (MIB as usize) / 2];
        client_b.write_all(&framed(&small)).await.expect("write b");
        let waited = tokio::time::timeout(Duration::from_millis(200), reader_b.next()).await;
        assert!(waited.is_err(), "B must wait while A holds the budget");
        assert_eq!(reader_b.buffered_capacity(), 0, "B read nothing yet");
        drop(held); // A's reply was produced
        let frame_b = tokio::time::timeout(Duration::from_secs(5), reader_b.next())
            .await
            .expect("B proceeds once A is released")
            .expect("b")
            .expect("frame b");
        assert_eq!(frame_b.bytes.len(), small.len());
    }

    #[tokio::test]
    async fn a_frame_that_stops_arriving_is_dropped_and_its_budget_returned() {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let budget = RequestBudget::new(u64::from(MIB));
        let mut reader = FrameReader::new(server, MIB, budget.clone(), Duration::from_millis(100));
        // Declare the whole budget, send 10 bytes, then nothing.
        client
            .write_all(&(MIB as i32).to_be_bytes())
            .await
            .expect("write length");
        client.write_all(&[0u8; 10]).await.expect("write bytes");
        let started = std::time::Instant::now();
        let err = tokio::time::timeout(Duration::from_secs(10), reader.next())
            .await
            .expect("the reader must give up on its own")
            .expect_err("a stalled frame is an error");
        assert!(
            matches!(err, FrameError::ReadTimeout { read_bytes: 14, .. }),
            "{err}"
        );
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert_eq!(
            budget.available_bytes(),
            MIB as usize,
            "budget not returned"
        );
    }
}
