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

/// Most TLS connections whose handshake is done but that axum has not
/// taken yet; handshakes beyond it wait (their connection slot is held).
const TLS_READY_QUEUE: usize = 64;

/// A bounded listener whose connections speak TLS (`http_tls`). Accepting
/// and handshakes run on a task of their own, each handshake in its own
/// task bounded by [`sluice_broker::tls::TLS_HANDSHAKE_TIMEOUT`], so a
/// slow or hostile client never holds the accept loop; finished
/// connections queue for axum.
#[derive(Debug)]
pub struct TlsBoundedListener {
    ready: tokio::sync::mpsc::Receiver<(BoundedTlsStream, SocketAddr)>,
    local_addr: SocketAddr,
}

impl TlsBoundedListener {
    /// Serves TLS with `tls`'s current certificate on `inner`, allowing
    /// `max` connections at once. The accept task ends when the listener
    /// is dropped.
    pub fn new(
        inner: TcpListener,
        max: usize,
        tls: Arc<sluice_broker::tls::ServerTls>,
    ) -> io::Result<TlsBoundedListener> {
        let local_addr = inner.local_addr()?;
        let (tx, ready) = tokio::sync::mpsc::channel(TLS_READY_QUEUE);
        let slots = Arc::new(Semaphore::new(max));
        tokio::spawn(async move {
            let mut backoff = AcceptBackoff::new("https");
            loop {
                let permit = tokio::select! {
                    permit = Arc::clone(&slots).acquire_owned() => permit,
                    () = tx.closed() => return,
                };
                let Ok(permit) = permit else { return };
                let (stream, addr) = tokio::select! {
                    accepted = backoff.accept(|| inner.accept()) => accepted,
                    () = tx.closed() => return,
                };
                let _ = stream.set_nodelay(true);
                let acceptor = tokio_rustls::TlsAcceptor::from(tls.config());
                let tx = tx.clone();
                tokio::spawn(async move {
                    let timeout = sluice_broker::tls::TLS_HANDSHAKE_TIMEOUT;
                    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let stream = BoundedTlsStream {
                                stream: Box::new(stream),
                                _permit: permit,
                                _counted: sluice_metrics::http_connection_opened(),
                            };
                            // A closed queue means the server stopped.
                            let _ = tx.send((stream, addr)).await;
                        }
                        Ok(Err(e)) => tracing::info!(%addr, "https handshake failed: {e}"),
                        Err(_) => {
                            tracing::info!(%addr, "https handshake not done within {timeout:?}")
                        }
                    }
                });
            }
        });
        Ok(TlsBoundedListener { ready, local_addr })
    }
}

/// A TLS connection and the permit it holds until it is dropped.
#[derive(Debug)]
pub struct BoundedTlsStream {
    stream: Box<tokio_rustls::server::TlsStream<TcpStream>>,
    _permit: OwnedSemaphorePermit,
    _counted: sluice_metrics::HttpConnectionGuard,
}

impl axum::serve::Listener for TlsBoundedListener {
    type Io = BoundedTlsStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (BoundedTlsStream, SocketAddr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accept task only ends when this listener is dropped, so
            // the queue never closes while it is in use.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local_addr)
    }
}

impl AsyncRead for BoundedTlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for BoundedTlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.stream).poll_shutdown(cx)
    }
}
