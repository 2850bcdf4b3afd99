//! The rules of one request/response exchange, without I/O.
//!
//! Owns the decisions the session's I/O acts on: which backend attempts a request gets
//! ([`Attempts`]), whether the client connection stays open ([`ClientKeep`]), whether the
//! backend connection goes back to the pool ([`backend_reusable`]), and what the client is
//! answered when ringway answers itself ([`Answer`]). Each takes what happened (the request's
//! framing, the failure, what was sent or received) and returns a decision; `session` does the
//! reading and writing. Each rule has its own unit test below, one per row of the README's
//! retry and keep-alive rules.
//!
//! Invariants: a request that may not be replayed (not idempotent, or its body was not held
//! whole) never goes to a second backend once any byte of it was sent; a request is attempted
//! at most [`MAX_ATTEMPTS`] times; a failure that is not the backend's is never retried;
//! once response bytes are out, the only answer left is closing the connection.

#![forbid(unsafe_code)]

use std::net::IpAddr;
use std::time::Duration;

use crate::balance;
use crate::http1::{BodyKind, Method, RequestHead, Status};
use crate::route::Routed;
use crate::upstream::group::KeySource;

use super::error::{ProxyError, Retry, Side};

/// Attempts per request at most: the first, and one retry on another backend (or on a new
/// connection to the same one, when the first used a pooled connection the backend had
/// closed).
pub const MAX_ATTEMPTS: u32 = 2;

/// The `Retry-After` of a 503 answered for a local shortage (out of descriptors, memory,
/// buffers): the shortage is usually over within a second.
pub const LOCAL_SHORTAGE_RETRY_AFTER: u64 = 1;

/// The `Retry-After` when no backend is available and none says when one will be.
pub const NO_BACKEND_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The attempts of one request on the backends of its upstream.
#[derive(Debug)]
pub struct Attempts {
    /// The whole request is held (its body came with the head) and its method is idempotent:
    /// it may be sent again after a backend failed to answer it.
    replayable: bool,
    /// Attempts started so far.
    started: u32,
    /// The backend of the last attempt.
    tried: Option<usize>,
    /// The last attempt used a pooled connection: if it failed, the backend had probably
    /// closed it while idle, and a new connection to the same backend is worth a try.
    stale: bool,
}

/// What to do once an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Try another backend (or a new connection to the same one).
    Retry,
    /// Answer the client with this failure.
    GiveUp,
    /// A retry would be allowed, but the upstream's retry budget is spent: answer the client
    /// with this failure.
    OverBudget,
}

impl Attempts {
    /// The attempts of a request with `method`, whose body is held whole (`body_held`: it
    /// came with the head, or is empty) or not.
    pub fn new(method: Method, body_held: bool) -> Self {
        Self {
            replayable: body_held && method.is_idempotent(),
            started: 0,
            tried: None,
            stale: false,
        }
    }

    /// Whether another attempt may start.
    pub fn may_start(&self) -> bool {
        self.started < MAX_ATTEMPTS
    }

    /// The backend the next choice should avoid: the one that just failed.
    pub fn avoid(&self) -> Option<usize> {
        self.tried
    }

    /// Starts an attempt on `backend`; false when it is not worth it: the only backend left
    /// is the one that just failed on a connection of its own (trying it again would only
    /// double the wait: a blackholed backend, two connect timeouts).
    pub fn start(&mut self, backend: usize) -> bool {
        if self.tried == Some(backend) && !self.stale {
            return false;
        }
        self.tried = Some(backend);
        self.started += 1;
        true
    }

    /// Whether this attempt may take a recently used pooled connection as it is, without
    /// checking it first: only a first attempt that can be replayed, since if the backend
    /// closed the connection meanwhile, the retry takes the next one.
    pub fn trusts_recent(&self) -> bool {
        self.replayable && self.started == 1
    }

