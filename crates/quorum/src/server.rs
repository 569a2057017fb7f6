//! The controller listener: accepts peers, reads one request frame at a
//! time and answers it. Bounded like the Kafka listener: a connection
//! limit, a frame size limit ([`crate::wire::MAX_FRAME_BYTES`]) and an idle
//! timeout. A malformed frame closes its connection and nothing else.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::transport::{PeerStream, ServerTlsSource, accept};
use crate::wire::{Request, Response, read_frame, write_frame};
use futures::future::BoxFuture;

/// Connections the controller listener serves at once. A cluster needs a
/// few per peer (replication, votes, control requests, status probes); the
/// bound stops a misbehaving client from exhausting file descriptors.
pub const MAX_CONTROLLER_CONNECTIONS: usize = 256;

/// A connection silent for this long is closed. Peers keep pooled
/// connections warm with heartbeats far more often than this.
pub const CONTROLLER_IDLE_TIMEOUT_MS: u64 = 60_000;

/// What answers the requests: the quorum member.
pub(crate) trait Serve: Send + Sync + 'static {
    /// Answers one request.
    fn serve(&self, request: Request) -> BoxFuture<'_, Response>;
}

/// Accepts until `shutdown`, serving each connection on its own task
/// (over TLS with a required client certificate when `tls` is set).
pub(crate) async fn serve<Q: Serve>(
    listener: TcpListener,
    quorum: Weak<Q>,
    tls: Option<Arc<dyn ServerTlsSource>>,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(MAX_CONTROLLER_CONNECTIONS));
    let mut backoff = sluice_runtime::AcceptBackoff::new("controller");
    loop {
        let (stream, peer) = tokio::select! {
            accepted = backoff.accept(|| listener.accept()) => accepted,
            () = shutdown.cancelled() => return,
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            tracing::warn!(%peer, "controller listener is at its connection limit; closing");
            continue;
        };
        let Some(q) = quorum.upgrade() else { return };
        let stop = shutdown.clone();
        let tls = tls.clone();
        sluice_runtime::spawn_detached("controller-connection", async move {
            tokio::select! {
                () = connection(stream, q, tls) => {}
                () = stop.cancelled() => {}
            }
            drop(permit);
        });
    }
}

/// Runs the handshake (in the connection's own task, so a slow or hostile
/// peer never holds the accept loop), then serves requests.
async fn connection<Q: Serve>(
    stream: TcpStream,
    quorum: Arc<Q>,
    tls: Option<Arc<dyn ServerTlsSource>>,
) {
    let peer = stream.peer_addr().ok();
    let _ = stream.set_nodelay(true);
    match accept(stream, tls.as_ref()).await {
        Ok(stream) => requests(stream, peer, quorum).await,
        Err(e) => tracing::warn!(?peer, "controller listener refused a peer: {e}"),
    }
}

async fn requests<Q: Serve>(
    mut stream: Box<dyn PeerStream>,
    peer: Option<std::net::SocketAddr>,
    quorum: Arc<Q>,
) {
    let idle = Duration::from_millis(CONTROLLER_IDLE_TIMEOUT_MS);
    loop {
        let request = match tokio::time::timeout(idle, read_frame::<Request>(&mut stream)).await {
            Err(_) => return,
            Ok(Ok(None)) => return,
            Ok(Ok(Some(request))) => request,
            Ok(Err(e)) => {
                tracing::warn!(
                    ?peer,
                    "malformed controller request, closing the connection: {e}"
                );
                return;
            }
        };
        let response: Response = quorum.serve(request).await;
        if let Err(e) = write_frame(&mut stream, &response).await {
            tracing::info!(?peer, "cannot answer a controller request: {e}");
            return;
        }
    }
}
