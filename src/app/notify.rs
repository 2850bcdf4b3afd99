//! Telling systemd what the process is doing: the `sd_notify` protocol, written by hand.
//!
//! Owns the messages ringway sends to its service manager: [`ready`] (serving), [`reloading`]
//! (a reload has begun; `READY=1` again ends it), [`stopping`] (draining before exit) and
//! [`status`] (a line `systemctl status` shows). Each is one datagram on a Unix socket whose
//! address systemd passes in `NOTIFY_SOCKET`: a path, or an abstract name written with a
//! leading `@`.
//!
//! Invariants:
//! - Without `NOTIFY_SOCKET` (not started by systemd, or by a unit that is not `Type=notify`)
//!   every function does nothing.
//! - Nothing here fails the caller: a notification that cannot be sent (an unusable address,
//!   a socket error) is logged at debug level and dropped. Readiness is advisory; serving
//!   traffic is not.
//! - `NOTIFY_SOCKET` stays set, so later notifications (a reload, the stop) reach systemd too.
//! - Each call opens a socket and sends with a blocking `sendto`: call these from the main or
//!   the signal thread, never from a worker's event loop.
//!
//! Only the environment is read in the public functions; everything else takes the address as
//! a parameter (`notify_to`), so tests need no process-wide environment variable.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// The environment variable systemd sets to the notification socket's address.
const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Startup (or a reload) is complete: the listeners accept and the workers serve.
const READY: &str = "READY=1";

/// The process is stopping: no new connections, in-flight requests drain.
const STOPPING: &str = "STOPPING=1";

/// Why a notification was not sent.
#[derive(Debug, thiserror::Error)]
enum NotifyError {
    /// The address is neither an absolute path nor an `@` abstract name (systemd also knows
    /// `vsock:` addresses, which a service on the host is never given).
    #[error("NOTIFY_SOCKET={0:?} is neither an absolute path nor an @abstract name")]
    Unsupported(OsString),
    /// The address does not fit a Unix socket address (too long, or a NUL in a path).
    #[error("NOTIFY_SOCKET={address:?}: {source}")]
    Address {
        /// The address as given.
        address: OsString,
        /// Why it does not fit.
        source: io::Error,
    },
    /// No datagram socket could be opened.
    #[error("cannot open a Unix datagram socket: {0}")]
    Socket(io::Error),
    /// The datagram was not sent (the socket is gone, or refuses it).
    #[error("cannot send to NOTIFY_SOCKET={address:?}: {source}")]
    Send {
        /// The address as given.
        address: OsString,
        /// What sending returned.
        source: io::Error,
    },
}

/// Tells systemd that ringway serves: sends `READY=1`. Also ends a reload [`reloading`] began.
pub fn ready() {
    notify(READY);
}

/// Tells systemd that this process, a successor that took the listeners over from the old
/// one (binary upgrade), is the service's main process now and serves: sends
/// `MAINPID=<pid>` and `READY=1` (the unit needs `NotifyAccess=all` to accept it from a
/// process that is not yet its main one).
pub fn ready_as_main() {
    notify(&format!("MAINPID={}\n{READY}", std::process::id()));
}

/// Tells systemd that a reload has begun: sends `RELOADING=1` with `MONOTONIC_USEC`, the
/// current `CLOCK_MONOTONIC` time in microseconds, as `Type=notify-reload` expects. Send
/// [`ready`] once the new configuration serves, or once it was refused and the old one still
/// does.
pub fn reloading() {
    notify(&reloading_message(monotonic_usec()));
}

/// Tells systemd that ringway is stopping: sends `STOPPING=1`.
pub fn stopping() {
    notify(STOPPING);
}

/// Sets the status line `systemctl status ringway` shows: sends `STATUS=<text>`. A line break
/// in `text` would start another assignment, so each becomes a space.
pub fn status(text: &str) {
    notify(&status_message(text));
}

/// Sends `message` to `NOTIFY_SOCKET` if it is set; logs a failure at debug level.
fn notify(message: &str) {
    let address = std::env::var_os(NOTIFY_SOCKET);
    if let Err(e) = notify_to(address.as_deref(), message) {
        tracing::debug!("systemd notification {message:?} not sent: {e}");
    }
}

/// Sends `message` as one datagram to `address` (`NOTIFY_SOCKET`'s value); nothing without
/// an address.
fn notify_to(address: Option<&OsStr>, message: &str) -> Result<(), NotifyError> {
    let Some(address) = address else {
        return Ok(());
    };
    let target = socket_address(address)?;
    let socket = UnixDatagram::unbound().map_err(NotifyError::Socket)?;
    // A datagram goes whole or not at all: no short send to handle.
    socket
        .send_to_addr(message.as_bytes(), &target)
        .map_err(|source| NotifyError::Send {
            address: address.to_owned(),
            source,
        })?;
    Ok(())
}

