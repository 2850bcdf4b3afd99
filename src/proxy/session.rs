//! The life of one client connection: handshake, then requests one after another.
//!
//! Owns the request loop of a client connection: read and validate a request head (under the
//! keep-alive and request-head timeouts), pick a backend, send the re-serialized head and stream
//! the body, read the response head, stream the response back, and decide whether both
//! connections stay open; after a `101` to a request that asked to switch protocols, hand both
//! connections to a tunnel ([`super::tunnel`]) until it ends, then close them.
//!
//! Invariants:
//! - a request rejected while reading its head or its first body bytes sends nothing to any
//!   backend, and the client connection is closed after the error response;
//! - requests are answered in order; bytes after a request stay buffered for the next one and
//!   are never read as part of a response exchange;
//! - a backend connection goes back to the pool only after a complete request and a complete,
//!   well-framed response with nothing extra after it;
//! - once any response byte has been sent, a failure closes the client connection: the client
//!   never receives an invented end of body;
//! - memory per connection is bounded: bodies are relayed one receive at a time.

use std::cell::Cell;
use std::net::SocketAddr;
use std::pin::pin;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use crate::runtime::deadline::{after, coarse_now, deadline as until, within};
use compio::BufResult;
use compio::io::AsyncWriteExt;
use compio::net::TcpStream;
use futures_util::future::{Either, select};

use crate::access_log::{Record, Termination};
use crate::buf::{self, LazyBuf};
use crate::http1::{
    self, BodyDecoder, BodyKind, ClientCertFields, Forwarding, Method, Parsed, RequestHead,
    ResponseError, ResponseHead, Status,
};
use crate::metrics::{PROXY_CLOSED, PROXY_INVALID, PROXY_TIMEOUT, PROXY_UNTRUSTED};
use crate::proxy_protocol::{self, ProxyHeader};
use crate::tls::ClientCert;
use crate::upstream::group::Choice;
use crate::upstream::{self, BackendConn, Pooled};

use super::Context;
use super::access::{self, Fields, LogRule};
use super::error::{ProxyError, Side};
use super::failure_log::RequestLabel;
use super::generation::Generation;
use super::lease::Lease;
use super::proxy_header;
use super::relay::{
    BodyRelay, HEAD_SLACK, Relayed, read_response_head, relay_interim, response_limits, upload_body,
};
use super::rules::{
    self, AfterFailure, Answer, Attempts, BODY_READ, ClientKeep, Destination,
    NO_BACKEND_RETRY_AFTER, SLOW_READ,
};
use super::tls_conn::{TlsConn, TlsIoError};
use super::tunnel::Tunnel;
use super::{ListenerPlan, RequestIds};

mod hedge;
mod local;
mod send_proxy;
mod trace;

use hedge::Hedge;
use local::Configured;
use send_proxy::{PrivateConn, SendProxy};
use trace::Trace;

/// Bytes the re-serialized request head may add to the client's (forwarding fields).
const REQUEST_HEAD_SLACK: usize = 1024;

/// Bytes of a response ringway answers itself (a status line and a few fields).
const LOCAL_RESPONSE_LEN: usize = 128;

/// The first allocation of a connection's input buffer and of its response-head buffer: a
/// typical request or response head.
const HEAD_BUFFER: usize = 4096;

/// Bytes the kernel may hold unsent for a client (TCP_NOTSENT_LOWAT): beyond them a write to a
/// client that reads slowly takes only part of what it is offered, which is how the relay
/// learns to read less from the backend for it ([`rules::Pace`]), and the kernel does not pile up
/// megabytes for it either. Two large writes' worth, so a client that keeps up never waits on
/// it.
const CLIENT_NOTSENT_LOWAT: u32 = 128 * 1024;

