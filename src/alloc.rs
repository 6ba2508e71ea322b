//! The global allocator of the flowgate binary and its benchmarks: mimalloc, asked for plain
//! blocks whenever its size classes already give the alignment Rust asks for.
//!
//! Why not `mimalloc::MiMalloc`: it sends every allocation through `mi_malloc_aligned`, and
//! mimalloc 3 serves an aligned request of more than 1 KiB whose size class is not a power of
//! two (a hyper buffer, a growing `Vec`) by over-allocating from a different size class, so
//! those blocks never come from a page of their own class: callgrind counted 17 such slow
//! allocations per request (~255 instructions each), and `perf` showed the page searches and
//! collections they cause as 5–8% of the server's time. Rust's own `System` allocator makes the
//! same choice as here for glibc's `malloc`.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys::{
    mi_free, mi_malloc, mi_malloc_aligned, mi_realloc, mi_realloc_aligned, mi_zalloc,
    mi_zalloc_aligned,
};

/// The largest alignment every mimalloc block of at least that size has (`MI_MAX_ALIGN_SIZE`):
/// its size classes are multiples of 8 bytes, those of 16 bytes or more multiples of 16, and
/// pages start 16-byte aligned.
const PLAIN_ALIGN: usize = 16;

/// mimalloc, with plain `mi_malloc`/`mi_realloc` for alignments its blocks already have.
pub struct Allocator;

/// Whether a block of `size` bytes from plain `mi_malloc` is aligned to `align`.
#[inline]
fn plain(size: usize, align: usize) -> bool {
    align <= PLAIN_ALIGN && align <= size
}

// SAFETY: every method forwards to mimalloc, which returns blocks of at least the requested
// size aligned as requested (plain blocks only where `plain` holds, see `PLAIN_ALIGN`), or
// null; `mi_free` and `mi_realloc*` accept any block mimalloc returned.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if plain(layout.size(), layout.align()) {
            mi_malloc(layout.size()) as *mut u8
        } else {
            mi_malloc_aligned(layout.size(), layout.align()) as *mut u8
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if plain(layout.size(), layout.align()) {
            mi_zalloc(layout.size()) as *mut u8
        } else {
            mi_zalloc_aligned(layout.size(), layout.align()) as *mut u8
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        mi_free(ptr as *mut c_void);
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if plain(new_size, layout.align()) {
            mi_realloc(ptr as *mut c_void, new_size) as *mut u8
        } else {
            mi_realloc_aligned(ptr as *mut c_void, new_size, layout.align()) as *mut u8
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every size up to 64 KiB (and some larger) at every alignment up to 4 KiB comes back
    /// aligned, from `alloc`, `alloc_zeroed` (zeroed) and `realloc` (contents kept).
    #[test]
    fn blocks_are_aligned_as_asked() {
        let sizes =
            (1..=4096)
                .chain((4097..=65536).step_by(97))
                .chain([1 << 20, (1 << 20) + 8, 5 << 20]);
        for size in sizes {
            for align in [1, 2, 4, 8, 16, 32, 64, 128, 4096] {
                let Ok(layout) = Layout::from_size_align(size, align) else {
                    continue;
                };
                if size % align != 0 {
                    continue; // not a Rust type's layout
                }
                // SAFETY: non-zero sizes; each block is freed with its own layout.
                unsafe {
                    let p = Allocator.alloc(layout);
                    assert!(
                        !p.is_null() && (p as usize).is_multiple_of(align),
                        "alloc {size}/{align}"
                    );
                    p.write_bytes(0xA5, size);
                    let grown = size * 3 / 2 + align;
                    let grown = grown - grown % align;
                    let q = Allocator.realloc(p, layout, grown);
                    assert!(
                        !q.is_null() && (q as usize).is_multiple_of(align),
                        "realloc {size}/{align}"
                    );
                    assert_eq!(*q.add(size - 1), 0xA5, "realloc kept the contents");
                    Allocator.dealloc(q, Layout::from_size_align(grown, align).unwrap());

                    let z = Allocator.alloc_zeroed(layout);
                    assert!(
                        !z.is_null() && (z as usize).is_multiple_of(align),
                        "zalloc {size}/{align}"
                    );
                    assert!(std::slice::from_raw_parts(z, size).iter().all(|b| *b == 0));
                    Allocator.dealloc(z, layout);
                }
            }
        }
    }
}