/// The socket address `NOTIFY_SOCKET` names: `/run/systemd/notify` is a path, `@name` the
/// abstract name `name`.
fn socket_address(address: &OsStr) -> Result<SocketAddr, NotifyError> {
    let bytes = address.as_bytes();
    let parsed = match bytes.first() {
        Some(b'/') => SocketAddr::from_pathname(address),
        Some(b'@') => SocketAddr::from_abstract_name(&bytes[1..]),
        _ => return Err(NotifyError::Unsupported(address.to_owned())),
    };
    parsed.map_err(|source| NotifyError::Address {
        address: address.to_owned(),
        source,
    })
}

/// `RELOADING=1` with the time the reload began, when the clock could be read.
fn reloading_message(monotonic_usec: Option<u64>) -> String {
    match monotonic_usec {
        Some(usec) => format!("RELOADING=1\nMONOTONIC_USEC={usec}"),
        None => "RELOADING=1".to_owned(),
    }
}

/// `STATUS=<text>`, on one line.
fn status_message(text: &str) -> String {
    let line: String = text
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    format!("STATUS={line}")
}

/// `CLOCK_MONOTONIC` in microseconds, the clock systemd compares `MONOTONIC_USEC` with.
fn monotonic_usec() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return None;
    }
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let micros = u64::try_from(ts.tv_nsec).ok()? / 1_000;
    secs.checked_mul(1_000_000)?.checked_add(micros)
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// A directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "ringway-test-{tag}-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&path).expect("create temp dir");
            Self(path)
        }

        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A bound socket standing in for systemd's, and the address to give `notify_to`.
    fn listener(dir: &TempDir) -> (UnixDatagram, OsString) {
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        (socket, path.into_os_string())
    }

    /// The next datagram, whole.
    fn receive(socket: &UnixDatagram) -> String {
        let mut buf = [0u8; 4096];
        let n = socket.recv(&mut buf).expect("a datagram");
        String::from_utf8(buf[..n].to_vec()).expect("UTF-8")
    }

    #[test]
    fn each_message_is_one_exact_datagram() {
        let dir = TempDir::new("notify-path");
        let (socket, address) = listener(&dir);
        let address = Some(address.as_os_str());
        for (message, expected) in [
            (READY.to_owned(), "READY=1"),
            (STOPPING.to_owned(), "STOPPING=1"),
            (
                status_message("serving 2 listeners"),
                "STATUS=serving 2 listeners",
            ),
            (status_message("bad\nconfig\r\n"), "STATUS=bad config  "),
            (
                reloading_message(Some(12_345_678)),
                "RELOADING=1\nMONOTONIC_USEC=12345678",
            ),
            (reloading_message(None), "RELOADING=1"),
        ] {
            notify_to(address, &message).expect("sent");
            assert_eq!(receive(&socket), expected);
        }
    }

    #[test]
    fn reloading_carries_the_monotonic_clock_in_microseconds() {
        let dir = TempDir::new("notify-reload");
        let (socket, address) = listener(&dir);
        let before = monotonic_usec().expect("clock");
        notify_to(Some(&address), &reloading_message(monotonic_usec())).expect("sent");
        let after = monotonic_usec().expect("clock");
        let text = receive(&socket);
        let usec: u64 = text
            .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{text:?}"));
        assert!(before <= usec && usec <= after, "{before} {usec} {after}");
        // Microseconds, not nanoseconds: a sleep of 20 ms moves the clock by about 20,000.
        std::thread::sleep(Duration::from_millis(20));
        let later = monotonic_usec().expect("clock");
        assert!(
            (20_000..2_000_000).contains(&(later - after)),
            "{after} {later}"
        );
    }

    #[test]
    fn an_abstract_address_starts_with_at() {
        let name = format!("ringway-test-notify-{}", std::process::id());
        let bound = SocketAddr::from_abstract_name(name.as_bytes()).expect("name");
        let socket = UnixDatagram::bind_addr(&bound).expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let address = OsString::from(format!("@{name}"));
        notify_to(Some(&address), READY).expect("sent");
        assert_eq!(receive(&socket), "READY=1");
    }

    #[test]
    fn without_an_address_nothing_is_sent() {
        assert!(notify_to(None, READY).is_ok());
    }

    #[test]
    fn failures_are_errors_not_panics() {
        let dir = TempDir::new("notify-errors");
        let missing = dir.path().join("missing").into_os_string();
        assert!(matches!(
            notify_to(Some(&missing), READY),
            Err(NotifyError::Send { .. })
        ));
        for address in ["", "run/systemd/notify", "vsock:2:1234"] {
            assert!(
                matches!(
                    notify_to(Some(OsStr::new(address)), READY),
                    Err(NotifyError::Unsupported(_))
                ),
                "{address:?}"
            );
        }
        let too_long = OsString::from(format!("/{}", "x".repeat(200)));
        assert!(matches!(
            notify_to(Some(&too_long), READY),
            Err(NotifyError::Address { .. })
        ));
    }
}