/// Serves one accepted client connection until it closes.
pub async fn serve(ctx: Rc<Context>, listener: usize, tcp: TcpStream, peer: SocketAddr) {
    if let Err(e) = socket2::SockRef::from(&tcp).set_tcp_notsent_lowat(CLIENT_NOTSENT_LOWAT) {
        tracing::debug!(%peer, "TCP_NOTSENT_LOWAT: {e}");
    }
    let serving = ctx.current();
    // A connection accepted just before a reload removed its listener: nothing serves it.
    let Some(listener_at) = serving.plan.listener_position(listener) else {
        return;
    };
    // A listener behind a PROXY protocol balancer: only the balancer may connect, and every
    // connection starts with its header.
    let header_timeout = match &serving.plan.listeners[listener_at].proxy_protocol {
        Some(inbound) if !inbound.trusts(peer.ip()) => {
            tracing::debug!(%peer, "connection refused: not from a trusted source of PROXY headers");
            ctx.metrics.proxy_header_failures[PROXY_UNTRUSTED].inc();
            return;
        }
        Some(inbound) => Some(inbound.timeout),
        None => None,
    };
    let tls = serving.plan.listeners[listener_at].tls.clone();
    let conn = match TlsConn::new(tcp, tls) {
        Ok(conn) => conn,
        Err(e) => {
            tracing::debug!(%peer, "cannot start TLS: {e}");
            return;
        }
    };
    // Built before the handshake so the task holds one copy of the TLS state, not two.
    let mut session = Session {
        ctx,
        serving,
        listener,
        listener_at,
        listener_removed: false,
        conn,
        peer,
        destination: None,
        private: None,
        inbuf: LazyBuf::new(HEAD_BUFFER),
        rbuf: LazyBuf::new(HEAD_BUFFER),
        head: RequestHead::new(),
        rhead: ResponseHead::new(),
        trace: Trace::default(),
        counted: (0, 0),
        began: false,
        client_cert: None,
    };
    let metrics = session.ctx.metrics.clone();
    metrics.connections_accepted.inc();
    let accepted = Instant::now();
    // The PROXY header, then what came after it in the same receive (for TLS).
    let mut first = None;
    if let Some(timeout) = header_timeout {
        // Boxed: its state exists only until the header is read.
        match Box::pin(session.read_proxy_header(timeout, accepted)).await {
            Some(rest) => first = rest,
            None => {
                session.count_traffic();
                metrics.connections_closed.inc();
                return;
            }
        }
    }
    // From here on, the client is the one the PROXY header named.
    let peer = session.peer;
    let (conn, inbuf) = (&session.conn, &mut session.inbuf);
    let handshake = async move {
        if let Some(mut first) = first {
            let fed = conn.feed(&mut first, inbuf);
            buf::give(first);
            if let Err(e) = fed {
                // Send the alert rustls queued, if the socket still takes it.
                let _ = conn.flush().await;
                return Err(e);
            }
        }
        conn.handshake(inbuf).await
    };
    match within(session.serving.plan.timeouts.handshake, handshake).await {
        Ok(Ok(())) => {
            if let Some(done) = session.conn.handshake_summary() {
                let version = usize::from(done.version == crate::tls::engine::Version::Tls13);
                metrics.tls_handshakes[version][usize::from(done.resumed)].inc();
            }
            if session.listener_plan().client_auth.is_some() {
                session.client_cert = session.conn.client_cert().map(Box::new);
            }
            session.run().await;
            if !session.began {
                // The client closed, or idled out, without sending a request.
                session.log_connection(accepted, "no_request");
            }
        }
        Ok(Err(e)) => {
            // The counter (`metrics::TLS_FAILURE_REASONS`) and the access log's reason.
            let (counter, reason) = match &e {
                TlsIoError::HandshakeEof => (1, "handshake_eof"),
                // A client certificate refused: counted and logged by its own reason.
                TlsIoError::Tls(tls) => match crate::tls::client_cert_failure(tls) {
                    Some(reason) => (client_cert_counter(reason), reason),
                    None => (2, "handshake_refused"),
                },
                _ => (3, "handshake_failed"),
            };
            metrics.tls_failures[counter].inc();
            if counter < CLIENT_CERT_COUNTERS {
                tracing::debug!(%peer, "TLS handshake failed: {e}");
            } else if let Some(suppressed) = session.serving.failures.admit_refusal(coarse_now()) {
                // At most a line a second per worker; the counters and the access log have
                // every one.
                tracing::info!(%peer, reason, suppressed, "client certificate refused: {e}");
            } else {
                tracing::debug!(%peer, "TLS handshake failed: {e}");
            }
            session.log_connection(accepted, reason);
        }
        Err(_) => {
            metrics.tls_failures[0].inc();
            tracing::debug!(%peer, "TLS handshake timed out");
            session.log_connection(accepted, "handshake_timeout");
        }
    }
    session.count_traffic();
    metrics.connections_closed.inc();
}

/// Where the client-certificate reasons start in `metrics::TLS_FAILURE_REASONS`.
const CLIENT_CERT_COUNTERS: usize = 4;

/// The counter of a client-certificate refusal (`tls::client_cert_failure`'s reason); the
/// catch-all `client_cert_invalid` for a reason the counters do not list.
fn client_cert_counter(reason: &str) -> usize {
    let reasons = &crate::metrics::TLS_FAILURE_REASONS;
    reasons
        .iter()
        .position(|r| *r == reason)
        .or_else(|| reasons.iter().position(|r| *r == "client_cert_invalid"))
        .unwrap_or(2)
}

struct Session {
    ctx: Rc<Context>,
    /// The generation of the plan the current (or last) request runs on.
    serving: Rc<Generation>,
    /// The listener the connection came in on (its runtime id).
    listener: usize,
    /// Where that listener is in `serving`'s plan (found once per plan, not per request).
    listener_at: usize,
    /// A reload removed the listener: the request in progress is served on the old plan, and
    /// the connection closes after it.
    listener_removed: bool,
    conn: TlsConn,
    /// The client: the socket's peer, or the source a PROXY header gave.
    peer: SocketAddr,
    /// The address the client connected to: a PROXY header's, or the socket's own local
    /// address once a PROXY header to a backend needed it (`None`: neither yet).
    destination: Option<SocketAddr>,
    /// The backend connection of this client's last request to an upstream that sends a
    /// PROXY header: it carries this client's address, so it is kept for this client only
    /// (never pooled), for its next request to the same backend.
    private: Option<PrivateConn>,
    /// Plaintext from the client not yet consumed (a request head, body bytes, pipelined requests).
    inbuf: LazyBuf,
    /// The backend's response head as it arrives.
    rbuf: LazyBuf,
    head: RequestHead,
    rhead: ResponseHead,
    trace: Trace,
    /// Client traffic already added to the worker's counters.
    counted: (u64, u64),
    /// A request began on the connection (one that ends without any gets a line of its own).
    began: bool,
    /// What the client's verified certificate says, read once after the handshake on a
    /// listener with client authentication; `None` (one word) without a certificate.
    client_cert: Option<Box<ClientCert>>,
}

/// What a failure's log line says when the request is not retried although the rules would
/// have allowed it (the retry budget), or nothing.
fn not_retried(after: AfterFailure) -> &'static str {
    match after {
        AfterFailure::OverBudget => ", not retried: the upstream's retry budget is spent",
        AfterFailure::Retry | AfterFailure::GiveUp => "",
    }
}

