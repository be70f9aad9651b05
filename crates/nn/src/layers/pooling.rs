//! Pooling layers with Keras' defaults: `MaxPooling2D`, `AveragePooling2D` and `L2Pooling2D`
//! (`pool_size` (2, 2), strides equal to the pool size, `valid` padding), and
//! `GlobalAveragePooling2D` and `GlobalMaxPooling2D` (one value per channel over the whole
//! image; `channels_last`, `keepdims=False`).
//!
//! A global pooling is a pooling whose one window is the whole image, so both backends run it
//! with their pooling kernels, forward and backward.

use tensor::{Padding, PoolKind, PoolWindow, Tensor};

use super::{DataFormat, ForwardCtx, Layer, LayerMeta};
use crate::error::{Error, Result};
use crate::init::Initializer;

/// What the three windowed pooling layers share.
struct Pooling {
    kind: PoolKind,
    pool_size: (usize, usize),
    strides: Option<(usize, usize)>,
    padding: Padding,
    data_format: DataFormat,
    meta: LayerMeta,
}

impl Pooling {
    fn new(kind: PoolKind) -> Self {
        Pooling {
            kind,
            pool_size: (2, 2),
            strides: None,
            padding: Padding::Valid,
            data_format: DataFormat::ChannelsLast,
            meta: LayerMeta::default(),
        }
    }
    fn strides(&self) -> (usize, usize) {
        self.strides.unwrap_or(self.pool_size)
    }
    fn build(&self, class: &str, input_shape: &[usize]) -> Result<Vec<usize>> {
        let [h, w, c] = self.data_format.to_hwc(class, input_shape)?;
        let (s_h, s_w) = self.strides();
        let (out_h, _) = tensor::shape::window_geometry(h, self.pool_size.0, s_h, self.padding)?;
        let (out_w, _) = tensor::shape::window_geometry(w, self.pool_size.1, s_w, self.padding)?;
        Ok(self.data_format.shape_in_format([out_h, out_w, c]))
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.data_format.to_nhwc(x)?;
        self.data_format.restore_format(&x.pool2d(self.kind, self.pool_size, self.strides(), self.padding)?)
    }
    fn window(&self) -> PoolWindow {
        PoolWindow { size: self.pool_size, strides: self.strides(), padding: self.padding }
    }
    fn config(&self) -> serde_json::Value {
        let (pool, strides) = (self.pool_size, self.strides());
        let mut config = serde_json::json!({
            "pool_size": [pool.0, pool.1],
            "strides": [strides.0, strides.1],
            "padding": crate::saving::padding_name(self.padding),
        });
        // Written only when not the default, so default models' files stay as they were.
        if self.data_format != DataFormat::ChannelsLast {
            config["data_format"] = self.data_format.keras_name().into();
        }
        config
    }
}

/// What the two global pooling layers share.
struct GlobalPooling {
    kind: PoolKind,
    keepdims: bool,
    data_format: DataFormat,
    meta: LayerMeta,
}

impl GlobalPooling {
    fn new(kind: PoolKind) -> Self {
        GlobalPooling {
            kind,
            keepdims: false,
            data_format: DataFormat::ChannelsLast,
            meta: LayerMeta::default(),
        }
    }
    fn build(&self, class: &str, input_shape: &[usize]) -> Result<Vec<usize>> {
        let [h, w, c] = self.data_format.to_hwc(class, input_shape)?;
        if h * w == 0 {
            return Err(Error::Build(format!("{class} expects a non-empty image, got {input_shape:?}")));
        }
        Ok(if self.keepdims { self.data_format.shape_in_format([1, 1, c]) } else { vec![c] })
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.data_format.to_nhwc(x)?;
        let &[batch, h, w, c] = x.dims() else {
            return Err(Error::Data(format!("global pooling expects [batch, h, w, c], got {:?}", x.dims())));
        };
        let pooled = x.pool2d(self.kind, (h, w), (h, w), Padding::Valid)?;
        if self.keepdims {
            self.data_format.restore_format(&pooled)
        } else {
            Ok(pooled.reshape([batch, c])?)
        }
    }
    fn config(&self) -> serde_json::Value {
        serde_json::json!({ "data_format": self.data_format.keras_name(), "keepdims": self.keepdims })
    }
}

