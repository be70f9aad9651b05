//! Image resampling for data augmentation: `affine_transform` (Keras'
//! `keras.ops.image.affine_transform`). It has no gradient: augmentation reads the model's
//! inputs, which are constants.

use crate::error::{Result, TensorError};
use crate::shape::{AffineTransformSpec, FillMode, Interpolation};
use crate::tensor::Tensor;

impl Tensor {
    /// Resamples each image of an NHWC batch through its transform, a row of `transforms`
    /// (`[batch, 8]`, Keras' `[a0, a1, a2, b0, b1, b2, c0, c1]`): output pixel `(y, x)` reads
    /// the input at column `(a0 x + a1 y + a2) / k` and row `(b0 x + b1 y + b2) / k`, where
    /// `k = c0 x + c1 y + 1`. Reads between pixels are interpolated; reads outside the image
    /// follow `fill_mode` ([`FillMode::index`], per interpolation tap, as Keras' JAX backend
    /// does). The identity is `[1, 0, 0, 0, 1, 0, 0, 0]`.
    ///
    /// The result is a constant: an input that tracks gradients is refused, since no gradient
    /// is defined here.
    pub fn affine_transform(
        &self,
        transforms: &Tensor,
        interpolation: Interpolation,
        fill_mode: FillMode,
        fill_value: f32,
    ) -> Result<Tensor> {
        self.same_device(transforms, "affine_transform")?;
        if self.tracks_grad() || transforms.tracks_grad() {
            return Err(TensorError::InvalidArgument(
                "affine_transform has no gradient: its images and transforms must be constants \
                 (augmentation layers belong at a model's input)"
                    .into(),
            ));
        }
        let spec =
            AffineTransformSpec::new(self.dims(), transforms.dims(), interpolation, fill_mode, fill_value)?;
        let storage = self.device().call("affine_transform", &format_args!("{spec:?}"), |b| {
            b.affine_transform(self.storage(), transforms.storage(), &spec)
        })?;
        Tensor::from_storage(storage, self.shape().clone(), self.device())
    }
}
