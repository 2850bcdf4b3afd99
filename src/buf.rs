//! Per-worker free list of owned byte buffers.
//!
//! Owns the `Vec<u8>` buffers that connection tasks use for plaintext request bytes, response
//! heads and outgoing TLS records. A buffer is taken when a connection has work and given back
//! when it goes idle, so an idle keep-alive connection holds none and the steady state allocates
//! nothing per request.
//!
//! Buffers come in three size classes, each with its own list: small ones (a capacity of at
//! most [`SMALL_CAPACITY`]: request heads, response heads, a handshake flight), medium ones (at
//! most [`MEDIUM_CAPACITY`]: one full TLS record, what a relay holds for a slow reader) and
//! large ones (body chunks, TLS records of a large response, receives the provided-buffer pool
//! could not take). A request is never served with a buffer of a larger class, so thousands of
//! connections that each need a few KiB (a handshake, a small response) hold a few KiB each,
//! not whatever a large response left behind.
//!
//! The lists follow the load: [`trim`], called once per [`TRIM_PERIOD`] by each worker, frees
//! the buffers of each list that no request took since the last trim (the list's low-water
//! mark), oldest first. A burst leaves its buffers for the next one that comes soon; a quiet
//! period, or thousands of connections that each hold their own buffer (slow readers), leave
//! no cache behind.
//!
//! Invariants: the free lists are thread-local (one per worker, never shared across cores); each
//! keeps at most [`MAX_CACHED_SMALL`], [`MAX_CACHED_MEDIUM`] or [`MAX_CACHED_LARGE`] buffers,
//! never one that grew beyond [`MAX_CACHED_CAPACITY`], so their memory is bounded whatever a
//! single request did.

use std::cell::RefCell;
use std::time::Duration;

/// The largest capacity of a small buffer.
pub const SMALL_CAPACITY: usize = 8 * 1024;
/// The largest capacity of a medium buffer: a full TLS record (16 KiB of plaintext) with its
/// header and tag.
pub const MEDIUM_CAPACITY: usize = 17 * 1024;
/// Small buffers kept on a worker's free list at most (8 MiB at most).
pub const MAX_CACHED_SMALL: usize = 1024;
/// Medium buffers kept on a worker's free list at most (8.5 MiB at most).
pub const MAX_CACHED_MEDIUM: usize = 512;
/// Large buffers kept on a worker's free list at most (a 64 KiB response's worth each: 16 MiB
/// for 256; at most 64 MiB).
pub const MAX_CACHED_LARGE: usize = 256;
/// A buffer that grew past this is freed instead of cached.
pub const MAX_CACHED_CAPACITY: usize = 256 * 1024;
/// How often a worker trims its free lists ([`trim`]).
pub const TRIM_PERIOD: Duration = Duration::from_secs(1);

/// One size class: the buffers, most recently given last, and the fewest held since the last
/// trim.
struct FreeList {
    bufs: Vec<Vec<u8>>,
    low: usize,
}

impl FreeList {
    const fn new() -> Self {
        Self {
            bufs: Vec::new(),
            low: 0,
        }
    }

    fn pop(&mut self) -> Option<Vec<u8>> {
        let buf = self.bufs.pop();
        self.low = self.low.min(self.bufs.len());
        buf
    }

    /// Frees the buffers nobody took since the last trim: the oldest ones.
    fn trim(&mut self) {
        let unused = self.low.min(self.bufs.len());
        self.bufs.drain(..unused);
        self.low = self.bufs.len();
    }
}

thread_local! {
    static SMALL: RefCell<FreeList> = const { RefCell::new(FreeList::new()) };
    static MEDIUM: RefCell<FreeList> = const { RefCell::new(FreeList::new()) };
    static LARGE: RefCell<FreeList> = const { RefCell::new(FreeList::new()) };
}

/// The list of the size class of `capacity`, and how many buffers it keeps at most.
fn class(capacity: usize) -> (&'static std::thread::LocalKey<RefCell<FreeList>>, usize) {
    if capacity <= SMALL_CAPACITY {
        (&SMALL, MAX_CACHED_SMALL)
    } else if capacity <= MEDIUM_CAPACITY {
        (&MEDIUM, MAX_CACHED_MEDIUM)
    } else {
        (&LARGE, MAX_CACHED_LARGE)
    }
}

/// Takes an empty buffer with at least `capacity` bytes reserved.
pub fn take(capacity: usize) -> Vec<u8> {
    let (list, _) = class(capacity);
    let reused = list.with(|free| free.borrow_mut().pop());
    match reused {
        Some(mut buf) => {
            buf.reserve(capacity);
            buf
        }
        None => Vec::with_capacity(capacity),
    }
}

/// Gives a buffer back to this worker's free list of its size class (or frees it when that
/// list is full or the buffer grew too large).
pub fn give(mut buf: Vec<u8>) {
    let capacity = buf.capacity();
    if capacity == 0 || capacity > MAX_CACHED_CAPACITY {
        return;
    }
    buf.clear();
    let (list, max) = class(capacity);
    list.with(|free| {
        let mut free = free.borrow_mut();
        if free.bufs.len() < max {
            free.bufs.push(buf);
        }
    });
}

