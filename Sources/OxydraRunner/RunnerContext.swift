import OxydraConfig
import OxydraCore

/// What every runner command needs: where the runner config is, which user, and the process
/// environment (passed in so tests can run commands without touching the real one).
public struct RunnerContext: Sendable {
    /// `--config`; relative to `workingDirectory`.
    public var configPath: String
    /// `--user`; nil selects the only configured user.
    public var requestedUser: String?
    /// `--set key=value` overrides for the agent config.
    public var overrides: [String]
    public var environment: [String: String]
    public var workingDirectory: String

    public init(
        configPath: String = RunnerConfigLoader.defaultPath, requestedUser: String? = nil, overrides: [String] = [],
        environment: [String: String] = ProcessInfo.processInfo.environment,
        workingDirectory: String = FileManager.default.currentDirectoryPath
    ) {
        self.configPath = configPath
        self.requestedUser = requestedUser
        self.overrides = overrides
        self.environment = environment
        self.workingDirectory = workingDirectory
    }

    public var display: DisplayPath {
        DisplayPath(workingDirectory: workingDirectory, homeDirectory: environment["HOME"])
    }

    /// The project the runner config belongs to: the directory holding its `.oxydra/` when the
    /// file lives in one (`runner --config /srv/p/.oxydra/runner.toml` from anywhere is project
    /// `/srv/p`), else the working directory. The agent config's project layer
    /// (`<project>/.oxydra/agent.toml`) is read there, and a process-tier guest runs there.
    public var projectDirectory: String {
        let directory = FilePaths.parent(FilePaths.absolute(configPath, relativeTo: workingDirectory))
        return FilePaths.lastComponent(directory) == ".oxydra" ? FilePaths.parent(directory) : workingDirectory
    }

    public var agentLoader: AgentConfigLoader {
        AgentConfigLoader(
            paths: ConfigSearchPaths.standard(environment: environment, workingDirectory: projectDirectory),
            environment: environment, commandLineOverrides: overrides, display: display)
    }
}

/// Text a command produced and how it ended. Executables print it; tests assert on it.
public struct CommandOutput: Sendable, Hashable {
    public var standardOutput: String
    public var standardError: String
    public var exitCode: Int32

    public init(standardOutput: String = "", standardError: String = "", exitCode: Int32 = 0) {
        self.standardOutput = standardOutput
        self.standardError = standardError
        self.exitCode = exitCode
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

extension CommandOutput {
    /// Writes the output to file descriptors 1 and 2 and exits with the code.
    public func emitAndExit() -> Never {
        StandardStreams.write(standardOutput, to: 1)
        StandardStreams.write(standardError, to: 2)
        exit(exitCode)
    }
}
