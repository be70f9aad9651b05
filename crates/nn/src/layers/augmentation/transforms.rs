//! The random transforms of the augmentation layers, built as Keras 3 builds them.

use rand::Rng;
use serde_json::json;

use crate::error::{Error, Result};

/// A range of factors (Keras' `factor` arguments): a number `f` means `[-|f|, |f|]`, a pair
/// its sorted bounds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Factor {
    /// Smallest value drawn.
    pub lower: f32,
    /// Largest value drawn.
    pub upper: f32,
}

impl From<f32> for Factor {
    fn from(f: f32) -> Self {
        Factor { lower: -f.abs(), upper: f.abs() }
    }
}

impl From<(f32, f32)> for Factor {
    fn from((a, b): (f32, f32)) -> Self {
        Factor { lower: a.min(b), upper: a.max(b) }
    }
}

impl Factor {
    /// A uniform draw from the range (its bound when the range is one value).
    fn draw(&self, rng: &mut impl Rng) -> f32 {
        if self.upper > self.lower {
            rng.random_range(self.lower..self.upper)
        } else {
            self.lower
        }
    }

    /// Refuses bounds outside `(min, 1]` (`min_open`) or `[min, 1]`.
    fn check(&self, class: &str, what: &str, min: f32, min_open: bool) -> Result<()> {
        let low_ok = if min_open { self.lower > min } else { self.lower >= min };
        if !(low_ok && self.upper <= 1.0) || self.lower.is_nan() || self.upper.is_nan() {
            let range = if min_open { format!("({min}, 1]") } else { format!("[{min}, 1]") };
            return Err(Error::Build(format!(
                "{class} {what} ({}, {}) must lie within {range}",
                self.lower, self.upper
            )));
        }
        Ok(())
    }

    fn json(&self) -> serde_json::Value {
        json!([self.lower, self.upper])
    }
}

/// Which transform a layer draws.
#[derive(Clone, Debug)]
pub(super) enum Kind {
    Flip { horizontal: bool, vertical: bool },
    Translation { height: Factor, width: Factor },
    Rotation { factor: Factor },
    Zoom { height: Factor, width: Option<Factor> },
}

/// The identity transform.
const IDENTITY: [f32; 8] = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0];

/// Keras' `_get_translation_matrix`: the image moves by `(dx, dy)` pixels.
pub(super) fn translation(dx: f32, dy: f32) -> [f32; 8] {
    [1.0, 0.0, -dx, 0.0, 1.0, -dy, 0.0, 0.0]
}

/// Keras' `_compute_affine_matrix` for a rotation by `degrees` about the image's centre.
pub(super) fn rotation(degrees: f32, h: usize, w: usize) -> [f32; 8] {
    let angle = degrees * (std::f64::consts::PI / 180.0) as f32;
    let (cx, cy) = (0.5 * (w as f32 - 1.0), 0.5 * (h as f32 - 1.0));
    let (cos, sin) = (angle.cos(), angle.sin());
    let (a0, a1, b0, b1) = (cos, -sin, sin, cos);
    [a0, a1, cx - cx * a0 - cy * a1, b0, b1, cy - cx * b0 - cy * b1, 0.0, 0.0]
}

/// Keras' `_get_zoom_matrix`: the width scaled by `zx`, the height by `zy`, about the centre.
pub(super) fn zoom(zx: f32, zy: f32, h: usize, w: usize) -> [f32; 8] {
    let x_offset = (w as f32 - 1.0) / 2.0 * (1.0 - zx);
    let y_offset = (h as f32 - 1.0) / 2.0 * (1.0 - zy);
    [zx, 0.0, x_offset, 0.0, zy, y_offset, 0.0, 0.0]
}

impl Kind {
    /// Refuses factors Keras refuses.
    pub fn check(&self, class: &str) -> Result<()> {
        match self {
            Kind::Flip { .. } => Ok(()),
            Kind::Translation { height, width } => {
                height.check(class, "height_factor", -1.0, false)?;
                width.check(class, "width_factor", -1.0, false)
            }
            Kind::Rotation { factor } => factor.check(class, "factor", -1.0, false),
            Kind::Zoom { height, width } => {
                height.check(class, "height_factor", -1.0, true)?;
                width.map_or(Ok(()), |w| w.check(class, "width_factor", -1.0, true))
            }
        }
    }

    /// `n` transforms (`[n, 8]`, flat) for `h` x `w` images, in Keras' order of draws per
    /// image.
    pub fn draw(&self, n: usize, h: usize, w: usize, rng: &mut impl Rng) -> Vec<f32> {
        let mut out = Vec::with_capacity(n * 8);
        for _ in 0..n {
            let t = match *self {
                Kind::Flip { horizontal, vertical } => {
                    let mut t = IDENTITY;
                    if rng.random::<f32>() <= 0.5 {
                        if horizontal {
                            (t[0], t[2]) = (-1.0, w as f32 - 1.0);
                        }
                        if vertical {
                            (t[4], t[5]) = (-1.0, h as f32 - 1.0);
                        }
                    }
                    t
                }
                Kind::Translation { height, width } => {
                    let dy = height.draw(rng) * h as f32;
                    let dx = width.draw(rng) * w as f32;
                    translation(dx, dy)
                }
                Kind::Rotation { factor } => {
                    let degrees =
                        Factor { lower: factor.lower * 360.0, upper: factor.upper * 360.0 }.draw(rng);
                    rotation(degrees, h, w)
                }
                Kind::Zoom { height, width } => {
                    let zy = 1.0 + height.draw(rng);
                    let zx = width.map_or(zy, |f| 1.0 + f.draw(rng));
                    zoom(zx, zy, h, w)
                }
            };
            out.extend(t);
        }
        out
    }

    /// The kind's Keras config fields.
    pub fn config(&self) -> serde_json::Value {
        match self {
            Kind::Flip { horizontal, vertical } => {
                let mode = match (horizontal, vertical) {
                    (true, true) => "horizontal_and_vertical",
                    (true, false) => "horizontal",
                    _ => "vertical",
                };
                json!({ "mode": mode })
            }
            Kind::Translation { height, width } => {
                json!({ "height_factor": height.json(), "width_factor": width.json() })
            }
            Kind::Rotation { factor } => json!({ "factor": factor.json() }),
            Kind::Zoom { height, width } => {
                json!({ "height_factor": height.json(), "width_factor": width.map(|w| w.json()) })
            }
        }
    }
}
