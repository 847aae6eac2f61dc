import OxydraConfig
import OxydraCore
import OxydraTesting

/// A throwaway machine layout: `system/` stands in for /etc/oxydra, `home/` for $HOME and
/// `project/` for the working directory.
struct ConfigSandbox {
    let root: TemporaryDirectory
    var system: String { root.path + "/system" }
    var home: String { root.path + "/home" }
    var project: String { root.path + "/project" }

    init() throws {
        root = try TemporaryDirectory(prefix: "oxydra-config")
        for directory in ["system", "home/.config/oxydra", "project/.oxydra"] {
            _ = try root.createDirectory(directory)
        }
    }

    enum Layer {
        case system, user, project
        var directory: String {
            switch self {
            case .system: "system"
            case .user: "home/.config/oxydra"
            case .project: "project/.oxydra"
            }
        }
    }

    @discardableResult
    func write(_ text: String, layer: Layer, file: String = "agent.toml") throws -> String {
        try root.write(text, to: "\(layer.directory)/\(file)")
    }

    var environmentBase: [String: String] { ["HOME": home, ConfigSearchPaths.systemDirectoryVariable: system] }

    func loader(environment: [String: String] = [:], overrides: [String] = []) -> AgentConfigLoader {
        AgentConfigLoader.standard(
            environment: environmentBase.merging(environment) { _, new in new }, workingDirectory: project,
            commandLineOverrides: overrides)
    }

    func load(environment: [String: String] = [:], overrides: [String] = []) -> LoadedAgentConfig {
        loader(environment: environment, overrides: overrides).load()
    }

    var display: DisplayPath { DisplayPath(workingDirectory: project, homeDirectory: home) }

    func remove() { root.remove() }
}

/// Decodes one `agent.toml` text on its own (defaults underneath) and returns the issues as text.
func agentIssues(_ toml: String) throws -> [String] {
    let sandbox = try ConfigSandbox()
    defer { sandbox.remove() }
    try sandbox.write(toml, layer: .project)
    return sandbox.load().issues.map(\.description)
}
