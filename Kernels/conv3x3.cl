// Direct 3×3 stride-1 convolution with padding 1 on every side, for CPUs (PoCL): no im2col
// columns and no GEMM packing. The input gradient of such a convolution is the same convolution
// of dy with the weights transposed (ci ↔ co) and flipped (ky, kx → 2−ky, 2−kx), so one kernel
// serves the forward pass and the input gradient (Sources/DDPMOpenCL/OpenCLBackend+Conv3x3.swift).
//
//   conv3x3_pad_planes   xp[n][c][1 + iy][1 + ix] = x[n][c][iy][ix], zeros around (and in the slack
//                        rows and columns that let the main kernel load whole vectors)
//   conv3x3_pack_weights wp[cob][ci][ky][kx][j] = W[co = cob·COB + j][ci][ky][kx] (zero for co ≥ Co);
//                        flip = 1 packs the transposed, flipped weights of the input gradient instead
//   conv3x3_direct       y[n][co][oy][ox] = (res[n][co][oy][ox]) + (bias[n·bias_stride + co]) + Σ_{ci,ky,kx} wp · xp[n][ci][oy + ky][ox + kx]
//   conv3x3_grad_weight  dw = Σ over the batch and the pixels of dy · shifted x (at the end of this file,
//                        with conv3x3_channels_last)
//
// conv3x3_direct: a block of ROWS output rows × VW output columns × COB output channels lives in
// ROWS·COB vector accumulators. Per input channel and tap (ky, kx) it
// broadcasts COB weights and loads ROWS input vectors: ROWS·COB FMAs for ROWS + COB loads, which
// keeps the FMA units fed (4×4 on AVX-512: 16 FMAs per 8 loads). Rows past the image and lanes
// past its width are computed on the zero slack and not stored.
//
// Build constants: VW (8 or 16: floats per vector, floatv in prelude.cl), ROWS (1..8), COB (1..8), GCIB (input
// channels per work-item of the row weight gradient), GCOB (1..3: the weight
// gradient holds 9·GCOB·GCOV accumulators; the channels-last kernel fits 27 in AVX-512's 32 registers,
// 9 in AVX2's 16; the row kernel also keeps 2·GCOB dy rows and 3 x vectors, so 2 is its most on
// AVX-512 and 1 on AVX2), GCOV (1..3: output-channel vectors per work-item of the channels-last
// weight gradient).

#ifndef ROWS
#define ROWS 4
#endif
#ifndef COB
#define COB 4
#endif
#ifndef GCOB
#define GCOB 2
#endif
#ifndef GCOV
#define GCOV 1
#endif
#ifndef GCIB
#define GCIB 1
#endif

// One work-item per plane (n, c): items = N·C; Hp, Wp are the padded plane's sizes. A plane per
// work-item keeps PoCL's per-work-group cost small; interior rows move in float8 pieces.
kernel void conv3x3_pad_planes(global float *xp, global const float *x, int h, int w, int hp, int wp, int items) {
    int plane = get_global_id(0);
    if (plane >= items) return;
    global float *o = xp + (long)plane * hp * wp;
    global const float *in = x + (long)plane * h * w;
    for (int i = 0; i < wp; i++) o[i] = 0.0f;
    for (int py = h + 1; py < hp; py++)
        for (int i = 0; i < wp; i++) o[py * wp + i] = 0.0f;
    for (int iy = 0; iy < h; iy++) {
        global float *r = o + (iy + 1) * wp;
        global const float *src = in + iy * w;
        r[0] = 0.0f;
        int i = 0;
        for (; i + 8 <= w; i += 8) vstore8(vload8(0, src + i), 0, r + 1 + i);
        for (; i < w; i++) r[1 + i] = src[i];
        for (i = w + 1; i < wp; i++) r[i] = 0.0f;
    }
}

// One work-item per output-channel block: its Ci·9·COB packed floats, one input channel after
// another; items = coBlocks. Ci and Co are the convolution's (forward: W is [Co][Ci][3][3]); with flip
// the roles swap: the packed "input channels" are W's Co and the "output channels" W's Ci. Either way
// a block's COB source channels are contiguous runs (forward: COB rows of Ci·9 floats; flipped: per
// input channel, COB·9 floats), where a work-item per (block, input channel) paid PoCL's
// per-work-item cost for 36 floats.
kernel void conv3x3_pack_weights(global float *wp, global const float *wt, int cin, int cout, int flip, int items) {
    int cob = get_global_id(0);
    if (cob >= items) return;
    global float *o = wp + (long)cob * cin * 9 * COB;
    for (int ci = 0; ci < cin; ci++, o += 9 * COB) {
        #pragma unroll
        for (int j = 0; j < COB; j++) {
            const int co = cob * COB + j;
            // forward: W[co][ci][tap]; flipped: W[ci][co][8 − tap] with W as [cin][cout][3][3]
            global const float *src = flip ? wt + ((long)ci * cout + co) * 9 : wt + ((long)co * cin + ci) * 9;
            #pragma unroll
            for (int tap = 0; tap < 9; tap++) o[tap * COB + j] = co < cout ? src[flip ? 8 - tap : tap] : 0.0f;
        }
    }
}

