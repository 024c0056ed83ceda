// Winograd F(2×2, 3×3) in one kernel, for CPUs: stride-1 3×3 convolutions padded by 1 that F(4×4,
// 3×3) leaves out (below 128 channels its separate transforms and 36 GEMMs, winograd.cl, cost as
// much as they save). Each 2×2 block of outputs is
//
//   Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A      d: the 4×4 input tile around it, g: a 3×3 filter
//
// with 16 products per input channel where the direct kernel needs 36: 4/9 of its multiply-adds.
//
//   winograd2_pad      the input padded by 1, each padded row split into its even columns and then
//                      its odd ones, so that the 4 columns of VW neighbouring tiles are 4 vector loads
//   winograd2_weights  U[ξ][ci][co] = (G g Gᵀ)[ξ] (rows of copad: the products of co ≥ Co are
//                      computed on whatever is there and not stored; flip as in winograd.cl)
//   winograd2_forward  per group of NB bands of VW tiles (a band: one tile row of one image, lanes
//                      along it): the bands' V[ξ][ci] = (Bᵀ d B)[ξ] into the work-item's scratch
//                      slice, then per block of COB output channels M[ξ][j] = Σ_ci U[ξ][ci][co]·V[ξ][ci]
//                      in registers for the NB bands, one ξ at a time, and y = (res) + (bias) + Aᵀ M A,
//                      rows interleaved back from the tiles' even and odd columns.
//
// Build constants: VW (prelude.cl), COB (output channels per accumulator block), NB (bands per
// accumulator block).

#ifndef COB
#define COB 8
#endif
#ifndef NB
#define NB 1
#endif

// One work-item per padded row of one plane: items = planes·hp. Padded row pr, column pc holds
// x[pr − 1][pc − 1] (zero outside); it is stored as stride_half even columns, then stride_half odd ones.
kernel void winograd2_pad(global float *xp, global const float *x, int h, int w, int hp, int stride_half, int items) {
    int r = get_global_id(0);
    if (r >= items) return;
    int plane = r / hp, pr = r % hp, iy = pr - 1;
    global float *even = xp + (long)r * 2 * stride_half, *odd = even + stride_half;
    global const float *in = x + ((long)plane * h + iy) * w;
    if (iy < 0 || iy >= h) {
        zero_span(even, 2 * stride_half);
        return;
    }
    // even[j] = in[2j − 1], odd[j] = in[2j]: the interior 8 at a time from one 16-float load
    // (its even and odd lanes), the edges one by one.
    int j = 1;
    for (; 2 * j + 14 < w; j += 8) {
        const float16 v = vload16(0, in + 2 * j - 1);
        vstore8(v.even, 0, even + j);
        vstore8(v.odd, 0, odd + j);
    }
    for (int e = 0; e < stride_half; e = e == 0 ? j : e + 1) {
        int ixe = 2 * e - 1, ixo = 2 * e;  // input columns of padded columns 2e and 2e + 1
        even[e] = ixe >= 0 && ixe < w ? in[ixe] : 0.0f;
        odd[e] = ixo < w ? in[ixo] : 0.0f;
    }
}

// One work-item per filter: item = co·Ci + ci. U = G g Gᵀ with G's rows (1 0 0), (½ ½ ½), (½ −½ ½),
// (0 0 1).
kernel void winograd2_weights(global float *u, global const float *w, int cin, int cout, int copad, int flip, int items) {
    int item = get_global_id(0);
    if (item >= items) return;
    int co = item / cin, ci = item % cin;
    global const float *src = flip ? w + ((long)ci * cout + co) * 9 : w + (long)item * 9;
    float g[9], t[4][3];
    for (int i = 0; i < 9; i++) g[i] = src[flip ? 8 - i : i];
    for (int c = 0; c < 3; c++) {  // G·g, column by column
        t[0][c] = g[c];
        t[1][c] = 0.5f * (g[c] + g[3 + c] + g[6 + c]);
        t[2][c] = 0.5f * (g[c] - g[3 + c] + g[6 + c]);
        t[3][c] = g[6 + c];
    }
    for (int i = 0; i < 4; i++) {  // (G·g)·Gᵀ
        float o[4] = {t[i][0], 0.5f * (t[i][0] + t[i][1] + t[i][2]), 0.5f * (t[i][0] - t[i][1] + t[i][2]), t[i][2]};
        for (int j = 0; j < 4; j++) u[((long)(i * 4 + j) * cin + ci) * copad + co] = o[j];
    }
}

// Bᵀ·(d0..d3): rows (1 0 −1 0), (0 1 1 0), (0 −1 1 0), (0 1 0 −1).
#define WINO2_BT(o, d) do { o[0] = d[0] - d[2]; o[1] = d[1] + d[2]; o[2] = d[2] - d[1]; o[3] = d[1] - d[3]; } while (0)

