//! The one matrix-multiply kernel every layer goes through.
//!
//! All matrices are row-major f32 slices described by (row stride, column stride), so transposed
//! operands cost nothing. The kernel is single-threaded on purpose: the model parallelises over
//! fixed chunks of the batch (see `gpt.rs`), which keeps every sum in a fixed order whatever the
//! thread count. On CPUs with AVX-512 it is the kernel below, written for the model's shapes; elsewhere
//! it is matrixmultiply's (which packs both operands on every call).

/// A strided read-only view of a row-major matrix.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a> View<'a> {
    /// A contiguous [rows, cols] matrix.
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        View {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose: [cols, rows], same memory.
    pub fn t(self) -> Self {
        View {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }

    fn check(&self) {
        if self.rows > 0 && self.cols > 0 {
            let last = (self.rows - 1) * self.rs + (self.cols - 1) * self.cs;
            assert!(last < self.data.len(), "matrix view out of bounds");
        }
    }
}

/// Above this many multiply-adds a product goes to matrixmultiply even on AVX-512 CPUs: the
/// largest products of the presets (standard's 1,024-wide c_fc and mlp.c_proj, 3.4e8 at batch 64)
/// are the largest the kernel was measured on. `iclab bench matmul` times the kernel against
/// matrixmultiply on every product of a preset (docs/benchmarks.md).
const KERNEL_MAX_MACS: usize = 400_000_000;

/// (m, k, n) of c = a @ b after checking that the shapes agree and every view lies inside its
/// slice (panics otherwise); None when c is empty.
fn check_operands(a: View, b: View, c: &[f32], ldc: usize) -> Option<(usize, usize, usize)> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(b.rows, k, "inner dimensions of a matmul differ");
    a.check();
    b.check();
    if m == 0 || n == 0 {
        return None;
    }
    assert!(ldc >= n && (m - 1) * ldc + n <= c.len(), "matmul output out of bounds");
    Some((m, k, n))
}

/// c[m, n] = a[m, k] @ b[k, n] (+ c[m, n] when `accumulate`), c contiguous with row stride `ldc`.
pub fn sgemm(a: View, b: View, c: &mut [f32], ldc: usize, accumulate: bool) {
    let start = if accumulate { Start::C } else { Start::Zero };
    sgemm_from(a, b, c, ldc, start);
}

/// c[m, n] = (residual[m, n] +) bias[n] (every row) + a[m, k] @ b[k, n], `residual` laid out as c
/// (row stride ldc): the same sums as filling c's rows with residual + bias and accumulating,
/// without writing and reading c once more (copying the bias into every row and a separate
/// residual pass both cost a pass over c).
pub fn sgemm_bias(a: View, b: View, bias: &[f32], residual: Option<&[f32]>, c: &mut [f32], ldc: usize) {
    assert_eq!(bias.len(), b.cols, "bias length differs from the matmul's columns");
    if let Some(res) = residual {
        assert!(
            a.rows == 0 || (a.rows - 1) * ldc + b.cols <= res.len(),
            "residual out of bounds"
        );
    }
    sgemm_from(a, b, c, ldc, Start::Bias(bias, residual));
}

/// What a product adds its sums to.
#[derive(Clone, Copy)]
enum Start<'a> {
    Zero,
    /// c's own contents.
    C,
    /// The same row in every row of c, plus a matrix laid out as c when given.
    Bias(&'a [f32], Option<&'a [f32]>),
}

fn sgemm_from(a: View, b: View, c: &mut [f32], ldc: usize, start: Start) {
    let Some((m, k, n)) = check_operands(a, b, c, ldc) else {
        return;
    };
    #[cfg(target_arch = "x86_64")]
    if k > 0 && crate::simd::level() == 3 && m * k * n <= KERNEL_MAX_MACS {
        avx512::sgemm(a, b, c, ldc, start);
        return;
    }
    let accumulate = match start {
        Start::Zero => false,
        Start::C => true,
        Start::Bias(bias, residual) => {
            for (i, row) in c.chunks_mut(ldc).take(m).enumerate() {
                match residual {
                    Some(res) => {
                        for ((o, r), b) in row[..n].iter_mut().zip(&res[i * ldc..][..n]).zip(bias) {
                            *o = r + b;
                        }
                    }
                    None => row[..n].copy_from_slice(bias),
                }
            }
            true
        }
    };
    if k == 0 {
        if !accumulate {
            for row in c.chunks_mut(ldc).take(m) {
                row[..n].fill(0.0);
            }
        }
        return;
    }
    sgemm_matrixmultiply(a, b, c, ldc, accumulate);
}

