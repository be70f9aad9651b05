//! Output buffers: recycling of large ones, and building them chunk by chunk in parallel.
//!
//! A training step allocates the same activation and gradient sizes over and over. The system
//! allocator serves large blocks with fresh `mmap`s and returns them on free, so every step
//! would pay a page fault (and the kernel's zeroing) per 4 KiB of every activation, a large
//! share of an epoch (docs/performance.md). Instead, when a [`crate::CpuStorage`] of at
//! least [`MIN_RECYCLED_LEN`] elements is dropped, its buffer goes into a process-wide pool
//! keyed by length, and kernels take their outputs from there first.
//!
//! The pool holds at most [`MAX_CACHED_BYTES`]; [`clear_buffer_cache`] empties it.

use rayon::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::sync::Mutex;

/// Buffers shorter than this (128 KiB) are left to the allocator, which serves them from its
/// arenas without system calls.
pub const MIN_RECYCLED_LEN: usize = 32 * 1024;

/// Upper bound on the memory the pool keeps for reuse (256 MiB).
pub const MAX_CACHED_BYTES: usize = 256 << 20;

struct Pool {
    /// Free buffers by length; each has `len == 0` and `capacity == key`.
    free: HashMap<usize, Vec<Vec<f32>>>,
    /// Bytes held in `free`.
    cached_bytes: usize,
}

static POOL: Mutex<Option<Pool>> = Mutex::new(None);

/// Runs `f` on the pool. A poisoned lock (a panic while holding it, which only happens in a
/// bug) is still usable: the pool is a cache and every state is consistent.
fn with_pool<R>(f: impl FnOnce(&mut Pool) -> R) -> R {
    let mut guard = POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let pool = guard.get_or_insert_with(|| Pool { free: HashMap::new(), cached_bytes: 0 });
    f(pool)
}

/// An empty vector with room for exactly `len` elements, recycled when possible (its old
/// contents are not visible: the length is 0).
pub(crate) fn take(len: usize) -> Vec<f32> {
    if len >= MIN_RECYCLED_LEN {
        let recycled = with_pool(|pool| {
            let buffer = pool.free.get_mut(&len)?.pop()?;
            pool.cached_bytes -= len * size_of::<f32>();
            Some(buffer)
        });
        if let Some(buffer) = recycled {
            debug_assert!(buffer.is_empty() && buffer.capacity() == len);
            return buffer;
        }
    }
    Vec::with_capacity(len)
}

/// `len` zeros, in a recycled buffer when possible.
pub(crate) fn take_zeroed(len: usize) -> Vec<f32> {
    let mut buffer = take(len);
    buffer.resize(len, 0.0);
    buffer
}

/// Offers a buffer that is no longer needed to the pool. Only full, large buffers are kept
/// (the kernels allocate exact sizes), and only while the pool is under its cap.
pub(crate) fn recycle(mut buffer: Vec<f32>) {
    let len = buffer.capacity();
    if len < MIN_RECYCLED_LEN || buffer.len() != len {
        return;
    }
    let bytes = len * size_of::<f32>();
    buffer.clear();
    with_pool(|pool| {
        if pool.cached_bytes + bytes <= MAX_CACHED_BYTES {
            pool.cached_bytes += bytes;
            pool.free.entry(len).or_default().push(buffer);
        }
        // Otherwise `buffer` is dropped here and its memory goes back to the allocator.
    });
}

/// Frees every buffer the CPU backend keeps for reuse (for instance after training, before a
/// phase that needs the memory elsewhere). Returns the number of bytes released.
pub fn clear_buffer_cache() -> usize {
    let drained = with_pool(|pool| {
        let bytes = pool.cached_bytes;
        pool.cached_bytes = 0;
        (std::mem::take(&mut pool.free), bytes)
    });
    // The buffers are freed here, outside the lock.
    drained.1
}

/// Bytes currently held for reuse.
pub fn cached_bytes() -> usize {
    with_pool(|pool| pool.cached_bytes)
}

/// Bytes of a cache line.
const LINE_BYTES: usize = 64;

/// Floats of a cache line.
pub(crate) const LINE_FLOATS: usize = LINE_BYTES / size_of::<f32>();

