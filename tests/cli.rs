//! The command line: `check`, quick-start `run` flags, `demo`, and one-line startup errors.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;

fn ringway() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ringway"))
}

fn write_config(dir: &std::path::Path, body: &str) -> std::path::PathBuf {
    let path = dir.join("ringway.toml");
    std::fs::write(&path, body).unwrap();
    path
}

/// A valid config (one listener, one backend, a fresh certificate) in `dir`.
fn valid_config(dir: &std::path::Path) -> std::path::PathBuf {
    let cert = write_cert(dir, "site", &["localhost"]);
    write_config(
        dir,
        &format!(
            "[[listener]]\naddress = \"127.0.0.1:0\"\nbackends = [\"127.0.0.1:9\"]\n\
             [[listener.certificate]]\ncert = \"{}\"\nkey = \"{}\"\n",
            cert.cert.display(),
            cert.key.display()
        ),
    )
}

#[test]
fn check_accepts_a_valid_config_as_an_argument_or_with_config() {
    let dir = temp_dir("cli-forms");
    let config = valid_config(&dir);
    let forms: [&[&str]; 3] = [&["check"], &["check", "--config"], &["check", "-c"]];
    for args in forms {
        let out = ringway().args(args).arg(&config).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("{}: ok", config.display()),
            "{args:?}"
        );
    }
}

#[test]
fn check_without_a_file_is_a_usage_error_naming_what_is_missing() {
    let out = ringway().arg("check").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("required") && err.contains("<FILE|--config <FILE>>"),
        "{err}"
    );

    // Both forms at once: which file was meant is unclear, so it is refused too.
    let dir = temp_dir("cli-both");
    let config = valid_config(&dir);
    let out = ringway()
        .arg("check")
        .arg(&config)
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot be used with") && err.contains("--config"),
        "{err}"
    );
}

#[test]
fn check_of_a_broken_file_names_the_file_the_key_and_the_line() {
    let dir = temp_dir("cli-broken");
    let cert = write_cert(&dir, "site", &["localhost"]);
    // The bad value is on line 5, column 10.
    let config = write_config(
        &dir,
        &format!(
            "[[upstream]]\nname = \"app\"\n[[upstream.backend]]\naddress = \"127.0.0.1:9\"\n\
             weight = 0\n[[listener]]\naddress = \"127.0.0.1:0\"\nupstream = \"app\"\n\
             [[listener.certificate]]\ncert = \"{}\"\nkey = \"{}\"\n",
            cert.cert.display(),
            cert.key.display()
        ),
    );
    for form in [&["check"][..], &["check", "--config"]] {
        let out = ringway().args(form).arg(&config).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{form:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("upstream[0].backend[0].weight"), "{err}");
        assert!(
            err.contains(&format!("({}:5:10)", config.display())),
            "{err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "not one line: {err}");
    }

    // Not TOML at all: no key to name, but the file, line and column.
    let config = write_config(&dir, "workers = 2\nbatch_wait = [\n");
    let out = ringway().arg("check").arg(&config).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid TOML"), "{err}");
    assert!(err.contains(&format!("({}:2:", config.display())), "{err}");

    // A file that is not there is named.
    let missing = dir.join("missing.toml");
    let out = ringway().arg("check").arg(&missing).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&missing.display().to_string()), "{err}");
}