/// [`sgemm`] through matrixmultiply whatever the CPU: the kernel on CPUs without AVX-512, and the
/// reference `iclab bench matmul` measures the AVX-512 kernel against.
pub fn sgemm_matrixmultiply(a: View, b: View, c: &mut [f32], ldc: usize, accumulate: bool) {
    let Some((m, k, n)) = check_operands(a, b, c, ldc) else {
        return;
    };
    let beta = if accumulate { 1.0 } else { 0.0 };
    // SAFETY: the bounds of all three matrices were checked above.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.data.as_ptr(),
            a.rs as isize,
            a.cs as isize,
            b.data.as_ptr(),
            b.rs as isize,
            b.cs as isize,
            beta,
            c.as_mut_ptr(),
            ldc as isize,
            1,
        );
    }
}

/// Independent 16-lane chains of [`fma_chains`].
const FMA_CHAINS: usize = 12;
/// Flops of one round of [`fma_chains`].
pub const FMA_CHAIN_FLOPS: f64 = (FMA_CHAINS * 16 * 2) as f64;

/// `iters` rounds of 12 independent 16-lane fused multiply-adds on registers (enough chains to
/// cover the FMA latency on two ports): the arithmetic peak that bounds the kernel below, for
/// `iclab bench train`. None where the kernel is not AVX-512's.
pub fn fma_chains(iters: usize, seed: f32) -> Option<f32> {
    #[cfg(target_arch = "x86_64")]
    if crate::simd::level() == 3 {
        // SAFETY: level 3 means AVX-512F.
        return Some(unsafe { avx512::fma_chains(iters, seed) });
    }
    let _ = (iters, seed);
    None
}

