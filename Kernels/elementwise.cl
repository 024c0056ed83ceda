// Elementwise and layout ops. Each work-item handles a span of `per` consecutive output elements
// [g·per, min(n, (g+1)·per)): on CPUs a few thousand, moved in float8 pieces, with any plane/image
// index computed once per span and then advanced by counting (no division per element); on GPUs
// per = 1 (one element per work-item). Each matches the same-named case in CPUBackend.

#define SPAN(n, per)                      \
    int i = get_global_id(0) * (per);     \
    if (i >= (n)) return;                 \
    int end = min((n), i + (per));

// Σ x[j] for j < n
inline float sum_span(global const float *x, int n) {
    float8 a = (float8)(0.0f), b = (float8)(0.0f);
    int j = 0;
    for (; j + 16 <= n; j += 16) { a += vload8(0, x + j); b += vload8(1, x + j); }
    if (j + 8 <= n) { a += vload8(0, x + j); j += 8; }
    float sum = sum8(a + b);
    for (; j < n; j++) sum += x[j];
    return sum;
}

kernel void add(global float *out, global const float *a, global const float *b, int n, int per) {
    SPAN(n, per)
    for (; i + 8 <= end; i += 8) vstore8(vload8(0, a + i) + vload8(0, b + i), 0, out + i);
    for (; i < end; i++) out[i] = a[i] + b[i];
}

kernel void mul(global float *out, global const float *a, global const float *b, int n, int per) {
    SPAN(n, per)
    for (; i + 8 <= end; i += 8) vstore8(vload8(0, a + i) * vload8(0, b + i), 0, out + i);
    for (; i < end; i++) out[i] = a[i] * b[i];
}

kernel void scale(global float *out, global const float *x, float factor, int n, int per) {
    SPAN(n, per)
    for (; i + 8 <= end; i += 8) vstore8(factor * vload8(0, x + i), 0, out + i);
    for (; i < end; i++) out[i] = factor * x[i];
}

kernel void copy(global float *out, global const float *x, int n, int per) {
    SPAN(n, per)
    copy_span(out + i, x + i, end - i);
}

// out[n,c,p] = x[n,c,p] + v[n,c]   (plane = H·W)
kernel void add_channels(global float *out, global const float *x, global const float *v, int n, int plane, int per) {
    SPAN(n, per)
    int q = i / plane, pos = i - q * plane;
    while (i < end) {
        int run = min(plane - pos, end - i);
        float value = v[q];
        int j = i, stop = i + run;
        for (; j + 8 <= stop; j += 8) vstore8(vload8(0, x + j) + value, 0, out + j);
        for (; j < stop; j++) out[j] = x[j] + value;
        i = stop; pos = 0; q++;
    }
}

// off[n][c] = (b[c]) + (t[n][c]): a convolution's epilogue per image and channel; one per item.
kernel void conv_offsets(global float *off, global const float *b, int has_b, global const float *t, int has_t,
                         int channels, int items) {
    int q = get_global_id(0);
    if (q >= items) return;
    off[q] = (has_b ? b[q % channels] : 0.0f) + (has_t ? t[q] : 0.0f);
}

// out[n,c,p] = b[c]: the bias a convolution or linear layer then accumulates onto.
kernel void fill_channels(global float *out, global const float *b, int n, int plane, int channels, int per) {
    SPAN(n, per)
    int q = i / plane, pos = i - q * plane;
    int c = q % channels;
    while (i < end) {
        int run = min(plane - pos, end - i);
        fill_span(out + i, b[c], run);
        i += run; pos = 0;
        if (++c == channels) c = 0;
    }
}

// out[q] = Σ_p x[q, p] over each plane q (sum over H·W, keeping batch and channel); one plane per item.
kernel void sum_planes(global float *out, global const float *x, int planes, int plane) {
    int q = get_global_id(0);
    if (q >= planes) return;
    out[q] = sum_span(x + (long)q * plane, plane);
}

// out[c] = Σ_{n,p} x[n,c,p]; one channel per item.
kernel void sum_channels(global float *out, global const float *x, int batch, int channels, int plane) {
    int c = get_global_id(0);
    if (c >= channels) return;
    float sum = 0.0f;
    for (int n = 0; n < batch; n++) sum += sum_span(x + ((long)n * channels + c) * plane, plane);
    out[c] = sum;
}

