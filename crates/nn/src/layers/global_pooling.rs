//! `GlobalAveragePooling2D` and `GlobalMaxPooling2D`: one value per channel, over the whole
//! image (Keras' defaults: `channels_last`, `keepdims=False`).
//!
//! Each is a pooling whose one window is the whole image, so both backends run it with their
//! pooling kernels, forward and backward, and nothing new is needed below `nn`.

use tensor::{Padding, PoolKind, Tensor};

use super::{ForwardCtx, Layer};
use crate::error::{Error, Result};
use crate::init::Initializer;

/// What both global poolings share.
struct GlobalPooling {
    kind: PoolKind,
    keepdims: bool,
    input_shape: Option<Vec<usize>>,
    name: Option<String>,
}

impl GlobalPooling {
    fn build(&self, class: &str, input_shape: &[usize]) -> Result<Vec<usize>> {
        match *input_shape {
            [h, w, c] if h * w > 0 => Ok(if self.keepdims { vec![1, 1, c] } else { vec![c] }),
            _ => Err(Error::Build(format!(
                "{class} expects a non-empty (height, width, channels) input, got {input_shape:?}"
            ))),
        }
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let &[batch, h, w, c] = x.dims() else {
            return Err(Error::Data(format!("global pooling expects [batch, h, w, c], got {:?}", x.dims())));
        };
        let pooled = x.pool2d(self.kind, (h, w), (h, w), Padding::Valid)?;
        Ok(if self.keepdims { pooled } else { pooled.reshape([batch, c])? })
    }
}

macro_rules! global_pooling_layer {
    ($(#[$doc:meta])* $ty:ident, $kind:expr, $class:literal, $base:literal) => {
        $(#[$doc])*
        pub struct $ty(GlobalPooling);

        impl $ty {
            /// Keras' defaults: `channels_last`, the spatial axes dropped.
            pub fn new() -> Self {
                $ty(GlobalPooling { kind: $kind, keepdims: false, input_shape: None, name: None })
            }
            /// Keep the spatial axes as size 1 (output `(1, 1, channels)`), as Keras'
            /// `keepdims=True`.
            pub fn keepdims(mut self, keepdims: bool) -> Self {
                self.0.keepdims = keepdims;
                self
            }
            /// Declares the per-sample input shape.
            pub fn input_shape(mut self, shape: impl Into<Vec<usize>>) -> Self {
                self.0.input_shape = Some(shape.into());
                self
            }
            /// Names the layer.
            pub fn name(mut self, name: impl Into<String>) -> Self {
                self.0.name = Some(name.into());
                self
            }
        }

        impl Default for $ty {
            fn default() -> Self {
                Self::new()
            }
        }

        impl Layer for $ty {
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
            fn forward(&self, x: &Tensor, _ctx: ForwardCtx) -> Result<Tensor> {
                self.0.forward(x)
            }
            fn config(&self) -> Option<serde_json::Value> {
                Some(serde_json::json!({ "data_format": "channels_last", "keepdims": self.0.keepdims }))
            }
        }
    };
}

global_pooling_layer!(
    /// The mean of each channel over the image: `(h, w, c)` to `(c)`.
    ///
    /// ```
    /// use nn::layers::{Conv2D, Dense, GlobalAveragePooling2D};
    /// let mut model = nn::Sequential::new();
    /// model.add(Conv2D::new(8, (3, 3)).input_shape([28, 28, 1]))?;
    /// model.add(GlobalAveragePooling2D::new())?;
    /// model.add(Dense::new(10))?;
    /// assert_eq!(model.count_params(), 8 * 9 + 8 + 8 * 10 + 10);
    /// # Ok::<(), nn::Error>(())
    /// ```
    GlobalAveragePooling2D,
    PoolKind::Average,
    "GlobalAveragePooling2D",
    "global_average_pooling2d"
);

global_pooling_layer!(
    /// The largest value of each channel over the image: `(h, w, c)` to `(c)`. Its gradient
    /// reaches the first largest element of each channel.
    GlobalMaxPooling2D,
    PoolKind::Max,
    "GlobalMaxPooling2D",
    "global_max_pooling2d"
);
