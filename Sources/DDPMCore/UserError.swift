/// A mistake the user can fix: a missing file, a bad flag, a device that is not there.
/// The CLI prints `message` as one paragraph (no stack trace) and exits with `exitCode`.
/// Programmer mistakes (impossible shapes inside the engine) are preconditions instead.
public struct UserError: Error, CustomStringConvertible {
    public let message: String
    public let exitCode: Int32

    public init(_ message: String, exitCode: Int32 = 1) {
        self.message = message
        self.exitCode = exitCode
    }

    public var description: String { message }
}
