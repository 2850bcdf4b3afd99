//! What a worker counts about its own load: client connections open and requests in flight.
//!
//! Owns one [`Load`] per worker, created by the worker before anything runs on it and shared
//! (`Rc`, never across cores) by the accept loops (connections, for the per-worker cap), the
//! application's handler (requests, through [`InFlight`] guards), the event loop (whether
//! gathering completions is worth it) and the graceful stop (whether requests are left). A
//! metrics reader gets its figures from here.
//!
//! Invariants: only the worker's own thread reads or writes it; a guard counts from its
//! creation to its drop, whatever ends it (a completed exchange, an error, a dropped future),
//! so the counts never drift.

use std::cell::Cell;
use std::rc::Rc;

/// One worker's load.
#[derive(Debug, Default)]
pub struct Load {
    connections: Cell<usize>,
    in_flight: Cell<usize>,
}

impl Load {
    /// Client connections open now.
    pub fn connections(&self) -> usize {
        self.connections.get()
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.get()
    }

    /// Counts a request as in flight until the guard is dropped.
    pub fn start_request(self: &Rc<Self>) -> InFlight {
        self.in_flight.set(self.in_flight.get() + 1);
        InFlight(self.clone())
    }

    /// Counts a client connection as open until the guard is dropped.
    pub(super) fn open_connection(self: &Rc<Self>) -> Open {
        self.connections.set(self.connections.get() + 1);
        Open(self.clone())
    }
}

/// One request in flight, from its head to the end of its response.
#[derive(Debug)]
pub struct InFlight(Rc<Load>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let n = &self.0.in_flight;
        n.set(n.get().saturating_sub(1));
    }
}

/// One open client connection.
#[derive(Debug)]
pub(super) struct Open(Rc<Load>);

impl Drop for Open {
    fn drop(&mut self) {
        let n = &self.0.connections;
        n.set(n.get().saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_connections_are_counted_until_dropped() {
        let load = Rc::new(Load::default());
        let a = load.start_request();
        let b = load.start_request();
        let c = load.open_connection();
        assert_eq!((load.in_flight(), load.connections()), (2, 1));
        drop(a);
        assert_eq!(load.in_flight(), 1);
        drop(b);
        drop(c);
        assert_eq!((load.in_flight(), load.connections()), (0, 0));
    }
}