/// Logs the failure `e` of `label` from `peer` on `backend` of upstream `group` (see
/// [`Session::log_failure`]).
fn log_failure(
    serving: &Generation,
    peer: SocketAddr,
    e: &ProxyError,
    group: usize,
    backend: usize,
    label: &RequestLabel,
    then: &str,
) {
    let upstream = &serving.groups[group].spec().name;
    let addr = serving.plan.table.backend(backend).address;
    match e.side() {
        Side::Client => tracing::debug!(%upstream, backend = %addr, request = %label, %peer,
            "request failed on the client's side{then}: {e}"),
        side => {
            let Some(suppressed) = serving.failures.admit(backend, coarse_now()) else {
                return;
            };
            if side == Side::Internal {
                tracing::warn!(%upstream, backend = %addr, request = %label, %peer,
                    suppressed, "request failed: out of a local resource (not the \
                    backend's fault){then}: {e}");
            } else {
                tracing::warn!(%upstream, backend = %addr, request = %label, %peer,
                    suppressed, "request failed{then}: {e}");
            }
        }
    }
}

/// A connection to `backend`: a pooled one if there is one (`trust_recent`: see
/// `ConnPool::checkout`), else a new one within the connect timeout; and whether it was pooled.
/// With `send_proxy`, always a new one (a connection that carries a client's PROXY header is
/// that client's alone), the header written first.
async fn backend_connection(
    ctx: &Context,
    serving: &Generation,
    backend: usize,
    now: Instant,
    trust_recent: bool,
    send_proxy: Option<SendProxy>,
) -> Result<(BackendConn, Option<Duration>), ProxyError> {
    if send_proxy.is_none()
        && let Some(conn) = ctx.checkout(serving, backend, now, trust_recent)
    {
        return Ok((conn, None));
    }
    let addr = serving.plan.table.backend(backend).address;
    let connecting = Instant::now();
    let conn = upstream::connect(addr, serving.plan.timeouts.connect).await?;
    if let Some(send) = send_proxy {
        let mut header = buf::take(proxy_protocol::MAX_WRITTEN);
        proxy_protocol::write(send.version, &send.header, &mut header);
        let mut stream = &conn.stream;
        let BufResult(res, header) = within(serving.plan.timeouts.body, stream.write_all(header))
            .await
            .map_err(|_| ProxyError::BackendStalled)?;
        buf::give(header);
        res.map_err(ProxyError::BackendWrite)?;
    }
    Ok((conn, Some(connecting.elapsed())))
}

/// Where a request goes: its upstream, its hashing key, and its label for the logs.
#[derive(Clone, Copy)]
struct Target<'a> {
    group: usize,
    key: u64,
    label: &'a RequestLabel,
}

/// What a failure's log line says follows it when the request is tried again, on another
/// backend or on a new connection to the same one.
const RETRYING: &str = ", retrying";

/// What reading a request head ended with.
enum HeadRead {
    Ready,
    /// The client closed or idled out between requests: close quietly.
    Closed,
    /// Answer with this status and close; the rule the client broke.
    Reject(Status, &'static str),
}

/// How a request/response exchange left the connections.
struct Exchanged {
    /// The request body was read to its end (false when the backend answered early).
    request_complete: bool,
}

impl Session {
    async fn run(&mut self) {
        loop {
            match self.read_head().await {
                HeadRead::Ready => self.follow_reload(),
                HeadRead::Closed => return,
                HeadRead::Reject(status, rule) => {
                    self.begin_request();
                    self.trace.ended_by = Some((Side::Client, rule));
                    self.reject(status).await;
                    self.finish_request();
                    return;
                }
            }
            self.begin_request();
            let in_flight = self.ctx.load.start_request();
            // Boxed: the exchange's state (backend I/O, timers, upload and relay) exists only
            // while a request is in flight, so an idle connection's task stays small.
            let keep = Box::pin(self.exchange()).await;
            drop(in_flight);
            self.finish_request();
            if !keep {
                self.conn.close().await;
                return;
            }
            self.inbuf.release_if_empty();
            self.rbuf.release_if_empty();
            self.conn.release_buffers();
        }
    }

    /// The connection's listener in the plan it is served on.
    fn listener_plan(&self) -> &ListenerPlan {
        // `listener_at` is always found in `serving`'s plan: both change together.
        &self.serving.plan.listeners[self.listener_at]
    }

    /// Moves the connection to the worker's current plan, if a reload published one since its
    /// last request; when the reload removed the connection's listener, or changed its client
    /// authentication (mode, CA or CRL: the handshake was verified under the old one), stays
    /// on the old plan for this request and closes the connection after it.
    fn follow_reload(&mut self) {
        let current = self.ctx.current();
        if current.number == self.serving.number {
            return;
        }
        match current.plan.listener_position(self.listener) {
            Some(at)
                if current.plan.listeners[at].client_auth == self.listener_plan().client_auth =>
            {
                self.serving = current;
                self.listener_at = at;
            }
            Some(_) | None => self.listener_removed = true,
        }
    }

    /// Whether the connection closes after its current request: the worker is draining, or a
    /// reload removed its listener.
    fn closing(&self) -> bool {
        self.ctx.draining.get() || self.listener_removed
    }

