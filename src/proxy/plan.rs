//! The compiled plan: everything a worker's proxy serves, immutable once built.
//!
//! Owns the data-plane's view of a configuration: each listener's TLS configuration and
//! router, the backend table and the upstreams, the framing limits, the timeouts and the idle
//! pool's settings. The application compiles one from a validated configuration at startup
//! and at each reload (`app::plan`) and publishes it ([`super::generation::Published`]); each
//! worker serves it through its current [`super::generation::Generation`].
//!
//! Invariants: a plan is never mutated once built; it holds no per-worker state (a worker's
//! policy positions, ejections, idle connections live in its `Context`, built from the plan);
//! a listener is named by its runtime id ([`ListenerPlan::id`], stable across reloads while
//! its address stays); upstreams and backends are positions in this plan (a router names
//! upstreams by their index in [`Plan::upstreams`]). Replacing a worker's plan (a reload)
//! therefore means swapping one `Rc` between two requests, not touching the data path.

use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;

use crate::http1::Limits;
use crate::route::Router;
use crate::upstream::group::{Table, UpstreamSpec};

/// Timeouts that apply to every connection of a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TLS handshake, from accept.
    pub handshake: Duration,
    /// A whole request head, from its first byte.
    pub request_head: Duration,
    /// Idle time between two requests on a kept-alive client connection.
    pub keepalive: Duration,
    /// Inactivity while a body streams, in either direction.
    pub body: Duration,
    /// Connecting to a backend.
    pub connect: Duration,
    /// Waiting for the backend's response head once the request is sent.
    pub response: Duration,
    /// Waiting for the first byte of a response when the attempt may be retried (at most
    /// `response`).
    pub per_try: Duration,
    /// Inactivity of a tunnel (after a 101), both directions together.
    pub tunnel: Duration,
}

/// What ringway does with `X-Request-Id` (TOML `request_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestIds {
    /// Keeps a client's id (a well-formed one), generates one when there is none (default).
    #[default]
    Keep,
    /// Always sends a generated id, dropping the client's.
    Replace,
    /// Neither generates nor logs one; a client's is forwarded as any other field.
    Off,
}

/// The idle backend connections a worker keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// Idle connections kept per backend per worker.
    pub max_idle: usize,
    /// How long an idle backend connection is kept.
    pub idle_timeout: Duration,
}

/// The shortest time between two sweeps of the idle pool.
const MIN_SWEEP_PERIOD: Duration = Duration::from_millis(100);
/// The longest time between two sweeps of the idle pool.
const MAX_SWEEP_PERIOD: Duration = Duration::from_secs(5);

impl PoolSettings {
    /// How often expired idle connections are closed: twice per idle timeout, so none outlives
    /// it by more than half, within [`MIN_SWEEP_PERIOD`] and [`MAX_SWEEP_PERIOD`].
    pub fn sweep_period(&self) -> Duration {
        (self.idle_timeout / 2).clamp(MIN_SWEEP_PERIOD, MAX_SWEEP_PERIOD)
    }
}

/// One listener as the proxy serves it.
pub struct ListenerPlan {
    /// The runtime's id of the listener (`runtime::Listen::id`).
    pub id: usize,
    /// The address it was configured with.
    pub address: std::net::SocketAddr,
    /// Which of its requests are written to the access log.
    pub log: super::access::LogRule,
    /// Whether the requests no route takes (the default upstream) may switch protocols
    /// (WebSocket); refused ones are answered 403. See [`ListenerPlan::upgrades`].
    pub upgrade: bool,
    /// Fields set, appended or removed on requests to the backends.
    pub request_headers: crate::http1::HeaderRules,
    /// Fields set, appended or removed on responses to the clients.
    pub response_headers: crate::http1::HeaderRules,
    /// The TLS configuration (certificates, tickets, client certificates), shared by every
    /// worker; `None`: the listener serves plain HTTP.
    pub tls: Option<Arc<ServerConfig>>,
    /// The client authentication `tls` verifies clients under; `None`: it asks for no
    /// certificate (or serves plain HTTP). A connection follows a reload only to a listener
    /// with the same policy.
    pub client_auth: Option<crate::tls::ClientAuthPolicy>,
    /// Which upstream serves a request (indexes into [`Plan::upstreams`]).
    pub router: Router,
    /// Every connection starts with a PROXY header from these sources (`None`: no header).
    pub proxy_protocol: Option<crate::proxy_protocol::Inbound>,
    /// What each route of `router` adds to the listener, by route position.
    pub routes: Vec<RoutePlan>,
    /// Every request but ACME challenges is redirected to HTTPS (plain-HTTP listeners).
    pub redirect: Option<HttpsRedirect>,
}