// Global (workers), work-group 1: work-item g takes groups g, g + workers, ... of NB bands each
// (the jobs = N·tilesY·xBlocks bands in order, xBlocks = ⌈tilesX / VW⌉; a last group short of
// bands repeats its last band and stores it once) and keeps the group's V in scratch[g][16·Ci·NB]
// vectors, the NB bands of one (ξ, ci) side by side: the products load NB vectors and COB
// broadcast weights for NB·COB multiply-adds.
// xp: planes of hp = 2·tilesY + 2 rows of 2·stride_half floats (stride_half ≥ xBlocks·VW + 1). u: [16][Ci][copad].
kernel void winograd2_forward(global float *y, global const float *xp, global const float *u, global floatv *scratch,
                              global const float *bias, int has_bias, int bias_stride, global const float *res, int has_res,
                              int cin, int cout, int copad, int h, int w, int hp, int stride_half, int tiles_y, int x_blocks,
                              int jobs, int workers) {
    const int g = get_global_id(0);
    global floatv *v = scratch + (long)g * 16 * cin * NB;
    const int groups = (jobs + NB - 1) / NB;
    for (int group = g; group < groups; group += workers) {
        int band_n[NB], band_ty[NB], band_tx0[NB];
        #pragma unroll
        for (int b = 0; b < NB; b++) {
            const int job = min(group * NB + b, jobs - 1);
            const int xb = job % x_blocks, rest = job / x_blocks;
            band_ty[b] = rest % tiles_y;
            band_n[b] = rest / tiles_y;
            band_tx0[b] = xb * VW;
        }
        for (int ci = 0; ci < cin; ci++) {
            #pragma unroll
            for (int b = 0; b < NB; b++) {
                global const float *rows = xp + (((long)band_n[b] * cin + ci) * hp + 2 * band_ty[b]) * 2 * stride_half + band_tx0[b];
                floatv t[4][4];
                #pragma unroll
                for (int i = 0; i < 4; i++) {
                    global const float *even = rows + (long)i * 2 * stride_half, *odd = even + stride_half;
                    floatv d[4] = {vloadv(0, even), vloadv(0, odd), vloadv(0, even + 1), vloadv(0, odd + 1)};
                    WINO2_BT(t[i], d);
                }
                #pragma unroll
                for (int j = 0; j < 4; j++) {
                    floatv col[4] = {t[0][j], t[1][j], t[2][j], t[3][j]}, o[4];
                    WINO2_BT(o, col);
                    #pragma unroll
                    for (int i = 0; i < 4; i++) v[((i * 4 + j) * cin + ci) * NB + b] = o[i];
                }
            }
        }
        for (int co0 = 0; co0 < cout; co0 += COB) {
            floatv m[16][NB][COB];
            #pragma unroll
            for (int xi = 0; xi < 16; xi++) {
                floatv acc[NB][COB];
                #pragma unroll
                for (int b = 0; b < NB; b++)
                    #pragma unroll
                    for (int j = 0; j < COB; j++) acc[b][j] = (floatv)(0.0f);
                global const floatv *vx = v + xi * cin * NB;
                global const float *ux = u + (long)xi * cin * copad + co0;
                for (int ci = 0; ci < cin; ci++, ux += copad, vx += NB) {
                    floatv vc[NB];
                    #pragma unroll
                    for (int b = 0; b < NB; b++) vc[b] = vx[b];
                    #pragma unroll
                    for (int j = 0; j < COB; j++) {
                        const floatv uj = (floatv)(ux[j]);
                        #pragma unroll
                        for (int b = 0; b < NB; b++) acc[b][j] = fma(vc[b], uj, acc[b][j]);
                    }
                }
                #pragma unroll
                for (int b = 0; b < NB; b++)
                    #pragma unroll
                    for (int j = 0; j < COB; j++) m[xi][b][j] = acc[b][j];
            }
            for (int b = 0; b < NB; b++) {
                if (b > 0 && group * NB + b >= jobs) break;  // the repeated last band
                const int n = band_n[b], oy = 2 * band_ty[b], ox = 2 * band_tx0[b], cols = min(2 * VW, w - ox);
                for (int j = 0; j < COB && co0 + j < cout; j++) {
                    const int co = co0 + j;
                    // Aᵀ M A with Aᵀ's rows (1 1 1 0), (0 1 −1 −1): along ξ's columns, then its rows.
                    floatv s[4][2];
                    #pragma unroll
                    for (int i = 0; i < 4; i++) {
                        s[i][0] = m[i * 4][b][j] + m[i * 4 + 1][b][j] + m[i * 4 + 2][b][j];
                        s[i][1] = m[i * 4 + 1][b][j] - m[i * 4 + 2][b][j] - m[i * 4 + 3][b][j];
                    }
                    const float bv = has_bias ? bias[n * bias_stride + co] : 0.0f;
                    #pragma unroll
                    for (int r = 0; r < 2; r++) {
                        if (oy + r >= h) break;
                        // even and odd output columns of the band's tiles, interleaved into 2·VW columns
                        const floatv e = (r == 0 ? s[0][0] + s[1][0] + s[2][0] : s[1][0] - s[2][0] - s[3][0]) + bv;
                        const floatv o = (r == 0 ? s[0][1] + s[1][1] + s[2][1] : s[1][1] - s[2][1] - s[3][1]) + bv;
                        float line[2 * VW];
                        #pragma unroll
                        for (int l = 0; l < VW; l++) { line[2 * l] = e[l]; line[2 * l + 1] = o[l]; }
                        const long at = (((long)n * cout + co) * h + oy + r) * w + ox;
                        #pragma unroll
                        for (int part = 0; part < 2; part++) {  // as conv3x3.cl stores a row
                            const floatv lanes = vloadv(part, line);
                            const int valid = cols - part * VW;
                            const long p = at + part * VW;
                            store_lanes(has_res ? load_lanes(res + p, valid) + lanes : lanes, y + p, valid);
                        }
                    }
                }
            }
        }
    }
}
