//! Changing a running ringway: what the control thread keeps between reloads, and a reload.
//!
//! Owns [`Running`]: the configuration file a reload re-reads, the handle on the workers
//! ([`Control`]), where plans are published ([`Published`]), the backend [`Registry`], the
//! session ticketer every plan shares, the open listeners by address, the health thread and
//! the reload counts. A reload (SIGHUP) re-reads the file and every certificate and key,
//! validates and compiles the next plan completely, binds the listeners it adds, and only
//! then applies it: publishes the plan (every request that starts afterwards uses it), hands
//! the new listeners to the workers and closes the removed ones, and restarts the health
//! checks over the new backends. It logs one line with what changed. A changed DNS answer for
//! a backend name (from the `ringway-dns` thread) is applied the same way, to the
//! configuration in force.
//!
//! Invariants: every step that can fail comes before the first one that changes what is
//! served, so a failed reload changes nothing (its bound listeners are closed, the registry
//! untouched); listeners are known by their configured address (an address kept by a reload
//! keeps its listener, its sockets and their queues); settings the workers were started with
//! (worker count, ring, connection cap, pacing, drain, a listener's backlog) change only at a
//! restart, and a reload that changes them says so.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::Instant;

use rustls::server::ProducesTickets;

use crate::config::{Addresses, Config};
use crate::discovery::{self, Discovery, Name};
use crate::proxy::generation::Published;
use crate::runtime::{Bound, Control, Listen, Settings, StartError};
use crate::upstream::checker::{CheckTarget, Checker};
use crate::upstream::group::Table;
use crate::upstream::registry::Registry;

use super::AppError;
use super::plan::{Compiled, TlsSource, compile};

/// Reloads by result, for the metrics.
#[derive(Debug, Default)]
pub struct ReloadCounts {
    /// Reloads applied.
    pub succeeded: AtomicU64,
    /// Reloads refused (the previous configuration kept serving).
    pub failed: AtomicU64,
}

/// Where a reload reads its configuration.
#[derive(Debug, Clone)]
pub struct Source {
    /// The configuration file.
    pub path: PathBuf,
    /// `--workers`, which overrides the file's `workers`.
    pub workers: Option<usize>,
}

/// One open listener.
#[derive(Debug, Clone, Copy)]
struct Open {
    id: usize,
    backlog: u32,
}

/// The open listeners by configured address, and the next free id.
#[derive(Debug, Clone, Default)]
pub struct Listeners {
    open: HashMap<SocketAddr, Open>,
    next: usize,
}

impl Listeners {
    /// The id of the listener on `addr`, a new one when none is open there.
    pub fn id(&mut self, addr: SocketAddr, backlog: u32) -> usize {
        if let Some(open) = self.open.get(&addr) {
            return open.id;
        }
        let id = self.next;
        self.next += 1;
        self.open.insert(addr, Open { id, backlog });
        id
    }
}

/// The health thread, shared with the main thread that stops it at exit.
pub type SharedChecker = Arc<Mutex<Option<Checker>>>;

/// What the control thread is asked to do.
#[derive(Debug)]
pub enum Event {
    /// SIGHUP: re-read the configuration file.
    Reload,
    /// A backend name resolves to other addresses now.
    Addresses {
        /// The name.
        name: Name,
        /// Its addresses.
        addrs: Vec<SocketAddr>,
    },
}

/// The backend names of the plan in force, and the thread that watches them.
pub struct Names {
    /// The addresses every name of the configuration in force resolved to.
    pub addresses: Addresses,
    /// Re-resolves them at their TTL; `None` when no backend is given by name.
    pub watcher: Option<Discovery>,
}

impl Names {
    /// Resolves the names of `config` (blocking, at most `resolver.timeout`; a name without an
    /// address is an error) and starts watching them; each change becomes an
    /// [`Event::Addresses`] on `events`.
    pub fn resolve(config: &Config, events: &mpsc::Sender<Event>) -> Result<Names, AppError> {
        let names = config.names();
        if names.is_empty() {
            return Ok(Names {
                addresses: Addresses::new(),
                watcher: None,
            });
        }
        let resolved = discovery::resolve_once(&config.resolver, &names)?;
        for r in &resolved {
            let addrs: Vec<String> = r.addrs.iter().map(ToString::to_string).collect();
            tracing::info!(name = %r.name, ttl = ?r.ttl, "{} resolves to {}", r.name, addrs.join(", "));
        }
        let addresses = discovery::addresses(&resolved);
        let events = events.clone();
        let watcher = Discovery::spawn(
            config.resolver.clone(),
            resolved,
            Box::new(move |name, addrs| {
                let _ = events.send(Event::Addresses {
                    name: name.clone(),
                    addrs: addrs.to_vec(),
                });
            }),
        )?;
        Ok(Names {
            addresses,
            watcher: Some(watcher),
        })
    }
}

