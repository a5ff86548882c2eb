//! Runtime CPU dispatch for the elementwise passes, and the vectorisable primitives they share.
//!
//! Committed builds target baseline x86-64 (SSE2), so [`multiversion!`] compiles each hot function
//! three times (AVX-512, AVX2+FMA, baseline) and picks one per call from the CPU's features. The
//! bodies are written so that the compiler vectorises them without reassociating anything: every
//! reduction runs over 16 fixed lanes combined in a fixed order, and no fused multiply-add is
//! formed, so all three versions return bit-identical results.

use std::sync::atomic::{AtomicU8, Ordering};

static LEVEL: AtomicU8 = AtomicU8::new(0);

/// 3 = AVX-512F, 2 = AVX2 + FMA, 1 = baseline (detected once).
#[inline]
pub fn level() -> u8 {
    let l = LEVEL.load(Ordering::Relaxed);
    if l != 0 {
        return l;
    }
    let l = detect();
    LEVEL.store(l, Ordering::Relaxed);
    l
}

/// Environment variable that caps the level: `avx2` or `baseline` make an AVX-512 machine take the
/// paths (and so the matmul sums, bit for bit) of a machine without it.
pub const CAP_VAR: &str = "ICLAB_SIMD";

fn detect() -> u8 {
    let cap = match std::env::var(CAP_VAR).as_deref() {
        Err(_) | Ok("") | Ok("avx512") => 3,
        Ok("avx2") => 2,
        Ok("baseline") => 1,
        Ok(other) => {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| eprintln!("warning: {CAP_VAR}={other:?} ignored: allowed: avx512, avx2, baseline"));
            3
        }
    };
    cpu_level().min(cap)
}

fn cpu_level() -> u8 {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return 3;
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return 2;
        }
    }
    1
}

/// Defines `fn name(args) -> ret { body }` compiled for AVX-512, AVX2 and the baseline, dispatched
/// at run time.
macro_rules! multiversion {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$m])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn inner($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                unsafe fn v3($($arg: $ty),*) $(-> $ret)? { inner($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn v2($($arg: $ty),*) $(-> $ret)? { inner($($arg),*) }
                match $crate::simd::level() {
                    // SAFETY: the CPU supports the features each version was compiled for.
                    3 => return unsafe { v3($($arg),*) },
                    2 => return unsafe { v2($($arg),*) },
                    _ => {}
                }
            }
            inner($($arg),*)
        }
    };
}
pub(crate) use multiversion;

/// The AVX-512 lane mask selecting the first min(lanes, 16) of 16 lanes.
#[inline(always)]
pub fn lane_mask(lanes: usize) -> u16 {
    if lanes >= 16 {
        0xffff
    } else {
        (1u16 << lanes) - 1
    }
}

/// Lanes of every reduction: 16 f32 = one AVX-512 register, two AVX2 registers.
pub const LANES: usize = 16;

/// Sum of 16 lanes in a fixed (pairwise) order.
#[inline(always)]
pub fn hsum(acc: [f32; LANES]) -> f32 {
    let mut a = acc;
    let mut w = LANES / 2;
    while w > 0 {
        for i in 0..w {
            a[i] += a[i + w];
        }
        w /= 2;
    }
    a[0]
}

/// a . b over 16 lanes (then the tail), fixed order.
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let mut ca = a.chunks_exact(LANES);
    let mut cb = b.chunks_exact(LANES);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    for (i, (x, y)) in ca.remainder().iter().zip(cb.remainder()).enumerate() {
        acc[i] += x * y;
    }
    hsum(acc)
}

/// Sum of a slice over 16 lanes, fixed order.
#[inline(always)]
pub fn sum(a: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let mut ca = a.chunks_exact(LANES);
    for x in &mut ca {
        for i in 0..LANES {
            acc[i] += x[i];
        }
    }
    for (i, x) in ca.remainder().iter().enumerate() {
        acc[i] += x;
    }
    hsum(acc)
}

/// y += alpha * x.
#[inline(always)]
pub fn axpy(y: &mut [f32], alpha: f32, x: &[f32]) {
    let n = y.len().min(x.len());
    let (y, x) = (&mut y[..n], &x[..n]);
    let mut cy = y.chunks_exact_mut(LANES);
    let mut cx = x.chunks_exact(LANES);
    for (yc, xc) in (&mut cy).zip(&mut cx) {
        axpy_block(yc, alpha, xc);
    }
    for (yi, &xi) in cy.into_remainder().iter_mut().zip(cx.remainder()) {
        *yi += alpha * xi;
    }
}

