//! Startup and shutdown: from a validated config to running workers, and back.
//!
//! Owns what `main` hands off: logging setup, turning a [`Config`] into the immutable
//! [`Plan`] the workers run (TLS configurations with one ticketer shared by every listener and
//! worker, routers, the backend table and upstreams), the health-check thread, the startup log
//! line, and signals (SIGTERM/SIGINT: stop accepting, drain, exit 0; a second signal exits at
//! once).

pub mod notify;
mod plan;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::config::{
    BackendConfig, CertificateConfig, CheckKind, Config, ConfigError, HashKey, HealthCheckConfig,
    ListenerConfig, Policy, TlsOptions, UpstreamConfig,
};
use crate::proxy::{self, ListenerPlan};
use crate::route::Router;
use crate::runtime::{self, Listen, Server, StartError};
use crate::tls::{self, TlsError};
use crate::upstream::checker::Checker;

pub use plan::{Compiled, compile};

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
    serve(compile(&config)?, |_| {})
}

/// The accept backlog of the demo's listener.
const DEMO_BACKLOG: u32 = ListenerConfig::DEFAULT_BACKLOG;

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
    // The demo's listener is not in the configuration: its certificate exists only in memory.
    let mut compiled = compile(&config)?;
    let tls = tls::server_config(
        vec![key],
        &TlsOptions::default(),
        Some(compiled.ticketer.clone()),
    )?;
    compiled.settings.listeners.push(Listen {
        addr: listen,
        backlog: DEMO_BACKLOG,
    });
    compiled.plan.listeners.push(ListenerPlan {
        tls,
        router: Router::new(Vec::new(), Some(0)),
    });
    let workers = compiled.settings.workers;
    serve(compiled, |bound| {
        for addr in bound {
            println!(
                "ringway demo: https://{addr}/ ({workers} worker(s), self-signed certificate, \
                 two demo backends)"
            );
            println!("try:  curl -k https://{}/", hint_address(*addr));
        }
    })
}

/// The address to show in the demo's hint: `localhost` (the certificate's name) for a loopback
/// or unspecified address, else the address itself.
fn hint_address(addr: SocketAddr) -> String {
    if addr.ip().is_loopback() || addr.ip().is_unspecified() {
        format!("localhost:{}", addr.port())
    } else {
        addr.to_string()
    }
}

/// Client connections per worker below which a lowered cap is worth a warning, not a note.
const FEW_CONNECTIONS: usize = 256;

/// Locked memory to budget per submission entry of an io_uring ring, on kernels that count it:
/// a generous bound on the 64-byte submission entry, its four 16-byte completion entries (the
/// completion queue is four times larger) and the rings' index arrays, rounded up to pages.
const RING_BYTES_PER_ENTRY: u64 = 64 * 5;

/// Raises the open-files limit as far as allowed; when it stays below what the connection cap
/// needs, lowers the cap to what fits (as HAProxy derives maxconn from `ulimit -n`) and says so.
fn check_limits(compiled: &mut Compiled) {
    use crate::runtime::rlimits;
    let (settings, plan) = (&mut compiled.settings, &compiled.plan);
    let workers = settings.workers as u64;
    let connections = workers.saturating_mul(settings.max_connections as u64);
    // Idle backend connections are what earlier requests left behind: budget at most one per
    // client connection, whatever the per-backend cap allows.
    let pooled = workers
        .saturating_mul(plan.table.len() as u64)
        .saturating_mul(plan.pool.max_idle as u64)
        .min(connections);
    let listeners = workers.saturating_mul(settings.listeners.len() as u64);
    let needed = rlimits::files_needed(connections, pooled, listeners);
    match rlimits::ensure_open_files(needed) {
        Ok(limit) if limit.after < limit.needed => {
            let spare = limit
                .after
                .saturating_sub(rlimits::files_needed(0, pooled, listeners));
            let fits = usize::try_from(spare / 2 / workers.max(1)).unwrap_or(usize::MAX);
            let configured = settings.max_connections;
            settings.max_connections = fits.clamp(1, configured);
            let message = format!(
                "open files limit {} allows {} client connections per worker \
                 (limits.connections_per_worker = {configured}); raise `ulimit -n` \
                 (systemd: LimitNOFILE={}) to allow more",
                limit.after, settings.max_connections, limit.needed
            );
            if settings.max_connections < FEW_CONNECTIONS {
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
        let ring = &settings.ring;
        let ring_bytes = (ring.buffers as u64 * ring.buffer_len as u64)
            .saturating_add(u64::from(ring.entries) * RING_BYTES_PER_ENTRY)
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

fn serve(mut compiled: Compiled, on_started: impl FnOnce(&[SocketAddr])) -> Result<(), AppError> {
    runtime::memory::keep_heap_off_huge_pages();
    check_limits(&mut compiled);
    let Compiled {
        settings,
        plan,
        checks,
        ..
    } = compiled;
    let workers = settings.workers;
    let plan = Arc::new(plan);
    let table = plan.table.clone();
    let server = Server::start(settings, move |worker| {
        proxy::Context::new(plan.clone(), worker)
    })?;
    // One health thread checks every backend once per interval, for all workers.
    let checker = Checker::spawn(table.board_arc(), checks).map_err(AppError::Health)?;
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
        .map(|i| table.backend(i).address.to_string())
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