/// A pooling layer over `$inner` (`Pooling` or `GlobalPooling`, which build, run and describe
/// it): the type, naming and the `Layer` impl (`new` comes with the settings, below).
macro_rules! pooling_layer {
    ($(#[$doc:meta])* $ty:ident($inner:ident), $class:literal, $base:literal) => {
        $(#[$doc])*
        pub struct $ty($inner);

        impl $ty {
            /// Declares the per-sample input shape.
            pub fn input_shape(mut self, shape: impl Into<Vec<usize>>) -> Self {
                self.0.meta.input_shape = Some(shape.into());
                self
            }
            /// Names the layer.
            pub fn name(mut self, name: impl Into<String>) -> Self {
                self.0.meta.name = Some(name.into());
                self
            }
            /// Where the channel axis is (Keras' `data_format`; default `ChannelsLast`).
            pub fn data_format(mut self, data_format: DataFormat) -> Self {
                self.0.data_format = data_format;
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
                self.0.meta.name.as_deref()
            }
            fn declared_input_shape(&self) -> Option<&[usize]> {
                self.0.meta.input_shape.as_deref()
            }
            fn build(&mut self, input_shape: &[usize], _init: &mut Initializer) -> Result<Vec<usize>> {
                self.0.build($class, input_shape)
            }
            fn forward(&mut self, x: &Tensor, _ctx: ForwardCtx) -> Result<Tensor> {
                self.0.forward(x)
            }
            fn config(&self) -> Option<serde_json::Value> {
                Some(self.0.config())
            }
        }
    };
}

/// The constructor and window settings of the windowed pooling layers.
macro_rules! windowed {
    ($($ty:ident: $kind:expr),+) => {$(
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
            /// The pooling windows: size, strides and padding.
            pub fn window(&self) -> PoolWindow {
                self.0.window()
            }
        }
    )+};
}

/// The constructor and `keepdims` of the global pooling layers.
macro_rules! global {
    ($($ty:ident: $kind:expr),+) => {$(
        impl $ty {
            /// Keras' defaults: `channels_last`, the spatial axes dropped.
            pub fn new() -> Self {
                $ty(GlobalPooling::new($kind))
            }
            /// Keep the spatial axes as size 1 (output `(1, 1, channels)`), as Keras'
            /// `keepdims=True`.
            pub fn keepdims(mut self, keepdims: bool) -> Self {
                self.0.keepdims = keepdims;
                self
            }
        }
    )+};
}

pooling_layer!(
    /// Max pooling over 2-D windows.
    MaxPooling2D(Pooling), "MaxPooling2D", "max_pooling2d"
);
pooling_layer!(
    /// Average pooling over 2-D windows (padding not counted).
    AveragePooling2D(Pooling), "AveragePooling2D", "average_pooling2d"
);
pooling_layer!(
    /// L2-norm pooling: `sqrt(sum(x^2))` over 2-D windows.
    L2Pooling2D(Pooling), "L2Pooling2D", "l2_pooling2d"
);
windowed!(MaxPooling2D: PoolKind::Max, AveragePooling2D: PoolKind::Average, L2Pooling2D: PoolKind::L2);

impl MaxPooling2D {
    /// Whether the layer pools `channels_last` images (a fused convolution's pooling must).
    pub(crate) fn is_channels_last(&self) -> bool {
        self.0.data_format == DataFormat::ChannelsLast
    }
}

pooling_layer!(
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
    GlobalAveragePooling2D(GlobalPooling), "GlobalAveragePooling2D", "global_average_pooling2d"
);
pooling_layer!(
    /// The largest value of each channel over the image: `(h, w, c)` to `(c)`. Its gradient
    /// reaches the first largest element of each channel.
    GlobalMaxPooling2D(GlobalPooling), "GlobalMaxPooling2D", "global_max_pooling2d"
);
global!(GlobalAveragePooling2D: PoolKind::Average, GlobalMaxPooling2D: PoolKind::Max);