// One block of ROWS output rows × VW columns × COB output channels of image n.
inline void conv3x3_block(global float *y, global const float *xp, global const float *wp, global const float *bias,
                          int has_bias, int bias_stride, global const float *res, int has_res,
                          int cin, int cout, int h, int w, int hp, int wpad, int n, int cob, int oy0, int ox0) {
    floatv acc[ROWS][COB];
    #pragma unroll
    for (int r = 0; r < ROWS; r++) {
        #pragma unroll
        for (int j = 0; j < COB; j++) acc[r][j] = (floatv)(0.0f);
    }
    const long plane = (long)hp * wpad;
    global const float *xb = xp + (long)n * cin * plane + (long)oy0 * wpad + ox0;
    global const float *wb = wp + (long)cob * cin * 9 * COB;
    for (int ci = 0; ci < cin; ci++, xb += plane, wb += 9 * COB) {
        #pragma unroll
        for (int ky = 0; ky < 3; ky++) {
            #pragma unroll
            for (int kx = 0; kx < 3; kx++) {
                floatv wv[COB];
                #pragma unroll
                for (int j = 0; j < COB; j++) wv[j] = (floatv)(wb[(ky * 3 + kx) * COB + j]);
                #pragma unroll
                for (int r = 0; r < ROWS; r++) {
                    const floatv xv = vloadv(0, xb + (r + ky) * wpad + kx);
                    #pragma unroll
                    for (int j = 0; j < COB; j++) acc[r][j] = fma(xv, wv[j], acc[r][j]);
                }
            }
        }
    }
    const int cols = min(VW, w - ox0);
    #pragma unroll
    for (int j = 0; j < COB; j++) {
        const int co = cob * COB + j;
        if (co >= cout) break;
        const float b = has_bias ? bias[n * bias_stride + co] : 0.0f;
        #pragma unroll
        for (int r = 0; r < ROWS; r++) {
            const int oy = oy0 + r;
            if (oy >= h) break;
            const long at = (((long)n * cout + co) * h + oy) * w + ox0;
            global float *o = y + at;
            const floatv v = acc[r][j] + b;
            store_lanes(has_res ? load_lanes(res + at, cols) + v : v, o, cols);
        }
    }
}

// Global (1, 1, N·coBlocks), work-group (1, 1, 1): one work-item computes a whole output plane of
// its COB channels, block after block (ROWS rows × VW columns each). PoCL pays a fixed cost per
// work-group: with one block per work-item (about 1 µs of FMAs) this kernel took 410 ms of a `small`
// batch-64 training step on a 2-core AVX-512 Xeon, with a plane per work-item 290 ms.
kernel void conv3x3_direct(global float *y, global const float *xp, global const float *wp, global const float *bias,
                           int has_bias, int bias_stride, global const float *res, int has_res,
                           int cin, int cout, int h, int w, int hp, int wpad, int co_blocks) {
    const int n = get_global_id(2) / co_blocks, cob = get_global_id(2) % co_blocks;
    for (int oy0 = 0; oy0 < h; oy0 += ROWS) {
        for (int ox0 = 0; ox0 < w; ox0 += VW) {
            conv3x3_block(y, xp, wp, bias, has_bias, bias_stride, res, has_res, cin, cout, h, w, hp, wpad, n, cob, oy0, ox0);
        }
    }
}

// Weight gradient: dw[co][ci][ky][kx] = Σ_{n,oy,ox} dy[n][co][oy][ox] · x[n][ci][oy + ky − 1][ox + kx − 1].
// Vectors run along output channels: conv3x3_channels_last writes dy as dyt[n][oy][ox][co] (co
// padded to a multiple of VW·GCOV with zeros), x is padded by conv3x3_pad_planes. One work-item
// (work-group size 1) owns GCOV·VW output channels × GCOB input channels and sums over a chunk of
// images in 9·GCOB·GCOV vector accumulators: per pixel GCOV dy vectors and 9·GCOB broadcast x
// values. Each x value is read once per GCOV·VW output channels, each dy value once per GCOB
// input channels.

