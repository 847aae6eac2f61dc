import OxydraConfig
import OxydraCore
import OxydraTesting
import Testing

/// What a container-tier guest receives: the host's effective configuration, written without its
/// secrets and read back by the guest's own loader to exactly the same values.
@Suite("Guest configuration export")
struct GuestConfigExportTests {
    static let inlineKey = "sk-inline-\(UInt32.random(in: 0...UInt32.max))"
    static let headerSecret = "Bearer hdr-\(UInt32.random(in: 0...UInt32.max))"
    static let environmentKey = "sk-env-\(UInt32.random(in: 0...UInt32.max))"

    /// A host with every layer in use; returns the host's load, the export, and the guest's load.
    func roundTrip() throws -> (host: LoadedAgentConfig, export: GuestConfigExport, guest: LoadedAgentConfig) {
        let host = try ConfigSandbox()
        defer { host.remove() }
        try host.write("[runtime]\nmax_turns = 9\n", layer: .system)
        try host.write("operator words\n", layer: .system, file: "SYSTEM.md")
        try host.write(
            """
            [providers.registry.My-Proxy]
            provider_type = "openai"
            base_url = "https://proxy.example/v1"
            api_key = "\(Self.inlineKey)"
            skip_catalog_validation = true
            [providers.registry.My-Proxy.extra_headers]
            Authorization = "\(Self.headerSecret)"
            X-Team = "blue"
            [providers.registry.other]
            provider_type = "anthropic"
            base_url = "https://anthropic.example"
            api_key_env = "OTHER_KEY"
            """, layer: .user, file: "providers.toml")
        try host.write(
            #"{"format_version": 1, "providers": {"ollama": {"models": [{"id": "qwen3:8b", "context_tokens": 40960}]}}}"#,
            layer: .user, file: "model_catalog.json")
        try host.write(
            "[selection]\nprovider = \"My-Proxy\"\nmodel = \"m\"\n[tools.shell]\nenv_keys = [\"PROJECT\"]\n",
            layer: .project)
        let environment = [
            "OXYDRA__RUNTIME__TURN_TIMEOUT_SECS": "77", "OTHER_KEY": Self.environmentKey, "UNRELATED": "x",
        ]
        let loader = host.loader(environment: environment, overrides: ["runtime.max_cost=1.5"])
        let loaded = loader.load()
        try #require(loaded.issues.isEmpty, "\(loaded.issues)")
        let export = GuestConfigExport.make(
            loaded, paths: loader.paths, environment: host.environmentBase.merging(environment) { $1 })

        // The guest's side: the files under its own search paths, the variables in its environment.
        let guest = try ConfigSandbox()
        defer { guest.remove() }
        for (name, text) in export.files {
            let path =
                name.hasPrefix("home/") || name.hasPrefix("project/") ? name : "system/" + name
            try guest.root.write(text, to: path)
        }
        let guestLoad = AgentConfigLoader.standard(
            environment: guest.environmentBase.merging(export.environment) { $1 }, workingDirectory: guest.project
        ).load()
        return (loaded, export, guestLoad)
    }

    @Test func theGuestLoadsExactlyWhatTheHostResolved() throws {
        let (host, export, guest) = try roundTrip()
        #expect(guest.issues.isEmpty, "\(guest.issues)")
        #expect(guest.config == host.config)
        #expect(guest.config.runtime.maxTurns == 9)
        #expect(guest.config.runtime.turnTimeoutSecs == 77)
        #expect(export.files["SYSTEM.md"] == "operator words\n")
        #expect(export.files["home/.config/oxydra/model_catalog.json"]?.contains("qwen3:8b") == true)
    }

    @Test func secretsTravelOnlyAsEnvironment() throws {
        let (_, export, _) = try roundTrip()
        for (name, text) in export.files {
            for secret in [Self.inlineKey, Self.headerSecret, Self.environmentKey] {
                #expect(!text.contains(secret), "\(name) holds a secret")
            }
        }
        #expect(export.environment["OXYDRA__PROVIDERS__REGISTRY__MY-PROXY__API_KEY"] == Self.inlineKey)
        #expect(
            export.environment["OXYDRA__PROVIDERS__REGISTRY__MY-PROXY__EXTRA_HEADERS__AUTHORIZATION"]
                == Self.headerSecret)
        #expect(export.environment["OTHER_KEY"] == Self.environmentKey)
        // Only what the configuration names: not the rest of the runner's environment.
        #expect(export.environment["UNRELATED"] == nil)
        #expect(export.environment["HOME"] == nil)
        #expect(export.files["agent.toml"]?.contains("X-Team") == true)
    }

    @Test func loopbackProvidersAreReachedThroughTheHost() {
        #expect(
            GuestConfigExport.hostReachable("http://127.0.0.1:11434/v1")
                == "http://host.docker.internal:11434/v1")
        #expect(GuestConfigExport.hostReachable("http://localhost:8080") == "http://host.docker.internal:8080")
        #expect(GuestConfigExport.hostReachable("http://[::1]:8000/v1") == "http://host.docker.internal:8000/v1")
        #expect(GuestConfigExport.hostReachable("https://api.openai.com/v1") == nil)
        #expect(GuestConfigExport.hostReachable("http://127.0.0.1") == "http://host.docker.internal")
        // A keyless local server stays keyless from inside the container.
        #expect(
            !CredentialResolver.requiresKey(
                .init(type: .openai, baseURL: "http://host.docker.internal:1"), type: .openai))
    }
}
