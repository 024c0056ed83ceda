// Strided batched GEMM: C[b] = alpha * A[b] (M x K) . B[b] (K x N) [+ C[b]].
// Element (row, col) of operand X in batch item t lives at
//   X[off + t*batchStride + row*rowStride + col*columnStride].
// All indices are 32-bit (the launcher checks that every buffer holds fewer than 2^31 floats).
//
// Two variants, chosen by the launcher (Sources/DDPMOpenCL/GEMM.swift) by device kind:
//
// CPU (PoCL): gemm_pack_a / gemm_pack_b copy the strided operands into zero-padded panels,
//   A as [M/MR][Kl][MR] and B as [N/NR][Kl][NR], then gemm_micro computes one MR x NR block of C per
//   work-item (work-group size 1) from registers: NR/8 float8 loads of B and MR broadcasts of A per
//   k, MR*NR/8 independent accumulators, k unrolled by 4, explicit fma(). With sumOverBatch the
//   summed items are laid end to end along k (Kl = items * K), so one micro-kernel sums them all.
//   MR x NR = 4 x 24 (12 accumulators + 3 B vectors + 1 broadcast = the 16 ymm registers of AVX2):
//   on a 2-core Zen 3 the micro-kernel runs at 175-190 GFLOP/s of a ~200 GFLOP/s FMA peak, where
//   8 x 32 (32 accumulators, spilled) manages 65-73; 6 x 16 and 5 x 16 come close to 4 x 24.
//   With AVX-512 (32 zmm) 8 x 32 is the shape to try (DDPM_GEMM_MR / DDPM_GEMM_NR).
//
// GPU: gemm_tiled, a local-memory tiled SGEMM (TM x TN tile per 16x16 work-group, TK deep) reading
//   the strided operands directly; sumOverBatch with few output tiles is split over work-groups
//   into partial sums that gemm_reduce adds up.
//
// Build constants: MR (rows per block: 1..16), NR (columns per block: 8, 16, 24 or 32), TM, TN, TK.

#ifndef MR
#define MR 4
#endif
#ifndef NR
#define NR 24
#endif
// VW (prelude.cl, floatv and its loads and stores): floats per vector in the micro-kernel, the
// device's native SIMD width (8 with AVX2, 16 with AVX-512: PoCL reaches the FMA peak of an AVX-512
// core only with float16 code). NR % VW == 0.
#if NR % VW != 0 || NR % 8 != 0
#error "NR must be a multiple of VW and of 8"
#endif
#define NV (NR / VW)

// ---------------------------------------------------------------------------------------------
// Pack kernels. Panel element (p, r) of item t goes to dst[t*dstItem + panel*dstPanel + p*W + r],
// read from src[off + t*itemStride + (panel*W + r)*rStride + p*pStride]. For A (W = MR) r runs
// along m (rStride = A's rowStride, pStride = its columnStride); for B (W = NR) along n
// (rStride = B's columnStride, pStride = its rowStride). Rows r with panel*W + r >= extent are
// written as zeros. Work-item (panel group, k-chunk, item) covers panelsPer panels x pPer rows of k:
// a few thousand floats, since PoCL pays a fixed cost per work-group.
// Loop order follows the source's unit stride, so that reads run along cache lines:
//  - rStride == 1: k outer, then every panel, W contiguous floats (vector loads) each;
//  - otherwise: panel outer, then groups of G = 8 (or 4) rows, k inner; with k contiguous
//    (pStride == 1) 8 k of G rows are loaded as vectors and transposed in registers. G rows are
//    G read streams at once, few enough not to thrash one L1 set when rStride is 4 KiB apart.

#define PACK_GROUP(W) (((W) % 8 == 0) ? 8 : (((W) % 4 == 0) ? 4 : 1))

