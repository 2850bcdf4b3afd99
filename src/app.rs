//! Startup and shutdown: from a validated config to running workers, and back.
//!
//! Owns what `main` hands off: logging setup, turning a [`Config`] into the immutable
//! [`Plan`] the workers run (TLS configurations with one ticketer shared by every listener and
//! worker, routers, the backend table and upstreams), the health-check thread, the startup log
//! line, and signals (SIGTERM/SIGINT: stop accepting, drain, exit 0; a second signal exits at
//! once).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::config::{
    BackendConfig, CertificateConfig, CheckKind, Config, ConfigError, HashKey, HealthCheckConfig,
    ListenerConfig, Policy, TlsOptions, UpstreamConfig,
};
use crate::http1::Limits;
use crate::proxy::Timeouts;
use crate::route::Router;
use crate::runtime::event_loop::Pacing;
use crate::runtime::{self, ListenerPlan, Plan, RingConfig, Server, StartError};
use crate::tls::{self, TlsError};
use crate::upstream::board::HealthBoard;
use crate::upstream::checker::{CheckTarget, Checker};
use crate::upstream::group::{BackendSpec, KeySource, Table, UpstreamSpec};
use crate::upstream::health::OutlierPolicy;

/// Why ringway could not run.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// TLS could not be set up.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The server could not start.
    #[error(transparent)]
    Start(#[from] StartError),
    /// Quick-start flags that do not fit together.
    #[error("{0}")]
    Usage(String),
    /// Signal handling could not be set up.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    /// A demo backend could not start.
    #[error("cannot start the demo backends: {0}")]
    Demo(std::io::Error),
    /// The health-check thread could not start.
    #[error("cannot start the health checks: {0}")]
    Health(std::io::Error),
}

/// Quick-start flags: one listener without a config file.
pub struct QuickStart {
    /// Listen address.
    pub listen: Option<SocketAddr>,
    /// Certificate chains (PEM).
    pub certs: Vec<PathBuf>,
    /// Keys (PEM), one per certificate.
    pub keys: Vec<PathBuf>,
    /// Backends.
    pub backends: Vec<SocketAddr>,
    /// Worker count.
    pub workers: Option<usize>,
    /// The balancing policy (default round robin).
    pub policy: Option<Policy>,
    /// An HTTP health check of this path on every backend (default: none).
    pub health_path: Option<String>,
}

/// `ringway check`: validates a config file, certificates and keys included.
pub fn check(path: &Path) -> Result<(), AppError> {
    let config = Config::load(path)?;
    config.check()?;
    println!("{}: ok", path.display());
    Ok(())
}

/// `ringway run --config FILE`.
pub fn run_config_file(path: &Path, workers: Option<usize>) -> Result<(), AppError> {
    let mut config = Config::load(path)?;
    if workers.is_some() {
        config.workers = workers;
    }
    run(config)
}

/// `ringway run --listen ... --cert ... --key ... --backend ...`.
pub fn run_quick(quick: QuickStart) -> Result<(), AppError> {
    let listen = quick
        .listen
        .ok_or_else(|| AppError::Usage("--listen is required without --config".into()))?;
    if quick.certs.len() != quick.keys.len() {
        return Err(AppError::Usage(format!(
            "{} --cert but {} --key: give one --key per --cert",
            quick.certs.len(),
            quick.keys.len()
        )));
    }
    let config = Config {
        workers: quick.workers,
        listeners: vec![ListenerConfig {
            address: listen,
            certificates: quick
                .certs
                .into_iter()
                .zip(quick.keys)
                .map(|(cert, key)| CertificateConfig { cert, key })
                .collect(),
            default_upstream: Some(0),
            ..ListenerConfig::default()
        }],
        upstreams: vec![UpstreamConfig {
            name: "default".into(),
            policy: quick.policy.unwrap_or_default(),
            hash: (quick.policy == Some(Policy::ConsistentHash)).then_some(HashKey::ClientIp),
            backends: quick.backends.into_iter().map(BackendConfig::new).collect(),
            health_check: quick.health_path.map(|path| HealthCheckConfig {
                kind: CheckKind::Http {
                    method: "GET".into(),
                    path,
                    host: None,
                    expect_status: 200..=399,
                },
                ..HealthCheckConfig::default()
            }),
            ..UpstreamConfig::default()
        }],
        ..Config::default()
    };
    config.validate()?;
    run(config)
}

