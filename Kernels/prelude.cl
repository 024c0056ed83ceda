// Helpers shared by the kernel files: every file is built with this one in front of it
// (KernelSources.withPrelude).

// floatv: the vector of VW floats that register-blocked kernels compute in (a build constant: 8
// for AVX2, 16 for AVX-512), with its unaligned load and store.
#ifndef VW
#define VW 8
#endif
#if VW == 16
#define floatv float16
#define vloadv vload16
#define vstorev vstore16
#elif VW == 8
#define floatv float8
#define vloadv vload8
#define vstorev vstore8
#else
#error "VW must be 8 or 16"
#endif

// Partial vectors (the last columns of a row, the last tokens): lanes [0, valid) of p; the rest zero (all of them when valid ≤ 0).
inline floatv load_lanes(global const float *p, int valid) {
    if (valid >= VW) return vloadv(0, p);
    float tmp[VW];
    for (int l = 0; l < VW; l++) tmp[l] = l < valid ? p[l] : 0.0f;
    return vloadv(0, tmp);
}

// Stores lanes [0, valid) of v (none when valid ≤ 0).
inline void store_lanes(floatv v, global float *p, int valid) {
    if (valid >= VW) { vstorev(v, 0, p); return; }
    float tmp[VW];
    vstorev(v, 0, tmp);
    for (int l = 0; l < valid; l++) p[l] = tmp[l];
}

// Σ of the 8 lanes.
inline float sum8(float8 v) {
    float4 m = v.lo + v.hi;
    float2 n = m.lo + m.hi;
    return n.x + n.y;
}

// o[j] = v for j < n.
inline void fill_span(global float *o, float v, int n) {
    int j = 0;
    for (; j + 8 <= n; j += 8) vstore8((float8)(v), 0, o + j);
    for (; j < n; j++) o[j] = v;
}

// o[j] = 0 for j < n. From 8 on, the last piece overlaps the one before instead of a scalar tail.
inline void zero_span(global float *o, int n) {
    if (n < 8) { for (int i = 0; i < n; i++) o[i] = 0.0f; return; }
    for (int i = 0; i < n; i += 8) vstore8((float8)(0.0f), 0, o + min(i, n - 8));
}

// o[j] = in[j] for j < n, where o and in do not overlap (outputs never alias inputs), with the same
// overlapping last piece.
inline void copy_span(global float *o, global const float *in, int n) {
    if (n < 8) { for (int i = 0; i < n; i++) o[i] = in[i]; return; }
    for (int i = 0; i < n; i += 8) { int j = min(i, n - 8); vstore8(vload8(0, in + j), 0, o + j); }
}