/// README and ringway.example.toml say `ringway check ringway.example.toml` works from the
/// repository root as it is (its certificates are the self-signed ones in examples/).
#[test]
fn the_example_config_checks_from_the_repository_root() {
    let out = ringway()
        .args(["check", "ringway.example.toml"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "ringway.example.toml: ok"
    );
}

#[test]
fn check_names_the_bad_key_and_exits_1() {
    let dir = temp_dir("cli-bad");
    let cert = write_cert(&dir, "site", &["localhost"]);
    let other = write_cert(&dir, "other", &["other"]);
    let cert_block = format!(
        "[[listener.certificate]]\ncert = \"{}\"\nkey = \"{}\"\n",
        cert.cert.display(),
        cert.key.display()
    );
    let cases = [
        (
            "unknown key",
            "[[listener]]\naddress = \"127.0.0.1:0\"\nbackends = [\"127.0.0.1:9\"]\nbogus = 1\n"
                .to_string(),
            "bogus",
        ),
        (
            "bad address",
            format!(
                "[[listener]]\naddress = \"127.0.0.1:0\"\nbackends = [\"nope\"]\n\
                 [[listener.certificate]]\ncert = \"{}\"\nkey = \"{}\"\n",
                cert.cert.display(),
                cert.key.display()
            ),
            "listener[0].backends[0]",
        ),
        (
            "missing key file",
            format!(
                "[[listener]]\naddress = \"127.0.0.1:0\"\nbackends = [\"127.0.0.1:9\"]\n\
                 [[listener.certificate]]\ncert = \"{}\"\nkey = \"{}/missing.key\"\n",
                cert.cert.display(),
                dir.display()
            ),
            "listener[0].certificate[0].key",
        ),
        (
            "cert/key mismatch",
            format!(
                "[[listener]]\naddress = \"127.0.0.1:0\"\nbackends = [\"127.0.0.1:9\"]\n\
                 [[listener.certificate]]\ncert = \"{}\"\nkey = \"{}\"\n",
                cert.cert.display(),
                other.key.display()
            ),
            "listener[0].certificate[0]",
        ),
        (
            "unreadable key",
            format!(
                "[[listener]]\naddress = \"127.0.0.1:0\"\nbackends = [\"127.0.0.1:9\"]\n\
                 [[listener.certificate]]\ncert = \"{}\"\nkey = \"{}\"\n",
                cert.cert.display(),
                cert.cert.display()
            ),
            "listener[0].certificate[0].key",
        ),
        (
            "route to a missing upstream",
            "[[upstream]]\nname = \"app\"\nbackends = [\"127.0.0.1:9\"]\n\
             [[listener]]\naddress = \"127.0.0.1:0\"\n\
             [[listener.route]]\nhost = \"a.test\"\nupstream = \"ap\"\n"
                .to_string()
                + &cert_block,
            "listener[0].route[0].upstream",
        ),
        (
            "weight out of range",
            "[[upstream]]\nname = \"app\"\n[[upstream.backend]]\naddress = \"127.0.0.1:9\"\n\
             weight = 0\n[[listener]]\naddress = \"127.0.0.1:0\"\nupstream = \"app\"\n"
                .to_string()
                + &cert_block,
            "upstream[0].backend[0].weight",
        ),
        (
            "health timeout not below interval",
            "[[upstream]]\nname = \"app\"\nbackends = [\"127.0.0.1:9\"]\n\
             [upstream.health_check]\ninterval = \"1s\"\ntimeout = \"1s\"\n\
             [[listener]]\naddress = \"127.0.0.1:0\"\nupstream = \"app\"\n"
                .to_string()
                + &cert_block,
            "upstream[0].health_check.timeout",
        ),
        (
            "hash without consistent hashing",
            "[[upstream]]\nname = \"app\"\nbackends = [\"127.0.0.1:9\"]\nhash = \"client_ip\"\n\
             [[listener]]\naddress = \"127.0.0.1:0\"\nupstream = \"app\"\n"
                .to_string()
                + &cert_block,
            "upstream[0].hash",
        ),
    ];
    for (name, body, key) in cases {
        let config = write_config(&dir, &body);
        let out = ringway()
            .args(["check", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(key), "{name}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{name}: not one line: {err}");
    }
}

#[test]
fn address_in_use_is_one_clear_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let dir = temp_dir("cli-inuse");
    let cert = write_cert(&dir, "site", &["localhost"]);
    let out = ringway()
        .args([
            "run",
            "--listen",
            &addr.to_string(),
            "--backend",
            "127.0.0.1:9",
        ])
        .arg("--cert")
        .arg(&cert.cert)
        .arg("--key")
        .arg(&cert.key)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("address already in use"), "{err}");
}

/// A second ringway on the address a running one holds (SO_REUSEPORT would let it share the
/// port silently) fails at once with the same clear line, and the first keeps serving.
#[test]
fn a_second_ringway_on_a_held_address_fails_clearly() {
    let b = Backend::start("first");
    let dir = temp_dir("cli-second");
    let cert = write_cert(&dir, "site", &["localhost"]);
    let start = |listen: &str| {
        let mut cmd = ringway();
        cmd.args(["run", "--listen", listen, "--workers", "2"])
            .args(["--backend", &b.addr.to_string()])
            .arg("--cert")
            .arg(&cert.cert)
            .arg("--key")
            .arg(&cert.key);
        cmd
    };
    /// Kills the first ringway however the test ends.
    struct Running(std::process::Child);
    impl Drop for Running {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut first = Running(start("127.0.0.1:0").stderr(Stdio::piped()).spawn().unwrap());
    let first = &mut first.0;
    let addr = parse_listen(&startup_line(first)).expect("listen address");
    let mut second = start(&addr.to_string())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Sharing the port, it would run on: give it a bounded time to fail.
    let exited = wait_until(Duration::from_secs(10), || {
        second.try_wait().unwrap().is_some()
    });
    if !exited {
        let _ = second.kill();
    }
    let out = second.wait_with_output().unwrap();
    assert!(exited, "the second ringway is serving the same address");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot listen on {addr}: address already in use")),
        "{err}"
    );
    let mut c = Client::connect(addr, Some("localhost"));
    for _ in 0..4 {
        assert_eq!(c.get("/").header("x-backend"), Some("first"));
    }
    signal(first.id(), "TERM");
    assert!(first.wait().unwrap().success());
}

