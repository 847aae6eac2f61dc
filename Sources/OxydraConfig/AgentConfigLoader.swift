import OxydraCore

/// One config file the loader looked for.
public struct ConfigFileReport: Sendable, Hashable {
    /// Absolute path.
    public var path: String
    /// As shown in messages (`./.oxydra/agent.toml`).
    public var displayPath: String
    public var found: Bool
}

/// The result of loading the agent configuration: the typed config, the merged tree with the source
/// of every value, the files consulted, and every problem found.
public struct LoadedAgentConfig: Sendable {
    public var config: AgentConfig
    /// Layers merged in precedence order; each node's `source` is the layer that set it.
    public var tree: ConfigNode
    public var files: [ConfigFileReport]
    /// `OXYDRA__…` variables that were applied, by name.
    public var environmentVariables: [String]
    public var issues: [ConfigIssue]

    /// The config, or every problem at once.
    public func validated() throws(ConfigError) -> AgentConfig {
        if !issues.isEmpty { throw ConfigError(issues) }
        return config
    }

    /// The layer that set `path`, or `.builtInDefault`.
    public func source(of path: [String]) -> ConfigSource { tree.node(at: path)?.source ?? .builtInDefault }
}

/// Loads `agent.toml` + `providers.toml` from every layer, lowest precedence first:
/// built-in defaults, `/etc/oxydra/`, `~/.config/oxydra/`, `./.oxydra/`, `OXYDRA__…` environment
/// variables, `--set` overrides. Tables deep-merge; scalars and arrays replace.
public struct AgentConfigLoader: Sendable {
    public static let fileNames = ["agent.toml", "providers.toml"]

    public var paths: ConfigSearchPaths
    public var environment: [String: String]
    public var commandLineOverrides: [String]
    public var display: DisplayPath
    /// Texts that stand in for files (absolute path → contents), to validate an edit before it is
    /// written.
    public var replacements: [String: String] = [:]

    public init(
        paths: ConfigSearchPaths, environment: [String: String], commandLineOverrides: [String] = [],
        display: DisplayPath
    ) {
        self.paths = paths
        self.environment = environment
        self.commandLineOverrides = commandLineOverrides
        self.display = display
    }

    /// The standard search paths for this process (environment, working directory, home).
    public static func standard(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        workingDirectory: String = FileManager.default.currentDirectoryPath, commandLineOverrides: [String] = []
    ) -> AgentConfigLoader {
        AgentConfigLoader(
            paths: ConfigSearchPaths.standard(environment: environment, workingDirectory: workingDirectory),
            environment: environment, commandLineOverrides: commandLineOverrides,
            display: DisplayPath(workingDirectory: workingDirectory, homeDirectory: environment["HOME"]))
    }

    /// Reads and merges every layer and validates the result. Never throws: problems are in `issues`.
    public func load() -> LoadedAgentConfig {
        var issues: [ConfigIssue] = []
        var files: [ConfigFileReport] = []
        var tree = ConfigNode.table(source: .builtInDefault)
        let canonicalizing = ConfigDiagnostics(root: tree)

        for directory in paths.directories {
            for name in Self.fileNames {
                let path = directory + "/" + name
                let shown = display.render(path)
                let source = ConfigSource.file(shown)
                do {
                    let replacement = replacements[path]
                    let text: String? =
                        if let replacement { replacement } else { try ConfigFiles.read(path, source: source) }
                    guard let text else {
                        files.append(ConfigFileReport(path: path, displayPath: shown, found: false))
                        continue
                    }
                    files.append(ConfigFileReport(path: path, displayPath: shown, found: true))
                    let layer = try TOMLDocument.parse(text, source: source)
                    tree = tree.merged(
                        with: AgentConfig.canonicalizingProviderAliases(layer, diagnostics: canonicalizing))
                } catch {
                    issues += error.issues
                }
            }
        }

        let environmentLayer = EnvironmentOverrides.layer(from: environment, base: tree)
        issues += environmentLayer.issues
        tree = tree.merged(
            with: AgentConfig.canonicalizingProviderAliases(environmentLayer.layer, diagnostics: canonicalizing))

        let commandLineLayer = CommandLineOverrides.layer(from: commandLineOverrides)
        issues += commandLineLayer.issues
        tree = tree.merged(
            with: AgentConfig.canonicalizingProviderAliases(commandLineLayer.layer, diagnostics: canonicalizing))
        issues += canonicalizing.issues

        let diagnostics = ConfigDiagnostics(root: tree, fileOrder: files.map(\.displayPath))
        let config = AgentConfig.read(tree, diagnostics: diagnostics)
        config.validate(diagnostics)
        issues += diagnostics.issues

        return LoadedAgentConfig(
            config: config, tree: tree, files: files,
            environmentVariables: environment.keys.filter { $0.hasPrefix(EnvironmentOverrides.prefix) }.sorted(),
            issues: issues)
    }
}
