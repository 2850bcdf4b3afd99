//! Upstreams: named pools of backends, as one worker chooses among them.
//!
//! Owns the per-request choice of a backend. It combines what the health thread publishes
//! ([`HealthBoard`], read without locks), this worker's passive ejection state, slow start,
//! per-backend `max_connections` (the one global counter on the request path, touched only when
//! a limit is set), backup tiers and the upstream's balancing policy. Sans-IO: time comes in as
//! `now`; nothing here touches a socket.
//!
//! Invariants:
//! - a backend is never chosen while the health checks say it is down, this worker has ejected
//!   it, it is at its `max_connections`, or it is a backup while a primary is up;
//! - every [`Group::choose`] that returns a backend has taken one lease on it (this worker's
//!   in-flight count and, when limited, the global active count); the caller gives it back with
//!   exactly one [`Group::end`];
//! - policy state, in-flight counts and ejections are per worker; health and active counts are
//!   global.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::balance::{self, Balancer, Candidate, PolicyKind};
use crate::metrics::{self, BackendCounters, BackendMetrics, UpstreamMetrics};

use super::board::HealthBoard;
use super::budget::{RetryBudget, RetryBudgetPolicy};
use super::health::{
    Ejection, FULL_WEIGHT_PER_MILLE, Failure, FailureKind, OutlierPolicy, max_ejected,
    slow_start_ramp,
};

/// The weight every backend has under a policy that ignores configured weights.
const UNWEIGHTED: u32 = 100;

/// The shortest `Retry-After` a 503 for an unavailable upstream carries: the header counts in
/// whole seconds, and a client told 0 would come back at once.
pub const MIN_RETRY_AFTER: Duration = Duration::from_secs(1);

/// One backend of an upstream (configured as `config::BackendConfig`: an entry of
/// `backends = [...]`, every other field at its default, or an `[[upstream.backend]]` table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendSpec {
    /// Where it listens: `ip:port`, port not 0.
    pub address: SocketAddr,
    /// Relative share under weighted policies, `1..=`[`BackendSpec::MAX_WEIGHT`], default 1.
    /// Used by every policy but round robin.
    pub weight: u32,
    /// Requests in flight to this backend, all workers together; at the limit it is skipped.
    /// 0 = unlimited (default).
    pub max_connections: u32,
    /// Used only when no primary (non-backup) backend of the upstream is usable. Default
    /// false.
    pub backup: bool,
}

impl BackendSpec {
    /// The largest weight.
    pub const MAX_WEIGHT: u32 = 1000;

    /// A backend at `address` with weight 1, no connection limit, not a backup.
    pub fn new(address: SocketAddr) -> Self {
        Self {
            address,
            weight: 1,
            max_connections: 0,
            backup: false,
        }
    }
}

impl From<SocketAddr> for BackendSpec {
    fn from(address: SocketAddr) -> Self {
        Self::new(address)
    }
}

/// A backend's identity across plans: its upstream's name and its address. What a reload keeps
/// (health, ejection, requests in flight, pooled connections) it keeps by this key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BackendKey {
    /// The upstream's name.
    pub upstream: Arc<str>,
    /// The backend's address.
    pub address: SocketAddr,
}

impl std::fmt::Display for BackendKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.upstream, self.address)
    }
}

/// One backend of a [`Table`] being built: who it is, how it is configured, and its shared
/// active-request counter (kept across plans with the backend).
#[derive(Debug)]
pub struct TableEntry {
    /// Its identity.
    pub key: BackendKey,
    /// Its configuration.
    pub spec: BackendSpec,
    /// Requests active on it across all workers (counted only when it has a limit).
    pub active: Arc<AtomicU32>,
    /// Its counters, a slot per worker.
    pub metrics: Arc<BackendMetrics>,
}

/// Every backend of every upstream, shared by all workers: the configuration, the published
/// health, and the active-request counters behind `max_connections`.
#[derive(Debug)]
pub struct Table {
    backends: Box<[BackendSpec]>,
    keys: Box<[BackendKey]>,
    board: Arc<HealthBoard>,
    active: Box<[Arc<AtomicU32>]>,
    metrics: Box<[Arc<BackendMetrics>]>,
    /// Where each key is (the first entry with that key).
    index: HashMap<BackendKey, usize>,
}