    /// Reads until `self.head` holds a complete, valid request head.
    async fn read_head(&mut self) -> HeadRead {
        let timeouts = self.serving.plan.timeouts;
        let mut deadline: Option<Instant> = None;
        loop {
            if !self.inbuf.is_empty() {
                match http1::parse_request(
                    self.inbuf.bytes(),
                    &self.serving.plan.limits,
                    &mut self.head,
                ) {
                    Ok(Parsed::Complete) => return HeadRead::Ready,
                    Ok(Parsed::Partial) => {}
                    Err(e) => {
                        tracing::debug!(peer = %self.peer, "rejected request: {e}");
                        return HeadRead::Reject(e.status(), e.name());
                    }
                }
                deadline.get_or_insert_with(|| after(timeouts.request_head));
            }
            // A draining worker does not close an idle connection here: its client may be
            // sending the next request right now. It is answered with `Connection: close`;
            // the worker closes what is still idle when its drain ends.
            // Idle between requests: the keep-alive timeout; once a byte of the head has
            // arrived: the request-head deadline.
            let at = deadline.unwrap_or_else(|| after(timeouts.keepalive));
            let read = until(at, self.conn.read_plain(&mut self.inbuf, true)).await;
            match read {
                Ok(Ok(0)) | Ok(Err(_)) => return HeadRead::Closed,
                Ok(Ok(_)) => {}
                Err(_) if deadline.is_some() => {
                    return HeadRead::Reject(Status::RequestTimeout, "client_timeout");
                }
                Err(_) => return HeadRead::Closed,
            }
        }
    }

    /// Proxies the request in `self.head`; returns whether the client connection stays open.
    async fn exchange(&mut self) -> bool {
        let ctx = self.ctx.clone();
        let serving = self.serving.clone();
        let method = self.head.method;
        let keep = ClientKeep::new(self.head.keep_alive, self.head.http10, self.closing());
        let head_len = self.head.head_len;
        let small = rules::small_body(&self.head);
        let label = RequestLabel::new(self.inbuf.bytes());

        // The handshake's client certificate (the plan's listener has the same policy).
        let client_cert = match (
            self.listener_plan().client_auth,
            self.client_cert.as_deref(),
        ) {
            (None, _) => ClientCertFields::Off,
            (Some(_), None) => ClientCertFields::NoCertificate,
            (Some(_), Some(cert)) => ClientCertFields::Verified {
                subject: cert.subject(),
                san: cert.san(),
                fingerprint: cert.fingerprint(),
            },
        };
        // The re-serialized head, then the body bytes that came with it and, for a small body,
        // the rest of it, read straight in: the request goes out in one send.
        let mut req = buf::take(REQUEST_HEAD_SLACK + head_len + small + client_cert.len());
        // X-Request-Id: a client's well-formed one is kept (`keep`), else one is generated.
        let client_id = self
            .head
            .request_id(self.inbuf.bytes())
            .filter(|id| access::acceptable_request_id(id));
        let generated = match (serving.plan.request_ids, client_id) {
            (RequestIds::Off, _) | (RequestIds::Keep, Some(_)) => None,
            (RequestIds::Keep | RequestIds::Replace, _) => Some(ctx.request_ids.next_id()),
        };
        // Routing and the hashing key read the head, which lives in `inbuf` until consumed;
        // the route's header rules apply to the head written now.
        let routed = self.route();
        let route = match routed {
            Destination::Upstream { route, .. } => route,
            Destination::Fixed(route) => Some(route),
            Destination::Redirect | Destination::Status(_) => None,
        };
        self.trace.route = route;
        let forwarding = Forwarding {
            client_ip: self.peer.ip(),
            proto: self.listener_plan().scheme(),
            request_id: generated.as_ref().map(|id| &id[..]),
            client_cert,
        };
        http1::write_request_head_with(
            self.inbuf.bytes(),
            &self.head,
            &forwarding,
            self.listener_plan().request_rules(route),
            &mut req,
        );
        let mut body = BodyDecoder::new(self.head.body, &serving.plan.limits);
        let early = match body.advance(&self.inbuf.bytes()[head_len..]) {
            Ok(adv) => adv.consumed,
            Err(e) => {
                tracing::debug!(peer = %self.peer, "rejected request body: {e}");
                self.trace.ended_by = Some((Side::Client, e.name()));
                buf::give(req);
                self.reject(e.status()).await;
                return false;
            }
        };
        if self.logs_request() {
            let buf = self.inbuf.bytes();
            let logged_id = match serving.plan.request_ids {
                RequestIds::Off => None,
                _ => generated.as_ref().map(|id| &id[..]).or(client_id),
            };
            self.trace.fields = Some(Fields::capture(&self.head, buf, logged_id));
        }
        let key = match routed {
            Destination::Upstream { group, .. } => self.hash_key(group),
            _ => 0,
        };
        // A redirect names the request's host and target, read before the head is consumed.
        let configured = match routed {
            Destination::Redirect => self.redirect_target(),
            _ => Configured::Fixed,
        };
        // A request to switch protocols where the configuration turns upgrades off: 403
        // before anything reaches a backend, and the connection closed (what follows the
        // request may be the new protocol's bytes, never to be read as HTTP).
        let upgrade_refused = self.head.upgrade
            && match routed {
                Destination::Upstream { route, .. } => !self.listener_plan().upgrades(route),
                // Answered by ringway itself: nothing to switch to.
                _ => false,
            };
        if upgrade_refused {
            buf::give(req);
            self.trace.ended_by = Some((Side::Internal, "upgrade_refused"));
            self.reject(Status::Forbidden).await;
            return false;
        }
        // The protocols an upgrade request offers, kept for the 101: the head is consumed now.
        let offer = self
            .head
            .upgrade
            .then(|| self.head.upgrade_offer(self.inbuf.bytes()));
        req.extend_from_slice(&self.inbuf.bytes()[head_len..head_len + early]);
        self.inbuf.consume(head_len + early);
        if small > 0 && !self.read_small_body(&mut req, &mut body).await {
            buf::give(req);
            return false;
        }
        // Bytes the client sent after an upgrade request may be the new protocol's: never
        // read as a request, whoever answers.
        let pipelined_after_upgrade = self.head.upgrade && !self.inbuf.is_empty();
        let local_keep = keep.after_local_answer(body.is_done()) && !pipelined_after_upgrade;

        let group = match routed {
            Destination::Upstream { group, .. } => group,
            Destination::Status(status) => {
                buf::give(req);
                self.trace.ended_by = Some((Side::Client, "no_route"));
                return self.respond(Answer::unrouted(status, local_keep)).await;
            }
            Destination::Fixed(_) | Destination::Redirect => {
                buf::give(req);
                return self.answer_configured(configured, method, local_keep).await;
            }
        };
        self.trace.group = Some(group);
        let target = Target {
            group,
            key,
            label: &label,
        };
        let sent = self.send(req, &mut body, method, &target).await;
        let (lease, bconn, exchanged) = match sent {
            Ok(sent) => sent,
            Err(e) => {
                self.trace.ended_by = Some((e.side(), e.reason()));
                // Every failed attempt was logged with its backend; an upstream with no
                // backend to try is the health checks' and ejections' news, not a new one.
                if let ProxyError::NoBackend { .. } = e {
                    tracing::debug!(peer = %self.peer, upstream = %serving.groups[group].spec().name,
                        request = %label, "no backend available");
                }
                return self
                    .respond(Answer::for_failure(&e, local_keep, false))
                    .await;
            }
        };

        if self.rhead.switches_protocols() {
            let offered = offer.as_deref().unwrap_or_default();
            if !self.rhead.switches_to_offered(self.rbuf.bytes(), offered) {
                // Switched to something else than what the client asked for: 502, and both
                // connections closed (the backend now speaks the other protocol).
                let e = ProxyError::from(ResponseError::SwitchingToUnoffered);
                return self.fail_backend(&e, group, &lease, &label, false).await;
            }
            // The lease holds the backend until the tunnel ends.
            return self.tunnel(lease, bconn).await;
        }
        // An upgrade the backend declined is an ordinary exchange, but not followed by what
        // the client sent after it before seeing the answer.
        let client_keep = keep.after_response(
            exchanged.request_complete,
            self.closing(),
            self.rhead.forces_client_close(self.head.http10),
        ) && !pipelined_after_upgrade;
        match self.relay_response(&bconn, client_keep).await {
            Ok(relayed) => {
                if rules::backend_reusable(
                    exchanged.request_complete,
                    relayed.backend_keep,
                    relayed.extra,
                    relayed.close_delimited,
                ) {
                    if serving.groups[group].spec().send_proxy.is_some() {
                        // It carried this client's PROXY header: this client's alone.
                        self.private = Some(PrivateConn {
                            generation: serving.number,
                            backend: lease.backend(),
                            conn: bconn,
                        });
                    } else {
                        ctx.checkin(&serving, lease.backend(), bconn, coarse_now());
                    }
                }
                client_keep
            }
            Err((e, head_sent)) => {
                self.fail_backend(&e, group, &lease, &label, head_sent)
                    .await
            }
        }
    }

