//! Faults that need a private network namespace: a backend blackholed by an nftables rule that
//! drops its SYNs for real (nothing answers, not even a reset).
//!
//! The test runs in a dedicated thread that `unshare(CLONE_NEWNET)`s itself: namespaces are per
//! thread, and every process and thread started from that thread (`ip`, `nft`, ringway, the
//! backend) lives in the new namespace, so the rule never touches the host. When the thread
//! and everything it started have ended, nothing references the namespace and the kernel
//! frees it (the test checks that no thread of this process is left in it). Without the
//! capability (`EPERM`) or without `ip`/`nft`, the test prints `skipped: ...` and passes.

mod common;

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;

const TABLE: &str = "ringway_blackhole";
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Prints to the real stderr, past the test harness's output capture, so that a skip shows
/// in CI logs.
fn notice(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

/// Runs `program args`, feeding `stdin`; `Err` names what failed (missing program, exit status
/// and stderr).
fn run(program: &str, args: &[&str], stdin: &str) -> Result<String, String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("`{program}` cannot be run: {e}"))?;
    if let Some(mut input) = child.stdin.take() {
        input
            .write_all(stdin.as_bytes())
            .map_err(|e| format!("`{program}` stdin: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("`{program}`: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The network namespace of the calling thread, as `net:[inode]`.
fn thread_netns() -> String {
    std::fs::read_link("/proc/thread-self/ns/net")
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// Threads of this process whose network namespace is `ns`.
fn threads_in(ns: &str) -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_link(t.path().join("ns/net")).is_ok_and(|p| p.display().to_string() == ns)
        })
        .count()
}

/// Moves the calling thread into a new network namespace with `lo` up.
fn enter_new_netns() -> Result<(), String> {
    // SAFETY: unshare(2) takes a flag word and touches no memory of ours. CLONE_NEWNET only
    // changes the calling thread's namespace (allowed in a multithreaded process); this
    // thread was spawned for the test and ends with it.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(format!(
            "unshare(CLONE_NEWNET) not permitted: {}",
            std::io::Error::last_os_error()
        ));
    }
    run("ip", &["link", "set", "lo", "up"], "")?;
    Ok(())
}

/// An nftables table that drops every TCP segment to 127.0.0.1:`port` (with a counter) in
/// the calling thread's namespace; deleted on drop.
struct Blackhole {
    port: u16,
}

impl Blackhole {
    fn install(port: u16) -> Result<Blackhole, String> {
        let rules = format!(
            "table inet {TABLE} {{\n\
             \tchain input {{\n\
             \t\ttype filter hook input priority 0; policy accept;\n\
             \t\tip daddr 127.0.0.1 tcp dport {port} counter drop\n\
             \t}}\n\
             }}\n"
        );
        run("nft", &["-f", "-"], &rules)?;
        Ok(Blackhole { port })
    }

    /// Packets the rule dropped so far.
    fn dropped(&self) -> u64 {
        let listing = run("nft", &["list", "table", "inet", TABLE], "").expect("nft list");
        let line = listing
            .lines()
            .find(|l| l.contains(&format!("dport {}", self.port)))
            .unwrap_or_else(|| panic!("no rule in {listing}"));
        let after = line.split("packets ").nth(1).expect("counter in rule");
        after
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .expect("packet count")
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        let _ = run("nft", &["delete", "table", "inet", TABLE], "");
    }
}

/// A backend answering `200` with `X-Backend: good` that can be stopped, so that no thread
/// of it outlives the test (each one would keep the namespace alive).
struct StoppableBackend {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<Vec<JoinHandle<()>>>>,
}

impl StoppableBackend {
    fn start() -> StoppableBackend {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind backend");
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (requests.clone(), stop.clone());
        let accept = std::thread::spawn(move || {
            let mut served = Vec::new();
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let r = r.clone();
                served.push(std::thread::spawn(move || serve(stream, &r)));
            }
            served
        });
        StoppableBackend {
            addr,
            requests,
            stop,
            accept: Some(accept),
        }
    }

    /// Stops accepting and waits for every connection thread (their peers must be gone).
    fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the blocked accept.
        let _ = TcpStream::connect(self.addr);
        if let Some(accept) = self.accept.take() {
            for served in accept.join().expect("backend accept thread") {
                served.join().expect("backend connection thread");
            }
        }
    }
}

