//! Load balancing end to end: policies, active health checks, passive outlier ejection, slow
//! start, backup backends, routing by Host and path, and the 503 when nothing is healthy.
//! Real ringway process, real TLS client, real backend sockets that can be broken on purpose.

mod common;

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// A backend whose behaviour the test changes while it runs: the status of its `/health`
/// answer, the status and delay of every other answer, and whether it is up at all (a killed
/// backend closes its listener and every open connection, so connecting is refused).
struct Ctl {
    addr: SocketAddr,
    name: String,
    /// Status answered on `/health`.
    health: Arc<AtomicU16>,
    /// Status answered on every other path.
    status: Arc<AtomicU16>,
    /// Delay before answering a non-health request.
    delay_ms: Arc<AtomicU64>,
    /// Non-health requests answered, in total.
    hits: Arc<AtomicUsize>,
    /// Health requests answered.
    checks: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Ctl {
    fn start(name: &str) -> Ctl {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let ctl = Ctl {
            addr,
            name: name.to_string(),
            health: Arc::new(AtomicU16::new(200)),
            status: Arc::new(AtomicU16::new(200)),
            delay_ms: Arc::new(AtomicU64::new(0)),
            hits: Arc::new(AtomicUsize::new(0)),
            checks: Arc::new(AtomicUsize::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
            conns: Arc::new(Mutex::new(Vec::new())),
        };
        ctl.serve(listener);
        ctl
    }

    /// Accepts on `listener` until the backend is killed.
    fn serve(&self, listener: TcpListener) {
        listener.set_nonblocking(true).unwrap();
        let (name, health, status, delay, hits, checks, stop, conns) = (
            self.name.clone(),
            self.health.clone(),
            self.status.clone(),
            self.delay_ms.clone(),
            self.hits.clone(),
            self.checks.clone(),
            self.stop.clone(),
            self.conns.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let stream = match listener.accept() {
                    Ok((s, _)) => s,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(2));
                        continue;
                    }
                };
                stream.set_nonblocking(false).unwrap();
                stream.set_nodelay(true).unwrap();
                conns.lock().unwrap().push(stream.try_clone().unwrap());
                let (name, health, status, delay, hits, checks) = (
                    name.clone(),
                    health.clone(),
                    status.clone(),
                    delay.clone(),
                    hits.clone(),
                    checks.clone(),
                );
                std::thread::spawn(move || {
                    let mut writer = stream.try_clone().unwrap();
                    let mut reader = BufReader::new(stream);
                    while let Ok(Some(req)) = read_request(&mut reader) {
                        let code = if req.path == "/health" {
                            checks.fetch_add(1, Ordering::SeqCst);
                            health.load(Ordering::SeqCst)
                        } else {
                            let ms = delay.load(Ordering::SeqCst);
                            if ms > 0 {
                                std::thread::sleep(Duration::from_millis(ms));
                            }
                            hits.fetch_add(1, Ordering::SeqCst);
                            status.load(Ordering::SeqCst)
                        };
                        let body = format!("{name} {}\n", req.path);
                        let response = format!(
                            "HTTP/1.1 {code} X\r\nX-Backend: {name}\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        // One write: several small ones would wait on delayed ACKs.
                        if writer.write_all(response.as_bytes()).is_err() {
                            break;
                        }
                    }
                });
            }
            // Killed: the listener closes when this thread returns.
        });
    }

    /// Stops accepting (connections are refused) and closes every open connection.
    fn kill(&self) {
        self.stop.store(true, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
        // The accept loop notices within a few milliseconds; wait until the port refuses.
        assert!(wait_until(Duration::from_secs(2), || {
            TcpStream::connect(self.addr).is_err()
        }));
    }

    /// Listens again on the same address after [`Ctl::kill`].
    fn revive(&self) {
        let listener = TcpListener::bind(self.addr).expect("rebind the backend port");
        self.stop.store(false, Ordering::SeqCst);
        self.serve(listener);
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// `[[upstream]]` TOML for `backends` with `body` (policy, health check...) added.
fn upstream(name: &str, backends: &[&Ctl], body: &str) -> String {
    let list: Vec<String> = backends.iter().map(|b| format!("\"{}\"", b.addr)).collect();
    format!(
        "[[upstream]]\nname = \"{name}\"\nbackends = [{}]\n{body}\n",
        list.join(", ")
    )
}

/// A fast HTTP health check on `/health`: every 100 ms, down after 2 failures, up after 2 passes.
const FAST_CHECK: &str = "[upstream.health_check]\ntype = \"http\"\npath = \"/health\"\n\
interval = \"100ms\"\njitter = \"0ms\"\ntimeout = \"80ms\"\nrise = 2\nfall = 2\n";

fn start(upstreams: String, listener: &str) -> Proxy {
    Proxy::start_with(
        &[],
        ProxyOptions {
            extra: upstreams,
            listener: Some(listener.to_string()),
            ..Default::default()
        },
    )
}

/// Which backend answered each of `n` GETs of `path` on one connection.
fn spread(proxy: &Proxy, n: usize, path: &str) -> Vec<String> {
    let mut c = proxy.client();
    (0..n)
        .map(|_| {
            let r = c.get(path);
            assert_eq!(r.status, 200, "{}", r.text());
            r.header("x-backend").unwrap().to_string()
        })
        .collect()
}

fn count(names: &[String], name: &str) -> usize {
    names.iter().filter(|n| *n == name).count()
}

/// Waits until the proxy has logged `needle` (e.g. a health transition).
fn wait_log(proxy: &Proxy, needle: &str) {
    assert!(
        wait_until(Duration::from_secs(5), || proxy.log().contains(needle)),
        "no {needle:?} in the log:\n{}",
        proxy.log()
    );
}

#[test]
fn weighted_round_robin_interleaves_5_1_1() {
    let (a, b, c) = (Ctl::start("a"), Ctl::start("b"), Ctl::start("c"));
    let ups = format!(
        "[[upstream]]\nname = \"app\"\npolicy = \"weighted_round_robin\"\n\
         [[upstream.backend]]\naddress = \"{}\"\nweight = 5\n\
         [[upstream.backend]]\naddress = \"{}\"\nweight = 1\n\
         [[upstream.backend]]\naddress = \"{}\"\nweight = 1\n",
        a.addr, b.addr, c.addr
    );
    let proxy = start(ups, "upstream = \"app\"");
    let names = spread(&proxy, 70, "/");
    assert_eq!(
        (count(&names, "a"), count(&names, "b"), count(&names, "c")),
        (50, 10, 10)
    );
    // Smooth: b and c are spread among the a's (a a b a c a a, over and over), never a burst
    // of five a's.
    let longest_a_run = names
        .split(|n| n != "a")
        .map(|run| run.len())
        .max()
        .unwrap();
    assert_eq!(longest_a_run, 4, "{names:?}");
    for cycle in names.chunks(7) {
        let (b, c) = (count(cycle, "b"), count(cycle, "c"));
        assert_eq!((b, c), (1, 1), "{names:?}");
    }
}

#[test]
fn round_robin_ignores_weights() {
    let (a, b) = (Ctl::start("a"), Ctl::start("b"));
    let ups = format!(
        "[[upstream]]\nname = \"app\"\n\
         [[upstream.backend]]\naddress = \"{}\"\nweight = 9\n\
         [[upstream.backend]]\naddress = \"{}\"\n",
        a.addr, b.addr
    );
    let proxy = start(ups, "upstream = \"app\"");
    let names = spread(&proxy, 10, "/");
    assert_eq!((count(&names, "a"), count(&names, "b")), (5, 5));
}

#[test]
fn least_connections_skews_away_from_a_slow_backend() {
    let (fast, slow) = (Ctl::start("fast"), Ctl::start("slow"));
    slow.delay_ms.store(300, Ordering::SeqCst);
    let proxy = start(
        upstream("app", &[&fast, &slow], "policy = \"least_connections\""),
        "upstream = \"app\"",
    );
    // Eight clients in parallel for a while: the slow backend keeps requests in flight, so
    // least-connections sends most new requests to the fast one.
    let deadline = Instant::now() + Duration::from_millis(1500);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let mut c = proxy.client();
            std::thread::spawn(move || {
                while Instant::now() < deadline {
                    assert_eq!(c.get("/").status, 200);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let (f, s) = (fast.hits(), slow.hits());
    // Round robin would give the slow backend half of the requests; here it gets a few.
    assert!(f > 10 * s, "fast {f} slow {s}");
    assert!(
        s >= 1,
        "the slow backend still gets tried: fast {f} slow {s}"
    );
}

#[test]
fn peak_ewma_prefers_the_fast_backend() {
    let (fast, slow) = (Ctl::start("fast"), Ctl::start("slow"));
    slow.delay_ms.store(50, Ordering::SeqCst);
    let proxy = start(
        upstream("app", &[&fast, &slow], "policy = \"peak_ewma\""),
        "upstream = \"app\"",
    );
    // One request at a time: in-flight counts are equal, only the latency tells them apart.
    let names = spread(&proxy, 100, "/");
    let (f, s) = (count(&names, "fast"), count(&names, "slow"));
    assert!(f >= 80, "fast {f} slow {s}");
}

#[test]
fn random_uses_every_backend_by_weight() {
    let (a, b) = (Ctl::start("a"), Ctl::start("b"));
    let ups = format!(
        "[[upstream]]\nname = \"app\"\npolicy = \"random\"\n\
         [[upstream.backend]]\naddress = \"{}\"\nweight = 3\n\
         [[upstream.backend]]\naddress = \"{}\"\nweight = 1\n",
        a.addr, b.addr
    );
    let proxy = start(ups, "upstream = \"app\"");
    let names = spread(&proxy, 400, "/");
    let share_a = count(&names, "a") as f64 / 400.0;
    assert!((0.65..=0.85).contains(&share_a), "a got {share_a}");
}

#[test]
fn consistent_hash_by_header_is_sticky_across_connections_and_workers() {
    let backends: Vec<Ctl> = (0..4).map(|i| Ctl::start(&format!("b{i}"))).collect();
    let refs: Vec<&Ctl> = backends.iter().collect();
    let ups = upstream(
        "app",
        &refs,
        "policy = \"consistent_hash\"\nhash = \"header:X-User\"",
    );
    let proxy = Proxy::start_with(
        &[],
        ProxyOptions {
            workers: 2,
            extra: ups,
            listener: Some("upstream = \"app\"".into()),
            ..Default::default()
        },
    );
    let ask = |user: &str| -> String {
        // A new connection each time: it may land on either worker.
        let mut c = proxy.client();
        c.send(format!("GET / HTTP/1.1\r\nHost: localhost\r\nX-User: {user}\r\n\r\n").as_bytes());
        let r = c.read_response("GET").unwrap();
        assert_eq!(r.status, 200);
        r.header("x-backend").unwrap().to_string()
    };
    let mut first: HashMap<String, String> = HashMap::new();
    for round in 0..3 {
        for u in 0..40 {
            let user = format!("user-{u}");
            let got = ask(&user);
            if round == 0 {
                first.insert(user, got);
            } else {
                assert_eq!(first[&user], got, "{user} moved");
            }
        }
    }
    let used: std::collections::HashSet<_> = first.values().collect();
    assert!(used.len() >= 3, "40 users spread over {used:?}");
}

#[test]
fn consistent_hash_moves_only_the_keys_of_a_backend_that_goes_down() {
    let backends: Vec<Ctl> = (0..4).map(|i| Ctl::start(&format!("b{i}"))).collect();
    let refs: Vec<&Ctl> = backends.iter().collect();
    let ups = upstream(
        "app",
        &refs,
        &format!("policy = \"consistent_hash\"\nhash = \"cookie:sid\"\n{FAST_CHECK}"),
    );
    let proxy = start(ups, "upstream = \"app\"");
    let ask = |sid: usize| -> String {
        let mut c = proxy.client();
        c.send(
            format!("GET / HTTP/1.1\r\nHost: localhost\r\nCookie: a=1; sid={sid}; z=2\r\n\r\n")
                .as_bytes(),
        );
        let r = c.read_response("GET").unwrap();
        assert_eq!(r.status, 200);
        r.header("x-backend").unwrap().to_string()
    };
    let before: Vec<String> = (0..60).map(ask).collect();
    backends[1].health.store(503, Ordering::SeqCst);
    wait_log(&proxy, "backend down");
    let after: Vec<String> = (0..60).map(ask).collect();
    for (sid, (b, a)) in before.iter().zip(&after).enumerate() {
        if b == "b1" {
            assert_ne!(a, "b1", "sid {sid} still on the down backend");
        } else {
            assert_eq!(a, b, "sid {sid} moved although its backend is up");
        }
    }
}

#[test]
fn health_check_takes_a_backend_out_after_fall_and_back_after_rise() {
    let (a, b) = (Ctl::start("a"), Ctl::start("b"));
    let proxy = start(upstream("app", &[&a, &b], FAST_CHECK), "upstream = \"app\"");
    let names = spread(&proxy, 10, "/");
    assert_eq!(count(&names, "b"), 5);

    b.health.store(500, Ordering::SeqCst);
    wait_log(&proxy, "backend down");
    let line = proxy
        .log()
        .lines()
        .find(|l| l.contains("backend down"))
        .unwrap()
        .to_string();
    assert!(line.contains(&b.addr.to_string()), "{line}");
    let hits_b = b.hits();
    let names = spread(&proxy, 20, "/");
    assert_eq!(count(&names, "a"), 20);
    assert_eq!(b.hits(), hits_b, "a backend marked down got traffic");
    // Checks are run once per pool, not once per worker: ~10 per second here.
    let checks = b.checks.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(1000));
    let per_second = b.checks.load(Ordering::SeqCst) - checks;
    assert!((5..=15).contains(&per_second), "{per_second} checks/s");

    b.health.store(200, Ordering::SeqCst);
    wait_log(&proxy, "backend up");
    let names = spread(&proxy, 10, "/");
    assert!(count(&names, "b") >= 4, "{names:?}");
}

#[test]
fn checks_are_run_once_per_pool_not_per_worker() {
    let a = Ctl::start("a");
    let proxy = Proxy::start_with(
        &[],
        ProxyOptions {
            workers: 2,
            extra: upstream("app", &[&a], FAST_CHECK),
            listener: Some("upstream = \"app\"".into()),
            ..Default::default()
        },
    );
    assert_eq!(proxy.client().get("/").status, 200);
    let before = a.checks.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(1000));
    let per_second = a.checks.load(Ordering::SeqCst) - before;
    assert!((5..=15).contains(&per_second), "{per_second} checks/s");
}

#[test]
fn all_backends_down_is_an_immediate_503_with_retry_after_then_traffic_returns() {
    let a = Ctl::start("a");
    let proxy = start(upstream("app", &[&a], FAST_CHECK), "upstream = \"app\"");
    a.health.store(503, Ordering::SeqCst);
    wait_log(&proxy, "backend down");
    let hits = a.hits();
    let mut c = proxy.client();
    let t = Instant::now();
    let r = c.get("/");
    assert_eq!(r.status, 503);
    assert!(
        t.elapsed() < Duration::from_millis(200),
        "{:?}",
        t.elapsed()
    );
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After: {retry}");
    assert_eq!(a.hits(), hits, "a request reached a backend marked down");
    // The connection stays usable: a 503 for "nothing healthy" is not a framing error.
    a.health.store(200, Ordering::SeqCst);
    wait_log(&proxy, "backend up");
    assert_eq!(c.get("/").status, 200);
}

#[test]
fn in_flight_requests_finish_when_their_backend_is_marked_down() {
    let a = Ctl::start("a");
    a.delay_ms.store(600, Ordering::SeqCst);
    let proxy = start(upstream("app", &[&a], FAST_CHECK), "upstream = \"app\"");
    let mut c = proxy.client();
    c.send(b"GET /slow HTTP/1.1\r\nHost: localhost\r\n\r\n");
    std::thread::sleep(Duration::from_millis(50));
    a.health.store(500, Ordering::SeqCst);
    let r = c.read_response("GET").unwrap();
    assert_eq!(r.status, 200);
    assert!(proxy.log().contains("backend down"), "{}", proxy.log());
}

#[test]
fn a_backend_killed_under_load_costs_no_client_errors() {
    let (a, b) = (Ctl::start("a"), Ctl::start("b"));
    let proxy = start(upstream("app", &[&a, &b], FAST_CHECK), "upstream = \"app\"");
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let mut c = proxy.client();
            let (stop, served) = (stop.clone(), served.clone());
            std::thread::spawn(move || {
                let mut errors = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let r = c.get("/");
                    if r.status != 200 {
                        errors.push(r.status);
                    }
                    served.fetch_add(1, Ordering::SeqCst);
                }
                errors
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    b.kill();
    wait_log(&proxy, "backend down");
    let hits_b = b.hits();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    let errors: Vec<u16> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert!(served.load(Ordering::SeqCst) > 100);
    assert_eq!(
        errors,
        Vec::<u16>::new(),
        "GETs are retried on the live backend"
    );
    assert_eq!(b.hits(), hits_b);

    // Back after `rise` passing checks.
    b.revive();
    wait_log(&proxy, "backend up");
    let names = spread(&proxy, 10, "/");
    assert!(count(&names, "b") >= 4, "{names:?}");
}

#[test]
fn outlier_ejection_on_5xx_and_return_after_the_backoff() {
    let (a, b) = (Ctl::start("a"), Ctl::start("b"));
    let proxy = start(
        upstream(
            "app",
            &[&a, &b],
            "[upstream.outlier]\nconsecutive_5xx = 3\nbase_ejection = \"1s\"\nmax_ejection = \"10s\"",
        ),
        "upstream = \"app\"",
    );
    b.status.store(500, Ordering::SeqCst);
    let mut c = proxy.client();
    let mut fives = 0;
    for _ in 0..20 {
        if c.get("/").status == 500 {
            fives += 1;
        }
    }
    // The 5xx answers are relayed as they are, until the third one ejects the backend.
    assert_eq!(fives, 3);
    assert_eq!(b.hits(), 3);
    wait_log(&proxy, "ejected");
    b.status.store(200, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(1100));
    let names = spread(&proxy, 10, "/");
    assert!(
        count(&names, "b") >= 4,
        "b is back after its ejection: {names:?}"
    );
}

#[test]
fn outlier_ejection_backoff_grows_while_the_backend_keeps_failing() {
    let (a, b) = (Ctl::start("a"), Ctl::start("b"));
    let proxy = start(
        upstream(
            "app",
            &[&a, &b],
            "[upstream.outlier]\nconsecutive_failures = 1\nbase_ejection = \"300ms\"\nmax_ejection = \"10s\"",
        ),
        "upstream = \"app\"",
    );
    b.kill();
    let mut c = proxy.client();
    // Each GET that meets the dead backend is retried on `a`: no client error.
    let deadline = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < deadline {
        assert_eq!(c.get("/").status, 200);
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = proxy.log();
    let ejections: Vec<&str> = log.lines().filter(|l| l.contains("ejected")).collect();
    // 300 ms, then 600 ms, then 1.2 s: two or three ejections in 1.5 s, each longer.
    assert!((2..=3).contains(&ejections.len()), "{log}");
    assert!(ejections[0].contains("300ms"), "{}", ejections[0]);
    assert!(ejections[1].contains("600ms"), "{}", ejections[1]);
}

#[test]
fn slow_start_ramps_a_returning_backend() {
    let (a, b) = (Ctl::start("a"), Ctl::start("b"));
    let proxy = start(
        upstream(
            "app",
            &[&a, &b],
            &format!("slow_start = \"3s\"\n{FAST_CHECK}"),
        ),
        "upstream = \"app\"",
    );
    b.health.store(500, Ordering::SeqCst);
    wait_log(&proxy, "backend down");
    b.health.store(200, Ordering::SeqCst);
    wait_log(&proxy, "backend up");
    // Right after it returns, b gets a small share (10 % rising), not half at once.
    let early = spread(&proxy, 40, "/");
    let share_early = count(&early, "b");
    assert!((1..=10).contains(&share_early), "early {early:?}");
    std::thread::sleep(Duration::from_millis(3100));
    let late = spread(&proxy, 40, "/");
    assert_eq!(count(&late, "b"), 20, "late {late:?}");
}

#[test]
fn backups_serve_only_when_no_primary_is_up() {
    let (a, backup) = (Ctl::start("a"), Ctl::start("backup"));
    let ups = format!(
        "[[upstream]]\nname = \"app\"\n\
         [[upstream.backend]]\naddress = \"{}\"\n\
         [[upstream.backend]]\naddress = \"{}\"\nbackup = true\n{FAST_CHECK}",
        a.addr, backup.addr
    );
    let proxy = start(ups, "upstream = \"app\"");
    let names = spread(&proxy, 6, "/");
    assert_eq!(count(&names, "a"), 6);
    a.health.store(500, Ordering::SeqCst);
    wait_log(&proxy, "backend down");
    let names = spread(&proxy, 6, "/");
    assert_eq!(count(&names, "backup"), 6);
    a.health.store(200, Ordering::SeqCst);
    wait_log(&proxy, "backend up");
    let names = spread(&proxy, 6, "/");
    assert_eq!(count(&names, "a"), 6);
}

#[test]
fn max_connections_caps_concurrent_requests_to_a_backend() {
    let (a, b) = (Ctl::start("a"), Ctl::start("b"));
    a.delay_ms.store(400, Ordering::SeqCst);
    b.delay_ms.store(400, Ordering::SeqCst);
    let ups = format!(
        "[[upstream]]\nname = \"app\"\n\
         [[upstream.backend]]\naddress = \"{}\"\nmax_connections = 1\n\
         [[upstream.backend]]\naddress = \"{}\"\nmax_connections = 1\n",
        a.addr, b.addr
    );
    let proxy = start(ups, "upstream = \"app\"");
    let threads: Vec<_> = (0..3)
        .map(|i| {
            let mut c = proxy.client();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(30 * i));
                let r = c.get("/");
                (r.status, r.header("retry-after").map(str::to_string))
            })
        })
        .collect();
    let mut got: Vec<(u16, Option<String>)> =
        threads.into_iter().map(|t| t.join().unwrap()).collect();
    got.sort();
    assert_eq!(got[0].0, 200);
    assert_eq!(got[1].0, 200);
    assert_eq!(got[2].0, 503, "{got:?}");
    assert!(got[2].1.is_some(), "{got:?}");
    assert_eq!(a.hits() + b.hits(), 2);
}

#[test]
fn routes_by_host_and_path_first_match_wins() {
    let (api, web, stat, def) = (
        Ctl::start("api"),
        Ctl::start("web"),
        Ctl::start("static"),
        Ctl::start("default"),
    );
    let ups = [
        upstream("api", &[&api], ""),
        upstream("web", &[&web], ""),
        upstream("static", &[&stat], ""),
        upstream("fallback", &[&def], ""),
    ]
    .concat();
    let listener = "upstream = \"fallback\"\n\
        [[listener.route]]\nhost = \"api.example.com\"\nupstream = \"api\"\n\
        [[listener.route]]\npath_prefix = \"/static/\"\nupstream = \"static\"\n\
        [[listener.route]]\nhost = \"*.example.com\"\nupstream = \"web\"\n";
    let proxy = start(ups, listener);
    let mut c = proxy.client();
    let mut ask = |host: &str, path: &str| -> String {
        c.send(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes());
        let r = c.read_response("GET").unwrap();
        assert_eq!(r.status, 200);
        r.header("x-backend").unwrap().to_string()
    };
    assert_eq!(ask("api.example.com", "/static/x.css"), "api");
    assert_eq!(ask("API.Example.COM:8443", "/"), "api");
    assert_eq!(ask("www.example.com", "/static/x.css"), "static");
    assert_eq!(ask("www.example.com", "/index.html"), "web");
    assert_eq!(ask("a.b.example.com", "/"), "web");
    assert_eq!(ask("example.com", "/"), "default");
    assert_eq!(ask("other.test", "/static"), "default");
    assert_eq!(api.hits(), 2);
}

#[test]
fn unknown_host_without_default_is_404_or_421_when_sni_disagrees() {
    let api = Ctl::start("api");
    let listener = "[[listener.route]]\nhost = \"localhost\"\nupstream = \"api\"\n";
    let proxy = start(upstream("api", &[&api], ""), listener);

    // SNI localhost, Host localhost: routed.
    let mut c = proxy.client();
    assert_eq!(c.get("/").status, 200);

    // SNI localhost, Host elsewhere: misdirected.
    c.send(b"GET / HTTP/1.1\r\nHost: elsewhere.test\r\n\r\n");
    let r = c.read_response("GET").unwrap();
    assert_eq!(r.status, 421);

    // No SNI, unknown Host: not found.
    let mut c = Client::connect(proxy.addr, None);
    c.send(b"GET / HTTP/1.1\r\nHost: elsewhere.test\r\n\r\n");
    let r = c.read_response("GET").unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(r.text(), "404 Not Found\n");
    // The connection stays usable; a HEAD gets the head alone.
    c.send(b"HEAD / HTTP/1.1\r\nHost: elsewhere.test\r\n\r\n");
    let r = c.read_response("HEAD").unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-length"), Some("14"));
    assert_eq!(c.get("/").status, 200);
    assert!(c.pending().is_empty());
    assert_eq!(api.hits(), 2, "nothing unrouted reached a backend");
}

#[test]
fn a_passing_health_check_ends_an_ejection_early() {
    let (a, b) = (Ctl::start("a"), Ctl::start("b"));
    let proxy = start(
        upstream(
            "app",
            &[&a, &b],
            &format!(
                "{FAST_CHECK}[upstream.outlier]\nconsecutive_5xx = 2\nbase_ejection = \"60s\"\n\
                 max_ejection = \"60s\"\n"
            ),
        ),
        "upstream = \"app\"",
    );
    // b fails both requests and checks (so no passing check lifts the ejection too early).
    b.status.store(500, Ordering::SeqCst);
    b.health.store(500, Ordering::SeqCst);
    let mut c = proxy.client();
    let fives = (0..8).filter(|_| c.get("/").status == 500).count();
    assert_eq!(fives, 2);
    wait_log(&proxy, "ejected for 60s");
    // Fixed: passing checks end the 60 s ejection long before it would lapse.
    b.status.store(200, Ordering::SeqCst);
    b.health.store(200, Ordering::SeqCst);
    let back = wait_until(Duration::from_secs(3), || {
        spread(&proxy, 4, "/").iter().any(|n| n == "b")
    });
    assert!(back, "b still ejected:\n{}", proxy.log());
}