    /// Ends an exchange the backend's answer broke (`e`, from the backend behind `lease`): logged
    /// and counted against the backend, the client answered with the error's status (or, once
    /// the response head was sent (`head_sent`), cut off); returns whether the client connection
    /// stays open.
    async fn fail_backend(
        &mut self,
        e: &ProxyError,
        group: usize,
        lease: &Lease,
        label: &RequestLabel,
        head_sent: bool,
    ) -> bool {
        self.trace.ended_by = Some((e.side(), e.reason()));
        self.log_failure(e, group, lease.backend(), label, "");
        lease.report_error(e);
        self.respond(Answer::for_failure(e, false, head_sent)).await
    }

    /// Reads the rest of a small body (see [`Session::small_body`]) straight into `req`, the
    /// request to send: it then goes to the backend in one send, and stays whole for a retry.
    /// Bytes after the body (a pipelined request) go back to `inbuf`. False when the client
    /// went away or stalled (answered 408); nothing has reached a backend then.
    async fn read_small_body(&mut self, req: &mut Vec<u8>, body: &mut BodyDecoder) -> bool {
        while !body.is_done() {
            let before = req.len();
            let read = within(
                self.serving.plan.timeouts.body,
                self.conn.read_plain(req, true),
            )
            .await;
            match read {
                Ok(Ok(0)) | Ok(Err(_)) => return false,
                Ok(Ok(_)) => {}
                Err(_) => {
                    self.reject(Status::RequestTimeout).await;
                    return false;
                }
            }
            let consumed = match body.advance(&req[before..]) {
                Ok(adv) => adv.consumed,
                Err(e) => {
                    self.reject(e.status()).await;
                    return false;
                }
            };
            if before + consumed < req.len() {
                self.inbuf
                    .get()
                    .extend_from_slice(&req[before + consumed..]);
                req.truncate(before + consumed);
            }
        }
        true
    }

    /// After a 101: sends its head (with what the backend sent after it) to the client and
    /// what the client sent after its request to the backend, then relays both ways until the
    /// tunnel ends ([`Tunnel::run`]). Returns false: the client connection closes after it,
    /// the backend connection is dropped (never pooled) and the lease ends with it.
    async fn tunnel(&mut self, lease: Lease, bconn: BackendConn) -> bool {
        let rhead = &self.rhead;
        let rest = &self.rbuf.bytes()[rhead.head_len..];
        let mut plain = buf::take(HEAD_SLACK + rhead.head_len + rest.len());
        self.trace.status = rhead.status;
        // The route's, not through `listener_plan`: `rhead` borrows `self`.
        let rules = self.serving.plan.listeners[self.listener_at].response_rules(self.trace.route);
        http1::write_response_head_with(self.rbuf.bytes(), rhead, true, false, rules, &mut plain);
        plain.extend_from_slice(rest);
        self.rbuf.clear();
        self.rbuf.release_if_empty();
        let tunnel = Tunnel {
            conn: &self.conn,
            backend: &bconn.stream,
            idle: self.serving.plan.timeouts.tunnel,
            tunnels: &self.ctx.tunnels,
        };
        self.trace.switched = Some(Instant::now());
        self.ctx.metrics.tunnels_opened.inc();
        let end = tunnel.run(&mut self.inbuf, plain).await;
        self.ctx.metrics.tunnels_closed.inc();
        let open = self.ctx.tunnels.open();
        tracing::debug!(peer = %self.peer, open, "tunnel ended: {end:?}");
        self.trace.ended_by = Some(end.termination());
        drop(bconn);
        drop(lease);
        false
    }

