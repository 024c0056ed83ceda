// SiLU (x·sigmoid(x)) and its derivative; one work-item per element.

kernel void silu_forward(global float *y, global const float *x, int n) {
    int i = get_global_id(0);
    if (i < n) y[i] = x[i] / (1.0f + exp(-x[i]));
}

kernel void silu_backward(global float *dx, global const float *x, global const float *dy, int n) {
    int i = get_global_id(0);
    if (i >= n) return;
    float s = 1.0f / (1.0f + exp(-x[i]));
    dx[i] = dy[i] * (s * (1.0f + x[i] * (1.0f - s)));
}
