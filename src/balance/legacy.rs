//! The pre-issue-5 round robin, kept only so that the proxy builds until the integrator moves
//! it to [`super::build`] and [`super::Balancer`]. Deprecated: do not use in new code.

use std::cell::Cell;

/// Deprecated round robin over `len` backends filtered by a closure; replaced by
/// [`super::SmoothWeighted`] behind [`super::build`]. Remove with its last call site.
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: Cell<usize>,
}

impl RoundRobin {
    /// Deprecated: a round robin that starts at backend `start`.
    pub fn starting_at(start: usize) -> Self {
        Self {
            next: Cell::new(start),
        }
    }

    /// Deprecated: picks a backend among `len`, skipping those for which `usable(i)` is false.
    pub fn pick(&self, len: usize, usable: &dyn Fn(usize) -> bool) -> Option<usize> {
        if len == 0 {
            return None;
        }
        let start = self.next.get() % len;
        let i = super::rotated(start, len).find(|&i| usable(i))?;
        self.next.set(i + 1);
        Some(i)
    }
}