    /// Records whether this attempt uses a pooled connection.
    pub fn uses_pooled(&mut self, pooled: bool) {
        self.stale = pooled;
    }

    /// Whether the current attempt waits for its response under the per-try timeout: a first
    /// attempt of a replayable request, with an attempt left. (The caller also checks the
    /// retry budget.) Any other attempt waits the whole response timeout.
    pub fn waits_per_try(&self) -> bool {
        self.replayable && self.started == 1 && self.may_start()
    }

    /// What follows the failure `e` of the current attempt; `answered` is whether any byte
    /// of the response arrived; `budget` spends a retry from the upstream's budget, and is
    /// called only when the rules allow a retry.
    pub fn after_failure(
        &mut self,
        e: &ProxyError,
        answered: bool,
        budget: impl FnOnce() -> bool,
    ) -> AfterFailure {
        if matches!(e, ProxyError::TryTimeout) {
            // An attempt that got no answer on a pooled connection says nothing about the
            // connection having been closed while idle: the backend itself is slow, and it
            // is not tried again on a new connection.
            self.stale = false;
        }
        if !self.may_start() || answered {
            return AfterFailure::GiveUp;
        }
        let retry = match e.retry() {
            // Nothing of the request left: any request may go elsewhere.
            Retry::NothingSent => true,
            // Sent, and the backend failed before answering: only a request that can be sent
            // again whole, and only from the first attempt.
            Retry::IfReplayable => self.replayable && self.started == 1,
            Retry::Never => false,
        };
        match (retry, retry && budget()) {
            (true, true) => AfterFailure::Retry,
            (true, false) => AfterFailure::OverBudget,
            _ => AfterFailure::GiveUp,
        }
    }
}

/// Whether the client connection stays open, decided as the exchange goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientKeep {
    /// The client allows it (HTTP/1.1 without `Connection: close`, or HTTP/1.0 with
    /// `keep-alive`) and the worker is not draining.
    wanted: bool,
    /// The request is HTTP/1.0.
    http10: bool,
}

impl ClientKeep {
    /// At the start of a request: what the client asked for (`keep_alive`, from its head),
    /// its version, and whether the worker is draining.
    pub fn new(keep_alive: bool, http10: bool, draining: bool) -> Self {
        Self {
            wanted: keep_alive && !draining,
            http10,
        }
    }

    /// After a response ringway answers itself (no route, no backend): kept when the request
    /// was read whole (`body_done`); an HTTP/1.0 client, which would need a
    /// `Connection: keep-alive` answer, is answered with a close.
    pub fn after_local_answer(&self, body_done: bool) -> bool {
        self.wanted && body_done && !self.http10
    }

    /// After a backend's response: kept when the request was read whole
    /// (`request_complete`: a backend that answers early leaves the rest of the body unread),
    /// the worker is not draining (`draining`, now), and the response does not force a close
    /// (`response_forces_close`: a close-delimited body, or chunked for an HTTP/1.0 client).
    pub fn after_response(
        &self,
        request_complete: bool,
        draining: bool,
        response_forces_close: bool,
    ) -> bool {
        self.wanted && request_complete && !draining && !response_forces_close
    }
}

/// Whether the backend connection goes back to the pool after an exchange: only after a
/// complete request (`request_complete`) and a complete, well-framed response whose backend
/// keeps the connection (`backend_keep`), with nothing after it (`extra`: bytes past the
/// body), and not close-delimited (such a body ends only with the connection).
pub fn backend_reusable(
    request_complete: bool,
    backend_keep: bool,
    extra: bool,
    close_delimited: bool,
) -> bool {
    request_complete && backend_keep && !extra && !close_delimited
}

/// What the client gets when an exchange fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A response from ringway, with `Retry-After` when set; the connection stays open when
    /// `keep` (the request was read whole).
    Local {
        /// The status.
        status: Status,
        /// Seconds for `Retry-After`.
        retry_after: Option<u64>,
        /// The connection stays open after it.
        keep: bool,
    },
    /// An error response with `Connection: close`, then the close.
    Reject(Status),
    /// Response bytes are already out: only closing the connection is left.
    Close,
}

