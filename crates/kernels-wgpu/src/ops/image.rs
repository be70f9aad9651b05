//! Image resampling through affine transforms (`shaders/image.wgsl`).

use super::u32_param;
use crate::context::{wgpu_storage, Access};
use crate::params::ImageParams;
use crate::shaders::Shader;
use crate::WgpuBackend;
use tensor::shape::{AffineTransformSpec, Interpolation};
use tensor::{ImageOps, Result, Storage};

impl ImageOps for WgpuBackend {
    fn affine_transform(
        &self,
        x: &Storage,
        transforms: &Storage,
        spec: &AffineTransformSpec,
    ) -> Result<Storage> {
        let ctx = &self.context;
        let op = "affine_transform";
        let x = wgpu_storage(x, ctx, op)?;
        let transforms = wgpu_storage(transforms, ctx, op)?;
        let n = spec.batch * spec.height * spec.width * spec.channels;
        let out = ctx.alloc(op, n)?;
        if n > 0 {
            let params = ImageParams {
                n: u32_param(op, "elements", n)?,
                height: spec.height as u32,
                width: spec.width as u32,
                channels: spec.channels as u32,
                interpolation: match spec.interpolation {
                    Interpolation::Nearest => 0,
                    Interpolation::Bilinear => 1,
                },
                fill_mode: spec.fill_mode.code(),
                fill_value: spec.fill_value,
                _pad0: 0,
            };
            let bindings = [
                (1, x.buffer(), Access::Read),
                (2, transforms.buffer(), Access::Read),
                (3, out.buffer(), Access::Write),
            ];
            ctx.dispatch(Shader::Image, op, &params, &bindings, ctx.grid_1d(n as u64))?;
        }
        ctx.store(out)
    }
}
