//! Shared by the property tests: a global allocator that records the largest single allocation
//! made by the current thread (so a test can check a parser never sizes a buffer from a header
//! that lies), and byte mutations of valid files.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use proptest::prelude::*;
use proptest::sample::Index;

/// Forwards to the system allocator and notes each request's size.
pub struct LargestAllocation;

thread_local! {
    // Const-initialised and without a destructor: touching it never allocates.
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // `try_with` so allocations during thread teardown are simply not counted.
    let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
}

// SAFETY: every call is forwarded unchanged to `System`; only a thread-local counter is added.
unsafe impl GlobalAlloc for LargestAllocation {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which `System` shares.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: as for `alloc`; `ptr` and `layout` come from this allocator, i.e. from `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Runs `f` and returns its result with the largest single allocation it made on this thread.
pub fn largest_allocation_during<R>(f: impl FnOnce() -> R) -> (R, usize) {
    LARGEST.with(|l| l.set(0));
    let result = f();
    (result, LARGEST.with(Cell::get))
}

/// One change to a file's bytes.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// XORs a byte with a non-zero value.
    Flip(Index, u8),
    /// Cuts the file.
    Truncate(Index),
    /// Inserts bytes.
    Insert(Index, Vec<u8>),
    /// Overwrites a header dimension (or any 4 bytes, for a short file) with a big-endian value.
    SetWord(Index, u32),
}

/// Any [`Mutation`], favouring header words that are zero, one, huge or MNIST-sized.
pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 1u8..).prop_map(|(i, x)| Mutation::Flip(i, x)),
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(i, b)| Mutation::Insert(i, b)),
        (
            any::<Index>(),
            prop_oneof![Just(0u32), Just(1), Just(u32::MAX), Just(1 << 16), Just(60000), any::<u32>()]
        )
            .prop_map(|(i, w)| Mutation::SetWord(i, w)),
    ]
}

/// Applies `m` to `bytes`.
pub fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    match m {
        Mutation::Flip(_, _) | Mutation::Truncate(_) | Mutation::SetWord(..) if bytes.is_empty() => {}
        Mutation::Flip(i, x) => {
            let at = i.index(bytes.len());
            bytes[at] ^= x;
        }
        Mutation::Truncate(i) => bytes.truncate(i.index(bytes.len())),
        Mutation::Insert(i, b) => {
            let at = i.index(bytes.len() + 1);
            bytes.splice(at..at, b.iter().copied());
        }
        Mutation::SetWord(i, w) => {
            // Aligned to the header's words, so it mostly hits a dimension.
            let words = bytes.len().div_ceil(4);
            let at = i.index(words) * 4;
            for (k, b) in w.to_be_bytes().into_iter().enumerate() {
                if let Some(slot) = bytes.get_mut(at + k) {
                    *slot = b;
                }
            }
        }
    }
}
