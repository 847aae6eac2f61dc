import OxydraCore

#if canImport(Glibc)
    import Glibc
#endif

/// Finds Oxydra's executables: `$<VARIABLE>`, then beside the running `runner`, then `PATH`.
public enum ExecutableLocator {
    public static func find(_ name: String, variable: String, environment: [String: String]) -> String? {
        if let explicit = environment[variable], !explicit.isEmpty { return explicit }
        if let own = selfPath() {
            let beside = own[..<(own.lastIndex(of: "/") ?? own.startIndex)] + "/" + name
            if access(beside, X_OK) == 0 { return beside }
        }
        return onPath(name, environment: environment)
    }

    /// The first executable `name` in the directories of `PATH`.
    public static func onPath(_ name: String, environment: [String: String]) -> String? {
        for directory in (environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") {
            let candidate = directory + "/" + name
            if access(candidate, X_OK) == 0 { return String(candidate) }
        }
        return nil
    }

    /// The path of the running executable.
    public static func selfPath() -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard length > 0 else { return CommandLine.arguments.first }
        return String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
