//! The delay between failed accepts, shared by the Kafka and HTTP
//! listeners.
//!
//! An accept fails mostly for want of file descriptors (EMFILE, ENFILE),
//! which clears only when some connection closes. Retrying at once spins a
//! core and floods the log; a fixed long delay leaves the listener deaf
//! after a one-off error (ECONNABORTED). So the delay starts short and
//! doubles per consecutive failure up to a cap, and one success resets it.
//! The loop never gives up: the broker keeps serving the connections it
//! has, and accepts again once descriptors free up.

use std::future::Future;
use std::io;
use std::time::Duration;

/// First delay after an accept error: a one-off error clears at once.
pub const ACCEPT_BACKOFF_INITIAL: Duration = Duration::from_millis(1);

/// Longest delay between retries: long enough that a listener out of file
/// descriptors costs no CPU and one log line a second, short enough that
/// it accepts again within a second of descriptors freeing up.
pub const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// A listener's backoff state: the delay the next failure waits.
#[derive(Debug)]
pub struct AcceptBackoff {
    /// Named in log lines (`kafka`, `http`).
    listener: &'static str,
    /// Delay after the next failure.
    next: Duration,
}

impl AcceptBackoff {
    /// Fresh state for the listener named `listener`.
    pub fn new(listener: &'static str) -> AcceptBackoff {
        AcceptBackoff {
            listener,
            next: ACCEPT_BACKOFF_INITIAL,
        }
    }

    /// Records a failure; returns how long to wait before trying again.
    pub fn failed(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(ACCEPT_BACKOFF_MAX);
        delay
    }

    /// Records a success: the next failure starts from the initial delay.
    pub fn succeeded(&mut self) {
        self.next = ACCEPT_BACKOFF_INITIAL;
    }

    /// Calls `accept` until it succeeds, logging each error and waiting the
    /// growing delay in between. Cancel-safe between attempts: dropping the
    /// future during a delay loses nothing.
    pub async fn accept<T, F, Fut>(&mut self, mut accept: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = io::Result<T>>,
    {
        loop {
            match accept().await {
                Ok(accepted) => {
                    self.succeeded();
                    return accepted;
                }
                Err(e) => {
                    let delay = self.failed();
                    tracing::warn!(
                        listener = self.listener,
                        retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        "accept failed: {e}"
                    );
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use tokio::time::Instant;

    use super::*;

    #[test]
    fn the_delay_doubles_from_one_millisecond_to_a_one_second_cap() {
        let mut backoff = AcceptBackoff::new("test");
        let delays: Vec<u128> = (0..13).map(|_| backoff.failed().as_millis()).collect();
        assert_eq!(
            delays,
            [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000, 1000, 1000]
        );
    }

    #[test]
    fn a_success_resets_the_delay() {
        let mut backoff = AcceptBackoff::new("test");
        for _ in 0..5 {
            backoff.failed();
        }
        backoff.succeeded();
        assert_eq!(backoff.failed(), ACCEPT_BACKOFF_INITIAL);
        assert_eq!(backoff.failed(), ACCEPT_BACKOFF_INITIAL * 2);
    }

    fn emfile() -> io::Error {
        io::Error::other("Too many open files (os error 24)")
    }

    /// Paused time: the runtime jumps over each delay, so the test checks
    /// exact delays without waiting for them.
    #[tokio::test(start_paused = true)]
    async fn accept_errors_wait_the_growing_delay_and_do_not_end_the_loop() {
        let mut script: VecDeque<io::Result<u32>> = VecDeque::from([
            Err(emfile()),
            Err(emfile()),
            Err(emfile()),
            Ok(1),
            Err(emfile()),
            Ok(2),
        ]);
        let mut calls: Vec<Instant> = Vec::new();
        let mut backoff = AcceptBackoff::new("test");
        let mut accepted = Vec::new();
        for _ in 0..2 {
            let value = backoff
                .accept(|| {
                    calls.push(Instant::now());
                    let next = script.pop_front().expect("script long enough");
                    async move { next }
                })
                .await;
            accepted.push(value);
        }
        assert_eq!(accepted, [1, 2]);
        let gaps: Vec<u128> = calls
            .windows(2)
            .map(|w| (w[1] - w[0]).as_millis())
            .collect();
        // 1, 2, 4 ms after three failures; the success costs nothing; the
        // next failure starts again from 1 ms.
        assert_eq!(gaps, [1, 2, 4, 0, 1]);
    }
}