/// Runs a validated configuration until SIGTERM/SIGINT.
pub fn run(config: Config) -> Result<(), AppError> {
    init_logging(&config.log.level);
    config.validate()?;
    // One ticketer for every listener and worker: a reconnect may land on any core.
    let ticketer = tls::ticketer()?;
    let mut listeners = Vec::with_capacity(config.listeners.len());
    for (index, listener) in config.listeners.iter().enumerate() {
        let tls = listener.server_config(index, Some(ticketer.clone()))?;
        listeners.push(ListenerPlan {
            addr: listener.address,
            backlog: listener.backlog,
            tls,
            router: Arc::new(listener.router()),
        });
    }
    let upstreams = Upstreams::from_config(&config.upstreams);
    serve(plan_from(&config, listeners, &upstreams), upstreams, |_| {})
}

/// `ringway demo`: a self-signed certificate, two demo backends, one listener.
pub fn demo(listen: SocketAddr, workers: Option<usize>) -> Result<(), AppError> {
    init_logging("info");
    let backends = crate::demo::start_backends(2).map_err(AppError::Demo)?;
    let cert = tls::self_signed(&["localhost", "127.0.0.1", "::1"])?;
    let key = tls::certified_key_from_der(cert.chain, cert.key)?;
    let config = Config {
        workers,
        upstreams: vec![UpstreamConfig {
            name: "demo".into(),
            backends: backends.iter().copied().map(BackendConfig::new).collect(),
            ..UpstreamConfig::default()
        }],
        ..Config::default()
    };
    let tls = tls::server_config(vec![key], &TlsOptions::default(), Some(tls::ticketer()?))?;
    let listeners = vec![ListenerPlan {
        addr: listen,
        backlog: 4096,
        tls,
        router: Arc::new(Router::new(Vec::new(), Some(0))),
    }];
    let upstreams = Upstreams::from_config(&config.upstreams);
    let plan = plan_from(&config, listeners, &upstreams);
    serve(plan, upstreams, |bound| {
        for addr in bound {
            println!("ringway demo: https://{addr}/ (self-signed certificate, two demo backends)");
            println!("try:  curl -k https://localhost:{}/", addr.port());
        }
    })
}

/// The upstreams of a configuration as the workers and the health thread need them.
struct Upstreams {
    table: Arc<Table>,
    specs: Vec<Arc<UpstreamSpec>>,
    checks: Vec<CheckTarget>,
}

impl Upstreams {
    fn from_config(upstreams: &[UpstreamConfig]) -> Self {
        let count = upstreams.iter().map(|u| u.backends.len()).sum();
        let board = HealthBoard::new(count);
        let mut backends = Vec::with_capacity(count);
        let mut specs = Vec::with_capacity(upstreams.len());
        let mut checks = Vec::new();
        for up in upstreams {
            let first = backends.len();
            let check = up.health_check.clone().map(Arc::new);
            for b in &up.backends {
                if let Some(spec) = &check {
                    checks.push(CheckTarget {
                        board_index: backends.len(),
                        addr: b.address,
                        pool: up.name.clone(),
                        spec: spec.clone(),
                    });
                }
                backends.push(BackendSpec {
                    addr: b.address,
                    weight: b.weight,
                    max_connections: b.max_connections,
                    backup: b.backup,
                });
            }
            let o = &up.outlier;
            specs.push(Arc::new(UpstreamSpec {
                name: up.name.clone(),
                policy: up.policy,
                key: up.hash.as_ref().map(|h| match h {
                    HashKey::ClientIp => KeySource::ClientIp,
                    HashKey::Header(name) => KeySource::Header(name.as_str().into()),
                    HashKey::Cookie(name) => KeySource::Cookie(name.as_str().into()),
                }),
                slow_start: up.slow_start,
                outlier: OutlierPolicy {
                    consecutive_failures: o.consecutive_failures,
                    consecutive_5xx: o.consecutive_5xx,
                    base: o.base_ejection,
                    max: o.max_ejection,
                    max_ejected_percent: o.max_ejected_percent,
                },
                backends: first..backends.len(),
                down_for: up
                    .health_check
                    .as_ref()
                    .map_or(Duration::from_secs(1), |h| h.interval * h.rise),
            }));
        }
        Self {
            table: Arc::new(Table::new(backends, board)),
            specs,
            checks,
        }
    }
}

fn plan_from(config: &Config, listeners: Vec<ListenerPlan>, upstreams: &Upstreams) -> Plan {
    let t = &config.timeouts;
    let l = &config.limits;
    Plan {
        workers: config
            .workers
            .unwrap_or_else(|| runtime::available_cores().len())
            .max(1),
        listeners,
        table: upstreams.table.clone(),
        upstreams: upstreams.specs.clone(),
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
        },
        drain: t.drain,
        pool_max_idle: config.pool.max_idle_per_backend,
        pool_idle_timeout: config.pool.idle_timeout,
        max_connections: l.connections_per_worker,
        ring: RingConfig::for_load(l.connections_per_worker, config.ring_buffers),
        pacing: Pacing {
            max_gather: config.batch_wait,
            ..Pacing::default()
        },
    }
}

