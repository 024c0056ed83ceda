// Winograd F(4×4, 3×3) (Lavin & Gray 2016, "Fast Algorithms for Convolutional Neural Networks") for
// stride-1 3×3 convolutions padded by 1: each 4×4 block of outputs is
//
//   Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A      d: the 6×6 input tile around it, g: a 3×3 filter
//
// so the 36 element-wise products summed over input channels are 36 GEMMs with a quarter of the
// direct convolution's multiply-adds (Sources/DDPMOpenCL/OpenCLBackend+Winograd.swift):
//
//   winograd_weights  U[ξ][co][ci] = (G g Gᵀ)[ξ], g = W[co][ci] (flip: W[ci][co] turned by 180°,
//                     for the input gradient, as in conv3x3.cl)
//   winograd_input    V[ξ][ci][t]  = (Bᵀ d B)[ξ] for tile t of the chunk's images
//   (GEMM)            M[ξ][co][t]  = Σ_ci U[ξ][co][ci] · V[ξ][ci][t]
//   winograd_output   y[n][co][4·ty + i][4·tx + j] = (bias[co]) + (Aᵀ M A)[i][j]
//
// and for the weight gradient (further down) winograd_gradient_output and winograd_gradient_weights.
//
// Tile t = (n·tilesY + ty)·tilesX + tx counts from the chunk's first image. The transforms of the
// input and the output work on a band of tiles (one tile row of one plane) in vectors along it.

// Bᵀ·(d0..d5) in type T (float or floatv): the rows of Bᵀ are (4 0 −5 0 1 0), (0 −4 −4 1 1 0),
// (0 4 −4 −1 1 0), (0 −2 −1 2 1 0), (0 2 −1 −2 1 0), (0 4 0 −5 0 1).
#define WINOGRAD_BT(T, o, d) do { \
    o[0] = fma((T)(4.0f), d[0], fma((T)(-5.0f), d[2], d[4])); \
    o[1] = fma((T)(-4.0f), d[1] + d[2], d[3] + d[4]); \
    o[2] = fma((T)(4.0f), d[1] - d[2], d[4] - d[3]); \
    o[3] = fma((T)(2.0f), d[3] - d[1], d[4] - d[2]); \
    o[4] = fma((T)(2.0f), d[1] - d[3], d[4] - d[2]); \
    o[5] = fma((T)(4.0f), d[1], fma((T)(-5.0f), d[3], d[5])); \
} while (0)

// Aᵀ·(m0..m5) in type T: the rows of Aᵀ are (1 1 1 1 1 0), (0 1 −1 2 −2 0), (0 1 1 4 4 0),
// (0 1 −1 8 −8 1).
#define WINOGRAD_AT(T, o, m) do { \
    T s12 = m[1] + m[2], d12 = m[1] - m[2], s34 = m[3] + m[4], d34 = m[3] - m[4]; \
    o[0] = m[0] + s12 + s34; \
    o[1] = fma((T)(2.0f), d34, d12); \
    o[2] = fma((T)(4.0f), s34, s12); \
    o[3] = fma((T)(8.0f), d34, d12) + m[5]; \
} while (0)

// G·(g0, g1, g2): the rows of G are (1/4 0 0), (−1/6 −1/6 −1/6), (−1/6 1/6 −1/6), (1/24 1/12 1/6),
// (1/24 −1/12 1/6), (0 0 1).
#define WINOGRAD_G(o, g) do { \
    o[0] = 0.25f * g[0]; \
    o[1] = (g[0] + g[1] + g[2]) * (-1.0f / 6.0f); \
    o[2] = (g[0] - g[1] + g[2]) * (-1.0f / 6.0f); \
    o[3] = fma(1.0f / 24.0f, g[0], fma(1.0f / 12.0f, g[1], (1.0f / 6.0f) * g[2])); \
    o[4] = fma(1.0f / 24.0f, g[0], fma(-1.0f / 12.0f, g[1], (1.0f / 6.0f) * g[2])); \
    o[5] = g[2]; \
} while (0)