// Rows r0..r7 hold 8 consecutive k of 8 panel rows; store them as 8 k-rows of 8 floats, w apart.
inline void transpose8x8_store(float8 r0, float8 r1, float8 r2, float8 r3,
                               float8 r4, float8 r5, float8 r6, float8 r7, __global float* d, int w)
{
    const float8 t0 = (float8)(r0.s0, r1.s0, r0.s1, r1.s1, r0.s4, r1.s4, r0.s5, r1.s5);
    const float8 t1 = (float8)(r0.s2, r1.s2, r0.s3, r1.s3, r0.s6, r1.s6, r0.s7, r1.s7);
    const float8 t2 = (float8)(r2.s0, r3.s0, r2.s1, r3.s1, r2.s4, r3.s4, r2.s5, r3.s5);
    const float8 t3 = (float8)(r2.s2, r3.s2, r2.s3, r3.s3, r2.s6, r3.s6, r2.s7, r3.s7);
    const float8 t4 = (float8)(r4.s0, r5.s0, r4.s1, r5.s1, r4.s4, r5.s4, r4.s5, r5.s5);
    const float8 t5 = (float8)(r4.s2, r5.s2, r4.s3, r5.s3, r4.s6, r5.s6, r4.s7, r5.s7);
    const float8 t6 = (float8)(r6.s0, r7.s0, r6.s1, r7.s1, r6.s4, r7.s4, r6.s5, r7.s5);
    const float8 t7 = (float8)(r6.s2, r7.s2, r6.s3, r7.s3, r6.s6, r7.s6, r6.s7, r7.s7);
    const float8 u0 = (float8)(t0.s0, t0.s1, t2.s0, t2.s1, t0.s4, t0.s5, t2.s4, t2.s5);
    const float8 u1 = (float8)(t0.s2, t0.s3, t2.s2, t2.s3, t0.s6, t0.s7, t2.s6, t2.s7);
    const float8 u2 = (float8)(t1.s0, t1.s1, t3.s0, t3.s1, t1.s4, t1.s5, t3.s4, t3.s5);
    const float8 u3 = (float8)(t1.s2, t1.s3, t3.s2, t3.s3, t1.s6, t1.s7, t3.s6, t3.s7);
    const float8 u4 = (float8)(t4.s0, t4.s1, t6.s0, t6.s1, t4.s4, t4.s5, t6.s4, t6.s5);
    const float8 u5 = (float8)(t4.s2, t4.s3, t6.s2, t6.s3, t4.s6, t4.s7, t6.s6, t6.s7);
    const float8 u6 = (float8)(t5.s0, t5.s1, t7.s0, t7.s1, t5.s4, t5.s5, t7.s4, t7.s5);
    const float8 u7 = (float8)(t5.s2, t5.s3, t7.s2, t7.s3, t5.s6, t5.s7, t7.s6, t7.s7);
    vstore8((float8)(u0.lo, u4.lo), 0, d + 0 * w);
    vstore8((float8)(u1.lo, u5.lo), 0, d + 1 * w);
    vstore8((float8)(u2.lo, u6.lo), 0, d + 2 * w);
    vstore8((float8)(u3.lo, u7.lo), 0, d + 3 * w);
    vstore8((float8)(u0.hi, u4.hi), 0, d + 4 * w);
    vstore8((float8)(u1.hi, u5.hi), 0, d + 5 * w);
    vstore8((float8)(u2.hi, u6.hi), 0, d + 6 * w);
    vstore8((float8)(u3.hi, u7.hi), 0, d + 7 * w);
}

// Rows r0..r3 hold 8 consecutive k of 4 panel rows; store them as 8 k-rows of 4 floats, w apart.
inline void transpose4x8_store(float8 r0, float8 r1, float8 r2, float8 r3, __global float* d, int w)
{
    const float8 t0 = (float8)(r0.s0, r1.s0, r0.s1, r1.s1, r0.s4, r1.s4, r0.s5, r1.s5);
    const float8 t1 = (float8)(r0.s2, r1.s2, r0.s3, r1.s3, r0.s6, r1.s6, r0.s7, r1.s7);
    const float8 t2 = (float8)(r2.s0, r3.s0, r2.s1, r3.s1, r2.s4, r3.s4, r2.s5, r3.s5);
    const float8 t3 = (float8)(r2.s2, r3.s2, r2.s3, r3.s3, r2.s6, r3.s6, r2.s7, r3.s7);
    const float8 u0 = (float8)(t0.s0, t0.s1, t2.s0, t2.s1, t0.s4, t0.s5, t2.s4, t2.s5);
    const float8 u1 = (float8)(t0.s2, t0.s3, t2.s2, t2.s3, t0.s6, t0.s7, t2.s6, t2.s7);
    const float8 u2 = (float8)(t1.s0, t1.s1, t3.s0, t3.s1, t1.s4, t1.s5, t3.s4, t3.s5);
    const float8 u3 = (float8)(t1.s2, t1.s3, t3.s2, t3.s3, t1.s6, t1.s7, t3.s6, t3.s7);
    vstore4(u0.lo, 0, d + 0 * w);
    vstore4(u1.lo, 0, d + 1 * w);
    vstore4(u2.lo, 0, d + 2 * w);
    vstore4(u3.lo, 0, d + 3 * w);
    vstore4(u0.hi, 0, d + 4 * w);
    vstore4(u1.hi, 0, d + 5 * w);
    vstore4(u2.hi, 0, d + 6 * w);
    vstore4(u3.hi, 0, d + 7 * w);
}

