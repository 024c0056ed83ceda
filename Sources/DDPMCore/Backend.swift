/// Memory owned by a backend. `count` is the capacity in floats; a tensor may use a prefix of it.
public protocol DeviceBuffer: AnyObject {
    var count: Int { get }
}

/// A tensor as an op sees it: a buffer and the shape of the prefix in use.
public struct TensorRef {
    public let buffer: DeviceBuffer
    public let shape: Shape
    public init(_ buffer: DeviceBuffer, _ shape: Shape) {
        precondition(shape.count <= buffer.count, "shape \(shape) does not fit a buffer of \(buffer.count) floats")
        self.buffer = buffer
        self.shape = shape
    }
}

/// What every backend implements. The CPU reference defines the meaning of each op (see Op);
/// other backends must agree with it (the parity suite checks that).
///
/// Calls are asynchronous on devices: `run` enqueues, `read` waits. Outputs never alias inputs,
/// except for the in-place ops (Op.inPlaceInputs): there output i is the same buffer as the input it
/// overwrites, and the backend reads and writes it through the output.
public protocol Backend: AnyObject {
    /// "cpu-reference" or the OpenCL device's name.
    var name: String { get }
    func makeBuffer(count: Int) throws -> DeviceBuffer
    func write(_ values: [Float], to buffer: DeviceBuffer) throws
    func read(_ buffer: DeviceBuffer, count: Int) throws -> [Float]
    /// `count` floats of `buffer` from `offset` as a buffer of their own (a view: writes through
    /// either are seen by both). `offset` must be a multiple of `viewAlignment`.
    func makeView(of buffer: DeviceBuffer, offset: Int, count: Int) throws -> DeviceBuffer
    /// The offsets, in floats, at which a view may start (OpenCL sub-buffers need aligned origins).
    var viewAlignment: Int { get }
    /// Runs one op. `step` addresses the random streams of ops that draw noise (Philox counters).
    func run(_ op: Op, inputs: [TensorRef], outputs: [TensorRef], step: UInt32) throws
    /// Waits until everything enqueued has finished.
    func synchronize() throws
    /// Per-kernel time in seconds accumulated since the last reset, when the backend can measure it.
    func kernelTimes() -> [String: (calls: Int, seconds: Double)]
    func setProfiling(_ enabled: Bool)
    /// The memory this backend can allocate, when it knows (checked before large allocations).
    var memoryLimits: MemoryLimits? { get }
    /// A promise that `buffer` keeps its contents (a sampler's weights) while it lives: the backend
    /// may keep what it derives from it (transformed, packed weights) from one call to the next.
    /// Writing it anyway, with `write` or as an op's output, drops what was derived.
    func markConstant(_ buffer: DeviceBuffer)
}

public extension Backend {
    func kernelTimes() -> [String: (calls: Int, seconds: Double)] { [:] }
    func setProfiling(_ enabled: Bool) {}
    var memoryLimits: MemoryLimits? { nil }
    func markConstant(_ buffer: DeviceBuffer) {}

    /// Convenience for one-off calls (tests, host-side helpers): uploads, runs, reads back.
    func makeBuffer(_ values: [Float]) throws -> DeviceBuffer {
        let buffer = try makeBuffer(count: values.count)
        try write(values, to: buffer)
        return buffer
    }

    /// A buffer holding `values` for good (weights of a network that is only evaluated), marked
    /// constant so that the backend may keep what it derives from them.
    func makeConstantBuffer(_ values: [Float]) throws -> DeviceBuffer {
        let buffer = try makeBuffer(values)
        markConstant(buffer)
        return buffer
    }
}
