//! Backends by name: resolving DNS names of backends at startup ([`resolve_once`]) and
//! watching them afterwards ([`Discovery`], the `ringway-dns` thread), re-resolving each name
//! when its TTL expires and reporting a changed set of addresses to a callback.
//!
//! This module owns the DNS side only: it knows nothing of upstreams, the plan or reloading.
//! Whoever applies a new set (the reload machinery) gets `(name, addresses)` from the
//! callback; [`crate::config`] lists the names to watch and turns sets of addresses into
//! backends.
//!
//! The resolver is hickory-resolver on a current-thread tokio runtime that runs on the
//! resolver's own thread (a temporary one for [`resolve_once`], on the caller's thread), never
//! on a worker: the request path never waits on DNS. It reads `/etc/resolv.conf` (and
//! `/etc/hosts`) unless [`ResolverSettings::nameservers`] names the servers to ask.
//!
//! Invariants:
//! - A set of addresses is the A and AAAA answers with the name's port, sorted (IPv4 first),
//!   without duplicates, never empty.
//! - A name is looked up again when the smallest TTL of its answer has passed, clamped to
//!   `[min_ttl, max_ttl]`; after a failed lookup, after `min_ttl`, doubling with each further
//!   failure up to `max_ttl`.
//! - A failed lookup (timeout, server failure, NXDOMAIN, no address) keeps the last good set;
//!   when only one family (A or AAAA) fails, that family keeps its last good addresses and the
//!   other family's answer is used. The callback runs only when the set differs from the last
//!   one reported (or given at startup).
//! - A failure episode logs one warning naming the host and the error (further failures are
//!   debug), and one info line when the name resolves again.
//! - One lookup (A and AAAA in parallel) takes at most [`ResolverSettings::timeout`].
//! - [`Discovery::stop`] (or dropping it) ends the thread at once, an in-flight lookup
//!   abandoned; it returns when the thread has ended.
#![forbid(unsafe_code)]

mod lookup;
mod name;
mod watch;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use hickory_resolver::ResolveError;
use tokio::sync::oneshot;

pub use self::name::{Name, NameError};
use self::watch::{Log, Watch, list};

/// Default of [`ResolverSettings::min_ttl`].
pub const DEFAULT_MIN_TTL: Duration = Duration::from_secs(1);
/// Default of [`ResolverSettings::max_ttl`].
pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(300);
/// Default of [`ResolverSettings::timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// How names are resolved. The configuration's type too (`[resolver]`), validated there:
/// `0 < min_ttl <= max_ttl`, `timeout > 0`, name server ports not 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolverSettings {
    /// The DNS servers to ask (UDP, TCP for truncated answers), in order. Empty (the
    /// default): the system's configuration, `/etc/resolv.conf` (with its search domains)
    /// and `/etc/hosts`.
    pub nameservers: Vec<SocketAddr>,
    /// The shortest time between two lookups of a name, whatever its TTL (also the first
    /// retry after a failure). Default 1 s.
    pub min_ttl: Duration,
    /// The longest time between two lookups of a name, whatever its TTL (also the longest
    /// wait between retries). Default 300 s.
    pub max_ttl: Duration,
    /// The longest one lookup of a name (A and AAAA in parallel) may take; the query is sent
    /// again once after half of it. Default 2 s.
    pub timeout: Duration,
}

impl Default for ResolverSettings {
    fn default() -> Self {
        Self {
            nameservers: Vec::new(),
            min_ttl: DEFAULT_MIN_TTL,
            max_ttl: DEFAULT_MAX_TTL,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// A name and the addresses it resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub name: Name,
    /// The A and AAAA answers with the name's port: sorted (IPv4 first), no duplicates, not
    /// empty.
    pub addrs: Vec<SocketAddr>,
    /// When to look again: the smallest TTL of the answer clamped to
    /// `[min_ttl, max_ttl]` (`min_ttl` when one family failed and the other answered).
    pub ttl: Duration,
}

/// The addresses of each name, as [`crate::config`] takes them to make backends.
pub type Addresses = HashMap<Name, Vec<SocketAddr>>;

/// The addresses of each name of `resolved`.
pub fn addresses(resolved: &[Resolved]) -> Addresses {
    resolved
        .iter()
        .map(|r| (r.name.clone(), r.addrs.clone()))
        .collect()
}

/// Why a name has no addresses, or the resolver could not start. `Display` is one line
/// naming the host.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DiscoveryError {
    /// The DNS answered that the name has no A or AAAA record, or does not exist.
    #[error(
        "no address for {host}: {}",
        if *.nxdomain { "the name does not exist (NXDOMAIN)" } else { "no A or AAAA record" }
    )]
    NoAddress {
        host: String,
        /// The answer was NXDOMAIN (for both families).
        nxdomain: bool,
    },
    /// The lookup failed: server failure, refused, network error.
    #[error("cannot resolve {host}: {source}")]
    Lookup { host: String, source: ResolveError },
    /// No answer within [`ResolverSettings::timeout`].
    #[error("cannot resolve {host}: no answer within {after:?}")]
    Timeout { host: String, after: Duration },
    /// The system's resolver configuration (`/etc/resolv.conf`) could not be read.
    #[error("cannot read the system's DNS configuration (/etc/resolv.conf): {source}")]
    SystemConfig { source: ResolveError },
    /// The resolver's runtime or thread could not start.
    #[error("cannot start the resolver: {0}")]
    Start(String),
}

