import OxydraCore

/// The directories searched for layered config files, lowest precedence first.
public struct ConfigSearchPaths: Sendable, Hashable {
    /// `/etc/oxydra` (override with `OXYDRA_SYSTEM_CONFIG_DIR`, for packaging and tests).
    public var systemDirectory: String
    /// `$XDG_CONFIG_HOME/oxydra`, else `~/.config/oxydra`; nil without a home directory.
    public var userDirectory: String?
    /// `./.oxydra` of the working directory.
    public var projectDirectory: String

    public init(systemDirectory: String, userDirectory: String?, projectDirectory: String) {
        self.systemDirectory = systemDirectory
        self.userDirectory = userDirectory
        self.projectDirectory = projectDirectory
    }

    public static let systemDirectoryVariable = "OXYDRA_SYSTEM_CONFIG_DIR"

    /// The standard locations for `environment` and `workingDirectory`.
    public static func standard(environment: [String: String], workingDirectory: String) -> ConfigSearchPaths {
        let system = environment[systemDirectoryVariable].flatMap { $0.isEmpty ? nil : $0 } ?? "/etc/oxydra"
        var user: String?
        if let xdg = environment["XDG_CONFIG_HOME"], xdg.hasPrefix("/") {
            user = xdg + "/oxydra"
        } else if let home = environment["HOME"], !home.isEmpty {
            user = home + "/.config/oxydra"
        }
        return ConfigSearchPaths(
            systemDirectory: FilePaths.absolute(system, relativeTo: workingDirectory),
            userDirectory: user.map { FilePaths.standardized($0) },
            projectDirectory: FilePaths.absolute(".oxydra", relativeTo: workingDirectory))
    }

    /// The directories in precedence order (lowest first).
    public var directories: [String] { [systemDirectory] + (userDirectory.map { [$0] } ?? []) + [projectDirectory] }
}

/// Reading files for the loaders: absent files are normal, unreadable ones are errors.
enum ConfigFiles {
    /// The file's text; nil when it does not exist.
    static func read(_ path: String, source: ConfigSource) throws(ConfigError) -> String? {
        var isDirectory = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return nil }
        if isDirectory {
            throw ConfigError(message: "expected a file but found a directory", location: source)
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(message: "cannot read the file (check its permissions)", location: source)
        }
        guard let text = String(validating: data, as: UTF8.self) else {
            throw ConfigError(message: "the file is not valid UTF-8", location: source)
        }
        return text
    }
}
