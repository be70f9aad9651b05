//! Image augmentation layers (Keras' `RandomFlip`, `RandomTranslation`, `RandomRotation`,
//! `RandomZoom`): in training each image goes through its own random affine transform
//! ([`Tensor::affine_transform`]); at inference they pass the input through. Each draws its
//! transforms on the host from the step's seed (mixed with the layer's `seed`, when given), so
//! the same seeds give the same images on every backend.
//!
//! The transforms are Keras 3's: `transforms.rs` builds them as Keras'
//! `_get_translation_matrix`, `_compute_affine_matrix` and `_get_zoom_matrix` do.

mod transforms;

use rand::rngs::StdRng;
use rand::SeedableRng;
use tensor::{FillMode, Interpolation, Tensor};

use super::{ForwardCtx, Layer};
use crate::error::{Error, Result};
use crate::init::Initializer;
pub use transforms::Factor;
use transforms::Kind;

/// Keras' name of a fill mode.
pub(crate) fn fill_mode_name(mode: FillMode) -> &'static str {
    match mode {
        FillMode::Reflect => "reflect",
        FillMode::Wrap => "wrap",
        FillMode::Constant => "constant",
        FillMode::Nearest => "nearest",
    }
}

/// The fill mode of a Keras name.
pub(crate) fn fill_mode_of(name: &str) -> Option<FillMode> {
    [FillMode::Reflect, FillMode::Wrap, FillMode::Constant, FillMode::Nearest]
        .into_iter()
        .find(|&m| fill_mode_name(m) == name)
}

/// Keras' name of an interpolation.
pub(crate) fn interpolation_name(interpolation: Interpolation) -> &'static str {
    match interpolation {
        Interpolation::Nearest => "nearest",
        Interpolation::Bilinear => "bilinear",
    }
}

/// The interpolation of a Keras name.
pub(crate) fn interpolation_of(name: &str) -> Option<Interpolation> {
    [Interpolation::Nearest, Interpolation::Bilinear].into_iter().find(|&i| interpolation_name(i) == name)
}

/// What every augmentation layer holds besides its kind of transform.
#[derive(Clone, Debug)]
struct Augmentation {
    kind: Kind,
    interpolation: Interpolation,
    fill_mode: FillMode,
    fill_value: f32,
    seed: Option<u64>,
    input_shape: Option<Vec<usize>>,
    name: Option<String>,
}

impl Augmentation {
    fn new(kind: Kind) -> Self {
        Augmentation {
            kind,
            interpolation: Interpolation::Bilinear,
            fill_mode: FillMode::Reflect,
            fill_value: 0.0,
            seed: None,
            input_shape: None,
            name: None,
        }
    }

    fn build(&self, class: &str, input_shape: &[usize]) -> Result<Vec<usize>> {
        let &[h, w, _] = input_shape else {
            return Err(Error::Build(format!(
                "{class} expects (height, width, channels) images, got input of shape {input_shape:?}"
            )));
        };
        if h == 0 || w == 0 {
            return Err(Error::Build(format!("{class} got empty images of shape {input_shape:?}")));
        }
        self.kind.check(class)?;
        if !self.fill_value.is_finite() {
            return Err(Error::Build(format!("{class} fill_value {} must be finite", self.fill_value)));
        }
        Ok(input_shape.to_vec())
    }

    fn forward(&self, x: &Tensor, ctx: ForwardCtx) -> Result<Tensor> {
        if !ctx.training {
            return Ok(x.clone());
        }
        let &[n, h, w, _] = x.dims() else {
            return Err(Error::Build(format!("expects NHWC images, got shape {:?}", x.dims())));
        };
        let mut rng = StdRng::seed_from_u64(ctx.seed_with(self.seed));
        let transforms = self.kind.draw(n, h, w, &mut rng);
        let transforms = Tensor::from_vec(transforms, [n, tensor::shape::TRANSFORM_LEN], x.device())?;
        Ok(x.affine_transform(&transforms, self.interpolation, self.fill_mode, self.fill_value)?)
    }

    fn config(&self) -> serde_json::Value {
        let mut config = self.kind.config();
        if !matches!(self.kind, Kind::Flip { .. }) {
            config["fill_mode"] = fill_mode_name(self.fill_mode).into();
            config["interpolation"] = interpolation_name(self.interpolation).into();
            config["fill_value"] = self.fill_value.into();
        }
        config["seed"] = self.seed.into();
        config["data_format"] = "channels_last".into();
        config
    }
}

