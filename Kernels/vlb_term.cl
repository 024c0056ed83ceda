// Improved DDPM's L_vlb term (see VLBTerm in Op.swift; the reference is
// Sources/DDPMCPU/VariationalBoundTerm.swift, in double). table rows per timestep t (length T):
// 0 kx, 1 km, 2 c1, 3 c2, 4 log β̃ (clipped), 5 log β.

// improved-diffusion's approx_standard_normal_cdf ½(1 + tanh(g(x))), g(x) = √(2/π)(x + 0.044715x³), written
// as the logistic σ(2g): tails then stay accurate in float32 (1 − Φ̃(x) = σ(−2g) without cancellation).
float approx_g(float x) { return 0.7978845608f * (x + 0.044715f * x * x * x); }
float logistic(float z) { return 1.0f / (1.0f + exp(-z)); }

// d/dx ½(1 + tanh g) = ½(1 − tanh² g)·g′ = 2σ(2g)σ(−2g)·g′
float approx_normal_cdf_derivative(float x) {
    float g = approx_g(x);
    return 2.0f * logistic(2.0f * g) * logistic(-2.0f * g) * 0.7978845608f * (1.0f + 3.0f * 0.044715f * x * x);
}

// One element's term in nats; *dv receives ∂term/∂v.
float vlb_element(float x0, float xt, float m, float v, int t, global const float *table, int T, float *dv) {
    float kx = table[t], km = table[T + t], c1 = table[2 * T + t], c2 = table[3 * T + t];
    float min_log = table[4 * T + t], max_log = table[5 * T + t];
    float model_mean = c1 * (kx * xt + km * m) + c2 * xt;
    float f = (v + 1.0f) / 2.0f;
    float log_var = f * max_log + (1.0f - f) * min_log;
    float dlog_var = (max_log - min_log) / 2.0f;
    if (t > 0) {
        float d = (c1 * x0 + c2 * xt) - model_mean;
        float e1 = exp(min_log - log_var), e2 = d * d * exp(-log_var);
        *dv = 0.5f * (1.0f - e1 - e2) * dlog_var;
        return 0.5f * (-1.0f + log_var - min_log + e1 + e2);
    }
    float inv = exp(-0.5f * log_var), centered = x0 - model_mean;
    float plus_in = inv * (centered + 1.0f / 255.0f), min_in = inv * (centered - 1.0f / 255.0f);
    float cdf_plus = logistic(2.0f * approx_g(plus_in)), cdf_min = logistic(2.0f * approx_g(min_in));
    float dplus = -approx_normal_cdf_derivative(plus_in) * plus_in, dmin = -approx_normal_cdf_derivative(min_in) * min_in;
    float log_prob, dlog_prob;
    if (x0 < -0.999f) {
        log_prob = log(fmax(cdf_plus, 1e-12f)); dlog_prob = cdf_plus > 1e-12f ? dplus / cdf_plus : 0.0f;
    } else if (x0 > 0.999f) {
        float upper = logistic(-2.0f * approx_g(min_in));   // 1 − Φ̃(min_in)
        log_prob = log(fmax(upper, 1e-12f)); dlog_prob = upper > 1e-12f ? -dmin / upper : 0.0f;
    } else {
        // Φ̃(plus) − Φ̃(min), from the upper tails when both lie above 0 (no cancellation near 1).
        float delta = min_in > 0.0f ? logistic(-2.0f * approx_g(min_in)) - logistic(-2.0f * approx_g(plus_in)) : cdf_plus - cdf_min;
        log_prob = log(fmax(delta, 1e-12f)); dlog_prob = delta > 1e-12f ? (dplus - dmin) / delta : 0.0f;
    }
    *dv = -dlog_prob * 0.5f * dlog_var;
    return -log_prob;
}

// partial[n] = mean_i term(n, i), one image per work-item.
kernel void vlb_term_per_image(global float *partial, global const float *x0, global const float *xt, global const float *m,
                               global const float *v, global const float *t, global const float *table, int T, int per, int batch) {
    int image = get_global_id(0);
    if (image >= batch) return;
    int ti = (int)t[image];
    long base = (long)image * per;
    float sum = 0.0f, unused;
    for (int i = 0; i < per; i++) sum += vlb_element(x0[base + i], xt[base + i], m[base + i], v[base + i], ti, table, T, &unused);
    partial[image] = sum / (float)per;
}

// loss = scale · mean_n partial[n] / ln 2
kernel void vlb_term_finish(global float *loss, global const float *partial, float scale, int batch) {
    if (get_global_id(0) != 0) return;
    float sum = 0.0f;
    for (int i = 0; i < batch; i++) sum += partial[i];
    loss[0] = scale * (sum / (float)batch) / 0.6931471806f;
}

// dv = dloss · scale · ∂term/∂v / (count · ln 2)
kernel void vlb_term_backward(global float *dv, global const float *x0, global const float *xt, global const float *m,
                              global const float *v, global const float *t, global const float *table, global const float *dloss,
                              float scale, int T, int per, int count) {
    int i = get_global_id(0);
    if (i >= count) return;
    float d;
    vlb_element(x0[i], xt[i], m[i], v[i], (int)t[i / per], table, T, &d);
    dv[i] = dloss[0] * scale * d / ((float)count * 0.6931471806f);
}