// One work-item per filter: item = co·Ci + ci, items = Co·Ci. Ci and Co are the convolution's; with
// flip, W is [Co'][Ci'] = [ci][co] of the forward layer and is used turned by 180°.
kernel void winograd_weights(global float *u, global const float *w, int cin, int cout, int flip, int items) {
    int item = get_global_id(0);
    if (item >= items) return;
    int co = item / cin, ci = item % cin;
    global const float *src = flip ? w + ((long)ci * cout + co) * 9 : w + (long)item * 9;
    float g[3][3], gt[6][3], col[3], out[6];
    #pragma unroll
    for (int tap = 0; tap < 9; tap++) g[tap / 3][tap % 3] = src[flip ? 8 - tap : tap];
    #pragma unroll
    for (int j = 0; j < 3; j++) {  // G·g, one column at a time
        col[0] = g[0][j]; col[1] = g[1][j]; col[2] = g[2][j];
        WINOGRAD_G(out, col);
        #pragma unroll
        for (int i = 0; i < 6; i++) gt[i][j] = out[i];
    }
    #pragma unroll
    for (int i = 0; i < 6; i++) {  // (G·g)·Gᵀ, one row at a time
        WINOGRAD_G(out, gt[i]);
        #pragma unroll
        for (int j = 0; j < 6; j++) u[((long)(i * 6 + j) * cout + co) * cin + ci] = out[j];
    }
}

// Tiles per vector: a vector of VW floats along a padded row holds the windows of VW/4 tiles
// (lanes 0, 4, 8, 12), TILE_LANES picks them out.
#define TPV (VW / 4)
#if VW == 16
#define TILE_LANES(v) ((v).s048c)
#define vstore_tiles vstore4
#define floatt float4
#define vload_tiles vload4
#else
#define TILE_LANES(v) ((v).s04)
#define vstore_tiles vstore2
#define floatt float2
#define vload_tiles vload2
#endif

// One work-item per (band of tiles, input channel): global [chunk images·tilesY, Ci]. xp + xp_offset
// holds the chunk's planes padded (conv3x3_pad_planes) to hp = 4·tilesY + 2 rows and wp ≥ 4·tilesX + 2
// columns, with at least VW floats of slack after the last plane. Per group of TPV tiles, each of
// the 6 shifts k loads the band's 6 rows at column 4·tx + k as vectors (lane l: the window starting
// l columns later), so both passes of Bᵀ d B are vector arithmetic; every fourth lane is a tile.
kernel void winograd_input(global float *v, global const float *xp, int xp_offset, int cin, int hp, int wp,
                           int tiles_y, int tiles_x, int tiles) {
    int band = get_global_id(0), ci = get_global_id(1);
    int n = band / tiles_y, ty = band % tiles_y;
    global const float *p = xp + xp_offset + ((long)n * cin + ci) * hp * wp + ty * 4 * wp;
    global float *o = v + (long)ci * tiles + band * tiles_x;
    const long plane = (long)cin * tiles;  // floats from one ξ to the next
    for (int tx = 0; tx < tiles_x; tx += TPV) {
        floatv bd[6][6], rows[6], out[6];
        #pragma unroll
        for (int k = 0; k < 6; k++) {  // Bᵀ·d at shift k: bd[i][k]
            #pragma unroll
            for (int r = 0; r < 6; r++) rows[r] = vloadv(0, p + r * wp + 4 * tx + k);
            WINOGRAD_BT(floatv, out, rows);
            #pragma unroll
            for (int i = 0; i < 6; i++) bd[i][k] = out[i];
        }
        int valid = min(TPV, tiles_x - tx);
        #pragma unroll
        for (int i = 0; i < 6; i++) {  // (Bᵀ·d)·B along the shifts
            WINOGRAD_BT(floatv, out, bd[i]);
            #pragma unroll
            for (int j = 0; j < 6; j++) {
                global float *dst = o + (i * 6 + j) * plane + tx;
                floatt lanes = TILE_LANES(out[j]);
                if (valid == TPV) vstore_tiles(lanes, 0, dst);
                else { float part[TPV]; vstore_tiles(lanes, 0, part); for (int l = 0; l < valid; l++) dst[l] = part[l]; }
            }
        }
    }
}

