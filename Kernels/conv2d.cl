// Convolution as im2col + GEMM (Kernels/gemm.cl). im2col lays out, per image of a chunk,
// col[k = (ci·K + ky)·K + kx][p = oy·Wo + ox] = x[ci, oy·s + ky − pt, ox·s + kx − pl] (0 outside),
// the row order of the CPU reference's sum. col2im gathers the gradient back (no atomics).

// One work-item per (image of the chunk, row k, output row oy) writes the Wo columns of that row:
// the index arithmetic is done once per row, not per element (integer division is slow on CPUs).
// Images first_image, first_image+1, … of x fill the chunk; rows = chunk images · Ci·K·K · Ho.
kernel void im2col(global float *col, global const float *x, int first_image, int channels, int h, int w, int k,
                   int stride, int pad_top, int pad_left, int ho, int wo, int rows) {
    int r = get_global_id(0);
    if (r >= rows) return;
    int oy = r % ho;
    int row = (r / ho) % (channels * k * k);
    int image = r / (ho * channels * k * k);
    int kx = row % k, ky = (row / k) % k, ci = row / (k * k);
    int iy = oy * stride + ky - pad_top;
    global float *out = col + (long)r * wo;
    if (iy < 0 || iy >= h) {
        for (int ox = 0; ox < wo; ox++) out[ox] = 0.0f;
        return;
    }
    global const float *in = x + (((long)(first_image + image) * channels + ci) * h + iy) * w;
    for (int ox = 0; ox < wo; ox++) {
        int ix = ox * stride + kx - pad_left;
        out[ox] = (ix >= 0 && ix < w) ? in[ix] : 0.0f;
    }
}

// dx[n, ci, iy, ix] = Σ_{ky,kx} dcol[n][(ci·K+ky)·K+kx][oy·Wo+ox] over the outputs that read (iy, ix).
// One work-item per (image of the chunk, ci, iy) row; rows = chunk images · Ci · H.
kernel void col2im(global float *dx, global const float *dcol, int first_image, int channels, int h, int w, int k,
                   int stride, int pad_top, int pad_left, int ho, int wo, int rows) {
    int r = get_global_id(0);
    if (r >= rows) return;
    int iy = r % h, ci = (r / h) % channels, image = r / (h * channels);
    global const float *base = dcol + (long)image * channels * k * k * ho * wo;
    global float *out = dx + (((long)(first_image + image) * channels + ci) * h + iy) * w;
    for (int ix = 0; ix < w; ix++) out[ix] = 0.0f;
    for (int ky = 0; ky < k; ky++) {
        int ty = iy + pad_top - ky;
        if (ty < 0 || ty % stride != 0 || ty / stride >= ho) continue;
        for (int kx = 0; kx < k; kx++) {
            global const float *src = base + (long)((ci * k + ky) * k + kx) * ho * wo + (ty / stride) * wo;
            for (int ix = 0; ix < w; ix++) {
                int tx = ix + pad_left - kx;
                if (tx >= 0 && tx % stride == 0 && tx / stride < wo) out[ix] += src[tx / stride];
            }
        }
    }
}