/// Runs `f` with a thread-local scratch buffer of `len` floats (contents unspecified: what
/// the thread's last user left), so per-task scratch (im2col matrices, padded images) is
/// neither reallocated nor zeroed for every task. Re-entered on one thread (a task that
/// waits inside rayon may run another), the inner call gets a fresh buffer. The buffer starts
/// on a cache line: the allocator's 16-byte alignment had every 64-byte vector load and store
/// of the Winograd kernels' blocks straddle two lines.
pub(crate) fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    thread_local! {
        static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    }
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buffer) => {
            if buffer.len() < len + LINE_FLOATS {
                buffer.resize(len + LINE_FLOATS, 0.0);
            }
            let skip = buffer.as_ptr().align_offset(LINE_BYTES);
            f(&mut buffer[skip..skip + len])
        }
        Err(_) => {
            let mut buffer = vec![0.0; len + LINE_FLOATS];
            let skip = buffer.as_ptr().align_offset(LINE_BYTES);
            f(&mut buffer[skip..skip + len])
        }
    })
}

/// A vector of `len` floats built chunk by chunk, without zeroing it first:
/// `init(index, piece)` runs on consecutive `chunk`-long pieces (the last may be shorter), on
/// rayon's threads when `parallel`. The memory comes from the buffer pool.
///
/// # Safety
/// `init` must write every element of the piece it is given.
pub(crate) unsafe fn build_chunks(
    len: usize,
    chunk: usize,
    parallel: bool,
    init: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync + Send,
) -> Vec<f32> {
    let mut out = take(len);
    let spare = &mut out.spare_capacity_mut()[..len];
    if len > 0 {
        let chunk = chunk.clamp(1, len);
        if parallel {
            spare.par_chunks_mut(chunk).enumerate().for_each(|(i, piece)| init(i, piece));
        } else {
            spare.chunks_mut(chunk).enumerate().for_each(|(i, piece)| init(i, piece));
        }
    }
    // SAFETY: `init` initialised every element (the caller's promise); had it panicked, we
    // would not get here.
    unsafe { out.set_len(len) };
    out
}

