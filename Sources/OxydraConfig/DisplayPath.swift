import OxydraCore

/// Paths as users recognise them in messages: `./.oxydra/agent.toml` under the working directory,
/// `~/.config/oxydra/agent.toml` under the home directory, absolute otherwise.
public struct DisplayPath: Sendable {
    public var workingDirectory: String
    public var homeDirectory: String?

    public init(workingDirectory: String, homeDirectory: String?) {
        self.workingDirectory = FilePaths.standardized(workingDirectory)
        self.homeDirectory = homeDirectory.map(FilePaths.standardized)
    }

    public func render(_ path: String) -> String {
        let absolute = FilePaths.absolute(path, relativeTo: workingDirectory)
        let underWorking = FilePaths.relative(absolute, under: workingDirectory)
        let underHome = homeDirectory.flatMap { FilePaths.relative(absolute, under: $0) }
        // The more specific base wins (a home directory inside the working directory shows as `~`).
        if let underHome, underWorking == nil || underHome.count < underWorking!.count {
            return underHome.isEmpty ? "~" : "~/" + underHome
        }
        if let underWorking { return underWorking.isEmpty ? "." : "./" + underWorking }
        return absolute
    }
}

/// Small, allocation-light path arithmetic on POSIX path strings.
public enum FilePaths {
    /// Joins `path` to `base` unless it is absolute, then removes `.` and `..` components.
    public static func absolute(_ path: String, relativeTo base: String) -> String {
        standardized(path.hasPrefix("/") ? path : base + "/" + path)
    }

    /// Collapses `//`, `.` and `..` (lexically; symlinks are not resolved).
    public static func standardized(_ path: String) -> String {
        var parts: [Substring] = []
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            if component == "." { continue }
            if component == ".." {
                if !parts.isEmpty { parts.removeLast() }
                continue
            }
            parts.append(component)
        }
        let joined = parts.joined(separator: "/")
        return path.hasPrefix("/") ? "/" + joined : (joined.isEmpty ? "." : joined)
    }

    /// `path` relative to `directory` when it lies inside it (`""` when equal), else nil.
    public static func relative(_ path: String, under directory: String) -> String? {
        if path == directory { return "" }
        let prefix = directory == "/" ? "/" : directory + "/"
        guard path.hasPrefix(prefix) else { return nil }
        return String(path.dropFirst(prefix.count))
    }

    public static func parent(_ path: String) -> String {
        let standardized = standardized(path)
        guard let slash = standardized.lastIndex(of: "/") else { return "." }
        if slash == standardized.startIndex { return "/" }
        return String(standardized[..<slash])
    }

    public static func lastComponent(_ path: String) -> String {
        standardized(path).split(separator: "/").last.map(String.init) ?? ""
    }
}
