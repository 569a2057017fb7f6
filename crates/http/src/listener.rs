//! A TCP listener for axum that bounds open HTTP connections.
//!
//! Each accepted socket carries a semaphore permit that is released when
//! the socket is dropped, so a client opening connections (or idle live
//! tails) without end waits at accept instead of exhausting file
//! descriptors the Kafka listener also needs. Accept errors back off as
//! the Kafka listener's do ([`sluice_runtime::AcceptBackoff`]).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use sluice_runtime::AcceptBackoff;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Most HTTP connections open at once. Live tails hold one each; the
/// console holds one or two per open tab.
pub const MAX_HTTP_CONNECTIONS: usize = 1024;

/// A listener whose connections hold a permit.
#[derive(Debug)]
pub struct BoundedListener {
    inner: TcpListener,
    slots: Arc<Semaphore>,
    /// The delay after failed accepts, shared logic with the Kafka listener.
    backoff: AcceptBackoff,
}

impl BoundedListener {
    /// Wraps `inner`, allowing `max` connections at once.
    pub fn new(inner: TcpListener, max: usize) -> BoundedListener {
        BoundedListener {
            inner,
            slots: Arc::new(Semaphore::new(max)),
            backoff: AcceptBackoff::new("http"),
        }
    }
}

/// A connection and the permit it holds until it is dropped.
#[derive(Debug)]
pub struct BoundedStream {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    _counted: sluice_metrics::HttpConnectionGuard,
}

impl axum::serve::Listener for BoundedListener {
    type Io = BoundedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (BoundedStream, SocketAddr) {
        loop {
            // The semaphore is never closed, so acquiring cannot fail; if it
            // ever did, accepting without a permit is the safe fallback.
            let permit = Arc::clone(&self.slots).acquire_owned().await;
            let inner = &self.inner;
            let (stream, addr) = self.backoff.accept(|| inner.accept()).await;
            let _ = stream.set_nodelay(true);
            if let Ok(permit) = permit {
                return (
                    BoundedStream {
                        stream,
                        _permit: permit,
                        _counted: sluice_metrics::http_connection_opened(),
                    },
                    addr,
                );
            }
            tracing::error!("http connection semaphore closed; refusing connection");
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

impl AsyncRead for BoundedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for BoundedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
