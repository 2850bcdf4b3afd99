//! Backends by name against a real DNS server: dnsmasq on loopback, answering from a hosts file
//! the test rewrites (dnsmasq rereads it on SIGHUP), with a TTL of 1 s.
//!
//! - startup resolution ([`resolve_once`]) gives the A and AAAA answers, sorted, TTL clamped;
//!   a name that does not exist is an error naming it;
//! - [`Discovery`] reports a changed set within about the TTL, keeps the last good set while
//!   the name is gone (one warning per episode) and reports the set again when it returns;
//! - `ringway run` resolves a backend name at startup and proxies to it;
//! - stopping is prompt, even with a lookup in flight (a server that never answers; no
//!   dnsmasq needed).
//!
//! Without dnsmasq (Debian/Ubuntu package `dnsmasq-base`), the tests that need it print
//! `skipped: dnsmasq not installed` and pass. dnsmasq is killed however a test ends.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use ringway::discovery::{
    Discovery, DiscoveryError, Name, Resolved, ResolverSettings, resolve_once,
};

use common::*;

/// Prints past the test harness's output capture, so that a skip shows in CI logs.
fn notice(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

// ---------------------------------------------------------------------------------------------
// Logs: the discovery thread logs through tracing; the tests read what it wrote.

static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        LOG.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures ringway's logs (debug and up) for this test binary, once.
fn capture_logs() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("ringway=debug")
            .with_ansi(false)
            .with_writer(|| LogWriter)
            .try_init();
    });
}

/// The captured log lines that contain `needle`.
fn log_lines(needle: &str) -> Vec<String> {
    String::from_utf8_lossy(&LOG.lock().unwrap())
        .lines()
        .filter(|line| line.contains(needle))
        .map(str::to_owned)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// dnsmasq

/// dnsmasq on 127.0.0.1 (UDP and TCP), answering from a hosts file for names under `.test`
/// (NXDOMAIN for the others), TTL 1 s. Killed on drop.
struct Dnsmasq {
    child: Child,
    dir: PathBuf,
    hosts: PathBuf,
    addr: SocketAddr,
}

fn dnsmasq_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join("dnsmasq"))
        .find(|candidate| candidate.is_file())
}

/// A port free on 127.0.0.1 for both UDP and TCP (when the probes ran).
fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = udp.local_addr().expect("udp addr").port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

impl Dnsmasq {
    /// Starts dnsmasq with `hosts` as its hosts file; `None` when dnsmasq is not installed.
    fn start(hosts: &str) -> Option<Dnsmasq> {
        let binary = dnsmasq_binary()?;
        let dir = temp_dir("dnsmasq");
        let hosts_file = dir.join("hosts");
        std::fs::write(&hosts_file, hosts).expect("write hosts");
        // The port was free when probed; another process may take it before dnsmasq binds:
        // then dnsmasq exits at once, and the next port is tried.
        for _ in 0..5 {
            let port = free_port();
            let mut command = Command::new(&binary);
            command.args([
                "--no-daemon",
                "--no-resolv",
                "--no-hosts",
                "--conf-file=/dev/null",
                "--pid-file=",
                "--bind-interfaces",
                "--listen-address=127.0.0.1",
                "--local=/test/",
                "--local-ttl=1",
                "--log-facility=-",
                "--log-queries",
            ]);
            command
                .arg(format!("--port={port}"))
                .arg(format!("--addn-hosts={}", hosts_file.display()));
            // As root, dnsmasq would switch to `nobody`; stay (it needs to read the file).
            // SAFETY: geteuid(2) takes no argument and cannot fail.
            if unsafe { libc::geteuid() } == 0 {
                command.arg("--user=root");
            }
            let log = std::fs::File::create(dir.join("dnsmasq.log")).expect("dnsmasq log");
            let mut child = command
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn dnsmasq");
            std::thread::sleep(Duration::from_millis(100));
            if child.try_wait().expect("dnsmasq status").is_none() {
                return Some(Dnsmasq {
                    child,
                    dir,
                    hosts: hosts_file,
                    addr: SocketAddr::from(([127, 0, 0, 1], port)),
                });
            }
        }
        panic!(
            "dnsmasq would not start: {}",
            std::fs::read_to_string(dir.join("dnsmasq.log")).unwrap_or_default()
        );
    }

    /// Replaces the hosts file and makes dnsmasq read it again.
    fn answer(&self, hosts: &str) {
        let next = self.dir.join("hosts.next");
        std::fs::write(&next, hosts).expect("write hosts");
        std::fs::rename(&next, &self.hosts).expect("replace hosts");
        signal(self.child.id(), "HUP");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dnsmasq.log")).unwrap_or_default()
    }