impl Answer {
    /// The answer for failure `e`: `keep` is [`ClientKeep::after_local_answer`], `head_sent`
    /// whether the response head already went to the client.
    pub fn for_failure(e: &ProxyError, keep: bool, head_sent: bool) -> Self {
        if head_sent {
            return Self::Close;
        }
        match e {
            ProxyError::NoBackend { retry_after } => Self::Local {
                status: Status::ServiceUnavailable,
                retry_after: Some(whole_seconds(*retry_after)),
                keep,
            },
            // This process is short of something; the client may try again shortly.
            e if e.side() == Side::Internal => Self::Local {
                status: Status::ServiceUnavailable,
                retry_after: Some(LOCAL_SHORTAGE_RETRY_AFTER),
                keep,
            },
            e => Self::Reject(e.status()),
        }
    }

    /// The answer when no route takes the request (`status` 404 or 421).
    pub fn unrouted(status: Status, keep: bool) -> Self {
        Self::Local {
            status,
            retry_after: None,
            keep,
        }
    }
}

/// Request bodies up to this size (Content-Length) are read whole before a backend is chosen:
/// the request then goes out in one send and can be sent again whole.
pub const SMALL_BODY: usize = 64 * 1024;

/// The length of the request body of `head` when it is small enough to be read whole before
/// a backend is chosen (a Content-Length up to [`SMALL_BODY`], and no `Expect: 100-continue`,
/// whose client waits for the backend's go-ahead), else 0.
pub fn small_body(head: &RequestHead) -> usize {
    match head.body {
        BodyKind::Length(len) if len <= SMALL_BODY as u64 && !head.expect_continue => len as usize,
        _ => 0,
    }
}

/// Where a request goes once routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// Upstream `group`, taken by the route at `route` (`None`: the default upstream).
    Upstream {
        /// The upstream.
        group: usize,
        /// The route's position, for its header rules.
        route: Option<usize>,
    },
    /// The fixed response of the route at this position.
    Fixed(usize),
    /// A redirect to HTTPS (a plain-HTTP listener with `redirect_https`).
    Redirect,
    /// A status ringway answers with: 404 for a Host no route takes, 421 (RFC 9110
    /// §15.5.20) when it is not the name the client asked for in TLS.
    Status(Status),
}

/// Where a routing decision sends a request.
pub fn destination(routed: Routed) -> Destination {
    match routed {
        Routed::Upstream { upstream, route } => Destination::Upstream {
            group: upstream,
            route,
        },
        Routed::Respond(route) => Destination::Fixed(route),
        Routed::Misdirected => Destination::Status(Status::MisdirectedRequest),
        Routed::NotFound => Destination::Status(Status::NotFound),
    }
}

/// The consistent-hashing key of the request `head` (whose bytes are `buf`) from `peer`: the
/// configured header's or cookie's value when present, else the client's address.
pub fn hash_key(source: &KeySource, head: &RequestHead, buf: &[u8], peer: IpAddr) -> u64 {
    let found = match source {
        KeySource::ClientIp => None,
        KeySource::Header(name) => head
            .headers(buf)
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v),
        KeySource::Cookie(name) => head
            .headers(buf)
            .filter(|(n, _)| n.eq_ignore_ascii_case(b"cookie"))
            .find_map(|(_, v)| cookie_value(v, name.as_bytes())),
    };
    match found {
        Some(value) => balance::hash_key(value),
        None => balance::hash_ip(peer),
    }
}

