import Foundation

/// Tuned device profiles on disk, one JSON file per device name and driver version under
/// `$XDG_CACHE_HOME/ddpm-cl/profiles` (default `~/.cache/ddpm-cl/profiles`). A new driver or another
/// CPU (these machines change from day to day) gets a file of its own, so a choice measured on one
/// never applies to another. Only what was measured is cached (the GEMM tiles per shape class, the
/// 3×3 convolution searches);
/// the rest of a profile always comes from the device's facts (`DeviceProfile.defaults(for:)`).
public struct ProfileCache {
    /// What a cache file holds: the chosen GEMM tiles per shape class and the searches that chose them.
    public struct Entry: Codable {
        public var device: String
        public var driver: String
        public var gemm: [String: GEMMTiles]
        public var searches: [GEMMTuner.Search]
        /// The 3×3 convolution searches that ran, at most one per class of layers (a winner nil:
        /// im2col + GEMM). Files written before there were classes hold a single `conv3x3` search
        /// instead, which is not read: it is searched again.
        public var conv3x3Searches: [Conv3x3Tuner.Search]?
        /// The 3×3 layers' plans (`Conv3x3LayerPlan.key` → plan).
        public var conv3x3Layers: [String: Conv3x3LayerPlan]?

        public init(device: String, driver: String, gemm: [String: GEMMTiles] = [:], searches: [GEMMTuner.Search] = [],
                    conv3x3Searches: [Conv3x3Tuner.Search] = []) {
            (self.device, self.driver, self.gemm, self.searches, self.conv3x3Searches) = (device, driver, gemm, searches, conv3x3Searches)
        }

        /// The cached GEMM choices and 3×3 layer plans put into a profile built from the device's
        /// facts (the 3×3 blocking comes from a `Conv3x3Tuner` made from `conv3x3Searches`: it keeps
        /// only the complete ones).
        public func apply(to profile: inout DeviceProfile) {
            profile.gemm = gemm
            profile.conv3x3Layers = conv3x3Layers ?? [:]
        }
    }

    public let file: URL

    public init(device: CLDeviceInfo, directory: URL = ProfileCache.defaultDirectory()) {
        let key = "\(device.name)--\(device.driverVersion)"
        let slug = String(key.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." ? $0 : "_" })
        file = directory.appendingPathComponent(slug + ".json")
    }

    public static func defaultDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        let base: URL
        if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty {
            base = URL(fileURLWithPath: xdg)
        } else {
            base = URL(fileURLWithPath: NSHomeDirectory()).appendingPathComponent(".cache")
        }
        return base.appendingPathComponent("ddpm-cl/profiles")
    }

    /// The cached entry, or nil when there is none or it cannot be read (a stale or damaged cache
    /// is only a cache: it is searched again and rewritten). Tiles this build cannot use are dropped.
    public func load() -> Entry? {
        guard let data = try? Data(contentsOf: file), var entry = try? JSONDecoder().decode(Entry.self, from: data) else { return nil }
        entry.gemm = entry.gemm.filter { GEMMShapeClass(rawValue: $0.key) != nil && $0.value.problem == nil }
        entry.conv3x3Searches = entry.conv3x3Searches?.filter { $0.winner?.problem == nil }
        return entry
    }

    /// Writes the entry atomically (temporary file, then rename).
    public func save(_ entry: Entry) throws {
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(entry).write(to: file, options: .atomic)
    }
}
