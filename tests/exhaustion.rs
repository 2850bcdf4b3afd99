//! Exhaustion and hostile clients: descriptor exhaustion, the per-worker connection cap,
//! handshake floods, idle connection memory, slow bodies and slow readers, half-close, and
//! client disconnects mid-upload.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

/// CPU time (user + system, in clock ticks) the process has used.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
    let stime: u64 = fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    utime + stime
}

#[test]
fn connection_cap_refuses_cleanly_beyond_the_limit() {
    let b = Backend::start("b");
    let proxy = Proxy::start_with(
        &[b.addr],
        ProxyOptions {
            extra: "[limits]\nconnections_per_worker = 3\n".into(),
            ..ProxyOptions::default()
        },
    );
    let mut held: Vec<Client> = (0..3).map(|_| proxy.client()).collect();
    for c in &mut held {
        assert_eq!(c.get("/").status, 200);
    }
    // The fourth is closed at once, before any TLS byte.
    let mut extra = TcpStream::connect(proxy.addr).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 16];
    assert!(matches!(extra.read(&mut buf), Ok(0) | Err(_)));
    // Held connections keep working, and a slot frees when one closes.
    assert_eq!(held[0].get("/").status, 200);
    held.pop();
    assert!(wait_until(Duration::from_secs(5), || {
        std::panic::catch_unwind(|| proxy.client().get("/").status == 200).unwrap_or(false)
    }));
}

/// Starts ringway with a hard open-files limit of `nofile`.
fn start_with_nofile(
    backend: std::net::SocketAddr,
    nofile: u64,
) -> (
    std::process::Child,
    std::net::SocketAddr,
    std::path::PathBuf,
) {
    let dir = temp_dir("emfile");
    let cert = write_cert(&dir, "c", &["localhost"]);
    let config = dir.join("ringway.toml");
    std::fs::write(
        &config,
        format!(
            "workers = 1\n[limits]\nconnections_per_worker = 100000\n[[listener]]\naddress = \"127.0.0.1:0\"\n\
             backends = [\"{backend}\"]\n[[listener.certificate]]\ncert = \"{}\"\nkey = \"{}\"\n",
            cert.cert.display(),
            cert.key.display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringway"));
    cmd.args(["run", "--config"])
        .arg(&config)
        .stderr(Stdio::piped())
        .stdout(Stdio::null());
    // SAFETY: the closure only calls setrlimit, which is async-signal-safe, between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: nofile,
                rlim_max: nofile,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("ringway started") {
                let _ = tx.send(line.clone());
            }
        }
    });
    let line = rx.recv_timeout(Duration::from_secs(20)).expect("startup");
    let addr = parse_listen(&line).unwrap();
    (child, addr, dir)
}

#[test]
fn emfile_on_accept_neither_spins_nor_stops_accepting() {
    let b = Backend::start("b");
    let (mut child, addr, dir) = start_with_nofile(b.addr, 64);
    // Fill the descriptor table with idle connections (and the backlog beyond it).
    let mut held = Vec::new();
    for _ in 0..120 {
        if let Ok(s) = TcpStream::connect(addr) {
            held.push(s);
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let before = cpu_ticks(child.id());
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks(child.id()) - before;
    // A busy accept loop would burn ~200 ticks in 2 s; backing off costs a handful.
    assert!(
        used < 40,
        "ringway used {used} ticks in 2 s while out of descriptors"
    );
    // Free the descriptors: accepting resumes and a real client is served.
    drop(held);
    let served = wait_until(Duration::from_secs(10), || {
        std::panic::catch_unwind(|| Client::connect(addr, Some("localhost")).get("/").status == 200)
            .unwrap_or(false)
    });
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(dir);
    assert!(
        served,
        "accepting did not resume after descriptors were freed"
    );
}

#[test]
fn handshake_flood_does_not_stop_service() {
    let b = Backend::start("b");
    let proxy = Proxy::start_with(
        &[b.addr],
        ProxyOptions {
            extra: "[timeouts]\nhandshake = \"2s\"\n".into(),
            ..ProxyOptions::default()
        },
    );
    // A thousand half-open handshakes: a partial ClientHello, then silence.
    let mut flood = Vec::new();
    for _ in 0..1000 {
        let mut s = TcpStream::connect(proxy.addr).unwrap();
        let _ = s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00]);
        flood.push(s);
    }
    let t = Instant::now();
    let mut c = proxy.client();
    assert_eq!(c.get("/").status, 200);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    // The stalled ones are closed at the handshake timeout.
    assert!(wait_until(Duration::from_secs(10), || proxy.open_fds() < 100));
}