/// Everything a reload needs.
pub struct Running {
    /// `None`: started without a configuration file (quick start, demo): nothing to reload.
    pub source: Option<Source>,
    /// The workers: listeners to add and close.
    pub control: Control,
    /// Where plans go to the workers.
    pub published: Arc<Published>,
    /// What the next plan keeps of each backend.
    pub registry: Registry,
    /// The process's in-memory ticketer (used when the file sets no `ticket_keys`).
    pub ticketer: Arc<dyn ProducesTickets>,
    /// The open listeners by address.
    pub listeners: Listeners,
    /// The health thread of the plan in force.
    pub checker: SharedChecker,
    /// What the workers were started with, as compiled (before the open-files limit lowered
    /// the connection cap).
    pub settings: Settings,
    /// The certificate and key files of the current plan, with their contents.
    pub certificates: HashMap<PathBuf, Vec<u8>>,
    /// The names of the current plan's upstreams.
    pub upstreams: Vec<String>,
    /// Reloads by result (the admin listener reads them).
    pub counts: Arc<ReloadCounts>,
    /// The configuration in force.
    pub config: Config,
    /// Its backend names.
    pub names: Names,
    /// Where the name watcher sends changes.
    pub events: mpsc::Sender<Event>,
}

/// What a reload changed, for its log line.
#[derive(Debug, Default)]
pub struct Changes {
    listeners_added: Vec<SocketAddr>,
    listeners_removed: Vec<SocketAddr>,
    upstreams_added: Vec<String>,
    upstreams_removed: Vec<String>,
    backends_added: Vec<String>,
    backends_removed: Vec<String>,
    certificates_changed: Vec<PathBuf>,
    /// The DNS name whose answer changed, with its addresses.
    addresses: Option<(Name, Vec<SocketAddr>)>,
    /// The ticket key file, re-read.
    ticket_keys: Option<PathBuf>,
    /// Settings that take effect only at a restart.
    not_applied: Vec<String>,
}

impl fmt::Display for Changes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn list<T: fmt::Display>(items: &[T]) -> String {
            items
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        }
        let paths: Vec<String> = self
            .certificates_changed
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let dns = self
            .addresses
            .as_ref()
            .map(|(name, addrs)| format!("{name} now resolves to {}", list(addrs)));
        let parts = [
            ("listeners added", list(&self.listeners_added)),
            ("listeners removed", list(&self.listeners_removed)),
            ("upstreams added", list(&self.upstreams_added)),
            ("upstreams removed", list(&self.upstreams_removed)),
            ("backends added", list(&self.backends_added)),
            ("backends removed", list(&self.backends_removed)),
            ("certificate files changed", list(&paths)),
        ];
        let said: Vec<String> = dns
            .into_iter()
            .chain(
                parts
                    .into_iter()
                    .filter(|(_, items)| !items.is_empty())
                    .map(|(what, items)| format!("{what}: {items}")),
            )
            .collect();
        if said.is_empty() {
            write!(f, "no listener, upstream, backend or certificate changed")?;
        } else {
            write!(f, "{}", said.join("; "))?;
        }
        match &self.ticket_keys {
            Some(path) => write!(f, "; ticket keys re-read from {}", path.display()),
            None => Ok(()),
        }
    }
}

impl Running {
    /// Applies a changed DNS answer for `name` to the configuration in force, and logs the
    /// outcome, one line. (Compiling cannot fail on what a reload already accepted, but if it
    /// does, the previous plan keeps serving.)
    pub fn follow_dns(&mut self, name: Name, addrs: Vec<SocketAddr>) {
        let mut addresses = self.names.addresses.clone();
        addresses.insert(name.clone(), addrs.clone());
        let config = self.config.clone();
        match self.apply(&config, &addresses, false) {
            Ok(mut changes) => {
                self.names.addresses = addresses;
                changes.addresses = Some((name, addrs));
                tracing::info!("backend addresses changed: {changes}");
            }
            Err(e) => tracing::error!(
                %name,
                "the new addresses of {name} cannot be applied, still serving the previous \
                 ones: {e}"
            ),
        }
    }