/// Resolves `names` once, all at once, blocking the calling thread (on a temporary runtime)
/// for at most [`ResolverSettings::timeout`]: for startup. The result is in the order of
/// `names`; a name without any address (NXDOMAIN, no record, no answer) is an error naming
/// it (the first such name of `names`). A name whose A or AAAA lookup failed while the other
/// answered resolves to what was found, with a warning.
pub fn resolve_once(
    settings: &ResolverSettings,
    names: &[Name],
) -> Result<Vec<Resolved>, DiscoveryError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let (config, options) = lookup::configuration(settings)?;
    let runtime = runtime()?;
    let resolver = {
        let _entered = runtime.enter();
        lookup::resolver(config, options)
    };
    let answers = runtime.block_on(futures_util::future::join_all(
        names
            .iter()
            .map(|name| lookup::lookup(&resolver, name, settings.timeout)),
    ));
    let mut resolved = Vec::with_capacity(names.len());
    for (name, answer) in names.iter().zip(answers) {
        let (found, partial) = watch::first_answer(name, answer, settings)?;
        if let Some(error) = partial {
            tracing::warn!(
                name = %name,
                "{error}; using the addresses found: {}",
                list(&found.addrs)
            );
        }
        resolved.push(found);
    }
    Ok(resolved)
}

/// What [`Discovery`] calls when the set of a name changes: the name and its new set (sorted,
/// not empty). It runs on the resolver's thread: hand the set over, do not block.
pub type OnChange = Box<dyn FnMut(&Name, &[SocketAddr]) + Send>;

/// The `ringway-dns` thread, watching names: see the module doc. Stopped by
/// [`Discovery::stop`] or by dropping it.
pub struct Discovery {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Discovery {
    /// Starts watching the names of `initial`, each from its set and TTL (as
    /// [`resolve_once`] gave them): each name is looked up again when its TTL has passed, and
    /// `on_change` is called when its set changes. Fails when the system's DNS configuration
    /// cannot be read or the thread cannot start.
    pub fn spawn(
        settings: ResolverSettings,
        initial: Vec<Resolved>,
        on_change: OnChange,
    ) -> Result<Discovery, DiscoveryError> {
        let (config, options) = lookup::configuration(&settings)?;
        let runtime = runtime()?;
        let (stop, stopped) = oneshot::channel();
        let thread = thread::Builder::new()
            .name("ringway-dns".into())
            .spawn(move || {
                let resolver = {
                    let _entered = runtime.enter();
                    lookup::resolver(config, options)
                };
                let now = Instant::now();
                let watches = initial.into_iter().map(|r| Watch::new(r, now)).collect();
                runtime.block_on(watch_names(resolver, settings, watches, on_change, stopped));
            })
            .map_err(|e| {
                DiscoveryError::Start(format!("cannot start the ringway-dns thread: {e}"))
            })?;
        Ok(Discovery {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Stops the thread, abandoning a lookup in flight, and waits for it to end.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Discovery {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the ringway-dns thread panicked");
        }
    }
}

/// A current-thread tokio runtime with I/O and timers, for the resolver alone.
fn runtime() -> Result<tokio::runtime::Runtime, DiscoveryError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| DiscoveryError::Start(format!("cannot build the resolver's runtime: {e}")))
}

/// The thread's loop: sleeps until the earliest name is due, looks up every due name at once,
/// applies the answers; ends as soon as `stopped` fires (or its sender is gone).
async fn watch_names(
    resolver: hickory_resolver::TokioResolver,
    settings: ResolverSettings,
    mut watches: Vec<Watch>,
    mut on_change: OnChange,
    mut stopped: oneshot::Receiver<()>,
) {
    loop {
        let next = watches.iter().map(|w| w.due).min();
        let sleep = async {
            match next {
                Some(due) => tokio::time::sleep_until(due.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = &mut stopped => return,
            () = sleep => {}
        }
        let now = Instant::now();
        let due: Vec<usize> = (0..watches.len())
            .filter(|&i| watches[i].due <= now)
            .collect();
        let lookups = futures_util::future::join_all(
            due.iter()
                .map(|&i| lookup::lookup(&resolver, &watches[i].name, settings.timeout)),
        );
        let answers = tokio::select! {
            _ = &mut stopped => return,
            answers = lookups => answers,
        };
        let now = Instant::now();
        for (i, answer) in due.into_iter().zip(answers) {
            let watch = &mut watches[i];
            let step = watch.apply(now, answer, &settings);
            let name = &watch.name;
            match step.log {
                Log::Quiet => {}
                Log::Failing(error) => tracing::warn!(
                    name = %name,
                    "{error}; keeping the addresses {}; retrying in {:?}",
                    list(&watch.addrs),
                    watch.due.saturating_duration_since(now)
                ),
                Log::StillFailing(error) => tracing::debug!(name = %name, "{error}"),
                Log::Recovered { failures } => tracing::info!(
                    name = %name,
                    "{} resolves again, after {failures} failed lookup(s)",
                    name.host
                ),
            }
            if step.changed {
                tracing::info!(name = %name, "{name} now resolves to {}", list(&watch.addrs));
                on_change(name, &watch.addrs);
            }
        }
    }
}
