import OxydraCore

/// A loaded `runner.toml` with the paths it implies.
public struct LoadedRunnerConfig: Sendable {
    public var config: RunnerConfig
    /// Absolute path of the file.
    public var path: String
    public var displayPath: String
    /// Where relative paths in the file resolve: the file's directory, or — for a file inside a
    /// directory named `.oxydra` — that directory's parent (the project root), so the seed README's
    /// `.oxydra/runner.toml` with `config_path = ".oxydra/users/alice.toml"` works as written.
    public var baseDirectory: String
    public var tree: ConfigNode
    public var issues: [ConfigIssue]

    /// `workspace_root` as an absolute path.
    public var workspaceRoot: String { FilePaths.absolute(config.workspaceRoot, relativeTo: baseDirectory) }
    /// `[guest_images] micro_vm_dir`, absolute.
    public var microVMImageDirectory: String {
        FilePaths.absolute(config.guestImages.microVMDirectory, relativeTo: baseDirectory)
    }

    /// Where a relative `users.<id>.config_path` may point, in the order tried: the runner config's
    /// own directory (the seed's table), then the project root (the seed's quick start writes
    /// `config_path = ".oxydra/users/alice.toml"` inside `.oxydra/runner.toml`). Absolute paths are
    /// the one candidate.
    public func userConfigCandidates(_ user: UserID) -> [(path: String, basis: String)] {
        guard let configured = config.users[user.rawValue]?.configPath else { return [] }
        if configured.hasPrefix("/") { return [(FilePaths.standardized(configured), "absolute")] }
        var candidates = [
            (FilePaths.absolute(configured, relativeTo: FilePaths.parent(path)), "the runner config's directory")
        ]
        let fromRoot = FilePaths.absolute(configured, relativeTo: baseDirectory)
        if fromRoot != candidates[0].0 { candidates.append((fromRoot, "the project root")) }
        return candidates
    }

    /// The absolute path of a user's own config file: the first candidate that exists, else the
    /// first (for the error message).
    public func userConfigPath(_ user: UserID) -> String? { userConfigLocation(user)?.path }

    /// ``userConfigPath(_:)`` with the rule that found it.
    public func userConfigLocation(_ user: UserID) -> (path: String, basis: String)? {
        let candidates = userConfigCandidates(user)
        return candidates.first { FileManager.default.fileExists(atPath: $0.path) } ?? candidates.first
    }

    /// The user to act for: `requested` when given (it must be registered), else the only
    /// configured user.
    public func selectUser(_ requested: String?) throws(ConfigError) -> UserID {
        let known = config.users.keys.sorted()
        let location = ConfigSource.file(displayPath)
        guard let requested else {
            if known.count == 1 { return UserID(known[0]) }
            if known.isEmpty {
                throw ConfigError(
                    message: "no users are configured in runner config; add [users.<id>] with config_path",
                    location: location)
            }
            throw ConfigError(
                message: "multiple users configured (\(known.joined(separator: ", "))); pass --user <user_id>",
                location: location)
        }
        let user: UserID
        do {
            user = try UserID.validated(requested)
        } catch {
            throw ConfigError(message: "\(error)", location: nil)
        }
        guard config.users[requested] != nil else {
            throw ConfigError([
                ConfigIssue(
                    path: "users",
                    message: "unknown runner user `\(requested)` (configured: \(known.joined(separator: ", ")))",
                    location: location,
                    hint: Suggestions.question(Suggestions.closest(to: requested, in: known, limit: 1)))
            ])
        }
        return user
    }
}

/// Reads `runner.toml` and per-user files. These are single files (no layering); unknown keys and
/// rule violations are reported with the file name.
public enum RunnerConfigLoader {
    /// The default location, relative to the working directory.
    public static let defaultPath = ".oxydra/runner.toml"

    /// `text` stands in for the file's contents (to validate an edit before it is written).
    public static func load(path: String, display: DisplayPath, text replacement: String? = nil) -> LoadedRunnerConfig {
        let absolute = FilePaths.absolute(path, relativeTo: display.workingDirectory)
        let shown = display.render(absolute)
        let directory = FilePaths.parent(absolute)
        let base = FilePaths.lastComponent(directory) == ".oxydra" ? FilePaths.parent(directory) : directory
        var loaded = LoadedRunnerConfig(
            config: RunnerConfig(), path: absolute, displayPath: shown, baseDirectory: base,
            tree: .table(source: .file(shown)), issues: [])
        do {
            let text: String? =
                if let replacement { replacement } else { try ConfigFiles.read(absolute, source: .file(shown)) }
            guard let text else {
                loaded.issues.append(
                    ConfigIssue(
                        path: "",
                        message: "runner config not found at \(shown); create it (see examples/config/runner.toml) "
                            + "or pass --config <path>",
                        location: nil))
                return loaded
            }
            loaded.tree = try TOMLDocument.parse(text, source: .file(shown))
        } catch {
            loaded.issues += error.issues
            return loaded
        }
        let diagnostics = ConfigDiagnostics(root: loaded.tree, fileOrder: [shown])
        loaded.config = RunnerConfig.read(loaded.tree, diagnostics: diagnostics)
        loaded.config.validate(diagnostics)
        loaded.issues += diagnostics.issues
        return loaded
    }

    /// Reads a user's own file. A missing file is an error that names the registration.
    /// `text` stands in for the file's contents (to validate an edit before it is written).
    public static func loadUser(
        _ user: UserID, of runner: LoadedRunnerConfig, display: DisplayPath, text replacement: String? = nil
    ) -> (
        config: RunnerUserConfig, displayPath: String, issues: [ConfigIssue]
    ) {
        guard let path = runner.userConfigPath(user) else {
            return (
                RunnerUserConfig(), "",
                [
                    ConfigIssue(
                        path: "users", message: "unknown runner user `\(user)`", location: .file(runner.displayPath))
                ]
            )
        }
        let shown = display.render(path)
        do {
            let text: String? =
                if let replacement { replacement } else { try ConfigFiles.read(path, source: .file(shown)) }
            guard let text else {
                return (
                    RunnerUserConfig(), shown,
                    [
                        ConfigIssue(
                            path: "users.\(ConfigPath.renderKey(user.rawValue)).config_path",
                            message:
                                "config file for user `\(user)` not found (users.\(ConfigPath.renderKey(user.rawValue))"
                                + ".config_path; tried "
                                + runner.userConfigCandidates(user).map {
                                    "\(display.render($0.path)) (relative to \($0.basis))"
                                }
                                .joined(separator: ", ") + ")",
                            location: .file(runner.displayPath))
                    ]
                )
            }
            let tree = try TOMLDocument.parse(text, source: .file(shown))
            let diagnostics = ConfigDiagnostics(root: tree, fileOrder: [shown])
            let config = RunnerUserConfig.read(tree, diagnostics: diagnostics)
            config.validate(diagnostics)
            return (config, shown, diagnostics.issues)
        } catch {
            return (RunnerUserConfig(), shown, error.issues)
        }
    }
}