    /// Reloads and logs the outcome, one line.
    pub fn reload_and_log(&mut self) {
        let Some(source) = self.source.clone() else {
            tracing::warn!(
                "reload asked (SIGHUP), but ringway was started without a configuration file: \
                 nothing to reload"
            );
            return;
        };
        match self.reload(&source) {
            Ok(changes) => {
                let n = self.counts.succeeded.fetch_add(1, Ordering::Relaxed) + 1;
                for setting in &changes.not_applied {
                    tracing::warn!(
                        "reload: {setting} changed; it takes effect at the next restart"
                    );
                }
                tracing::info!(
                    reloads = n,
                    config = %source.path.display(),
                    "configuration reloaded: {changes}"
                );
            }
            Err(e) => {
                self.counts.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    config = %source.path.display(),
                    "reload failed, still serving the previous configuration: {e}"
                );
            }
        }
    }

    /// Re-reads `source`, resolves its backend names, compiles it and applies it; an error
    /// changes nothing.
    pub fn reload(&mut self, source: &Source) -> Result<Changes, AppError> {
        let mut config = Config::load(&source.path)?;
        if source.workers.is_some() {
            config.workers = source.workers;
        }
        config.validate()?;
        // The same names with the same resolver: the watcher goes on. Otherwise the names are
        // resolved afresh (a name without an address fails the reload) and watched anew.
        let renamed =
            config.names() != self.config.names() || config.resolver != self.config.resolver;
        let names = if renamed {
            Some(Names::resolve(&config, &self.events)?)
        } else {
            None
        };
        let addresses = names
            .as_ref()
            .map_or(&self.names.addresses, |n| &n.addresses)
            .clone();
        let changes = self.apply(&config, &addresses, true)?;
        if let Some(names) = names {
            // Dropping the previous watcher stops it.
            self.names = names;
        }
        self.config = config;
        Ok(changes)
    }

    /// Compiles `config` with `addresses` for its backend names and applies it; an error
    /// changes nothing. With `read_files`, certificates, keys and ticket keys are read again;
    /// without (only backend addresses changed), the TLS configurations in force are kept.
    fn apply(
        &mut self,
        config: &Config,
        addresses: &Addresses,
        read_files: bool,
    ) -> Result<Changes, AppError> {
        let in_force = self.published.current().1;
        let ticketer = if read_files {
            Some(super::plan::ticketer(config, &self.ticketer)?)
        } else {
            None
        };
        let tls = match &ticketer {
            Some(ticketer) => TlsSource::Load(ticketer),
            None => TlsSource::Keep(&in_force),
        };
        let ticket_keys = config.ticket_keys.clone();

        // Listeners to add are bound first: an address that cannot be bound fails the reload
        // before anything changed (the ones bound so far close when `added` drops).
        let mut listeners = self.listeners.clone();
        let mut added: Vec<Bound> = Vec::new();
        for l in &config.listeners {
            if !self.listeners.open.contains_key(&l.address) {
                let id = listeners.id(l.address, l.backlog);
                let bound = self
                    .control
                    .bind(Listen {
                        id,
                        addr: l.address,
                        backlog: l.backlog,
                    })
                    .map_err(StartError::Listen)?;
                added.push(bound);
            }
        }
        let certificates = if read_files {
            read_certificates(config)
        } else {
            self.certificates.clone()
        };
        // The last fallible step; it updates the registry only when it succeeds.
        let compiled = compile(config, addresses, &mut self.registry, tls, &mut |addr| {
            listeners.id(addr, 0)
        })?;

        // From here on, nothing fails: apply.
        let Compiled {
            settings,
            plan,
            checks,
            diff,
        } = compiled;
        let configured: HashSet<SocketAddr> = config.listeners.iter().map(|l| l.address).collect();
        let mut removed: Vec<(SocketAddr, usize)> = listeners
            .open
            .iter()
            .filter(|(addr, _)| !configured.contains(addr))
            .map(|(addr, open)| (*addr, open.id))
            .collect();
        removed.sort();
        let table = plan.table.clone();
        let upstreams: Vec<String> = plan.upstreams.iter().map(|u| u.name.clone()).collect();
        self.published.publish(Arc::new(plan));
        let mut changes = Changes::default();
        for bound in added {
            changes.listeners_added.push(bound.addr);
            self.control.accept(bound);
        }
        for (addr, id) in &removed {
            self.control.close(*id);
            listeners.open.remove(addr);
            changes.listeners_removed.push(*addr);
        }
        restart_checks(&self.checker, &table, checks);

        changes.not_applied = not_applied(&self.settings, &settings, &self.listeners, config);
        if self.config.access_log != config.access_log {
            changes.not_applied.push("[access_log]".to_string());
        }
        if self.config.admin != config.admin {
            changes.not_applied.push("[admin]".to_string());
        }
        let (old, new): (BTreeSet<&String>, BTreeSet<&String>) =
            (self.upstreams.iter().collect(), upstreams.iter().collect());
        changes.upstreams_added = new.difference(&old).map(|s| (*s).clone()).collect();
        changes.upstreams_removed = old.difference(&new).map(|s| (*s).clone()).collect();
        changes.backends_added = diff.added.iter().map(ToString::to_string).collect();
        changes.backends_removed = diff.removed.iter().map(ToString::to_string).collect();
        let mut changed: Vec<PathBuf> = certificates
            .iter()
            .filter(|(path, bytes)| self.certificates.get(*path) != Some(*bytes))
            .map(|(path, _)| path.clone())
            .collect();
        changed.sort();
        changes.certificates_changed = changed;

        self.listeners = listeners;
        self.upstreams = upstreams;
        self.certificates = certificates;
        changes.ticket_keys = ticket_keys.filter(|_| read_files);
        Ok(changes)
    }
}

