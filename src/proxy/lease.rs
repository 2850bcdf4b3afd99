//! The hold a request has on the backend chosen for it.
//!
//! Owns the pairing of [`Group::choose`](crate::upstream::group::Group::choose) with
//! [`Group::end`](crate::upstream::group::Group::end): a [`Lease`] is made right after a backend
//! is chosen and gives the backend back when dropped, so the in-flight and active counts stay
//! exact whether the exchange completes, fails, or its future is dropped mid-way (a timeout, a
//! worker stopping). The lease holds the generation it was chosen in: a reload meanwhile does
//! not move it (its group shares the backend's per-worker state with the new one).

use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::runtime::deadline::coarse_now;
use crate::upstream::ConnectError;
use crate::upstream::group::Outcome;

use super::error::ProxyError;
use super::generation::Generation;

/// A request's hold on table backend `backend` of upstream `group`.
pub struct Lease {
    serving: Rc<Generation>,
    group: usize,
    backend: usize,
}

impl Lease {
    /// Takes over the lease [`Group::choose`](crate::upstream::group::Group::choose) took.
    pub fn new(serving: Rc<Generation>, group: usize, backend: usize) -> Self {
        Self {
            serving,
            group,
            backend,
        }
    }

    /// The backend's table index.
    pub fn backend(&self) -> usize {
        self.backend
    }

    /// Tells the upstream that the request failed (passive ejection).
    pub fn report_failure(&self) {
        self.serving.groups[self.group].report(self.backend, Outcome::Failed, coarse_now());
    }

    /// Reports `e` as a failure of the backend when it is the backend's
    /// ([`ProxyError::blames_backend`]); a client's failure or a local shortage (out of
    /// descriptors, memory, buffers) says nothing about the backend and is not counted.
    pub fn report_error(&self, e: &ProxyError) {
        if let ProxyError::Connect(_) = e {
            self.serving.groups[self.group]
                .counters(self.backend)
                .connect_failures
                .inc();
        }
        if matches!(
            e,
            ProxyError::TryTimeout | ProxyError::Connect(ConnectError::Timeout { .. })
        ) {
            // Frozen, blackholed or far too slow: every request sent to it meanwhile waits as
            // long, so out of this worker's rotation at once.
            self.serving.groups[self.group].report(
                self.backend,
                Outcome::Unresponsive,
                coarse_now(),
            );
        } else if e.blames_backend() {
            self.report_failure();
        }
    }

    /// Tells the upstream that a response head with `status` came back for the request sent
    /// at `sent` (passive ejection, latency-aware policies). `sent` is `None` when the policy
    /// does not use latency ([`Group::wants_latency`](crate::upstream::group::Group::wants_latency)):
    /// the exact clock is read only for a policy that does.
    pub fn report_response(&self, status: u16, sent: Option<Instant>) {
        let (latency, now) = match sent {
            Some(sent) => {
                let now = Instant::now();
                (now.saturating_duration_since(sent), now)
            }
            None => (Duration::ZERO, coarse_now()),
        };
        let outcome = Outcome::Response { status, latency };
        self.serving.groups[self.group].report(self.backend, outcome, now);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.serving.groups[self.group].end(self.backend);
    }
}
