//! Where an image's channel axis is (Keras' `data_format`): layers compute in
//! `channels_last` (NHWC, the backends' layout) and a `channels_first` layer transposes its
//! input to it and its output back.

use tensor::Tensor;

use crate::error::{Error, Result};

/// The layout of a layer's images, as Keras' `data_format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DataFormat {
    /// `(height, width, channels)` per sample (Keras' default and the backends' layout).
    #[default]
    ChannelsLast,
    /// `(channels, height, width)` per sample; the layer transposes to and from
    /// `ChannelsLast`, one pass over memory each way.
    ChannelsFirst,
}

impl DataFormat {
    /// Keras' name: `"channels_last"` or `"channels_first"`.
    pub fn keras_name(self) -> &'static str {
        match self {
            DataFormat::ChannelsLast => "channels_last",
            DataFormat::ChannelsFirst => "channels_first",
        }
    }

    /// The format of a Keras name.
    pub fn from_keras_name(name: &str) -> Option<Self> {
        [DataFormat::ChannelsLast, DataFormat::ChannelsFirst].into_iter().find(|f| f.keras_name() == name)
    }

    /// A per-sample image shape in this format as `(height, width, channels)`; an error naming
    /// `class` for a shape that is not an image.
    pub(crate) fn to_hwc(self, class: &str, shape: &[usize]) -> Result<[usize; 3]> {
        let &[a, b, c] = shape else {
            let layout = match self {
                DataFormat::ChannelsLast => "(height, width, channels)",
                DataFormat::ChannelsFirst => "(channels, height, width)",
            };
            return Err(Error::Build(format!(
                "{class} ({}) expects {layout} input, got {shape:?}",
                self.keras_name()
            )));
        };
        Ok(match self {
            DataFormat::ChannelsLast => [a, b, c],
            DataFormat::ChannelsFirst => [b, c, a],
        })
    }

    /// A `(height, width, channels)` shape in this format.
    pub(crate) fn shape_in_format(self, [h, w, c]: [usize; 3]) -> Vec<usize> {
        match self {
            DataFormat::ChannelsLast => vec![h, w, c],
            DataFormat::ChannelsFirst => vec![c, h, w],
        }
    }

    /// A batch in this format as NHWC.
    pub(crate) fn to_nhwc(self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            DataFormat::ChannelsLast => x.clone(),
            DataFormat::ChannelsFirst => x.permute(&[0, 2, 3, 1])?,
        })
    }

    /// An NHWC batch in this format.
    pub(crate) fn restore_format(self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            DataFormat::ChannelsLast => x.clone(),
            DataFormat::ChannelsFirst => x.permute(&[0, 3, 1, 2])?,
        })
    }
}
