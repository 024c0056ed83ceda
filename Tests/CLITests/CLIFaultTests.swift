import Foundation
import XCTest

/// Faults through the binary: two trainers on one folder, SIGKILL while checkpoints are written,
/// a full disk (a file-size limit), a kernel that fails to build.
final class CLIFaultTests: XCTestCase {
    let cpu = ["--device", "cpu-reference"]

    /// Two 8×8 PNGs to train the tiny U-Net on (drawn by `sample` from the pipeline fixture).
    func trainingImages(_ name: String) throws -> URL {
        let pipe = try copyOfTinyPipeline("\(name)-pipe")
        let out = scratchFolder("\(name)-images")
        let r = try runCLI(["sample", pipe.path, "--num-images", "2", "--steps", "2", "--out", out.path] + cpu)
        XCTAssertEqual(r.status, 0, r.err)
        return out.appendingPathComponent("images")
    }

    func trainArguments(_ images: URL, _ run: URL, steps: Int? = nil, minutes: Double? = nil) -> [String] {
        ["train", "--model", "tiny", "--data", images.path, "--batch", "2", "--out", run.path, "--sample-every", "0",
         "--checkpoint-every", "1", "--log-every", "1"] + (steps.map { ["--steps", "\($0)"] } ?? []) + (minutes.map { ["--minutes", "\($0)"] } ?? []) + cpu
    }

    func startCLI(_ arguments: [String]) throws -> Process {
        let p = Process()
        p.executableURL = try cliBinary()
        p.arguments = arguments
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }

    func waitFor(_ path: URL, seconds: Double = 60) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if FileManager.default.fileExists(atPath: path.path) { return true }
            usleep(20_000)
        }
        return false
    }

    /// The pid of a process that has exited.
    func deadPID() throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try p.run()
        p.waitUntilExit()
        return p.processIdentifier
    }

    func checkpointStep(_ run: URL) throws -> Int {
        let r = try runCLI(["train", "--resume", run.path, "--steps", "1"] + cpu)   // refuses: already at step N
        let digits = r.err.components(separatedBy: "already at step ").last?.prefix { $0.isNumber } ?? ""
        return Int(digits) ?? -1
    }

    func testSecondTrainerIsRefusedAndAStaleLockIsTakenOver() throws {
        let images = try trainingImages("lock")
        let run = scratchFolder("lock-run")
        let first = try startCLI(trainArguments(images, run, minutes: 2))
        defer { if first.isRunning { kill(first.processIdentifier, SIGKILL) } }
        XCTAssert(waitFor(run.appendingPathComponent("checkpoint.safetensors")), "the first trainer wrote no checkpoint")
        try expectUserError(["train", "--resume", run.path, "--steps", "100000"] + cpu, mentioning: ["pid \(first.processIdentifier)", "another ddpm-cl"])
        try expectUserError(trainArguments(images, run, steps: 5), mentioning: ["pid \(first.processIdentifier)"])
        kill(first.processIdentifier, SIGINT)
        first.waitUntilExit()
        XCTAssertEqual(first.terminationStatus, 130)
        XCTAssertFalse(FileManager.default.fileExists(atPath: run.appendingPathComponent(".lock").path), "Ctrl-C left the lock")

        // A lock whose process is gone (SIGKILL, reboot) is taken over.
        try Data("\(try deadPID())\n".utf8).write(to: run.appendingPathComponent(".lock"))
        let step = try checkpointStep(run)
        XCTAssertGreaterThan(step, 0)
        let r = try runCLI(["train", "--resume", run.path, "--steps", "\(step + 1)"] + cpu)
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: run.appendingPathComponent(".lock").path))
    }

    func testSIGKILLWhileWritingCheckpointsLosesNothing() throws {
        let images = try trainingImages("kill")
        let run = scratchFolder("kill-run")
        var lastStep = 0
        for round in 0..<2 {
            let arguments = round == 0 ? trainArguments(images, run, minutes: 2) : ["train", "--resume", run.path, "--steps", "100000"] + cpu
            let p = try startCLI(arguments)
            XCTAssert(waitFor(run.appendingPathComponent("checkpoint.safetensors")))
            usleep(UInt32(150_000 + 100_000 * round))   // checkpoints every step: the kill lands in or near a write
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            let step = try checkpointStep(run)
            XCTAssertGreaterThanOrEqual(step, max(lastStep, 1), "round \(round): the checkpoint went back or is unreadable")
            lastStep = step
        }
        // A temporary file of a killed writer is removed at the next start.
        let stale = run.appendingPathComponent(".checkpoint.safetensors.tmp-\(try deadPID())")
        try Data(repeating: 1, count: 100).write(to: stale)
        let r = try runCLI(["train", "--resume", run.path, "--steps", "\(lastStep + 1)"] + cpu)
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssert(r.out.contains("removed \(stale.path)"), r.out)
        let leftovers = try FileManager.default.subpathsOfDirectory(atPath: run.path).filter { $0.contains(".tmp-") || $0.hasSuffix(".lock") }
        XCTAssertEqual(leftovers, [])
    }

    func testFullDiskKeepsTheLastCheckpoint() throws {
        let images = try trainingImages("full")
        let run = scratchFolder("full-run")
        let first = try runCLI(trainArguments(images, run, steps: 1))
        XCTAssertEqual(first.status, 0, first.err)
        let before = try Data(contentsOf: run.appendingPathComponent("checkpoint.safetensors"))
        // A 64-block file-size limit: the next checkpoint (≈ 200 KB) cannot be written.
        let command = "ulimit -f 64; exec '\(try cliBinary().path)' train --resume '\(run.path)' --steps 3 --device cpu-reference"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", command]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationReason, .exit, "killed by a signal: \(text)")
        XCTAssertNotEqual(p.terminationStatus, 0)
        XCTAssert(text.hasPrefix("error: ") && text.contains("File too large") && text.contains("nothing was overwritten"), text)
        XCTAssertEqual(try Data(contentsOf: run.appendingPathComponent("checkpoint.safetensors")), before, "the last checkpoint changed")
        let leftovers = try FileManager.default.subpathsOfDirectory(atPath: run.path).filter { $0.contains(".tmp-") || $0.hasSuffix(".lock") }
        XCTAssertEqual(leftovers, [])
        XCTAssertEqual(try checkpointStep(run), 1)
    }

    func testKernelThatFailsToBuildShowsTheLog() throws {
        guard try runCLI(["devices"]).status == 0 else { throw XCTSkip("no OpenCL device") }
        let kernels = scratchFolder("broken-kernels")
        try FileManager.default.copyItem(at: repositoryRoot.appendingPathComponent("Kernels"), to: kernels)
        let gemm = kernels.appendingPathComponent("gemm.cl")
        try (String(contentsOf: gemm, encoding: .utf8) + "\nthis_is_not_opencl_c(;\n").write(to: gemm, atomically: true, encoding: .utf8)
        // PoCL's compiler prints its diagnostics to stderr itself, so the error is not the first line.
        let r = try runCLI(["check", "--device", "0"], environment: ["DDPM_CL_KERNELS": kernels.path])
        XCTAssertEqual(r.status, 1, r.err)
        for word in ["error: OpenCL: clBuildProgram(Kernels/gemm.cl", "CL_BUILD_PROGRAM_FAILURE", "failed to build"] {
            XCTAssert(r.err.contains(word), "'\(word)' not in: \(r.err)")
        }
        XCTAssertFalse(r.err.contains("Fatal error") || r.err.contains("Backtrace"), r.err)
    }
}
