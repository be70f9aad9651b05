//! How a fused convolution + max pooling records each window's winner, shared by every kernel
//! that writes or reads winners (`conv2d_direct`, `conv2d_winograd`, `conv2d_pool`).
//!
//! A winner is the index, in scan order, of the first strictly greatest element of its
//! window, stored as an f32 beside the pooled value (the backward pass matches it against
//! window positions with vector compares).

/// The winner of a window whose value a ReLU cut to 0: it matches no element, so its
/// gradient reaches nothing.
pub(crate) const NO_WINNER: f32 = -1.0;

/// Largest window: an index kept as an f32 is exact up to 2^24.
pub(crate) const MAX_WINDOW: usize = 1 << 24;