impl Table {
    /// A table over `backends`, whose health `board` publishes (same indexes), each with
    /// fresh counters and the key (upstream "", address).
    pub fn new(backends: Vec<BackendSpec>, board: Arc<HealthBoard>) -> Self {
        let entries = backends
            .into_iter()
            .map(|spec| TableEntry {
                key: BackendKey {
                    upstream: Arc::from(""),
                    address: spec.address,
                },
                spec,
                active: Arc::default(),
                metrics: Arc::new(BackendMetrics::new(1)),
            })
            .collect();
        Self::from_entries(entries, board)
    }

    /// A table over `entries`, whose health `board` publishes (same indexes).
    pub fn from_entries(entries: Vec<TableEntry>, board: Arc<HealthBoard>) -> Self {
        let mut index = HashMap::with_capacity(entries.len());
        let (mut backends, mut keys, mut active) = (Vec::new(), Vec::new(), Vec::new());
        let mut metrics = Vec::new();
        for (i, entry) in entries.into_iter().enumerate() {
            index.entry(entry.key.clone()).or_insert(i);
            backends.push(entry.spec);
            keys.push(entry.key);
            active.push(entry.active);
            metrics.push(entry.metrics);
        }
        Self {
            backends: backends.into_boxed_slice(),
            keys: keys.into_boxed_slice(),
            board,
            active: active.into_boxed_slice(),
            metrics: metrics.into_boxed_slice(),
            index,
        }
    }

    /// Backend `i`.
    pub fn backend(&self, i: usize) -> &BackendSpec {
        &self.backends[i]
    }

    /// Backend `i`'s identity.
    pub fn key(&self, i: usize) -> &BackendKey {
        &self.keys[i]
    }

    /// Where the backend with `key` is in this table.
    pub fn index_of(&self, key: &BackendKey) -> Option<usize> {
        self.index.get(key).copied()
    }

    /// Backend `i`'s counters.
    pub fn metrics(&self, i: usize) -> &Arc<BackendMetrics> {
        &self.metrics[i]
    }

    /// Backend `i`'s active-request counter, to share with the next table.
    pub fn active_counter(&self, i: usize) -> &Arc<AtomicU32> {
        &self.active[i]
    }

    /// How many backends there are.
    pub fn len(&self) -> usize {
        self.backends.len()
    }

    /// True when there is no backend.
    pub fn is_empty(&self) -> bool {
        self.backends.is_empty()
    }

    /// The published health.
    pub fn board(&self) -> &HealthBoard {
        &self.board
    }

    /// The published health, shared (for the health thread that writes it).
    pub fn board_arc(&self) -> Arc<HealthBoard> {
        self.board.clone()
    }

    /// Takes one active slot of backend `i`; false when it is at its `max_connections`.
    fn try_acquire(&self, i: usize) -> bool {
        let max = self.backends[i].max_connections;
        max == 0
            || self.active[i]
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < max).then_some(n + 1)
                })
                .is_ok()
    }

    fn is_full(&self, i: usize) -> bool {
        let max = self.backends[i].max_connections;
        max != 0 && self.active[i].load(Ordering::Acquire) >= max
    }

    fn release(&self, i: usize) {
        if self.backends[i].max_connections != 0 {
            self.active[i].fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Requests active on backend `i` across all workers (counted only when it has a limit).
    pub fn active(&self, i: usize) -> u32 {
        self.active[i].load(Ordering::Acquire)
    }
}

/// Where the consistent-hashing key of a request comes from (configured as
/// `config::HashKey`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum KeySource {
    /// The client's IP address (not the port).
    #[default]
    ClientIp,
    /// The value of this request header; the name is stored lowercase.
    Header(String),
    /// The value of this cookie; the name is case-sensitive, kept as written.
    Cookie(String),
}

