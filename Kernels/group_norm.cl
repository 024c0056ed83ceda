// Group normalisation, one work-item per (image, group) job: its C/G channels × spatial elements
// are contiguous (16 KB at 4 × 32×32), so the statistics pass and the normalising pass read them
// from cache, and the whole op is one read and one write of memory. Loops run over float8 pieces
// with a scalar tail (any spatial size), with several accumulators so sums do not wait on each other.

// Σ p[i] for i < len.
inline float group_sum(global const float *p, int len) {
    float8 a = (float8)(0.0f), b = (float8)(0.0f);
    int i = 0;
    for (; i + 16 <= len; i += 16) { a += vload8(0, p + i); b += vload8(1, p + i); }
    if (i + 8 <= len) { a += vload8(0, p + i); i += 8; }
    float sum = sum8(a + b);
    for (; i < len; i++) sum += p[i];
    return sum;
}

// Σ (p[i] − mean)² for i < len.
inline float group_squares(global const float *p, int len, float mean) {
    float8 a = (float8)(0.0f), b = (float8)(0.0f);
    int i = 0;
    for (; i + 16 <= len; i += 16) {
        float8 d = vload8(0, p + i) - mean, e = vload8(1, p + i) - mean;
        a = fma(d, d, a);
        b = fma(e, e, b);
    }
    if (i + 8 <= len) { float8 d = vload8(0, p + i) - mean; a = fma(d, d, a); i += 8; }
    float sum = sum8(a + b);
    for (; i < len; i++) { float d = p[i] - mean; sum = fma(d, d, sum); }
    return sum;
}

// (mean, 1/√(var+eps)) of one job's len elements (biased variance, two passes).
inline float2 group_stats(global const float *p, int len, float eps) {
    float mean = group_sum(p, len) / (float)len;
    float var = group_squares(p, len, mean) / (float)len;
    return (float2)(mean, 1.0f / sqrt(var + eps));
}

// z·sigmoid(z) and dy·silu′(z) (silu.cl's formulas), for GroupNorm fused with SiLU.
inline float8 silu8(float8 z) { return z / (1.0f + exp(-z)); }
inline float silu1(float z) { return z / (1.0f + exp(-z)); }
inline float8 silu_grad8(float8 z, float8 d) { float8 s = 1.0f / (1.0f + exp(-z)); return d * (s * (1.0f + z * (1.0f - s))); }
inline float silu_grad1(float z, float d) { float s = 1.0f / (1.0f + exp(-z)); return d * (s * (1.0f + z * (1.0f - s))); }

// y = (x − mean)·rstd·gamma[c] + beta[c], through the SiLU when silu; jobs = N·G.
kernel void group_norm_forward(global float *y, global const float *x, global const float *gamma,
                               global const float *beta, int groups, int channels_per_group, int spatial,
                               float eps, int silu, int jobs) {
    int job = get_global_id(0);
    if (job >= jobs) return;
    int len = channels_per_group * spatial;
    long base = (long)job * len;
    global const float *xg = x + base;
    global float *yg = y + base;
    float2 s = group_stats(xg, len, eps);
    int c0 = (job % groups) * channels_per_group;
    for (int cc = 0; cc < channels_per_group; cc++) {
        float a = s.y * gamma[c0 + cc], b = beta[c0 + cc];
        global const float *xr = xg + cc * spatial;
        global float *yr = yg + cc * spatial;
        int p = 0;
        if (silu) {
            for (; p + 8 <= spatial; p += 8) vstore8(silu8(fma(vload8(0, xr + p) - s.x, (float8)(a), (float8)(b))), 0, yr + p);
            for (; p < spatial; p++) yr[p] = silu1(fma(xr[p] - s.x, a, b));
        } else {
            for (; p + 8 <= spatial; p += 8) vstore8(fma(vload8(0, xr + p) - s.x, (float8)(a), (float8)(b)), 0, yr + p);
            for (; p < spatial; p++) yr[p] = fma(xr[p] - s.x, a, b);
        }
    }
}