/// The value of cookie `name` in a `Cookie` field value (`a=1; b=2`), if present.
fn cookie_value<'a>(field: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    field.split(|&b| b == b';').find_map(|pair| {
        let pair = pair.trim_ascii();
        let eq = pair.iter().position(|&b| b == b'=')?;
        (pair[..eq].trim_ascii() == name).then(|| pair[eq + 1..].trim_ascii())
    })
}

/// How much of a response body is read from the backend at once, from how the client keeps up
/// (the client's TCP window pushes back on backend reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// The client took everything sent so far in one write: read large chunks, and join what
    /// the backend sent at once into one write.
    Fast,
    /// The client's socket took less than offered (the kernel holds as much unsent as it may,
    /// the client socket's `TCP_NOTSENT_LOWAT`): read little at a time, so a connection feeding a slow reader
    /// holds one record's buffer. For the rest of the response: a write the kernel takes whole
    /// while the client is still slow only means it drained a little.
    Slow,
}

/// Bytes of a body read at once for a client that keeps up.
pub const BODY_READ: usize = 64 * 1024;

/// Bytes read from the backend at once for a slow client: one full TLS record (a smaller one
/// would cost the client a read and a wake-up per half record), which with its overhead fits a
/// medium buffer of the free list.
pub const SLOW_READ: usize = 16 * 1024;

impl Pace {
    /// The pace after a flush that was (`true`) or was not pushed back.
    pub fn after(self, pushed_back: bool) -> Self {
        if pushed_back { Self::Slow } else { self }
    }

    /// The most bytes to read next.
    pub fn read_max(self) -> usize {
        match self {
            Self::Fast => BODY_READ,
            Self::Slow => SLOW_READ,
        }
    }
}