// Copies rows [g, g+G) of a full panel for k in [p, pEnd): 8 k at a time through a register
// transpose when k is contiguous (pStride == 1), scalar otherwise.
#define PACK_GROUP_COPY(W, G)                                                                      \
    {                                                                                              \
        int p = pStart;                                                                            \
        if ((G) == 8 && pStride == 1) {                                                            \
            for (; p + 8 <= pEnd; p += 8) {                                                        \
                const __global float* q = sg + p;                                                  \
                transpose8x8_store(vload8(0, q), vload8(0, q + rStride), vload8(0, q + 2 * rStride), \
                                   vload8(0, q + 3 * rStride), vload8(0, q + 4 * rStride),         \
                                   vload8(0, q + 5 * rStride), vload8(0, q + 6 * rStride),         \
                                   vload8(0, q + 7 * rStride), dp + p * (W) + g, (W));             \
            }                                                                                      \
        } else if ((G) == 4 && pStride == 1) {                                                     \
            for (; p + 8 <= pEnd; p += 8) {                                                        \
                const __global float* q = sg + p;                                                  \
                transpose4x8_store(vload8(0, q), vload8(0, q + rStride), vload8(0, q + 2 * rStride), \
                                   vload8(0, q + 3 * rStride), dp + p * (W) + g, (W));             \
            }                                                                                      \
        }                                                                                          \
        for (; p < pEnd; ++p) {                                                                    \
            _Pragma("unroll") for (int r = 0; r < (G); ++r)                                        \
                dp[p * (W) + g + r] = sg[p * pStride + r * rStride];                               \
        }                                                                                          \
    }

