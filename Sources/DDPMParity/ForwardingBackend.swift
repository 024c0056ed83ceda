import DDPMCore
import DDPMCPU

/// The CPU reference behind a subclass that overrides `run`: how the tests build deliberately
/// wrong backends to prove that the parity and gradient checks can fail (and, overriding `write`
/// and `read` too, backends that record what a caller does).
open class ForwardingBackend: Backend {
    public let reference = CPUBackend()
    public init() {}
    open var name: String { "forwarding" }
    public func makeBuffer(count: Int) throws -> DeviceBuffer { try reference.makeBuffer(count: count) }
    open func write(_ values: [Float], to buffer: DeviceBuffer) throws { try reference.write(values, to: buffer) }
    open func read(_ buffer: DeviceBuffer, count: Int) throws -> [Float] { try reference.read(buffer, count: count) }
    public func makeView(of buffer: DeviceBuffer, offset: Int, count: Int) throws -> DeviceBuffer {
        try reference.makeView(of: buffer, offset: offset, count: count)
    }
    public var viewAlignment: Int { reference.viewAlignment }
    public func synchronize() throws {}
    open func run(_ op: Op, inputs: [TensorRef], outputs: [TensorRef], step: UInt32) throws {
        try reference.run(op, inputs: inputs, outputs: outputs, step: step)
    }
}
