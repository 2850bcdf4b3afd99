//! The registry of backends across plans: what a reload keeps of a backend, by identity.
//!
//! Owns the global per-backend state that must outlive a plan: the published health slot
//! ([`BackendHealth`]), the active-request counter behind `max_connections` and the backend's
//! counters ([`BackendMetrics`]), keyed by [`BackendKey`] (upstream name, address); and each
//! upstream's counters ([`UpstreamMetrics`]), by name. Each plan's [`Table`] is built here: a backend the
//! previous plan held keeps its slot and counter (so its health, and the count of requests
//! still running on the old plan, carry over); a new one gets fresh ones; a backend no longer
//! listed is forgotten (the old table keeps its handles while requests on it finish).
//!
//! Invariants: one registry per process, used by one thread (the one that compiles plans); all
//! boards built here share one epoch; a backend added by a reload to an upstream with active
//! checks starts down (checked before traffic), one present at startup starts up (ringway
//! trusts its configuration). The registry never writes a kept slot: only the health thread
//! does, or the application while no health thread runs (a kept backend whose upstream lost
//! its checks must be marked up then, see `app`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::Instant;

use crate::metrics::{BackendMetrics, UpstreamMetrics};

use super::board::{BackendHealth, HealthBoard};
use super::group::{BackendKey, BackendSpec, Table, TableEntry};

/// One backend of the next plan.
#[derive(Debug, Clone)]
pub struct Listed {
    /// Its identity.
    pub key: BackendKey,
    /// Its configuration.
    pub spec: BackendSpec,
    /// Whether its upstream has active health checks.
    pub checked: bool,
}

/// What building a table changed, by identity.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TableDiff {
    /// Backends the previous table did not hold.
    pub added: Vec<BackendKey>,
    /// Backends the previous table held and this one does not.
    pub removed: Vec<BackendKey>,
}

#[derive(Debug, Clone)]
struct Kept {
    health: Arc<BackendHealth>,
    active: Arc<AtomicU32>,
    metrics: Arc<BackendMetrics>,
}

/// The global state of every backend of the current plan, by identity.
#[derive(Debug)]
pub struct Registry {
    epoch: Instant,
    /// Worker slots in each counter.
    workers: usize,
    backends: HashMap<BackendKey, Kept>,
    /// Each upstream's counters, by name: those of the current plan.
    upstreams: HashMap<Arc<str>, Arc<UpstreamMetrics>>,
    /// Those the plan being compiled asked for (they replace `upstreams` with its table).
    asked: HashMap<Arc<str>, Arc<UpstreamMetrics>>,
    /// A table was built already: backends added from now on are added by a reload.
    built: bool,
}

impl Registry {
    /// An empty registry for `workers` workers.
    pub fn new(workers: usize) -> Self {
        Self {
            epoch: Instant::now(),
            workers,
            backends: HashMap::new(),
            upstreams: HashMap::new(),
            asked: HashMap::new(),
            built: false,
        }
    }

    /// The counters of upstream `name` (kept from the plan in force when it has that upstream)
    /// for the plan being compiled; the next [`Registry::table`] keeps those asked for since the
    /// last one, and only those.
    pub fn upstream(&mut self, name: &Arc<str>) -> Arc<UpstreamMetrics> {
        let metrics = self
            .upstreams
            .get(name)
            .cloned()
            .unwrap_or_else(|| Arc::new(UpstreamMetrics::new(self.workers)));
        self.asked.insert(name.clone(), metrics.clone());
        metrics
    }

    /// The table of the next plan, over `listed` (in table order), and what changed since the
    /// last one. The registry then holds exactly the backends of this table.
    pub fn table(&mut self, listed: Vec<Listed>) -> (Table, TableDiff) {
        let mut next = HashMap::with_capacity(listed.len());
        let mut diff = TableDiff::default();
        let mut entries = Vec::with_capacity(listed.len());
        let mut slots = Vec::with_capacity(listed.len());
        for Listed { key, spec, checked } in listed {
            let kept = match next.get(&key).or_else(|| self.backends.get(&key)) {
                Some(kept) => Kept::clone(kept),
                None => {
                    if self.built {
                        diff.added.push(key.clone());
                    }
                    Kept {
                        health: if checked && self.built {
                            BackendHealth::down()
                        } else {
                            BackendHealth::up()
                        },
                        active: Arc::default(),
                        metrics: Arc::new(BackendMetrics::new(self.workers)),
                    }
                }
            };
            slots.push(kept.health.clone());
            entries.push(TableEntry {
                key: key.clone(),
                spec,
                active: kept.active.clone(),
                metrics: kept.metrics.clone(),
            });
            next.insert(key, kept);
        }
        diff.removed = self
            .backends
            .keys()
            .filter(|key| !next.contains_key(*key))
            .cloned()
            .collect();
        diff.removed
            .sort_by(|a, b| (&a.upstream, a.address).cmp(&(&b.upstream, b.address)));
        self.backends = next;
        self.upstreams = std::mem::take(&mut self.asked);
        self.built = true;
        let board = HealthBoard::over(slots, self.epoch);
        (Table::from_entries(entries, board), diff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn listed(upstream: &str, port: u16, checked: bool) -> Listed {
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        Listed {
            key: BackendKey {
                upstream: Arc::from(upstream),
                address,
            },
            spec: BackendSpec::new(address),
            checked,
        }
    }

    #[test]
    fn a_kept_backend_keeps_its_health_and_counter_and_changes_are_listed() {
        let mut registry = Registry::new(2);
        let (first, diff) = registry.table(vec![listed("a", 1, true), listed("a", 2, true)]);
        assert_eq!(diff, TableDiff::default(), "the first table adds nothing");
        assert!(
            first.board().is_up(0) && first.board().is_up(1),
            "startup trusts the file"
        );
        first.board().set_up(1, false, Instant::now());
        first.board().record_pass(1);

        let (second, diff) = registry.table(vec![listed("a", 2, true), listed("a", 3, true)]);
        assert_eq!(diff.added, vec![listed("a", 3, true).key]);
        assert_eq!(diff.removed, vec![listed("a", 1, true).key]);
        assert!(!second.board().is_up(0), "kept: still down");
        assert_eq!(second.board().passes(0), 1);
        assert!(
            Arc::ptr_eq(first.active_counter(1), second.active_counter(0)),
            "kept: one counter for old and new requests"
        );
        assert!(
            Arc::ptr_eq(first.metrics(1), second.metrics(0)),
            "kept: its counters too"
        );
        assert!(
            !second.board().is_up(1),
            "added to a checked upstream: down until checked"
        );
    }

    #[test]
    fn unchecked_backends_start_up_and_names_tell_upstreams_apart() {
        let mut registry = Registry::new(2);
        let (_first, _) = registry.table(vec![listed("a", 1, true)]);
        let (second, diff) = registry.table(vec![listed("a", 1, false), listed("b", 1, false)]);
        assert!(second.board().is_up(1), "added without checks: up at once");
        assert_eq!(diff.added, vec![listed("b", 1, false).key]);
        assert!(!Arc::ptr_eq(
            second.active_counter(0),
            second.active_counter(1)
        ));
    }
}