#define PACK_KERNEL(NAME, W)                                                                       \
__kernel void NAME(__global const float* src, int off, int itemStride, int rStride, int pStride,   \
                   int extent, int K, int panels, int panelsPer, int pPer,                         \
                   __global float* dst, int dstItem, int dstPanel)                                 \
{                                                                                                  \
    const int panelStart = get_global_id(0) * panelsPer;                                          \
    const int panelEnd = min(panelStart + panelsPer, panels);                                      \
    const int pStart = get_global_id(1) * pPer;                                                    \
    const int pEnd = min(pStart + pPer, K);                                                        \
    const int t = get_global_id(2);                                                                \
    const __global float* s = src + off + t * itemStride;                                          \
    __global float* d = dst + t * dstItem;                                                         \
    if (rStride == 1) {                                                                            \
        for (int p = pStart; p < pEnd; ++p) {                                                      \
            const __global float* sp = s + p * pStride;                                            \
            for (int panel = panelStart; panel < panelEnd; ++panel) {                              \
                const int r0 = panel * W;                                                          \
                __global float* dp = d + panel * dstPanel + p * W;                                 \
                if (r0 + W <= extent) {                                                            \
                    if ((W) % 8 == 0) {                                                            \
                        _Pragma("unroll") for (int v = 0; v < (W) / 8; ++v)                        \
                            vstore8(vload8(0, sp + r0 + 8 * v), v, dp);                            \
                    } else {                                                                       \
                        _Pragma("unroll") for (int r = 0; r < W; ++r) dp[r] = sp[r0 + r];          \
                    }                                                                              \
                } else {                                                                           \
                    for (int r = 0; r < W; ++r) dp[r] = (r0 + r < extent) ? sp[r0 + r] : 0.0f;     \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    } else {                                                                                       \
        for (int panel = panelStart; panel < panelEnd; ++panel) {                                  \
            const int r0 = panel * W;                                                              \
            __global float* dp = d + panel * dstPanel;                                             \
            for (int g = 0; g < W; g += PACK_GROUP(W)) {                                           \
                const __global float* sg = s + (r0 + g) * rStride;                                 \
                if (r0 + g + PACK_GROUP(W) <= extent) {                                            \
                    PACK_GROUP_COPY(W, PACK_GROUP(W))                                              \
                } else {                                                                           \
                    for (int p = pStart; p < pEnd; ++p) {                                          \
                        for (int r = 0; r < PACK_GROUP(W); ++r)                                    \
                            dp[p * W + g + r] = (r0 + g + r < extent) ? sg[p * pStride + r * rStride] : 0.0f; \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
}

PACK_KERNEL(gemm_pack_a, MR)
PACK_KERNEL(gemm_pack_b, NR)

// ---------------------------------------------------------------------------------------------
// Micro-kernel. Work-item (m-block, group of nbPer n-blocks, item), work-group size 1. Several
// n-blocks per work-item when k is short, so PoCL's per-work-group cost stays small.

#define STEP(kk)                                                                    \
    {                                                                               \
        floatv bv[NV];                                                              \
        _Pragma("unroll") for (int v = 0; v < NV; ++v) bv[v] = vloadv(v, pb + (kk) * rowStep); \
        _Pragma("unroll") for (int r = 0; r < MR; ++r) {                            \
            const floatv av = (floatv)(pa[(kk) * MR + r]);                          \
            _Pragma("unroll") for (int v = 0; v < NV; ++v) acc[r][v] = fma(av, bv[v], acc[r][v]); \
        }                                                                           \
    }

// B is read from packed panels (bRow = NR: element (p, r) of panel nb at Bp + bOff + t*bItem +
// nb*bPanel + p*NR + r) or, where B's rows are contiguous, in place (bRow = B's row stride, bPanel =
// NR): the same loads in the same order, so the same result. In place, a last panel narrower than
// NR (n-block tailBlock; −1: none) is read from its packed copy at Tp + t*tItem instead, so that no
// load runs past B's rows.
__kernel void gemm_micro(__global const float* Ap, int aOff, int aItem, int aPanel,
                         __global const float* Bp, int bOff, int bItem, int bPanel, int bRow,
                         __global const float* Tp, int tItem, int tailBlock,
                         int K,
                         __global float* C, int cOff, int cBatchStride, int cRowStride, int cColStride,
                         int M, int N, float alpha, int accumulate, int nBlocks, int nbPer)
{
    const int mb = get_global_id(0);
    const int t = get_global_id(2);
    const int i0 = mb * MR;
    const int rows = min(MR, M - i0);
    const int nbEnd = min((int)get_global_id(1) * nbPer + nbPer, nBlocks);
    for (int nb = get_global_id(1) * nbPer; nb < nbEnd; ++nb) {
        const __global float* pa = Ap + aOff + t * aItem + mb * aPanel;
        const bool tail = nb == tailBlock;
        const __global float* pb = tail ? Tp + t * tItem : Bp + bOff + t * bItem + nb * bPanel;
        const int rowStep = tail ? NR : bRow;

        floatv acc[MR][NV];
        #pragma unroll
        for (int r = 0; r < MR; ++r) {
            #pragma unroll
            for (int v = 0; v < NV; ++v) acc[r][v] = (floatv)(0.0f);
        }
        int k = 0;
        for (; k + 4 <= K; k += 4) {
            STEP(0) STEP(1) STEP(2) STEP(3)
            pa += 4 * MR;
            pb += 4 * rowStep;
        }
        for (; k < K; ++k) {
            STEP(0)
            pa += MR;
            pb += rowStep;
        }

        // Epilogue: C = alpha * acc [+ C], through C's strides.
        const int j0 = nb * NR;
        const int cols = min(NR, N - j0);
        __global float* c = C + cOff + t * cBatchStride + i0 * cRowStride + j0 * cColStride;
        if (cColStride == 1 && rows == MR && cols == NR) {
            #pragma unroll
            for (int r = 0; r < MR; ++r) {
                __global float* cr = c + r * cRowStride;
                #pragma unroll
                for (int v = 0; v < NV; ++v) {
                    floatv x = alpha * acc[r][v];
                    if (accumulate) x += vloadv(v, cr);
                    vstorev(x, v, cr);
                }
            }
        } else {
            #pragma unroll
            for (int r = 0; r < MR; ++r) {
                if (r < rows) {
                    float row[NR];
                    #pragma unroll
                    for (int v = 0; v < NV; ++v) vstorev(acc[r][v], v, row);
                    __global float* cr = c + r * cRowStride;
                    for (int j = 0; j < cols; ++j) {
                        float x = alpha * row[j];
                        if (accumulate) x += cr[j * cColStride];
                        cr[j * cColStride] = x;
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// GPU: local-memory tiled SGEMM. Work-group 16 x 16; each work-item computes (TM/16) x (TN/16)
// outputs at rows ly + 16*i and columns lx + 16*j (conflict-free local reads, coalesced writes).
// Global: (ceil(N/TN)*16, ceil(M/TM)*16, Z). Work-group z sums A[s].B[s] over items
// s in [z*per, min(z*per + per, nitems)) and writes C item z: per = 1 for a plain batch; with
// sumOverBatch either Z = 1 and per = nitems, or (few output tiles) Z slices writing partial sums
// that gemm_reduce adds up.

#ifndef TM
#define TM 64
#endif
#ifndef TN
#define TN 64
#endif
#ifndef TK
#define TK 16
#endif
#define WM (TM / 16)
#define WN (TN / 16)

__kernel __attribute__((reqd_work_group_size(16, 16, 1)))
void gemm_tiled(__global const float* A, int aOff, int aBatch, int aRow, int aCol,
                __global const float* B, int bOff, int bBatch, int bRow, int bCol,
                __global float* C, int cOff, int cBatch, int cRow, int cCol,
                int M, int N, int K, int nitems, int per, float alpha, int accumulate)
{
    __local float As[TK][TM + 1];
    __local float Bs[TK][TN + 1];
    const int lx = get_local_id(0);
    const int ly = get_local_id(1);
    const int tid = ly * 16 + lx;
    const int n0 = get_group_id(0) * TN;
    const int m0 = get_group_id(1) * TM;
    const int z = get_global_id(2);
    // Which way to walk a tile when loading it: along the operand's unit-stride direction.
    const int aKFast = (aCol == 1);
    const int bNFast = (bCol == 1) || (bRow != 1);

    float acc[WM][WN];
    for (int i = 0; i < WM; ++i)
        for (int j = 0; j < WN; ++j) acc[i][j] = 0.0f;

    const int sEnd = min(z * per + per, nitems);
    for (int item = z * per; item < sEnd; ++item) {
        const int aBase = aOff + item * aBatch;
        const int bBase = bOff + item * bBatch;
        for (int k0 = 0; k0 < K; k0 += TK) {
            for (int l = tid; l < TM * TK; l += 256) {
                const int mm = aKFast ? l / TK : l % TM;
                const int kk = aKFast ? l % TK : l / TM;
                const int gm = m0 + mm, gk = k0 + kk;
                As[kk][mm] = (gm < M && gk < K) ? A[aBase + gm * aRow + gk * aCol] : 0.0f;
            }
            for (int l = tid; l < TN * TK; l += 256) {
                const int nn = bNFast ? l % TN : l / TK;
                const int kk = bNFast ? l / TN : l % TK;
                const int gn = n0 + nn, gk = k0 + kk;
                Bs[kk][nn] = (gn < N && gk < K) ? B[bBase + gk * bRow + gn * bCol] : 0.0f;
            }
            barrier(CLK_LOCAL_MEM_FENCE);
            for (int kk = 0; kk < TK; ++kk) {
                float a[WM], b[WN];
                for (int i = 0; i < WM; ++i) a[i] = As[kk][ly + 16 * i];
                for (int j = 0; j < WN; ++j) b[j] = Bs[kk][lx + 16 * j];
                for (int i = 0; i < WM; ++i)
                    for (int j = 0; j < WN; ++j) acc[i][j] = fma(a[i], b[j], acc[i][j]);
            }
            barrier(CLK_LOCAL_MEM_FENCE);
        }
    }

    const int cBase = cOff + z * cBatch;
    for (int i = 0; i < WM; ++i) {
        const int gm = m0 + ly + 16 * i;
        if (gm >= M) continue;
        for (int j = 0; j < WN; ++j) {
            const int gn = n0 + lx + 16 * j;
            if (gn >= N) continue;
            const int idx = cBase + gm * cRow + gn * cCol;
            float x = alpha * acc[i][j];
            if (accumulate) x += C[idx];
            C[idx] = x;
        }
    }
}

// C = alpha * sum of `slices` partial products (each M x N, contiguous) [+ C]. Work-group 16 x 16.
__kernel __attribute__((reqd_work_group_size(16, 16, 1)))
void gemm_reduce(__global const float* P, int slices, int M, int N,
                 __global float* C, int cOff, int cRow, int cCol, float alpha, int accumulate)
{
    const int j = get_global_id(0);
    const int i = get_global_id(1);
    if (i >= M || j >= N) return;
    float sum = 0.0f;
    for (int s = 0; s < slices; ++s) sum += P[(s * M + i) * N + j];
    const int idx = cOff + i * cRow + j * cCol;
    float x = alpha * sum;
    if (accumulate) x += C[idx];
    C[idx] = x;
}
