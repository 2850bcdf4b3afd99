//! Binary upgrade: a successor started with `--upgrade` takes the listening sockets over from
//! the running ringway (the same sockets, passed over its `--upgrade-socket`), which drains
//! and exits; under continuous load, not one connection is refused or reset and not one
//! request fails. Real ringway processes, real TLS clients, a real backend.

mod common;

use std::time::Duration;

use common::*;

fn upgrade_args(socket: &std::path::Path, take_over: bool) -> Vec<String> {
    let mut args = vec!["--upgrade-socket".to_string(), socket.display().to_string()];
    if take_over {
        args.push("--upgrade".into());
    }
    args
}

fn start(backend: &Backend, socket: &std::path::Path, take_over: bool) -> Proxy {
    Proxy::start_with(
        &[backend.addr],
        ProxyOptions {
            workers: 2,
            args: upgrade_args(socket, take_over),
            ..ProxyOptions::default()
        },
    )
}

#[test]
fn two_upgrades_under_load_refuse_reset_and_fail_nothing() {
    let b = Backend::start("b");
    let socket = temp_dir("upgrade").join("upgrade.sock");
    let first = start(&b, &socket, false);
    let load = Load::start(first.addr, 32, 4);
    std::thread::sleep(Duration::from_millis(300));

    let second = start(&b, &socket, true);
    assert_eq!(second.addr, first.addr, "the same listening address");
    assert!(
        wait_until(Duration::from_secs(10), || first
            .log()
            .contains("binary upgrade: the new process serves the listeners")),
        "{}",
        first.log()
    );
    let status = first.wait_exit();
    assert!(
        status.success(),
        "the old process exits cleanly: {status:?}"
    );
    std::thread::sleep(Duration::from_millis(300));

    // The successor serves the path for the next upgrade.
    let third = start(&b, &socket, true);
    assert_eq!(third.addr, second.addr);
    assert!(second.wait_exit().success());
    std::thread::sleep(Duration::from_millis(300));

    load.stop().assert_clean(500);
    assert_eq!(third.client().get("/").status, 200);
}

#[test]
fn a_second_ringway_on_a_served_upgrade_socket_needs_upgrade() {
    let b = Backend::start("b");
    let socket = temp_dir("upgrade-held").join("upgrade.sock");
    let _first = start(&b, &socket, false);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringway"))
        .args(["run", "--config", "/nonexistent.toml"])
        .args(upgrade_args(&socket, false))
        .output()
        .expect("run ringway");
    assert!(!out.status.success());
    // The config is read first: give it a real one.
    let dir = temp_dir("upgrade-held-config");
    let cert = write_cert(&dir, "c", &["localhost"]);
    let config = dir.join("ringway.toml");
    std::fs::write(
        &config,
        format!(
            "[[listener]]\naddress = \"127.0.0.1:0\"\nbackends = [\"{}\"]\n\
             [[listener.certificate]]\ncert = \"{}\"\nkey = \"{}\"\n",
            b.addr,
            cert.cert.display(),
            cert.key.display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringway"))
        .args(["run", "--config"])
        .arg(&config)
        .args(upgrade_args(&socket, false))
        .output()
        .expect("run ringway");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("a running ringway listens there"),
        "{stderr}"
    );
}

/// Kills the process `pid` when dropped (a successor ringway started by another ringway).
struct Successor(u32);

impl Drop for Successor {
    fn drop(&mut self) {
        signal(self.0, "KILL");
    }
}

#[test]
fn sigusr2_starts_the_successor_which_takes_over_under_load() {
    let b = Backend::start("b");
    let socket = temp_dir("upgrade-usr2").join("upgrade.sock");
    let first = start(&b, &socket, false);
    let addr = first.addr;
    let load = Load::start(addr, 16, 2);
    std::thread::sleep(Duration::from_millis(200));
    signal(first.child.id(), "USR2");
    assert!(
        wait_until(Duration::from_secs(20), || first
            .log()
            .contains("binary upgrade: the new process serves the listeners")),
        "{}",
        first.log()
    );
    let log = first.log();
    let pid: u32 = log
        .split("successor=")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|pid| pid.parse().ok())
        .expect("the successor's pid in the log");
    let _successor = Successor(pid);
    assert!(first.wait_exit().success());
    std::thread::sleep(Duration::from_millis(300));
    load.stop().assert_clean(100);
    let mut client = Client::connect(addr, Some("localhost"));
    assert_eq!(client.get("/").status, 200, "the successor serves");
}

#[test]
fn a_successor_that_fails_before_it_serves_leaves_the_old_process_serving() {
    let b = Backend::start("b");
    let socket = temp_dir("upgrade-failed").join("upgrade.sock");
    let first = start(&b, &socket, false);
    // The successor takes the listeners over, then cannot load its certificate.
    let dir = temp_dir("upgrade-failed-config");
    let config = dir.join("ringway.toml");
    std::fs::write(
        &config,
        format!(
            "[[listener]]\naddress = \"127.0.0.1:0\"\nbackends = [\"{}\"]\n\
             [[listener.certificate]]\ncert = \"/nonexistent/cert.pem\"\n\
             key = \"/nonexistent/key.pem\"\n",
            b.addr
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringway"))
        .args(["run", "--config"])
        .arg(&config)
        .args(upgrade_args(&socket, true))
        .output()
        .expect("run the successor");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("/nonexistent/cert.pem"), "{stderr}");
    assert!(
        wait_until(Duration::from_secs(5), || first
            .log()
            .contains("binary upgrade abandoned, still serving")),
        "{}",
        first.log()
    );
    assert_eq!(
        first.client().get("/").status,
        200,
        "the old process serves on"
    );
    // And it still hands over to a successor that works.
    let second = start(&b, &socket, true);
    assert_eq!(second.client().get("/").status, 200);
}
