//! How often a worker logs the failures of one backend.
//!
//! Owns the per-worker, per-backend rate limit of request-failure log lines: a dead or frozen
//! backend under load fails thousands of requests a second, and one line each would flood the
//! log and cost the worker more than the failures do. The first failure of a backend is logged
//! at once; then at most one line per [`FAILURE_LOG_PERIOD`] per backend, carrying the count of
//! the failures not logged since the previous line. Client certificates refused at the
//! handshake (mutual TLS) are limited the same way, with one slot of their own: a scan of bad
//! clients costs a line a second.
//!
//! Invariants: no I/O, no clock read (the caller passes `now`); one slot per backend of the
//! table, per worker; a failure is either logged or counted, never dropped silently.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

/// The least time between two logged failures of one backend, per worker.
pub const FAILURE_LOG_PERIOD: Duration = Duration::from_secs(1);

/// One worker's failure-log limiter, by backend table index.
#[derive(Debug)]
pub struct FailureLog {
    slots: RefCell<Vec<Slot>>,
    /// Client certificates refused.
    refusals: Cell<Slot>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    /// When a failure of this backend was last logged.
    logged: Option<Instant>,
    /// Failures not logged since.
    suppressed: u64,
}

impl FailureLog {
    /// A limiter for `backends` backends.
    pub fn new(backends: usize) -> Self {
        Self {
            slots: RefCell::new(vec![Slot::default(); backends]),
            refusals: Cell::new(Slot::default()),
        }
    }

    /// A client certificate refused at `now`: as [`FailureLog::admit`], for all refusals of
    /// the worker together.
    pub fn admit_refusal(&self, now: Instant) -> Option<u64> {
        let mut slot = self.refusals.get();
        let logged = slot.admit(now);
        self.refusals.set(slot);
        logged
    }

    /// A failure of `backend` at `now`: `Some(n)` when it is to be logged, `n` being the
    /// failures not logged since the previous line; `None` when it is only counted.
    pub fn admit(&self, backend: usize, now: Instant) -> Option<u64> {
        let mut slots = self.slots.borrow_mut();
        match slots.get_mut(backend) {
            Some(slot) => slot.admit(now),
            None => Some(0),
        }
    }
}

impl Slot {
    fn admit(&mut self, now: Instant) -> Option<u64> {
        let due = self
            .logged
            .is_none_or(|at| now.saturating_duration_since(at) >= FAILURE_LOG_PERIOD);
        if due {
            self.logged = Some(now);
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }
}

/// Bytes of a request's method and target kept for its failure's log line.
pub const LOGGED_TARGET: usize = 96;

/// A request's method and target as its failure's log line shows them: at most
/// [`LOGGED_TARGET`] bytes of its request line, without the version, bytes outside printable
/// ASCII escaped. Copied from the head when the exchange starts (the head's bytes are reused
/// once its body is read); no allocation.
#[derive(Clone, Copy)]
pub struct RequestLabel {
    bytes: [u8; LOGGED_TARGET],
    len: u8,
    truncated: bool,
}

impl RequestLabel {
    /// The label of the request whose head starts `head` (its request line first).
    pub fn new(head: &[u8]) -> Self {
        let line_end = head
            .iter()
            .position(|&b| b == b'\r' || b == b'\n')
            .unwrap_or(head.len());
        let mut line = &head[..line_end];
        if let Some(sp) = line.iter().rposition(|&b| b == b' ')
            && line[sp + 1..].starts_with(b"HTTP/")
        {
            line = &line[..sp];
        }
        let len = line.len().min(LOGGED_TARGET);
        let mut bytes = [0u8; LOGGED_TARGET];
        bytes[..len].copy_from_slice(&line[..len]);
        Self {
            bytes,
            len: len as u8,
            truncated: line.len() > LOGGED_TARGET,
        }
    }
}

impl std::fmt::Display for RequestLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for &b in &self.bytes[..usize::from(self.len)] {
            if b.is_ascii_graphic() || b == b' ' {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        if self.truncated {
            f.write_str("...")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for RequestLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_is_the_request_line_without_its_version_bounded_and_escaped() {
        let label = RequestLabel::new(b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(label.to_string(), "GET /a?b=1");
        let long = format!("GET /{} HTTP/1.1\r\n", "x".repeat(200));
        let label = RequestLabel::new(long.as_bytes()).to_string();
        assert_eq!(label.len(), LOGGED_TARGET + 3);
        assert!(
            label.starts_with("GET /xxx") && label.ends_with("x..."),
            "{label}"
        );
        assert_eq!(
            RequestLabel::new(b"GET /\x01\xff HTTP/1.1\r\n").to_string(),
            "GET /\\x01\\xff"
        );
        assert_eq!(RequestLabel::new(b"").to_string(), "");
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn one_line_per_backend_per_period_with_the_count_of_the_rest() {
        let log = FailureLog::new(2);
        let t = Instant::now();
        assert_eq!(log.admit(0, t), Some(0));
        for i in 1..=500 {
            assert_eq!(log.admit(0, t + i * MS), None, "{i}");
        }
        // Another backend has its own budget.
        assert_eq!(log.admit(1, t + 10 * MS), Some(0));
        assert_eq!(log.admit(0, t + FAILURE_LOG_PERIOD), Some(500));
        assert_eq!(log.admit(0, t + FAILURE_LOG_PERIOD + MS), None);
        assert_eq!(log.admit(0, t + 3 * FAILURE_LOG_PERIOD), Some(1));
    }

    #[test]
    fn refused_client_certificates_share_one_line_per_period() {
        let log = FailureLog::new(1);
        let t = Instant::now();
        assert_eq!(log.admit_refusal(t), Some(0));
        assert_eq!(log.admit_refusal(t + MS), None);
        assert_eq!(log.admit_refusal(t + 2 * MS), None);
        assert_eq!(log.admit(0, t + 3 * MS), Some(0), "backends have their own");
        assert_eq!(log.admit_refusal(t + FAILURE_LOG_PERIOD), Some(2));
    }

    #[test]
    fn an_unknown_backend_is_always_logged() {
        let log = FailureLog::new(0);
        let t = Instant::now();
        assert_eq!(log.admit(5, t), Some(0));
        assert_eq!(log.admit(5, t), Some(0));
    }
}
