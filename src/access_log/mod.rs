//! The access log: one line per request (or per connection that ended without one), written
//! by a thread of its own so that a worker never waits on a disk.
//!
//! This module owns getting lines from the workers to the file: the `ringway-log` thread
//! ([`AccessLog`]), which alone holds the file (or standard output) and writes what it
//! receives; the per-worker [`Writer`] and [`LineBuffer`] that hand it batches of lines; the
//! counters of lines that were not written ([`Handle`]); reopening the file after a rotation;
//! and how the file is opened and checked ([`open_file`], [`check_path`]). What a line says
//! and how it is spelled are [`record`]'s and [`format`]'s (sans-IO, layer 1).
//!
//! Invariants:
//! - a worker never blocks on the log: [`Writer::submit`] is a `try_send` on a bounded
//!   channel; when the channel is full (or the thread is gone) the batch is dropped and its
//!   lines are counted ([`Handle::dropped`]);
//! - a batch holds whole lines only (each ends with `\n`) and is written with one
//!   `write_all`, so lines never interleave with each other's bytes, nor with other writers of
//!   the same file opened with `O_APPEND`;
//! - the lines of one [`Writer`] reach the file in the order they were submitted; lines of
//!   different workers interleave batch by batch;
//! - a write error loses that batch's lines (counted, [`Handle::failed`]) and is reported once
//!   on stderr until a write succeeds again; the thread never stops on an error;
//! - [`Handle::reopen`] takes effect before the next batch is written: the path is opened
//!   again (created when it was moved away) and the old descriptor closed; when it cannot be
//!   opened, that is reported on stderr and lines keep going to the old descriptor.
//!
//! Errors go to stderr with `eprintln!`, not `tracing`: the log thread must not depend on
//! the logging subscriber, whose writer the access log may share.
//!
//! # Wiring (for the data path)
//!
//! At startup: [`AccessLog::open`] once, from `[access_log]`; [`AccessLog::writer`] once per
//! worker, each wrapped in a [`LineBuffer`] with the configured [`Format`]. On each worker:
//! [`LineBuffer::push`] a [`Record`] where a request (or a connection without one) ends, and
//! [`LineBuffer::flush`] on a timer, every 100 ms (the worker's housekeeping tick), so that
//! lines are not held back on a quiet worker: a buffer is sent on its own only once it passes
//! [`FLUSH_AT`] (64 KiB). SIGUSR1 (logrotate's `postrotate`): [`Handle::reopen`]. Metrics:
//! [`Handle::dropped`] and [`Handle::failed`]. At exit, after the workers stopped (their
//! buffers flush when dropped): [`AccessLog::close`], which writes what is queued.

pub mod format;
pub mod record;

#[cfg(test)]
mod tests;

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::{self, JoinHandle};

use crate::tls::IoReason;

pub use self::format::{Format, JSON_KEYS, UnknownFormat};
pub use self::record::{Record, Side, Termination, is_reason, utf8_prefix};

/// A [`LineBuffer`] hands its lines to the log thread once it holds this many bytes.
pub const FLUSH_AT: usize = 64 * 1024;

/// The name of the thread that writes the log.
pub const THREAD_NAME: &str = "ringway-log";

/// The mode a log file is created with (before the umask): owner read-write, group read.
pub const FILE_MODE: u32 = 0o640;

/// Where the lines go.
#[derive(Debug)]
pub enum Target {
    /// Standard output (ringway's own log goes to stderr).
    Stdout,
    /// A file, opened for appending and created with [`FILE_MODE`] when missing.
    File(PathBuf),
    /// A buffer in memory, with a gate the test opens batch by batch.
    #[cfg(test)]
    Test(tests::TestSink),
}

/// Why the access log could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The file could not be opened for appending (or created).
    #[error("access log {}: {}", .path.display(), IoReason(.source))]
    File { path: PathBuf, source: io::Error },
    /// The writing thread could not be started.
    #[error("access log: cannot start the {THREAD_NAME} thread: {}", IoReason(.0))]
    Thread(io::Error),
}

/// Why [`check_path`] refuses a path.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The file exists but cannot be opened for appending.
    #[error("{}: {}", .path.display(), IoReason(.source))]
    Open { path: PathBuf, source: io::Error },
    /// The file does not exist and its directory does not let it be created.
    #[error(
        "{} does not exist and cannot be created: {}: {}",
        .path.display(),
        .dir.display(),
        IoReason(.source)
    )]
    Create {
        path: PathBuf,
        dir: PathBuf,
        source: io::Error,
    },
}

/// Opens `path` for appending, creating it with [`FILE_MODE`] (less the umask) when missing.
pub fn open_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(FILE_MODE)
        .open(path)
}

