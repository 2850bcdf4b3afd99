//! Compiling a validated configuration into what the program runs.
//!
//! Owns the one place where the configuration's model ([`crate::config`], the file's shape)
//! becomes the domain's own types: the runtime's [`Settings`] (workers, listening addresses,
//! ring, pacing, drain), the proxy's immutable [`Plan`] (TLS configurations with one ticketer
//! shared by every listener and worker, routers, the backend table and upstreams, limits,
//! timeouts, pool), and the health checker's targets. Nothing else converts configuration
//! values; where the file's shape already is a domain type (a balancing policy, a health
//! check, TLS options), the configuration holds that type itself.
//!
//! Backends given by name become one backend per address the name resolved to: compiling
//! takes those addresses ([`Addresses`], from [`crate::discovery`]) and never resolves.
//!
//! Invariants: compiling reads certificate files but starts nothing and asks no DNS; every
//! step that can fail comes before the one that changes state (the backend [`Registry`]), so a
//! failure leaves nothing behind and a reload can compile the next plan beside a running one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::server::ProducesTickets;

use crate::config::{Addresses, Config, UpstreamConfig};
use crate::http1::Limits;
use crate::proxy::access::LogRule;
use crate::proxy::{HttpsRedirect, ListenerPlan, Plan, PoolSettings, RoutePlan, Timeouts};
use crate::runtime::event_loop::Pacing;
use crate::runtime::{self, Listen, RingConfig, Settings};
use crate::upstream::checker::CheckTarget;
use crate::upstream::group::{BackendKey, Table, UpstreamSpec};
use crate::upstream::registry::{Listed, Registry, TableDiff};

use super::AppError;

/// The `Retry-After` for a backend marked down when its upstream has no active checks (with
/// checks: interval × rise, the soonest it can come back).
const DOWN_WITHOUT_CHECKS: Duration = Duration::from_secs(1);

/// The session ticketer for `config`'s next plan: the keys of its `ticket_keys` file, read
/// afresh (a reload re-reads the file), or else the in-memory one the process made at startup
/// (`in_memory`), which survives reloads, so a session resumes across them.
pub fn ticketer(
    config: &Config,
    in_memory: &Arc<dyn ProducesTickets>,
) -> Result<Arc<dyn ProducesTickets>, AppError> {
    Ok(match config.load_ticket_keys()? {
        Some(keys) => keys,
        None => in_memory.clone(),
    })
}