/// Frees, in each of this worker's lists, the buffers no request took since the last call.
pub fn trim() {
    for list in [&SMALL, &MEDIUM, &LARGE] {
        list.with(|free| free.borrow_mut().trim());
    }
}

/// Buffers held on this worker's lists now (small, medium, large).
#[cfg(test)]
fn cached() -> (usize, usize, usize) {
    let len = |list: &'static std::thread::LocalKey<RefCell<FreeList>>| {
        list.with(|free| free.borrow().bufs.len())
    };
    (len(&SMALL), len(&MEDIUM), len(&LARGE))
}

/// A buffer slot that is empty while its owner is idle.
///
/// `get` takes a buffer from the free list on first use; `release` gives it back once its
/// contents are consumed.
#[derive(Debug, Default)]
pub struct LazyBuf {
    buf: Option<Vec<u8>>,
    capacity: usize,
}

impl LazyBuf {
    /// A slot whose buffer, when taken, reserves `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        Self {
            buf: None,
            capacity,
        }
    }

    /// The buffer, taken from the free list if the slot was empty.
    pub fn get(&mut self) -> &mut Vec<u8> {
        let capacity = self.capacity;
        self.buf.get_or_insert_with(|| take(capacity))
    }

    /// The bytes held, empty when idle.
    pub fn bytes(&self) -> &[u8] {
        self.buf.as_deref().unwrap_or(&[])
    }

    /// True when no byte is held.
    pub fn is_empty(&self) -> bool {
        self.bytes().is_empty()
    }

    /// Removes the first `n` bytes (consumed by the caller).
    pub fn consume(&mut self, n: usize) {
        if let Some(buf) = self.buf.as_mut() {
            let n = n.min(buf.len());
            buf.drain(..n);
        }
    }

    /// Takes the buffer out of the slot (to lend it to the kernel for a write).
    pub fn take_vec(&mut self) -> Vec<u8> {
        let capacity = self.capacity;
        self.buf.take().unwrap_or_else(|| take(capacity))
    }

    /// Puts back a buffer taken with [`LazyBuf::take_vec`].
    pub fn put_vec(&mut self, buf: Vec<u8>) {
        if let Some(old) = self.buf.replace(buf) {
            give(old);
        }
    }

    /// Drops every byte held.
    pub fn clear(&mut self) {
        if let Some(buf) = self.buf.as_mut() {
            buf.clear();
        }
    }

    /// Gives the buffer back when it holds nothing.
    pub fn release_if_empty(&mut self) {
        if self.buf.as_ref().is_some_and(|b| b.is_empty())
            && let Some(buf) = self.buf.take()
        {
            give(buf);
        }
    }
}

impl Drop for LazyBuf {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            give(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_given_buffers() {
        let mut b = take(100);
        b.extend_from_slice(b"hello");
        let ptr = b.as_ptr();
        give(b);
        let b2 = take(10);
        assert!(b2.is_empty());
        assert_eq!(b2.as_ptr(), ptr);
        give(b2);
    }

    #[test]
    fn lazy_buf_holds_nothing_when_idle() {
        let mut lb = LazyBuf::new(64);
        assert!(lb.is_empty());
        lb.get().extend_from_slice(b"abcdef");
        lb.consume(2);
        assert_eq!(lb.bytes(), b"cdef");
        lb.release_if_empty();
        assert_eq!(lb.bytes(), b"cdef");
        lb.consume(10);
        lb.release_if_empty();
        assert!(lb.buf.is_none());
    }

    #[test]
    fn a_small_request_never_gets_a_large_buffer() {
        std::thread::spawn(|| {
            let large = take(64 * 1024);
            let large_ptr = large.as_ptr();
            give(large);
            let small = take(4096);
            assert!(small.capacity() <= SMALL_CAPACITY, "{}", small.capacity());
            assert_ne!(small.as_ptr(), large_ptr);
            give(small);
            let medium = take(16 * 1024 + 32);
            assert!(
                medium.capacity() <= MEDIUM_CAPACITY,
                "{}",
                medium.capacity()
            );
            assert_ne!(medium.as_ptr(), large_ptr);
            give(medium);
            // The large one is still there for the next large request.
            let again = take(32 * 1024);
            assert_eq!(again.as_ptr(), large_ptr);
            give(again);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn trimming_frees_what_no_request_took_since_the_last_trim() {
        std::thread::spawn(|| {
            let bufs: Vec<_> = (0..10).map(|_| take(100)).collect();
            for b in bufs {
                give(b);
            }
            trim(); // sets the low-water mark at 10
            assert_eq!(cached(), (10, 0, 0));
            // Three taken (and given back) in this period: seven were never needed.
            let three: Vec<_> = (0..3).map(|_| take(100)).collect();
            for b in three {
                give(b);
            }
            trim();
            assert_eq!(cached(), (3, 0, 0));
            // A quiet period frees the rest.
            trim();
            assert_eq!(cached(), (0, 0, 0));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn oversized_buffers_are_not_cached() {
        let big = Vec::<u8>::with_capacity(MAX_CACHED_CAPACITY + 1);
        give(big);
        let b = take(1);
        assert!(b.capacity() <= MAX_CACHED_CAPACITY);
    }
}