// One work-item per (n, oy, ox): items = N·H·W; cpad = Co rounded up to a multiple of VW·GCOV.
kernel void conv3x3_channels_last(global float *dyt, global const float *dy, int channels, int cpad, int hw, int items) {
    int r = get_global_id(0);
    if (r >= items) return;
    int n = r / hw, pix = r % hw;
    global const float *in = dy + (long)n * channels * hw + pix;
    global float *o = dyt + (long)r * cpad;
    for (int c = 0; c < channels; c++) o[c] = in[(long)c * hw];
    for (int c = channels; c < cpad; c++) o[c] = 0.0f;
}

// Chunks of images write partial sums that conv3x3_sum_chunks adds in a fixed order (deterministic).
// The work-items of one chunk run next to each other (chunk is the slowest grid dimension), so that
// chunk of dy stays in each core's L2 while every input-channel block reads it: without chunks each
// work-item streamed the whole batch's dy from L3 or memory and the FMAs waited on it.
// Global (ceil(Ci/GCOB), cpad/VW, chunks), work-group (1, 1, 1); part[chunk][co][ci][9].
kernel void conv3x3_grad_weight(global float *part, global const float *dyt, global const float *xp,
                                int n_images, int chunk_images, int cin, int cout, int cpad, int h, int w, int hp, int wpad) {
    const int ci0 = get_global_id(0) * GCOB, co0 = get_global_id(1) * VW * GCOV, chunk = get_global_id(2);
    const long plane = (long)hp * wpad;
    floatv acc[GCOB][9][GCOV];
    #pragma unroll
    for (int j = 0; j < GCOB; j++) {
        #pragma unroll
        for (int t = 0; t < 9; t++) {
            #pragma unroll
            for (int v = 0; v < GCOV; v++) acc[j][t][v] = (floatv)(0.0f);
        }
    }
    const int n_end = min(n_images, (chunk + 1) * chunk_images);
    for (int n = chunk * chunk_images; n < n_end; n++) {
        global const float *xc[GCOB];
        #pragma unroll
        for (int j = 0; j < GCOB; j++) xc[j] = xp + ((long)n * cin + min(ci0 + j, cin - 1)) * plane;  // past cin: not stored
        global const float *d = dyt + (long)n * h * w * cpad + co0;
        for (int oy = 0; oy < h; oy++) {
            for (int ox = 0; ox < w; ox++, d += cpad) {
                floatv dv[GCOV];
                #pragma unroll
                for (int v = 0; v < GCOV; v++) dv[v] = vloadv(v, d);
                #pragma unroll
                for (int j = 0; j < GCOB; j++) {
                    global const float *xq = xc[j] + oy * wpad + ox;
                    #pragma unroll
                    for (int ky = 0; ky < 3; ky++) {
                        #pragma unroll
                        for (int kx = 0; kx < 3; kx++) {
                            const floatv xv = (floatv)(xq[ky * wpad + kx]);
                            #pragma unroll
                            for (int v = 0; v < GCOV; v++) acc[j][ky * 3 + kx][v] = fma(dv[v], xv, acc[j][ky * 3 + kx][v]);
                        }
                    }
                }
            }
        }
    }
    global float *dw = part + (long)chunk * cout * cin * 9;
    #pragma unroll
    for (int j = 0; j < GCOB; j++) {
        const int ci = ci0 + j;
        if (ci >= cin) break;
        #pragma unroll
        for (int t = 0; t < 9; t++) {
            #pragma unroll
            for (int v = 0; v < GCOV; v++) {
                float lanes[VW];
                vstorev(acc[j][t][v], 0, lanes);
                const int c0 = co0 + v * VW;
                for (int l = 0; l < VW && c0 + l < cout; l++) dw[((long)(c0 + l) * cin + ci) * 9 + t] = lanes[l];
            }
        }
    }
}


