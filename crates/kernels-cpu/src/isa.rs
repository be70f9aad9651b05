//! The instruction sets this CPU runs, detected once: every kernel that has builds for
//! several of them asks here (through [`crate::dispatch`], which picks the kernels), never
//! the CPU itself.

use std::sync::OnceLock;

/// What this CPU can run beyond baseline x86-64.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Features {
    /// AVX2 (256-bit integer and float vectors).
    pub avx2: bool,
    /// AVX2 and FMA together: what the 8-lane register-blocked kernels need.
    pub avx2_fma: bool,
    /// AVX-512F: the 16-lane kernels.
    pub avx512f: bool,
}

/// This CPU's features (detected on first use).
pub(crate) fn features() -> Features {
    static FEATURES: OnceLock<Features> = OnceLock::new();
    *FEATURES.get_or_init(detect)
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Features {
    let avx2 = std::arch::is_x86_feature_detected!("avx2");
    Features {
        avx2,
        avx2_fma: avx2 && std::arch::is_x86_feature_detected!("fma"),
        avx512f: std::arch::is_x86_feature_detected!("avx512f"),
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Features {
    Features { avx2: false, avx2_fma: false, avx512f: false }
}

/// A build of the register-blocked (direct, Winograd, pooled) kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Build {
    /// AVX2 + FMA: 8 f32 lanes per register.
    Avx2,
    /// AVX-512F: 16 lanes.
    Avx512,
}

impl Build {
    /// The widest build this CPU runs, if any.
    pub fn widest() -> Option<Build> {
        let f = features();
        if f.avx512f {
            Some(Build::Avx512)
        } else if f.avx2_fma {
            Some(Build::Avx2)
        } else {
            None
        }
    }

    /// Whether this CPU runs this build (a kernel asserts it before its unsafe calls).
    pub fn runs_here(self) -> bool {
        let f = features();
        match self {
            Build::Avx2 => f.avx2_fma,
            Build::Avx512 => f.avx512f,
        }
    }

    /// f32 lanes per register.
    pub const fn lanes(self) -> usize {
        match self {
            Build::Avx2 => 8,
            Build::Avx512 => 16,
        }
    }
}