    /// The consistent-hashing key of the request in `self.head` for upstream `group` (see
    /// [`rules::hash_key`]).
    fn hash_key(&self, group: usize) -> u64 {
        match &self.serving.groups[group].spec().key {
            Some(source) => rules::hash_key(source, &self.head, self.inbuf.bytes(), self.peer.ip()),
            None => 0,
        }
    }

    /// Logs the failure `e` of `label` on `backend` of upstream `group`, `then` saying what
    /// follows (a retry): a backend's failure or a local shortage as a warning, at most one
    /// line per backend per second with the count of the rest
    /// ([`FailureLog`](super::failure_log::FailureLog)); a client's as
    /// debug.
    fn log_failure(
        &self,
        e: &ProxyError,
        group: usize,
        backend: usize,
        label: &RequestLabel,
        then: &str,
    ) {
        log_failure(&self.serving, self.peer, e, group, backend, label, then);
    }

    /// Chooses a backend of upstream `group`, sends the request and waits for its final
    /// response head, with the attempts [`Attempts`] allows: a retry after a connect failure
    /// (nothing was sent), or for an idempotent request held whole when the backend closed or
    /// failed before answering anything; on another backend, or on a new connection to the
    /// same one when what failed was a pooled connection (closed while idle).
    async fn send(
        &mut self,
        mut req: Vec<u8>,
        body: &mut BodyDecoder,
        method: Method,
        target: &Target<'_>,
    ) -> Result<(Lease, BackendConn, Exchanged), ProxyError> {
        let Target { group, key, label } = *target;
        // The whole request is in `req` only when its body already arrived with the head:
        // only then can it be sent again.
        let mut attempts = Attempts::new(method, body.is_done());
        self.serving.groups[group].retry_budget().deposit();
        let mut last_error = None;
        // The backend whose failure (`last_error`) is logged once it is known whether another
        // attempt follows.
        let mut unlogged: Option<usize> = None;
        // Only a latency-aware policy needs the exact time a request took.
        let timed = self.serving.groups[group].wants_latency();
        while attempts.may_start() {
            let now = if timed { Instant::now() } else { coarse_now() };
            let backend = match self.serving.groups[group].choose(key, attempts.avoid(), now) {
                Choice::Backend(i) => i,
                Choice::Unavailable { retry_after } => {
                    last_error.get_or_insert(ProxyError::NoBackend { retry_after });
                    break;
                }
            };
            let lease = Lease::new(self.serving.clone(), group, backend);
            if !attempts.start(backend) {
                if let (Some(failed), Some(e)) = (unlogged.take(), &last_error) {
                    self.log_failure(e, group, failed, label, "");
                }
                break;
            }
            if let (Some(failed), Some(e)) = (unlogged.take(), &last_error) {
                self.log_failure(e, group, failed, label, RETRYING);
            }
            self.trace.attempts += 1;
            self.trace.backend = Some(backend);
            let trust_recent = attempts.trusts_recent();
            let bconn = match self
                .backend_connection(group, backend, now, trust_recent)
                .await
            {
                Ok((bconn, connect)) => {
                    // A pooled connection took no connect.
                    attempts.uses_pooled(connect.is_none());
                    self.trace.connect = connect;
                    bconn
                }
                Err(e) => {
                    attempts.uses_pooled(false);
                    lease.report_error(&e);
                    let budget = || {
                        self.serving.groups[group]
                            .retry_budget()
                            .withdraw(coarse_now())
                    };
                    let after = attempts.after_failure(&e, false, budget);
                    if after != AfterFailure::Retry {
                        self.log_failure(&e, group, backend, label, not_retried(after));
                        buf::give(req);
                        return Err(e);
                    }
                    unlogged = Some(backend);
                    last_error = Some(e);
                    continue;
                }
            };
            let sent = Instant::now();
            // Only a latency-aware policy is told how long the request took.
            let started = timed.then_some(sent);
            let mut stream = &bconn.stream;
            let written = within(self.serving.plan.timeouts.body, stream.write_all(req)).await;
            let BufResult(res, returned) = match written {
                Ok(r) => r,
                Err(_) => {
                    let e = ProxyError::BackendStalled;
                    lease.report_error(&e);
                    self.log_failure(&e, group, backend, label, "");
                    return Err(e);
                }
            };
            req = returned;
            let failed = match res {
                Err(e) => ProxyError::BackendWrite(e),
                Ok(()) => {
                    self.rbuf.clear();
                    // A retry after the per-try timeout, or a hedge, must be possible, the
                    // budget included, for the attempt to be cut short or doubled.
                    let may_retry = attempts.waits_per_try()
                        && self.serving.groups[group]
                            .retry_budget()
                            .allows(coarse_now());
                    let hedge_after = self.serving.groups[group].spec().hedge_after;
                    let mut winner = None;
                    let mut per_try = may_retry.then_some(self.serving.plan.timeouts.per_try);
                    // An upgrade is never hedged: the losing backend would have switched too.
                    let hedged = hedge_after.filter(|_| may_retry && !self.head.upgrade);
                    if let Some(delay) = hedged {
                        // The hedge replaces the per-try timeout: the first attempt is not
                        // abandoned, it races the second.
                        per_try = None;
                        let hedge = Hedge {
                            first: &bconn,
                            first_backend: backend,
                            req: &req,
                            delay,
                        };
                        // Boxed: its state (a second head buffer and head) exists only when
                        // hedging is on, not in every exchange's future.
                        let race = Box::pin(self.race_hedge(hedge, method, target, &mut attempts));
                        match race.await {
                            Ok(Some(won)) => {
                                if let Some(e) = &won.first_failed {
                                    // The first attempt failed before the second answered.
                                    lease.report_error(e);
                                    self.log_failure(e, group, backend, label, "");
                                }
                                winner = Some((won.lease, won.conn));
                            }
                            Ok(None) => {}
                            Err(e) => {
                                // Both attempts failed, or the first one alone.
                                lease.report_error(&e);
                                self.log_failure(&e, group, backend, label, "");
                                buf::give(req);
                                return Err(e);
                            }
                        }
                    }
                    if let Some((lease, bconn)) = winner {
                        self.trace.attempts += 1;
                        self.trace.backend = Some(lease.backend());
                        // The second attempt won; the first one's connection is closed and
                        // its lease ends unreported (it was slow, not failed). Its head is
                        // buffered: this parses it (and relays interim responses) at once.
                        return match self.await_response(&bconn, body, method, None).await {
                            Ok(exchanged) => {
                                self.trace.first_byte = Some(sent.elapsed());
                                buf::give(req);
                                lease.report_response(self.rhead.status, started);
                                Ok((lease, bconn, exchanged))
                            }
                            Err(e) => {
                                lease.report_error(&e);
                                self.log_failure(&e, group, lease.backend(), label, "");
                                buf::give(req);
                                Err(e)
                            }
                        };
                    }
                    match self.await_response(&bconn, body, method, per_try).await {
                        Ok(exchanged) => {
                            self.trace.first_byte = Some(sent.elapsed());
                            buf::give(req);
                            lease.report_response(self.rhead.status, started);
                            return Ok((lease, bconn, exchanged));
                        }
                        Err(e) => e,
                    }
                }
            };
            lease.report_error(&failed);
            // Any byte of a response head, even an incomplete one, means the backend answered.
            let answered = !self.rbuf.is_empty();
            let budget = || {
                self.serving.groups[group]
                    .retry_budget()
                    .withdraw(coarse_now())
            };
            let after = attempts.after_failure(&failed, answered, budget);
            if after != AfterFailure::Retry {
                self.log_failure(&failed, group, backend, label, not_retried(after));
                buf::give(req);
                return Err(failed);
            }
            unlogged = Some(backend);
            last_error = Some(failed);
        }
        buf::give(req);
        if let (Some(failed), Some(e)) = (unlogged, &last_error) {
            self.log_failure(e, group, failed, label, "");
        }
        Err(last_error.unwrap_or(ProxyError::NoBackend {
            retry_after: NO_BACKEND_RETRY_AFTER,
        }))
    }