#[test]
fn idle_connections_have_bounded_memory_and_are_reclaimed() {
    const N: usize = 300;
    let b = Backend::start("b");
    let proxy = Proxy::start_with(
        &[b.addr],
        ProxyOptions {
            extra: "[timeouts]\nkeepalive = \"10s\"\n".into(),
            ..ProxyOptions::default()
        },
    );
    let mut warm = proxy.client();
    assert_eq!(warm.get("/").status, 200);
    drop(warm);
    std::thread::sleep(Duration::from_millis(200));
    let base_rss = proxy.rss_kib();
    let base_fds = proxy.open_fds();
    let mut idle = Vec::with_capacity(N);
    for _ in 0..N {
        let mut c = proxy.client();
        assert_eq!(c.get("/").status, 200);
        idle.push(c);
    }
    // All of them are still open (none reached the keep-alive timeout yet).
    assert!(proxy.open_fds() >= base_fds + N, "connections closed early");
    let per_conn = (proxy.rss_kib().saturating_sub(base_rss)) * 1024 / N as u64;
    eprintln!("idle TLS keep-alive connection: {per_conn} bytes of proxy RSS");
    assert!(per_conn < 32 * 1024, "{per_conn} bytes per idle connection");
    // The keep-alive timeout reclaims them all.
    assert!(wait_until(Duration::from_secs(20), || proxy.open_fds() <= base_fds + 2));
    for c in &mut idle {
        assert!(c.is_closed());
    }
}

#[test]
fn slow_body_is_cut_at_the_body_timeout_with_408() {
    let b = Backend::start("b");
    let proxy = Proxy::start_with(
        &[b.addr],
        ProxyOptions {
            extra: "[timeouts]\nbody = \"500ms\"\n".into(),
            ..ProxyOptions::default()
        },
    );
    let mut slow = proxy.client();
    slow.send(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nonly a little");
    let t = Instant::now();
    let mut good = proxy.client();
    assert_eq!(good.get("/").status, 200);
    let r = slow.read_response("POST").unwrap();
    assert_eq!(r.status, 408);
    assert!(t.elapsed() < Duration::from_secs(3));
    assert!(slow.is_closed());
}

#[test]
fn slow_reader_is_cut_and_others_are_served() {
    let b = Backend::with_handler(
        "big",
        Arc::new(|_, s| {
            let len = 64 * 1024 * 1024;
            write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n")?;
            let block = vec![b'x'; 64 * 1024];
            for _ in 0..len / block.len() {
                s.write_all(&block)?;
            }
            Ok(Keep::Open)
        }),
    );
    let proxy = Proxy::start_with(
        &[b.addr],
        ProxyOptions {
            extra: "[timeouts]\nbody = \"1s\"\n".into(),
            ..ProxyOptions::default()
        },
    );
    let base = proxy.rss_kib();
    let mut reader = proxy.client();
    reader.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    // Never read: the proxy's writes stall once the socket buffers fill.
    std::thread::sleep(Duration::from_millis(300));
    let mut good = proxy.client();
    good.send(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(good.read_response("HEAD").unwrap().status, 200);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        proxy.rss_kib() < base + 16 * 1024,
        "memory grew while a reader stalled"
    );
    // The stalled connection was closed: reading now drains what was buffered, then ends.
    reader
        .tls
        .sock
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut total = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match reader.tls.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
    assert!(
        total < 64 * 1024 * 1024,
        "the whole body was delivered to a stalled reader"
    );
}

#[test]
fn half_close_after_a_full_request_still_gets_the_response() {
    let b = Backend::start("b");
    let proxy = Proxy::start(&[b.addr]);
    let mut c = proxy.client();
    c.send(b"GET /half HTTP/1.1\r\nHost: a\r\n\r\n");
    c.tls.conn.send_close_notify();
    c.tls.conn.complete_io(&mut c.tls.sock).unwrap();
    c.tls.sock.shutdown(std::net::Shutdown::Write).unwrap();
    let r = c.read_response("GET").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "b GET /half\n");
}

#[test]
fn client_disconnect_mid_upload_closes_the_backend_side() {
    let b = Backend::start("b");
    let proxy = Proxy::start(&[b.addr]);
    {
        let mut c = proxy.client();
        assert_eq!(c.get("/").status, 200);
    }
    std::thread::sleep(Duration::from_millis(200));
    let fds = proxy.open_fds();
    for _ in 0..3 {
        let mut c = proxy.client();
        c.send(b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n");
        c.send(&[b'u'; 100_000]);
        drop(c);
    }
    assert!(
        wait_until(Duration::from_secs(10), || proxy.open_fds() <= fds),
        "fds: {fds} before, {} after",
        proxy.open_fds()
    );
    // The truncated uploads never completed at the backend.
    assert_eq!(b.received().len(), 1);
    let mut c = proxy.client();
    assert_eq!(c.get("/").status, 200);
}
