import Dispatch

/// Runs body(i) for i in 0..<count on all cores (host-side metric arithmetic).
func parallelRows(_ count: Int, _ body: (Int) -> Void) {
    withoutActuallyEscaping(body) { body in
        DispatchQueue.concurrentPerform(iterations: count, execute: body)
    }
}