fn serve(stream: TcpStream, requests: &AtomicUsize) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Ok(Some(req)) = read_request(&mut reader) {
        requests.fetch_add(1, Ordering::SeqCst);
        let body = format!("good {} {}\n", req.method, req.path);
        let answer = format!(
            "HTTP/1.1 200 OK\r\nX-Backend: good\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

fn timeouts() -> ProxyOptions {
    ProxyOptions {
        extra: format!(
            "[timeouts]\nconnect = \"{}ms\"\nresponse = \"{}s\"\n",
            CONNECT_TIMEOUT.as_millis(),
            RESPONSE_TIMEOUT.as_secs()
        ),
        ..ProxyOptions::default()
    }
}

/// The test body, inside the namespace. `Err` is a reason to skip.
fn blackhole_in_netns(ns: &mut String) -> Result<(), String> {
    enter_new_netns()?;
    *ns = thread_netns();
    // Nothing listens on this port: without the rule a connect would be refused at once.
    let dead = refused_addr();
    let hole = Blackhole::install(dead.port())?;
    let good = StoppableBackend::start();

    // Alone in the pool: 504 at the connect timeout, then the connection is closed. The
    // backend that just failed to connect is not tried again for the same request.
    {
        let proxy = Proxy::start_with(&[dead], timeouts());
        let mut c = proxy.client();
        let t = Instant::now();
        let r = c.get("/");
        let elapsed = t.elapsed();
        assert_eq!(r.status, 504, "{}", r.text());
        assert_eq!(r.header("connection"), Some("close"));
        // One connect timeout: the only backend is not tried twice.
        assert!(elapsed >= CONNECT_TIMEOUT, "504 after {elapsed:?}");
        assert!(elapsed < 2 * CONNECT_TIMEOUT, "504 after {elapsed:?}");
        assert!(c.is_closed(), "connection left open after a 504");
        let line = format!("connect to {dead} timed out after 500ms");
        assert!(
            wait_until(Duration::from_secs(2), || proxy.log().contains(&line)),
            "{}",
            proxy.log()
        );
        notice(&format!(
            "blackholed backend alone: 504 after {} ms",
            elapsed.as_millis()
        ));
    }
    // One SYN at least, dropped by the rule.
    let dropped_alone = hole.dropped();
    assert!(
        dropped_alone >= 1,
        "the rule dropped {dropped_alone} packets"
    );

    // With a healthy backend next to it: a request the balancer sends to the blackholed one
    // waits out the connect timeout and is sent to the healthy one (nothing was sent before
    // the connect failed). That connect timeout takes the blackholed backend out of the
    // worker's rotation at once: one GET waits, and the POSTs that follow go straight to the
    // healthy one. The client connection stays open.
    let waited;
    {
        let proxy = Proxy::start_with(&[dead, good.addr], timeouts());
        let mut c = proxy.client();
        let mut gets_waited = 0;
        for i in 0..4 {
            let t = Instant::now();
            let r = c.get(&format!("/get{i}"));
            let elapsed = t.elapsed();
            assert_eq!(r.status, 200);
            assert_eq!(r.header("x-backend"), Some("good"));
            assert_eq!(r.text(), format!("good GET /get{i}\n"));
            assert!(
                elapsed < Duration::from_secs(3),
                "retried after {elapsed:?}"
            );
            if elapsed >= CONNECT_TIMEOUT {
                gets_waited += 1;
            }
        }
        // Round robin over two backends sends one of four requests to the blackholed one,
        // which is then ejected.
        assert_eq!(
            gets_waited, 1,
            "GETs that waited for the blackholed backend"
        );
        assert!(
            proxy.log().contains("ejected"),
            "the blackholed backend is not ejected: {}",
            proxy.log()
        );
        let posts = 4;
        for _ in 0..posts {
            let t = Instant::now();
            c.send(b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi");
            let r = c.read_response("POST").unwrap();
            assert_eq!(r.status, 200);
            assert_eq!(r.text(), "good POST /p\n");
            assert!(
                t.elapsed() < CONNECT_TIMEOUT,
                "a POST waited {:?}",
                t.elapsed()
            );
        }
        assert_eq!(good.requests.load(Ordering::SeqCst), 4 + posts);
        waited = gets_waited;
    }
    // At least one SYN per connect attempt was dropped by the rule, none answered.
    let dropped = hole.dropped();
    assert!(
        dropped >= dropped_alone + waited,
        "{dropped} packets dropped, {dropped_alone} before the retries"
    );
    drop(hole);
    assert!(
        run("nft", &["list", "table", "inet", TABLE], "").is_err(),
        "table left behind"
    );
    good.stop();
    Ok(())
}

#[test]
fn blackholed_backend_in_a_netns_gives_504_at_connect_timeout_and_is_retried() {
    let host_ns = thread_netns();
    let worker = std::thread::spawn(move || {
        let mut ns = String::new();
        let outcome = blackhole_in_netns(&mut ns);
        (outcome, ns)
    });
    let (outcome, ns) = match worker.join() {
        Ok(done) => done,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    if let Err(why) = outcome {
        notice(&format!("skipped: blackholed_backend_in_a_netns: {why}"));
        return;
    }
    assert_ne!(ns, host_ns, "the test did not run in its own namespace");
    // The host namespace never had the table.
    assert!(run("nft", &["list", "table", "inet", TABLE], "").is_err());
    // No thread of this process is left in the namespace: with ringway gone too, the kernel
    // frees it.
    assert!(
        wait_until(Duration::from_secs(5), || threads_in(&ns) == 0),
        "{} threads still in {ns}",
        threads_in(&ns)
    );
}
