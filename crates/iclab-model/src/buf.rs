//! Zeroed f32 buffers for the activations, on transparent huge pages where the system allows.
//!
//! Why: a training step walks far more memory than the TLB covers with 4 KiB pages (the small
//! preset's activations are ~120 MiB, the standard one's ~1.5 GiB), and in a virtual machine
//! every TLB miss is a two-level page walk. Linux gives huge pages to anonymous memory only
//! where the process asks for them (`/sys/kernel/mm/transparent_hugepage/enabled` = madvise is
//! common), and only on 2 MiB-aligned ranges, which `Vec`'s allocations are not. So buffers of
//! 1 MiB and more are allocated here 2 MiB-aligned, advised with MADV_HUGEPAGE, and only then
//! zeroed (the first touch is what allocates the pages). Only the memory layout changes: every
//! value computed in them is the same.

use std::alloc::{self, Layout};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// 2 MiB: the x86-64 huge page, and the alignment of the large buffers.
const HUGE: usize = 2 << 20;
/// From this size on a buffer gets its own 2 MiB-aligned allocation (smaller ones stay on the
/// heap: rounding them up to a huge page would waste more than it saves).
const HUGE_FROM: usize = 1 << 20;

/// An owned, zero-initialised `[f32]` (the activations and gradients of a chunk of the batch).
pub(crate) struct Buf {
    ptr: NonNull<f32>,
    len: usize,
    /// The allocation's layout; None for an empty buffer (nothing allocated).
    layout: Option<Layout>,
}

// SAFETY: Buf owns its allocation exclusively, like Vec<f32>.
unsafe impl Send for Buf {}
// SAFETY: shared references only read, like &[f32].
unsafe impl Sync for Buf {}

impl Default for Buf {
    fn default() -> Buf {
        Buf {
            ptr: NonNull::dangling(),
            len: 0,
            layout: None,
        }
    }
}

impl Buf {
    /// `len` zeros.
    pub(crate) fn zeroed(len: usize) -> Buf {
        let bytes = len
            .checked_mul(std::mem::size_of::<f32>())
            .expect("buffer size overflows usize");
        if bytes == 0 {
            return Buf::default();
        }
        let layout = if bytes >= HUGE_FROM {
            Layout::from_size_align(bytes.next_multiple_of(HUGE), HUGE)
        } else {
            Layout::from_size_align(bytes, 64)
        }
        .expect("buffer size overflows isize");
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { alloc::alloc(layout) };
        let Some(ptr) = NonNull::new(raw) else {
            alloc::handle_alloc_error(layout)
        };
        if layout.align() == HUGE {
            advise_huge_pages(raw, layout.size());
        }
        // SAFETY: the allocation holds layout.size() >= bytes bytes; zeroing it makes every f32
        // initialised (all-zero bits are 0.0).
        unsafe { std::ptr::write_bytes(raw, 0, bytes) };
        Buf {
            ptr: ptr.cast(),
            len,
            layout: Some(layout),
        }
    }
}

/// Asks the kernel for transparent huge pages on [ptr, ptr + size) (2 MiB-aligned). A refusal
/// (no THP support, another OS) only leaves the default pages, so its result is not checked.
fn advise_huge_pages(ptr: *mut u8, size: usize) {
    #[cfg(target_os = "linux")]
    // SAFETY: the range is one live allocation of ours; madvise does not change its contents.
    unsafe {
        libc::madvise(ptr.cast(), size, libc::MADV_HUGEPAGE);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (ptr, size);
}

impl Drop for Buf {
    fn drop(&mut self) {
        if let Some(layout) = self.layout {
            // SAFETY: allocated in `zeroed` with this layout.
            unsafe { alloc::dealloc(self.ptr.as_ptr().cast(), layout) };
        }
    }
}

impl Deref for Buf {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        // SAFETY: ptr holds len initialised f32s (or is dangling with len 0).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for Buf {
    fn deref_mut(&mut self) -> &mut [f32] {
        // SAFETY: as in deref, and &mut self makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_zeroed_writable_and_large_ones_huge_aligned() {
        for len in [0, 1, 17, (HUGE_FROM / 4) - 1, HUGE_FROM / 4, 3 * HUGE / 4 + 5] {
            let mut b = Buf::zeroed(len);
            assert_eq!(b.len(), len);
            assert!(b.iter().all(|&v| v == 0.0));
            for (i, v) in b.iter_mut().enumerate() {
                *v = i as f32;
            }
            assert!(b.iter().enumerate().all(|(i, &v)| v == i as f32));
            if len * 4 >= HUGE_FROM {
                assert_eq!(b.as_ptr() as usize % HUGE, 0, "len {len}");
            }
        }
    }
}
