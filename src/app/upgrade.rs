//! Binary upgrade: the listening sockets pass from the running process to its successor.
//!
//! Owns the hand-over over a Unix socket (`--upgrade-socket PATH`, SOCK_SEQPACKET so message
//! boundaries and the descriptors attached to each stay together). The running process serves
//! it on a thread of its own; a successor started with `--upgrade` connects and says
//! `HELLO 1`; the running one answers one `LISTEN <configured address>` message per listener
//! with that listener's sockets attached (SCM_RIGHTS: the same sockets, with their accept
//! queues, not new ones beside them), then `END`. The successor starts its workers on them and
//! says `READY <pid>`; the old process answers `BYE`, stops accepting (its accept loops wait on
//! readiness, so stopping takes nothing off the shared queues), drains and exits, while the
//! successor takes over the path for the next upgrade.
//!
//! Invariants: the running process changes nothing until `READY` (a successor that fails or
//! goes away before it leaves the old process serving); a descriptor received is owned at once
//! (closed on every error path); the protocol carries no secrets and nothing from a client.

use std::collections::HashMap;
use std::io::{IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::sys::socket::{
    self, AddressFamily, Backlog, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag,
    SockType, UnixAddr,
};

use crate::runtime::Control;

/// The first message a successor sends.
const HELLO: &str = "HELLO 1";
/// The most descriptors one message carries (the kernel's SCM_MAX_FD is 253).
const MAX_FDS: usize = 253;
/// The longest message of the protocol.
const MAX_MESSAGE: usize = 512;

/// Why a hand-over failed.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    /// The upgrade socket could not be set up or reached.
    #[error("upgrade socket {path}: {what}: {errno}")]
    Socket {
        /// The socket's path.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The error.
        errno: nix::Error,
    },
    /// Another ringway serves the path, and this one was not asked to take over.
    #[error(
        "upgrade socket {0}: a running ringway listens there; start with --upgrade to take its \
         listeners over, or give another path"
    )]
    Held(PathBuf),
    /// The other side said something outside the protocol.
    #[error("upgrade socket {path}: unexpected message {message:?}")]
    Protocol {
        /// The socket's path.
        path: PathBuf,
        /// What it said (at most [`MAX_MESSAGE`] bytes, lossily decoded).
        message: String,
    },
}

fn socket_error(path: &Path, what: &'static str) -> impl FnOnce(nix::Error) -> UpgradeError {
    let path = path.to_path_buf();
    move |errno| UpgradeError::Socket { path, what, errno }
}

fn seqpacket(path: &Path) -> Result<OwnedFd, UpgradeError> {
    socket::socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(socket_error(path, "creating a socket"))
}

fn unix_addr(path: &Path) -> Result<UnixAddr, UpgradeError> {
    UnixAddr::new(path).map_err(socket_error(path, "naming it"))
}

/// Sends `text` with `fds` attached, as one message.
fn send(fd: &OwnedFd, text: &str, fds: &[RawFd]) -> nix::Result<()> {
    let iov = [IoSlice::new(text.as_bytes())];
    let rights = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &rights };
    socket::sendmsg::<()>(fd.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None)?;
    Ok(())
}

/// Receives one message: its text and the descriptors attached (owned from here on). An
/// empty text is the end of the stream.
fn receive(fd: &OwnedFd) -> nix::Result<(String, Vec<OwnedFd>)> {
    let mut buf = [0u8; MAX_MESSAGE];
    let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = socket::recvmsg::<()>(
        fd.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut fds = Vec::new();
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(raw) = cmsg {
            // SAFETY: the kernel installed these descriptors in this process's table for this
            // message; nothing else refers to them, so each is owned exactly once, here.
            fds.extend(raw.into_iter().map(|r| unsafe { OwnedFd::from_raw_fd(r) }));
        }
    }
    let len = msg.bytes;
    Ok((String::from_utf8_lossy(&buf[..len]).into_owned(), fds))
}

/// The listening sockets a successor received, by the address each listener was configured
/// with in the old process.
pub struct TakenOver {
    /// The sockets, by configured address.
    pub listeners: HashMap<SocketAddr, Vec<std::net::TcpListener>>,
    /// The connection to the old process, to say `READY` on.
    conn: OwnedFd,
    path: PathBuf,
}

/// Connects to the running ringway at `path` and receives its listening sockets.
pub fn take_over(path: &Path) -> Result<TakenOver, UpgradeError> {
    let conn = seqpacket(path)?;
    socket::connect(conn.as_raw_fd(), &unix_addr(path)?)
        .map_err(socket_error(path, "connecting to the running ringway"))?;
    send(&conn, HELLO, &[]).map_err(socket_error(path, "saying hello"))?;
    let mut listeners: HashMap<SocketAddr, Vec<std::net::TcpListener>> = HashMap::new();
    loop {
        let (text, fds) = receive(&conn).map_err(socket_error(path, "receiving listeners"))?;
        if text == "END" {
            break;
        }
        let addr = text
            .strip_prefix("LISTEN ")
            .and_then(|a| a.parse::<SocketAddr>().ok())
            .filter(|_| !fds.is_empty())
            .ok_or_else(|| UpgradeError::Protocol {
                path: path.to_path_buf(),
                message: text.clone(),
            })?;
        listeners
            .entry(addr)
            .or_default()
            .extend(fds.into_iter().map(std::net::TcpListener::from));
    }
    Ok(TakenOver {
        listeners,
        conn,
        path: path.to_path_buf(),
    })
}

