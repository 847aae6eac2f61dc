import OxydraConfig
import OxydraCore

/// `[mounts]` must never give the agent the runner's own files: a `shared` that contains the
/// project's `.oxydra/` would let a shell command read `agent.toml` (with its API key), rewrite
/// `SYSTEM.md`, or talk to `runner-control.sock`. Such mounts are refused at `config check` and at
/// start, and what is protected is also masked inside the shell sandbox as a second layer.
public enum MountSafety {
    /// What no mount may contain or lie inside: the runner config directory, the agent
    /// configuration directories, the workspace root's users' `.oxydra/`, `ipc/` and `logs/`
    /// (symbolic links resolved).
    public static func protectedPaths(context: RunnerContext, runner: LoadedRunnerConfig) -> [String] {
        var paths = [FilePaths.parent(FilePaths.absolute(context.configPath, relativeTo: context.workingDirectory))]
        paths += context.agentLoader.paths.directories
        let root = runner.workspaceRoot
        let users = Set(runner.config.users.keys).union(context.requestedUser.map { [$0] } ?? [])
        for user in users.sorted() {
            for name in [".oxydra", "ipc", "logs"] { paths.append(root + "/" + user + "/" + name) }
        }
        var seen: Set<String> = []
        return paths.map { HostPaths.resolved($0) }.filter { seen.insert($0).inserted }
    }

    /// One message per mount that contains or lies inside a protected path.
    public static func problems(
        user: UserID, mounts: MountOverrides, workspace: String, protected: [String], display: DisplayPath
    ) -> [String] {
        var problems: [String] = []
        for (name, value) in [("shared", mounts.shared), ("tmp", mounts.tmp), ("vault", mounts.vault)] {
            guard let value else { continue }
            let mount = HostPaths.resolved(FilePaths.absolute(value, relativeTo: workspace))
            for path in protected where HostPaths.overlap(mount, path) {
                let relation = HostPaths.contains(mount, path) ? "contains" : "lies inside"
                problems.append(
                    "mounts.\(name) of user `\(user)` (\(display.render(mount))) \(relation) \(display.render(path)), "
                        + "which holds Oxydra's configuration, control socket or logs; the agent must never reach "
                        + "it — mount a directory beside it instead (e.g. a dedicated project subdirectory)")
                break
            }
        }
        return problems
    }
}
