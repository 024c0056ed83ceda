// The device's multiply-add peak, for `ddpm-cl bench`: how close the GEMM and convolution kernels
// come to what the hardware does. Each work-item runs PEAK_CHAINS independent recurrences
// x = fma(x, a, b) on floatv vectors (VW floats, prelude.cl), so that an FMA's latency hides
// behind the others (a Skylake or Zen 4 core keeps 2 FMAs per cycle with 4 cycles of latency:
// 8 in flight), and stores their sum so that no work can be dropped. The host
// (OpenCLBackend+Peak.swift) checks the sums against the same recurrence computed in Swift.

#define PEAK_CHAINS 12

kernel void fma_peak(global float *out, const float a, const float b, const int iterations) {
    const int id = get_global_id(0);
    floatv x[PEAK_CHAINS];
    // Chain c starts at (id mod 1024)/1024 + c/128: powers of two keep the products exact, so the
    // value does not depend on whether the compiler contracts the sum into an fma (OpenCL C allows it).
    for (int c = 0; c < PEAK_CHAINS; c++) x[c] = (floatv)((id % 1024) * 0x1p-10f + c * 0x1p-7f);
    for (int i = 0; i < iterations; i++) {
#pragma unroll
        for (int c = 0; c < PEAK_CHAINS; c++) x[c] = fma(x[c], (floatv)(a), (floatv)(b));
    }
    floatv sum = x[0];
    for (int c = 1; c < PEAK_CHAINS; c++) sum += x[c];
    vstorev(sum, id, out);
}
