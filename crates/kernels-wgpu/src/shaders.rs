//! The WGSL sources, one file per kernel family, compiled into the crate.

/// `(file names, their texts concatenated)` for a module built from `shaders/` files, so the
/// list that names a module's files is the one its source is compiled from.
macro_rules! built_from {
    ($($file:literal),+) => {
        (&[$($file),+], concat!($(include_str!(concat!("../shaders/", $file))),+))
    };
}

/// A WGSL shader module of this crate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shader {
    /// `shaders/matmul.wgsl`: tiled, register-blocked matrix products of any shape.
    Matmul,
    /// `shaders/matmul_vec4.wgsl`: the same products, reading the operands as vec4s (when their
    /// contiguous axes are multiples of 4).
    MatmulVec4,
    /// `shaders/conv2d.wgsl`: convolution and its gradients as implicit GEMMs.
    Conv2d,
    /// `shaders/conv2d.wgsl` with the `conv2d_pool_store.wgsl` epilogue: convolution, 2x2 max
    /// pooling and ReLU as one GEMM that writes only the pooled output and each window's
    /// winner.
    Conv2dPool,
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
    /// `shaders/image.wgsl`: image resampling through affine transforms (augmentation).
    Image,
    /// `shaders/permute.wgsl`: axis permutations (`channels_first` layers' transposes).
    Permute,
    /// `shaders/norm.wgsl`: per-channel moments, sums and affine maps (normalization).
    Norm,
}

impl Shader {
    /// Every shader of the crate.
    pub const ALL: [Shader; 12] = [
        Shader::Matmul,
        Shader::MatmulVec4,
        Shader::Conv2d,
        Shader::Conv2dPool,
        Shader::Pool,
        Shader::Elementwise,
        Shader::Reduce,
        Shader::SoftmaxXent,
        Shader::Layout,
        Shader::Image,
        Shader::Permute,
        Shader::Norm,
    ];

    /// The file name under `shaders/`.
    pub fn file_name(self) -> &'static str {
        match self {
            Shader::Matmul => "matmul.wgsl",
            Shader::MatmulVec4 => "matmul_vec4.wgsl",
            Shader::Conv2d => "conv2d.wgsl",
            Shader::Conv2dPool => "conv2d_pool_store.wgsl",
            Shader::Pool => "pool.wgsl",
            Shader::Elementwise => "elementwise.wgsl",
            Shader::Reduce => "reduce.wgsl",
            Shader::SoftmaxXent => "softmax_xent.wgsl",
            Shader::Layout => "layout.wgsl",
            Shader::Image => "image.wgsl",
            Shader::Permute => "permute.wgsl",
            Shader::Norm => "norm.wgsl",
        }
    }

    /// The files under `shaders/` the module is built from, in order: its own, plus for the
    /// GEMM families the pieces that are not modules on their own (`matmul_common.wgsl`, the
    /// tiled GEMM `gemm_core.wgsl`, a loader of operand slices and an epilogue).
    pub fn files(self) -> &'static [&'static str] {
        self.parts().0
    }

    /// The WGSL source of the module: its [`Shader::files`], concatenated.
    pub fn source(self) -> &'static str {
        self.parts().1
    }

    /// The module's files and their concatenated text, from one list of names.
    fn parts(self) -> (&'static [&'static str], &'static str) {
        match self {
            Shader::Matmul => built_from!(
                "matmul_common.wgsl",
                "matmul.wgsl",
                "gemm_core.wgsl",
                "gemm_load_scalar.wgsl",
                "gemm_store_rows.wgsl"
            ),
            Shader::MatmulVec4 => {
                built_from!(
                    "matmul_common.wgsl",
                    "matmul_vec4.wgsl",
                    "gemm_core.wgsl",
                    "gemm_store_rows.wgsl"
                )
            }
            Shader::Conv2d => built_from!(
                "conv2d.wgsl",
                "conv2d_store.wgsl",
                "gemm_core.wgsl",
                "gemm_load_scalar.wgsl",
                "gemm_store_rows.wgsl"
            ),
            Shader::Conv2dPool => {
                built_from!(
                    "conv2d.wgsl",
                    "conv2d_pool_store.wgsl",
                    "gemm_core.wgsl",
                    "gemm_load_scalar.wgsl"
                )
            }
            Shader::Pool => built_from!("pool.wgsl"),
            Shader::Elementwise => built_from!("elementwise.wgsl"),
            Shader::Reduce => built_from!("reduce.wgsl"),
            Shader::SoftmaxXent => built_from!("softmax_xent.wgsl"),
            Shader::Layout => built_from!("layout.wgsl"),
            Shader::Image => built_from!("image.wgsl"),
            Shader::Permute => built_from!("permute.wgsl"),
            Shader::Norm => built_from!("norm.wgsl"),
        }
    }
}