/// One upstream as configured.
#[derive(Debug, Clone)]
pub struct UpstreamSpec {
    /// Its name, for logs.
    pub name: String,
    /// The balancing policy.
    pub policy: PolicyKind,
    /// The hashing key (consistent hashing only).
    pub key: Option<KeySource>,
    /// How long a returning backend takes to reach its full share; zero = at once.
    pub slow_start: Duration,
    /// Passive ejection.
    pub outlier: OutlierPolicy,
    /// How much retrying it allows, per worker.
    pub retries: RetryBudgetPolicy,
    /// When a replayable request without an answer gets a second, parallel attempt; `None`:
    /// never.
    pub hedge_after: Option<Duration>,
    /// Its backends: indexes into the [`Table`].
    pub backends: Range<usize>,
    /// How long a backend marked down by active checks takes to come back at the soonest
    /// (interval × rise), for `Retry-After`.
    pub down_for: Duration,
    /// Whether its backends have active health checks.
    pub checked: bool,
    /// Its counters, a slot per worker.
    pub metrics: Arc<UpstreamMetrics>,
    /// Each new backend connection starts with a PROXY header in this version carrying the
    /// client's address; such a connection serves one client connection only (never pooled).
    pub send_proxy: Option<crate::proxy_protocol::Version>,
}

/// The outcome of [`Group::choose`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// This backend (a table index); its lease is taken.
    Backend(usize),
    /// No backend can take the request now; one may again after about this long.
    Unavailable {
        /// For `Retry-After`.
        retry_after: Duration,
    },
}

/// What a request to a backend came to, for passive ejection and latency-aware policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A final response head with this status, after this long.
    Response {
        /// The status code.
        status: u16,
        /// From the request sent to the response head.
        latency: Duration,
    },
    /// Connect failure or timeout, reset, close before the head, response timeout.
    Failed,
    /// No byte of an answer within the per-try timeout (see [`FailureKind::Unresponsive`]).
    Unresponsive,
}

/// One worker's state of one backend: shared by the groups of successive plans that hold the
/// backend, so a reload keeps it (a request on the old plan ends its lease on the same count).
#[derive(Debug)]
struct Slot {
    in_flight: u32,
    ejection: Ejection,
    /// A "not ejected" warning was logged since the backend last succeeded or was ejected:
    /// one line per episode, not one per failure.
    spared: bool,
}

impl Slot {
    fn new(outlier: OutlierPolicy) -> Rc<RefCell<Slot>> {
        Rc::new(RefCell::new(Slot {
            in_flight: 0,
            ejection: Ejection::new(outlier),
            spared: false,
        }))
    }
}

/// One worker's per-backend state (requests in flight, passive ejection), kept across plans
/// by backend identity ([`BackendKey`]).
#[derive(Debug, Default)]
pub struct WorkerBackends {
    slots: HashMap<BackendKey, Rc<RefCell<Slot>>>,
}

impl WorkerBackends {
    /// The state of the backend `key` for an upstream whose outlier policy is `outlier`: the
    /// one kept from an earlier plan, or a fresh one. A changed policy starts a fresh ejection
    /// (the requests in flight are kept).
    fn slot(&mut self, key: &BackendKey, outlier: OutlierPolicy) -> Rc<RefCell<Slot>> {
        let slot = self
            .slots
            .entry(key.clone())
            .or_insert_with(|| Slot::new(outlier));
        {
            let mut s = slot.borrow_mut();
            if s.ejection.policy() != outlier {
                s.ejection = Ejection::new(outlier);
                s.spared = false;
            }
        }
        slot.clone()
    }

    /// Forgets the backends `table` does not hold (a reload removed them; requests still on
    /// the old plan keep their own handle until they end).
    pub fn retain(&mut self, table: &Table) {
        self.slots.retain(|key, _| table.index_of(key).is_some());
    }
}

/// One upstream as one worker sees it.
pub struct Group {
    spec: Arc<UpstreamSpec>,
    table: Arc<Table>,
    policy: Box<dyn Balancer>,
    /// This worker's state of each backend, in the upstream's order.
    slots: Vec<Rc<RefCell<Slot>>>,
    /// Reused for every pick: no allocation per request.
    candidates: RefCell<Vec<Candidate>>,
    /// This worker's retry budget for the upstream.
    budget: RetryBudget,
    /// The worker's index: its slot in the counters.
    worker: usize,
}

impl Group {
    /// This worker's view of `spec`, with fresh per-backend state; `seed` seeds the policy's
    /// random source.
    #[cfg(test)]
    pub fn new(spec: Arc<UpstreamSpec>, table: Arc<Table>, seed: u64) -> Self {
        Self::keeping(spec, table, 0, seed, &mut WorkerBackends::default())
    }

