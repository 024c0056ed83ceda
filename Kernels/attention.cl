// Scaled dot-product attention (Op.attention) for CPUs, fused: q, k, v are [B][d][T] (channel c of
// token i at c·T + i), o[b][:, i] = Σ_j P[i][j]·v[b][:, j] with P[i][:] = softmax_j(scale·q_i·k_j).
// No [B][T][T] score matrix goes through memory: a work-item owns VW queries (the vector lanes) of
// one b and keeps their scores, T vectors, in its slice of `scratch` (16 KiB at T = 256 with 16
// lanes: it stays in L1/L2). Every pass is lane-parallel, with no sums across lanes:
//
//   lane_products   s[j] = scale·Σ_c a[c][lanes]·b[c][j]   (vector a, b broadcast: AJB FMAs per load)
//   lane_mix        out[c][lanes] = f·Σ_j p[j]·m[c][j]     (vector p, m broadcast: ADB FMAs per load)
//
//   attention_forward           o = lane_mix(softmax(lane_products(q, k)), v)
//   attention_backward_queries  P and dP = lane_products(do, v) again, dS = P·(dP − D) with
//                               D = Σ_j P·dP, dq = scale·lane_mix(dS, k); writes per query
//                               L = log Σ_j exp(s_j) and D to `stats` [B][2][T]
//   attention_backward_keys     lanes are keys: P = exp(lane_products(k, q) − L),
//                               dS = P·(lane_products(v, do) − D), dv = lane_mix(P, do),
//                               dk = scale·lane_mix(dS, q)
//
// Work-item (b, split) of global (B·splits), work-group size 1, takes the query (or key) vectors
// split, split + splits, ... Lanes past T (when VW does not divide T) compute on zeros and are not
// stored.

#ifndef AJB
#define AJB 8
#endif
#ifndef ADB
#define ADB 8
#endif

// Lanes [0, valid) of p; the rest zero.
inline floatv load_lanes(global const float *p, int valid) {
    if (valid >= VW) return vloadv(0, p);
    float tmp[VW];
    for (int l = 0; l < VW; l++) tmp[l] = l < valid ? p[l] : 0.0f;
    return vloadv(0, tmp);
}

inline void store_lanes(floatv v, global float *p, int valid) {
    if (valid >= VW) { vstorev(v, 0, p); return; }
    float tmp[VW];
    vstorev(v, 0, tmp);
    for (int l = 0; l < valid; l++) p[l] = tmp[l];
}

// s[j] = scale·Σ_c a[c·t + lanes]·b[c·t + j] for j < t; a points at the lanes' first token.
inline void lane_products(global floatv *s, global const float *a, global const float *b, int channels, int t, int valid,
                          float scale) {
    int j = 0;
    for (; j + AJB <= t; j += AJB) {
        floatv acc[AJB];
        #pragma unroll
        for (int u = 0; u < AJB; u++) acc[u] = (floatv)(0.0f);
        for (int c = 0; c < channels; c++) {
            const floatv av = load_lanes(a + (long)c * t, valid);
            global const float *bc = b + (long)c * t + j;
            #pragma unroll
            for (int u = 0; u < AJB; u++) acc[u] = fma(av, (floatv)(bc[u]), acc[u]);
        }
        #pragma unroll
        for (int u = 0; u < AJB; u++) s[j + u] = acc[u] * scale;
    }
    for (; j < t; j++) {
        floatv acc = (floatv)(0.0f);
        for (int c = 0; c < channels; c++) acc = fma(load_lanes(a + (long)c * t, valid), (floatv)(b[(long)c * t + j]), acc);
        s[j] = acc * scale;
    }
}