/// y [16] += alpha * x [16], through a register-sized local copy (which the compiler can prove
/// does not alias, so it vectorises even after inlining).
#[inline(always)]
pub fn axpy_block(y: &mut [f32], alpha: f32, x: &[f32]) {
    let x: &[f32; LANES] = x.try_into().expect("a block of 16 lanes");
    let y: &mut [f32; LANES] = y.try_into().expect("a block of 16 lanes");
    let mut t = *y;
    for i in 0..LANES {
        t[i] += alpha * x[i];
    }
    *y = t;
}

// The constants of [`exp`] and [`exp_avx512`].
const EXP_MIN: f32 = -87.0;
const EXP_MAX: f32 = 88.0;
/// 1.5 * 2^23: adding it rounds to an integer in the low bits.
const EXP_MAGIC: f32 = 12_582_912.0;
/// ln 2 in two parts, so that n ln2 is subtracted almost exactly.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Cephes expf's polynomial for (e^r - 1 - r) / r^2, highest degree first.
const EXP_POLY: [f32; 6] = [
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    0.5,
];

/// e^x in f32 from arithmetic and bit operations only (so it vectorises): x = n ln2 + r with
/// |r| <= ln2 / 2, e^r by the Cephes expf polynomial (relative error ~2e-7), 2^n through the
/// exponent bits. Inputs are clamped to [-87, 88] (e^-87 ~ 1.6e-38; larger gives f32 overflow).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(EXP_MIN, EXP_MAX);
    let t = x * std::f32::consts::LOG2_E + EXP_MAGIC;
    let n_int = t.to_bits() as i32 - EXP_MAGIC.to_bits() as i32;
    let n = t - EXP_MAGIC;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = EXP_POLY[0];
    for c in &EXP_POLY[1..] {
        p = p * r + c;
    }
    let er = p * r * r + r + 1.0;
    er * f32::from_bits(((n_int + 127) << 23) as u32)
}

/// [`exp`] on 16 lanes, the same operations in the same order (no fused multiply-adds), so each
/// lane's bits are `exp`'s. A NaN lane stays NaN (the clamp's max and min return their second
/// operand when either is NaN).
///
/// # Safety
/// The CPU must have AVX-512F ([`level`] 3).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub unsafe fn exp_avx512(x: std::arch::x86_64::__m512) -> std::arch::x86_64::__m512 {
    use std::arch::x86_64::*;
    let x = _mm512_min_ps(_mm512_set1_ps(EXP_MAX), _mm512_max_ps(_mm512_set1_ps(EXP_MIN), x));
    let t = _mm512_add_ps(
        _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)),
        _mm512_set1_ps(EXP_MAGIC),
    );
    let n_int = _mm512_sub_epi32(_mm512_castps_si512(t), _mm512_set1_epi32(EXP_MAGIC.to_bits() as i32));
    let n = _mm512_sub_ps(t, _mm512_set1_ps(EXP_MAGIC));
    let r = _mm512_sub_ps(
        _mm512_sub_ps(x, _mm512_mul_ps(n, _mm512_set1_ps(LN2_HI))),
        _mm512_mul_ps(n, _mm512_set1_ps(LN2_LO)),
    );
    let mut p = _mm512_set1_ps(EXP_POLY[0]);
    for &c in &EXP_POLY[1..] {
        p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(c));
    }
    let er = _mm512_add_ps(
        _mm512_add_ps(_mm512_mul_ps(_mm512_mul_ps(p, r), r), r),
        _mm512_set1_ps(1.0),
    );
    let two_n = _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(n_int, _mm512_set1_epi32(127))));
    _mm512_mul_ps(er, two_n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// exp_avx512 gives exp's bits in every lane, clamped ends and NaN included.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn exp_avx512_is_exp_bit_for_bit() {
        if level() != 3 {
            return;
        }
        use std::arch::x86_64::*;
        let mut xs: Vec<f32> = (0..4000).map(|i| -100.0 + i as f32 * 0.0517).collect();
        xs.extend([
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            0.0,
            -0.0,
            88.0,
            -87.0,
            1e-30,
        ]);
        for chunk in xs.chunks(16) {
            let mut lanes = [0.0f32; 16];
            lanes[..chunk.len()].copy_from_slice(chunk);
            let mut out = [0.0f32; 16];
            // SAFETY: level 3 means AVX-512F; 16-float arrays.
            unsafe { _mm512_storeu_ps(out.as_mut_ptr(), exp_avx512(_mm512_loadu_ps(lanes.as_ptr()))) };
            for (&x, &got) in lanes.iter().zip(&out) {
                let want = exp(x);
                assert!(got.to_bits() == want.to_bits(), "exp({x}): {got} vs {want}");
            }
        }
    }

    #[test]
    fn exp_is_accurate() {
        let mut worst = 0.0f64;
        let mut x = -80.0f32;
        while x < 80.0 {
            let want = (x as f64).exp();
            worst = worst.max(((exp(x) as f64 - want) / want).abs());
            x += 0.0137;
        }
        assert!(worst < 4e-7, "relative error {worst}");
        assert!(exp(-1000.0) == exp(-87.0) && exp(-87.0) > 0.0);
        assert!(exp(1000.0).is_finite());
    }

    #[test]
    fn reductions_are_exact_on_integers() {
        let a: Vec<f32> = (0..37).map(|i| i as f32).collect();
        assert_eq!(sum(&a), (0..37).sum::<i32>() as f32);
        assert_eq!(dot(&a, &a), (0..37).map(|i| i * i).sum::<i32>() as f32);
    }
}