    /// This worker's view of `spec`, with the per-backend state `kept` holds for backends it
    /// already knew (adding the others to it); `seed` seeds the policy's random source.
    pub fn keeping(
        spec: Arc<UpstreamSpec>,
        table: Arc<Table>,
        worker: usize,
        seed: u64,
        kept: &mut WorkerBackends,
    ) -> Self {
        let range = spec.backends.clone();
        let ids: Vec<String> = range
            .clone()
            .map(|i| table.backend(i).address.to_string())
            .collect();
        let weights: Vec<u32> = range.clone().map(|i| table.backend(i).weight).collect();
        let policy = balance::build(spec.policy, &ids, &weights, seed);
        let slots = range
            .clone()
            .map(|i| kept.slot(table.key(i), spec.outlier))
            .collect();
        Self {
            candidates: RefCell::new(vec![Candidate::default(); range.len()]),
            budget: RetryBudget::new(spec.retries),
            spec,
            table,
            policy,
            slots,
            worker,
        }
    }

    /// This worker's counters of table backend `i`.
    #[inline]
    pub fn counters(&self, i: usize) -> &BackendCounters {
        self.table.metrics(i).worker(self.worker)
    }

    /// This worker's counters of the upstream.
    #[inline]
    pub fn upstream_counters(&self) -> &metrics::UpstreamCounters {
        self.spec.metrics.worker(self.worker)
    }

    /// This worker's retry budget for the upstream: each request adds to it, each retry
    /// spends from it.
    pub fn retry_budget(&self) -> &RetryBudget {
        &self.budget
    }

    /// The upstream's configuration.
    pub fn spec(&self) -> &UpstreamSpec {
        &self.spec
    }

    /// Whether the policy learns from response latencies: only then must a request's
    /// duration be measured (two exact clock reads).
    pub fn wants_latency(&self) -> bool {
        self.policy.wants_latency()
    }

    /// Chooses a backend for a request with hashing `key`, avoiding `exclude` (a backend that
    /// already failed this request) unless it is the only one left. Takes the lease.
    pub fn choose(&self, key: u64, exclude: Option<usize>, now: Instant) -> Choice {
        if let Some(i) = self.choose_in(key, exclude, now) {
            return Choice::Backend(i);
        }
        if exclude.is_some()
            && let Some(i) = self.choose_in(key, None, now)
        {
            return Choice::Backend(i);
        }
        Choice::Unavailable {
            retry_after: self.retry_after(now),
        }
    }

    fn choose_in(&self, key: u64, exclude: Option<usize>, now: Instant) -> Option<usize> {
        let first = self.spec.backends.start;
        let board = self.table.board();
        // Backups serve only while no primary is up (full or excluded primaries still count
        // as up: they are busy, not gone).
        let mut primary_up = false;
        for (j, slot) in self.slots.iter().enumerate() {
            let i = first + j;
            if !self.table.backend(i).backup
                && board.is_up(i)
                && !slot.borrow_mut().ejection.is_ejected(now, board.passes(i))
            {
                primary_up = true;
                break;
            }
        }
        let mut cands = self.candidates.borrow_mut();
        let weighted = self.spec.policy.uses_weights();
        let mut any = false;
        for (j, slot) in self.slots.iter().enumerate() {
            let mut slot = slot.borrow_mut();
            let i = first + j;
            let spec = self.table.backend(i);
            let usable = spec.backup != primary_up
                && board.is_up(i)
                && !slot.ejection.is_ejected(now, board.passes(i))
                && Some(i) != exclude
                && !self.table.is_full(i);
            let weight = if usable {
                let base = if weighted { spec.weight } else { UNWEIGHTED };
                let ramp = if self.spec.slow_start.is_zero() {
                    FULL_WEIGHT_PER_MILLE
                } else {
                    let since = latest(board.up_since(i), slot.ejection.returned_at());
                    slow_start_ramp(since, now, self.spec.slow_start)
                };
                (base * ramp / FULL_WEIGHT_PER_MILLE).max(1)
            } else {
                0
            };
            any |= weight > 0;
            cands[j] = Candidate {
                weight,
                in_flight: slot.in_flight,
            };
        }
        if !any {
            return None;
        }
        // A backend may fill up between the check above and the acquire (another worker):
        // then it is skipped and the policy asked again.
        for _ in 0..cands.len() {
            let j = self.policy.pick(&cands, key, now)?;
            let i = first + j;
            if self.table.try_acquire(i) {
                let mut slot = self.slots[j].borrow_mut();
                slot.in_flight += 1;
                self.counters(i).in_flight.set(u64::from(slot.in_flight));
                return Some(i);
            }
            cands[j].weight = 0;
        }
        None
    }

