// Convolution as im2col + GEMM (Kernels/gemm.cl). im2col lays out a chunk of images as one matrix,
// col[k = (ci·KH + ky)·KW + kx][image·P + p] with p = oy·Wo + ox, = x[ci, oy·s + ky − pt, ox·s + kx − pl]
// (0 outside): the row order of the CPU reference's sum, and the images of a chunk side by side so
// that one GEMM covers them all, however small the planes. col2im gathers the gradient back (no
// atomics); images_to_rows and rows_to_images move a chunk of activations between image order and
// that column order. (zero_span and copy_span: prelude.cl.) All are pure data movement: a work-item
// owns a plane-sized piece so that index arithmetic (integer division is slow on CPUs) happens once
// per piece, and rows move in float8 pieces.

// Columns ox in [lo, hi) of an output row read inside the input row (ix = ox·s + shift ∈ [0, w)).
// (Also used for rows: oy in [lo, hi) reads iy = oy·s + shift ∈ [0, h).)
inline int2 valid_columns(int shift, int stride, int w, int wo) {
    int lo, hi;
    if (stride == 1) {
        lo = max(-shift, 0);
        hi = w - shift;
    } else {
        lo = shift >= 0 ? 0 : (-shift + stride - 1) / stride;
        hi = w - 1 - shift < 0 ? 0 : (w - 1 - shift) / stride + 1;
    }
    lo = min(lo, wo);
    return (int2)(lo, clamp(hi, lo, wo));
}

// One work-item per (image of the chunk, ci, ky) writes its image's Ho·Wo columns of the KW rows
// (ci, ky, 0…KW−1) of col. Images first_image, first_image+1, … of x fill the chunk; items = chunk
// images · Ci · KH; a row of col is `row` floats: the chunk's images·Ho·Wo columns, then zeros (the
// padding that lets the GEMM read whole panels in place), written by the chunk's last image.
kernel void im2col(global float *col, global const float *x, int first_image, int channels, int h, int w, int kh, int kw,
                   int stride, int pad_top, int pad_left, int ho, int wo, int row, int items) {
    int images = items / (channels * kh);
    int r = get_global_id(0);
    if (r >= items) return;
    int ky = r % kh, rest = r / kh;
    int ci = rest % channels, image = rest / channels;
    global const float *plane = x + ((long)(first_image + image) * channels + ci) * h * w;
    int p = ho * wo;
    global float *out = col + (long)image * p + (long)(ci * kh + ky) * kw * row;
    // Output rows oy in [oy0, oy1) read inside the plane (iy = oy·s + ky − pt ∈ [0, h)).
    int dy = ky - pad_top;
    int2 rows = valid_columns(dy, stride, h, ho);
    int oy0 = rows.x, oy1 = rows.y;
    for (int kx = 0; kx < kw; kx++, out += row) {
        if (image == images - 1) zero_span(out + p, row - images * p);
        int shift = kx - pad_left;   // ix = ox·s + shift
        int2 cols = valid_columns(shift, stride, w, wo);
        zero_span(out, oy0 * wo);
        zero_span(out + oy1 * wo, (ho - oy1) * wo);
        if (stride == 1 && wo == w) {
            // Rows oy0…oy1−1 are one shifted contiguous copy of the plane (clipped to the plane); then
            // the columns outside [lo, hi), which wrapped into a neighbouring row, are zeroed.
            long src0 = (long)(oy0 + dy) * w + shift;
            int len = (oy1 - oy0) * wo;
            int j0 = src0 < 0 ? (int)-src0 : 0;
            int j1 = (int)min((long)len, (long)h * w - src0);
            if (j1 > j0) copy_span(out + oy0 * wo + j0, plane + src0 + j0, j1 - j0);
            global float *first = out + oy0 * wo, *last = out + oy1 * wo;
            if (cols.x == 1 && cols.y == wo) {
                for (global float *o = first; o < last; o += wo) o[0] = 0.0f;
            } else if (cols.x == 0 && cols.y == wo - 1) {
                for (global float *o = first + wo - 1; o < last; o += wo) o[0] = 0.0f;
            } else if (cols.x > 0 || cols.y < wo) {
                for (global float *o = first; o < last; o += wo) {
                    for (int ox = 0; ox < cols.x; ox++) o[ox] = 0.0f;
                    for (int ox = cols.y; ox < wo; ox++) o[ox] = 0.0f;
                }
            }
        } else {
            for (int oy = oy0; oy < oy1; oy++) {
                global float *o = out + oy * wo;
                global const float *in = plane + (oy * stride + dy) * w;
                for (int ox = 0; ox < cols.x; ox++) o[ox] = 0.0f;
                if (stride == 1) copy_span(o + cols.x, in + cols.x + shift, cols.y - cols.x);
                else for (int ox = cols.x; ox < cols.y; ox++) o[ox] = in[ox * stride + shift];
                for (int ox = cols.y; ox < wo; ox++) o[ox] = 0.0f;
            }
        }
    }
}

