// Elementwise and layout ops: one work-item per output element, bounds-checked (the global size
// is rounded up to the work-group size). Each matches the same-named case in CPUBackend.

kernel void add(global float *out, global const float *a, global const float *b, int n) {
    int i = get_global_id(0);
    if (i < n) out[i] = a[i] + b[i];
}

kernel void mul(global float *out, global const float *a, global const float *b, int n) {
    int i = get_global_id(0);
    if (i < n) out[i] = a[i] * b[i];
}

kernel void scale(global float *out, global const float *x, float factor, int n) {
    int i = get_global_id(0);
    if (i < n) out[i] = factor * x[i];
}

kernel void copy(global float *out, global const float *x, int n) {
    int i = get_global_id(0);
    if (i < n) out[i] = x[i];
}

// out[n,c,p] = x[n,c,p] + v[n,c]   (plane = H·W)
kernel void add_channels(global float *out, global const float *x, global const float *v, int n, int plane) {
    int i = get_global_id(0);
    if (i < n) out[i] = x[i] + v[i / plane];
}

// out[n,c,p] = b[c]: the bias a convolution or linear layer then accumulates onto.
kernel void fill_channels(global float *out, global const float *b, int n, int plane, int channels) {
    int i = get_global_id(0);
    if (i < n) out[i] = b[(i / plane) % channels];
}

// out[q] = Σ_p x[q, p] over each plane q (sum over H·W, keeping batch and channel).
kernel void sum_planes(global float *out, global const float *x, int planes, int plane) {
    int q = get_global_id(0);
    if (q >= planes) return;
    global const float *row = x + (long)q * plane;
    float sum = 0.0f;
    for (int p = 0; p < plane; p++) sum += row[p];
    out[q] = sum;
}

// out[c] = Σ_{n,p} x[n,c,p]
kernel void sum_channels(global float *out, global const float *x, int batch, int channels, int plane) {
    int c = get_global_id(0);
    if (c >= channels) return;
    float sum = 0.0f;
    for (int n = 0; n < batch; n++) {
        global const float *row = x + ((long)n * channels + c) * plane;
        float part = 0.0f;
        for (int p = 0; p < plane; p++) part += row[p];
        sum += part;
    }
    out[c] = sum;
}

// out[N, ca+cb, P] = concat(a[N,ca,P], b[N,cb,P]) along channels.
kernel void concat_channels(global float *out, global const float *a, global const float *b,
                            int ca, int cb, int plane, int n) {
    int i = get_global_id(0);
    if (i >= n) return;
    int per = (ca + cb) * plane;
    int image = i / per, rest = i % per;
    out[i] = rest < ca * plane ? a[image * ca * plane + rest] : b[image * cb * plane + rest - ca * plane];
}

// out[N, count, P] = x[:, start..<start+count]
kernel void slice_channels(global float *out, global const float *x, int channels, int start, int count,
                           int plane, int n) {
    int i = get_global_id(0);
    if (i >= n) return;
    int image = i / (count * plane), rest = i % (count * plane);
    out[i] = x[image * channels * plane + start * plane + rest];
}

// out[N, total, P] = dy in channels start..<start+count, zero elsewhere.
kernel void slice_channels_backward(global float *out, global const float *dy, int count, int start, int total,
                                    int plane, int n) {
    int i = get_global_id(0);
    if (i >= n) return;
    int image = i / (total * plane), rest = i % (total * plane);
    int channel = rest / plane;
    out[i] = (channel >= start && channel < start + count) ? dy[image * count * plane + rest - start * plane] : 0.0f;
}

// out[q, 2h, 2w] = x[q, h, w] (nearest)
kernel void upsample_nearest2x(global float *out, global const float *x, int h, int w, int n) {
    int i = get_global_id(0);
    if (i >= n) return;
    int q = i / (4 * h * w), rest = i % (4 * h * w);
    int oy = rest / (2 * w), ox = rest % (2 * w);
    out[i] = x[q * h * w + (oy / 2) * w + ox / 2];
}

// out[q, h, w] = sum of the 2×2 block of dy[q, 2h, 2w]
kernel void upsample_nearest2x_backward(global float *out, global const float *dy, int h, int w, int n) {
    int i = get_global_id(0);
    if (i >= n) return;
    int q = i / (h * w), rest = i % (h * w);
    int iy = rest / w, ix = rest % w;
    int w2 = 2 * w;
    int base = q * 4 * h * w + 2 * iy * w2 + 2 * ix;
    out[i] = (dy[base] + dy[base + 1]) + (dy[base + w2] + dy[base + w2 + 1]);
}
