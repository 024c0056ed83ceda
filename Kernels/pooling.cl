// InceptionV3's feature-network ops (forward only): ReLU, max and average pooling, bilinear resize.
// The CPU reference (Sources/DDPMCPU/Pooling.swift) defines them; sums run in the same order.

// y = max(x, 0) over a span of `per` elements per work-item.
kernel void relu_forward(global float *y, global const float *x, int n, int per) {
    int i = get_global_id(0) * per;
    if (i >= n) return;
    int end = min(n, i + per);
    for (; i + 8 <= end; i += 8) vstore8(fmax(vload8(0, x + i), (float8)(0.0f)), 0, y + i);
    for (; i < end; i++) y[i] = fmax(x[i], 0.0f);
}

// One work-item per output row (plane, oy): the max (average = 0) or the mean over the window's
// cells inside the image (average = 1, count_include_pad=False), windows k×k at stride s, padding p.
kernel void pool2d(global float *y, global const float *x, int h, int w, int ho, int wo, int k, int s, int p,
                   int average, int rows) {
    int r = get_global_id(0);
    if (r >= rows) return;
    int oy = r % ho, plane = r / ho;
    global const float *in = x + (long)plane * h * w;
    global float *out = y + (long)r * wo;
    int y0 = max(oy * s - p, 0), y1 = min(oy * s - p + k, h);
    for (int ox = 0; ox < wo; ox++) {
        int x0 = max(ox * s - p, 0), x1 = min(ox * s - p + k, w);
        float acc = average ? 0.0f : -INFINITY;
        for (int iy = y0; iy < y1; iy++) {
            for (int ix = x0; ix < x1; ix++) {
                float v = in[iy * w + ix];
                acc = average ? acc + v : fmax(acc, v);
            }
        }
        out[ox] = average ? acc / (float)((y1 - y0) * (x1 - x0)) : acc;
    }
}

// Source neighbours and the second one's weight of output index o (torch's bilinear,
// align_corners=False): src = max((o + ½)·in/out − ½, 0).
inline float bilinear_source(int o, int in_size, int out_size, int *i0, int *i1) {
    float scale = (float)in_size / (float)out_size;
    float src = fmax(scale * ((float)o + 0.5f) - 0.5f, 0.0f);
    *i0 = min((int)src, in_size - 1);
    *i1 = *i0 + (*i0 < in_size - 1 ? 1 : 0);
    return src - (float)*i0;
}

// One work-item per output row (plane, oy).
kernel void resize_bilinear(global float *y, global const float *x, int h, int w, int ho, int wo, int rows) {
    int r = get_global_id(0);
    if (r >= rows) return;
    int oy = r % ho, plane = r / ho;
    global const float *in = x + (long)plane * h * w;
    global float *out = y + (long)r * wo;
    int y0, y1;
    float ly = bilinear_source(oy, h, ho, &y0, &y1);
    for (int ox = 0; ox < wo; ox++) {
        int x0, x1;
        float lx = bilinear_source(ox, w, wo, &x0, &x1);
        float top = (1.0f - lx) * in[y0 * w + x0] + lx * in[y0 * w + x1];
        float bottom = (1.0f - lx) * in[y1 * w + x0] + lx * in[y1 * w + x1];
        out[ox] = (1.0f - ly) * top + ly * bottom;
    }
}