impl TakenOver {
    /// Tells the old process that this one serves: it stops accepting, drains and exits.
    /// Waits for its acknowledgement.
    pub fn ready(self) -> Result<(), UpgradeError> {
        let path = &self.path;
        send(&self.conn, &format!("READY {}", std::process::id()), &[])
            .map_err(socket_error(path, "saying ready"))?;
        let (text, _) = receive(&self.conn).map_err(socket_error(path, "waiting for bye"))?;
        if text != "BYE" {
            return Err(UpgradeError::Protocol {
                path: path.clone(),
                message: text,
            });
        }
        Ok(())
    }
}

/// Starts the binary at `exe` with this process's arguments and `--upgrade` (SIGUSR2, as
/// nginx does): in the same service (cgroup) under systemd, so it can become the main process.
/// The successor takes the listeners over and this process stops once it says it is ready; if
/// it fails, this process serves on.
pub fn start_successor(exe: &Path) {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if !args.iter().any(|a| a == "--upgrade") {
        args.push("--upgrade".into());
    }
    match std::process::Command::new(exe).args(&args).spawn() {
        Ok(child) => tracing::info!(
            successor = child.id(),
            binary = %exe.display(),
            "binary upgrade: started the successor"
        ),
        Err(e) => tracing::error!(
            binary = %exe.display(),
            "binary upgrade: cannot start the successor: {e}"
        ),
    }
}

/// Whether a ringway serves the upgrade socket at `path`.
pub fn is_served(path: &Path) -> bool {
    let Ok(conn) = seqpacket(path) else {
        return false;
    };
    let Ok(addr) = unix_addr(path) else {
        return false;
    };
    socket::connect(conn.as_raw_fd(), &addr).is_ok()
}

/// The upgrade socket, bound and listening, not served yet.
pub struct UpgradeSocket {
    listener: OwnedFd,
    path: PathBuf,
}

impl UpgradeSocket {
    /// Listens on `path`, replacing a stale socket file (check [`is_served`] first: this takes
    /// the path from whoever serves it).
    pub fn bind(path: &Path) -> Result<Self, UpgradeError> {
        let listener = seqpacket(path)?;
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(UpgradeError::Socket {
                    path: path.to_path_buf(),
                    what: "removing the stale socket file",
                    errno: nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
                });
            }
        }
        socket::bind(listener.as_raw_fd(), &unix_addr(path)?)
            .map_err(socket_error(path, "binding"))?;
        socket::listen(&listener, Backlog::new(4).unwrap_or(Backlog::MAXCONN))
            .map_err(socket_error(path, "listening"))?;
        Ok(Self {
            listener,
            path: path.to_path_buf(),
        })
    }

    /// Serves successors on a thread of its own: each gets the listening sockets `control`
    /// holds; the first that says it is ready makes this process stop (`stop`).
    pub fn serve(
        self,
        control: Control,
        stop: impl Fn() + Send + 'static,
    ) -> Result<(), UpgradeError> {
        let Self { listener, path } = self;
        let thread_path = path.clone();
        std::thread::Builder::new()
            .name("ringway-upgrade".into())
            .spawn(move || {
                let path = thread_path;
                loop {
                    let conn = match socket::accept(listener.as_raw_fd()) {
                        // SAFETY: accept(2) returned a new descriptor that nothing else owns.
                        Ok(raw) => unsafe { OwnedFd::from_raw_fd(raw) },
                        Err(nix::Error::EINTR) | Err(nix::Error::ECONNABORTED) => continue,
                        Err(e) => {
                            tracing::error!(path = %path.display(), "upgrade socket: accept: {e}");
                            return;
                        }
                    };
                    match hand_over(&conn, &control) {
                        Ok(pid) => {
                            tracing::info!(
                                successor = %pid,
                                "binary upgrade: the new process serves the listeners; \
                                 stopping: no new connections, draining in-flight requests"
                            );
                            stop();
                            let _ = send(&conn, "BYE", &[]);
                            return;
                        }
                        Err(e) => tracing::warn!(
                            path = %path.display(),
                            "binary upgrade abandoned, still serving: {e}"
                        ),
                    }
                }
            })
            .map_err(|e| UpgradeError::Socket {
                path,
                what: "starting its thread",
                errno: nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EAGAIN)),
            })?;
        Ok(())
    }
}

/// One successor: hello, the listeners, ready. Returns the successor's pid as it said it.
fn hand_over(conn: &OwnedFd, control: &Control) -> Result<String, String> {
    let (hello, _) = receive(conn).map_err(|e| format!("receiving hello: {e}"))?;
    if hello != HELLO {
        return Err(format!("unexpected hello {hello:?}"));
    }
    let listeners = control
        .handover()
        .map_err(|e| format!("duplicating the listening sockets: {e}"))?;
    for listener in &listeners {
        for fds in listener.sockets.chunks(MAX_FDS) {
            let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
            send(conn, &format!("LISTEN {}", listener.addr), &raw)
                .map_err(|e| format!("sending the sockets of {}: {e}", listener.addr))?;
        }
    }
    send(conn, "END", &[]).map_err(|e| format!("sending end: {e}"))?;
    let (ready, _) = receive(conn).map_err(|e| format!("waiting for ready: {e}"))?;
    match ready.strip_prefix("READY ") {
        Some(pid) => Ok(pid.to_string()),
        None if ready.is_empty() => Err("the new process went away before it was ready".into()),
        None => Err(format!("unexpected message {ready:?}")),
    }
}