/// Declares an augmentation layer: the public type, its shared builders and its `Layer` impl.
macro_rules! augmentation_layer {
    ($(#[$meta:meta])* $name:ident, $class:literal, $base:literal, resampling: $resampling:tt) => {
        $(#[$meta])*
        #[derive(Clone, Debug)]
        pub struct $name(Augmentation);

        impl $name {
            /// Seeds the layer's draws (Keras' `seed`): the same seed and training step, the
            /// same transforms.
            pub fn seed(mut self, seed: u64) -> Self {
                self.0.seed = Some(seed);
                self
            }
            /// Declares the per-sample input shape `[height, width, channels]`.
            pub fn input_shape(mut self, shape: impl Into<Vec<usize>>) -> Self {
                self.0.input_shape = Some(shape.into());
                self
            }
            /// Names the layer.
            pub fn name(mut self, name: impl Into<String>) -> Self {
                self.0.name = Some(name.into());
                self
            }
            augmentation_layer!(@resampling $resampling);
        }

        impl Layer for $name {
            fn class_name(&self) -> &'static str {
                $class
            }
            fn base_name(&self) -> &'static str {
                $base
            }
            fn given_name(&self) -> Option<&str> {
                self.0.name.as_deref()
            }
            fn declared_input_shape(&self) -> Option<&[usize]> {
                self.0.input_shape.as_deref()
            }
            fn build(&mut self, input_shape: &[usize], _init: &mut Initializer) -> Result<Vec<usize>> {
                self.0.build($class, input_shape)
            }
            fn forward(&mut self, x: &Tensor, ctx: ForwardCtx) -> Result<Tensor> {
                self.0.forward(x, ctx)
            }
            fn config(&self) -> Option<serde_json::Value> {
                Some(self.0.config())
            }
        }
    };
    (@resampling true) => {
        /// What is read outside the image (Keras' `fill_mode`; default `Reflect`).
        pub fn fill_mode(mut self, fill_mode: FillMode) -> Self {
            self.0.fill_mode = fill_mode;
            self
        }
        /// How reads between pixels are interpolated (default `Bilinear`).
        pub fn interpolation(mut self, interpolation: Interpolation) -> Self {
            self.0.interpolation = interpolation;
            self
        }
        /// The value `FillMode::Constant` reads outside the image (default 0).
        pub fn fill_value(mut self, fill_value: f32) -> Self {
            self.0.fill_value = fill_value;
            self
        }
    };
    (@resampling false) => {};
}

augmentation_layer! {
    /// Flips images at random in training (Keras' `RandomFlip`): each image with probability
    /// one half. With both directions (the default), as in Keras, one draw per image decides
    /// both: an image is flipped both ways or not at all.
    RandomFlip, "RandomFlip", "random_flip", resampling: false
}

augmentation_layer! {
    /// Shifts images at random in training (Keras' `RandomTranslation`): by a fraction of the
    /// height drawn from `height_factor` and of the width from `width_factor`, filling
    /// what is uncovered as `fill_mode` says.
    ///
    /// ```
    /// use nn::layers::{RandomRotation, RandomTranslation};
    /// let mut model = nn::Sequential::new();
    /// model.add(RandomTranslation::new(0.1, 0.1).input_shape([28, 28, 1]))?;
    /// model.add(RandomRotation::new(0.05))?;
    /// assert_eq!(model.count_params(), 0);
    /// # Ok::<(), nn::Error>(())
    /// ```
    RandomTranslation, "RandomTranslation", "random_translation", resampling: true
}

augmentation_layer! {
    /// Rotates images about their centre at random in training (Keras' `RandomRotation`): by an
    /// angle drawn from `factor` times 360 degrees (Keras' arithmetic; its documentation says
    /// "a fraction of 2 pi"), positive counter-clockwise.
    RandomRotation, "RandomRotation", "random_rotation", resampling: true
}

augmentation_layer! {
    /// Zooms images about their centre at random in training (Keras' `RandomZoom`): each axis
    /// scaled by `1 + factor`, drawn from `height_factor` (and `width_factor`, or the same
    /// draw when it is `None`); a positive factor zooms out.
    RandomZoom, "RandomZoom", "random_zoom", resampling: true
}

impl RandomFlip {
    /// Keras' `mode`: `"horizontal"`, `"vertical"` or `"horizontal_and_vertical"` (default).
    pub fn new(mode: &str) -> Result<Self> {
        let (horizontal, vertical) = match mode {
            "horizontal" => (true, false),
            "vertical" => (false, true),
            "horizontal_and_vertical" => (true, true),
            other => {
                return Err(Error::Build(format!(
                    "RandomFlip mode {other:?} is not one of \"horizontal\", \"vertical\", \
                     \"horizontal_and_vertical\""
                )))
            }
        };
        let mut layer = Augmentation::new(Kind::Flip { horizontal, vertical });
        layer.interpolation = Interpolation::Nearest;
        Ok(RandomFlip(layer))
    }
}

impl Default for RandomFlip {
    fn default() -> Self {
        RandomFlip::new("horizontal_and_vertical").expect("a known mode")
    }
}

impl RandomTranslation {
    /// Shifts of up to `height_factor` of the height and `width_factor` of the width (a number
    /// `f` is the range `[-|f|, |f|]`; factors within `[-1, 1]`).
    pub fn new(height_factor: impl Into<Factor>, width_factor: impl Into<Factor>) -> Self {
        RandomTranslation(Augmentation::new(Kind::Translation {
            height: height_factor.into(),
            width: width_factor.into(),
        }))
    }
}

impl RandomRotation {
    /// Rotations by up to `factor` turns (a number `f` is `[-|f|, |f|]`; within `[-1, 1]`).
    pub fn new(factor: impl Into<Factor>) -> Self {
        RandomRotation(Augmentation::new(Kind::Rotation { factor: factor.into() }))
    }
}

impl RandomZoom {
    /// Zooms by `1 + height_factor` (a number `f` is `[-|f|, |f|]`; factors in `(-1, 1]`),
    /// the width by the same draw.
    pub fn new(height_factor: impl Into<Factor>) -> Self {
        RandomZoom(Augmentation::new(Kind::Zoom { height: height_factor.into(), width: None }))
    }
    /// Zooms the width by its own draw from `width_factor`.
    pub fn width_factor(mut self, width_factor: impl Into<Factor>) -> Self {
        if let Kind::Zoom { width, .. } = &mut self.0.kind {
            *width = Some(width_factor.into());
        }
        self
    }
}
