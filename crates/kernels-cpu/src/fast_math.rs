//! `exp`, `tanh` and the logistic sigmoid without branches or library calls, so the
//! elementwise loops that use them vectorise. `f32::tanh` and `f32::exp` call libm one element
//! at a time (~20 ns each): a model's tanh layer cost more than its dense product.
//!
//! The approximations are Cephes' single-precision ones (a degree-6 polynomial after range
//! reduction by ln 2 for `exp`; an odd polynomial near zero and `1 - 2 / (e^2x + 1)` elsewhere
//! for `tanh`), accurate to a few units in the last place; the tests bound the error against
//! f64 over the whole range.

/// 1.5 * 2^23: adding it rounds an f32 of magnitude < 2^22 to the nearest integer, which then
/// sits in the low mantissa bits.
const ROUND_MAGIC: f32 = 12_582_912.0;

/// `e^x`. Inputs above 88 give `e^88` (no overflow to infinity), below -87 give
/// `e^-87`; NaN gives NaN.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in two so that `n * LN2_HI` is exact for the n that occur.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // `clamp`, not `max`/`min` (which drop a NaN): a NaN passes through.
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * LOG2E + ROUND_MAGIC;
    let n = shifted - ROUND_MAGIC;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 5e-1;
    let e_r = p * r * r + r + 1.0;
    // 2^n built in the exponent field; n is in [-126, 127] after the clamp above.
    let n_int = shifted.to_bits() as i32 - ROUND_MAGIC.to_bits() as i32;
    e_r * f32::from_bits(((n_int + 127) << 23) as u32)
}

/// `tanh(x)`.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let a = x.abs();
    // Near zero `1 - 2 / (e^2x + 1)` cancels; Cephes' odd polynomial is used below 0.625.
    let z = x * x;
    let p = -5.704_988_7e-3;
    let p = p * z + 2.063_909e-2;
    let p = p * z - 5.373_971_6e-2;
    let p = p * z + 1.333_144_2e-1;
    let p = p * z - 3.333_328e-1;
    let small = x + x * z * p;
    // tanh(10) rounds to 1 in f32, so larger inputs need not reach exp.
    let large = 1.0 - 2.0 / (exp(2.0 * a.min(10.0)) + 1.0);
    let large = f32::from_bits(large.to_bits() | (x.to_bits() & 0x8000_0000));
    // A NaN takes the polynomial branch, which keeps it NaN.
    if a < 0.625 || x.is_nan() {
        small
    } else {
        large
    }
}

/// The logistic function `1 / (1 + e^-x)`.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// `erf(x)`: its Taylor polynomial below 0.5 (relative error near 1e-7, where the tail form
/// would lose the small values), else Abramowitz and Stegun's 7.1.26 (absolute error 1.5e-7
/// in exact arithmetic), with this module's `exp`: no libm call, so a loop over it
/// vectorises. `shaders/elementwise.wgsl`'s `erf` is the same formula.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let p = 1.061_405_4;
    let p = p * t - 1.453_152;
    let p = p * t + 1.421_413_8;
    let p = p * t - 0.284_496_74;
    let p = p * t + 0.254_829_6;
    let tail = (1.0 - p * t * exp(-a * a)).copysign(x);
    // 2 / sqrt(pi) * (x - x^3/3 + x^5/10 - x^7/42 + x^9/216 - x^11/1320)
    let x2 = x * x;
    let series = -1.0 / 1320.0;
    let series = series * x2 + 1.0 / 216.0;
    let series = series * x2 - 1.0 / 42.0;
    let series = series * x2 + 0.1;
    let series = series * x2 - 1.0 / 3.0;
    let series = (series * x2 + 1.0) * x * std::f32::consts::FRAC_2_SQRT_PI;
    if a < 0.5 {
        series
    } else {
        tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 200,000 evenly spaced points of a range, its ends, and signed zeros and tiny values.
    fn samples(lo: f32, hi: f32) -> impl Iterator<Item = f32> {
        let grid = (0..200_000).map(move |i| lo + (hi - lo) * i as f32 / 200_000.0);
        grid.chain([lo, hi, 0.0, -0.0, 1e-30, -1e-30])
    }

    fn check(name: &str, f: fn(f32) -> f32, reference: fn(f64) -> f64, lo: f32, hi: f32, tol: f64) {
        let mut worst = 0.0f64;
        for x in samples(lo, hi) {
            let (got, want) = (f(x) as f64, reference(x as f64));
            let err = (got - want).abs() / want.abs().max(f64::MIN_POSITIVE);
            assert!(err <= tol, "{name}({x}) = {got}, want {want} (relative error {err:e})");
            worst = worst.max(err);
        }
        assert!(worst > 0.0, "{name}: no rounding error at all is suspicious of a reference call");
    }

    #[test]
    fn exp_is_accurate_over_its_range() {
        check("exp", exp, f64::exp, -87.0, 88.0, 4e-7);
    }

    #[test]
    fn tanh_is_accurate_everywhere() {
        check("tanh", tanh, f64::tanh, -12.0, 12.0, 4e-7);
        // Around the switch between the two formulas.
        check("tanh", tanh, f64::tanh, 0.6, 0.65, 4e-7);
        check("tanh", tanh, f64::tanh, -0.65, -0.6, 4e-7);
        assert_eq!(tanh(1e4), 1.0);
        assert_eq!(tanh(-1e4), -1.0);
        assert!(tanh(f32::NAN).is_nan());
    }

    #[test]
    fn sigmoid_is_accurate_where_it_is_not_tiny() {
        check("sigmoid", sigmoid, |x| 1.0 / (1.0 + (-x).exp()), -80.0, 80.0, 5e-7);
        assert_eq!(sigmoid(200.0), 1.0);
        assert!(sigmoid(-200.0) < 1e-37);
    }

    #[test]
    fn erf_is_within_abramowitz_and_stegun_bound() {
        for x in samples(-6.0, 6.0).chain(samples(-1e-3, 1e-3)) {
            let (got, want) = (erf(x) as f64, tensor::conformance::reference::erf(x as f64));
            let error = (got - want).abs();
            // Relative near 0 (the series), absolute beyond (A&S plus f32 rounding).
            let bound = if x.abs() < 0.5 { 5e-7 * want.abs() + 1e-12 } else { 4e-7 };
            assert!(error <= bound, "erf({x}) = {got}, want {want}");
        }
        assert!(erf(f32::NAN).is_nan());
    }

    #[test]
    fn exp_saturates_instead_of_overflowing() {
        assert!(exp(1000.0).is_finite());
        assert!(exp(-1000.0) > 0.0);
        assert!(exp(f32::NAN).is_nan());
    }
}
