// Convolution as im2col + GEMM (Kernels/gemm.cl). im2col lays out, per image of a chunk,
// col[k = (ci·K + ky)·K + kx][p = oy·Wo + ox] = x[ci, oy·s + ky − pt, ox·s + kx − pl] (0 outside),
// the row order of the CPU reference's sum. col2im gathers the gradient back (no atomics).

// Images first_image, first_image+1, … of x fill the chunk (n = chunk images · rows · Ho·Wo).
kernel void im2col(global float *col, global const float *x, int first_image, int channels, int h, int w, int k,
                   int stride, int pad_top, int pad_left, int ho, int wo, int n) {
    int i = get_global_id(0);
    if (i >= n) return;
    int p = i % (ho * wo);
    int row = (i / (ho * wo)) % (channels * k * k);
    int image = i / (ho * wo * channels * k * k);
    int kx = row % k, ky = (row / k) % k, ci = row / (k * k);
    int iy = (p / wo) * stride + ky - pad_top;
    int ix = (p % wo) * stride + kx - pad_left;
    col[i] = (iy >= 0 && iy < h && ix >= 0 && ix < w) ? x[(((long)(first_image + image) * channels + ci) * h + iy) * w + ix] : 0.0f;
}

// dx[n, ci, iy, ix] = Σ_{ky,kx} dcol[n][(ci·K+ky)·K+kx][oy·Wo+ox] over the outputs that read (iy, ix).
kernel void col2im(global float *dx, global const float *dcol, int first_image, int channels, int h, int w, int k,
                   int stride, int pad_top, int pad_left, int ho, int wo, int n) {
    int i = get_global_id(0);
    if (i >= n) return;
    int ix = i % w, iy = (i / w) % h;
    int ci = (i / (w * h)) % channels, image = i / (w * h * channels);
    global const float *base = dcol + (long)image * channels * k * k * ho * wo;
    float sum = 0.0f;
    for (int ky = 0; ky < k; ky++) {
        int ty = iy + pad_top - ky;
        if (ty < 0 || ty % stride != 0 || ty / stride >= ho) continue;
        for (int kx = 0; kx < k; kx++) {
            int tx = ix + pad_left - kx;
            if (tx < 0 || tx % stride != 0 || tx / stride >= wo) continue;
            sum += base[(long)((ci * k + ky) * k + kx) * ho * wo + (ty / stride) * wo + tx / stride];
        }
    }
    dx[(long)first_image * channels * h * w + i] = sum;
}
