//! The WGSL sources, one file per kernel family, compiled into the crate.

/// A WGSL shader module of this crate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shader {
    /// `shaders/matmul.wgsl`: tiled, register-blocked matrix products.
    Matmul,
    /// `shaders/conv2d.wgsl`: convolution and its gradients as implicit GEMMs.
    Conv2d,
    /// `shaders/pool.wgsl`: max / average / L2 pooling and their gradients.
    Pool,
    /// `shaders/elementwise.wgsl`: fill, unary maps and gradients, broadcast binary ops, expand.
    Elementwise,
    /// `shaders/reduce.wgsl`: sum / max over an axis, argmax.
    Reduce,
    /// `shaders/softmax_xent.wgsl`: (log-)softmax, its gradient, softmax cross-entropy.
    SoftmaxXent,
    /// `shaders/layout.wgsl`: concat, narrow, gather_rows, dropout masks.
    Layout,
}

impl Shader {
    /// Every shader of the crate.
    pub const ALL: [Shader; 7] = [
        Shader::Matmul,
        Shader::Conv2d,
        Shader::Pool,
        Shader::Elementwise,
        Shader::Reduce,
        Shader::SoftmaxXent,
        Shader::Layout,
    ];

    /// The file name under `shaders/`.
    pub fn file_name(self) -> &'static str {
        match self {
            Shader::Matmul => "matmul.wgsl",
            Shader::Conv2d => "conv2d.wgsl",
            Shader::Pool => "pool.wgsl",
            Shader::Elementwise => "elementwise.wgsl",
            Shader::Reduce => "reduce.wgsl",
            Shader::SoftmaxXent => "softmax_xent.wgsl",
            Shader::Layout => "layout.wgsl",
        }
    }

    /// The files under `shaders/` the module is built from: its own, plus `gemm_core.wgsl`
    /// (the tiled GEMM, not a module on its own) for matmul and conv2d.
    pub fn files(self) -> &'static [&'static str] {
        match self {
            Shader::Matmul => &["matmul.wgsl", "gemm_core.wgsl"],
            Shader::Conv2d => &["conv2d.wgsl", "gemm_core.wgsl"],
            Shader::Pool => &["pool.wgsl"],
            Shader::Elementwise => &["elementwise.wgsl"],
            Shader::Reduce => &["reduce.wgsl"],
            Shader::SoftmaxXent => &["softmax_xent.wgsl"],
            Shader::Layout => &["layout.wgsl"],
        }
    }

    /// The WGSL source of the module.
    pub fn source(self) -> &'static str {
        match self {
            Shader::Matmul => concat!(
                include_str!("../../../shaders/matmul.wgsl"),
                include_str!("../../../shaders/gemm_core.wgsl")
            ),
            Shader::Conv2d => concat!(
                include_str!("../../../shaders/conv2d.wgsl"),
                include_str!("../../../shaders/gemm_core.wgsl")
            ),
            Shader::Pool => include_str!("../../../shaders/pool.wgsl"),
            Shader::Elementwise => include_str!("../../../shaders/elementwise.wgsl"),
            Shader::Reduce => include_str!("../../../shaders/reduce.wgsl"),
            Shader::SoftmaxXent => include_str!("../../../shaders/softmax_xent.wgsl"),
            Shader::Layout => include_str!("../../../shaders/layout.wgsl"),
        }
    }
}
