//! Listening sockets: one per worker per listener, bound with SO_REUSEPORT.
//!
//! Owns socket setup for the accept side. All sockets of one listener are bound in the main
//! thread before any worker starts, so that "address in use" or "permission denied" is one clear
//! startup error instead of a worker dying later. The first socket may bind port 0; the others
//! then bind the port the kernel chose, so every worker serves the same address.
//!
//! A binary upgrade adopts the sockets the old process hands over ([`adopt`]) instead of
//! binding new ones beside them: the sockets, and the connections queued on them, stay the
//! same; more are bound into the group only when the new process has more workers.
//!
//! SO_REUSEPORT would also let a second process (a second ringway started by mistake, by the
//! same user) bind the same address and silently take half of the connections. Before binding
//! its group, ringway therefore probes the address with a socket that does not ask for
//! SO_REUSEPORT: if anything holds the address, the probe fails and so does the start, with
//! "address already in use". (Upgrades that need two processes on one address get an explicit
//! handoff, not this.)

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// Why a listening socket could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// The address is taken by another process.
    #[error("cannot listen on {addr}: address already in use")]
    InUse {
        /// The address.
        addr: SocketAddr,
    },
    /// Binding needs a privilege the process lacks.
    #[error(
        "cannot listen on {addr}: permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
    )]
    PermissionDenied {
        /// The address.
        addr: SocketAddr,
    },
    /// Anything else.
    #[error("cannot listen on {addr}: {source}")]
    Other {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: io::Error,
    },
}

/// Binds `count` SO_REUSEPORT sockets on `addr` with `backlog`; returns them and the bound
/// address (with the real port when `addr` asked for port 0).
pub fn bind_reuseport(
    addr: SocketAddr,
    backlog: u32,
    count: usize,
) -> Result<(Vec<std::net::TcpListener>, SocketAddr), ListenError> {
    if addr.port() != 0 {
        probe_exclusive(addr).map_err(|source| classify(addr, source))?;
    }
    let mut bound = addr;
    let mut sockets = Vec::with_capacity(count);
    for _ in 0..count.max(1) {
        let socket = bind_one(bound, backlog).map_err(|source| classify(addr, source))?;
        if bound.port() == 0 {
            bound = socket
                .local_addr()
                .map_err(|source| classify(addr, source))?;
        }
        sockets.push(socket);
    }
    Ok((sockets, bound))
}

/// Takes over `sockets`, a group bound by the process this one replaces for the listener
/// configured as `configured`, for `count` workers: binds more sockets into the group when
/// there are fewer than `count` (no exclusivity probe: the group is ours). Returns them and
/// the address they are bound to.
pub fn adopt(
    sockets: Vec<std::net::TcpListener>,
    configured: SocketAddr,
    backlog: u32,
    count: usize,
) -> Result<(Vec<std::net::TcpListener>, SocketAddr), ListenError> {
    let first = sockets.first().ok_or_else(|| ListenError::Other {
        addr: configured,
        source: io::Error::other("no socket handed over"),
    })?;
    let bound = first
        .local_addr()
        .map_err(|source| classify(configured, source))?;
    let mut sockets = sockets;
    while sockets.len() < count {
        sockets.push(bind_one(bound, backlog).map_err(|source| classify(configured, source))?);
    }
    Ok((sockets, bound))
}

/// Fails with `AddrInUse` when any socket holds `addr`, SO_REUSEPORT ones included: a socket
/// without SO_REUSEPORT cannot bind beside them. SO_REUSEADDR keeps connections of an earlier
/// run in TIME_WAIT from counting.
fn probe_exclusive(addr: SocketAddr) -> io::Result<()> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())
}

fn bind_one(addr: SocketAddr, backlog: u32) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // Accepted sockets inherit TCP_NODELAY from the listener on Linux.
    socket.set_tcp_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(socket.into())
}

fn classify(addr: SocketAddr, source: io::Error) -> ListenError {
    match source.kind() {
        io::ErrorKind::AddrInUse => ListenError::InUse { addr },
        io::ErrorKind::PermissionDenied => ListenError::PermissionDenied { addr },
        _ => ListenError::Other { addr, source },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_zero_binds_every_socket_to_one_port() {
        let (socks, addr) = bind_reuseport("127.0.0.1:0".parse().unwrap(), 16, 3).unwrap();
        assert_eq!(socks.len(), 3);
        assert_ne!(addr.port(), 0);
        for s in &socks {
            assert_eq!(s.local_addr().unwrap(), addr);
        }
    }

    #[test]
    fn an_address_another_reuseport_group_holds_is_refused() {
        // Another ringway: its own SO_REUSEPORT group on the address.
        let (_other, addr) = bind_reuseport("127.0.0.1:0".parse().unwrap(), 16, 2).unwrap();
        let err = bind_reuseport(addr, 16, 2).unwrap_err();
        assert!(matches!(err, ListenError::InUse { .. }), "{err}");
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
    }

    #[test]
    fn a_free_address_binds_after_the_probe() {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = free.local_addr().unwrap();
        drop(free);
        let (socks, bound) = bind_reuseport(addr, 16, 2).unwrap();
        assert_eq!((socks.len(), bound), (2, addr));
    }

    #[test]
    fn adopting_keeps_the_group_and_its_queue_and_adds_sockets_for_more_workers() {
        let (socks, addr) = bind_reuseport("127.0.0.1:0".parse().unwrap(), 16, 1).unwrap();
        // A connection queued on the old process's socket before the handover.
        let _client = std::net::TcpStream::connect(addr).unwrap();
        let (adopted, bound) = adopt(socks, "127.0.0.1:0".parse().unwrap(), 16, 3).unwrap();
        assert_eq!((adopted.len(), bound), (3, addr));
        for s in &adopted {
            assert_eq!(s.local_addr().unwrap(), addr);
        }
        assert!(
            adopted[0].accept().is_ok(),
            "the queued connection is still there"
        );
        assert!(adopt(Vec::new(), addr, 16, 1).is_err());
    }

    #[test]
    fn address_in_use_is_named() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let err = bind_reuseport(addr, 16, 1).unwrap_err();
        assert!(matches!(err, ListenError::InUse { .. }), "{err}");
        assert!(err.to_string().contains("address already in use"));
    }
}
