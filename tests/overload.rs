//! Many clients at once and local shortages (CHECKLISTS §2, the last three rows): the ring's
//! provided-buffer pool running dry is back-pressure, never an error; a resource this process
//! runs out of is never a backend's fault; and a failure every backend shares never ejects
//! them all. The real binary, real TLS clients, real backend sockets.

mod common;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{Backend, Keep, Proxy, ProxyOptions, Received, write_ok};

/// `len` bytes of a pattern that depends on `seed`, so a misplaced chunk shows.
fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + seed * 7) % 251) as u8)
        .collect()
}

/// A sum of the bytes that a reordering or a lost chunk changes.
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().enumerate().fold(0u64, |acc, (i, &b)| {
        acc.wrapping_mul(31)
            .wrapping_add(u64::from(b) ^ (i as u64 & 0xff))
    })
}

/// A backend that answers `GET /bytes/N/S` with `pattern(N, S)`, and any POST with the length
/// and checksum of the body it received (`X-Body-Len`, `X-Body-Sum`).
fn data_backend(name: &str) -> Backend {
    Backend::with_handler(
        name,
        Arc::new(|req: &Received, s| {
            if req.method == "POST" {
                write!(
                    s,
                    "HTTP/1.1 200 OK\r\nX-Body-Len: {}\r\nX-Body-Sum: {}\r\nContent-Length: 2\r\n\r\nok",
                    req.body.len(),
                    checksum(&req.body)
                )?;
                return Ok(Keep::Open);
            }
            let mut parts = req.path.trim_start_matches("/bytes/").split('/');
            let len = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
            let seed = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
            write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n")?;
            s.write_all(&pattern(len, seed))?;
            Ok(Keep::Open)
        }),
    )
}

/// An upstream `app` over `backends` that ejects a backend at its first failure: any failure
/// counted against a backend shows in the log at once.
fn strict_upstream(backends: &[&Backend], extra: &str) -> ProxyOptions {
    let list: Vec<String> = backends.iter().map(|b| format!("\"{}\"", b.addr)).collect();
    ProxyOptions {
        extra: format!(
            "{extra}\n[[upstream]]\nname = \"app\"\nbackends = [{}]\n\
             [upstream.outlier]\nconsecutive_failures = 1\n",
            list.join(", ")
        ),
        listener: Some("upstream = \"app\"".into()),
        ..ProxyOptions::default()
    }
}

/// The issue this file was written for: with a pool of 128 buffers and a few hundred clients,
/// the pool ran dry, the empty pool was taken for a failed read of the backend, every backend
/// was ejected and every client got 503. A pool of 4 buffers under 40 clients downloading and
/// uploading at once runs dry all the time: every transfer must still complete, intact, and
/// nothing may be counted against a backend.
#[test]
fn a_tiny_buffer_ring_under_many_concurrent_transfers_fails_nothing() {
    let b1 = data_backend("b1");
    let b2 = data_backend("b2");
    let proxy = Proxy::start_with(&[], strict_upstream(&[&b1, &b2], "ring_buffers = 4"));
    let addr = proxy.addr;

    const CLIENTS: usize = 40;
    const ROUNDS: usize = 4;
    let workers: Vec<_> = (0..CLIENTS)
        .map(|c| {
            std::thread::spawn(move || {
                let mut client = common::Client::connect(addr, Some("localhost"));
                let mut failures = Vec::new();
                for round in 0..ROUNDS {
                    let seed = c * ROUNDS + round;
                    // A download larger than any buffer (many receives on both sides).
                    let len = 150_000 + seed * 997;
                    let r = client.get(&format!("/bytes/{len}/{seed}"));
                    if r.status != 200 || r.body != pattern(len, seed) {
                        failures.push(format!("GET {len}: {} ({} bytes)", r.status, r.body.len()));
                    }
                    // A streamed upload (above the size read whole before sending) and a small
                    // one (read whole first).
                    for size in [100_000 + seed * 13, 9_000 + seed] {
                        let body = pattern(size, seed + 1);
                        let mut req = format!(
                            "POST /up HTTP/1.1\r\nHost: localhost\r\nContent-Length: {size}\r\n\r\n"
                        )
                        .into_bytes();
                        req.extend_from_slice(&body);
                        client.send(&req);
                        let r = client.read_response("POST").expect("POST response");
                        let sum = checksum(&body).to_string();
                        let len = size.to_string();
                        if r.status != 200
                            || r.header("x-body-len") != Some(&len)
                            || r.header("x-body-sum") != Some(&sum)
                        {
                            failures.push(format!("POST {size}: {} {:?}", r.status, r.headers));
                        }
                    }
                }
                failures
            })
        })
        .collect();
    let failures: Vec<String> = workers
        .into_iter()
        .flat_map(|w| w.join().expect("client thread"))
        .collect();
    assert!(failures.is_empty(), "failed transfers: {failures:#?}");

    let served = b1.received().len() + b2.received().len();
    assert_eq!(served, CLIENTS * ROUNDS * 3);
    let log = proxy.log();
    for bad in ["request failed", "ejected", "not ejected", "buffer ring"] {
        assert!(!log.contains(bad), "{bad:?} in the log:\n{log}");
    }
}

