// Optimizer ops, in place on parameter-sized buffers: gradient norm + clip factor, AdamW, EMA,
// gradient accumulation.
// The per-step scalars come from AdamCoefficients (computed on the host, shared with the CPU).
#pragma OPENCL FP_CONTRACT OFF

// partials[slot·lanes + lane] = Σ g² over the lane's contiguous share of one gradient (float8
// pieces, two accumulators). Contiguous, not strided: with a stride of `lanes` floats every lane
// touched every cache line, and the flat gradient of `cifar10` (143 MB) took 174 ms instead of a
// memory pass.
kernel void sum_squares(global float *partials, global const float *g, int n, int slot, int lanes) {
    int lane = get_global_id(0);
    if (lane >= lanes) return;
    int share = (n + lanes - 1) / lanes;
    share = (share + 15) / 16 * 16;
    int i = min(n, lane * share), end = min(n, i + share);
    float8 a = (float8)(0.0f), b = (float8)(0.0f);
    for (; i + 16 <= end; i += 16) {
        float8 u = vload8(0, g + i), v = vload8(1, g + i);
        a += u * u;
        b += v * v;
    }
    float sum = sum8(a + b);
    for (; i < end; i++) sum += g[i] * g[i];
    partials[slot * lanes + lane] = sum;
}

// stats = (norm, min(1, max_norm / (norm + 1e-6))); max_norm ≤ 0 disables clipping.
kernel void grad_norm_finish(global float *stats, global const float *partials, int count, float max_norm) {
    if (get_global_id(0) != 0) return;
    float sum = 0.0f;
    for (int i = 0; i < count; i++) sum += partials[i];
    float norm = sqrt(sum);
    stats[0] = norm;
    stats[1] = max_norm > 0.0f ? fmin(1.0f, max_norm / (norm + 1e-6f)) : 1.0f;
}

kernel void adam_step(global float *param, global float *m, global float *v, global const float *grad,
                      global const float *stats, float decay, float one_minus_beta1, float one_minus_beta2,
                      float beta2, float step_size, float bias_correction2_sqrt, float eps, int n) {
    int i = get_global_id(0);
    if (i >= n) return;
    float g = grad[i] * stats[1];
    float p = param[i] * decay;
    float mi = m[i] + one_minus_beta1 * (g - m[i]);
    float vi = v[i] * beta2 + one_minus_beta2 * (g * g);
    float denom = sqrt(vi) / bias_correction2_sqrt + eps;
    m[i] = mi;
    v[i] = vi;
    param[i] = p - step_size * (mi / denom);
}

kernel void ema_update(global float *ema, global const float *param, float one_minus_decay, int n) {
    int i = get_global_id(0);
    if (i < n) ema[i] = ema[i] - one_minus_decay * (ema[i] - param[i]);
}

// acc = (reset ? 0 : acc) + scale·g, in place: gradient accumulation over micro-batches.
kernel void accumulate(global float *acc, global const float *g, float scale, int reset, int n) {
    int i = get_global_id(0);
    if (i >= n) return;
    float term = scale * g[i];
    acc[i] = reset ? term : acc[i] + term;
}

#pragma OPENCL FP_CONTRACT ON