/// The certificate, key and OCSP files `config` names, and its client CA and CRL files, with
/// their contents (a file that cannot be read is left out: compiling reports it).
pub fn read_certificates(config: &Config) -> HashMap<PathBuf, Vec<u8>> {
    let mut files = HashMap::new();
    for listener in &config.listeners {
        let certificates = listener
            .certificates
            .iter()
            .flat_map(|c| [Some(&c.cert), Some(&c.key), c.ocsp.as_ref()]);
        let client_auth = listener
            .client_auth
            .iter()
            .flat_map(|auth| [Some(&auth.ca), auth.crl.as_ref()]);
        for path in certificates.chain(client_auth).flatten() {
            if let Ok(bytes) = std::fs::read(path) {
                files.insert(path.clone(), bytes);
            }
        }
    }
    files
}

/// Replaces the health thread with one that checks `checks` over `table`'s board. Between the
/// two, no health thread runs: the backends no check covers any more are marked up (nothing
/// else would bring back one that checks took down).
pub fn restart_checks(checker: &SharedChecker, table: &Table, checks: Vec<CheckTarget>) {
    let mut slot = checker.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(previous) = slot.take() {
        previous.stop();
    }
    let checked: HashSet<usize> = checks.iter().map(|c| c.board_index).collect();
    let now = Instant::now();
    for i in (0..table.len()).filter(|i| !checked.contains(i)) {
        table.board().set_up(i, true, now);
    }
    match Checker::spawn(table.board_arc(), checks) {
        Ok(next) => *slot = next,
        Err(e) => tracing::error!("reload: the health checks could not restart: {e}"),
    }
}

/// The settings that differ between `before` and `after` but apply only at a restart.
fn not_applied(
    before: &Settings,
    after: &Settings,
    listeners: &Listeners,
    config: &Config,
) -> Vec<String> {
    let mut changed = Vec::new();
    if before.workers != after.workers {
        changed.push(format!("workers ({} → {})", before.workers, after.workers));
    }
    if before.max_connections != after.max_connections {
        changed.push("limits.connections_per_worker".to_string());
    }
    if before.ring != after.ring {
        changed.push("ring_buffers".to_string());
    }
    if before.pacing != after.pacing {
        changed.push("batch_wait".to_string());
    }
    if before.drain != after.drain {
        changed.push("timeouts.drain".to_string());
    }
    for l in &config.listeners {
        if let Some(open) = listeners.open.get(&l.address)
            && open.backlog != l.backlog
        {
            changed.push(format!("the backlog of the listener on {}", l.address));
        }
    }
    changed
}