// One work-item per (band of tiles, output channel): global [chunk images·tilesY, Co]. Per group
// of TPV tiles along the band, Aᵀ M A runs in vectors of TPV lanes (one tile each); the 4×4 outputs
// of the group's tiles are interleaved into rows of 4·TPV pixels. Outputs past the image (planes
// whose size is not a multiple of 4) are not stored.
kernel void winograd_output(global float *y, global const float *m, global const float *bias, int has_bias, int bias_stride,
                            global const float *res, int has_res, int first,
                            int cout, int h, int w, int tiles_y, int tiles_x, int tiles) {
    int band = get_global_id(0), co = get_global_id(1);
    int n = band / tiles_y, ty = band % tiles_y;
    global const float *src = m + (long)co * tiles + band * tiles_x;
    const long plane = (long)cout * tiles;
    float b = has_bias ? bias[(first + n) * bias_stride + co] : 0.0f;
    const long at = ((long)(first + n) * cout + co) * h * w + ty * 4 * w;
    global float *o = y + at;
    int rowsIn = min(4, h - ty * 4);
    for (int tx = 0; tx < tiles_x; tx += TPV) {
        floatt mt[6][6], am[4][6], col[6], out[4];
        int valid = min(TPV, tiles_x - tx);
        #pragma unroll
        for (int xi = 0; xi < 36; xi++) {
            global const float *s = src + xi * plane + tx;
            if (valid == TPV) mt[xi / 6][xi % 6] = vload_tiles(0, s);
            else { float part[TPV] = {0}; for (int l = 0; l < valid; l++) part[l] = s[l]; mt[xi / 6][xi % 6] = vload_tiles(0, part); }
        }
        #pragma unroll
        for (int j = 0; j < 6; j++) {  // Aᵀ·M, one column at a time
            #pragma unroll
            for (int i = 0; i < 6; i++) col[i] = mt[i][j];
            WINOGRAD_AT(floatt, out, col);
            #pragma unroll
            for (int i = 0; i < 4; i++) am[i][j] = out[i];
        }
        int x0 = tx * 4, colsIn = min(4 * TPV, w - x0);
        #pragma unroll
        for (int i = 0; i < 4; i++) {  // (Aᵀ·M)·A, one row at a time: pixel 4·l + j of the row is out[j] of lane l
            WINOGRAD_AT(floatt, out, am[i]);
#if VW == 16
            floatv row = (floatv)(out[0].s0, out[1].s0, out[2].s0, out[3].s0, out[0].s1, out[1].s1, out[2].s1, out[3].s1,
                                  out[0].s2, out[1].s2, out[2].s2, out[3].s2, out[0].s3, out[1].s3, out[2].s3, out[3].s3) + b;
#else
            floatv row = (floatv)(out[0].s0, out[1].s0, out[2].s0, out[3].s0, out[0].s1, out[1].s1, out[2].s1, out[3].s1) + b;
#endif
            if (i < rowsIn) {
                global float *dst = o + i * w + x0;
                store_lanes(has_res ? load_lanes(res + at + i * w + x0, colsIn) + row : row, dst, colsIn);
            }
        }
    }
}

// The weight gradient of the same convolutions (Lavin & Gray's transposed algorithm): per tile,
// the output transform turned around takes dy's 4×4 block to dM = A·dY·Aᵀ, so that
//
//   dU[ξ][ci][co] = Σ_t V[ξ][ci][t] · dM[ξ][co][t]    (36 GEMMs summed over the tiles)
//   dW[co][ci]    = Gᵀ · dU[·][ci][co] · G
//
// A·(y0..y3), the columns of Aᵀ: (1 0 0 0), (1 1 1 1), (1 −1 1 −1), (1 2 4 8), (1 −2 4 −8), (0 0 0 1).
#define WINOGRAD_A(T, o, y) do { \
    T s02 = y[0] + y[2], s13 = y[1] + y[3]; \
    T q02 = fma((T)(4.0f), y[2], y[0]), q13 = fma((T)(4.0f), y[3], y[1]); \
    o[0] = y[0]; \
    o[1] = s02 + s13; \
    o[2] = s02 - s13; \
    o[3] = fma((T)(2.0f), q13, q02); \
    o[4] = fma((T)(-2.0f), q13, q02); \
    o[5] = y[3]; \
} while (0)

