/// How the ranks of a data-parallel run combine what each computed. Implemented over MPI
/// (MPIReducer) and, for tests, over threads of one process (ThreadReducer).
public protocol GradientReducer: AnyObject {
    /// This process's index, 0..<size.
    var rank: Int { get }
    /// How many ranks take part.
    var size: Int { get }
    /// values[i] ← Σ over ranks of values[i], in place. Every rank must call it with the same count,
    /// and every rank receives the same bits (so all ranks take the same optimizer step).
    func sum(_ values: UnsafeMutableBufferPointer<Float>) throws
    /// Small reductions of doubles, exact for whole numbers below 2^53 (fingerprints, flags, counts).
    func reduce(_ values: inout [Double], _ operation: ReduceOperation) throws
}

public enum ReduceOperation: Int32 { case sum = 0, max = 1, min = 2 }