/// Raises the open-files limit as far as allowed; when it stays below what the connection cap
/// needs, lowers the cap to what fits (as HAProxy derives maxconn from `ulimit -n`) and says so.
fn check_limits(plan: &mut Plan) {
    use crate::runtime::rlimits;
    let workers = plan.workers as u64;
    let connections = workers.saturating_mul(plan.max_connections as u64);
    // Idle backend connections are what earlier requests left behind: budget at most one per
    // client connection, whatever the per-backend cap allows.
    let pooled = workers
        .saturating_mul(plan.table.len() as u64)
        .saturating_mul(plan.pool_max_idle as u64)
        .min(connections);
    let listeners = workers.saturating_mul(plan.listeners.len() as u64);
    let needed = rlimits::files_needed(connections, pooled, listeners);
    match rlimits::ensure_open_files(needed) {
        Ok(limit) if limit.after < limit.needed => {
            let spare = limit
                .after
                .saturating_sub(rlimits::files_needed(0, pooled, listeners));
            let fits = usize::try_from(spare / 2 / workers.max(1)).unwrap_or(usize::MAX);
            let configured = plan.max_connections;
            plan.max_connections = fits.clamp(1, configured);
            let message = format!(
                "open files limit {} allows {} client connections per worker \
                 (limits.connections_per_worker = {configured}); raise `ulimit -n` \
                 (systemd: LimitNOFILE={}) to allow more",
                limit.after, plan.max_connections, limit.needed
            );
            if plan.max_connections < 256 {
                tracing::warn!("{message}");
            } else {
                tracing::info!("{message}");
            }
        }
        Ok(limit) if limit.after > limit.before => tracing::debug!(
            "raised the open files limit from {} to {}",
            limit.before,
            limit.after
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!("cannot read or raise the open files limit: {e}"),
    }
    if rlimits::kernel_counts_uring_memlock() {
        let ring_bytes = (plan.ring.buffers as u64 * plan.ring.buffer_len as u64)
            .saturating_add(u64::from(plan.ring.entries) * 64 * 5)
            .saturating_mul(workers);
        match rlimits::memlock_limit() {
            Ok(limit) if limit < ring_bytes => tracing::warn!(
                "locked memory limit is {limit} bytes but the io_uring rings need about \
                 {ring_bytes} on this kernel: raise `ulimit -l` (systemd: LimitMEMLOCK=infinity)"
            ),
            _ => {}
        }
    }
}

fn serve(
    mut plan: Plan,
    upstreams: Upstreams,
    on_started: impl FnOnce(&[SocketAddr]),
) -> Result<(), AppError> {
    runtime::memory::keep_heap_off_huge_pages();
    check_limits(&mut plan);
    let workers = plan.workers;
    let table = plan.table.clone();
    let server = Server::start(plan)?;
    // One health thread checks every backend once per interval, for all workers.
    let checker =
        Checker::spawn(upstreams.table.board_arc(), upstreams.checks).map_err(AppError::Health)?;
    let flag = server.shutdown_flag();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])
    .map_err(AppError::Signals)?;
    std::thread::Builder::new()
        .name("ringway-signals".into())
        .spawn(move || {
            let mut seen = 0;
            for signal in signals.forever() {
                seen += 1;
                if seen > 1 {
                    tracing::warn!(signal, "second signal: exiting now");
                    std::process::exit(1);
                }
                tracing::info!(
                    signal,
                    "stopping: no new connections, draining in-flight requests"
                );
                flag.store(true, Ordering::SeqCst);
            }
        })
        .map_err(AppError::Signals)?;
    let listening: Vec<String> = server.bound.iter().map(ToString::to_string).collect();
    let backends: Vec<String> = (0..table.len())
        .map(|i| table.backend(i).addr.to_string())
        .collect();
    tracing::info!(
        listeners = %listening.join(","),
        workers,
        backends = %backends.join(","),
        "ringway started"
    );
    on_started(&server.bound);
    server.wait();
    if let Some(checker) = checker {
        checker.stop();
    }
    tracing::info!("ringway stopped");
    Ok(())
}

fn init_logging(level: &str) {
    use tracing_subscriber::EnvFilter;
    // rustls warns per handshake about clients it tolerates (an IP address sent as SNI):
    // keep its errors only, unless RUST_LOG asks otherwise.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{level},rustls=error")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
