// Softmax over the last dimension (attention scores): one work-item per row.

kernel void softmax_forward(global float *y, global const float *x, int rows, int length) {
    int r = get_global_id(0);
    if (r >= rows) return;
    global const float *in = x + (long)r * length;
    global float *out = y + (long)r * length;
    float maximum = -INFINITY;
    for (int i = 0; i < length; i++) maximum = fmax(maximum, in[i]);
    float sum = 0.0f;
    for (int i = 0; i < length; i++) { float e = exp(in[i] - maximum); out[i] = e; sum += e; }
    float inverse = 1.0f / sum;
    for (int i = 0; i < length; i++) out[i] *= inverse;
}

// dx = y · (dy − Σ dy·y)
kernel void softmax_backward(global float *dx, global const float *y, global const float *dy, int rows, int length) {
    int r = get_global_id(0);
    if (r >= rows) return;
    long base = (long)r * length;
    float dot = 0.0f;
    for (int i = 0; i < length; i++) dot += dy[base + i] * y[base + i];
    for (int i = 0; i < length; i++) dx[base + i] = y[base + i] * (dy[base + i] - dot);
}
