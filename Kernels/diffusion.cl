// Diffusion ops: time embedding, dropout, losses, the fused noising step and the fused sampler
// update. Built after philox.cl (prepended by the backend). Contraction is off so that the
// noise-dependent arithmetic rounds exactly like the CPU reference.
#pragma OPENCL FP_CONTRACT OFF

// emb[n, :] = [sin(t·f_i), cos(t·f_i)] (or [cos, sin]), f_i = exp(−ln(max_period)·i / (half − shift))
kernel void timestep_embedding(global float *emb, global const float *t, int dim, int flip, float shift,
                               float max_period, int n) {
    int i = get_global_id(0);
    if (i >= n) return;
    int image = i / dim, j = i % dim, half_dim = dim / 2;
    if (j >= 2 * half_dim) { emb[i] = 0.0f; return; }
    int f = j % half_dim;
    float exponent = -log(max_period) * (float)f / ((float)half_dim - shift);
    float angle = t[image] * exp(exponent);
    int first_half = j < half_dim;
    emb[i] = (first_half != flip) ? sin(angle) : cos(angle);
}

// y = keep ? x·scale : 0, keep = uniform(word g%4 of Philox(seed, [g/4, 0, step, stream])) ≥ p, with
// g = first_image·per + i the element's index in the whole batch (a data-parallel shard starts later)
kernel void dropout(global float *y, global const float *x, float p, float scale, uint seed_lo, uint seed_hi,
                    uint stream, uint step, int n, uint first_image, int per) {
    int i = get_global_id(0);
    if (i >= n) return;
    ulong g = (ulong)first_image * (ulong)per + (ulong)i;
    uint4 r = philox4x32_10((uint4)((uint)(g / 4), 0, step, stream), (uint2)(seed_lo, seed_hi));
    uint lane = (uint)(g % 4);
    uint word = lane == 0 ? r.x : lane == 1 ? r.y : lane == 2 ? r.z : r.w;
    y[i] = philox_uniform(word) >= p ? x[i] * scale : 0.0f;
}

// partial[n] = w_n · mean_i (pred − target)² for one image per work-item.
kernel void mse_per_image(global float *partial, global const float *pred, global const float *target,
                          global const float *weights, int weighted, int per, int batch) {
    int image = get_global_id(0);
    if (image >= batch) return;
    long base = (long)image * per;
    float sum = 0.0f;
    for (int i = 0; i < per; i++) { float d = pred[base + i] - target[base + i]; sum += d * d; }
    partial[image] = (weighted ? weights[image] : 1.0f) * (sum / (float)per);
}

kernel void mse_finish(global float *loss, global const float *partial, int batch) {
    if (get_global_id(0) != 0) return;
    float sum = 0.0f;
    for (int i = 0; i < batch; i++) sum += partial[i];
    loss[0] = sum / (float)batch;
}

kernel void mse_backward(global float *dpred, global const float *pred, global const float *target,
                         global const float *weights, int weighted, global const float *dloss, int per, int n) {
    int i = get_global_id(0);
    if (i >= n) return;
    float factor = 2.0f * dloss[0] / (float)n;
    dpred[i] = (weighted ? weights[i / per] : 1.0f) * factor * (pred[i] - target[i]);
}

// t_n from the timestep stream, ε from the noise stream; x_t = a·x0 + b·ε; target by prediction
// (0 = epsilon, 1 = sample, 2 = v). table = [√ᾱ_0…√ᾱ_{T−1}, √(1−ᾱ_0)…, w_0…]; weight[n] = w_t.
// A work-item handles `span` (a multiple of 4) consecutive elements of one image: t is drawn once,
// and each Philox block gives the 4 normals of elements 4m…4m+3, exactly as philox_normal does.
// Offset noise (offset ≠ 0): ε += offset · normal number c of the offset stream, c = channel.
kernel void q_sample(global float *xt, global float *target, global float *t_out, global float *snr, global const float *x0,
                     global const float *table, int timesteps, int prediction, uint seed_lo, uint seed_hi,
                     uint first_image, uint step, int per, int n, int span, float offset, int plane) {
    int g = get_global_id(0);
    int blocks = (per + span - 1) / span;
    int image = g / blocks;
    if (image >= n / per) return;
    int j = (g - image * blocks) * span, end = min(per, j + span);
    uint2 key = (uint2)(seed_lo, seed_hi);
    uint stream_image = first_image + (uint)image;   // the image's index in the global batch
    uint4 r = philox4x32_10((uint4)(0, stream_image, step, 2u), key);   // RandomStream.trainingTimestep
    int t = (int)(((ulong)r.x * (ulong)timesteps) >> 32);
    if (j == 0) { t_out[image] = (float)t; snr[image] = table[2 * timesteps + t]; }
    float a = table[t], b = table[timesteps + t];
    long base = (long)image * per;
    for (; j < end; j += 4) {
        uint4 q = philox4x32_10((uint4)(j / 4, stream_image, step, 1u), key);   // RandomStream.trainingNoise
        float2 n01 = philox_box_muller(philox_uniform(q.x), philox_uniform(q.y));
        float2 n23 = philox_box_muller(philox_uniform(q.z), philox_uniform(q.w));
        float4 noise = (float4)(n01.x, n01.y, n23.x, n23.y);
        for (int lane = 0; lane < 4 && j + lane < end; lane++) {
            float eps = lane == 0 ? noise.x : lane == 1 ? noise.y : lane == 2 ? noise.z : noise.w;
            if (offset != 0.0f)   // RandomStream.trainingOffsetNoise
                eps = eps + offset * philox_normal(key, (uint)((j + lane) / plane), stream_image, step, 6u);
            long i = base + j + lane;
            float x = x0[i];
            xt[i] = a * x + b * eps;
            target[i] = prediction == 0 ? eps : prediction == 1 ? x : a * eps - b * x;
        }
    }
}

