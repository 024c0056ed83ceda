// SiLU (x·sigmoid(x)) and its derivative. Each work-item handles a span of `per` elements
// (float8 pieces on CPUs; per = 1 on GPUs), see elementwise.cl.

kernel void silu_forward(global float *y, global const float *x, int n, int per) {
    int i = get_global_id(0) * per;
    if (i >= n) return;
    int end = min(n, i + per);
    for (; i + 8 <= end; i += 8) {
        float8 v = vload8(0, x + i);
        vstore8(v / (1.0f + exp(-v)), 0, y + i);
    }
    for (; i < end; i++) y[i] = x[i] / (1.0f + exp(-x[i]));
}

kernel void silu_backward(global float *dx, global const float *x, global const float *dy, int n, int per) {
    int i = get_global_id(0) * per;
    if (i >= n) return;
    int end = min(n, i + per);
    for (; i + 8 <= end; i += 8) {
        float8 v = vload8(0, x + i);
        float8 s = 1.0f / (1.0f + exp(-v));
        vstore8(vload8(0, dy + i) * (s * (1.0f + v * (1.0f - s))), 0, dx + i);
    }
    for (; i < end; i++) {
        float s = 1.0f / (1.0f + exp(-x[i]));
        dx[i] = dy[i] * (s * (1.0f + x[i] * (1.0f - s)));
    }
}
