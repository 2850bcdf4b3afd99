//! A backend that freezes under load (SIGSTOP: the kernel still accepts its connections and
//! queues their requests, nothing answers): no GET is lost, no POST reaches a backend twice,
//! and the frozen backend stops getting new requests within one per-try timeout.
//!
//! The frozen backend is a real process: this test binary started again, running only the
//! ignored test `frozen_backend_process`, which serves like the other test backends and prints
//! a line per request it gets, so the test sees what reached it while it was stopped.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use common::*;

/// The environment variable that makes `frozen_backend_process` serve.
const BACKEND_ENV: &str = "RINGWAY_TEST_FROZEN_BACKEND";
/// Client connections sending requests all along.
const CLIENTS: usize = 12;
/// The per-try timeout of the test's proxy.
const PER_TRY: Duration = Duration::from_millis(300);

/// Not a test on its own: the backend process `a_frozen_backend_loses_no_get` starts.
#[test]
#[ignore = "the backend process of a_frozen_backend_loses_no_get"]
fn frozen_backend_process() {
    if std::env::var_os(BACKEND_ENV).is_none() {
        return;
    }
    let backend = Backend::with_handler(
        "frozen",
        Arc::new(|req, s| {
            println!("REQ {} {}", req.method, req.path);
            let body = format!("frozen {} {}\n", req.method, req.path);
            write!(
                s,
                "HTTP/1.1 200 OK\r\nX-Backend: frozen\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )?;
            Ok(Keep::Open)
        }),
    );
    println!("LISTEN {}", backend.addr);
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

/// The backend process, killed however the test ends.
struct FrozenBackend {
    child: Child,
    addr: SocketAddr,
    /// Each request it printed, with when the test read it.
    seen: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl FrozenBackend {
    fn start() -> FrozenBackend {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "frozen_backend_process",
                "--nocapture",
            ])
            .env(BACKEND_ENV, "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let lines = seen.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("LISTEN ") {
                    let _ = tx.send(addr.parse::<SocketAddr>().unwrap());
                } else if let Some(req) = line.strip_prefix("REQ ") {
                    lines.lock().unwrap().push((Instant::now(), req.to_owned()));
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the backend process listens");
        FrozenBackend { child, addr, seen }
    }

    fn signal(&self, name: &str) {
        signal(self.child.id(), name);
    }
}

impl Drop for FrozenBackend {
    fn drop(&mut self) {
        signal(self.child.id(), "CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one client saw: (method, path, status).
type Outcomes = Vec<(&'static str, String, u16)>;

#[test]
fn a_frozen_backend_loses_no_get() {
    let b1 = Backend::start("b1");
    let b2 = Backend::start("b2");
    let frozen = FrozenBackend::start();
    let proxy = Proxy::start_with(
        &[b1.addr, b2.addr, frozen.addr],
        ProxyOptions {
            extra: format!(
                "[timeouts]\nresponse = \"3s\"\ntry = \"{}ms\"\n",
                PER_TRY.as_millis()
            ),
            ..ProxyOptions::default()
        },
    );
    // Every backend takes requests before the freeze.
    let mut c = proxy.client();
    for _ in 0..6 {
        assert_eq!(c.get("/warm").status, 200);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| {
            let (addr, stop) = (proxy.addr, stop.clone());
            std::thread::spawn(move || {
                let mut outcomes = Outcomes::new();
                let mut c = Client::connect(addr, Some("localhost"));
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let post = n % 5 == 0;
                    let path = format!("/{}/{id}/{n}", if post { "p" } else { "g" });
                    let (method, r) = if post {
                        let head = format!(
                            "POST {path} HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi"
                        );
                        c.send(head.as_bytes());
                        ("POST", c.read_response("POST"))
                    } else {
                        let head = format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n");
                        c.send(head.as_bytes());
                        ("GET", c.read_response("GET"))
                    };
                    let status = r.map_or(0, |r| r.status);
                    outcomes.push((method, path, status));
                    if status != 200 {
                        // A failed POST closes the connection: start a new one.
                        c = Client::connect(addr, Some("localhost"));
                    }
                }
                outcomes
            })
        })
        .collect();

    std::thread::sleep(Duration::from_millis(500));
    frozen.signal("STOP");
    let frozen_at = Instant::now();
    std::thread::sleep(Duration::from_millis(2500));
    stop.store(true, Ordering::Relaxed);
    let outcomes: Vec<_> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    // Thawed: the backend now reads what was queued for it while it was stopped.
    frozen.signal("CONT");
    std::thread::sleep(Duration::from_millis(500));

    let gets: Vec<_> = outcomes.iter().filter(|o| o.0 == "GET").collect();
    let failed: Vec<_> = gets.iter().filter(|o| o.2 != 200).collect();
    assert!(gets.len() > 100, "only {} GETs", gets.len());
    assert!(failed.is_empty(), "failed GETs: {failed:?}");

    // No POST reached a backend twice.
    let mut posts: Vec<String> = [&b1, &b2]
        .iter()
        .flat_map(|b| b.received())
        .filter(|r| r.method == "POST")
        .map(|r| r.path)
        .collect();
    let frozen_seen = frozen.seen.lock().unwrap().clone();
    posts.extend(
        frozen_seen
            .iter()
            .filter_map(|(_, req)| req.strip_prefix("POST ").map(str::to_owned)),
    );
    let total = posts.len();
    posts.sort();
    posts.dedup();
    assert_eq!(posts.len(), total, "a POST reached backends twice");

    // What reached the frozen backend while it was stopped is what it read after the thaw:
    // each client can have been caught once, in the first per-try timeout, before the worker
    // took the backend out of its rotation; none after.
    let while_stopped = frozen_seen
        .iter()
        .filter(|(at, _)| *at > frozen_at + Duration::from_millis(2500))
        .count();
    assert!(
        while_stopped <= CLIENTS,
        "{while_stopped} requests reached the frozen backend"
    );
    eprintln!(
        "{} GETs, {} POSTs, {while_stopped} requests reached the frozen backend while stopped",
        gets.len(),
        total
    );
    let log = proxy.log();
    assert!(
        log.contains(&format!("backend={}", frozen.addr))
            && log.contains("sent nothing within the per-try timeout"),
        "{log}"
    );
    assert!(log.contains("ejected"), "{log}");
}
