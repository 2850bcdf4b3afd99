//! The log thread: lines arrive in order, a full channel drops and counts without blocking,
//! reopening follows a rename (and survives a failed open), standard output works, and
//! checking a path changes nothing.

use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::*;

/// The test target: what the thread writes, kept in memory, behind an optional gate: before
/// each batch the thread says it holds one and waits for the test to let it write.
#[derive(Debug)]
pub struct TestSink {
    written: Arc<Mutex<Vec<u8>>>,
    reopened: Arc<AtomicU64>,
    gate: Option<(Sender<()>, Receiver<()>)>,
}

impl TestSink {
    pub(super) fn write(&mut self, lines: &[u8]) -> io::Result<()> {
        if let Some((holding, go)) = &self.gate {
            // The test may be gone (a failed assertion): then write without waiting.
            if holding.send(()).is_ok() {
                let _ = go.recv();
            }
        }
        self.written
            .lock()
            .map_err(|_| io::Error::other("poisoned"))?
            .extend_from_slice(lines);
        Ok(())
    }

    pub(super) fn reopened(&self) {
        self.reopened.fetch_add(1, Ordering::Relaxed);
    }
}

/// The test's side of a gated sink.
struct Gate {
    written: Arc<Mutex<Vec<u8>>>,
    /// Reopens the thread made.
    reopened: Arc<AtomicU64>,
    /// The thread holds a batch and waits.
    holding: Receiver<()>,
    /// Lets it write one batch.
    go: Sender<()>,
}

fn gated() -> (Target, Gate) {
    let written = Arc::new(Mutex::new(Vec::new()));
    let reopened = Arc::new(AtomicU64::new(0));
    let (holding_tx, holding_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel();
    let sink = TestSink {
        written: written.clone(),
        reopened: reopened.clone(),
        gate: Some((holding_tx, go_rx)),
    };
    (
        Target::Test(sink),
        Gate {
            written,
            reopened,
            holding: holding_rx,
            go: go_tx,
        },
    )
}

impl Gate {
    /// Waits until the thread holds a batch.
    fn wait_holding(&self) {
        self.holding
            .recv_timeout(Duration::from_secs(10))
            .expect("the log thread took a batch");
    }

    fn written(&self) -> String {
        String::from_utf8(self.written.lock().expect("lock").clone()).expect("UTF-8")
    }
}

/// A directory of its own under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("ringway-access-log-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn record(id: &str) -> Record<'_> {
    Record {
        method: "GET",
        host: "example.com",
        target: "/",
        status: 200,
        request_id: Some(id),
        ..Record::new(
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_142_001),
            client(),
        )
    }
}

fn client() -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 10], 51234))
}

/// A batch of `n` JSON lines whose request ids are `first..first + n`.
fn batch(first: usize, n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for id in first..first + n {
        Format::Json.write(&record(&id.to_string()), &mut out);
    }
    out
}

/// The request ids of the JSON lines in `text`, in order.
fn ids(text: &str) -> Vec<usize> {
    text.lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).expect("JSON line");
            value["request_id"]
                .as_str()
                .and_then(|id| id.parse().ok())
                .expect("an id")
        })
        .collect()
}

/// Waits until `path` holds `lines` lines.
fn wait_for_lines(path: &Path, lines: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = fs::read_to_string(path).unwrap_or_default();
        if text.lines().count() >= lines {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} never held {lines} lines",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn lines_arrive_in_the_file_in_order() {
    let dir = TempDir::new("order");
    let path = dir.0.join("access.log");
    fs::write(&path, "kept\n").expect("an earlier line");
    let (log, handle) = AccessLog::open(Target::File(path.clone()), 4096).expect("open");
    let mut buffer = LineBuffer::new(log.writer(), Format::Json);
    let count = 5_000;
    for id in 0..count {
        buffer.push(&record(&id.to_string()));
        // The buffer goes out on its own once it passes FLUSH_AT.
        assert!(buffer.len() < FLUSH_AT, "{} bytes held", buffer.len());
    }
    buffer.flush();
    assert!(buffer.is_empty());
    drop(buffer);
    log.close();
    assert_eq!(handle.dropped(), 0);
    assert_eq!(handle.failed(), 0);

    let text = fs::read_to_string(&path).expect("read log");
    let rest = text
        .strip_prefix("kept\n")
        .expect("appended after what was there");
    assert_eq!(ids(rest), (0..count).collect::<Vec<_>>());
}

