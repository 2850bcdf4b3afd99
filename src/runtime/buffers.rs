//! Per-worker free list of owned byte buffers.
//!
//! Owns the `Vec<u8>` buffers that connection tasks use for plaintext request bytes, response
//! heads and outgoing TLS records. A buffer is taken when a connection has work and given back
//! when it goes idle, so an idle keep-alive connection holds none and the steady state allocates
//! nothing per request.
//!
//! Invariants: the free list is thread-local (one per worker, never shared across cores); it keeps
//! at most [`MAX_CACHED`] buffers, and never caches one that grew beyond [`MAX_CACHED_CAPACITY`],
//! so its memory is bounded whatever a single request did.

use std::cell::RefCell;

/// Buffers kept on a worker's free list at most.
pub const MAX_CACHED: usize = 1024;
/// A buffer that grew past this is freed instead of cached.
pub const MAX_CACHED_CAPACITY: usize = 256 * 1024;

thread_local! {
    static FREE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// Takes an empty buffer with at least `capacity` bytes reserved.
pub fn take(capacity: usize) -> Vec<u8> {
    let reused = FREE.with(|free| free.borrow_mut().pop());
    match reused {
        Some(mut buf) => {
            buf.reserve(capacity);
            buf
        }
        None => Vec::with_capacity(capacity),
    }
}

/// Gives a buffer back to this worker's free list (or frees it when the list is full or the
/// buffer grew too large).
pub fn give(mut buf: Vec<u8>) {
    if buf.capacity() == 0 || buf.capacity() > MAX_CACHED_CAPACITY {
        return;
    }
    buf.clear();
    FREE.with(|free| {
        let mut free = free.borrow_mut();
        if free.len() < MAX_CACHED {
            free.push(buf);
        }
    });
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
    fn oversized_buffers_are_not_cached() {
        let big = Vec::<u8>::with_capacity(MAX_CACHED_CAPACITY + 1);
        give(big);
        let b = take(1);
        assert!(b.capacity() <= MAX_CACHED_CAPACITY);
    }
}
