// Philox-4x32-10 and the exact-to-the-bit normal transform shared with Sources/DDPMCore/Philox.swift.
// Every operation below is a single correctly rounded IEEE op or an explicit fma(), in the same
// order as the Swift code, and contraction is off, so both produce identical bits.
#pragma OPENCL FP_CONTRACT OFF

uint4 philox4x32_10(uint4 c, uint2 k) {
    for (int round = 0; round < 10; round++) {
        if (round > 0) { k.x += 0x9E3779B9u; k.y += 0xBB67AE85u; }
        uint hi0 = mul_hi(0xD2511F53u, c.x), lo0 = 0xD2511F53u * c.x;
        uint hi1 = mul_hi(0xCD9E8D57u, c.z), lo1 = 0xCD9E8D57u * c.z;
        c = (uint4)(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    }
    return c;
}

float philox_uniform(uint x) { return ((float)(x >> 9) + 0.5f) * 0x1p-23f; }

float philox_log(float x) {  // x in (0, 1]
    uint bits = as_uint(x);
    float e = (float)((int)((bits >> 23) & 0xFFu) - 127);
    float m = as_float((bits & 0x007FFFFFu) | 0x3F800000u);
    if (m > 1.41421356f) { m = m * 0.5f; e = e + 1.0f; }
    float f = m - 1.0f;
    float z = f * f;
    float y = fma(7.0376836292e-2f, f, -1.1514610310e-1f);
    y = fma(y, f, 1.1676998740e-1f);
    y = fma(y, f, -1.2420140846e-1f);
    y = fma(y, f, 1.4249322787e-1f);
    y = fma(y, f, -1.6668057665e-1f);
    y = fma(y, f, 2.0000714765e-1f);
    y = fma(y, f, -2.4999993993e-1f);
    y = fma(y, f, 3.3333331174e-1f);
    y = (y * f) * z;
    y = fma(e, -2.12194440e-4f, y);
    y = fma(z, -0.5f, y);
    float r = f + y;
    return fma(e, 0.693359375f, r);
}

float philox_sqrt(float x) {
    if (x <= 0.0f) return 0.0f;
    float y = as_float(0x5F3759DFu - (as_uint(x) >> 1));
    float half_x = 0.5f * x;
    for (int i = 0; i < 3; i++) {
        float hyy = (half_x * y) * y;
        y = y * (1.5f - hyy);
    }
    return x * y;
}

float2 philox_sincos_2pi(float u) {  // (sin 2πu, cos 2πu)
    float q = (float)((int)(u * 4.0f + 0.5f));
    float r = u - q * 0.25f;
    float x = r * 6.28318530717958647692f;
    float z = x * x;
    float s = fma(-1.9515295891e-4f, z, 8.3321608736e-3f);
    s = fma(s, z, -1.6666654611e-1f);
    s = fma(s * z, x, x);
    float c = fma(2.443315711809948e-5f, z, -1.388731625493765e-3f);
    c = fma(c, z, 4.166664568298827e-2f);
    c = (c * z) * z;
    c = fma(z, -0.5f, c);
    c = c + 1.0f;
    switch (((int)q) & 3) {
    case 0: return (float2)(s, c);
    case 1: return (float2)(c, -s);
    case 2: return (float2)(-s, -c);
    default: return (float2)(-c, s);
    }
}

float2 philox_box_muller(float u1, float u2) {
    float radius = philox_sqrt(-2.0f * philox_log(u1));
    float2 sc = philox_sincos_2pi(u2);
    return (float2)(radius * sc.y, radius * sc.x);
}

// Normal number `index` of the stream (image, step, stream).
// The 64-bit seed is passed as key = (low word, high word).
float philox_normal(uint2 key, uint index, uint image, uint step, uint stream) {
    uint4 r = philox4x32_10((uint4)(index / 4, image, step, stream), key);
    uint lane = index % 4;
    float2 n = lane < 2 ? philox_box_muller(philox_uniform(r.x), philox_uniform(r.y))
                        : philox_box_muller(philox_uniform(r.z), philox_uniform(r.w));
    return (lane & 1) ? n.y : n.x;
}

// The parity suite draws raw normals through this kernel.
kernel void philox_normals(global float *out, uint count, uint seed_lo, uint seed_hi, uint image, uint step, uint stream) {
    uint i = get_global_id(0);
    if (i < count) out[i] = philox_normal((uint2)(seed_lo, seed_hi), i, image, step, stream);
}

#pragma OPENCL FP_CONTRACT ON