/// While alive, flushes subnormal f32/f64 results to zero and reads subnormal inputs as zero on
/// this thread (x86-64 MXCSR FTZ + DAZ); the previous mode comes back on drop.
///
/// Why: late in training some activations and gradients (softmax tails, converged sinusoid
/// models) fall below 1.2e-38, and every operation on a subnormal costs ~100 cycles on x86, which
/// slows training several-fold (docs/benchmarks.md). Values that small do not change any
/// prediction or loss at f32 precision. Every pass that computes on the model's buffers takes
/// the guard itself, so the mode is the same on every thread and results stay independent of
/// the thread count.
pub struct FlushSubnormals {
    #[cfg(target_arch = "x86_64")]
    saved: u32,
}

impl FlushSubnormals {
    #[cfg(target_arch = "x86_64")]
    pub fn new() -> FlushSubnormals {
        // MXCSR bit 15 = flush to zero, bit 6 = denormals are zero (every x86-64 CPU has both).
        const FTZ_DAZ: u32 = (1 << 15) | (1 << 6);
        let mut saved: u32 = 0;
        // SAFETY: stmxcsr/ldmxcsr read and write the SSE control register through a valid
        // 4-byte location; only the rounding-independent FTZ/DAZ bits change.
        unsafe {
            std::arch::asm!("stmxcsr [{}]", in(reg) &mut saved, options(nostack, preserves_flags));
            let mode = saved | FTZ_DAZ;
            std::arch::asm!("ldmxcsr [{}]", in(reg) &mode, options(nostack, preserves_flags));
        }
        FlushSubnormals { saved }
    }

    #[cfg(not(target_arch = "x86_64"))]
    pub fn new() -> FlushSubnormals {
        FlushSubnormals {}
    }
}

impl Default for FlushSubnormals {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for FlushSubnormals {
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: restores the value read by `new` on this same thread.
        unsafe {
            std::arch::asm!("ldmxcsr [{}]", in(reg) &self.saved, options(nostack, preserves_flags));
        }
    }
}

#[cfg(test)]
mod flush_tests {
    use super::FlushSubnormals;
    use std::hint::black_box;

    /// Bug: subnormal activations made late training several times slower (simd::FlushSubnormals).
    /// The guard must flush inside its scope and restore IEEE behaviour after it.
    #[test]
    fn subnormals_flush_inside_the_guard_and_come_back_after() {
        let tiny = black_box(f32::MIN_POSITIVE);
        let half = black_box(0.5f32);
        assert!((tiny * half) > 0.0, "IEEE gradual underflow outside the guard");
        {
            let _g = FlushSubnormals::new();
            #[cfg(target_arch = "x86_64")]
            assert_eq!(black_box(tiny) * black_box(half), 0.0, "flushed inside the guard");
        }
        assert!((black_box(tiny) * black_box(half)) > 0.0, "restored after the guard");
    }
}