#[test]
fn a_created_file_is_at_most_owner_read_write_group_read() {
    let dir = TempDir::new("mode");
    let path = dir.0.join("access.log");
    let (log, _) = AccessLog::open(Target::File(path.clone()), 1).expect("open");
    log.close();
    let mode = fs::metadata(&path).expect("created").permissions().mode() & 0o777;
    assert_eq!(mode & !FILE_MODE, 0, "mode {mode:o}");
}

#[test]
fn the_lines_of_each_writer_stay_in_order() {
    let dir = TempDir::new("writers");
    let path = dir.0.join("access.log");
    let (log, handle) = AccessLog::open(Target::File(path.clone()), 4096).expect("open");
    let per_worker = 2_000;
    let workers: Vec<_> = (0..4)
        .map(|worker| {
            let mut buffer = LineBuffer::new(log.writer(), Format::Json);
            std::thread::spawn(move || {
                for n in 0..per_worker {
                    buffer.push(&record(&(worker * per_worker + n).to_string()));
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("worker");
    }
    log.close();
    assert_eq!(handle.dropped(), 0);
    let ids = ids(&fs::read_to_string(&path).expect("read log"));
    assert_eq!(ids.len(), 4 * per_worker);
    for worker in 0..4 {
        let own: Vec<usize> = ids
            .iter()
            .copied()
            .filter(|id| id / per_worker == worker)
            .collect();
        let expected: Vec<usize> = (worker * per_worker..(worker + 1) * per_worker).collect();
        assert_eq!(own, expected, "worker {worker}");
    }
}

#[test]
fn a_full_channel_drops_and_counts_without_blocking() {
    let (target, gate) = gated();
    let (log, handle) = AccessLog::open(target, 2).expect("open");
    let writer = log.writer();
    // The thread takes the first batch and waits at the gate: the channel is empty again.
    writer.submit(batch(0, 1));
    gate.wait_holding();
    // Two batches fill the channel; the next two are dropped at once, lines counted.
    writer.submit(batch(1, 2));
    writer.submit(batch(3, 3));
    let started = Instant::now();
    writer.submit(batch(6, 4));
    let mut buffer = LineBuffer::new(writer.clone(), Format::Json);
    buffer.push(&record("10"));
    buffer.push(&record("11"));
    buffer.flush();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "a submit blocked"
    );
    assert_eq!(handle.dropped(), 6);
    assert_eq!(writer.dropped(), 6);
    // A dropped batch's lines stay out; the buffer is empty and usable again.
    assert!(buffer.is_empty());
    drop(buffer);
    // An empty submit is nothing: neither sent nor counted.
    writer.submit(Vec::new());
    assert_eq!(handle.dropped(), 6);

    // Open the gate for the three batches held, then the stop marker.
    for _ in 0..3 {
        gate.go.send(()).expect("the thread waits");
    }
    drop(writer);
    log.close();
    assert_eq!(ids(&gate.written()), [0, 1, 2, 3, 4, 5]);
    assert_eq!(handle.dropped(), 6);
}

#[test]
fn a_writer_whose_thread_is_gone_counts_its_lines() {
    let (target, gate) = gated();
    let (log, handle) = AccessLog::open(target, 4).expect("open");
    let writer = log.writer();
    drop(gate);
    log.close();
    writer.submit(batch(0, 3));
    assert_eq!(handle.dropped(), 3);
}

#[test]
fn reopen_follows_a_rename() {
    let dir = TempDir::new("rotate");
    let path = dir.0.join("access.log");
    let rotated = dir.0.join("access.log.1");
    let (log, handle) = AccessLog::open(Target::File(path.clone()), 16).expect("open");
    let writer = log.writer();
    writer.submit(batch(0, 2));
    wait_for_lines(&path, 2);
    // logrotate: move, then signal.
    fs::rename(&path, &rotated).expect("rename");
    handle.reopen();
    writer.submit(batch(2, 3));
    drop(writer);
    log.close();
    assert_eq!(ids(&fs::read_to_string(&rotated).expect("rotated")), [0, 1]);
    assert_eq!(
        ids(&fs::read_to_string(&path).expect("new file")),
        [2, 3, 4]
    );
    assert_eq!(handle.dropped() + handle.failed(), 0);
}

#[test]
fn a_failed_reopen_keeps_writing_to_the_old_file() {
    let dir = TempDir::new("reopen-fails");
    let logs = dir.0.join("logs");
    fs::create_dir(&logs).expect("logs dir");
    let path = logs.join("access.log");
    let (log, handle) = AccessLog::open(Target::File(path.clone()), 16).expect("open");
    let writer = log.writer();
    writer.submit(batch(0, 1));
    wait_for_lines(&path, 1);
    // The directory moves away: the path cannot be opened, not even created.
    let moved = dir.0.join("moved");
    fs::rename(&logs, &moved).expect("rename dir");
    handle.reopen();
    writer.submit(batch(1, 2));
    drop(writer);
    log.close();
    assert!(!path.exists());
    assert_eq!(
        ids(&fs::read_to_string(moved.join("access.log")).expect("old file")),
        [0, 1, 2]
    );
    assert_eq!(handle.dropped() + handle.failed(), 0);
}

#[test]
fn reopen_happens_before_the_next_batch() {
    let (target, gate) = gated();
    let reopened = gate.reopened.clone();
    let (log, handle) = AccessLog::open(target, 4).expect("open");
    let writer = log.writer();
    handle.reopen();
    assert_eq!(reopened.load(Ordering::Relaxed), 0, "not before a batch");
    writer.submit(batch(0, 1));
    gate.wait_holding();
    assert_eq!(reopened.load(Ordering::Relaxed), 1);
    gate.go.send(()).expect("go");
    drop(writer);
    log.close();
    assert_eq!(reopened.load(Ordering::Relaxed), 1, "once per reopen");
}

#[test]
fn standard_output_works() {
    let (log, handle) = AccessLog::open(Target::Stdout, 4).expect("open stdout");
    let mut buffer = LineBuffer::new(log.writer(), Format::Combined);
    buffer.push(&Record::connection(
        SystemTime::now(),
        client(),
        Duration::ZERO,
        Termination::proxy("access_log_test"),
    ));
    drop(buffer);
    handle.reopen();
    log.close();
    assert_eq!(handle.dropped() + handle.failed(), 0);
}

#[test]
fn an_unopenable_file_fails_naming_it() {
    let dir = TempDir::new("unopenable");
    let path = dir.0.join("missing").join("access.log");
    let error = AccessLog::open(Target::File(path.clone()), 4).expect_err("no directory");
    assert_eq!(
        error.to_string(),
        format!("access log {}: No such file or directory", path.display())
    );
}

#[test]
fn check_path_changes_nothing() {
    let dir = TempDir::new("check");
    // A missing file in a writable directory: fine, and not created.
    let path = dir.0.join("access.log");
    check_path(&path).expect("creatable");
    assert!(!path.exists(), "check created the file");
    // An existing file: opened for appending, left as it was.
    fs::write(&path, "kept\n").expect("write");
    check_path(&path).expect("writable");
    assert_eq!(fs::read_to_string(&path).expect("read"), "kept\n");
    // A missing directory.
    let missing = dir.0.join("missing").join("access.log");
    let error = check_path(&missing).expect_err("no directory");
    assert_eq!(
        error.to_string(),
        format!(
            "{} does not exist and cannot be created: {}: No such file or directory",
            missing.display(),
            dir.0.join("missing").display()
        )
    );
    // A directory where the file should be.
    let error = check_path(&dir.0).expect_err("a directory");
    assert!(error.to_string().ends_with("Is a directory"), "{error}");
}