/// Where compiling takes each listener's TLS configuration from.
pub enum TlsSource<'a> {
    /// Loads its certificates and keys (startup, reload), with this session ticketer.
    Load(&'a Arc<dyn ProducesTickets>),
    /// The plan in force, by listener id: when only backends change (a DNS answer), nothing is
    /// read from disk.
    Keep(&'a Plan),
}

/// A configuration, compiled.
pub struct Compiled {
    /// How the workers run.
    pub settings: Settings,
    /// What the workers' proxies serve.
    pub plan: Plan,
    /// The backends the health thread checks.
    pub checks: Vec<CheckTarget>,
    /// The backends added and removed since the registry's previous table.
    pub diff: TableDiff,
}

/// Compiles a validated `config`: builds its TLS configurations as `tls` says (loaded with a
/// ticketer every listener and worker shares, since a reconnect may land on any core; or kept
/// from the plan in force), routers, backend table (through `registry`, which keeps what it
/// knew of each backend) and upstreams. `addresses` holds the addresses of every backend name of `config`
/// ([`Config::names`]; empty when there is none). `listener_id` names the listener at each
/// address.
pub fn compile(
    config: &Config,
    addresses: &Addresses,
    registry: &mut Registry,
    tls: TlsSource<'_>,
    listener_id: &mut dyn FnMut(SocketAddr) -> usize,
) -> Result<Compiled, AppError> {
    let mut listeners = Vec::with_capacity(config.listeners.len());
    let mut listening = Vec::with_capacity(config.listeners.len());
    for (index, listener) in config.listeners.iter().enumerate() {
        let id = listener_id(listener.address);
        let (tls, client_auth) = match &tls {
            _ if listener.is_plain() => (None, None),
            TlsSource::Load(ticketer) => {
                let (tls, client_auth) = listener.tls_config(index, Some((*ticketer).clone()))?;
                (Some(tls), client_auth)
            }
            // Only a change of backends keeps the plan's TLS: its listeners are the same.
            TlsSource::Keep(plan) => match plan.listener(id) {
                Some(kept) => (kept.tls.clone(), kept.client_auth),
                None => {
                    return Err(AppError::Usage(format!(
                        "listener[{index}] ({}) is not in the plan in force",
                        listener.address
                    )));
                }
            },
        };
        let log = if !config.access_log.enabled {
            LogRule::Off
        } else {
            let default = listener.access_log.unwrap_or(true);
            if listener.routes.iter().any(|r| r.access_log.is_some()) {
                LogRule::Routes { default }
            } else if default {
                LogRule::On
            } else {
                LogRule::Off
            }
        };
        // Checked by validation; a config built in code that skipped it fails here.
        let headers = |key: &str, rules: &crate::config::HeaderRulesConfig| {
            rules
                .rules()
                .map_err(|e| AppError::Usage(format!("listener[{index}].{key}: {e}")))
        };
        let request_headers = headers("request_headers", &listener.request_headers)?;
        let response_headers = headers("response_headers", &listener.response_headers)?;
        let mut routes = Vec::with_capacity(listener.routes.len());
        for (position, route) in listener.routes.iter().enumerate() {
            let key = |rest: &str| format!("route[{position}].{rest}");
            let respond = match &route.respond {
                Some(respond) => Some(respond.response().map_err(|e| {
                    AppError::Usage(format!("listener[{index}].{}: {e}", key("respond")))
                })?),
                None => None,
            };
            routes.push(RoutePlan {
                request_headers: request_headers
                    .then(&headers(&key("request_headers"), &route.request_headers)?),
                response_headers: response_headers
                    .then(&headers(&key("response_headers"), &route.response_headers)?),
                respond,
                upgrade: route.upgrade.unwrap_or(listener.upgrade),
            });
        }
        listeners.push(ListenerPlan {
            id,
            address: listener.address,
            log,
            upgrade: listener.upgrade,
            request_headers,
            response_headers,
            tls,
            client_auth,
            router: listener.router(),
            proxy_protocol: listener.proxy_protocol.clone(),
            routes,
            redirect: listener.redirect_https.then_some(HttpsRedirect {
                port: listener.redirect_https_port,
            }),
        });
        listening.push(Listen {
            id,
            addr: listener.address,
            backlog: listener.backlog,
        });
    }
    // The last step, and the only one that changes state: nothing can fail after it changed
    // the registry.
    let upstreams = compile_upstreams(&config.upstreams, addresses, registry)?;
    let t = &config.timeouts;
    let l = &config.limits;
    let plan = Plan {
        listeners,
        table: upstreams.table,
        upstreams: upstreams.specs,
        limits: Limits {
            max_request_line: l.request_line,
            max_head: l.head,
            max_headers: l.headers,
            max_body: l.body,
            max_trailer: l.trailer,
        },
        timeouts: Timeouts {
            handshake: t.handshake,
            request_head: t.request_head,
            keepalive: t.keepalive,
            body: t.body,
            connect: t.connect,
            response: t.response,
            per_try: t.per_try,
            tunnel: t.tunnel,
        },
        pool: PoolSettings {
            max_idle: config.pool.max_idle_per_backend,
            idle_timeout: config.pool.idle_timeout,
        },
        request_ids: config.request_id,
    };
    let settings = Settings {
        workers: workers(config),
        listeners: listening,
        drain: t.drain,
        max_connections: l.connections_per_worker,
        ring: RingConfig::for_load(l.connections_per_worker, config.ring_buffers),
        pacing: Pacing {
            max_gather: config.batch_wait,
            ..Pacing::default()
        },
    };
    Ok(Compiled {
        settings,
        plan,
        checks: upstreams.checks,
        diff: upstreams.diff,
    })
}

/// The workers `config` runs: `workers`, or one per core the process may run on.
pub fn workers(config: &Config) -> usize {
    config
        .workers
        .unwrap_or_else(|| runtime::available_cores().len())
        .max(1)
}

/// The upstreams of a configuration as the workers and the health thread need them.
struct Upstreams {
    table: Arc<Table>,
    specs: Vec<Arc<UpstreamSpec>>,
    checks: Vec<CheckTarget>,
    diff: TableDiff,
}

fn compile_upstreams(
    upstreams: &[UpstreamConfig],
    addresses: &Addresses,
    registry: &mut Registry,
) -> Result<Upstreams, AppError> {
    // Fallible: before the registry changes.
    let resolved = upstreams
        .iter()
        .map(|up| up.resolved_backends(addresses))
        .collect::<Result<Vec<_>, _>>()?;
    let count = resolved.iter().map(Vec::len).sum();
    let mut backends: Vec<Listed> = Vec::with_capacity(count);
    let mut specs = Vec::with_capacity(upstreams.len());
    let mut checks = Vec::new();
    for (up, resolved) in upstreams.iter().zip(resolved) {
        let first = backends.len();
        let check = up.health_check.clone().map(Arc::new);
        let name: Arc<str> = Arc::from(up.name.as_str());
        for b in resolved {
            if let Some(spec) = &check {
                checks.push(CheckTarget {
                    board_index: backends.len(),
                    addr: b.address,
                    pool: up.name.clone(),
                    spec: spec.clone(),
                    send_proxy: up.send_proxy_protocol,
                });
            }
            backends.push(Listed {
                key: BackendKey {
                    upstream: name.clone(),
                    address: b.address,
                },
                spec: b,
                checked: check.is_some(),
            });
        }
        specs.push(Arc::new(UpstreamSpec {
            name: up.name.clone(),
            policy: up.policy,
            key: up.hash.clone(),
            slow_start: up.slow_start,
            outlier: up.outlier,
            retries: up.retries,
            hedge_after: up.hedge_after,
            backends: first..backends.len(),
            down_for: up
                .health_check
                .as_ref()
                .map_or(DOWN_WITHOUT_CHECKS, |h| h.interval * h.rise),
            checked: check.is_some(),
            metrics: registry.upstream(&name),
            send_proxy: up.send_proxy_protocol,
        }));
    }
    let (table, diff) = registry.table(backends);
    Ok(Upstreams {
        table: Arc::new(table),
        specs,
        checks,
        diff,
    })
}