// Gᵀ·(u0..u5), the columns of G: (1/4 −1/6 −1/6 1/24 1/24 0), (0 −1/6 1/6 1/12 −1/12 0),
// (0 −1/6 −1/6 1/6 1/6 1).
#define WINOGRAD_GT(o, u) do { \
    float s12 = u[1] + u[2], d21 = u[2] - u[1], s34 = u[3] + u[4], d34 = u[3] - u[4]; \
    o[0] = fma(0.25f, u[0], fma(-1.0f / 6.0f, s12, (1.0f / 24.0f) * s34)); \
    o[1] = fma(1.0f / 6.0f, d21, (1.0f / 12.0f) * d34); \
    o[2] = fma(1.0f / 6.0f, s34 - s12, u[5]); \
} while (0)

// One work-item per (band of tiles, output channel): global [chunk images·tilesY, Co]; dyp + offset
// holds the chunk's planes of dy padded as winograd_input's (a border of 1, so the tile row ty
// starts at padded row 4·ty + 1 and column 1). Per group of TPV tiles, each of the 4 shifts s loads
// the band's 4 rows at column 4·tx + s, so lane 4·l holds column s of tile tx + l.
kernel void winograd_gradient_output(global float *dm, global const float *dyp, int dyp_offset, int cout, int hp, int wp,
                                     int tiles_y, int tiles_x, int tiles) {
    int band = get_global_id(0), co = get_global_id(1);
    int n = band / tiles_y, ty = band % tiles_y;
    global const float *p = dyp + dyp_offset + ((long)n * cout + co) * hp * wp + (ty * 4 + 1) * wp + 1;
    global float *o = dm + (long)co * tiles + band * tiles_x;
    const long plane = (long)cout * tiles;
    for (int tx = 0; tx < tiles_x; tx += TPV) {
        floatv ay[6][4], rows[4], out[6];
        #pragma unroll
        for (int s = 0; s < 4; s++) {  // A·dY at shift s: ay[i][s]
            #pragma unroll
            for (int r = 0; r < 4; r++) rows[r] = vloadv(0, p + r * wp + 4 * tx + s);
            WINOGRAD_A(floatv, out, rows);
            #pragma unroll
            for (int i = 0; i < 6; i++) ay[i][s] = out[i];
        }
        int valid = min(TPV, tiles_x - tx);
        // The same stores as winograd_input's, written out: an inline function taking out[6] was
        // 15–30 % slower under PoCL 3.1 at 128→128 on 32×32 and 256→256 on 16×16 (Zen 4 EPYC, two
        // alternations).
        #pragma unroll
        for (int i = 0; i < 6; i++) {  // (A·dY)·Aᵀ along the shifts
            WINOGRAD_A(floatv, out, ay[i]);
            #pragma unroll
            for (int j = 0; j < 6; j++) {
                global float *dst = o + (i * 6 + j) * plane + tx;
                floatt lanes = TILE_LANES(out[j]);
                if (valid == TPV) vstore_tiles(lanes, 0, dst);
                else { float part[TPV]; vstore_tiles(lanes, 0, part); for (int l = 0; l < valid; l++) dst[l] = part[l]; }
            }
        }
    }
}

// One work-item per filter: item = ci·Co + co (so neighbours read neighbouring dU), items = Ci·Co.
kernel void winograd_gradient_weights(global float *dw, global const float *du, int cin, int cout, int items) {
    int item = get_global_id(0);
    if (item >= items) return;
    int ci = item / cout, co = item % cout;
    float u[6][6], gu[3][6], col[6], out[3];
    #pragma unroll
    for (int xi = 0; xi < 36; xi++) u[xi / 6][xi % 6] = du[(long)xi * items + item];
    #pragma unroll
    for (int j = 0; j < 6; j++) {  // Gᵀ·dU, one column at a time
        #pragma unroll
        for (int i = 0; i < 6; i++) col[i] = u[i][j];
        WINOGRAD_GT(out, col);
        #pragma unroll
        for (int a = 0; a < 3; a++) gu[a][j] = out[a];
    }
    global float *o = dw + ((long)co * cin + ci) * 9;
    #pragma unroll
    for (int a = 0; a < 3; a++) {  // (Gᵀ·dU)·G, one row at a time
        WINOGRAD_GT(out, gu[a]);
        #pragma unroll
        for (int b = 0; b < 3; b++) o[a * 3 + b] = out[b];
    }
}