// Weight gradient, vectorised along image rows instead (gradRows): for widths that are a multiple
// of VW it needs no channels-last copy of dy. One work-item (work-group size 1) owns GCOB output
// channels × one input channel × 9 taps in 9·GCOB vector accumulators and sums over the images of
// one chunk, down column strips: per row vector, GCOB dy loads and 3 shifted x loads feed 9·GCOB
// FMAs (18 FMAs per 5 loads at GCOB = 2), where the channels-last kernel needs a broadcast load per
// FMA. (Measured on a 2-core AVX-512 EPYC, conv benchmark at batch 16: 128 channels at 32×32 375–390
// → 424–429 GFLOP/s, 256 at 16×16 335 → 441–449, against the row-by-row order that loaded 9 x
// vectors per dy row; GCOB = 3 spills there, 262–270.) It does so for
// GCIB input channels in turn, so that the chunk's GCOB rows of dy are read from L1 after the first. Lanes hold
// partial sums over columns, added up once at the end. Chunks of images write partial sums
// that conv3x3_sum_chunks adds in a fixed order (deterministic); work-items of one chunk run next
// to each other (chunk is the slowest grid dimension), so its dy and x stay in cache.
// Global (ceil(Co/GCOB), ceil(Ci/GCIB), chunks), work-group (1, 1, 1); part[chunk][co][ci][9].
kernel void conv3x3_grad_weight_rows(global float *part, global const float *dy, global const float *xp,
                                     int n_images, int chunk_images, int cin, int cout, int h, int w, int hp, int wpad) {
    const int co0 = get_global_id(0) * GCOB, chunk = get_global_id(2);
    const long plane = (long)hp * wpad;
    const int n_end = min(n_images, (chunk + 1) * chunk_images);
    const int ci_end = min(cin, (int)(get_global_id(1) + 1) * GCIB);
    for (int ci = get_global_id(1) * GCIB; ci < ci_end; ci++) {
        floatv acc[GCOB][9];
        #pragma unroll
        for (int j = 0; j < GCOB; j++) {
            #pragma unroll
            for (int t = 0; t < 9; t++) acc[j][t] = (floatv)(0.0f);
        }
        for (int n = chunk * chunk_images; n < n_end; n++) {
            global const float *x = xp + ((long)n * cin + ci) * plane;
            global const float *d[GCOB];
            #pragma unroll
            for (int j = 0; j < GCOB; j++) d[j] = dy + ((long)n * cout + min(co0 + j, cout - 1)) * h * w;  // past cout: not stored
            // Down each column strip, x row r serves dy rows r, r−1 and r−2 (taps ky = 0, 1, 2): its
            // three shifted vectors are loaded once for all of them, and the last two dy rows stay
            // in registers (9·GCOB FMAs per 3 x and GCOB dy loads, against 9 + GCOB loads row by row).
            for (int ox = 0; ox < w; ox += VW) {
                floatv d1[GCOB], d2[GCOB];   // dy rows r − 1 and r − 2
                #pragma unroll
                for (int j = 0; j < GCOB; j++) d1[j] = d2[j] = (floatv)(0.0f);
                for (int r = 0; r < h + 2; r++) {
                    global const float *xr = x + r * wpad + ox;
                    const floatv x0 = vloadv(0, xr), x1 = vloadv(0, xr + 1), x2 = vloadv(0, xr + 2);
                    floatv d0[GCOB];
                    #pragma unroll
                    for (int j = 0; j < GCOB; j++) d0[j] = r < h ? vloadv(0, d[j] + r * w + ox) : (floatv)(0.0f);
                    #pragma unroll
                    for (int j = 0; j < GCOB; j++) {
                        if (r < h) {
                            acc[j][0] = fma(d0[j], x0, acc[j][0]);
                            acc[j][1] = fma(d0[j], x1, acc[j][1]);
                            acc[j][2] = fma(d0[j], x2, acc[j][2]);
                        }
                        if (r >= 1 && r <= h) {
                            acc[j][3] = fma(d1[j], x0, acc[j][3]);
                            acc[j][4] = fma(d1[j], x1, acc[j][4]);
                            acc[j][5] = fma(d1[j], x2, acc[j][5]);
                        }
                        if (r >= 2) {
                            acc[j][6] = fma(d2[j], x0, acc[j][6]);
                            acc[j][7] = fma(d2[j], x1, acc[j][7]);
                            acc[j][8] = fma(d2[j], x2, acc[j][8]);
                        }
                        d2[j] = d1[j];
                        d1[j] = d0[j];
                    }
                }
            }
        }
        global float *o = part + (long)chunk * cout * cin * 9;
        #pragma unroll
        for (int j = 0; j < GCOB; j++) {
            const int co = co0 + j;
            if (co >= cout) continue;
            #pragma unroll
            for (int t = 0; t < 9; t++) {
#if VW == 16
                const float8 s = acc[j][t].lo + acc[j][t].hi;
#else
                const float8 s = acc[j][t];
#endif
                o[((long)co * cin + ci) * 9 + t] = sum8(s);
            }
        }
    }
}

// dw[i] = Σ_c part[c][i] over the chunks, in order. One work-item per element.
kernel void conv3x3_sum_chunks(global float *dw, global const float *part, int chunks, int items) {
    int i = get_global_id(0);
    if (i >= items) return;
    float s = part[i];
    for (int c = 1; c < chunks; c++) s += part[(long)c * items + i];
    dw[i] = s;
}
