//! Answers ringway writes itself: where a request goes ([`Session::route`]: a redirect, a
//! route's fixed response, an upstream, or 404/421), the configured answers (a fixed response,
//! the redirect to HTTPS), the local ones (no route, no backend, retry later) and the
//! pre-built error responses that close the connection.
//!
//! Invariants: every answer is a complete, well-framed response; the connection stays open
//! after it only when the request was read whole and the answer says so.

use super::*;

/// An answer the configuration gives instead of a backend's.
pub(super) enum Configured {
    /// `308` to HTTPS: `target` holds the request's host (up to `host_end`) and its target.
    Redirect { target: Vec<u8>, host_end: usize },
    /// A redirect whose Host cannot be written into a `Location`: 400, connection closed.
    BadRedirectHost,
    /// The fixed response of the route that took the request (`Session::trace.route`).
    Fixed,
}

impl Session {
    /// Where the request in `self.head` goes: a redirect to HTTPS (a listener that redirects,
    /// but not an ACME challenge), else what its router decides (see [`rules::destination`]).
    pub(super) fn route(&self) -> Destination {
        let buf = self.inbuf.bytes();
        let (host, path) = (self.head.host(buf), self.head.path(buf));
        let listener = self.listener_plan();
        if listener.redirect.is_some_and(|r| r.applies(path)) {
            return Destination::Redirect;
        }
        let router = &listener.router;
        let routed = self
            .conn
            .with_server_name(|sni| router.route(host, path, sni));
        rules::destination(routed)
    }

    /// The redirect to HTTPS of the request in `self.head`: its host (without the port) and
    /// target copied out of the head, or [`Configured::BadRedirectHost`] when the host cannot be
    /// written into a `Location` (the request is answered 400).
    pub(super) fn redirect_target(&self) -> Configured {
        let buf = self.inbuf.bytes();
        let host = crate::route::normalize_host(self.head.host(buf));
        if !http1::redirect_host_ok(host) {
            return Configured::BadRedirectHost;
        }
        let path = self.head.path(buf);
        let mut target = buf::take(host.len() + path.len());
        target.extend_from_slice(host);
        target.extend_from_slice(path);
        Configured::Redirect {
            target,
            host_end: host.len(),
        }
    }

    /// Answers with what the configuration says instead of a backend (`configured`). Returns
    /// whether the connection stays open.
    pub(super) async fn answer_configured(
        &mut self,
        configured: Configured,
        method: Method,
        keep: bool,
    ) -> bool {
        let listener = &self.serving.plan.listeners[self.listener_at];
        let rules = listener.response_rules(self.trace.route);
        let mut out;
        match configured {
            Configured::Redirect {
                target,
                host_end: at,
            } => {
                out = buf::take(LOCAL_RESPONSE_LEN + target.len());
                let port = listener.redirect.and_then(|r| r.port);
                http1::write_https_redirect(
                    &target[..at],
                    port,
                    &target[at..],
                    keep,
                    rules,
                    &mut out,
                );
                buf::give(target);
                self.trace.status = 308;
            }
            Configured::BadRedirectHost => {
                self.trace.ended_by = Some((Side::Client, "redirect_host"));
                self.reject(Status::BadRequest).await;
                return false;
            }
            Configured::Fixed => {
                let fixed = listener
                    .route_plan(self.trace.route)
                    .and_then(|route| route.respond.as_ref());
                let Some(fixed) = fixed else {
                    // A plan always has the response of a route without upstream.
                    self.reject(Status::InternalServerError).await;
                    return false;
                };
                out = buf::take(fixed.len() + LOCAL_RESPONSE_LEN);
                fixed.write(method, keep, rules, &mut out);
                self.trace.status = fixed.status();
            }
        }
        self.send_local(out, keep).await
    }

    /// Sends what ringway answers itself, then keeps or closes the connection; returns whether
    /// it stays open.
    pub(super) async fn respond(&mut self, answer: Answer) -> bool {
        match answer {
            Answer::Local {
                status,
                retry_after,
                keep,
            } => self.answer(status, retry_after, keep).await,
            Answer::Reject(status) => {
                self.reject(status).await;
                false
            }
            Answer::Close => false,
        }
    }

    /// Answers a request ringway handles itself (no route, no backend available).
    pub(super) async fn answer(
        &mut self,
        status: Status,
        retry_after: Option<u64>,
        keep: bool,
    ) -> bool {
        self.trace.status = status as u16;
        let mut out = buf::take(LOCAL_RESPONSE_LEN);
        http1::local_response(status, retry_after, keep, self.head.method, &mut out);
        self.send_local(out, keep).await
    }

    /// Sends `out`, a whole response ringway wrote itself, then closes the connection or
    /// flushes it (`keep`); returns whether it stays open.
    pub(super) async fn send_local(&mut self, out: Vec<u8>, keep: bool) -> bool {
        let written = self.conn.write_plain(&out);
        buf::give(out);
        if written.is_err() {
            return false;
        }
        if !keep {
            let _ = within(self.serving.plan.timeouts.body, self.conn.close()).await;
            return false;
        }
        matches!(
            within(self.serving.plan.timeouts.body, self.conn.flush()).await,
            Ok(Ok(()))
        )
    }

    /// Sends a pre-built error response; the caller closes the connection.
    pub(super) async fn reject(&mut self, status: Status) {
        self.trace.status = status as u16;
        if self.conn.write_plain(http1::error_response(status)).is_ok() {
            let _ = within(self.serving.plan.timeouts.body, self.conn.close()).await;
        }
    }
}
