//! Startup and shutdown: from a validated config to running workers, and back.
//!
//! Owns what `main` hands off: logging setup, turning a [`Config`] into the immutable
//! [`Plan`] the workers run (TLS configurations with one ticketer shared by every listener and
//! worker, the backend table), the startup log line, and signals (SIGTERM/SIGINT: stop
//! accepting, drain, exit 0; a second signal exits at once).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::sync::atomic::Ordering;

use crate::config::{CertificateConfig, Config, ConfigError, ListenerConfig, TlsOptions};
use crate::http1::Limits;
use crate::proxy::Timeouts;
use crate::runtime::{self, ListenerPlan, Plan, RingConfig, Server, StartError};
use crate::tls::{self, TlsError};

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
            backends: quick.backends,
            ..ListenerConfig::default()
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
    let mut backends: Vec<SocketAddr> = Vec::new();
    let mut listeners = Vec::with_capacity(config.listeners.len());
    for (index, listener) in config.listeners.iter().enumerate() {
        let tls = listener.server_config(index, Some(ticketer.clone()))?;
        listeners.push(ListenerPlan {
            addr: listener.address,
            backlog: listener.backlog,
            tls,
            backends: listener
                .backends
                .iter()
                .map(|addr| backend_index(&mut backends, *addr))
                .collect(),
        });
    }
    serve(plan_from(&config, listeners, backends), |_| {})
}

/// `ringway demo`: a self-signed certificate, two demo backends, one listener.
pub fn demo(listen: SocketAddr, workers: Option<usize>) -> Result<(), AppError> {
    init_logging("info");
    let backends = crate::demo::start_backends(2).map_err(AppError::Demo)?;
    let cert = tls::self_signed(&["localhost", "127.0.0.1", "::1"])?;
    let key = tls::certified_key_from_der(cert.chain, cert.key)?;
    let config = Config {
        workers,
        ..Config::default()
    };
    let tls = tls::server_config(vec![key], &TlsOptions::default(), Some(tls::ticketer()?))?;
    let listeners = vec![ListenerPlan {
        addr: listen,
        backlog: 4096,
        tls,
        backends: (0..backends.len()).collect(),
    }];
    let plan = plan_from(&config, listeners, backends);
    serve(plan, |bound| {
        for addr in bound {
            println!("ringway demo: https://{addr}/ (self-signed certificate, two demo backends)");
            println!("try:  curl -k https://localhost:{}/", addr.port());
        }
    })
}

fn backend_index(table: &mut Vec<SocketAddr>, addr: SocketAddr) -> usize {
    match table.iter().position(|a| *a == addr) {
        Some(i) => i,
        None => {
            table.push(addr);
            table.len() - 1
        }
    }
}

fn plan_from(config: &Config, listeners: Vec<ListenerPlan>, backends: Vec<SocketAddr>) -> Plan {
    let t = &config.timeouts;
    let l = &config.limits;
    Plan {
        workers: config
            .workers
            .unwrap_or_else(|| runtime::available_cores().len())
            .max(1),
        listeners,
        backends,
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
        ring: RingConfig::default(),
    }
}

/// Raises the open-files limit as far as allowed; when it stays below what the connection cap
/// needs, lowers the cap to what fits (as HAProxy derives maxconn from `ulimit -n`) and says so.
fn check_limits(plan: &mut Plan) {
    use crate::runtime::rlimits;
    let workers = plan.workers as u64;
    let connections = workers.saturating_mul(plan.max_connections as u64);
    let pooled = workers
        .saturating_mul(plan.backends.len() as u64)
        .saturating_mul(plan.pool_max_idle as u64);
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

fn serve(mut plan: Plan, on_started: impl FnOnce(&[SocketAddr])) -> Result<(), AppError> {
    check_limits(&mut plan);
    let workers = plan.workers;
    let backends = plan.backends.clone();
    let server = Server::start(plan)?;
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
    let backends: Vec<String> = backends.iter().map(ToString::to_string).collect();
    tracing::info!(
        listeners = %listening.join(","),
        workers,
        backends = %backends.join(","),
        "ringway started"
    );
    on_started(&server.bound);
    server.wait();
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
