// Softmax over the last dimension (attention scores): one work-item per row, the row read in
// float8 pieces (any length: a scalar tail finishes it). A row of 256 floats stays in L1 between
// the passes, so the passes cost arithmetic, not memory traffic.

inline float max8(float8 v) {
    float4 m = fmax(v.lo, v.hi);
    float2 n = fmax(m.lo, m.hi);
    return fmax(n.x, n.y);
}

kernel void softmax_forward(global float *y, global const float *x, int rows, int length) {
    int r = get_global_id(0);
    if (r >= rows) return;
    global const float *in = x + (long)r * length;
    global float *out = y + (long)r * length;
    int body = length & ~7;
    float8 m8 = (float8)(-INFINITY);
    for (int i = 0; i < body; i += 8) m8 = fmax(m8, vload8(0, in + i));
    float maximum = max8(m8);
    for (int i = body; i < length; i++) maximum = fmax(maximum, in[i]);
    float8 s8 = (float8)(0.0f);
    for (int i = 0; i < body; i += 8) {
        float8 e = exp(vload8(0, in + i) - maximum);
        vstore8(e, 0, out + i);
        s8 += e;
    }
    float sum = sum8(s8);
    for (int i = body; i < length; i++) { float e = exp(in[i] - maximum); out[i] = e; sum += e; }
    float inverse = 1.0f / sum;
    for (int i = 0; i < body; i += 8) vstore8(vload8(0, out + i) * inverse, 0, out + i);
    for (int i = body; i < length; i++) out[i] *= inverse;
}

// dx = y · (dy − Σ dy·y)
kernel void softmax_backward(global float *dx, global const float *y, global const float *dy, int rows, int length) {
    int r = get_global_id(0);
    if (r >= rows) return;
    long base = (long)r * length;
    global const float *yr = y + base, *dyr = dy + base;
    global float *out = dx + base;
    int body = length & ~7;
    float8 d8 = (float8)(0.0f);
    for (int i = 0; i < body; i += 8) d8 = fma(vload8(0, dyr + i), vload8(0, yr + i), d8);
    float dot = sum8(d8);
    for (int i = body; i < length; i++) dot = fma(dyr[i], yr[i], dot);
    for (int i = 0; i < body; i += 8) vstore8(vload8(0, yr + i) * (vload8(0, dyr + i) - dot), 0, out + i);
    for (int i = body; i < length; i++) out[i] = yr[i] * (dyr[i] - dot);
}