/// The AVX-512 kernel, written for the model's shapes: k is small (the width, 64 to 1,024) and one
/// of m or the reduction is the batch's bt (thousands of rows). A general GEMM packs both operands
/// into panels on every call, which at k = 64 costs a sizeable share of a training step
/// (docs/benchmarks.md). Here a is packed only when it is a transpose (the weight gradient's
/// activations^T, see `PACK_A_MIN_ROWS`) and b only where its rows lie 2 KiB or more apart (see
/// `PACK_B_MIN_STRIDE`): each tile of c ([6, 64], [12, 32] or [12, 16]) stays in registers for the
/// whole reduction, reading a's entries by broadcast (any strides) and b's row segments with one
/// load per 16 columns (masked only on a panel's last, partial vector). A b with strided rows is
/// first transposed into a thread-local scratch, an O(k n) copy against O(m k n) work; the model
/// avoids that path: it hands the input gradient its weights already transposed, once per step, and
/// attention its keys and values transposed, once per prompt.
///
/// Every c[i, j] is summed over p in order within blocks of KC, the blocks added to c in order,
/// so the result depends on neither the row tiling nor the thread count.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{Start, View};
    use std::arch::x86_64::*;
    use std::cell::RefCell;

    /// Tile shapes, by the columns left in the block: [6, 64] (four 16-lane vectors per row) while
    /// 64 remain, then [12, 32] (two), then [12, 16] (one). Both wide shapes hold 24 accumulators of
    /// the 32 registers, enough independent FMAs to hide their latency; per step of the reduction
    /// [6, 64] loads 4 + 6 values for its 24 FMAs and [12, 32] 2 + 12, so [6, 64] is the faster
    /// where 64 columns remain (timings of the shapes: docs/benchmarks.md).
    fn panel_width(cols_left: usize) -> usize {
        if cols_left >= 64 {
            64
        } else if cols_left > 16 {
            32
        } else {
            16
        }
    }

    /// The panels of a block `w` columns wide, left to right: (first column, width, lane masks of
    /// its columns). The kernel's tiles and `pack_b`'s copies both follow this one plan.
    fn panels(w: usize) -> impl Iterator<Item = (usize, usize, [__mmask16; 4])> {
        let mut j0 = 0;
        std::iter::from_fn(move || {
            (j0 < w).then(|| {
                let width = panel_width(w - j0);
                let panel = (j0, width, column_masks((w - j0).min(width)));
                j0 += width;
                panel
            })
        })
    }

    /// The reduction runs in blocks of KC, so that b's [KC, width] panel (32 KiB at width 32,
    /// 64 KiB at 64) stays near (L1, L2) while every row tile of c passes over it. The weight
    /// gradient reduces over all bt rows, and unblocked it runs well below the forward products.
    /// (KC also fixes every sum's order: changing it changes
    /// the bits of every trained model.)
    pub(super) const KC: usize = 256;
    /// Rows of a per block (a multiple of 6 and 12): [MC, KC] of a is at most 48 KiB.
    const MC: usize = 48;
    /// Columns of c per block (a multiple of 64): [KC, NC] of b is at most 256 KiB (L2).
    const NC: usize = 256;

    #[target_feature(enable = "avx512f")]
    pub unsafe fn fma_chains(iters: usize, seed: f32) -> f32 {
        let mut acc = [_mm512_set1_ps(seed); super::FMA_CHAINS];
        let a = _mm512_set1_ps(std::hint::black_box(0.999_999));
        let b = _mm512_set1_ps(std::hint::black_box(1e-7));
        for _ in 0..iters {
            for v in acc.iter_mut() {
                *v = _mm512_fmadd_ps(*v, a, b);
            }
        }
        acc.iter().map(|&v| _mm512_reduce_add_ps(v)).sum()
    }

    /// From this many rows of c on, each [KC, NC] block of b is first copied into contiguous
    /// [KC, width] panels (`pack_b`): read in place, a panel's rows lie `rsb` apart, and at the
    /// standard size's 1,024-wide products (rsb * 4 bytes = 4 KiB) all of them fall into the same
    /// few L1 sets. Every row tile reads the packed block, so the copy is paid once per
    /// m / 6 tiles.
    const PACK_B_MIN_ROWS: usize = 256;
    /// ... and when b's rows lie at least this many floats (2 KiB) apart.
    const PACK_B_MIN_STRIDE: usize = 512;

    /// From this many rows of c on, a transposed a (the weight gradient's activations^T, whose
    /// columns lie a row of the activations apart) is copied block by block into a contiguous
    /// [KC, MC] (`pack_a`). Read in place, each step of the reduction reads a's block from a new
    /// line, 2 KiB (small's mlp.c_proj, 4 x 128 floats) to 4 KiB (standard's) further on, so the
    /// block's 256 lines share two (one) of L1's 64 sets. Packed, those weight gradients run about
    /// as fast as the other products (docs/benchmarks.md).
    const PACK_A_MIN_ROWS: usize = 96;

    thread_local! {
        static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
        static PACKED: RefCell<Packed> = const { RefCell::new(Packed { a: Vec::new(), b: Vec::new() }) };
    }

    pub fn sgemm(a: View, b: View, c: &mut [f32], ldc: usize, start: Start) {
        if b.cs == 1 {
            // SAFETY: level 3 means AVX-512F; the caller checked all bounds.
            unsafe { run(a, b.data.as_ptr(), b.rs, b.cols, c, ldc, start) };
            return;
        }
        // b [k, n] with strided rows (a transposed matrix): copy it to a contiguous [k, n].
        let (k, n) = (b.rows, b.cols);
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            // Grows only; every entry of [k, n] is written below.
            if s.len() < k * n {
                s.resize(k * n, 0.0);
            }
            // Column by column of b, so that the reads run along memory when b is a transpose
            // (b.rs = 1); the scratch is written with stride n, which stays in cache.
            for j in 0..n {
                let src = &b.data[j * b.cs..];
                for p in 0..k {
                    // SAFETY: b.check() proved (k-1) rs + (n-1) cs < len, and j*cs + p*rs is
                    // at most that; the scratch holds k * n.
                    unsafe { *s.get_unchecked_mut(p * n + j) = *src.get_unchecked(p * b.rs) };
                }
            }
            // SAFETY: as above; the scratch holds exactly [k, n].
            unsafe { run(a, s.as_ptr(), n, n, c, ldc, start) };
        });
    }

    /// One thread's packing buffers: a's block [KC, MC] (`pack_a`) and b's [KC, NC] (`pack_b`),
    /// grown on first use.
    struct Packed {
        a: Vec<f32>,
        b: Vec<f32>,
    }

    /// c [m, n] (+)= a [m, k] @ b [k, n], b at `bp` with row stride `rsb` and unit column stride.
    #[target_feature(enable = "avx512f")]
    unsafe fn run(a: View, bp: *const f32, rsb: usize, n: usize, c: &mut [f32], ldc: usize, start: Start) {
        let pack_a = a.cs != 1 && a.rows >= PACK_A_MIN_ROWS;
        let pack_b = a.rows >= PACK_B_MIN_ROWS && rsb >= PACK_B_MIN_STRIDE;
        if !pack_a && !pack_b {
            // Attention's small products, called per prompt and head, never touch the buffers.
            blocks(a, bp, rsb, n, c, ldc, start, None, None);
            return;
        }
        PACKED.with(|packed| {
            let mut packed = packed.borrow_mut();
            let Packed { a: buf_a, b: buf_b } = &mut *packed;
            if pack_a && buf_a.len() < KC * MC {
                buf_a.resize(KC * MC, 0.0);
            }
            if pack_b && buf_b.len() < KC * NC {
                buf_b.resize(KC * NC, 0.0);
            }
            let buf_a = pack_a.then_some(&mut buf_a[..]);
            let buf_b = pack_b.then_some(&mut buf_b[..]);
            blocks(a, bp, rsb, n, c, ldc, start, buf_a, buf_b);
        });
    }

    /// The loops of [`run`], a's blocks copied into `packed_a` ([KC * MC]) and b's into `packed_b`
    /// ([KC * NC]) when given.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    unsafe fn blocks(
        a: View,
        bp: *const f32,
        rsb: usize,
        n: usize,
        c: &mut [f32],
        ldc: usize,
        start: Start,
        mut packed_a: Option<&mut [f32]>,
        mut packed_b: Option<&mut [f32]>,
    ) {
        let (m, k) = (a.rows, a.cols);
        let ap = a.data.as_ptr();
        let cp = c.as_mut_ptr();
        // GotoBLAS's loop order over blocks of [NC columns of c] x [KC of the reduction] x [MC
        // rows of c]: the block of a stays near (L1/L2) while every panel of b passes, and each
        // [KC, width] panel of b stays near while the block's row tiles pass over it.
        let mut jb = 0;
        while jb < n {
            let j_end = (jb + NC).min(n);
            let mut p0 = 0;
            while p0 < k {
                let kc = (k - p0).min(KC);
                if let Some(buf) = packed_b.as_deref_mut() {
                    pack_b(buf, bp.add(p0 * rsb + jb), rsb, kc, j_end - jb);
                }
                let mut ib = 0;
                while ib < m {
                    let i_end = (ib + MC).min(m);
                    // a's block [i_end - ib, kc], at (pointer, row stride, column stride).
                    let (ablk, rsa, csa) = match packed_a.as_deref_mut() {
                        Some(buf) => {
                            pack_a(buf, ap.add(ib * a.rs + p0 * a.cs), a.cs, kc, i_end - ib);
                            (buf.as_ptr(), 1, MC)
                        }
                        None => (ap.add(ib * a.rs + p0 * a.cs), a.rs, a.cs),
                    };
                    for (jr, width, masks) in panels(j_end - jb) {
                        let j0 = jb + jr;
                        let (b0, rsb0) = match packed_b.as_deref() {
                            // The panels before this one hold jr columns of kc rows.
                            Some(buf) => (buf.as_ptr().add(jr * kc), width),
                            None => (bp.add(p0 * rsb + j0), rsb),
                        };
                        // Later reduction blocks add to what the earlier ones stored; the first
                        // adds the residual and the bias, if any.
                        let (add, add_row) = match (p0, start) {
                            (0, Start::Zero) => (None, None),
                            (0, Start::Bias(bias, res)) => (
                                res.map(|r| (r.as_ptr().add(ib * ldc + j0), ldc)),
                                Some(bias.as_ptr().add(j0)),
                            ),
                            _ => (Some((cp.add(ib * ldc + j0) as *const f32, ldc)), None),
                        };
                        let t = Tile {
                            k: kc,
                            a: ablk,
                            rsa,
                            csa,
                            b: b0,
                            rsb: rsb0,
                            c: cp.add(ib * ldc + j0),
                            ldc,
                            masks,
                            add,
                            add_row,
                        };
                        row_tiles(width, i_end - ib, &t);
                    }
                    ib = i_end;
                }
                p0 += KC;
            }
            jb = j_end;
        }
    }

    /// Copies b's block [kc, w] (at `b`, row stride `rsb`) into `packed` as consecutive [kc, width]
    /// panels, one per tile column (`panel_width`; the last one's columns past w are left as they
    /// were: the tile's masked loads never read them). Only the layout changes: every sum runs in
    /// the same order packed or not.
    #[target_feature(enable = "avx512f")]
    unsafe fn pack_b(packed: &mut [f32], b: *const f32, rsb: usize, kc: usize, w: usize) {
        for (j0, width, masks) in panels(w) {
            let panel = &mut packed[j0 * kc..][..kc * width];
            // Masked 16-lane moves, as the tile reads the rows (a memcpy call per 128-byte row
            // costs more than the copy).
            for (p, dst) in panel.chunks_exact_mut(width).enumerate() {
                for (v, &mask) in masks.iter().enumerate().take(width / 16) {
                    // SAFETY: the caller's b covers [kc, w] with row stride rsb; masked-off lanes
                    // are neither read nor written (wrapping_add: they may lie past the end).
                    let src = b.add(p * rsb + j0).wrapping_add(16 * v);
                    _mm512_mask_storeu_ps(dst.as_mut_ptr().add(16 * v), mask, _mm512_maskz_loadu_ps(mask, src));
                }
            }
        }
    }

    /// Copies a's block [rows, kc] (a transposed matrix: rows contiguous at `a`, columns `csa`
    /// apart) into `packed` as [kc, MC]: row p of the copy holds column p of the block.
    #[target_feature(enable = "avx512f")]
    unsafe fn pack_a(packed: &mut [f32], a: *const f32, csa: usize, kc: usize, rows: usize) {
        debug_assert!(rows <= MC && kc <= KC && packed.len() >= KC * MC);
        for p in 0..kc {
            // SAFETY: the caller's a covers [rows, kc] (rows contiguous, columns csa apart);
            // masked-off lanes are neither read nor written.
            let (src, dst) = (a.add(p * csa), packed.as_mut_ptr().add(p * MC));
            let mut i = 0;
            while i < rows {
                let mask = crate::simd::lane_mask(rows - i);
                _mm512_mask_storeu_ps(dst.add(i), mask, _mm512_maskz_loadu_ps(mask, src.add(i)));
                i += 16;
            }
        }
    }

    /// The lane masks of the four 16-lane vectors of a tile row `w` (1..=64) columns wide.
    fn column_masks(w: usize) -> [__mmask16; 4] {
        std::array::from_fn(|v| crate::simd::lane_mask(w.saturating_sub(16 * v)))
    }

    /// Every row tile of one panel of a block: rows [0, rows) of `t`'s a and c, in tiles of
    /// [6, 64], [12, 32] or [12, 16] (by the panel's width) and one shorter last tile. The tile
    /// shape is a compile-time constant in [`tile_vr`], so the accumulators stay in registers.
    /// The loop over the tiles is here, inside the AVX-512 code: in [`blocks`], building a `Tile`
    /// and calling out once per tile costs a noticeable share of a step.
    #[target_feature(enable = "avx512f")]
    unsafe fn row_tiles(width: usize, rows: usize, t: &Tile) {
        // Every column of the panel valid: plain loads and stores. Masked ones, even with every
        // lane set, make a whole training step slower (docs/benchmarks.md).
        let full = t.masks.iter().take(width / 16).all(|&m| m == 0xffff);
        match (width, full) {
            (64, false) => row_tiles_v::<6, 4, false>(rows, t),
            (32, false) => row_tiles_v::<12, 2, false>(rows, t),
            (_, false) => row_tiles_v::<12, 1, false>(rows, t),
            (64, true) => row_tiles_v::<6, 4, true>(rows, t),
            (32, true) => row_tiles_v::<12, 2, true>(rows, t),
            (_, true) => row_tiles_v::<12, 1, true>(rows, t),
        }
    }

    /// [`row_tiles`] for tiles [R, 16 V], every column valid when FULL (else `t.masks` apply).
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn row_tiles_v<const R: usize, const V: usize, const FULL: bool>(rows: usize, t: &Tile) {
        let mut i0 = 0;
        while i0 + R <= rows {
            tile_vr::<R, V, FULL>(t, i0);
            i0 += R;
        }
        macro_rules! last {
            ($($r:literal)*) => {
                match rows - i0 {
                    0 => {}
                    $($r if $r < R => tile_vr::<$r, V, FULL>(t, i0),)*
                    left => unreachable!("{left} rows left after tiles of {R}"),
                }
            };
        }
        last!(1 2 3 4 5 6 7 8 9 10 11);
    }

    /// The operands of one panel's row tiles: a [rows, k] at `a` (strides rsa, csa), b [k, <= 16 V]
    /// at `b` (row stride rsb), c [rows, <= 16 V] at `c`; `masks` select the valid columns of each
    /// 16-lane vector. The sums are added to `add` (pointer, row stride: c itself or a residual)
    /// plus `add_row` (a bias, the same for every row) where given, then stored to c.
    struct Tile {
        k: usize,
        a: *const f32,
        rsa: usize,
        csa: usize,
        b: *const f32,
        rsb: usize,
        c: *mut f32,
        ldc: usize,
        masks: [__mmask16; 4],
        add: Option<(*const f32, usize)>,
        add_row: Option<*const f32>,
    }

    /// Rows [i0, i0 + R) of `t`: c[R, 16 V] (+)= a[R, k] @ b[k, 16 V]. Each sum runs over p in
    /// order, one FMA per step, so the result does not depend on the tile's shape.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn tile_vr<const R: usize, const V: usize, const FULL: bool>(t: &Tile, i0: usize) {
        let a = t.a.add(i0 * t.rsa);
        let c = t.c.add(i0 * t.ldc);
        let add = t.add.map(|(p, rs)| (p.add(i0 * rs), rs));
        let mut acc = [[_mm512_setzero_ps(); V]; R];
        for p in 0..t.k {
            let brow = t.b.add(p * t.rsb);
            // wrapping_add: a vector's masked-off lanes are not read and may lie past the end.
            let bv: [__m512; V] = std::array::from_fn(|v| {
                if FULL {
                    _mm512_loadu_ps(brow.add(16 * v))
                } else {
                    _mm512_maskz_loadu_ps(t.masks[v], brow.wrapping_add(16 * v))
                }
            });
            let arow = a.add(p * t.csa);
            for (i, acc_i) in acc.iter_mut().enumerate() {
                let ai = _mm512_set1_ps(*arow.add(i * t.rsa));
                for (acc_iv, &b) in acc_i.iter_mut().zip(&bv) {
                    *acc_iv = _mm512_fmadd_ps(ai, b, *acc_iv);
                }
            }
        }
        for (i, acc_i) in acc.iter().enumerate() {
            let crow = c.add(i * t.ldc);
            let addrow = add.map(|(p, rs)| p.add(i * rs));
            for (v, &sum) in acc_i.iter().enumerate() {
                let mask = t.masks[v];
                // wrapping_add: masked-off lanes are not read and may lie past the end.
                let load = |p: *const f32| {
                    if FULL {
                        _mm512_loadu_ps(p.add(16 * v))
                    } else {
                        _mm512_maskz_loadu_ps(mask, p.wrapping_add(16 * v))
                    }
                };
                // (residual + bias) first, as a filled c would hold them, then the sums.
                let start = match (addrow, t.add_row) {
                    (Some(r), Some(b)) => Some(_mm512_add_ps(load(r), load(b))),
                    (Some(r), None) => Some(load(r)),
                    (None, Some(b)) => Some(load(b)),
                    (None, None) => None,
                };
                let mut out = sum;
                if let Some(start) = start {
                    out = _mm512_add_ps(out, start);
                }
                if FULL {
                    _mm512_storeu_ps(crow.add(16 * v), out);
                } else {
                    _mm512_mask_storeu_ps(crow.wrapping_add(16 * v), mask, out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// c = a @ b (+ c) in f64, straight from the definition.
    fn reference(a: View, b: View, c: &[f32], ldc: usize, accumulate: bool) -> Vec<f64> {
        let (m, k, n) = (a.rows, a.cols, b.cols);
        let mut out = vec![0.0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = if accumulate { c[i * ldc + j] as f64 } else { 0.0 };
                for p in 0..k {
                    s += a.data[i * a.rs + p * a.cs] as f64 * b.data[p * b.rs + j * b.cs] as f64;
                }
                out[i * n + j] = s;
            }
        }
        out
    }

    /// The AVX-512 kernel's sums are the fixed-order ones, bit for bit: each c[i, j] is a chain of
    /// fused multiply-adds over p in order within blocks of KC, each block's sum added to c (or the
    /// bias) in order. So no tile shape ([6, 64], [12, 32], [12, 16]), packing or thread count can
    /// change a result. The shapes cover every tile width and edge, full and partial panels,
    /// packed and unpacked a and b.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn kernel_sums_are_fixed_order_fmas_bit_for_bit() {
        if crate::simd::level() != 3 {
            eprintln!("no AVX-512 here: the kernel is matrixmultiply's, whose order is its own");
            return;
        }
        for &(m, k, n, a_t) in &[
            (7, 5, 64, false),
            (13, 300, 117, false),
            (13, 300, 117, true),
            (12, 1, 200, false),
            (30, 40, 16, false),
            (260, 300, 530, false),
            // a transposed and packed (PACK_A_MIN_ROWS): several row and reduction blocks.
            (260, 300, 530, true),
        ] {
            let a_store = filled(m * k, 5);
            // The same a [m, k] stored transposed, [k, m].
            let a_t_store: Vec<f32> = (0..k * m).map(|x| a_store[(x % m) * k + x / m]).collect();
            let a = if a_t {
                View::new(&a_t_store, k, m).t()
            } else {
                View::new(&a_store, m, k)
            };
            let b_store = filled(k * (n + 3), 6);
            let b = strided(&b_store, k, n, n + 3);
            let bias = filled(n, 7);
            let c0 = filled(m * n, 8);
            let residual = filled(m * n, 9);
            for start in [
                Start::Zero,
                Start::C,
                Start::Bias(&bias, None),
                Start::Bias(&bias, Some(&residual)),
            ] {
                let mut want = c0.clone();
                for i in 0..m {
                    for j in 0..n {
                        let mut p0 = 0;
                        while p0 < k {
                            let mut s = 0.0f32;
                            for p in p0..(p0 + avx512::KC).min(k) {
                                s = a_store[i * k + p].mul_add(b_store[p * (n + 3) + j], s);
                            }
                            want[i * n + j] = match (p0, start) {
                                (0, Start::Zero) => s,
                                (0, Start::Bias(bias, None)) => s + bias[j],
                                (0, Start::Bias(bias, Some(res))) => s + (res[i * n + j] + bias[j]),
                                _ => s + want[i * n + j],
                            };
                            p0 += avx512::KC;
                        }
                    }
                }
                let mut got = c0.clone();
                sgemm_from(a, b, &mut got, n, start);
                let differ = got
                    .iter()
                    .zip(&want)
                    .filter(|(g, w)| g.to_bits() != w.to_bits())
                    .count();
                assert_eq!(
                    differ, 0,
                    "{m}x{k}x{n} a_t={a_t}: {differ} sums differ from the fixed-order chain"
                );
            }
        }
    }

    /// A [rows, cols] matrix whose rows lie `rs` apart (a matrix embedded in wider rows).
    fn strided(data: &[f32], rows: usize, cols: usize, rs: usize) -> View<'_> {
        View {
            data,
            rows,
            cols,
            rs,
            cs: 1,
        }
    }

    fn filled(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (((i * 7919 + seed * 104729) % 2003) as f32 / 1001.0) - 1.0)
            .collect()
    }

    /// Every edge of the tiling (rows not a multiple of 12, columns not a multiple of 16, 32 or 64,
    /// k = 1, more than one block of rows, of the reduction and of columns), every layout of a
    /// and b (plain, transposed, strided like a head's columns of qkv), overwrite and accumulate,
    /// against the definition and against matrixmultiply.
    #[test]
    fn sgemm_matches_the_definition_on_every_tile_edge_and_layout() {
        for &(m, k, n) in &[
            (1, 1, 1),
            (3, 5, 7),
            (8, 16, 32),
            (9, 17, 33),
            (13, 64, 48),
            (40, 3, 17),
            (22, 32, 22),
            (50, 300, 40),
            (5, 20, 260),
            (64, 100, 65),
            // b packed (m >= 256, b's rows >= 512 apart): several column and reduction blocks,
            // a part-filled last panel.
            (260, 300, 530),
        ] {
            for a_t in [false, true] {
                for b_t in [false, true] {
                    for accumulate in [false, true] {
                        // A strided layout: matrices embedded in wider rows (ld = cols + 3).
                        let a_store = filled((m.max(k) + 1) * (m.max(k) + 3), 1);
                        let b_store = filled((k.max(n) + 1) * (k.max(n) + 3), 2);
                        let a = if a_t {
                            strided(&a_store, k, m, m + 3).t()
                        } else {
                            strided(&a_store, m, k, k + 3)
                        };
                        let b = if b_t {
                            strided(&b_store, n, k, k + 3).t()
                        } else {
                            strided(&b_store, k, n, n + 3)
                        };
                        let ldc = n + 2;
                        let mut c = filled(m * ldc, 3);
                        let want = reference(a, b, &c, ldc, accumulate);
                        let guard = c.clone();
                        let mut c_mm = c.clone();
                        sgemm(a, b, &mut c, ldc, accumulate);
                        // The fallback (the kernel on CPUs without AVX-512, and above
                        // KERNEL_MAX_MACS) on the same case.
                        sgemm_matrixmultiply(a, b, &mut c_mm, ldc, accumulate);
                        for (i, (x, y)) in c.iter().zip(&c_mm).enumerate() {
                            assert!(
                                (x - y).abs() <= 1e-5 * (1.0 + y.abs()) * k as f32,
                                "kernel vs matrixmultiply at {i}: {x} vs {y}"
                            );
                        }
                        if !accumulate {
                            // The bias forms: bit for bit the bias (plus the residual) copied
                            // into c's rows, then accumulated.
                            let bias = filled(n, 4);
                            let residual = filled(m * ldc, 5);
                            for res in [None, Some(&residual[..])] {
                                let mut c_bias = guard.clone();
                                sgemm_bias(a, b, &bias, res, &mut c_bias, ldc);
                                let mut c_rows = guard.clone();
                                for (i, row) in c_rows.chunks_mut(ldc).take(m).enumerate() {
                                    for j in 0..n {
                                        row[j] = match res {
                                            Some(r) => r[i * ldc + j] + bias[j],
                                            None => bias[j],
                                        };
                                    }
                                }
                                sgemm(a, b, &mut c_rows, ldc, true);
                                let what = if res.is_some() { "with a residual" } else { "" };
                                assert_eq!(c_bias, c_rows, "{m}x{k}x{n} a_t={a_t} b_t={b_t}: sgemm_bias {what}");
                            }
                        }
                        for i in 0..m {
                            for j in 0..ldc {
                                let got = c[i * ldc + j];
                                if j < n {
                                    let w = want[i * n + j];
                                    assert!(
                                        (got as f64 - w).abs() <= 1e-5 * (1.0 + w.abs()) * k as f64,
                                        "{m}x{k}x{n} a_t={a_t} b_t={b_t} acc={accumulate} at ({i}, {j}): {got} vs {w}"
                                    );
                                } else {
                                    assert_eq!(got, guard[i * ldc + j], "wrote outside c's columns at ({i}, {j})");
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
