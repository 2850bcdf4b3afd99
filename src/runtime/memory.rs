//! How the process's memory is backed.
//!
//! Owns two decisions about pages:
//!
//! - The heap stays out of transparent huge pages ([`keep_heap_off_huge_pages`]). mimalloc
//!   asks the kernel to back its arenas with 2 MiB pages; then memory is resident, and can
//!   only be given back, 2 MiB at a time, so a worker that frees the buffers of thousands of
//!   connections keeps most of it: measured with 1,000 slow readers, 25 KiB more per
//!   connection with huge pages, and no measurable difference in CPU per request (GET 1 KiB
//!   and 64 KiB, 50 and 2,000 connections, side by side).
//! - The ring's provided buffers are each their own anonymous mapping ([`RingMemory`]).
//!   Allocated from the heap, the first touch of the pool (the allocator writing its free-list
//!   link into each block as it carves them) made all of it resident at once: 16 MiB for 512
//!   buffers on the first request, measured. In their own mappings a buffer costs only the
//!   4 KiB pages the kernel has written received bytes into.
//!
//! Invariants: a ring buffer is `len` bytes of private anonymous memory, page-aligned, freed
//! only by [`RingMemory::deallocate`] with the same length; allocation failure aborts, as
//! `Box` does.

use std::alloc::Layout;
use std::mem::MaybeUninit;
use std::ptr::NonNull;

use compio::driver::BufferAllocator;

/// Opts the whole process out of transparent huge pages (PR_SET_THP_DISABLE), before the
/// workers allocate: see the module doc. Failure (an old kernel) is logged and harmless.
pub fn keep_heap_off_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes one integer argument and changes only how the kernel
    // backs this process's future page faults.
    let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1 as libc::c_ulong, 0, 0, 0) };
    if rc != 0 {
        tracing::debug!("PR_SET_THP_DISABLE: {}", std::io::Error::last_os_error());
    }
}

/// The provided-buffer pool's allocator (see the module doc).
pub struct RingMemory;

impl BufferAllocator for RingMemory {
    fn allocate(len: u32) -> NonNull<MaybeUninit<u8>> {
        let len = len.max(1) as usize;
        // SAFETY: an anonymous private mapping of `len` bytes with no address hint touches no
        // existing memory; the result is checked for MAP_FAILED below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            let layout = Layout::from_size_align(len, 4096).unwrap_or(Layout::new::<u8>());
            std::alloc::handle_alloc_error(layout);
        }
        // SAFETY: `ptr..ptr + len` is the mapping just made; the advice only changes how the
        // kernel backs it. Failure (a kernel without THP) is harmless and ignored.
        unsafe { libc::madvise(ptr, len, libc::MADV_NOHUGEPAGE) };
        match NonNull::new(ptr.cast::<MaybeUninit<u8>>()) {
            Some(ptr) => ptr,
            None => std::alloc::handle_alloc_error(Layout::new::<u8>()),
        }
    }

    unsafe fn deallocate(ptr: NonNull<MaybeUninit<u8>>, len: u32) {
        // SAFETY: the caller passes a pointer `allocate` returned with the same `len`, so this
        // unmaps exactly that mapping, which nothing uses any more.
        unsafe { libc::munmap(ptr.as_ptr().cast(), len.max(1) as usize) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_page_aligned_writable_and_freed() {
        let len = crate::runtime::RING_BUFFER_LEN as u32;
        let ptr = RingMemory::allocate(len);
        assert_eq!(ptr.as_ptr() as usize % 4096, 0);
        // SAFETY: the mapping is `len` writable bytes, used only here.
        let bytes = unsafe { std::slice::from_raw_parts_mut(ptr.as_ptr(), len as usize) };
        bytes[0].write(1);
        bytes[len as usize - 1].write(2);
        // SAFETY: allocated above with the same length, no longer used.
        unsafe { RingMemory::deallocate(ptr, len) };
    }
}
