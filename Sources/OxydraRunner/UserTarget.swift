import OxydraConfig
import OxydraCore

#if canImport(Glibc)
    import Glibc
#endif

/// The user a command acts for, with the configuration and the paths of their workspace.
public struct UserTarget: Sendable {
    public var runner: LoadedRunnerConfig
    public var user: UserID
    public var userConfig: RunnerUserConfig
    /// `<workspace_root>/<user>`, absolute.
    public var workspace: String

    public var ipc: String { workspace + "/ipc" }
    public var logs: String { workspace + "/logs" }
    public var marker: String { ipc + "/" + GatewayProtocol.endpointMarkerFile }
    public var controlSocket: String { ipc + "/runner-control.sock" }

    /// Loads the runner config and the user's file; the error output lists every problem.
    public static func resolve(_ context: RunnerContext) -> Result<UserTarget, CommandOutput> {
        let display = context.display
        let runner = RunnerConfigLoader.load(path: context.configPath, display: display)
        if !runner.issues.isEmpty { return .failure(.error(runner.issues.map(\.description).joined(separator: "\n"))) }
        let user: UserID
        do {
            user = try runner.selectUser(context.requestedUser)
        } catch {
            return .failure(.error(error.issues.map(\.description).joined(separator: "\n")))
        }
        let loaded = RunnerConfigLoader.loadUser(user, of: runner, display: display)
        if !loaded.issues.isEmpty { return .failure(.error(loaded.issues.map(\.description).joined(separator: "\n"))) }
        return .success(
            UserTarget(
                runner: runner, user: user, userConfig: loaded.config,
                workspace: workspacePath(of: user, in: runner)))
    }

    /// `<workspace_root>/<user>`, absolute.
    public static func workspacePath(of user: UserID, in runner: LoadedRunnerConfig) -> String {
        FilePaths.standardized(runner.workspaceRoot + "/" + user.rawValue)
    }

    /// How to start this user's guest, for messages.
    public func startHint(_ context: RunnerContext) -> String {
        let tier = userConfig.behavior.sandboxTier ?? runner.config.defaultTier
        return "start it with `runner --config \(context.configPath) --user \(user)"
            + (tier == .process ? " --insecure`" : " start`")
    }

    /// The `NoRunningGuest` error of `--tui` and `ask`.
    public func noRunningGuest(_ context: RunnerContext, detail: String) -> CommandOutput {
        .error(
            "NoRunningGuest: no running guest for user `\(user)` (\(detail); marker: \(context.display.render(marker))); "
                + startHint(context))
    }

    /// Creates the workspace directories, each private to this OS user (0700).
    public func provision() throws(RunnerError) {
        for name in ["", "/shared", "/tmp", "/vault", "/ipc", "/logs", "/.oxydra"] {
            do {
                try FileManager.default.createDirectory(atPath: workspace + name, withIntermediateDirectories: true)
            } catch {
                throw RunnerError("cannot create \(workspace + name): \(error)")
            }
            _ = chmod(workspace + name, 0o700)
        }
    }
}

public struct RunnerError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension CommandOutput {
    /// `runner error: <message>` on standard error, exit code 1.
    public static func error(_ message: String, exitCode: Int32 = 1) -> CommandOutput {
        CommandOutput(standardError: "runner error: \(message)\n", exitCode: exitCode)
    }
}

/// A command can stop early by throwing the output it ends with.
extension CommandOutput: Error {}
