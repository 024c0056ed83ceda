import DDPMCore
import Foundation

// Reference pooling and resizing (InceptionV3's feature network). One task per (image, channel) plane.

/// y[n,c,oy,ox] = max over the window's cells inside the image (padded cells never win, as torch
/// pads max_pool2d with −∞), or their mean when `average` (count_include_pad=False: divided by the
/// number of cells inside, summed in row-major window order).
func pool2d(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ xs: Shape, _ p: Pool2D, average: Bool) {
    let (n, c, h, w) = xs.nchw
    let (ho, wo) = p.outputSize(height: h, width: w)
    parallelFor(n * c) { plane in
        let input = x + plane * h * w, output = y + plane * ho * wo
        for oy in 0..<ho {
            let y0 = max(oy * p.stride - p.padding, 0), y1 = min(oy * p.stride - p.padding + p.kernel, h)
            for ox in 0..<wo {
                let x0 = max(ox * p.stride - p.padding, 0), x1 = min(ox * p.stride - p.padding + p.kernel, w)
                var acc: Float = average ? 0 : -.infinity
                for iy in y0..<y1 {
                    for ix in x0..<x1 {
                        let v = input[iy * w + ix]
                        acc = average ? acc + v : max(acc, v)
                    }
                }
                output[oy * wo + ox] = average ? acc / Float((y1 - y0) * (x1 - x0)) : acc
            }
        }
    }
}

/// Where output index `o` of `outSize` reads in an input of `inSize` (torch's
/// area_pixel_compute_source_index with align_corners=False): the two neighbours and the weight of
/// the second. The scale in/out is a float division, as torch computes it.
@inline(__always)
func bilinearSource(_ o: Int, inSize: Int, outSize: Int) -> (i0: Int, i1: Int, lambda: Float) {
    let scale = Float(inSize) / Float(outSize)
    let src = max(scale * (Float(o) + 0.5) - 0.5, 0)
    let i0 = min(Int(src), inSize - 1)
    let i1 = i0 + (i0 < inSize - 1 ? 1 : 0)
    return (i0, i1, src - Float(i0))
}

/// y[n,c,oy,ox] = (1−ly)·((1−lx)·x00 + lx·x01) + ly·((1−lx)·x10 + lx·x11), torch's bilinear order.
func resizeBilinear(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ xs: Shape, height ho: Int, width wo: Int) {
    let (n, c, h, w) = xs.nchw
    parallelFor(n * c) { plane in
        let input = x + plane * h * w, output = y + plane * ho * wo
        for oy in 0..<ho {
            let (y0, y1, ly) = bilinearSource(oy, inSize: h, outSize: ho)
            for ox in 0..<wo {
                let (x0, x1, lx) = bilinearSource(ox, inSize: w, outSize: wo)
                let top = (1 - lx) * input[y0 * w + x0] + lx * input[y0 * w + x1]
                let bottom = (1 - lx) * input[y1 * w + x0] + lx * input[y1 * w + x1]
                output[oy * wo + ox] = (1 - ly) * top + ly * bottom
            }
        }
    }
}
