//! What the normalization kernels (`norm`, and `norm_pool` for a max pooling fused after
//! them) share, so that their results agree bit for bit: the forward map and its ReLU, how a
//! channels-last tensor is cut into blocks of rows, and how blocks' sums are combined.

/// Values per block of a channels-last statistic (rows times channels).
const BLOCK_VALUES: usize = 8192;

/// Rows per block for `channels`-long rows.
pub(crate) fn block_rows(channels: usize) -> usize {
    (BLOCK_VALUES / channels.max(1)).max(1)
}

/// ReLU as the unary op computes it (NaN becomes 0).
#[inline(always)]
pub(crate) fn relu(v: f32) -> f32 {
    if v > 0.0 {
        v
    } else {
        0.0
    }
}

/// The forward map `x * scale + shift` (`channel_affine`), the one expression its backward
/// kernels recompute the ReLU's input with, so that their mask is the output's bit for bit.
#[inline(always)]
pub(crate) fn affine(x: f32, scale: f32, shift: f32) -> f32 {
    x * scale + shift
}

/// The channels-last blocks' sums (`[2, channels]` each) added in order, as `channel_moments`
/// merges its blocks (rayon's `reduce` would group them differently from run to run), in f32.
pub(crate) fn fold_block_sums(blocks: Vec<Vec<f64>>, channels: usize) -> Vec<f32> {
    let add = |mut p: Vec<f64>, q: Vec<f64>| {
        p.iter_mut().zip(q).for_each(|(p, q)| *p += q);
        p
    };
    blocks.into_iter().fold(vec![0.0; 2 * channels], add).iter().map(|&v| v as f32).collect()
}