/// `d` in whole seconds, rounded up (a `Retry-After` must not come too early).
fn whole_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::net::SocketAddr;

    use super::*;
    use crate::upstream::ConnectError;

    fn refused() -> ProxyError {
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        ProxyError::Connect(ConnectError::Io {
            addr,
            source: io::Error::from_raw_os_error(libc::ECONNREFUSED),
        })
    }

    fn out_of_files() -> ProxyError {
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        ProxyError::Connect(ConnectError::Io {
            addr,
            source: io::Error::from_raw_os_error(libc::EMFILE),
        })
    }

    fn reset() -> ProxyError {
        ProxyError::BackendRead(io::Error::from_raw_os_error(libc::ECONNRESET))
    }

    /// Starts the first attempt on backend 0.
    fn first(method: Method, body_held: bool) -> Attempts {
        let mut a = Attempts::new(method, body_held);
        assert!(a.start(0));
        a
    }

    // README, "Retries": retried once on another backend when the connection could not be
    // made...
    #[test]
    fn a_connect_failure_is_retried_for_any_method() {
        for method in [Method::Get, Method::Post] {
            for body_held in [true, false] {
                let mut a = first(method, body_held);
                assert_eq!(
                    a.after_failure(&refused(), false, || true),
                    AfterFailure::Retry
                );
            }
        }
    }

    // ... or when the backend closes or fails before any response byte and the method is
    // idempotent and its body was fully sent.
    #[test]
    fn an_idempotent_whole_request_is_retried_when_the_backend_fails_before_answering() {
        let mut a = first(Method::Get, true);
        for e in [
            ProxyError::BackendClosedEarly,
            reset(),
            ProxyError::BackendWrite(io::Error::from_raw_os_error(libc::EPIPE)),
        ] {
            assert_eq!(
                a.after_failure(&e, false, || true),
                AfterFailure::Retry,
                "{e}"
            );
        }
    }

    // A POST that reached a backend is never retried.
    #[test]
    fn a_request_that_reached_a_backend_is_not_retried_unless_replayable() {
        let mut post = first(Method::Post, true);
        let mut streamed = first(Method::Put, false);
        for e in [ProxyError::BackendClosedEarly, reset()] {
            assert_eq!(post.after_failure(&e, false, || true), AfterFailure::GiveUp);
            assert_eq!(
                streamed.after_failure(&e, false, || true),
                AfterFailure::GiveUp
            );
        }
    }

    #[test]
    fn nothing_is_retried_once_the_response_began() {
        let mut a = first(Method::Get, true);
        assert_eq!(
            a.after_failure(&ProxyError::BackendClosedEarly, true, || true),
            AfterFailure::GiveUp
        );
    }

    #[test]
    fn timeouts_stalls_and_bad_responses_are_not_retried() {
        let mut a = first(Method::Get, true);
        for e in [
            ProxyError::ResponseTimeout,
            ProxyError::BackendStalled,
            ProxyError::BackendClosedMidBody,
        ] {
            assert_eq!(
                a.after_failure(&e, false, || true),
                AfterFailure::GiveUp,
                "{e}"
            );
        }
    }

    #[test]
    fn a_local_shortage_or_a_client_failure_is_never_retried() {
        let mut a = first(Method::Get, true);
        assert_eq!(
            a.after_failure(&out_of_files(), false, || true),
            AfterFailure::GiveUp
        );
        assert_eq!(
            a.after_failure(&ProxyError::ClientClosedMidBody, false, || true),
            AfterFailure::GiveUp
        );
    }

    // Retries are budgeted: a retry the rules allow is refused when the budget is spent, and
    // the budget is asked only for a retry the rules allow.
    #[test]
    fn a_retry_spends_from_the_budget_and_only_a_retry_does() {
        let mut a = first(Method::Get, true);
        assert_eq!(
            a.after_failure(&refused(), false, || false),
            AfterFailure::OverBudget
        );
        let mut asked = false;
        let mut post = first(Method::Post, true);
        let after = post.after_failure(&reset(), false, || {
            asked = true;
            true
        });
        assert_eq!((after, asked), (AfterFailure::GiveUp, false));
    }

    // A frozen backend: a replayable first attempt waits the per-try timeout, then goes to
    // another backend, never back to the frozen one on a new connection.
    #[test]
    fn a_try_timeout_is_retried_elsewhere_for_a_replayable_request_only() {
        let mut a = first(Method::Get, true);
        assert!(a.waits_per_try());
        a.uses_pooled(true);
        assert_eq!(
            a.after_failure(&ProxyError::TryTimeout, false, || true),
            AfterFailure::Retry
        );
        assert!(!a.start(0), "not the frozen backend again");
        assert!(a.start(1));
        // The retry itself waits the whole response timeout: nothing follows it.
        assert!(!a.waits_per_try());
        for (method, held) in [(Method::Post, true), (Method::Get, false)] {
            let mut a = first(method, held);
            assert!(!a.waits_per_try());
            assert_eq!(
                a.after_failure(&ProxyError::TryTimeout, false, || true),
                AfterFailure::GiveUp
            );
        }
    }

    #[test]
    fn at_most_two_attempts() {
        let mut a = first(Method::Get, true);
        assert!(a.start(1));
        assert!(!a.may_start());
        assert_eq!(
            a.after_failure(&refused(), false, || true),
            AfterFailure::GiveUp
        );
        // A replayed request is not replayed again, whatever the failure.
        assert_eq!(
            a.after_failure(&ProxyError::BackendClosedEarly, false, || true),
            AfterFailure::GiveUp
        );
    }

    #[test]
    fn the_retry_avoids_the_failed_backend_and_returns_to_it_only_after_a_pooled_connection() {
        let mut a = first(Method::Get, true);
        assert_eq!(a.avoid(), Some(0));
        // Its own connection failed: the same backend again is not worth a second wait.
        a.uses_pooled(false);
        assert!(!a.start(0));
        // A pooled connection failed (closed while idle): a new one to the same backend.
        let mut a = first(Method::Get, true);
        a.uses_pooled(true);
        assert!(a.start(0));
    }

    #[test]
    fn only_a_replayable_first_attempt_trusts_a_recent_pooled_connection() {
        let mut a = first(Method::Get, true);
        assert!(a.trusts_recent());
        a.uses_pooled(true);
        assert!(a.start(1));
        assert!(!a.trusts_recent());
        assert!(!first(Method::Post, true).trusts_recent());
        assert!(!first(Method::Get, false).trusts_recent());
    }

    // README, "Keep-alive": the connection stays open after a local answer when the request
    // was complete.
    #[test]
    fn a_local_answer_keeps_a_complete_http11_request_open() {
        let keep = ClientKeep::new(true, false, false);
        assert!(keep.after_local_answer(true));
        assert!(!keep.after_local_answer(false));
        // HTTP/1.0 keep-alive would need an answer saying so: closed.
        assert!(!ClientKeep::new(true, true, false).after_local_answer(true));
        // The client said close, or the worker drains.
        assert!(!ClientKeep::new(false, false, false).after_local_answer(true));
        assert!(!ClientKeep::new(true, false, true).after_local_answer(true));
    }

    // A response that arrives before the whole request body closes the client connection
    // afterwards; a draining worker closes after the response; so does a close-delimited or
    // (for HTTP/1.0) chunked response.
    #[test]
    fn after_a_response_the_client_is_kept_only_when_nothing_forces_a_close() {
        let keep = ClientKeep::new(true, false, false);
        assert!(keep.after_response(true, false, false));
        assert!(!keep.after_response(false, false, false));
        assert!(!keep.after_response(true, true, false));
        assert!(!keep.after_response(true, false, true));
        assert!(!ClientKeep::new(false, false, false).after_response(true, false, false));
        // HTTP/1.0 with keep-alive and a length-delimited response: kept.
        assert!(ClientKeep::new(true, true, false).after_response(true, false, false));
    }

    #[test]
    fn a_backend_connection_is_pooled_only_after_a_clean_whole_exchange() {
        assert!(backend_reusable(true, true, false, false));
        assert!(!backend_reusable(false, true, false, false));
        assert!(!backend_reusable(true, false, false, false));
        assert!(!backend_reusable(true, true, true, false));
        assert!(!backend_reusable(true, true, false, true));
    }

    // 503 with Retry-After when no backend can take the request; 503 Retry-After: 1 for a
    // local shortage; both keep a complete request's connection.
    #[test]
    fn unavailable_and_short_answers_are_503_with_retry_after() {
        let none = ProxyError::NoBackend {
            retry_after: Duration::from_millis(2500),
        };
        assert_eq!(
            Answer::for_failure(&none, true, false),
            Answer::Local {
                status: Status::ServiceUnavailable,
                retry_after: Some(3),
                keep: true
            }
        );
        assert_eq!(
            Answer::for_failure(&out_of_files(), false, false),
            Answer::Local {
                status: Status::ServiceUnavailable,
                retry_after: Some(1),
                keep: false
            }
        );
    }

    // Each a pre-built response with Connection: close: 502 for a backend that failed, 504
    // for one that timed out, 408 for a client that stalled mid-body.
    #[test]
    fn other_failures_are_rejected_with_their_status_and_a_close() {
        for (e, status) in [
            (refused(), Status::BadGateway),
            (reset(), Status::BadGateway),
            (ProxyError::ResponseTimeout, Status::GatewayTimeout),
            (ProxyError::ClientStalled, Status::RequestTimeout),
        ] {
            assert_eq!(Answer::for_failure(&e, true, false), Answer::Reject(status));
        }
    }

    // Once response bytes are out, a failure closes the connection.
    #[test]
    fn after_the_head_only_the_close_is_left() {
        assert_eq!(
            Answer::for_failure(&ProxyError::BackendClosedMidBody, true, true),
            Answer::Close
        );
    }

    #[test]
    fn unrouted_requests_are_answered_and_kept() {
        assert_eq!(
            Answer::unrouted(Status::NotFound, true),
            Answer::Local {
                status: Status::NotFound,
                retry_after: None,
                keep: true
            }
        );
    }

    #[test]
    fn cookie_values() {
        let field = b"a=1; sid=abc ;z=2;flag; empty=";
        assert_eq!(cookie_value(field, b"sid"), Some(&b"abc"[..]));
        assert_eq!(cookie_value(field, b"a"), Some(&b"1"[..]));
        assert_eq!(cookie_value(field, b"z"), Some(&b"2"[..]));
        assert_eq!(cookie_value(field, b"empty"), Some(&b""[..]));
        assert_eq!(cookie_value(field, b"flag"), None);
        assert_eq!(cookie_value(field, b"SID"), None);
        assert_eq!(cookie_value(b"", b"a"), None);
    }

    fn parsed(request: &[u8]) -> RequestHead {
        let mut head = RequestHead::new();
        let parsed = crate::http1::parse_request(request, &Default::default(), &mut head);
        assert!(matches!(parsed, Ok(crate::http1::Parsed::Complete)));
        head
    }

    #[test]
    fn the_hash_key_is_the_header_or_cookie_else_the_client_address() {
        let peer: IpAddr = "192.0.2.7".parse().unwrap();
        let request = b"GET / HTTP/1.1\r\nHost: a\r\nX-User: alice\r\nCookie: x=1; sid=s42\r\n\r\n";
        let head = parsed(request);
        let key = |source| hash_key(&source, &head, request, peer);
        assert_eq!(
            key(KeySource::Header("x-user".into())),
            balance::hash_key(b"alice")
        );
        assert_eq!(
            key(KeySource::Cookie("sid".into())),
            balance::hash_key(b"s42")
        );
        assert_eq!(
            key(KeySource::Header("x-none".into())),
            balance::hash_ip(peer)
        );
        assert_eq!(
            key(KeySource::Cookie("none".into())),
            balance::hash_ip(peer)
        );
        assert_eq!(key(KeySource::ClientIp), balance::hash_ip(peer));
    }

    #[test]
    fn a_small_body_without_expect_continue_is_read_first() {
        let small = parsed(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n");
        assert_eq!(small_body(&small), 10);
        let limit = format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {SMALL_BODY}\r\n\r\n");
        assert_eq!(small_body(&parsed(limit.as_bytes())), SMALL_BODY);
        let large = format!(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
            SMALL_BODY + 1
        );
        assert_eq!(small_body(&parsed(large.as_bytes())), 0);
        let waits = parsed(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n",
        );
        assert_eq!(small_body(&waits), 0);
        let chunked = parsed(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(small_body(&chunked), 0);
    }

    #[test]
    fn unrouted_requests_are_404_or_421() {
        assert_eq!(
            destination(Routed::Upstream {
                upstream: 3,
                route: Some(1)
            }),
            Destination::Upstream {
                group: 3,
                route: Some(1)
            }
        );
        assert_eq!(destination(Routed::Respond(2)), Destination::Fixed(2));
        assert_eq!(
            destination(Routed::NotFound),
            Destination::Status(Status::NotFound)
        );
        assert_eq!(
            destination(Routed::Misdirected),
            Destination::Status(Status::MisdirectedRequest)
        );
    }

    #[test]
    fn a_pushed_back_flush_slows_the_rest_of_the_response() {
        assert_eq!(Pace::Fast.read_max(), BODY_READ);
        assert_eq!(Pace::Fast.after(false), Pace::Fast);
        assert_eq!(Pace::Fast.after(true), Pace::Slow);
        // Sticky: a write taken whole while the client is slow does not make it fast.
        assert_eq!(Pace::Slow.after(false), Pace::Slow);
        assert_eq!(Pace::Slow.read_max(), SLOW_READ);
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(whole_seconds(Duration::from_secs(2)), 2);
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::ZERO), 0);
    }
}