// out[N, ca+cb, P] = concat(a[N,ca,P], b[N,cb,P]) along channels.
kernel void concat_channels(global float *out, global const float *a, global const float *b,
                            int ca, int cb, int plane, int n, int per) {
    SPAN(n, per)
    int sa = ca * plane, sb = cb * plane, total = sa + sb;
    int image = i / total, pos = i - image * total;
    while (i < end) {
        int run;
        if (pos < sa) {
            run = min(sa - pos, end - i);
            copy_span(out + i, a + (long)image * sa + pos, run);
        } else {
            run = min(total - pos, end - i);
            copy_span(out + i, b + (long)image * sb + (pos - sa), run);
        }
        i += run; pos += run;
        if (pos == total) { pos = 0; image++; }
    }
}

// out[N, count, P] = x[:, start..<start+count]
kernel void slice_channels(global float *out, global const float *x, int channels, int start, int count,
                           int plane, int n, int per) {
    SPAN(n, per)
    int size = count * plane;
    int image = i / size, pos = i - image * size;
    while (i < end) {
        int run = min(size - pos, end - i);
        copy_span(out + i, x + ((long)image * channels + start) * plane + pos, run);
        i += run; pos = 0; image++;
    }
}

// out[N, total, P] = dy in channels start..<start+count, zero elsewhere.
kernel void slice_channels_backward(global float *out, global const float *dy, int count, int start, int total,
                                    int plane, int n, int per) {
    SPAN(n, per)
    int size = total * plane, lo = start * plane, hi = (start + count) * plane;
    int image = i / size, pos = i - image * size;
    while (i < end) {
        int run;
        if (pos < lo) {
            run = min(lo - pos, end - i);
            fill_span(out + i, 0.0f, run);
        } else if (pos < hi) {
            run = min(hi - pos, end - i);
            copy_span(out + i, dy + (long)image * count * plane + (pos - lo), run);
        } else {
            run = min(size - pos, end - i);
            fill_span(out + i, 0.0f, run);
        }
        i += run; pos += run;
        if (pos == size) { pos = 0; image++; }
    }
}

// out[q, 2h, 2w] = x[q, h, w] (nearest). One work-item per `per` input rows (rows = N·C·h), each
// written to two output rows.
kernel void upsample_nearest2x(global float *out, global const float *x, int h, int w, int rows, int per) {
    int r = get_global_id(0) * per;
    if (r >= rows) return;
    int stop = min(rows, r + per);
    for (; r < stop; r++) {
        global const float *in = x + (long)r * w;
        global float *o = out + (long)r * 4 * w;   // output rows 2·r and 2·r+1 (row index q·2h + 2·iy)
        int j = 0;
        for (; j + 4 <= w; j += 4) {
            float4 v = vload4(0, in + j);
            float8 d = (float8)(v.s0, v.s0, v.s1, v.s1, v.s2, v.s2, v.s3, v.s3);
            vstore8(d, 0, o + 2 * j);
            vstore8(d, 0, o + 2 * w + 2 * j);
        }
        for (; j < w; j++) {
            float v = in[j];
            o[2 * j] = v; o[2 * j + 1] = v;
            o[2 * w + 2 * j] = v; o[2 * w + 2 * j + 1] = v;
        }
    }
}

// out[q, h, w] = sum of the 2×2 block of dy[q, 2h, 2w]. One work-item per `per` output rows (rows = N·C·h).
kernel void upsample_nearest2x_backward(global float *out, global const float *dy, int h, int w, int rows, int per) {
    int r = get_global_id(0) * per;
    if (r >= rows) return;
    int stop = min(rows, r + per);
    int w2 = 2 * w;
    for (; r < stop; r++) {
        global const float *top = dy + (long)r * 2 * w2, *bottom = top + w2;
        global float *o = out + (long)r * w;
        int j = 0;
        for (; j + 4 <= w; j += 4) {
            float8 t = vload8(0, top + 2 * j), b = vload8(0, bottom + 2 * j);
            vstore4((t.even + t.odd) + (b.even + b.odd), 0, o + j);
        }
        for (; j < w; j++) o[j] = (top[2 * j] + top[2 * j + 1]) + (bottom[2 * j] + bottom[2 * j + 1]);
    }
}
