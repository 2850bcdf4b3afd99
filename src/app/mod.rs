//! Startup and shutdown: from a validated config to running workers, and back.
//!
//! Owns what `main` hands off: logging setup, turning a [`Config`] into the immutable
//! [`Plan`](crate::proxy::Plan) the workers run ([`plan`]), resolving backend names at
//! startup and watching them (the `ringway-dns` thread; a changed answer is applied like a
//! reload), the health-check thread, the startup log line, reloads ([`reload`]), binary
//! upgrades ([`upgrade`]), and signals (SIGHUP: reload; SIGTERM/SIGINT: stop accepting, drain,
//! exit 0; a second one exits at once).

mod notify;
mod observe;
mod plan;
pub mod reload;
pub mod upgrade;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, mpsc};

use crate::access_log;
use crate::config::{
    BackendConfig, CertificateConfig, CheckKind, Config, ConfigError, HashKey, HealthCheckConfig,
    ListenerConfig, Policy, TlsOptions, UnresolvedName, UpstreamConfig,
};
use crate::discovery::DiscoveryError;
use crate::metrics::WorkerMetrics;
use crate::proxy::generation::Published;
use crate::proxy::{self, ListenerPlan};
use crate::route::Router;
use crate::runtime::{self, Listen, Server, StartError};
use crate::tls::{self, TlsError};
use crate::upstream::checker::Checker;
use crate::upstream::registry::Registry;
use reload::{Event, Listeners, Names, Running, Source};

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
    /// A backend name could not be resolved at startup, or its watcher could not start.
    #[error(transparent)]
    Dns(#[from] DiscoveryError),
    /// A backend name was compiled without its addresses.
    #[error(transparent)]
    Unresolved(#[from] UnresolvedName),
    /// A binary upgrade could not start.
    #[error(transparent)]
    Upgrade(#[from] upgrade::UpgradeError),
    /// The admin listener could not start.
    #[error(transparent)]
    Admin(#[from] crate::admin::AdminError),
    /// The access log could not be opened.
    #[error("access_log: {0}")]
    AccessLog(#[from] crate::access_log::OpenError),
}

/// Binary upgrades (`--upgrade-socket`, `--upgrade`).
#[derive(Debug, Clone)]
pub struct Upgrade {
    /// The Unix socket successors connect to.
    pub socket: PathBuf,
    /// Take the listeners over from the ringway serving `socket`.
    pub take_over: bool,
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

/// `ringway check`: validates a config file, certificates and keys included. Backend names are
/// not resolved: a configuration checks on a machine without the DNS it will run with.
pub fn check(path: &Path) -> Result<(), AppError> {
    let config = Config::load(path)?;
    config.check()?;
    println!("{}: ok", path.display());
    Ok(())
}

/// `ringway run --config FILE`: SIGHUP re-reads the file; with `upgrade`, binary upgrades
/// hand the listeners over.
pub fn run_config_file(
    path: &Path,
    workers: Option<usize>,
    upgrade: Option<Upgrade>,
) -> Result<(), AppError> {
    let mut config = Config::load(path)?;
    if workers.is_some() {
        config.workers = workers;
    }
    init_logging(&config.log.level);
    config.validate()?;
    let source = Source {
        path: path.to_path_buf(),
        workers,
    };
    start(&config, Some(source), upgrade, no_extra_listener, |_| {})
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
                .map(|(cert, key)| CertificateConfig {
                    cert,
                    key,
                    ocsp: None,
                })
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

/// Runs a validated configuration until SIGTERM/SIGINT (without a file, SIGHUP has nothing
/// to reload).
pub fn run(config: Config) -> Result<(), AppError> {
    init_logging(&config.log.level);
    config.validate()?;
    start(&config, None, None, no_extra_listener, |_| {})
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
        // The admin listener and its status page, on loopback.
        admin: Some(crate::config::AdminConfig {
            address: demo_admin_address(),
            token: None,
        }),
        ..Config::default()
    };
    // The demo's listener is not in the configuration: its certificate exists only in memory.
    let add_listener = |compiled: &mut Compiled, listeners: &mut Listeners, ticketer: &Ticketer| {
        let id = listeners.id(listen, DEMO_BACKLOG);
        let tls = tls::server_config(vec![key], &TlsOptions::default(), Some(ticketer.clone()))?;
        compiled.settings.listeners.push(Listen {
            id,
            addr: listen,
            backlog: DEMO_BACKLOG,
        });
        compiled.plan.listeners.push(ListenerPlan {
            id,
            address: listen,
            log: proxy::access::LogRule::Off,
            upgrade: true,
            request_headers: Default::default(),
            response_headers: Default::default(),
            tls: Some(tls),
            client_auth: None,
            router: Router::new(Vec::new(), Some(0)),
            proxy_protocol: None,
            routes: Vec::new(),
            redirect: None,
        });
        Ok(())
    };
    let workers = plan::workers(&config);
    start(&config, None, None, add_listener, |bound| {
        for addr in bound {
            println!(
                "ringway demo: https://{addr}/ ({workers} worker(s), self-signed certificate, \
                 two demo backends)"
            );
            println!("try:  curl -k https://{}/", hint_address(*addr));
        }
    })
}

/// Where the demo's admin listener goes: 127.0.0.1:9900, or a free port when that one is taken
/// (a demo should start anyway).
fn demo_admin_address() -> SocketAddr {
    let preferred = SocketAddr::from(([127, 0, 0, 1], DEMO_ADMIN_PORT));
    match std::net::TcpListener::bind(preferred) {
        Ok(_) => preferred,
        Err(_) => SocketAddr::from(([127, 0, 0, 1], 0)),
    }
}

/// The demo's admin port, when free.
const DEMO_ADMIN_PORT: u16 = 9900;

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

/// The session ticketer every listener of every plan shares.
type Ticketer = Arc<dyn rustls::server::ProducesTickets>;

/// For [`start`]: every listener is in the configuration.
fn no_extra_listener(_: &mut Compiled, _: &mut Listeners, _: &Ticketer) -> Result<(), AppError> {
    Ok(())
}

/// Compiles `config` (plus what `extra` adds to it), starts the workers and the health
/// checks, and serves until SIGTERM/SIGINT; SIGHUP reloads `source`.
fn start(
    config: &Config,
    source: Option<Source>,
    upgrade: Option<Upgrade>,
    extra: impl FnOnce(&mut Compiled, &mut Listeners, &Ticketer) -> Result<(), AppError>,
    on_started: impl FnOnce(&[SocketAddr]),
) -> Result<(), AppError> {
    runtime::memory::keep_heap_off_huge_pages();
    // A successor takes the listening sockets first: nothing is bound beside them.
    let mut taken = match &upgrade {
        Some(u) if u.take_over => Some(upgrade::take_over(&u.socket)?),
        Some(u) if upgrade::is_served(&u.socket) => {
            return Err(upgrade::UpgradeError::Held(u.socket.clone()).into());
        }
        _ => None,
    };
    // A first process takes the upgrade socket before it starts: a path it cannot use is a
    // startup error. A successor takes it once the old process let go (below).
    let mut upgrade_socket = match &upgrade {
        Some(u) if !u.take_over => Some(upgrade::UpgradeSocket::bind(&u.socket)?),
        _ => None,
    };
    let (events, requests) = mpsc::channel();
    let names = Names::resolve(config, &events)?;
    let mut registry = Registry::new(plan::workers(config));
    let mut listeners = Listeners::default();
    // One in-memory ticketer for the process: it survives reloads.
    let in_memory = tls::ticketer()?;
    let ticketer = plan::ticketer(config, &in_memory)?;
    let mut compiled = compile(
        config,
        &names.addresses,
        &mut registry,
        plan::TlsSource::Load(&ticketer),
        &mut |addr| listeners.id(addr, ListenerConfig::DEFAULT_BACKLOG),
    )?;
    // The backlogs as configured, for a reload to compare with.
    for l in &config.listeners {
        listeners.id(l.address, l.backlog);
    }
    extra(&mut compiled, &mut listeners, &ticketer)?;
    let settings = compiled.settings.clone();
    check_limits(&mut compiled);
    let Compiled {
        settings: limited,
        plan,
        checks,
        ..
    } = compiled;
    let workers = limited.workers;
    let table = plan.table.clone();
    let mut inherited = runtime::Inherited::new();
    if let Some(taken) = &mut taken {
        for l in &limited.listeners {
            if let Some(sockets) = taken.listeners.remove(&l.addr) {
                inherited.insert(l.id, sockets);
            }
        }
        for addr in taken.listeners.keys() {
            tracing::info!(
                listener = %addr,
                "binary upgrade: the old process's listener is not in this configuration: closed"
            );
        }
    }
    let published = Published::new(Arc::new(plan));
    let for_workers = published.clone();
    // What each worker counts of its clients, read by the admin thread.
    let worker_metrics: Arc<[Arc<WorkerMetrics>]> = (0..workers)
        .map(|_| Arc::new(WorkerMetrics::default()))
        .collect();
    let counting = worker_metrics.clone();
    // The access log's writer thread, when the log is on; each worker formats its own lines.
    let access_log = if config.access_log.enabled {
        let target = match &config.access_log.path {
            Some(path) => access_log::Target::File(path.clone()),
            None => access_log::Target::Stdout,
        };
        Some(access_log::AccessLog::open(
            target,
            config.access_log.buffer,
        )?)
    } else {
        None
    };
    let writer = access_log
        .as_ref()
        .map(|(log, _)| (log.writer(), config.access_log.format));
    let log_handle = access_log.as_ref().map(|(_, handle)| handle.clone());
    let server = Server::start(limited, inherited, move |worker| {
        let metrics = counting.get(worker.index).cloned().unwrap_or_default();
        let lines = writer
            .as_ref()
            .map(|(writer, format)| access_log::LineBuffer::new(writer.clone(), *format));
        proxy::Context::new(for_workers.clone(), worker, metrics, lines)
    })?;
    let succeeded = taken.is_some();
    if let Some(taken) = taken {
        // Serving: the old process may stop.
        if let Err(e) = taken.ready() {
            tracing::warn!("binary upgrade: the old process did not acknowledge: {e}");
        }
        // Serving already: a failure here must not stop this process.
        if let Some(u) = &upgrade {
            match upgrade::UpgradeSocket::bind(&u.socket) {
                Ok(socket) => upgrade_socket = Some(socket),
                Err(e) => tracing::error!("binary upgrades are off until a restart: {e}"),
            }
        }
    }
    if let Some(socket) = upgrade_socket {
        let control = server.control();
        let stop = move || {
            notify::stopping();
            control.shutdown();
        };
        if let Err(e) = socket.serve(server.control(), stop) {
            tracing::error!("binary upgrades are off until a restart: {e}");
        }
    }
    // One health thread checks every backend once per interval, for all workers.
    let checker = Arc::new(Mutex::new(None));
    *checker.lock().unwrap_or_else(PoisonError::into_inner) =
        Checker::spawn(table.board_arc(), checks).map_err(AppError::Health)?;
    let control = server.control();
    let reloads: Arc<reload::ReloadCounts> = Arc::default();
    // The admin listener, on threads of its own: it reads the workers' counters.
    let admin = match &config.admin {
        Some(settings) => {
            let dropped = log_handle.clone();
            let sources = observe::Sources {
                version: version(),
                started: std::time::SystemTime::now(),
                published: published.clone(),
                workers: worker_metrics.clone(),
                reloads: reloads.clone(),
                control: control.clone(),
                log_dropped: Arc::new(move || dropped.as_ref().map_or(0, |h| h.dropped())),
            };
            let admin = crate::admin::spawn(
                crate::admin::AdminSettings {
                    address: settings.address,
                    token: settings.token.clone(),
                },
                Arc::new(move || sources.snapshot()),
            )?;
            tracing::info!(
                "admin listener on http://{}/ (metrics: /metrics, status page: /)",
                admin.address()
            );
            Some(admin)
        }
        None => None,
    };
    let mut running = Running {
        source,
        control: control.clone(),
        published,
        registry,
        ticketer: in_memory,
        listeners,
        checker: checker.clone(),
        settings,
        certificates: reload::read_certificates(config),
        upstreams: config.upstreams.iter().map(|u| u.name.clone()).collect(),
        counts: reloads.clone(),
        config: config.clone(),
        names,
        events: events.clone(),
    };
    // The control thread: reloads and changed DNS answers, one at a time.
    std::thread::Builder::new()
        .name("ringway-control".into())
        .spawn(move || {
            for request in requests {
                match request {
                    Event::Reload => {
                        notify::reloading();
                        running.reload_and_log();
                        notify::ready();
                    }
                    Event::Addresses { name, addrs } => running.follow_dns(name, addrs),
                }
            }
        })
        .map_err(AppError::Signals)?;
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGUSR2,
        signal_hook::consts::SIGUSR1,
    ])
    .map_err(AppError::Signals)?;
    // The binary a successor runs: the path this one was started from, read now (once the
    // file is replaced, /proc/self/exe names the old, deleted one).
    let exe = std::env::current_exe().ok();
    std::thread::Builder::new()
        .name("ringway-signals".into())
        .spawn(move || {
            let mut stopping = false;
            for signal in signals.forever() {
                if signal == signal_hook::consts::SIGUSR1 {
                    // logrotate: the log file was moved; write to a new one at the path.
                    match &log_handle {
                        Some(handle) => {
                            handle.reopen();
                            tracing::info!("access log reopened (SIGUSR1)");
                        }
                        None => tracing::info!("SIGUSR1: no access log file to reopen"),
                    }
                    continue;
                }
                if signal == signal_hook::consts::SIGUSR2 {
                    match (&upgrade, &exe) {
                        _ if stopping => {
                            tracing::warn!("binary upgrade asked while stopping: ignored")
                        }
                        (Some(_), Some(exe)) => upgrade::start_successor(exe),
                        (None, _) => tracing::warn!(
                            "binary upgrade asked (SIGUSR2), but ringway runs without \
                             --upgrade-socket: ignored"
                        ),
                        (_, None) => tracing::error!(
                            "binary upgrade asked (SIGUSR2), but the path of the binary is unknown"
                        ),
                    }
                    continue;
                }
                if signal == signal_hook::consts::SIGHUP {
                    if stopping {
                        tracing::warn!("reload asked while stopping: ignored");
                    } else {
                        let _ = events.send(Event::Reload);
                    }
                    continue;
                }
                if stopping {
                    tracing::warn!(signal, "second signal: exiting now");
                    std::process::exit(1);
                }
                stopping = true;
                tracing::info!(
                    signal,
                    "stopping: no new connections, draining in-flight requests"
                );
                notify::stopping();
                control.shutdown();
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
    if succeeded {
        notify::ready_as_main();
    } else {
        notify::ready();
    }
    notify::status(&format!("serving {}", listening.join(", ")));
    server.wait();
    if let Some(checker) = checker
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
    {
        checker.stop();
    }
    drop(admin);
    if let Some((log, _)) = access_log {
        // After the workers: every line they flushed is written.
        log.close();
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

/// The version line `ringway --version` prints after the name: the package version and the
/// commit it was built from.
pub fn version() -> String {
    concat!(env!("CARGO_PKG_VERSION"), " (", env!("RINGWAY_COMMIT"), ")").to_string()
}
