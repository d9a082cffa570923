//! One log line per reason per second at most, however fast a client makes
//! the server refuse: the counter has every refusal, the log has the peers
//! and how many were left out.

use std::{
    net::SocketAddr,
    sync::atomic::{AtomicU64, Ordering},
    time::Instant,
};

use observe_metrics::ConnectionError;

/// The shortest gap between two lines about the same reason.
const LOG_EVERY_MS: u64 = 1_000;

/// The last line's time and the refusals since, per reason.
pub(super) struct Refusals {
    started: Instant,
    last_logged_ms: [AtomicU64; ConnectionError::ALL.len()],
    unlogged: [AtomicU64; ConnectionError::ALL.len()],
}

impl Default for Refusals {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            last_logged_ms: std::array::from_fn(|_| AtomicU64::new(u64::MAX)),
            unlogged: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl Refusals {
    /// Logs `reason` with `peer`, or counts it for the next line.
    pub(super) fn log(&self, reason: ConnectionError, peer: Option<SocketAddr>) {
        let index = reason as usize;
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        let last = self.last_logged_ms[index].load(Ordering::Acquire);
        let due = last == u64::MAX || now.saturating_sub(last) >= LOG_EVERY_MS;
        if !due
            || self.last_logged_ms[index]
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            self.unlogged[index].fetch_add(1, Ordering::Relaxed);
            return;
        }
        let unlogged = self.unlogged[index].swap(0, Ordering::Relaxed);
        let reason = reason.as_str();
        match peer {
            Some(peer) => tracing::warn!(
                reason,
                peer = %peer,
                also_since_last_line = unlogged,
                "connection refused or cut before the service answered"
            ),
            None => tracing::warn!(
                reason,
                also_since_last_line = unlogged,
                "connection refused or cut before the service answered"
            ),
        }
    }
}