impl ListenerPlan {
    /// What the route at `route` adds (`None`: no route, or the default upstream).
    pub fn route_plan(&self, route: Option<usize>) -> Option<&RoutePlan> {
        route.and_then(|at| self.routes.get(at))
    }

    /// The request header rules of a request the route at `route` took (`None`: no route,
    /// or the default upstream): the route's, which include the listener's, or the
    /// listener's.
    pub fn request_rules(&self, route: Option<usize>) -> &crate::http1::HeaderRules {
        self.route_plan(route)
            .map_or(&self.request_headers, |r| &r.request_headers)
    }

    /// The response header rules, as [`ListenerPlan::request_rules`].
    pub fn response_rules(&self, route: Option<usize>) -> &crate::http1::HeaderRules {
        self.route_plan(route)
            .map_or(&self.response_headers, |r| &r.response_headers)
    }

    /// Whether a request the route at `route` took (`None`: the default upstream) may switch
    /// protocols: the route's switch, which defaults to the listener's.
    pub fn upgrades(&self, route: Option<usize>) -> bool {
        self.route_plan(route).map_or(self.upgrade, |r| r.upgrade)
    }

    /// The scheme its requests came with, for `X-Forwarded-Proto` and `Forwarded`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }
}

/// What a route adds to its listener.
#[derive(Debug, Clone, Default)]
pub struct RoutePlan {
    /// The listener's request header rules followed by the route's.
    pub request_headers: crate::http1::HeaderRules,
    /// The listener's response header rules followed by the route's.
    pub response_headers: crate::http1::HeaderRules,
    /// The route's own answer, for a route without upstream.
    pub respond: Option<crate::http1::FixedResponse>,
    /// Its requests may switch protocols (WebSocket): the route's `upgrade`, else the
    /// listener's.
    pub upgrade: bool,
}

/// The redirect of a plain-HTTP listener to HTTPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpsRedirect {
    /// The port the redirects name (`None`: the default, 443).
    pub port: Option<u16>,
}

impl HttpsRedirect {
    /// The path prefix of ACME HTTP-01 challenges (RFC 8555 §8.3), which is never redirected:
    /// a certificate authority asks for it over plain HTTP.
    pub const ACME_CHALLENGE: &'static [u8] = b"/.well-known/acme-challenge/";

    /// Whether a request for `path` (its origin-form target) is redirected.
    pub fn applies(&self, path: &[u8]) -> bool {
        !path.starts_with(Self::ACME_CHALLENGE)
    }
}

/// What the proxy serves.
pub struct Plan {
    /// Listeners.
    pub listeners: Vec<ListenerPlan>,
    /// Every backend of every upstream, with the published health.
    pub table: Arc<Table>,
    /// The upstreams; each worker builds its own view
    /// ([`Group`](crate::upstream::group::Group)).
    pub upstreams: Vec<Arc<UpstreamSpec>>,
    /// HTTP framing limits.
    pub limits: Limits,
    /// Connection timeouts.
    pub timeouts: Timeouts,
    /// Idle backend connections.
    pub pool: PoolSettings,
    /// `X-Request-Id`.
    pub request_ids: RequestIds,
}

impl Plan {
    /// The listener with runtime id `id`; `None` once a reload removed it.
    pub fn listener(&self, id: usize) -> Option<&ListenerPlan> {
        self.listeners.iter().find(|l| l.id == id)
    }

    /// Where the listener with runtime id `id` is in [`Plan::listeners`].
    pub fn listener_position(&self, id: usize) -> Option<usize> {
        self.listeners.iter().position(|l| l.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_is_swept_twice_per_idle_timeout_within_bounds() {
        let period = |secs: f64| {
            PoolSettings {
                max_idle: 1,
                idle_timeout: Duration::from_secs_f64(secs),
            }
            .sweep_period()
        };
        assert_eq!(period(4.0), Duration::from_secs(2));
        assert_eq!(period(0.01), MIN_SWEEP_PERIOD);
        assert_eq!(period(3600.0), MAX_SWEEP_PERIOD);
    }
}
