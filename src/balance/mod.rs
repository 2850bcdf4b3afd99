//! Sans-IO balancing policies.
//!
//! Owns the choice of a backend for one request among the backends of one pool, and the
//! per-worker state each policy needs to make that choice (rotation counters, latency
//! estimates, a seeded random source, a consistent-hash ring). The caller describes the pool at
//! pick time as a slice of [`Candidate`]s (effective weight and this worker's requests in
//! flight), in the same backend order at every call; a policy answers with an index into that
//! slice and may learn from response latencies through [`Balancer::observe`].
//!
//! Invariants:
//! - No I/O, no clock reads, no global randomness: time is an `Instant` argument and random
//!   choices come from a generator seeded by the caller, so every decision is reproducible.
//! - `pick` returns `Some(i)` only for an `i < candidates.len()` with `candidates[i].weight > 0`,
//!   and `None` when there is no such candidate.
//! - State is per worker (`Cell`/`RefCell`, never atomics or locks): each worker balances on
//!   its own view of the pool, and no pick allocates once the policy has seen the pool's size.
//!
//! Policies ([`PolicyKind`]): smooth weighted round robin ([`SmoothWeighted`], used for both
//! `round_robin` and `weighted_round_robin`), weighted random ([`WeightedRandom`]), least
//! connections ([`LeastConnections`]), power of two choices over peak-EWMA latency
//! ([`PeakEwma`]) and consistent hashing on a ring of virtual nodes ([`HashRing`]).

#![forbid(unsafe_code)]

mod least_conn;
mod peak_ewma;
mod random;
mod ring;
mod smooth;

use std::cell::Cell;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::{Duration, Instant};

pub use least_conn::LeastConnections;
pub use peak_ewma::{DEFAULT_LATENCY, DEFAULT_TAU, PeakEwma};
pub use random::WeightedRandom;
pub use ring::{HashRing, MAX_POINTS, MIN_VNODES, VNODES_PER_UNIT};
pub use smooth::SmoothWeighted;

/// What a policy sees of one backend at pick time (built by the caller, per request, in a
/// reused `Vec`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Candidate {
    /// Effective weight now; 0 = must not be picked. (Configured weight, or 100 for unweighted
    /// policies, scaled by slow start. Range up to about 1 000 000.)
    pub weight: u32,
    /// Requests this worker has in flight to the backend now.
    pub in_flight: u32,
}

/// A balancing policy over the backends of one pool, owned by one worker.
///
/// Index `i` must name the same backend at every call (`pick`'s slice and `observe`'s index
/// are in the pool's backend order); the policy keys its per-backend state by index.
pub trait Balancer: fmt::Debug {
    /// Picks an index into `candidates` whose weight is above 0, or `None` if there is none.
    ///
    /// `key` is the request's hash key (only consistent hashing uses it; 0 is a key like any
    /// other). `now` is the injected clock (only latency-aware policies use it).
    fn pick(&self, candidates: &[Candidate], key: u64, now: Instant) -> Option<usize>;

    /// A response head came back from backend `i` after `latency`, at `now`. Latency-aware
    /// policies learn from it; the others ignore it.
    fn observe(&self, _i: usize, _latency: Duration, _now: Instant) {}

    /// Whether [`Balancer::observe`] uses the latency (else the caller need not measure it).
    fn wants_latency(&self) -> bool {
        false
    }
}

/// The balancing policies a pool can be configured with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyKind {
    /// Strict rotation (smooth weighted round robin over equal weights). The default.
    #[default]
    RoundRobin,
    /// Smooth weighted round robin (nginx's algorithm) over the configured weights.
    WeightedRoundRobin,
    /// Weighted random choice.
    Random,
    /// The backend with the fewest requests in flight per unit of weight.
    LeastConnections,
    /// Power of two choices over peak-EWMA latency x requests in flight / weight.
    PeakEwma,
    /// Consistent hashing of the request's key on a ring of virtual nodes.
    ConsistentHash,
}

impl PolicyKind {
    /// Every policy, in the order the config reference lists them.
    pub const ALL: [PolicyKind; 6] = [
        PolicyKind::RoundRobin,
        PolicyKind::WeightedRoundRobin,
        PolicyKind::Random,
        PolicyKind::LeastConnections,
        PolicyKind::PeakEwma,
        PolicyKind::ConsistentHash,
    ];

    /// The policy's name in the configuration (`round_robin`, `peak_ewma`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            PolicyKind::RoundRobin => "round_robin",
            PolicyKind::WeightedRoundRobin => "weighted_round_robin",
            PolicyKind::Random => "random",
            PolicyKind::LeastConnections => "least_connections",
            PolicyKind::PeakEwma => "peak_ewma",
            PolicyKind::ConsistentHash => "consistent_hash",
        }
    }

    /// Whether configured backend weights matter to this policy. Only `round_robin` ignores
    /// them: its candidates all get weight 100 (scaled by slow start). `consistent_hash` uses
    /// them to size each backend's share of the ring (see [`build`]); at pick time it only
    /// tells a weight of 0 from the others.
    pub const fn uses_weights(self) -> bool {
        !matches!(self, PolicyKind::RoundRobin)
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A policy name that is not one of [`PolicyKind::ALL`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown balancing policy {0:?}: expected one of round_robin, weighted_round_robin, random, \
     least_connections, peak_ewma, consistent_hash"
)]
pub struct UnknownPolicy(pub String);