    /// How long until a backend of this upstream may take requests again, at least
    /// [`MIN_RETRY_AFTER`].
    fn retry_after(&self, now: Instant) -> Duration {
        let first = self.spec.backends.start;
        let board = self.table.board();
        let soonest = self
            .slots
            .iter()
            .enumerate()
            .map(|(j, slot)| {
                let slot = slot.borrow();
                let i = first + j;
                if !board.is_up(i) {
                    self.spec.down_for
                } else if let Some(until) = slot.ejection.ejected_until() {
                    until.saturating_duration_since(now)
                } else {
                    // Up but full: a request ends soon.
                    Duration::ZERO
                }
            })
            .min()
            .unwrap_or(Duration::ZERO);
        soonest.max(MIN_RETRY_AFTER)
    }

    /// Gives back the lease [`Group::choose`] took on table backend `i`.
    pub fn end(&self, i: usize) {
        let j = i - self.spec.backends.start;
        let mut slot = self.slots[j].borrow_mut();
        slot.in_flight = slot.in_flight.saturating_sub(1);
        self.counters(i).in_flight.set(u64::from(slot.in_flight));
        self.table.release(i);
    }

    /// Records how a request to table backend `i` went.
    pub fn report(&self, i: usize, outcome: Outcome, now: Instant) {
        let j = i - self.spec.backends.start;
        let passes = self.table.board().passes(i);
        let kind = match outcome {
            Outcome::Response { status, latency } => {
                self.counters(i).requests[metrics::class(status)].inc();
                self.policy.observe(j, latency, now);
                if status < 500 {
                    let mut slot = self.slots[j].borrow_mut();
                    slot.ejection.on_success(now);
                    slot.spared = false;
                    return;
                }
                FailureKind::Status5xx
            }
            Outcome::Failed => FailureKind::Connect,
            Outcome::Unresponsive => FailureKind::Unresponsive,
        };
        let may_eject = self.may_eject(i, now);
        let mut slot = self.slots[j].borrow_mut();
        let backend = &self.table.backend(i).address;
        match slot.ejection.on_failure(kind, now, passes, may_eject) {
            Failure::Ejected(length) => {
                slot.spared = false;
                let counters = self.counters(i);
                counters.ejections.inc();
                counters.ejected_until.set(metrics::nanos(now + length));
                tracing::warn!(
                    upstream = %self.spec.name,
                    %backend,
                    "backend ejected for {length:?} by this worker after consecutive failures"
                );
            }
            Failure::Spared if !slot.spared => {
                slot.spared = true;
                tracing::warn!(
                    upstream = %self.spec.name,
                    %backend,
                    max_ejected_percent = self.spec.outlier.max_ejected_percent,
                    "backend keeps failing but is not ejected: this worker has already ejected \
                     as many of the upstream's backends as it may, or it is the last one up; \
                     requests keep going to it"
                );
            }
            _ => {}
        }
    }

    /// Whether this worker may eject table backend `i` now: fewer of its tier (primaries, or
    /// backups) are ejected than [`max_ejected`] allows, and another backend of the tier is
    /// up and not ejected.
    fn may_eject(&self, i: usize, now: Instant) -> bool {
        let first = self.spec.backends.start;
        let board = self.table.board();
        let backup = self.table.backend(i).backup;
        let (mut tier, mut ejected, mut others_usable) = (0, 0, 0);
        for (j, slot) in self.slots.iter().enumerate() {
            let k = first + j;
            if self.table.backend(k).backup != backup {
                continue;
            }
            tier += 1;
            let out = slot.borrow_mut().ejection.is_ejected(now, board.passes(k));
            if out {
                ejected += 1;
            } else if k != i && board.is_up(k) {
                others_usable += 1;
            }
        }
        others_usable > 0 && ejected < max_ejected(tier, self.spec.outlier.max_ejected_percent)
    }

    /// This worker's requests in flight to table backend `i`.
    #[cfg(test)]
    pub fn in_flight(&self, i: usize) -> u32 {
        self.slots[i - self.spec.backends.start].borrow().in_flight
    }
}

