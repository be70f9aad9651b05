//! The kernels' host side, one module per family: input checks, the parameters each shader
//! reads from its uniform, and the dispatch geometry.

pub(crate) mod conv2d;
pub(crate) mod elementwise;
pub(crate) mod image;
pub(crate) mod layout;
pub(crate) mod matmul;
pub(crate) mod norm;
pub(crate) mod pool;
pub(crate) mod reduce;
pub(crate) mod softmax;

use tensor::{Result, TensorError};

/// `value` as a shader's u32 parameter, or an error naming what does not fit.
pub(crate) fn u32_param(op: &str, what: &str, value: usize) -> Result<u32> {
    u32::try_from(value).map_err(|_| {
        TensorError::Backend(format!("{op}: {what} = {value} does not fit the shaders' 32-bit indices"))
    })
}
