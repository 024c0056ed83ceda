/// A tensor shape. Tensors are dense float32, row-major; images are NCHW.
public struct Shape: Hashable, CustomStringConvertible, Sendable {
    public var dims: [Int]

    public init(_ dims: [Int]) {
        precondition(dims.allSatisfy { $0 >= 0 }, "negative dimension in shape \(dims)")
        self.dims = dims
    }
    public init(_ dims: Int...) { self.init(dims) }

    public var count: Int { dims.reduce(1, *) }
    public var rank: Int { dims.count }
    public subscript(i: Int) -> Int { dims[i] }
    public var description: String { "[" + dims.map(String.init).joined(separator: "×") + "]" }

    /// N, C, H, W of a rank-4 shape; rank-2 [N, C] reads as N×C×1×1.
    public var nchw: (n: Int, c: Int, h: Int, w: Int) {
        switch rank {
        case 4: return (dims[0], dims[1], dims[2], dims[3])
        case 3: return (dims[0], dims[1], dims[2], 1)
        case 2: return (dims[0], dims[1], 1, 1)
        default: preconditionFailure("shape \(self) is not an NCHW tensor")
        }
    }
}
