import ArgumentParser
import DDPMCore
import DDPMOpenCL
import Foundation

/// Runs a command body; a user error or an OpenCL failure becomes one clear paragraph on stderr
/// and an exit code, never a stack trace.
func reportingErrors(_ body: () throws -> Void) throws {
    // Line-buffered stdout, so log lines reach a file or pipe as they happen.
    setvbuf(stdout, nil, _IOLBF, 0)
    // A file-size limit (ulimit -f) then makes write() fail with EFBIG, which the writers report
    // ("File too large; nothing was overwritten"), instead of SIGXFSZ killing the process mid-write.
    signal(SIGXFSZ, SIG_IGN)
    do {
        try body()
    } catch let error as UserError {
        printError("error: \(error.message)")
        throw ExitCode(error.exitCode)
    } catch let error as CLError {
        printError("error: OpenCL: \(error.description)")
        throw ExitCode(1)
    } catch let error as DeviceMemoryError {
        printError("error: \(error.description). Use a smaller batch.")
        throw ExitCode(2)
    }
}

func printError(_ text: String) {
    FileHandle.standardError.write((text + "\n").data(using: .utf8)!)
}
