import Foundation

/// Ctrl-C handling: the first SIGINT sets a flag that the training loop checks after each step (so
/// the step finishes and a checkpoint is written); a second one exits at once.
public enum Interruption {
    nonisolated(unsafe) private static var count: sig_atomic_t = 0

    public static func install() {
        signal(SIGINT) { _ in
            Interruption.count += 1
            if Interruption.count > 1 { _exit(130) }
        }
    }

    public static var requested: Bool { count > 0 }

    /// Forgets an earlier Ctrl-C (for tests that simulate one).
    public static func reset() { count = 0 }
}
