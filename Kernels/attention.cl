// Scaled dot-product attention (Op.attention) for CPUs, fused: q, k, v are [B][d][T] (channel c of
// token i at c·T + i), o[b][:, i] = Σ_j P[i][j]·v[b][:, j] with P[i][:] = softmax_j(scale·q_i·k_j).
// No [B][T][T] score matrix goes through memory: a work-item owns QV·VW queries (QV vectors of VW
// lanes) of one b and keeps their scores, QV·T vectors, in its slice of `scratch` (32 KiB at
// T = 256 with two 16-float vectors: it stays in L1/L2). Every pass is lane-parallel, with no sums
// across lanes:
//
//   lane_products   s[j] = scale·Σ_c a[c][lanes]·b[c][j]   (vectors of a, b broadcast)
//   lane_mix        out[c][lanes] = f·Σ_j p[j]·m[c][j]     (vectors of p, m broadcast)
//
//   attention_forward           o = lane_mix(softmax(lane_products(q, k)), v)
//   attention_backward_queries  P and dP = lane_products(do, v) again, dS = P·(dP − D) with
//                               D = Σ_j P·dP, dq = scale·lane_mix(dS, k); writes per query
//                               L = log Σ_j exp(s_j) and D to `stats` [B][2][T]
//   attention_backward_keys     lanes are keys: P = exp(lane_products(k, q) − L),
//                               dS = P·(lane_products(v, do) − D), dv = lane_mix(P, do),
//                               dk = scale·lane_mix(dS, q)
//
// Work-items of global (B·splits), work-group size 1. Lanes past T (when QV·VW does not divide T)
// compute on zeros and are not stored.
//
// Build constants: VW (prelude.cl), QV (lane vectors per pass: each broadcast feeds QV FMAs), AJB
// and ADB (tokens and channels per register block: QV·AJB or QV·ADB accumulators).

#ifndef AJB
#define AJB 8
#endif
#ifndef ADB
#define ADB 8
#endif
#ifndef QV
#define QV 2
#endif

// For the QV lane vectors u (tokens u·VW + lanes from a, `valid` of them in all):
// s[u·t + j] = scale·Σ_c a[c·t + u·VW + lanes]·b[c·t + j], j < t. Each broadcast of b feeds QV FMAs.
inline void lane_products(global floatv *s, global const float *a, global const float *b, int channels, int t, int valid,
                          float scale) {
    int j = 0;
    for (; j + AJB <= t; j += AJB) {
        floatv acc[QV][AJB];
        #pragma unroll
        for (int u = 0; u < QV; u++) {
            #pragma unroll
            for (int x = 0; x < AJB; x++) acc[u][x] = (floatv)(0.0f);
        }
        for (int c = 0; c < channels; c++) {
            floatv av[QV];
            #pragma unroll
            for (int u = 0; u < QV; u++) av[u] = load_lanes(a + (long)c * t + u * VW, valid - u * VW);
            global const float *bc = b + (long)c * t + j;
            #pragma unroll
            for (int x = 0; x < AJB; x++) {
                const floatv bx = (floatv)(bc[x]);
                #pragma unroll
                for (int u = 0; u < QV; u++) acc[u][x] = fma(av[u], bx, acc[u][x]);
            }
        }
        #pragma unroll
        for (int u = 0; u < QV; u++) {
            #pragma unroll
            for (int x = 0; x < AJB; x++) s[u * t + j + x] = acc[u][x] * scale;
        }
    }
    for (; j < t; j++) {
        floatv acc[QV];
        #pragma unroll
        for (int u = 0; u < QV; u++) acc[u] = (floatv)(0.0f);
        for (int c = 0; c < channels; c++) {
            const floatv bx = (floatv)(b[(long)c * t + j]);
            #pragma unroll
            for (int u = 0; u < QV; u++) acc[u] = fma(load_lanes(a + (long)c * t + u * VW, valid - u * VW), bx, acc[u]);
        }
        #pragma unroll
        for (int u = 0; u < QV; u++) s[u * t + j] = acc[u] * scale;
    }
}

// out[c·t + u·VW + lanes] = f[u]·Σ_j p[u·t + j]·m[c·t + j] for c < channels and the QV lane vectors u
// (`valid` tokens from out on). Each broadcast of m feeds QV FMAs.
inline void lane_mix(global float *out, global const floatv *p, global const float *m, int channels, int t, int valid,
                     const floatv *f) {
    int c = 0;
    for (; c + ADB <= channels; c += ADB) {
        floatv acc[QV][ADB];
        #pragma unroll
        for (int u = 0; u < QV; u++) {
            #pragma unroll
            for (int e = 0; e < ADB; e++) acc[u][e] = (floatv)(0.0f);
        }
        global const float *mc = m + (long)c * t;
        for (int j = 0; j < t; j++) {
            floatv pv[QV];
            #pragma unroll
            for (int u = 0; u < QV; u++) pv[u] = p[u * t + j];
            #pragma unroll
            for (int e = 0; e < ADB; e++) {
                const floatv me = (floatv)(mc[(long)e * t + j]);
                #pragma unroll
                for (int u = 0; u < QV; u++) acc[u][e] = fma(pv[u], me, acc[u][e]);
            }
        }
        #pragma unroll
        for (int u = 0; u < QV; u++) {
            #pragma unroll
            for (int e = 0; e < ADB; e++) store_lanes(acc[u][e] * f[u], out + (long)(c + e) * t + u * VW, valid - u * VW);
        }
    }
    for (; c < channels; c++) {
        floatv acc[QV];
        #pragma unroll
        for (int u = 0; u < QV; u++) acc[u] = (floatv)(0.0f);
        for (int j = 0; j < t; j++) {
            const floatv me = (floatv)(m[(long)c * t + j]);
            #pragma unroll
            for (int u = 0; u < QV; u++) acc[u] = fma(p[u * t + j], me, acc[u]);
        }
        #pragma unroll
        for (int u = 0; u < QV; u++) store_lanes(acc[u] * f[u], out + (long)c * t + u * VW, valid - u * VW);
    }
}