// dx = rstd·(g − mean(g) − x̂·mean(g·x̂)), g = dy·gamma, per job. Also writes, per (image, channel),
// partial[2·(n·C+c)] = Σ_p dy and partial[2·(n·C+c)+1] = Σ_p dy·x̂, which group_norm_backward_affine
// sums over the batch (and which give mean(g), mean(g·x̂) here).
// Fused with SiLU (silu = 1), dy is first taken through it: dz = dy·silu′(z), z = x̂·gamma + beta,
// written to dx by the first pass and read back by the second (the same work-item's elements).
kernel void group_norm_backward_input(global float *dx, global float *partial, global const float *x,
                                      global const float *gamma, global const float *dy_out, global const float *beta,
                                      int silu, int groups, int channels_per_group, int spatial, float eps, int jobs) {
    int job = get_global_id(0);
    if (job >= jobs) return;
    int len = channels_per_group * spatial;
    long base = (long)job * len;
    global const float *xg = x + base, *dyg = dy_out + base;
    global float *dxg = dx + base;
    float2 s = group_stats(xg, len, eps);
    float mean = s.x, rstd = s.y;
    int c0 = (job % groups) * channels_per_group;
    if (silu) {
        for (int cc = 0; cc < channels_per_group; cc++) {
            const float a = rstd * gamma[c0 + cc], b = beta[c0 + cc];
            global const float *xr = xg + cc * spatial, *dyr = dyg + cc * spatial;
            global float *dzr = dxg + cc * spatial;
            int p = 0;
            for (; p + 8 <= spatial; p += 8)
                vstore8(silu_grad8(fma(vload8(0, xr + p) - mean, (float8)(a), (float8)(b)), vload8(0, dyr + p)), 0, dzr + p);
            for (; p < spatial; p++) dzr[p] = silu_grad1(fma(xr[p] - mean, a, b), dyr[p]);
        }
        dyg = dxg;
    }
    int channels = groups * channels_per_group;
    global float *part = partial + 2 * ((long)(job / groups) * channels + c0);
    float sum_g = 0.0f, sum_gx = 0.0f;
    for (int cc = 0; cc < channels_per_group; cc++) {
        global const float *xr = xg + cc * spatial, *dyr = dyg + cc * spatial;
        float8 a8 = (float8)(0.0f), b8 = (float8)(0.0f);
        int p = 0;
        for (; p + 8 <= spatial; p += 8) {
            float8 d = vload8(0, dyr + p);
            a8 += d;
            b8 = fma(d, vload8(0, xr + p) - mean, b8);
        }
        float a = sum8(a8), b = sum8(b8);
        for (; p < spatial; p++) { a += dyr[p]; b = fma(dyr[p], xr[p] - mean, b); }
        b *= rstd;
        part[2 * cc] = a;
        part[2 * cc + 1] = b;
        float gm = gamma[c0 + cc];
        sum_g = fma(gm, a, sum_g);
        sum_gx = fma(gm, b, sum_gx);
    }
    float mean_g = sum_g / (float)len, mean_gx = sum_gx / (float)len;
    for (int cc = 0; cc < channels_per_group; cc++) {
        float gm = gamma[c0 + cc];
        global const float *xr = xg + cc * spatial, *dyr = dyg + cc * spatial;
        global float *dxr = dxg + cc * spatial;
        int p = 0;
        for (; p + 8 <= spatial; p += 8) {
            float8 xhat = (vload8(0, xr + p) - mean) * rstd;
            vstore8(rstd * (vload8(0, dyr + p) * gm - mean_g - xhat * mean_gx), 0, dxr + p);
        }
        for (; p < spatial; p++) {
            float xhat = (xr[p] - mean) * rstd;
            dxr[p] = rstd * (dyr[p] * gm - mean_g - xhat * mean_gx);
        }
    }
}

// dgamma[c] = Σ_n partial[n,c].y (Σ dy·x̂), dbeta[c] = Σ_n partial[n,c].x (Σ dy).
kernel void group_norm_backward_affine(global float *dgamma, global float *dbeta, global const float *partial,
                                       int batch, int channels) {
    int c = get_global_id(0);
    if (c >= channels) return;
    float sum_dy = 0.0f, sum_dyx = 0.0f;
    for (int n = 0; n < batch; n++) {
        long i = 2 * ((long)n * channels + c);
        sum_dy += partial[i];
        sum_dyx += partial[i + 1];
    }
    dgamma[c] = sum_dyx;
    dbeta[c] = sum_dy;
}
