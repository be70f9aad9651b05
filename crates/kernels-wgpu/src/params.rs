//! Each shader's uniform (`struct Params` at group 0, binding 0) as a `#[repr(C)]` Rust
//! struct with the WGSL struct's field names, in its order, at its offsets. A test parses
//! every shader with naga and checks each field's name, offset and size and the struct's
//! size against these, so the host and the shader cannot drift apart silently.

use crate::shaders::Shader;
use bytemuck::{Pod, Zeroable};

/// Bytes of one dispatch's slot in the params chunk (`crate::context`'s command stream): the
/// uniform-offset alignment WebGPU guarantees; every uniform here fits one (checked below).
pub(crate) const PARAMS_SLOT: u64 = 256;

/// A shader uniform: which shader modules declare it as their `Params`.
pub(crate) trait ShaderParams: Pod {
    /// The shader modules whose `struct Params` this mirrors.
    const SHADERS: &'static [Shader];

    /// `(name, offset, size)` of each field, in order (what the naga test compares).
    #[cfg(test)]
    fn fields() -> Vec<(&'static str, usize, usize)>;
}

/// Declares a uniform struct and its [`ShaderParams`] impl from one field list.
macro_rules! shader_params {
    ($(#[$meta:meta])* $name:ident for [$($shader:ident),+] {
        $($(#[$field_meta:meta])* $field:ident: $ty:ty,)+
    }) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
        pub(crate) struct $name {
            $($(#[$field_meta])* pub $field: $ty,)+
        }

        impl ShaderParams for $name {
            const SHADERS: &'static [Shader] = &[$(Shader::$shader),+];

            #[cfg(test)]
            fn fields() -> Vec<(&'static str, usize, usize)> {
                vec![$((stringify!($field), std::mem::offset_of!($name, $field), size_of::<$ty>())),+]
            }
        }

        // A uniform must fit a dispatch's slot of the params chunk.
        const _: () = assert!(size_of::<$name>() as u64 <= PARAMS_SLOT);
    };
}

/// Broadcast dimensions the elementwise uniform has room for (4 vec4s).
pub(crate) const MAX_RANK: usize = 16;

shader_params! {
    /// The tiled GEMM's uniform (`matmul_common.wgsl`, `conv2d.wgsl`); shapes the pipelines
    /// do not take as override constants.
    GemmParams for [Matmul, MatmulVec4, Conv2d, Conv2dPool] {
        /// Rows of one product's output.
        m: u32,
        /// Columns of one product's output.
        n: u32,
        /// Contraction length.
        k: u32,
        /// Independent products times split-K slices: the grid's z extent.
        products: u32,
        /// Output tiles per product, down and across.
        tiles_m: u32,
        tiles_n: u32,
        /// Whether `A`'s contraction axis / `B`'s column axis is the contiguous one.
        a_k_contig: u32,
        b_n_contig: u32,
        /// Whether binding 3 holds a bias to add.
        has_bias: u32,
        /// Contraction length of one split-K slice.
        k_chunk: u32,
        _pad0: u32,
        _pad1: u32,
    }
}

shader_params! {
    /// `elementwise.wgsl`'s uniform.
    ElementwiseParams for [Elementwise] {
        /// Output elements.
        n: u32,
        /// Which function: the codes of `ops/elementwise.rs`.
        op: u32,
        /// Broadcast dimensions in use.
        rank: u32,
        _pad0: u32,
        /// Fill value, affine scale or clamp minimum.
        f0: f32,
        /// Affine shift or clamp maximum.
        f1: f32,
        _pad1: u32,
        _pad2: u32,
        /// Broadcast dimensions, outermost first, 4 per vec4.
        dims: [[u32; 4]; MAX_RANK / 4],
        /// Element strides of the first input per dimension.
        a_strides: [[u32; 4]; MAX_RANK / 4],
        /// Element strides of the second input per dimension.
        b_strides: [[u32; 4]; MAX_RANK / 4],
    }
}

shader_params! {
    /// `layout.wgsl`'s uniform: `n` and five words whose meaning depends on the entry point
    /// (the constructors below name them).
    LayoutParams for [Layout] {
        /// Output elements this dispatch writes.
        n: u32,
        p0: u32,
        p1: u32,
        p2: u32,
        p3: u32,
        p4: u32,
        _pad0: u32,
        _pad1: u32,
    }
}

shader_params! {
    /// `permute.wgsl`'s uniform.
    PermuteParams for [Permute] {
        /// Output elements.
        n: u32,
        rank: u32,
        _pad0: u32,
        _pad1: u32,
        /// Output dimensions, outermost first, 4 per vec4.
        out_dims: [[u32; 4]; 2],
        /// Per output axis, the input's element stride.
        in_strides: [[u32; 4]; 2],
    }
}

shader_params! {
    /// `image.wgsl`'s uniform.
    ImageParams for [Image] {
        /// Output elements.
        n: u32,
        height: u32,
        width: u32,
        channels: u32,
        /// 0 nearest, 1 bilinear.
        interpolation: u32,
        /// `FillMode::code`.
        fill_mode: u32,
        /// What `FillMode::Constant` reads outside the image.
        fill_value: f32,
        _pad0: u32,
    }
}

shader_params! {
    /// `norm.wgsl`'s uniform.
    NormParams for [Norm] {
        outer: u32,
        channels: u32,
        inner: u32,
        /// Elements of one channel a first-pass workgroup takes.
        chunk_len: u32,
        /// Pieces each channel is cut into (1: the first pass writes the result).
        chunks: u32,
        /// Channels per statistics workgroup: a power of 2 up to 256.
        width: u32,
        /// `channel_affine`, `channel_affine_pair`: elements.
        n: u32,
        /// `channel_affine`: 1 to apply ReLU.
        relu: u32,
        /// Statistics and `channel_affine_pair`: 1 to gate the gradient by the ReLU's output.
        gated: u32,
        /// `channel_sums`: 1 to subtract a per-channel center.
        centered: u32,
        _pad0: u32,
        _pad1: u32,
    }
}

impl LayoutParams {
    /// `concat_part`: a part `[outer, inner]` into columns `offset..` of `[outer, width]`.
    pub(crate) fn concat_part(n: u32, inner: u32, width: u32, offset: u32) -> Self {
        LayoutParams { n, p0: inner, p1: width, p2: offset, ..Self::default() }
    }

    /// `narrow`: columns `offset..offset + len` of rows of `inner`.
    pub(crate) fn narrow(n: u32, inner: u32, offset: u32, len: u32) -> Self {
        LayoutParams { n, p0: inner, p1: offset, p2: len, ..Self::default() }
    }

    /// `gather_rows`: rows of `row_len`.
    pub(crate) fn gather_rows(n: u32, row_len: u32) -> Self {
        LayoutParams { n, p0: row_len, ..Self::default() }
    }

    /// `dropout_mask`: the generator's keys, the rate and the kept values' scale (as bits).
    pub(crate) fn dropout_mask(n: u32, keys: (u32, u32), rate: f32, keep: f32) -> Self {
        LayoutParams { n, p0: keys.0, p1: keys.1, p2: rate.to_bits(), p3: keep.to_bits(), ..Self::default() }
    }
}

shader_params! {
    /// `pool.wgsl`'s uniform.
    PoolParams for [Pool] {
        /// Invocations: output elements (forward) or input elements (backward).
        n: u32,
        in_h: u32,
        in_w: u32,
        channels: u32,
        out_h: u32,
        out_w: u32,
        pool_h: u32,
        pool_w: u32,
        stride_h: u32,
        stride_w: u32,
        pad_top: u32,
        pad_left: u32,
        /// 0 = max, 1 = average, 2 = L2.
        kind: u32,
        _pad0: u32,
        _pad1: u32,
        _pad2: u32,
    }
}

shader_params! {
    /// `reduce.wgsl`'s uniform.
    ReduceParams for [Reduce] {
        outer: u32,
        reduced: u32,
        inner: u32,
        /// 0 = sum, 1 = max.
        op: u32,
        /// Rows of the reduced axis one invocation adds.
        chunk_len: u32,
        /// Chunks the reduced axis is cut into (1 in the last pass).
        chunks: u32,
        _pad0: u32,
        _pad1: u32,
    }
}

shader_params! {
    /// `softmax_xent.wgsl`'s uniform.
    SoftmaxParams for [SoftmaxXent] {
        rows: u32,
        cols: u32,
        /// Log-softmax instead of softmax.
        log: u32,
        _pad: u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(name, offset, size)` of each member of `struct Params` in `shader`, and its size.
    fn reflected(shader: Shader) -> (Vec<(String, usize, usize)>, usize) {
        let module = naga::front::wgsl::parse_str(shader.source())
            .unwrap_or_else(|e| panic!("{}: {}", shader.file_name(), e.emit_to_string(shader.source())));
        let (_, params) = module
            .types
            .iter()
            .find(|(_, ty)| ty.name.as_deref() == Some("Params"))
            .unwrap_or_else(|| panic!("{} declares no struct Params", shader.file_name()));
        let naga::TypeInner::Struct { members, span } = &params.inner else {
            panic!("{}: Params is not a struct", shader.file_name())
        };
        let fields = members
            .iter()
            .map(|m| {
                let size = module.types[m.ty].inner.size(module.to_ctx()) as usize;
                (m.name.clone().unwrap_or_default(), m.offset as usize, size)
            })
            .collect();
        (fields, *span as usize)
    }

    fn check<P: ShaderParams>(claimed: &mut Vec<Shader>) {
        let rust: Vec<(String, usize, usize)> =
            P::fields().into_iter().map(|(n, o, s)| (n.to_string(), o, s)).collect();
        for &shader in P::SHADERS {
            let (wgsl, span) = reflected(shader);
            assert_eq!(rust, wgsl, "{}: Params fields (name, offset, size)", shader.file_name());
            assert_eq!(size_of::<P>(), span, "{}: Params size", shader.file_name());
            claimed.push(shader);
        }
    }

    /// Every shader's `Params` matches its Rust struct, and every shader has one.
    #[test]
    fn every_uniform_matches_its_wgsl_struct() {
        let mut claimed = Vec::new();
        check::<GemmParams>(&mut claimed);
        check::<ElementwiseParams>(&mut claimed);
        check::<LayoutParams>(&mut claimed);
        check::<PoolParams>(&mut claimed);
        check::<ReduceParams>(&mut claimed);
        check::<SoftmaxParams>(&mut claimed);
        check::<ImageParams>(&mut claimed);
        check::<PermuteParams>(&mut claimed);
        check::<NormParams>(&mut claimed);
        for shader in Shader::ALL {
            assert_eq!(
                claimed.iter().filter(|&&s| s == shader).count(),
                1,
                "{} needs exactly one Rust uniform",
                shader.file_name()
            );
        }
    }

    /// The check sees a difference: a struct with two fields swapped fails it.
    #[test]
    fn a_misordered_struct_is_caught() {
        let (wgsl, _) = reflected(Shader::SoftmaxXent);
        let mut swapped: Vec<(String, usize, usize)> =
            SoftmaxParams::fields().into_iter().map(|(n, o, s)| (n.to_string(), o, s)).collect();
        let first = std::mem::take(&mut swapped[0].0);
        swapped[0].0 = std::mem::replace(&mut swapped[1].0, first);
        assert_ne!(swapped, wgsl, "rows and cols swapped at the same offsets");
    }
}