// out[c·t + lanes] = f·Σ_j p[j]·m[c·t + j] for c < channels; out points at the lanes' first token.
inline void lane_mix(global float *out, global const floatv *p, global const float *m, int channels, int t, int valid, floatv f) {
    int c = 0;
    for (; c + ADB <= channels; c += ADB) {
        floatv acc[ADB];
        #pragma unroll
        for (int e = 0; e < ADB; e++) acc[e] = (floatv)(0.0f);
        global const float *mc = m + (long)c * t;
        for (int j = 0; j < t; j++) {
            const floatv pv = p[j];
            #pragma unroll
            for (int e = 0; e < ADB; e++) acc[e] = fma(pv, (floatv)(mc[(long)e * t + j]), acc[e]);
        }
        #pragma unroll
        for (int e = 0; e < ADB; e++) store_lanes(acc[e] * f, out + (long)(c + e) * t, valid);
    }
    for (; c < channels; c++) {
        floatv acc = (floatv)(0.0f);
        for (int j = 0; j < t; j++) acc = fma(p[j], (floatv)(m[(long)c * t + j]), acc);
        store_lanes(acc * f, out + (long)c * t, valid);
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

kernel void attention_forward(global float *o, global const float *q, global const float *k, global const float *v,
                              global floatv *scratch, int channels, int t, int splits, float scale) {
    const int b = get_global_id(0) / splits, split = get_global_id(0) % splits;
    global floatv *s = scratch + (long)get_global_id(0) * 2 * t;
    const long base = (long)b * channels * t;
    for (int i0 = split * VW; i0 < t; i0 += splits * VW) {
        const int valid = min(VW, t - i0);
        lane_products(s, q + base + i0, k + base, channels, t, valid, scale);
        floatv l;
        exp_shifted(s, t, &l);
        lane_mix(o + base + i0, s, v + base, channels, t, valid, 1.0f / l);
    }
}

kernel void attention_backward_queries(global float *dq, global float *stats, global const float *q, global const float *k,
                                       global const float *v, global const float *dout, global floatv *scratch,
                                       int channels, int t, int splits, float scale) {
    const int b = get_global_id(0) / splits, split = get_global_id(0) % splits;
    global floatv *s = scratch + (long)get_global_id(0) * 2 * t, *dp = s + t;
    const long base = (long)b * channels * t;
    for (int i0 = split * VW; i0 < t; i0 += splits * VW) {
        const int valid = min(VW, t - i0);
        lane_products(s, q + base + i0, k + base, channels, t, valid, scale);
        floatv l;
        const floatv m = exp_shifted(s, t, &l);
        const floatv inverse = 1.0f / l;
        lane_products(dp, dout + base + i0, v + base, channels, t, valid, 1.0f);
        floatv d = (floatv)(0.0f);
        for (int j = 0; j < t; j++) { s[j] *= inverse; d = fma(s[j], dp[j], d); }
        for (int j = 0; j < t; j++) s[j] *= dp[j] - d;
        lane_mix(dq + base + i0, s, k + base, channels, t, valid, (floatv)(scale));
        store_lanes(m + log(l), stats + (long)b * 2 * t + i0, valid);
        store_lanes(d, stats + (long)b * 2 * t + t + i0, valid);
    }
}

kernel void attention_backward_keys(global float *dk, global float *dv, global const float *stats, global const float *q,
                                    global const float *k, global const float *v, global const float *dout,
                                    global floatv *scratch, int channels, int t, int splits, float scale) {
    const int b = get_global_id(0) / splits, split = get_global_id(0) % splits;
    global floatv *p = scratch + (long)get_global_id(0) * 2 * t, *ds = p + t;
    const long base = (long)b * channels * t;
    global const float *lse = stats + (long)b * 2 * t, *d = lse + t;
    for (int j0 = split * VW; j0 < t; j0 += splits * VW) {
        const int valid = min(VW, t - j0);
        lane_products(p, k + base + j0, q + base, channels, t, valid, scale);
        lane_products(ds, v + base + j0, dout + base, channels, t, valid, 1.0f);
        for (int i = 0; i < t; i++) {
            const floatv pi = exp(p[i] - lse[i]);
            p[i] = pi;
            ds[i] = pi * (ds[i] - d[i]);
        }
        lane_mix(dv + base + j0, p, dout + base, channels, t, valid, (floatv)(1.0f));
        lane_mix(dk + base + j0, ds, q + base, channels, t, valid, (floatv)(scale));
    }
}
