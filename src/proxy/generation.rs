//! How a new plan reaches the workers, and what one worker serves a plan with.
//!
//! Owns the hand-over of plans: the application publishes each plan once ([`Published`]: a
//! generation number and the plan behind a lock), and each worker follows it on its own
//! thread. A worker compares the published generation with its own at the start of every
//! request, at every accepted connection and on its housekeeping tick (one relaxed load of a
//! word written only by a reload); when they differ it builds its next [`Generation`]: its
//! groups over the new plan's upstreams, keeping by backend identity what it knew of each
//! backend (requests in flight, passive ejection: [`WorkerBackends`]), and a failure log.
//!
//! Invariants: a request runs on the generation it started with (its lease ends on the
//! group it was chosen from, its idle connection is pooled only when its generation is still
//! the worker's current one); a generation is never mutated once built; the lock is taken
//! only by a reload and by each worker once per reload, never per request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::upstream::group::{Group, WorkerBackends};

use super::failure_log::FailureLog;
use super::plan::Plan;

/// The current plan, as the application publishes it to every worker.
pub struct Published {
    /// Bumped once per publication, after the plan is in place.
    generation: AtomicU64,
    plan: Mutex<(u64, Arc<Plan>)>,
}

impl Published {
    /// Publishes `plan` as generation 0.
    pub fn new(plan: Arc<Plan>) -> Arc<Self> {
        Arc::new(Self {
            generation: AtomicU64::new(0),
            plan: Mutex::new((0, plan)),
        })
    }

    /// Replaces the plan; every request that starts after this returns uses `plan`. Returns
    /// its generation.
    pub fn publish(&self, plan: Arc<Plan>) -> u64 {
        let mut current = self.plan.lock().unwrap_or_else(PoisonError::into_inner);
        let generation = current.0 + 1;
        *current = (generation, plan);
        self.generation.store(generation, Ordering::Release);
        generation
    }

    /// The generation of the current plan.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The current plan and its generation.
    pub fn current(&self) -> (u64, Arc<Plan>) {
        let current = self.plan.lock().unwrap_or_else(PoisonError::into_inner);
        (current.0, current.1.clone())
    }
}

/// One plan as one worker serves it.
pub struct Generation {
    /// Which publication it is.
    pub number: u64,
    /// The plan.
    pub plan: Arc<Plan>,
    /// This worker's view of each upstream (policy state, retry budget; per-backend state
    /// shared with the worker's other generations), by upstream index.
    pub groups: Vec<Group>,
    /// How often this worker logs each backend's failures, by table index.
    pub failures: FailureLog,
}

impl Generation {
    /// Worker `worker`'s view of `plan` (publication `number`), keeping what `kept` knows of
    /// the backends it shares with earlier plans; `kept` then holds exactly this plan's
    /// backends.
    pub fn new(number: u64, plan: Arc<Plan>, worker: usize, kept: &mut WorkerBackends) -> Self {
        let groups = plan
            .upstreams
            .iter()
            .enumerate()
            .map(|(u, spec)| {
                // Each worker's policies draw from their own random sequence.
                let seed = (worker as u64) << 32 | u as u64;
                Group::keeping(spec.clone(), plan.table.clone(), worker, seed, kept)
            })
            .collect();
        kept.retain(&plan.table);
        Self {
            number,
            failures: FailureLog::new(plan.table.len()),
            groups,
            plan,
        }
    }
}
