import Foundation

/// Tuned device profiles on disk, one JSON file per device name and driver version under
/// `$XDG_CACHE_HOME/ddpm-cl/profiles` (default `~/.cache/ddpm-cl/profiles`). A new driver or another
/// CPU (these machines change from day to day) gets a file of its own, so a choice measured on one
/// never applies to another.
public struct ProfileCache {
    /// What a cache file holds: the profile and the searches that chose it.
    public struct Entry: Codable {
        public var device: String
        public var driver: String
        public var profile: DeviceProfile
        public var searches: [GEMMTuner.Search]

        public init(device: String, driver: String, profile: DeviceProfile, searches: [GEMMTuner.Search]) {
            (self.device, self.driver, self.profile, self.searches) = (device, driver, profile, searches)
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
    /// is only a cache: it is searched again and rewritten).
    public func load() -> Entry? {
        guard let data = try? Data(contentsOf: file) else { return nil }
        return try? JSONDecoder().decode(Entry.self, from: data)
    }

    /// Writes the entry atomically (temporary file, then rename).
    public func save(_ entry: Entry) throws {
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(entry).write(to: file, options: .atomic)
    }
}