// s[j] ← exp(s[j] − max_j s) in place; returns the lanes' maximum and, in *sum, Σ_j of the exponentials.
inline floatv exp_shifted(global floatv *s, int t, floatv *sum) {
    floatv m = (floatv)(-INFINITY);
    for (int j = 0; j < t; j++) m = fmax(m, s[j]);
    floatv l = (floatv)(0.0f);
    for (int j = 0; j < t; j++) { const floatv e = exp(s[j] - m); s[j] = e; l += e; }
    *sum = l;
    return m;
}

// Work-item (b, split) takes the groups of QV lane vectors split, split + splits, ...; its scratch
// slice holds 2·QV·t vectors (the backward passes use the second half).
#define ATTENTION_ITEM \
    const int b = get_global_id(0) / splits, split = get_global_id(0) % splits; \
    global floatv *s = scratch + (long)get_global_id(0) * 2 * QV * t; \
    const long base = (long)b * channels * t

kernel void attention_forward(global float *o, global const float *q, global const float *k, global const float *v,
                              global floatv *scratch, int channels, int t, int splits, float scale) {
    ATTENTION_ITEM;
    for (int i0 = split * QV * VW; i0 < t; i0 += splits * QV * VW) {
        lane_products(s, q + base + i0, k + base, channels, t, t - i0, scale);
        floatv f[QV];
        #pragma unroll
        for (int u = 0; u < QV; u++) { floatv l; exp_shifted(s + u * t, t, &l); f[u] = 1.0f / l; }
        lane_mix(o + base + i0, s, v + base, channels, t, t - i0, f);
    }
}

kernel void attention_backward_queries(global float *dq, global float *stats, global const float *q, global const float *k,
                                       global const float *v, global const float *dout, global floatv *scratch,
                                       int channels, int t, int splits, float scale) {
    ATTENTION_ITEM;
    global floatv *dp = s + QV * t;
    global float *lse = stats + (long)b * 2 * t, *dsum = lse + t;
    for (int i0 = split * QV * VW; i0 < t; i0 += splits * QV * VW) {
        lane_products(s, q + base + i0, k + base, channels, t, t - i0, scale);
        lane_products(dp, dout + base + i0, v + base, channels, t, t - i0, 1.0f);
        floatv f[QV];
        #pragma unroll
        for (int u = 0; u < QV; u++) {
            global floatv *su = s + u * t, *dpu = dp + u * t;
            floatv l;
            const floatv m = exp_shifted(su, t, &l);
            const floatv inverse = 1.0f / l;
            floatv d = (floatv)(0.0f);
            for (int j = 0; j < t; j++) { su[j] *= inverse; d = fma(su[j], dpu[j], d); }
            for (int j = 0; j < t; j++) su[j] *= dpu[j] - d;
            store_lanes(m + log(l), lse + i0 + u * VW, t - i0 - u * VW);
            store_lanes(d, dsum + i0 + u * VW, t - i0 - u * VW);
            f[u] = (floatv)(scale);
        }
        lane_mix(dq + base + i0, s, k + base, channels, t, t - i0, f);
    }
}

kernel void attention_backward_keys(global float *dk, global float *dv, global const float *stats, global const float *q,
                                    global const float *k, global const float *v, global const float *dout,
                                    global floatv *scratch, int channels, int t, int splits, float scale) {
    ATTENTION_ITEM;
    global floatv *p = s, *ds = s + QV * t;
    global const float *lse = stats + (long)b * 2 * t, *dsum = lse + t;
    for (int j0 = split * QV * VW; j0 < t; j0 += splits * QV * VW) {
        lane_products(p, k + base + j0, q + base, channels, t, t - j0, scale);
        lane_products(ds, v + base + j0, dout + base, channels, t, t - j0, 1.0f);
        for (int u = 0; u < QV; u++) {
            for (int i = 0; i < t; i++) {
                const floatv pi = exp(p[u * t + i] - lse[i]);
                p[u * t + i] = pi;
                ds[u * t + i] = pi * (ds[u * t + i] - dsum[i]);
            }
        }
        floatv one[QV], f[QV];
        #pragma unroll
        for (int u = 0; u < QV; u++) { one[u] = (floatv)(1.0f); f[u] = (floatv)(scale); }
        lane_mix(dv + base + j0, p, dout + base, channels, t, t - j0, one);
        lane_mix(dk + base + j0, ds, q + base, channels, t, t - j0, f);
    }
}