    /// Streams the rest of the request body (if any) while waiting for the backend's final
    /// response head; relays `100 Continue`.
    ///
    /// With `per_try`, a backend that sent no byte of its answer that long after the request
    /// ended is abandoned: [`ProxyError::TryTimeout`] (the caller closes the connection and
    /// retries). Once a byte arrived, or without `per_try`, the response timeout applies.
    async fn await_response(
        &mut self,
        bconn: &BackendConn,
        body: &mut BodyDecoder,
        method: Method,
        per_try: Option<Duration>,
    ) -> Result<Exchanged, ProxyError> {
        let timeouts = self.serving.plan.timeouts;
        let limits = &self.serving.plan.limits;
        let expect_continue = self.head.expect_continue;
        let upgrade = self.head.upgrade;
        let Session {
            conn,
            inbuf,
            rbuf,
            rhead,
            ..
        } = self;

        let mut upload_done = body.is_done();
        // Set by the head reader when the first byte of a response arrives.
        let answered = Cell::new(false);
        // Polled only while the body is still arriving.
        let mut upload = pin!(upload_body(conn, &bconn.stream, body, inbuf, timeouts.body));
        let mut deadline = None;
        loop {
            let head_read = {
                // One head future per response head, kept alive until it completes: dropping
                // it could discard bytes its receive had already taken from the socket.
                let mut head = pin!(read_response_head(
                    &bconn.stream,
                    rbuf,
                    rhead,
                    (method, upgrade),
                    limits,
                    &answered,
                ));
                loop {
                    if upload_done {
                        // The response timeout runs from the end of the request, and so does
                        // the per-try timeout of an attempt that may be cut short.
                        let at = *deadline.get_or_insert_with(|| after(timeouts.response));
                        if let Some(per_try) = per_try.filter(|_| !answered.get()) {
                            let try_at = after(per_try).min(at);
                            // The head future is only borrowed here: it stays alive, with
                            // whatever it received, if the wait goes on.
                            if let Ok(read) = until(try_at, head.as_mut()).await {
                                break read;
                            }
                            if !answered.get() {
                                break Err(ProxyError::TryTimeout);
                            }
                        }
                        break match until(at, head.as_mut()).await {
                            Err(_) => Err(ProxyError::ResponseTimeout),
                            Ok(read) => read,
                        };
                    }
                    match select(upload.as_mut(), head.as_mut()).await {
                        Either::Left((Ok(()), _)) => upload_done = true,
                        Either::Left((Err(e), _)) => break Err(e),
                        Either::Right((read, _)) => break read,
                    }
                }
            };
            head_read?;
            if rhead.switches_protocols() {
                // The new protocol's bytes follow the 101: a request body not sent whole by
                // then would be read two ways.
                if !upload_done {
                    return Err(ResponseError::SwitchingBeforeRequestEnd.into());
                }
                return Ok(Exchanged {
                    request_complete: true,
                });
            }
            if rhead.status >= 200 {
                // A final answer before the whole body means the rest is never read: the
                // caller then closes both connections.
                return Ok(Exchanged {
                    request_complete: upload_done,
                });
            }
            relay_interim(conn, rbuf, rhead, expect_continue, timeouts.body).await?;
        }
    }

