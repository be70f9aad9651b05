//! A counter-based random number generator: the `i`-th number of stream `seed` is a pure
//! function of `(seed, i)`. Every backend (and every WGSL shader) computes the same values,
//! in any order and on any number of threads, with 32-bit integer arithmetic only.

/// A 32-bit integer hash with good avalanche ("lowbias32", C. Wellons).
pub fn hash32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x
}

/// The pair of 32-bit keys a 64-bit seed is reduced to; shaders receive these two words.
pub fn seed_keys(seed: u64) -> (u32, u32) {
    let lo = hash32(seed as u32);
    let hi = hash32(((seed >> 32) as u32) ^ 0x9e37_79b9);
    (lo, hi)
}

/// Uniform in `[0, 1)` with 24 random bits, from precomputed [`seed_keys`].
pub fn uniform_with_keys(keys: (u32, u32), index: u32) -> f32 {
    let h = hash32(hash32(index ^ keys.0) ^ keys.1);
    (h >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// The `index`-th uniform number in `[0, 1)` of stream `seed`.
pub fn uniform(seed: u64, index: u32) -> f32 {
    uniform_with_keys(seed_keys(seed), index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_is_in_range_and_roughly_flat() {
        let n = 100_000;
        let mut buckets = [0usize; 10];
        for i in 0..n {
            let u = uniform(42, i);
            assert!((0.0..1.0).contains(&u));
            buckets[(u * 10.0) as usize] += 1;
        }
        for b in buckets {
            // Each bucket expects 10,000 with standard deviation ~95.
            assert!((9_500..10_500).contains(&b), "bucket count {b}");
        }
    }

    #[test]
    fn streams_differ_by_seed() {
        let same = (0..1000).filter(|&i| uniform(1, i) == uniform(2, i)).count();
        assert!(same < 5);
        assert_eq!(uniform(7, 123), uniform(7, 123));
    }
}