/// Waits for ringway's startup line on the child's stderr.
fn startup_line(child: &mut std::process::Child) -> String {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("ringway started") {
                let _ = tx.send(line);
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("startup line")
}

#[test]
fn quick_start_flags_serve_traffic() {
    let b1 = Backend::start("q1");
    let b2 = Backend::start("q2");
    let dir = temp_dir("cli-quick");
    let cert = write_cert(&dir, "site", &["localhost"]);
    let mut child = ringway()
        .args(["run", "--listen", "127.0.0.1:0", "--workers", "2"])
        .args([
            "--backend",
            &b1.addr.to_string(),
            "--backend",
            &b2.addr.to_string(),
        ])
        .arg("--cert")
        .arg(&cert.cert)
        .arg("--key")
        .arg(&cert.key)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let line = startup_line(&mut child);
    assert!(line.contains("workers=2"), "{line}");
    let addr: std::net::SocketAddr = parse_listen(&line).expect("listen address");
    let mut c = Client::connect(addr, Some("localhost"));
    let seen: Vec<String> = (0..4)
        .map(|_| c.get("/").header("x-backend").unwrap().to_string())
        .collect();
    assert!(
        seen.contains(&"q1".to_string()) && seen.contains(&"q2".to_string()),
        "{seen:?}"
    );
    signal(child.id(), "TERM");
    let status = child.wait().unwrap();
    assert!(status.success());
}

#[test]
fn quick_start_policy_and_health_path() {
    let b1 = Backend::start("q1");
    let dir = temp_dir("cli-quick-health");
    let cert = write_cert(&dir, "site", &["localhost"]);
    let mut child = ringway()
        .args(["run", "--listen", "127.0.0.1:0", "--workers", "1"])
        .args(["--backend", &b1.addr.to_string()])
        .args(["--policy", "least_connections", "--health-path", "/healthz"])
        .arg("--cert")
        .arg(&cert.cert)
        .arg("--key")
        .arg(&cert.key)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let line = startup_line(&mut child);
    let addr: std::net::SocketAddr = parse_listen(&line).expect("listen address");
    assert_eq!(
        Client::connect(addr, Some("localhost")).get("/").status,
        200
    );
    // The first check runs at startup.
    assert!(wait_until(Duration::from_secs(5), || {
        b1.received()
            .iter()
            .any(|r| r.method == "GET" && r.path == "/healthz")
    }));
    signal(child.id(), "TERM");
    assert!(child.wait().unwrap().success());

    let out = ringway()
        .args(["run", "--listen", "127.0.0.1:0", "--backend", "127.0.0.1:9"])
        .args(["--policy", "fastest"])
        .arg("--cert")
        .arg(&cert.cert)
        .arg("--key")
        .arg(&cert.key)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("least_connections") && err.contains("fastest"),
        "{err}"
    );
}

#[test]
fn demo_serves_https_with_demo_backends() {
    let mut child = ringway()
        .args(["demo", "--listen", "127.0.0.1:0", "--workers", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("demo banner");
    let addr: std::net::SocketAddr = line
        .split("https://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    let try_line = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(
        try_line.contains("curl -k https://localhost:"),
        "{try_line}"
    );
    let mut c = Client::connect(addr, Some("localhost"));
    let first = c.get("/");
    let second = c.get("/");
    assert_eq!(first.status, 200);
    assert!(
        first.text().starts_with("hello from demo backend"),
        "{}",
        first.text()
    );
    assert!(
        first.text().contains("X-Forwarded-For: 127.0.0.1"),
        "{}",
        first.text()
    );
    assert_ne!(first.text().lines().next(), second.text().lines().next());
    // One worker, one round robin: new connections alternate too (what README says of
    // `ringway demo --workers 1`).
    let third = Client::connect(addr, Some("localhost")).get("/");
    let fourth = Client::connect(addr, Some("localhost")).get("/");
    assert_eq!(third.text().lines().next(), first.text().lines().next());
    assert_eq!(fourth.text().lines().next(), second.text().lines().next());
    signal(child.id(), "TERM");
    assert!(child.wait().unwrap().success());
}

#[test]
fn help_works_on_every_command() {
    for args in [
        &["--help"][..],
        &["run", "--help"],
        &["check", "--help"],
        &["demo", "--help"],
    ] {
        let out = ringway().args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{args:?}"
        );
    }
}

/// `--version` names the package version and the commit it was built from (build.rs):
/// `ringway 0.1.0 (b4446bd)`, `(b4446bd-dirty)`, or `(unknown)` without git.
#[test]
fn version_names_the_commit() {
    let out = ringway().arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.trim();
    let rest = line
        .strip_prefix(&format!("ringway {} (", env!("CARGO_PKG_VERSION")))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{line:?}"));
    let hash = rest.strip_suffix("-dirty").unwrap_or(rest);
    assert!(
        rest == "unknown" || (hash.len() >= 7 && hash.chars().all(|c| c.is_ascii_hexdigit())),
        "{line:?}"
    );
}