// One reverse step (see SamplerStep in Op.swift):
// x̂0 = clamp(kx·x_t + km·m); ε̂ = ex·x_t + em·m; out = p0·x̂0 + pe·ε̂ + px·x_t + σ·z
kernel void sampler_step(global float *out, global const float *xt, global const float *model,
                         float kx, float km, float clip, float ex, float em, float p0, float pe, float px,
                         float sigma, uint seed_lo, uint seed_hi, uint first_image, uint step, int per, int n,
                         int learned, float min_log, float max_log, global const float *v) {
    int i = get_global_id(0);
    if (i >= n) return;
    float x0 = kx * xt[i] + km * model[i];
    if (clip > 0.0f) x0 = fmin(fmax(x0, -clip), clip);
    float eps = ex * xt[i] + em * model[i];
    float value = p0 * x0 + pe * eps + px * xt[i];
    if (sigma != 0.0f) {
        float z = philox_normal((uint2)(seed_lo, seed_hi), i % per, first_image + i / per, step, 3u);  // samplerNoise
        float scale = sigma;
        if (learned) {   // Improved DDPM learned range: log σ² between log β̃ and log β
            float f = (v[i] + 1.0f) / 2.0f;
            scale = scale * exp(0.5f * (f * max_log + (1.0f - f) * min_log));
        }
        value = value + scale * z;
    }
    out[i] = value;
}

// One multistep solver update (see SolverUpdate in Op.swift): out = cx·x + c0·d0 (+ c1·d1 (+ c2·d2))
// + σ·z, summed in that order; k = the number of d inputs used (unused ones may alias d0).
kernel void solver_update(global float *out, global const float *x, global const float *d0, global const float *d1,
                          global const float *d2, int k, float cx, float c0, float c1, float c2, float sigma,
                          uint seed_lo, uint seed_hi, uint first_image, uint step, int per, int n) {
    int i = get_global_id(0);
    if (i >= n) return;
    float value = cx * x[i];
    value = value + c0 * d0[i];
    if (k > 1) value = value + c1 * d1[i];
    if (k > 2) value = value + c2 * d2[i];
    if (sigma != 0.0f) {
        float z = philox_normal((uint2)(seed_lo, seed_hi), i % per, first_image + i / per, step, 3u);  // samplerNoise
        value = value + sigma * z;
    }
    out[i] = value;
}

// The k-th smallest |x| of one image's values (rank selection: O(per²), no scratch memory).
float kth_smallest_abs(global const float *x, int per, int k) {
    for (int i = 0; i < per; i++) {
        float v = fabs(x[i]);
        int less = 0, equal = 0;
        for (int j = 0; j < per; j++) {
            float w = fabs(x[j]);
            less += w < v;
            equal += w == v;
        }
        if (less <= k && k < less + equal) return v;
    }
    return 0.0f;
}

// Dynamic thresholding, one work-item per image: s = clamp(quantile(|x|, ratio), 1, max_value)
// (linear interpolation between order statistics ⌊ratio·(per−1)⌋ and the next), out = clamp(x, ±s)/s.
kernel void dynamic_threshold(global float *out, global const float *x, float ratio, float max_value,
                              int per, int images) {
    int image = get_global_id(0);
    if (image >= images) return;
    global const float *in = x + (long)image * per;
    float position = ratio * (float)(per - 1);
    int lo = min((int)position, per - 1), hi = min(lo + 1, per - 1);
    float a = kth_smallest_abs(in, per, lo), b = kth_smallest_abs(in, per, hi);
    float quantile = a + (position - (float)lo) * (b - a);
    float t = fmin(fmax(quantile, 1.0f), max_value);
    for (int i = 0; i < per; i++) out[(long)image * per + i] = fmin(fmax(in[i], -t), t) / t;
}

#pragma OPENCL FP_CONTRACT ON