    /// Settings that ask only this server.
    fn settings(&self) -> ResolverSettings {
        ResolverSettings {
            nameservers: vec![self.addr],
            min_ttl: Duration::from_millis(1200),
            max_ttl: Duration::from_secs(30),
            timeout: Duration::from_secs(1),
        }
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            notice(&format!("dnsmasq's log:\n{}", self.log()));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_dnsmasq(hosts: &str, test: &str) -> Option<Dnsmasq> {
    let dns = Dnsmasq::start(hosts);
    if dns.is_none() {
        notice(&format!(
            "skipped: {test}: dnsmasq not installed (Debian/Ubuntu: apt-get install dnsmasq-base)"
        ));
    }
    dns
}

fn name(text: &str) -> Name {
    text.parse().expect("a name")
}

fn addrs(texts: &[&str]) -> Vec<SocketAddr> {
    texts
        .iter()
        .map(|t| t.parse().expect("an address"))
        .collect()
}

/// `resolve_once` until dnsmasq answers (it may still be starting), at most 5 s.
fn resolve_when_ready(settings: &ResolverSettings, names: &[Name]) -> Vec<Resolved> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match resolve_once(settings, names) {
            Ok(resolved) => return resolved,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => panic!("dnsmasq does not answer: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tests

const APP: &str = "10.1.0.2 app.test\n10.1.0.1 app.test\nfd00::1 app.test\n";

#[test]
fn a_name_is_resolved_followed_and_kept_while_it_is_gone() {
    capture_logs();
    let Some(dns) = start_dnsmasq(APP, "a_name_is_resolved_followed_and_kept_while_it_is_gone")
    else {
        return;
    };
    let settings = dns.settings();
    let app = name("app.test:8080");

    // Startup: both families, sorted; dnsmasq's TTL of 1 s clamped up to min_ttl.
    let resolved = resolve_when_ready(&settings, std::slice::from_ref(&app));
    assert_eq!(
        resolved,
        [Resolved {
            name: app.clone(),
            addrs: addrs(&["10.1.0.1:8080", "10.1.0.2:8080", "[fd00::1]:8080"]),
            ttl: Duration::from_millis(1200),
        }]
    );

    // A name that does not exist is an error naming it.
    match resolve_once(&settings, &[app.clone(), name("missing.test:80")]) {
        Err(e @ DiscoveryError::NoAddress { nxdomain: true, .. }) => assert_eq!(
            e.to_string(),
            "no address for missing.test: the name does not exist (NXDOMAIN)"
        ),
        other => panic!("expected NXDOMAIN for missing.test, got {other:?}"),
    }

    let (tx, changes) = mpsc::channel();
    let discovery = Discovery::spawn(
        settings.clone(),
        resolved,
        Box::new(move |name, addrs| {
            let _ = tx.send((name.clone(), addrs.to_vec(), Instant::now()));
        }),
    )
    .expect("spawn discovery");

    // The same answer: nothing is reported.
    assert!(
        changes.recv_timeout(Duration::from_millis(1500)).is_err(),
        "an unchanged set was reported"
    );

    // A new answer is reported within about the TTL.
    let changed_at = Instant::now();
    dns.answer("10.1.0.3 app.test\nfd00::1 app.test\n");
    let (got, set, when) = changes
        .recv_timeout(Duration::from_secs(5))
        .expect("the change is reported");
    assert_eq!(got, app);
    assert_eq!(set, addrs(&["10.1.0.3:8080", "[fd00::1]:8080"]));
    let after = when - changed_at;
    notice(&format!(
        "dns: a changed answer was reported after {after:?}"
    ));
    assert!(
        after <= settings.min_ttl + Duration::from_millis(1500),
        "reported after {after:?}"
    );

    // The name disappears (NXDOMAIN): the last good set stays, one warning for the episode.
    dns.answer("10.9.9.9 other.test\n");
    let warned = wait_until(Duration::from_secs(5), || {
        !log_lines("no address for app.test").is_empty()
    });
    assert!(warned, "no warning; dnsmasq's log:\n{}", dns.log());
    // At least one more failed lookup (retries start at min_ttl).
    std::thread::sleep(settings.min_ttl * 2);
    let lines = log_lines("no address for app.test");
    let warnings = lines.iter().filter(|l| l.contains("WARN")).count();
    let debug = lines.iter().filter(|l| l.contains("DEBUG")).count();
    assert_eq!(
        warnings,
        1,
        "one warning per episode:\n{}",
        lines.join("\n")
    );
    assert!(
        debug >= 1,
        "further failures at debug:\n{}",
        lines.join("\n")
    );
    assert!(
        lines[0].contains("keeping the addresses 10.1.0.3:8080, [fd00::1]:8080"),
        "{}",
        lines[0]
    );
    assert!(
        changes.try_recv().is_err(),
        "a failed lookup must not report a set"
    );

    // The name comes back with another address: reported, and the recovery logged.
    dns.answer("10.1.0.4 app.test\nfd00::1 app.test\n");
    let (_, set, _) = changes
        .recv_timeout(Duration::from_secs(10))
        .expect("the set after the episode is reported");
    assert_eq!(set, addrs(&["10.1.0.4:8080", "[fd00::1]:8080"]));
    assert_eq!(log_lines("app.test resolves again").len(), 1);

    // Stopping is prompt.
    let stopping = Instant::now();
    discovery.stop();
    let took = stopping.elapsed();
    notice(&format!("dns: Discovery::stop took {took:?}"));
    assert!(took < Duration::from_millis(500), "stop took {took:?}");
}

#[test]
fn stop_abandons_a_lookup_in_flight() {
    capture_logs();
    // A "server" that takes queries and never answers.
    let silent = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let settings = ResolverSettings {
        nameservers: vec![silent.local_addr().expect("addr")],
        timeout: Duration::from_millis(400),
        ..ResolverSettings::default()
    };

    // At startup, no answer is an error naming the host, within the timeout.
    let started = Instant::now();
    let error = resolve_once(&settings, &[name("slow.test:80")]).expect_err("no answer");
    assert!(
        matches!(error, DiscoveryError::Timeout { ref host, .. } if host == "slow.test"),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // A watched name due at once, its lookup (10 s timeout) in flight when stop comes.
    let settings = ResolverSettings {
        timeout: Duration::from_secs(10),
        ..settings
    };
    let discovery = Discovery::spawn(
        settings,
        vec![Resolved {
            name: name("slow.test:80"),
            addrs: addrs(&["10.0.0.1:80"]),
            ttl: Duration::ZERO,
        }],
        Box::new(|_, _| panic!("nothing to report")),
    )
    .expect("spawn discovery");
    let mut buf = [0u8; 512];
    silent
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    silent.recv_from(&mut buf).expect("a query arrives");
    let stopping = Instant::now();
    discovery.stop();
    let took = stopping.elapsed();
    notice(&format!(
        "dns: Discovery::stop with a lookup in flight took {took:?}"
    ));
    assert!(took < Duration::from_millis(500), "stop took {took:?}");
}

#[test]
fn ringway_resolves_a_backend_name_at_startup() {
    let Some(dns) = start_dnsmasq(
        "127.0.0.1 backend.test\n",
        "ringway_resolves_a_backend_name_at_startup",
    ) else {
        return;
    };
    resolve_when_ready(&dns.settings(), &[name("backend.test:1")]);
    let b = Backend::start("b1");
    let target = format!("backend.test:{}", b.addr.port());
    let proxy = Proxy::start_with(
        &[],
        ProxyOptions {
            extra: format!(
                "[resolver]\nnameservers = [\"{}\"]\n[[upstream]]\nname = \"app\"\nbackends = \
                 [\"{target}\"]\n",
                dns.addr
            ),
            listener: Some("upstream = \"app\"".into()),
            ..ProxyOptions::default()
        },
    );
    let mut c = proxy.client();
    let r = c.get("/by-name");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "b1 GET /by-name\n");
    let log = proxy.log();
    assert!(
        log.contains(&format!("{target} resolves to {}", b.addr)),
        "{log}"
    );
    assert!(log.contains(&format!("backends={}", b.addr)), "{log}");
}

#[test]
fn ringway_follows_a_changed_answer_and_keeps_the_last_good_one() {
    let Some(dns) = start_dnsmasq(
        "127.0.0.1 app.test\n",
        "ringway_follows_a_changed_answer_and_keeps_the_last_good_one",
    ) else {
        return;
    };
    resolve_when_ready(&dns.settings(), &[name("app.test:1")]);
    let one = Backend::start("one");
    let two = Backend::start_on("two", SocketAddr::from(([127, 0, 0, 2], one.addr.port())));
    let proxy = Proxy::start_with(
        &[],
        ProxyOptions {
            extra: format!(
                "[resolver]\nnameservers = [\"{}\"]\nmin_ttl = \"1s\"\nmax_ttl = \"2s\"\n\
                 [[upstream]]\nname = \"app\"\nbackends = [\"app.test:{}\"]\n",
                dns.addr,
                one.addr.port()
            ),
            listener: Some("upstream = \"app\"".into()),
            ..ProxyOptions::default()
        },
    );
    let backend = |proxy: &Proxy| {
        let r = proxy.client().get("/");
        assert_eq!(r.status, 200, "{}", r.text());
        r.header("x-backend").unwrap_or("?").to_string()
    };
    assert_eq!(backend(&proxy), "one");

    // The answer changes: within the TTL (bounded by max_ttl), the backend follows.
    dns.answer("127.0.0.2 app.test\n");
    assert!(
        wait_until(Duration::from_secs(10), || proxy
            .log()
            .contains("backend addresses changed")),
        "{}",
        proxy.log()
    );
    let line = proxy
        .log()
        .lines()
        .find(|l| l.contains("backend addresses changed"))
        .map(str::to_string)
        .unwrap_or_default();
    assert!(
        line.contains(&format!("backends added: app/{}", two.addr)),
        "{line}"
    );
    assert!(
        line.contains(&format!("backends removed: app/{}", one.addr)),
        "{line}"
    );
    let before = one.received().len();
    for _ in 0..10 {
        assert_eq!(backend(&proxy), "two");
    }
    assert_eq!(
        one.received().len(),
        before,
        "nothing more to the removed address"
    );

    // The name disappears: the last good set stays.
    dns.answer("");
    std::thread::sleep(Duration::from_secs(3));
    for _ in 0..5 {
        assert_eq!(backend(&proxy), "two");
    }
}
