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
//
// GPU: gemm_tiled, a local-memory tiled SGEMM (TM x TN tile per 16x16 work-group, TK deep) reading
//   the strided operands directly.
//
// Build constants: MR (rows per block: 1..16), NR (columns per block: 8, 16, 24 or 32), PK (k rows
// per pack work-item).

#ifndef MR
#define MR 4
#endif
#ifndef NR
#define NR 24
#endif
#ifndef PK
#define PK 16
#endif
#define NV (NR / 8)

// ---------------------------------------------------------------------------------------------
// Pack kernels. Work-item (panel, k-chunk, item): writes PK rows of one panel.
// Panel element (p, r) of item t goes to dst[t*dstItem + panel*dstPanel + p*R + r], read from the
// logical operand at (panel*R + r, p) for A (rows = m) or (p, panel*R + r) for B (cols = n).
// Rows beyond `extent` (M or N) are written as zeros.

__kernel void gemm_pack_a(__global const float* src, int off, int batchStride, int rowStride, int colStride,
                          int M, int K,
                          __global float* dst, int dstItem, int dstPanel)
{
    const int panel = get_global_id(0);
    const int p0 = get_global_id(1) * PK;
    const int t = get_global_id(2);
    const int pEnd = min(p0 + PK, K);
    const int i0 = panel * MR;
    __global float* d = dst + t * dstItem + panel * dstPanel;
    const int base = off + t * batchStride + i0 * rowStride;
    if (i0 + MR <= M) {
        for (int p = p0; p < pEnd; ++p) {
            const int s = base + p * colStride;
            #pragma unroll
            for (int r = 0; r < MR; ++r) d[p * MR + r] = src[s + r * rowStride];
        }
    } else {
        for (int p = p0; p < pEnd; ++p) {
            const int s = base + p * colStride;
            for (int r = 0; r < MR; ++r) d[p * MR + r] = (i0 + r < M) ? src[s + r * rowStride] : 0.0f;
        }
    }
}

__kernel void gemm_pack_b(__global const float* src, int off, int batchStride, int rowStride, int colStride,
                          int N, int K,
                          __global float* dst, int dstItem, int dstPanel)
{
    const int panel = get_global_id(0);
    const int p0 = get_global_id(1) * PK;
    const int t = get_global_id(2);
    const int pEnd = min(p0 + PK, K);
    const int j0 = panel * NR;
    __global float* d = dst + t * dstItem + panel * dstPanel;
    const int base = off + t * batchStride + j0 * colStride;
    if (j0 + NR <= N) {
        if (colStride == 1) {
            for (int p = p0; p < pEnd; ++p) {
                const __global float* s = src + base + p * rowStride;
                #pragma unroll
                for (int v = 0; v < NV; ++v) vstore8(vload8(v, s), v, d + p * NR);
            }
        } else {
            for (int p = p0; p < pEnd; ++p) {
                const int s = base + p * rowStride;
                #pragma unroll
                for (int r = 0; r < NR; ++r) d[p * NR + r] = src[s + r * colStride];
            }
        }
    } else {
        for (int p = p0; p < pEnd; ++p) {
            const int s = base + p * rowStride;
            for (int r = 0; r < NR; ++r) d[p * NR + r] = (j0 + r < N) ? src[s + r * colStride] : 0.0f;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Micro-kernel. Work-item (m-block, n-block, item), work-group size 1.

#define STEP(kk)                                                                    \
    {                                                                               \
        float8 bv[NV];                                                              \
        _Pragma("unroll") for (int v = 0; v < NV; ++v) bv[v] = pb[(kk) * NV + v];   \
        _Pragma("unroll") for (int r = 0; r < MR; ++r) {                            \
            const float8 av = (float8)(pa[(kk) * MR + r]);                          \
            _Pragma("unroll") for (int v = 0; v < NV; ++v) acc[r][v] = fma(av, bv[v], acc[r][v]); \
        }                                                                           \
    }

__kernel void gemm_micro(__global const float* Ap, int aItem, int aPanel,
                         __global const float* Bp, int bItem, int bPanel,
                         int K,
                         __global float* C, int cOff, int cBatchStride, int cRowStride, int cColStride,
                         int M, int N, float alpha, int accumulate)
{
    const int mb = get_global_id(0);
    const int nb = get_global_id(1);
    const int t = get_global_id(2);
    const __global float* pa = Ap + t * aItem + mb * aPanel;
    const __global float8* pb = (const __global float8*)(Bp + t * bItem + nb * bPanel);

    float8 acc[MR][NV];
    #pragma unroll
    for (int r = 0; r < MR; ++r) {
        #pragma unroll
        for (int v = 0; v < NV; ++v) acc[r][v] = (float8)(0.0f);
    }

    int k = 0;
    for (; k + 4 <= K; k += 4) {
        STEP(0) STEP(1) STEP(2) STEP(3)
        pa += 4 * MR;
        pb += 4 * NV;
    }
    for (; k < K; ++k) {
        STEP(0)
        pa += MR;
        pb += NV;
    }

    const int i0 = mb * MR;
    const int j0 = nb * NR;
    __global float* c = C + cOff + t * cBatchStride + i0 * cRowStride + j0 * cColStride;
    if (cColStride == 1 && i0 + MR <= M && j0 + NR <= N) {
        #pragma unroll
        for (int r = 0; r < MR; ++r) {
            __global float* cr = c + r * cRowStride;
            #pragma unroll
            for (int v = 0; v < NV; ++v) {
                float8 x = alpha * acc[r][v];
                if (accumulate) x += vload8(v, cr);
                vstore8(x, v, cr);
            }
        }
    } else {
        const int rows = min(MR, M - i0);
        const int cols = min(NR, N - j0);
        #pragma unroll
        for (int r = 0; r < MR; ++r) {
            if (r < rows) {
                float row[NR];
                #pragma unroll
                for (int v = 0; v < NV; ++v) vstore8(acc[r][v], v, row);
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

// ---------------------------------------------------------------------------------------------
// GPU: local-memory tiled SGEMM. Work-group 16 x 16; each work-item computes (TM/16) x (TN/16)
// outputs at rows ly + 16*i and columns lx + 16*j (conflict-free local reads, coalesced writes).
// Global: (ceil(N/TN)*16, ceil(M/TM)*16, items). With sumOverBatch the launcher passes nsum = batch
// and one item; the kernel then sums A[s].B[s] over s.

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
                int M, int N, int K, int nsum, float alpha, int accumulate)
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

    for (int s = 0; s < nsum; ++s) {
        const int item = z + s;
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
