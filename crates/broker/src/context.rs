//! What every request of a connection carries: who is asking, from where,
//! on which listener, and the connection's quota mute. Below the handlers,
//! the authorizer and the quota meters, which all read it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::Principal;

/// A response frame in the making; `None` means "send nothing" (acks=0).
/// A Fetch response's record sets may be left in their segment files, as
/// splices the connection sends from there ([`sluice_protocol::SplicedFrame`]).
pub type Reply = std::pin::Pin<
    Box<dyn std::future::Future<Output = Option<sluice_protocol::SplicedFrame>> + Send>,
>;

/// The listener name forwarded requests are dispatched under on the
/// active controller (client quotas exempt them there).
pub const FORWARDED_LISTENER: &str = "CONTROLLER";

/// Who is asking, and from where. Every request carries a principal.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The client's address.
    pub peer: SocketAddr,
    /// The authenticated principal (`User:ANONYMOUS` unless TLS or SASL
    /// authenticated the connection); shared by its requests.
    pub principal: Arc<Principal>,
    /// The listener the request arrived on, by its configured name.
    pub listener: Arc<str>,
    /// The connection's mute deadline: a request over a client quota sets
    /// it, the connection loop stops reading until it passes (KIP-219).
    pub throttle: ConnectionThrottle,
}

/// When a connection may read requests again: set by a throttled
/// response, read by the connection loop. Shared by every request of one
/// connection through [`RequestContext`].
#[derive(Debug, Clone, Default)]
pub struct ConnectionThrottle {
    /// The deadline, if muted. Held only to read or extend it.
    muted_until: Arc<Mutex<Option<tokio::time::Instant>>>,
}

impl ConnectionThrottle {
    /// Stops reading for `delay` from now (a longer mute already set stays).
    pub fn mute_for(&self, delay: Duration) {
        if delay.is_zero() {
            return;
        }
        let until = tokio::time::Instant::now() + delay;
        let mut muted = self.lock();
        if muted.is_none_or(|m| m < until) {
            *muted = Some(until);
        }
    }

    /// The deadline while muted; `None` once it has passed.
    pub fn muted_until(&self) -> Option<tokio::time::Instant> {
        let mut muted = self.lock();
        match *muted {
            Some(until) if until > tokio::time::Instant::now() => Some(until),
            _ => {
                *muted = None;
                None
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<tokio::time::Instant>> {
        // One Option: always consistent, so a poisoned lock is used.
        self.muted_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