/// `piece` zeroed, as floats.
fn zeroed(piece: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    piece.fill(MaybeUninit::new(0.0));
    // SAFETY: every element was just initialised, and `MaybeUninit<f32>` has the layout of
    // `f32`.
    unsafe { &mut *(piece as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

/// [`build_chunks`] for kernels that accumulate: each piece is zeroed by the task that fills
/// it (in parallel, and just before use so it is still in cache) rather than by one big
/// `memset` up front, which for a 6 MB activation costs as much as a cheap kernel.
pub(crate) fn zeroed_chunks(
    len: usize,
    chunk: usize,
    parallel: bool,
    fill: impl Fn(usize, &mut [f32]) + Sync + Send,
) -> Vec<f32> {
    let init = |index: usize, piece: &mut [MaybeUninit<f32>]| fill(index, zeroed(piece));
    // SAFETY: `init` zeroes its whole piece before anything else.
    unsafe { build_chunks(len, chunk, parallel, init) }
}

/// Two outputs of `len` floats built in matching pieces, in parallel, without zeroing them
/// first: `fill(state, index, a, b)` gets the `index`-th `chunk`-long piece of each (the
/// last may be shorter) and per-thread `state` from `init` (scratch buffers).
///
/// # Safety
/// `fill` must write every element of both pieces it is given.
pub(crate) unsafe fn build_chunk_pairs<T>(
    len: usize,
    chunk: usize,
    init: impl Fn() -> T + Sync + Send,
    fill: impl Fn(&mut T, usize, &mut [MaybeUninit<f32>], &mut [MaybeUninit<f32>]) + Sync + Send,
) -> (Vec<f32>, Vec<f32>) {
    let (mut a, mut b) = (take(len), take(len));
    if len > 0 {
        let chunk = chunk.clamp(1, len);
        let pieces = a.spare_capacity_mut()[..len]
            .par_chunks_mut(chunk)
            .zip(b.spare_capacity_mut()[..len].par_chunks_mut(chunk));
        pieces.enumerate().for_each_init(init, |state, (index, (a, b))| fill(state, index, a, b));
    }
    // SAFETY: `fill` wrote every piece of both (the caller's promise); had a task panicked,
    // we would not get here.
    unsafe {
        a.set_len(len);
        b.set_len(len);
    }
    (a, b)
}

/// [`build_chunk_pairs`] for kernels that accumulate or write sparsely: each piece is
/// zeroed by the task that fills it (in cache, on every thread) rather than by two big
/// single-threaded `memset`s up front.
pub(crate) fn zeroed_chunk_pairs<T>(
    len: usize,
    chunk: usize,
    init: impl Fn() -> T + Sync + Send,
    fill: impl Fn(&mut T, usize, &mut [f32], &mut [f32]) + Sync + Send,
) -> (Vec<f32>, Vec<f32>) {
    let zero_then_fill = |state: &mut T, index, a: &mut [MaybeUninit<f32>], b: &mut [MaybeUninit<f32>]| {
        fill(state, index, zeroed(a), zeroed(b))
    };
    // SAFETY: `zero_then_fill` zeroes both pieces before anything else.
    unsafe { build_chunk_pairs(len, chunk, init, zero_then_fill) }
}

/// Upper bound on the number of partial sums (of a filter or bias gradient) taken in
/// parallel and added at the end: enough tasks to balance many cores, few enough that adding
/// them is cheap.
pub const MAX_FILTER_PARTIALS: usize = 16;

/// Runs `fill(images, partial)` for slots of consecutive images (or rows) of a `batch` in parallel,
/// each with its own zeroed `partial_len` partial gradient, and returns the partials in slot
/// order. The slots are a function of the batch size only, so sums over them taken in order
/// do not depend on the number of threads.
pub(crate) fn slot_partials(
    batch: usize,
    partial_len: usize,
    fill: impl Fn(std::ops::Range<usize>, &mut [f32]) + Sync,
) -> Vec<f32> {
    let slots = batch.clamp(1, MAX_FILTER_PARTIALS);
    let images_per_slot = batch.div_ceil(slots);
    let mut partials = vec![0.0; slots * partial_len];
    partials.par_chunks_mut(partial_len.max(1)).enumerate().for_each(|(slot, partial)| {
        let first = slot * images_per_slot;
        fill(first.min(batch)..(first + images_per_slot).min(batch), partial)
    });
    partials
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_buffers_are_recycled() {
        // An odd length no other test uses, so parallel tests do not interfere.
        let len = MIN_RECYCLED_LEN + 12_345;
        let mut buffer = take(len);
        buffer.resize(len, 7.0);
        let address = buffer.as_ptr();
        recycle(buffer);
        let again = take(len);
        assert!(again.is_empty() && again.capacity() == len);
        assert_eq!(again.as_ptr(), address, "the same allocation comes back");
        recycle(again);
        let zeros = take_zeroed(len);
        assert!(zeros.len() == len && zeros.iter().all(|&v| v == 0.0));
        // Small and partly filled buffers are simply freed (nothing to observe but no panic).
        recycle(vec![1.0f32; 100]);
        let mut partial = Vec::with_capacity(len + 1);
        partial.push(1.0f32);
        recycle(partial);
    }

    #[test]
    fn scratch_starts_on_a_cache_line() {
        for len in [1, 17, 4096, 100_003] {
            with_scratch(len, |outer| {
                assert_eq!(outer.len(), len);
                assert!(outer.as_ptr().cast::<u8>().align_offset(LINE_BYTES) == 0);
                // Re-entered: a fresh buffer, aligned too.
                with_scratch(len, |inner| {
                    assert_eq!(inner.len(), len);
                    assert!(inner.as_ptr().cast::<u8>().align_offset(LINE_BYTES) == 0);
                });
            });
        }
    }

    #[test]
    fn chunk_pairs_are_zeroed_and_filled_piece_by_piece() {
        // Lengths that leave a short last piece, and a recycled (dirty) buffer underneath.
        let len = MIN_RECYCLED_LEN + 7;
        let mut dirty = take(len);
        dirty.resize(len, f32::NAN);
        recycle(dirty);
        let (a, b) = zeroed_chunk_pairs(
            len,
            1000,
            || 0usize,
            |calls, index, a, b| {
                *calls += 1;
                assert!(a.iter().chain(b.iter()).all(|&v| v == 0.0));
                assert_eq!(a.len(), b.len());
                a[0] = index as f32;
                b[a.len() - 1] = -(index as f32);
            },
        );
        assert_eq!((a.len(), b.len()), (len, len));
        for (index, (a, b)) in a.chunks(1000).zip(b.chunks(1000)).enumerate() {
            assert_eq!(a[0], index as f32);
            assert_eq!(b[b.len() - 1], -(index as f32));
            assert!(a[1..].iter().chain(&b[..b.len() - 1]).all(|&v| v == 0.0) || a.len() == 1);
        }
    }
}
