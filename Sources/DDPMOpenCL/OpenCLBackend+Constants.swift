import DDPMCore

/// What calls derived from one constant buffer, by name; it lives on the buffer (CLBuffer.constant)
/// and is freed with it. (A view is a buffer of its own: nothing marks views constant.)
final class ConstantBuffer {
    var derived: [String: Derived] = [:]
}

/// One thing derived from a constant buffer, counted in its backend's held bytes while it lives.
final class Derived {
    let value: AnyObject
    let bytes: Int
    private let held: DerivedBytes
    init(_ value: AnyObject, bytes: Int, held: DerivedBytes) {
        (self.value, self.bytes, self.held) = (value, bytes, held)
        held.bytes += bytes
    }
    deinit { held.bytes -= bytes }
}

final class DerivedBytes { var bytes = 0 }

/// Data derived from buffers that do not change (Backend.markConstant: the weights of a sampler,
/// the likelihood, the classifier and Inception features), kept from one call to the next:
/// Winograd's transformed weights, packed for the GEMM, are made once per layer for a whole
/// sampling run instead of at every model evaluation.
extension OpenCLBackend {
    public func markConstant(_ buffer: DeviceBuffer) {
        let storage = (buffer as! CLFloatBuffer).storage
        if storage.constant == nil { storage.constant = ConstantBuffer() }
    }

    /// What was derived from constant `buffer` under `key`, if anything.
    func derived(from buffer: CLBuffer, key: String) -> AnyObject? { buffer.constant?.derived[key]?.value }

    /// Whether `buffer` is constant and `bytes` more derived from it (in place of what `key` holds)
    /// stay within `constantCacheBudgetBytes`: ask before making what `keepDerived` is to keep.
    func canKeepDerived(bytes: Int, from buffer: CLBuffer, key: String) -> Bool {
        guard let constant = buffer.constant else { return false }
        return constantCacheHeld.bytes - (constant.derived[key]?.bytes ?? 0) + bytes <= constantCacheBudgetBytes
    }

    /// Keeps `value` (holding `bytes` of device memory) derived from constant `buffer` under `key`.
    func keepDerived(_ value: AnyObject, bytes: Int, from buffer: CLBuffer, key: String) {
        buffer.constant?.derived[key] = Derived(value, bytes: bytes, held: constantCacheHeld)
    }

    /// Drops what was derived from `buffer`: it is being written.
    func forgetDerived(from buffer: CLBuffer) {
        if let constant = buffer.constant, !constant.derived.isEmpty { constant.derived = [:] }
    }
}