    /// Sends the final response head and streams its body to the client.
    async fn relay_response(
        &mut self,
        bconn: &BackendConn,
        client_keep: bool,
    ) -> Result<Relayed, (ProxyError, bool)> {
        let idle = self.serving.plan.timeouts.body;
        let rhead = &self.rhead;
        let mut decoder = BodyDecoder::new(rhead.body, &response_limits(&self.serving.plan.limits));
        // An HTTP/1.0 client gets a chunked body's payload alone: decoded from a scratch buffer.
        let mut dechunk =
            (self.head.http10 && rhead.body == BodyKind::Chunked).then(|| buf::take(SLOW_READ));

        // The plaintext to send: the head, then the body as it comes, encrypted once per write so
        // that the client gets full TLS records (a 64 KiB response and its head in five). A body
        // that breaks its framing in the bytes that came with the head is still a 502.
        let rest = &self.rbuf.bytes()[rhead.head_len..];
        // Room for the rewritten head, the bytes that came with it and one read of the body.
        let more = match rhead.body {
            BodyKind::Length(n) if n <= rest.len() as u64 => 0,
            BodyKind::Empty => 0,
            _ => BODY_READ,
        };
        let mut plain = buf::take(HEAD_SLACK + rhead.head_len + rest.len() + more);
        self.trace.status = rhead.status;
        // The route's, not through `listener_plan`: `rhead` borrows `self`.
        let rules = self.serving.plan.listeners[self.listener_at].response_rules(self.trace.route);
        http1::write_response_head_with(
            self.rbuf.bytes(),
            rhead,
            client_keep,
            self.head.http10,
            rules,
            &mut plain,
        );
        let first = if dechunk.is_some() {
            decoder.decode(rest, &mut plain)
        } else {
            decoder.advance(rest).inspect(|adv| {
                plain.extend_from_slice(&rest[..adv.consumed]);
            })
        };
        let first = match first {
            Ok(adv) => adv,
            Err(e) => {
                buf::give(plain);
                if let Some(buf) = dechunk {
                    buf::give(buf);
                }
                return Err((ProxyError::BadResponseBody(e), false));
            }
        };
        let mut extra = rest.len() > first.consumed;
        let backend_keep = rhead.keep_alive;
        // The head is copied out: the connection holds no response-head buffer while the body
        // flows.
        self.rbuf.clear();
        self.rbuf.release_if_empty();
        let body = BodyRelay {
            conn: &self.conn,
            backend: &bconn.stream,
            idle,
        };
        let outcome = body
            .run(&mut decoder, &mut plain, &mut dechunk, &mut extra)
            .await;
        buf::give(plain);
        if let Some(buf) = dechunk {
            buf::give(buf);
        }
        outcome.map_err(|e| (e, true))?;
        Ok(Relayed {
            backend_keep,
            extra,
            close_delimited: decoder.is_close_delimited(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::http1::Limits;
    use crate::proxy::Timeouts;

    /// An idle connection costs its task's future plus the TLS state: keep the future small
    /// (the request exchange is boxed and exists only while a request is in flight).
    #[test]
    fn idle_connection_task_stays_small() {
        let rt = compio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let _client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
            let (s, peer) = l.accept().unwrap();
            let tcp = TcpStream::from_std(s).unwrap();
            let cert = crate::tls::self_signed(&["localhost"]).unwrap();
            let key = crate::tls::certified_key_from_der(cert.chain, cert.key).unwrap();
            let tls = crate::tls::server_config(vec![key], &Default::default(), None).unwrap();
            let second = Duration::from_secs(1);
            let board = crate::upstream::board::HealthBoard::new(0);
            let plan = crate::proxy::Plan {
                listeners: vec![crate::proxy::ListenerPlan {
                    id: 0,
                    address: peer,
                    log: crate::proxy::access::LogRule::Off,
                    upgrade: true,
                    request_headers: Default::default(),
                    response_headers: Default::default(),
                    tls: Some(tls),
                    client_auth: None,
                    router: crate::route::Router::new(Vec::new(), None),
                    proxy_protocol: None,
                    routes: Vec::new(),
                    redirect: None,
                }],
                table: Arc::new(crate::upstream::group::Table::new(Vec::new(), board)),
                upstreams: Vec::new(),
                limits: Limits::default(),
                timeouts: Timeouts {
                    handshake: second,
                    request_head: second,
                    keepalive: second,
                    body: second,
                    connect: second,
                    response: second,
                    per_try: second,
                    tunnel: second,
                },
                pool: crate::proxy::PoolSettings {
                    max_idle: 0,
                    idle_timeout: second,
                },
                request_ids: crate::proxy::RequestIds::Keep,
            };
            let worker = crate::runtime::Worker {
                index: 0,
                load: Default::default(),
            };
            let published = crate::proxy::generation::Published::new(Arc::new(plan));
            let ctx = Rc::new(Context::new(published, worker, Default::default(), None));
            let task = serve(ctx, 0, tcp, peer);
            let size = std::mem::size_of_val(&task);
            assert!(size <= 4096, "connection task is {size} bytes");
        });
    }
}