impl FromStr for PolicyKind {
    type Err = UnknownPolicy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PolicyKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| UnknownPolicy(s.to_owned()))
    }
}

/// Builds one worker's policy for a pool.
///
/// - `ids`: a stable identity per backend (e.g. `"10.0.0.1:80"`), in pool order; consistent
///   hashing places each backend on its ring from it, so every worker and every process run
///   that is given the same ids and weights builds the same ring.
/// - `weights`: configured weights, parallel to `ids` (a missing entry counts as 1); only the
///   ring uses them (virtual nodes, see [`HashRing::new`]). Other policies read the effective
///   weight from each [`Candidate`] at pick time.
/// - `seed`: the policy's random source (workers pass different seeds, tests fixed ones). The
///   rotating policies also start their rotation at backend `seed % ids.len()`, so workers that
///   pass their index as the seed do not all send their first request to backend 0.
pub fn build(kind: PolicyKind, ids: &[String], weights: &[u32], seed: u64) -> Box<dyn Balancer> {
    let n = ids.len();
    let start = if n == 0 {
        0
    } else {
        // The remainder is below `n`, a usize.
        usize::try_from(seed % n as u64).unwrap_or(0)
    };
    match kind {
        PolicyKind::RoundRobin | PolicyKind::WeightedRoundRobin => {
            Box::new(SmoothWeighted::new(n, start))
        }
        PolicyKind::Random => Box::new(WeightedRandom::new(seed)),
        PolicyKind::LeastConnections => Box::new(LeastConnections::new(start)),
        PolicyKind::PeakEwma => Box::new(PeakEwma::new(n, DEFAULT_TAU, seed)),
        PolicyKind::ConsistentHash => Box::new(HashRing::new(ids, weights)),
    }
}

/// A stable 64-bit hash of a key (client IP bytes, header or cookie value): FNV-1a 64 over the
/// bytes, then MurmurHash3's 64-bit finalizer (`fmix64`) to spread FNV's weak high bits over
/// the whole ring. No random seed: the value is the same in every worker, process run and
/// machine, so a key keeps its backend across restarts.
pub fn hash_key(bytes: &[u8]) -> u64 {
    const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = FNV_OFFSET;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    fmix64(h)
}

/// [`hash_key`] of a client address: the 4 octets of an IPv4 address (also when it arrives as
/// an IPv4-mapped IPv6 address, so a dual-stack listener hashes one client one way), else the
/// 16 octets of the IPv6 address.
pub fn hash_ip(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) => hash_key(&v4.octets()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => hash_key(&v4.octets()),
            None => hash_key(&v6.octets()),
        },
    }
}

/// MurmurHash3's 64-bit finalizer: every input bit affects every output bit.
const fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// A seeded random source kept in a `Cell` (fastrand's wyrand state is one `u64`).
#[derive(Debug)]
struct SeededRng(Cell<u64>);

impl SeededRng {
    fn new(seed: u64) -> Self {
        Self(Cell::new(seed))
    }

    /// A uniform value in `0..n` (0 if `n` is 0).
    fn below(&self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let mut rng = fastrand::Rng::with_seed(self.0.get());
        let v = rng.u64(..n);
        self.0.set(rng.get_seed());
        v
    }
}

/// Weighted random choice among the candidates with weight above 0, leaving out `exclude`:
/// each one is chosen with probability weight / total. `None` when none is left.
fn weighted_pick(
    candidates: &[Candidate],
    rng: &SeededRng,
    exclude: Option<usize>,
) -> Option<usize> {
    let total: u64 = candidates
        .iter()
        .enumerate()
        .filter(|&(i, _)| Some(i) != exclude)
        .map(|(_, c)| u64::from(c.weight))
        .sum();
    if total == 0 {
        return None;
    }
    let mut r = rng.below(total);
    for (i, c) in candidates.iter().enumerate() {
        if Some(i) == exclude || c.weight == 0 {
            continue;
        }
        let w = u64::from(c.weight);
        if r < w {
            return Some(i);
        }
        r -= w;
    }
    None
}

/// Indexes `0..n` starting at `start` and wrapping around (`start` must be below `n`, or 0).
fn rotated(start: usize, n: usize) -> impl Iterator<Item = usize> {
    (start..n).chain(0..start.min(n))
}

/// Candidates with the given weights and nothing in flight (tests).
#[cfg(test)]
fn candidates(weights: &[u32]) -> Vec<Candidate> {
    weights
        .iter()
        .map(|&weight| Candidate {
            weight,
            in_flight: 0,
        })
        .collect()
}

#[cfg(test)]
mod tests;
