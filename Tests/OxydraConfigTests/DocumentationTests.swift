import OxydraConfig
import OxydraCore
import Testing

/// Every key the schema accepts is documented, and every documented example file loads.
@Suite("Documentation matches the schema")
struct DocumentationTests {
    private func documentedKeys(of root: ConfigNode) -> [String] {
        root.leaves().map { path, _ in
            // Dynamic table keys are written as <name> / <id> in the reference.
            var generic = path
            if generic.count > 2, generic[0] == "providers", generic[1] == "registry" { generic[2] = "<name>" }
            if generic.count > 1, generic[0] == "users" { generic[1] = "<id>" }
            if generic.count > 1, generic[0] == "credential_refs" { generic[1] = "<name>" }
            if let index = generic.firstIndex(of: "extra_headers") { generic = Array(generic[...index]) }
            return generic.joined(separator: ".")
        }
    }

    @Test func everyKeyIsInTheConfigurationReference() throws {
        let reference = String(
            decoding: try #require(FileManager.default.contents(atPath: packageRoot + "/docs/configuration.md")),
            as: UTF8.self)

        var agent = AgentConfig()
        agent.runtime.maxCost = 1
        agent.memory.remoteURL = "x"
        agent.memory.authToken = "x"
        var entry = ProviderEntry(type: .openai)
        entry.apiKey = "x"
        entry.apiKeyEnv = "X"
        entry.extraHeaders = HeaderMap(["X": "y"])
        entry.catalogProvider = "x"
        entry.skipCatalogValidation = true
        entry.maxContextTokens = 1
        entry.maxOutputTokens = 1
        entry.inputModalities = [.image]
        entry.reasoning = true
        agent.providers.registry = ["custom": entry]

        var runner = RunnerConfig()
        runner.configVersion = .current
        var registration = UserRegistration()
        registration.configPath = "x"
        runner.users = ["alice": registration]

        var user = RunnerUserConfig()
        user.configVersion = .current
        user.mounts.shared = "x"
        user.mounts.tmp = "x"
        user.mounts.vault = "x"
        user.resources.maxVCPUs = 1
        user.resources.maxMemoryMiB = 1
        user.resources.maxProcesses = 1
        user.credentialRefs = ["github": "x"]
        user.behavior.sandboxTier = .process
        user.behavior.shellEnabled = true
        user.behavior.browserEnabled = true
        user.channels.telegram.botTokenEnv = "X"

        var keys: [String] = []
        for tree in [agent.encode(), runner.encode(), user.encode()] { keys += documentedKeys(of: try #require(tree)) }
        #expect(keys.count >= 50)
        for key in Set(keys) {
            #expect(reference.contains("`\(key)`"), "docs/configuration.md does not document `\(key)`")
        }
    }
}