/// The open-files limit of process `pid` (soft, hard); with `set`, sets the soft one first.
fn open_files(pid: u32, set: Option<u64>) -> (u64, u64) {
    let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
    let mut now = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: prlimit(2) with no new limit only writes `now`, valid for the call; the pid is a
    // child this test started and has not reaped.
    let rc = unsafe { libc::prlimit(pid, libc::RLIMIT_NOFILE, std::ptr::null(), &mut now) };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
    if let Some(soft) = set {
        let new = libc::rlimit {
            rlim_cur: soft,
            rlim_max: now.rlim_max,
        };
        // SAFETY: as above; `new` is read during the call only. Lowering a soft limit needs no
        // privilege.
        let rc = unsafe { libc::prlimit(pid, libc::RLIMIT_NOFILE, &new, std::ptr::null_mut()) };
        assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
    }
    (now.rlim_cur, now.rlim_max)
}

/// Out of file descriptors, ringway cannot open a backend connection. That is its own
/// shortage, not the backend's: the client gets 503 with Retry-After (its connection kept, the
/// request was whole), no backend is tried or ejected, and once descriptors are back every
/// backend serves at once. Without the distinction, the first refused connect would eject a
/// backend here (one failure ejects), and the log would say so.
#[test]
fn running_out_of_descriptors_ejects_no_backend() {
    let b1 = Backend::start("b1");
    let b2 = Backend::start("b2");
    let options = strict_upstream(&[&b1, &b2], "[pool]\nmax_idle_per_backend = 0");
    let proxy = Proxy::start_with(&[], options);
    let pid = proxy.child.id();
    let mut client = proxy.client();
    assert_eq!(client.get("/").status, 200);
    let before = b1.received().len() + b2.received().len();

    // No descriptor left: every socket(2) fails with EMFILE. The client's connection is
    // already open.
    let (soft, _) = open_files(pid, Some(0));
    for _ in 0..3 {
        let r = client.get("/");
        assert_eq!(r.status, 503, "{}", r.text());
        assert_eq!(r.header("retry-after"), Some("1"));
    }
    open_files(pid, Some(soft));
    assert_eq!(
        b1.received().len() + b2.received().len(),
        before,
        "nothing reached a backend"
    );

    // Both backends are still in rotation (round robin: one request each).
    for _ in 0..4 {
        assert_eq!(client.get("/").status, 200);
    }
    assert!(b1.received().len() >= 2 && b2.received().len() >= 2);
    let log = proxy.log();
    assert!(log.contains("out of a local resource"), "{log}");
    assert!(!log.contains("ejected"), "{log}");
}

/// When every backend fails for a cause they share, a worker ejects at most its share of them
/// (here 1 of 2) and keeps sending to the rest: once the cause is gone, requests succeed at
/// once instead of getting 503 until the ejections expire.
#[test]
fn a_failure_every_backend_shares_never_ejects_them_all() {
    let broken = Arc::new(AtomicBool::new(true));
    let closing = |name: &str| {
        let broken = broken.clone();
        Backend::with_handler(
            name,
            Arc::new(move |_, s| {
                if broken.load(Ordering::SeqCst) {
                    // Close without answering.
                    return Ok(Keep::Close);
                }
                write_ok(s, "fine")?;
                Ok(Keep::Open)
            }),
        )
    };
    let b1 = closing("b1");
    let b2 = closing("b2");
    let proxy = Proxy::start_with(&[], strict_upstream(&[&b1, &b2], ""));
    for _ in 0..4 {
        let r = proxy.client().get("/");
        assert_eq!(r.status, 502, "{}", r.text());
    }
    broken.store(false, Ordering::SeqCst);
    let r = proxy.client().get("/");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "fine");

    let log = proxy.log();
    assert_eq!(log.matches("backend ejected").count(), 1, "{log}");
    assert!(log.contains("keeps failing but is not ejected"), "{log}");
}
