//! Pooling layers: `MaxPooling2D`, `AveragePooling2D` and `L2Pooling2D`, with Keras' defaults
//! (`pool_size` (2, 2), strides equal to the pool size, `valid` padding).

use tensor::{Padding, PoolKind, PoolWindow, Tensor};

use super::{ForwardCtx, Layer};
use crate::error::{Error, Result};
use crate::init::Initializer;

/// What all three pooling layers share.
struct Pooling {
    kind: PoolKind,
    pool_size: (usize, usize),
    strides: Option<(usize, usize)>,
    padding: Padding,
    input_shape: Option<Vec<usize>>,
    name: Option<String>,
}

impl Pooling {
    fn new(kind: PoolKind) -> Self {
        Pooling {
            kind,
            pool_size: (2, 2),
            strides: None,
            padding: Padding::Valid,
            input_shape: None,
            name: None,
        }
    }
    fn strides(&self) -> (usize, usize) {
        self.strides.unwrap_or(self.pool_size)
    }
    fn build(&self, class: &str, input_shape: &[usize]) -> Result<Vec<usize>> {
        let &[h, w, c] = input_shape else {
            return Err(Error::Build(format!(
                "{class} expects (height, width, channels) input, got {input_shape:?}"
            )));
        };
        let (s_h, s_w) = self.strides();
        let (out_h, _) = tensor::shape::window_geometry(h, self.pool_size.0, s_h, self.padding)?;
        let (out_w, _) = tensor::shape::window_geometry(w, self.pool_size.1, s_w, self.padding)?;
        Ok(vec![out_h, out_w, c])
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.pool2d(self.kind, self.pool_size, self.strides(), self.padding)?)
    }
    fn window(&self) -> PoolWindow {
        PoolWindow { size: self.pool_size, strides: self.strides(), padding: self.padding }
    }
}

macro_rules! pooling_layer {
    ($(#[$doc:meta])* $ty:ident, $kind:expr, $class:literal, $base:literal) => {
        $(#[$doc])*
        pub struct $ty(Pooling);

        impl $ty {
            /// Keras' defaults: 2x2 windows, strides = pool size, `valid` padding.
            pub fn new() -> Self {
                $ty(Pooling::new($kind))
            }
            /// Window size (height, width); strides follow it unless set.
            pub fn pool_size(mut self, pool_size: (usize, usize)) -> Self {
                self.0.pool_size = pool_size;
                self
            }
            /// Strides (vertical, horizontal).
            pub fn strides(mut self, strides: (usize, usize)) -> Self {
                self.0.strides = Some(strides);
                self
            }
            /// Padding (`Valid` or `Same`).
            pub fn padding(mut self, padding: Padding) -> Self {
                self.0.padding = padding;
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
            /// The pooling windows: size, strides and padding.
            pub fn window(&self) -> PoolWindow {
                self.0.window()
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
                let (pool, strides) = (self.0.pool_size, self.0.strides());
                Some(serde_json::json!({
                    "pool_size": [pool.0, pool.1],
                    "strides": [strides.0, strides.1],
                    "padding": crate::saving::padding_name(self.0.padding),
                }))
            }
        }
    };
}

pooling_layer!(
    /// Max pooling over 2-D windows.
    MaxPooling2D, PoolKind::Max, "MaxPooling2D", "max_pooling2d"
);
pooling_layer!(
    /// Average pooling over 2-D windows (padding not counted).
    AveragePooling2D, PoolKind::Average, "AveragePooling2D", "average_pooling2d"
);
pooling_layer!(
    /// L2-norm pooling: `sqrt(sum(x^2))` over 2-D windows.
    L2Pooling2D, PoolKind::L2, "L2Pooling2D", "l2_pooling2d"
);
