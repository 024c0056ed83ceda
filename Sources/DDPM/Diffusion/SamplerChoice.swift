import DDPMCore
import Foundation

/// The samplers by the names `--sampler` takes.
public enum SamplerName: String, CaseIterable, Sendable {
    case ddpm, ddim, dpm2m = "dpm++2m", dpm3m = "dpm++3m", dpm2mSDE = "dpm++2m-sde", unipc, euler, eulerAncestral = "euler-a", heun

    /// Model evaluations of an n-step run (Heun evaluates twice per level but the last).
    public func modelCalls(steps n: Int) -> Int { self == .heun ? 2 * n - 1 : n }

    /// Whether the same noise gives the same images (no per-step noise).
    public var isDeterministic: Bool { ![.ddpm, .dpm2mSDE, .eulerAncestral].contains(self) }
}

extension SchedulerSettings {
    /// The sampler for training-time grids and FID: DPM-Solver++(2M) with dynamic thresholding,
    /// which after a 10-minute run has half the FID of DDIM-50 (README, "The best samples per
    /// minute"); for a schedule DPM-Solver++ refuses, DDPM ancestral sampling (`fallback`).
    public func fastSampler(fallback: SamplerKind = .ddpm) -> (settings: SchedulerSettings, kind: SamplerKind) {
        var s = self
        s.thresholding = true
        let kind: SamplerKind = (try? s.checkDPMSolverSchedule()) != nil ? .dpmSolver(DPMSolverSettings()) : fallback
        return (s, kind)
    }
}

extension SamplerKind {
    /// The sampler a diffusers scheduler_config.json names, with its options; nil for DDPMScheduler and
    /// DDIMScheduler (their options are SchedulerSettings'). Unsupported options are refused.
    public static func named(byScheduler json: [String: Any], source: String) throws -> SamplerKind? {
        switch json["_class_name"] as? String {
        case "DPMSolverMultistepScheduler": return .dpmSolver(try DPMSolverSettings(json: json, source: source))
        case "EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler": return .euler(try EulerSettings(json: json, source: source))
        case "UniPCMultistepScheduler": return .unipc(try UniPCSettings(json: json, source: source))
        case "HeunDiscreteScheduler": return .heun(try HeunSettings(json: json, source: source))
        default: return nil
        }
    }

    /// The name `--sampler` gives this sampler.
    public var name: SamplerName {
        switch self {
        case .ddpm: return .ddpm
        case .ddim: return .ddim
        case .dpmSolver(let s): return s.algorithm == .sde ? .dpm2mSDE : s.order == 3 ? .dpm3m : .dpm2m
        case .euler(let e): return e.ancestral ? .eulerAncestral : .euler
        case .unipc: return .unipc
        case .heun: return .heun
        }
    }

    /// `--sampler NAME` (nil: the one the scheduler config names, else DDPM), `--sigmas` (Karras or
    /// exponential σ), `--eta`. The scheduler config's options are kept where they apply, as diffusers'
    /// from_config keeps them.
    public static func resolve(_ name: SamplerName?, sigmas: SigmaRamp?, eta: Float, scheduler: SamplerKind?) throws -> SamplerKind {
        let chosen = name ?? scheduler?.name ?? .ddpm
        var kind: SamplerKind
        switch chosen {
        case .ddpm: kind = .ddpm
        case .ddim: kind = .ddim(eta: eta)
        case .dpm2m, .dpm3m, .dpm2mSDE:
            var solver = DPMSolverSettings()
            if case .dpmSolver(let s)? = scheduler { solver = s }
            if name != nil {
                solver.order = chosen == .dpm3m ? 3 : 2
                solver.algorithm = chosen == .dpm2mSDE ? .sde : .ode
            }
            if let sigmas { solver.ramp = sigmas }
            kind = .dpmSolver(solver)
        case .euler, .eulerAncestral:
            var euler = EulerSettings()
            if case .euler(let e)? = scheduler { euler = e }
            euler.ancestral = chosen == .eulerAncestral
            if euler.ancestral { euler.ramp = .timesteps }
            if let sigmas {
                guard !euler.ancestral else {
                    throw UserError("--sigmas \(sigmas.rawValue): diffusers' EulerAncestralDiscreteScheduler has no Karras or exponential σ; use --sampler euler, dpm++2m, unipc or heun with it.")
                }
                euler.ramp = sigmas
            }
            kind = .euler(euler)
        case .unipc:
            var unipc = UniPCSettings()
            if case .unipc(let u)? = scheduler { unipc = u }
            if let sigmas { unipc.ramp = sigmas }
            kind = .unipc(unipc)
        case .heun:
            var heun = HeunSettings()
            if case .heun(let h)? = scheduler { heun = h }
            if let sigmas { heun.ramp = sigmas }
            kind = .heun(heun)
        }
        if let sigmas, sigmas != .timesteps, chosen == .ddpm || chosen == .ddim {
            throw UserError("--sigmas \(sigmas.rawValue) applies to the σ-based solvers; pass --sampler dpm++2m, dpm++3m, dpm++2m-sde, unipc, euler or heun.")
        }
        return kind
    }

    /// The default step count: all T for DDPM, 50 for DDIM, 20 for the fast solvers (at most T).
    public func defaultSteps(timesteps total: Int) -> Int {
        switch self {
        case .ddpm: return total
        case .ddim: return min(50, total)
        default: return min(20, total)
        }
    }
}