// dx[n, ci, iy, ix] = Σ_{ky,kx} dcol[(ci·KH+ky)·KW+kx][n·Ho·Wo + oy·Wo+ox] over the outputs that read
// (iy, ix), n counted within the chunk; a row of dcol is `row` floats (the chunk's columns, then
// padding). One work-item per (image of the chunk, ci) plane; items = chunk images · Ci.
// Stride 1: each output row is gathered in float8 pieces over the columns that every kx reaches
// (the last piece overlaps the one before instead of leaving a scalar tail); the few edge columns
// and other strides go element by element.
kernel void col2im(global float *dx, global const float *dcol, int first_image, int channels, int h, int w, int kh, int kw,
                   int stride, int pad_top, int pad_left, int ho, int wo, int row_floats, int items) {
    int r = get_global_id(0);
    if (r >= items) return;
    int ci = r % channels, image = r / channels;
    int p = ho * wo;
    long row = row_floats;   // offsets below are long
    global const float *rows = dcol + (long)image * p + ci * kh * kw * row;
    global float *plane = dx + ((long)(first_image + image) * channels + ci) * h * w;
    // Columns every kx reaches with stride 1: ox = ix + pl − kx ∈ [0, wo) for all kx.
    int a = max(kw - 1 - pad_left, 0), b = min(wo - pad_left, w);
    bool pieces = stride == 1 && b - a >= 8;
    for (int iy = 0; iy < h; iy++) {
        global float *o = plane + iy * w;
        int ky0 = kh, ky1 = 0;   // ky with a valid oy: oy = (iy + pt − ky)/s
        for (int ky = 0; ky < kh; ky++) {
            int ty = iy + pad_top - ky;
            if (ty >= 0 && ty % stride == 0 && ty / stride < ho) { ky0 = min(ky0, ky); ky1 = ky + 1; }
        }
        if (pieces) {
            for (int ix0 = a; ix0 < b; ix0 += 8) {
                int ix = min(ix0, b - 8);
                float8 acc = (float8)(0.0f);
                for (int ky = ky0; ky < ky1; ky++) {
                    global const float *src = rows + ky * kw * row + (iy + pad_top - ky) * wo + ix + pad_left;
                    for (int kx = 0; kx < kw; kx++) acc += vload8(0, src + kx * (row - 1));
                }
                vstore8(acc, 0, o + ix);
            }
        }
        if (stride == 1) {
            // Columns outside [a, b) (all of them without the vector pieces): only some kx reach them.
            int e0 = pieces ? a : w, e1 = pieces ? b : w;
            for (int ix = 0; ix < w; ix = ix + 1 == e0 ? e1 : ix + 1) {
                int kx0 = max(0, ix + pad_left - wo + 1), kx1 = min(kw - 1, ix + pad_left);
                float acc = 0.0f;
                for (int ky = ky0; ky < ky1; ky++) {
                    global const float *src = rows + ky * kw * row + (iy + pad_top - ky) * wo + ix + pad_left;
                    for (int kx = kx0; kx <= kx1; kx++) acc += src[kx * (row - 1)];
                }
                o[ix] = acc;
            }
        } else {
            // Other strides: zero the row, then scatter-add each (ky, kx) row of dcol into it.
            for (int ix = 0; ix < w; ix++) o[ix] = 0.0f;
            for (int ky = ky0; ky < ky1; ky++) {
                int ty = iy + pad_top - ky;
                if (ty % stride != 0) continue;
                global const float *src = rows + ky * kw * row + (ty / stride) * wo;
                for (int kx = 0; kx < kw; kx++, src += row) {
                    int shift = kx - pad_left;
                    int2 cols = valid_columns(shift, stride, w, wo);
                    for (int ox = cols.x; ox < cols.y; ox++) o[ox * stride + shift] += src[ox];
                }
            }
        }
    }
}

// rows[c][n·P + p] = x[first_image + n][c][p] for the n images of a chunk (items = n · channels, one
// work-item per plane): the layout of a GEMM operand whose columns are the chunk's pixels.
kernel void images_to_rows(global float *rows, global const float *x, int first_image, int channels, int p, int row, int items) {
    int r = get_global_id(0);
    if (r >= items) return;
    int c = r % channels, image = r / channels, images = items / channels;
    global float *o = rows + (long)c * row + (long)image * p;
    copy_span(o, x + ((long)(first_image + image) * channels + c) * p, p);
    if (image == images - 1) zero_span(o + p, row - images * p);
}

// y[first_image + n][c][p] = (res[…][c][p]) + rows[c][n·P + p] (+ bias[(first_image + n)·bias_stride + c]
// where has_bias): a GEMM's output over a chunk's pixels back in image order, with the
// convolution's epilogue.
kernel void rows_to_images(global float *y, global const float *rows, global const float *bias, int has_bias, int bias_stride,
                           global const float *res, int has_res, int first_image, int channels, int p, int row, int items) {
    int r = get_global_id(0);
    if (r >= items) return;
    int c = r % channels, image = r / channels;
    const long at = ((long)(first_image + image) * channels + c) * p;
    global float *o = y + at;
    global const float *in = rows + (long)c * row + (long)image * p;
    if (!has_bias && !has_res) { copy_span(o, in, p); return; }
    float b = has_bias ? bias[(first_image + image) * bias_stride + c] : 0.0f;
    if (has_res) { for (int j = 0; j < p; j++) o[j] = res[at + j] + (in[j] + b); }
    else { for (int j = 0; j < p; j++) o[j] = in[j] + b; }
}
