/// Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11), the
/// counter-based generator shared with Kernels/philox.cl. A draw is addressed by
/// (seed, counter = [element/4, image, step, stream]), so every backend produces the same numbers.
///
/// Normals use Box–Muller with our own log, sqrt and sin/cos built only from IEEE +, ×, fma and bit
/// operations, evaluated in the same order as philox.cl: every such operation is correctly
/// rounded, so Swift and OpenCL agree to the bit (libm/OpenCL builtins would not).
public enum Philox {
    public static func block(seed: UInt64, counter c: (UInt32, UInt32, UInt32, UInt32)) -> (UInt32, UInt32, UInt32, UInt32) {
        var c0 = c.0, c1 = c.1, c2 = c.2, c3 = c.3
        var k0 = UInt32(truncatingIfNeeded: seed), k1 = UInt32(truncatingIfNeeded: seed >> 32)
        for round in 0..<10 {
            if round > 0 { k0 &+= 0x9E37_79B9; k1 &+= 0xBB67_AE85 }
            let p0 = UInt64(0xD251_1F53) * UInt64(c0)
            let p1 = UInt64(0xCD9E_8D57) * UInt64(c2)
            let (hi0, lo0) = (UInt32(p0 >> 32), UInt32(truncatingIfNeeded: p0))
            let (hi1, lo1) = (UInt32(p1 >> 32), UInt32(truncatingIfNeeded: p1))
            (c0, c1, c2, c3) = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
        }
        return (c0, c1, c2, c3)
    }

    /// A uniform in (0, 1) from 23 random bits: (x>>9 + 0.5)·2⁻²³, exact in float32.
    @inline(__always)
    public static func uniform(_ x: UInt32) -> Float {
        (Float(x >> 9) + 0.5) * 0x1p-23
    }

    /// Four standard normals for one counter.
    public static func normals(seed: UInt64, counter: (UInt32, UInt32, UInt32, UInt32)) -> (Float, Float, Float, Float) {
        let r = block(seed: seed, counter: counter)
        let (a, b) = boxMuller(uniform(r.0), uniform(r.1))
        let (c, d) = boxMuller(uniform(r.2), uniform(r.3))
        return (a, b, c, d)
    }

    /// Normal number `index` of the stream (image, step, stream).
    public static func normal(seed: UInt64, index: Int, image: UInt32, step: UInt32, stream: UInt32) -> Float {
        let n = normals(seed: seed, counter: (UInt32(index / 4), image, step, stream))
        switch index % 4 {
        case 0: return n.0
        case 1: return n.1
        case 2: return n.2
        default: return n.3
        }
    }

    /// Uniform integer in 0..<bound from the first word of the block (multiply-shift).
    public static func integer(below bound: Int, seed: UInt64, counter: (UInt32, UInt32, UInt32, UInt32)) -> Int {
        let r = block(seed: seed, counter: counter)
        return Int((UInt64(r.0) * UInt64(bound)) >> 32)
    }

    @inline(__always)
    static func boxMuller(_ u1: Float, _ u2: Float) -> (Float, Float) {
        let radius = sqrtExact(-2 * logPositive(u1))
        let (s, c) = sinCosTwoPi(u2)
        return (radius * c, radius * s)
    }

    /// ln(x) for x in (0, 1]: Cephes' logf polynomial on [√½, √2) (rel. error < 2e-7).
    @inline(__always)
    public static func logPositive(_ x: Float) -> Float {
        let bits = x.bitPattern
        var e = Float(Int32(bitPattern: (bits >> 23) & 0xFF) - 127)
        var m = Float(bitPattern: (bits & 0x007F_FFFF) | 0x3F80_0000)  // [1, 2)
        if m > 1.41421356 { m = m * 0.5; e = e + 1 }
        let f = m - 1
        let z = f * f
        var y = (7.0376836292e-2 as Float).fma(f, -1.1514610310e-1)
        y = y.fma(f, 1.1676998740e-1)
        y = y.fma(f, -1.2420140846e-1)
        y = y.fma(f, 1.4249322787e-1)
        y = y.fma(f, -1.6668057665e-1)
        y = y.fma(f, 2.0000714765e-1)
        y = y.fma(f, -2.4999993993e-1)
        y = y.fma(f, 3.3333331174e-1)
        y = (y * f) * z
        y = e.fma(-2.12194440e-4, y)
        y = z.fma(-0.5, y)
        var r = f + y
        r = e.fma(0.693359375, r)
        return r
    }

    /// √x for x ≥ 0 by three Newton steps on 1/√x from the classic bit-level guess.
    @inline(__always)
    static func sqrtExact(_ x: Float) -> Float {
        if x <= 0 { return 0 }
        var y = Float(bitPattern: 0x5F37_59DF &- (x.bitPattern >> 1))
        let half = 0.5 * x
        for _ in 0..<3 {
            let hyy = (half * y) * y
            y = y * (1.5 - hyy)
        }
        return x * y
    }

    /// (sin 2πu, cos 2πu) for u in [0, 1): quadrant reduction, then Cephes' sinf/cosf kernels.
    @inline(__always)
    static func sinCosTwoPi(_ u: Float) -> (Float, Float) {
        let q = Float(Int32(u * 4 + 0.5))     // nearest quarter turn, 0…4
        let r = u - q * 0.25                   // [-1/8, 1/8]
        let x = r * 6.28318530717958647692
        let z = x * x
        var s: Float = -1.9515295891e-4
        s = s.fma(z, 8.3321608736e-3)
        s = s.fma(z, -1.6666654611e-1)
        s = (s * z).fma(x, x)
        var c: Float = 2.443315711809948e-5
        c = c.fma(z, -1.388731625493765e-3)
        c = c.fma(z, 4.166664568298827e-2)
        c = (c * z) * z
        c = z.fma(-0.5, c)
        c = c + 1
        switch Int32(q) & 3 {
        case 0: return (s, c)
        case 1: return (c, -s)
        case 2: return (-s, -c)
        default: return (-c, s)
        }
    }
}

extension Float {
    /// self · b + c with a single rounding (IEEE fusedMultiplyAdd), the same as OpenCL's fma(self, b, c).
    @inline(__always) func fma(_ b: Float, _ c: Float) -> Float { c.addingProduct(self, b) }
}