fn latest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn backend(port: u16) -> BackendSpec {
        BackendSpec {
            address: addr(port),
            weight: 1,
            max_connections: 0,
            backup: false,
        }
    }

    /// One upstream over `backends` with round robin and outlier detection on connect failures.
    fn group(backends: Vec<BackendSpec>, slow_start: Duration) -> (Group, Arc<Table>) {
        let n = backends.len();
        let table = Arc::new(Table::new(backends, HealthBoard::new(n)));
        let spec = Arc::new(UpstreamSpec {
            name: "app".into(),
            policy: PolicyKind::RoundRobin,
            key: None,
            slow_start,
            retries: RetryBudgetPolicy::default(),
            hedge_after: None,
            outlier: OutlierPolicy {
                consecutive_failures: 2,
                consecutive_5xx: 0,
                base_ejection: Duration::from_secs(10),
                max_ejection: Duration::from_secs(60),
                max_ejected_percent: 50,
            },
            backends: 0..n,
            down_for: Duration::from_secs(4),
            checked: false,
            metrics: Arc::new(UpstreamMetrics::new(1)),
            send_proxy: None,
        });
        (Group::new(spec, table.clone(), 0), table)
    }

    fn pick(g: &Group, exclude: Option<usize>, now: Instant) -> Option<usize> {
        match g.choose(0, exclude, now) {
            Choice::Backend(i) => {
                g.end(i);
                Some(i)
            }
            Choice::Unavailable { .. } => None,
        }
    }

    #[test]
    fn skips_backends_marked_down_and_returns_them() {
        let (g, table) = group(vec![backend(1), backend(2), backend(3)], Duration::ZERO);
        let now = Instant::now();
        table.board().set_up(1, false, now);
        let picks: Vec<_> = (0..4).map(|_| pick(&g, None, now).unwrap()).collect();
        assert_eq!(picks.iter().filter(|&&i| i == 1).count(), 0, "{picks:?}");
        table.board().set_up(1, true, now);
        let picks: Vec<_> = (0..3).map(|_| pick(&g, None, now).unwrap()).collect();
        assert!(picks.contains(&1), "{picks:?}");
    }

    #[test]
    fn nothing_up_is_unavailable_with_the_soonest_return() {
        let (g, table) = group(vec![backend(1), backend(2)], Duration::ZERO);
        let now = Instant::now();
        table.board().set_up(0, false, now);
        table.board().set_up(1, false, now);
        assert_eq!(
            g.choose(0, None, now),
            Choice::Unavailable {
                retry_after: Duration::from_secs(4)
            }
        );
    }

    #[test]
    fn excluded_backend_only_when_it_is_the_last_one() {
        let (g, _) = group(vec![backend(1), backend(2)], Duration::ZERO);
        let now = Instant::now();
        for _ in 0..4 {
            assert_eq!(pick(&g, Some(0), now), Some(1));
        }
        let (g, _) = group(vec![backend(1)], Duration::ZERO);
        assert_eq!(pick(&g, Some(0), now), Some(0));
    }

    #[test]
    fn backups_serve_only_while_no_primary_is_up() {
        let mut spare = backend(9);
        spare.backup = true;
        let (g, table) = group(vec![backend(1), spare], Duration::ZERO);
        let now = Instant::now();
        assert!((0..4).all(|_| pick(&g, None, now) == Some(0)));
        table.board().set_up(0, false, now);
        assert!((0..4).all(|_| pick(&g, None, now) == Some(1)));
        table.board().set_up(0, true, now);
        assert!((0..4).all(|_| pick(&g, None, now) == Some(0)));
    }

    #[test]
    fn max_connections_is_a_lease_count() {
        let mut limited = backend(1);
        limited.max_connections = 2;
        let (g, table) = group(vec![limited], Duration::ZERO);
        let now = Instant::now();
        assert_eq!(g.choose(0, None, now), Choice::Backend(0));
        assert_eq!(g.choose(0, None, now), Choice::Backend(0));
        assert_eq!(table.active(0), 2);
        assert_eq!(g.in_flight(0), 2);
        assert_eq!(
            g.choose(0, None, now),
            Choice::Unavailable {
                retry_after: Duration::from_secs(1)
            }
        );
        g.end(0);
        assert_eq!(table.active(0), 1);
        assert_eq!(g.choose(0, None, now), Choice::Backend(0));
        g.end(0);
        g.end(0);
        assert_eq!((table.active(0), g.in_flight(0)), (0, 0));
    }

    #[test]
    fn consecutive_failures_eject_until_the_backoff_ends() {
        let (g, _) = group(vec![backend(1), backend(2)], Duration::ZERO);
        let now = Instant::now();
        g.report(1, Outcome::Failed, now);
        assert!((0..4).any(|_| pick(&g, None, now) == Some(1)));
        g.report(1, Outcome::Failed, now);
        assert!((0..6).all(|_| pick(&g, None, now) == Some(0)));
        // Only backend 0 is up: Retry-After is when backend 1 comes back, if 0 went down too.
        let later = now + Duration::from_secs(10);
        assert!((0..4).any(|_| pick(&g, None, later) == Some(1)));
    }

    #[test]
    fn a_failure_every_backend_shares_never_ejects_them_all() {
        let now = Instant::now();
        // Two backends failing alike: the first is ejected, the second keeps taking requests.
        let (g, _) = group(vec![backend(1), backend(2)], Duration::ZERO);
        for _ in 0..2 {
            g.report(0, Outcome::Failed, now);
            g.report(1, Outcome::Failed, now);
        }
        for _ in 0..6 {
            g.report(1, Outcome::Failed, now);
        }
        assert!((0..4).all(|_| pick(&g, None, now) == Some(1)));
        // Once the first is back, the second may go in its turn.
        let later = now + Duration::from_secs(10);
        assert!((0..4).any(|_| pick(&g, None, later) == Some(0)));
        g.report(1, Outcome::Failed, later);
        g.report(1, Outcome::Failed, later);
        assert!((0..4).all(|_| pick(&g, None, later) == Some(0)));

        // A sole backend is never ejected passively.
        let (g, _) = group(vec![backend(1)], Duration::ZERO);
        for _ in 0..10 {
            g.report(0, Outcome::Failed, now);
        }
        assert_eq!(pick(&g, None, now), Some(0));

        // Nor is the last one the health checks consider up.
        let (g, table) = group(vec![backend(1), backend(2), backend(3)], Duration::ZERO);
        table.board().set_up(2, false, now);
        for _ in 0..2 {
            g.report(0, Outcome::Failed, now);
        }
        for _ in 0..4 {
            g.report(1, Outcome::Failed, now);
        }
        assert!((0..4).all(|_| pick(&g, None, now) == Some(1)));
    }

    #[test]
    fn at_most_the_configured_share_is_ejected_at_once() {
        let now = Instant::now();
        let backends = (1..=4).map(backend).collect();
        // 50% of 4: two ejected, the other two spared however often they fail.
        let (g, _) = group(backends, Duration::ZERO);
        for i in 0..4 {
            for _ in 0..4 {
                g.report(i, Outcome::Failed, now);
            }
        }
        let picked: std::collections::BTreeSet<_> =
            (0..16).filter_map(|_| pick(&g, None, now)).collect();
        assert_eq!(picked, [2, 3].into(), "{picked:?}");
    }

    #[test]
    fn a_5xx_is_a_response_not_a_connect_failure() {
        let (g, _) = group(vec![backend(1), backend(2)], Duration::ZERO);
        let now = Instant::now();
        let response = |status| Outcome::Response {
            status,
            latency: Duration::from_millis(1),
        };
        // consecutive_5xx = 0: 5xx answers never eject, and a 2xx resets connect failures.
        for _ in 0..5 {
            g.report(1, response(503), now);
        }
        g.report(1, Outcome::Failed, now);
        g.report(1, response(200), now);
        g.report(1, Outcome::Failed, now);
        assert!((0..4).any(|_| pick(&g, None, now) == Some(1)));
    }

    #[test]
    fn slow_start_ramps_a_backend_that_came_back() {
        let (g, table) = group(vec![backend(1), backend(2)], Duration::from_secs(10));
        let t0 = Instant::now();
        table.board().set_up(1, false, t0);
        table.board().set_up(1, true, t0);
        let share = |now: Instant| (0..1100).filter(|_| pick(&g, None, now) == Some(1)).count();
        // 10 % of its weight at first: 1 pick in 11.
        assert_eq!(share(t0), 100);
        // Full weight once the window has passed: half.
        assert_eq!(share(t0 + Duration::from_secs(10)), 550);
    }
}
