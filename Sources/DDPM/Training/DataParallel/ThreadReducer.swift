import Foundation

/// K ranks as threads of one process, for tests and experiments without MPI. Every rank's values
/// are collected, and each rank sums them in rank order 0, 1, …, K−1, so all receive the same bits.
public final class ThreadGroup {
    public let size: Int
    private let lock = NSCondition()
    private var slots: [[Double]?]
    private var arrived = 0
    private var generation = 0
    private var gathered: [[Double]] = []

    public init(size: Int) {
        precondition(size >= 1)
        self.size = size
        slots = Array(repeating: nil, count: size)
    }

    /// One reducer per rank, each to be used from its own thread.
    public func reducers() -> [ThreadReducer] { (0..<size).map { ThreadReducer(group: self, rank: $0) } }

    /// Every rank's values, in rank order, once all ranks have handed theirs in.
    func exchange(rank: Int, _ values: [Double]) -> [[Double]] {
        lock.lock()
        defer { lock.unlock() }
        let round = generation
        slots[rank] = values
        arrived += 1
        if arrived == size {
            gathered = slots.map { $0! }
            slots = Array(repeating: nil, count: size)
            arrived = 0
            generation += 1
            lock.broadcast()
        } else {
            while generation == round { lock.wait() }
        }
        // `gathered` stays until every rank (this one included) has handed in the next round.
        return gathered
    }
}

public final class ThreadReducer: GradientReducer {
    public let rank: Int
    public var size: Int { group.size }
    let group: ThreadGroup

    init(group: ThreadGroup, rank: Int) { self.group = group; self.rank = rank }

    public func sum(_ values: UnsafeMutableBufferPointer<Float>) throws {
        let all = group.exchange(rank: rank, values.map(Double.init))
        for i in values.indices {
            var total = Float(all[0][i])
            for r in 1..<all.count { total += Float(all[r][i]) }
            values[i] = total
        }
    }

    public func reduce(_ values: inout [Double], _ operation: ReduceOperation) throws {
        let all = group.exchange(rank: rank, values)
        for i in values.indices {
            let column = all.map { $0[i] }
            switch operation {
            case .sum: values[i] = column.reduce(0, +)
            case .max: values[i] = column.max()!
            case .min: values[i] = column.min()!
            }
        }
    }
}