/// Whether the log could be written at `path`, changing nothing: an existing file is opened
/// for appending (and closed); for a missing one, its directory must exist and be writable
/// and searchable by this process (`access(2)`). Nothing is created, so a check run by
/// another user (root) leaves no file the service cannot write, and a check during a
/// rotation never takes the new file's place.
pub fn check_path(path: &Path) -> Result<(), CheckError> {
    match OpenOptions::new().append(true).open(path) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            let dir = match path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir,
                _ => Path::new("."),
            };
            use nix::unistd::{AccessFlags, access};
            access(dir, AccessFlags::W_OK | AccessFlags::X_OK).map_err(|errno| CheckError::Create {
                path: path.to_path_buf(),
                dir: dir.to_path_buf(),
                source: io::Error::from(errno),
            })
        }
        Err(source) => Err(CheckError::Open {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// What the workers, the log thread and whoever holds a [`Handle`] share.
#[derive(Debug, Default)]
struct Shared {
    /// Lines dropped because the channel was full or the thread gone.
    dropped: AtomicU64,
    /// Lines lost to write errors.
    failed: AtomicU64,
    /// Reopen the file before the next batch.
    reopen: AtomicBool,
}

/// The log thread: owns its lifetime. Hand out one [`Writer`] per worker with
/// [`AccessLog::writer`]; stop it with [`AccessLog::close`]. Dropped without `close`, the
/// thread goes on until the last [`Writer`] is gone, then ends; nothing waits for it.
#[derive(Debug)]
pub struct AccessLog {
    sender: SyncSender<Vec<u8>>,
    thread: JoinHandle<()>,
    shared: Arc<Shared>,
}

/// Reopening and counters, from any thread (the signal thread, metrics). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

/// A worker's way to the log thread: a bounded channel's sender. Cheap to clone; never
/// blocks.
#[derive(Debug, Clone)]
pub struct Writer {
    sender: SyncSender<Vec<u8>>,
    shared: Arc<Shared>,
}

impl AccessLog {
    /// Opens `target` and starts the `ringway-log` thread, with a channel of `capacity`
    /// batches (at least 1) between the workers and it. A file is opened here, so an
    /// unwritable path fails now rather than at the first line.
    pub fn open(target: Target, capacity: usize) -> Result<(AccessLog, Handle), OpenError> {
        let sink = Sink::open(target)?;
        let shared = Arc::new(Shared::default());
        let (sender, receiver) = mpsc::sync_channel(capacity.max(1));
        let thread = {
            let shared = shared.clone();
            thread::Builder::new()
                .name(THREAD_NAME.to_owned())
                .spawn(move || run(sink, &receiver, &shared))
                .map_err(OpenError::Thread)?
        };
        let handle = Handle {
            shared: shared.clone(),
        };
        Ok((
            AccessLog {
                sender,
                thread,
                shared,
            },
            handle,
        ))
    }

    /// A new writer for a worker.
    pub fn writer(&self) -> Writer {
        Writer {
            sender: self.sender.clone(),
            shared: self.shared.clone(),
        }
    }

    /// Stops the thread once it has written every batch queued so far (this call waits for
    /// room in the channel to say so), and waits for it. Batches submitted afterwards are
    /// dropped and counted. Call it after the workers stopped, so that their buffers, flushed
    /// when dropped, are written.
    pub fn close(self) {
        // An empty batch is the stop marker: `Writer::submit` never sends one. A send fails
        // only when the thread is gone already.
        let _ = self.sender.send(Vec::new());
        if self.thread.join().is_err() {
            eprintln!("ringway: access log: the {THREAD_NAME} thread panicked");
        }
    }
}

impl Handle {
    /// Reopens the file before the next batch is written (logrotate moved it away: SIGUSR1).
    /// Nothing for standard output.
    pub fn reopen(&self) {
        self.shared.reopen.store(true, Ordering::Release);
    }

    /// Lines dropped so far because the channel was full (the disk or the thread could not
    /// keep up) or the thread was gone.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Lines lost so far to write errors (a full disk, a closed standard output).
    pub fn failed(&self) -> u64 {
        self.shared.failed.load(Ordering::Relaxed)
    }
}

impl Writer {
    /// Hands `lines` (one or more complete lines, each ending with `\n`) to the log thread
    /// without waiting: when the channel is full, they are dropped and counted
    /// ([`Handle::dropped`]). An empty buffer is ignored.
    pub fn submit(&self, lines: Vec<u8>) {
        let _ = self.try_submit(lines);
    }

    /// [`Writer::submit`], giving the buffer back when it was dropped.
    fn try_submit(&self, lines: Vec<u8>) -> Option<Vec<u8>> {
        if lines.is_empty() {
            return None;
        }
        match self.sender.try_send(lines) {
            Ok(()) => None,
            Err(TrySendError::Full(lines) | TrySendError::Disconnected(lines)) => {
                self.shared
                    .dropped
                    .fetch_add(count_lines(&lines), Ordering::Relaxed);
                Some(lines)
            }
        }
    }

    /// Lines dropped so far, all writers together (as [`Handle::dropped`]).
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

/// A worker's buffer of formatted lines: [`LineBuffer::push`] formats a record into it, and
/// the lines go to the log thread in one batch once it holds [`FLUSH_AT`] bytes, or when
/// [`LineBuffer::flush`] is called. **Call `flush` on a timer** (every 100 ms): otherwise the
/// last lines of a quiet worker wait for traffic. Dropping it flushes.
#[derive(Debug)]
pub struct LineBuffer {
    writer: Writer,
    format: Format,
    lines: Vec<u8>,
}

impl LineBuffer {
    /// An empty buffer (it allocates at the first line) writing `format` to `writer`.
    pub fn new(writer: Writer, format: Format) -> Self {
        Self {
            writer,
            format,
            lines: Vec::new(),
        }
    }

    /// Appends `record` as one line; sends the buffer once it holds [`FLUSH_AT`] bytes.
    pub fn push(&mut self, record: &Record<'_>) {
        if self.lines.capacity() == 0 {
            self.lines.reserve(FLUSH_AT + FLUSH_AT / 4);
        }
        self.format.write(record, &mut self.lines);
        if self.lines.len() >= FLUSH_AT {
            self.flush();
        }
    }

    /// Sends the lines held, if any, as one batch. A dropped batch's buffer is kept for the
    /// next lines.
    pub fn flush(&mut self) {
        if self.lines.is_empty() {
            return;
        }
        let lines = std::mem::take(&mut self.lines);
        if let Some(mut back) = self.writer.try_submit(lines) {
            back.clear();
            self.lines = back;
        }
    }

    /// Bytes held, not yet sent.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The format lines are written in.
    pub fn format(&self) -> Format {
        self.format
    }
}

impl Drop for LineBuffer {
    fn drop(&mut self) {
        self.flush();
    }
}

fn count_lines(lines: &[u8]) -> u64 {
    lines.iter().filter(|&&b| b == b'\n').count() as u64
}

// ---------------------------------------------------------------------------------------------
// The log thread

/// Where the thread writes.
enum Sink {
    Stdout,
    File {
        path: PathBuf,
        file: File,
    },
    #[cfg(test)]
    Test(tests::TestSink),
}

impl Sink {
    fn open(target: Target) -> Result<Sink, OpenError> {
        Ok(match target {
            Target::Stdout => Sink::Stdout,
            Target::File(path) => match open_file(&path) {
                Ok(file) => Sink::File { path, file },
                Err(source) => return Err(OpenError::File { path, source }),
            },
            #[cfg(test)]
            Target::Test(sink) => Sink::Test(sink),
        })
    }

    /// What error messages call it.
    fn name(&self) -> String {
        match self {
            Sink::Stdout => "standard output".to_owned(),
            Sink::File { path, .. } => path.display().to_string(),
            #[cfg(test)]
            Sink::Test(_) => "test sink".to_owned(),
        }
    }

    /// Opens the file again at its path; on failure keeps the old descriptor.
    fn reopen(&mut self) {
        match self {
            Sink::Stdout => {}
            Sink::File { path, file } => match open_file(path) {
                Ok(new) => *file = new,
                Err(error) => eprintln!(
                    "ringway: access log: reopening {}: {} (still writing to the file opened \
                     before)",
                    path.display(),
                    IoReason(&error)
                ),
            },
            #[cfg(test)]
            Sink::Test(sink) => sink.reopened(),
        }
    }

    fn write(&mut self, lines: &[u8]) -> io::Result<()> {
        match self {
            Sink::Stdout => {
                let mut stdout = io::stdout().lock();
                stdout.write_all(lines)?;
                stdout.flush()
            }
            Sink::File { file, .. } => file.write_all(lines),
            #[cfg(test)]
            Sink::Test(sink) => sink.write(lines),
        }
    }
}

/// The thread's loop: each batch as it comes, until the stop marker (an empty batch) or every
/// sender is gone.
fn run(mut sink: Sink, receiver: &Receiver<Vec<u8>>, shared: &Shared) {
    let mut failing = false;
    while let Ok(lines) = receiver.recv() {
        if lines.is_empty() {
            // Stop: write what is queued already.
            while let Ok(lines) = receiver.try_recv() {
                write_batch(&mut sink, &lines, shared, &mut failing);
            }
            break;
        }
        write_batch(&mut sink, &lines, shared, &mut failing);
    }
}

fn write_batch(sink: &mut Sink, lines: &[u8], shared: &Shared, failing: &mut bool) {
    if lines.is_empty() {
        return;
    }
    if shared.reopen.swap(false, Ordering::AcqRel) {
        sink.reopen();
    }
    match sink.write(lines) {
        Ok(()) if *failing => {
            *failing = false;
            eprintln!(
                "ringway: access log: writing to {} again ({} lines lost so far)",
                sink.name(),
                shared.failed.load(Ordering::Relaxed)
            );
        }
        Ok(()) => {}
        Err(error) => {
            shared
                .failed
                .fetch_add(count_lines(lines), Ordering::Relaxed);
            if !*failing {
                *failing = true;
                eprintln!(
                    "ringway: access log: writing to {}: {} (lines are lost until a write \
                     succeeds)",
                    sink.name(),
                    IoReason(&error)
                );
            }
        }
    }
}
