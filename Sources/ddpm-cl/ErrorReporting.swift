import ArgumentParser
import DDPMCore
import DDPMOpenCL
import Foundation

/// Runs a command body; a user error or an OpenCL failure becomes one clear paragraph on stderr
/// and an exit code, never a stack trace.
func reportingErrors(_ body: () throws -> Void) throws {
    // Line-buffered stdout, so log lines reach a file or pipe as they happen.
    setvbuf(stdout, nil, _IOLBF, 0)
    do {
        try body()
    } catch let error as UserError {
        printError("error: \(error.message)")
        throw ExitCode(error.exitCode)
    } catch let error as CLError {
        printError("error: OpenCL: \(error.description)")
        throw ExitCode(1)
    }
}

func printError(_ text: String) {
    FileHandle.standardError.write((text + "\n").data(using: .utf8)!)
}
