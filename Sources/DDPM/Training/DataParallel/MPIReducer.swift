import CMPIShim
import DDPMCore
import Foundation

/// Open MPI's MPI_COMM_WORLD, opened at run time: only a process that a launcher started (mpirun
/// sets OMPI_COMM_WORLD_SIZE; PMIx and PMI launchers set PMIX_RANK or PMI_SIZE) loads libmpi, so
/// ddpm-cl without MPI installed behaves as before. Gradients go through one MPI_Allreduce
/// (MPI_SUM on host floats) per step.
public final class MPIReducer: GradientReducer {
    public let rank: Int
    public let size: Int
    /// The rank's index among the ranks on its machine (Open MPI's OMPI_COMM_WORLD_LOCAL_RANK).
    public let localRank: Int

    /// The library ddpm-cl opens: Open MPI's soname (4.x and 5.x). Other MPIs are not supported.
    public static let library = "libmpi.so.40"

    /// Whether a launcher started this process as one of several ranks (the environment says so).
    public static func launched(environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        if let size = environment["OMPI_COMM_WORLD_SIZE"].flatMap(Int.init) { return size > 1 }
        return environment["PMIX_RANK"] != nil || (environment["PMI_SIZE"].flatMap(Int.init) ?? 1) > 1
    }

    /// MPI_Init; a missing or foreign libmpi is a user error that says what to install.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        var message = [CChar](repeating: 0, count: 512)
        guard mpishim_load(Self.library, &message, message.count) == 0 else {
            throw UserError("""
                this process was started by an MPI launcher, but \(Self.library) could not be opened: \
                \(String(cString: message)). Install Open MPI (Debian: apt-get install openmpi-bin libopenmpi-dev, \
                or `make deps`), or run ddpm-cl without mpirun.
                """)
        }
        var r: Int32 = 0, s: Int32 = 0
        guard mpishim_init(&r, &s, &message, message.count) == 0 else { throw UserError("MPI: \(String(cString: message))") }
        rank = Int(r); size = Int(s)
        localRank = environment["OMPI_COMM_WORLD_LOCAL_RANK"].flatMap(Int.init)
            ?? environment["MPI_LOCALRANKID"].flatMap(Int.init) ?? rank
    }

    public func sum(_ values: UnsafeMutableBufferPointer<Float>) throws {
        var message = [CChar](repeating: 0, count: 512)
        guard mpishim_allreduce_sum_float(values.baseAddress, Int64(values.count), &message, message.count) == 0 else {
            throw UserError("MPI: \(String(cString: message))")
        }
    }

    public func reduce(_ values: inout [Double], _ operation: ReduceOperation) throws {
        var message = [CChar](repeating: 0, count: 512)
        let code = values.withUnsafeMutableBufferPointer {
            mpishim_allreduce_double($0.baseAddress, Int32($0.count), operation.rawValue, &message, message.count)
        }
        guard code == 0 else { throw UserError("MPI: \(String(cString: message))") }
    }

    /// MPI_Finalize, after every rank has finished (a rank that fails exits without it, and the
    /// launcher then stops the others).
    public func finish() throws {
        var message = [CChar](repeating: 0, count: 512)
        guard mpishim_finalize(&message, message.count) == 0 else { throw UserError("MPI: \(String(cString: message))") }
    }
}
