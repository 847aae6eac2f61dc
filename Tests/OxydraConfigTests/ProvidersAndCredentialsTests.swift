import OxydraConfig
import OxydraCore
import OxydraTesting
import Testing

@Suite("Provider endpoints and credentials")
struct ProvidersAndCredentialsTests {
    @Test(arguments: [
        (ProviderType.openai, nil as String?, "https://api.openai.com"),
        (.openai, "https://api.openai.com/v1", "https://api.openai.com"),
        (.openai, "https://api.openai.com/v1/", "https://api.openai.com"),
        (.openai, "  https://api.openai.com/  ", "https://api.openai.com"),
        (.openai, "https://openrouter.ai/api/v1", "https://openrouter.ai/api"),
        (.openai, "https://openrouter.ai/api", "https://openrouter.ai/api"),
        (.openai, "http://127.0.0.1:11434/v1", "http://127.0.0.1:11434"),
        (.openai, "http://localhost:8080", "http://localhost:8080"),
        (.openaiResponses, "https://api.openai.com/V1", "https://api.openai.com"),
        (.anthropic, "https://api.anthropic.com/v1", "https://api.anthropic.com"),
        (.gemini, nil, "https://generativelanguage.googleapis.com"),
        (.gemini, "https://generativelanguage.googleapis.com/v1beta", "https://generativelanguage.googleapis.com"),
    ])
    func baseURLNormalisation(_ type: ProviderType, _ configured: String?, _ expected: String) {
        var entry = ProviderEntry(type: type)
        entry.baseURL = configured
        #expect(entry.normalizedBaseURL(for: type) == expected)
    }

    private func resolve(_ entry: ProviderEntry, _ environment: [String: String]) -> String? {
        CredentialResolver.resolve(
            entry, type: entry.providerType!, environment: environment, keySource: .file("./.oxydra/agent.toml")
        )?.origin
    }

    @Test func resolutionOrder() {
        var entry = ProviderEntry(type: .openai)
        entry.apiKeyEnv = "TEAM_OPENAI_KEY"
        let everything = ["TEAM_OPENAI_KEY": "team", "OPENAI_API_KEY": "standard", "API_KEY": "fallback"]

        entry.apiKey = "explicit"
        #expect(resolve(entry, everything) == "api_key in ./.oxydra/agent.toml")
        entry.apiKey = "   "
        #expect(resolve(entry, everything) == "env TEAM_OPENAI_KEY")
        #expect(resolve(entry, everything.merging(["TEAM_OPENAI_KEY": " "]) { _, b in b }) == "env OPENAI_API_KEY")
        #expect(resolve(entry, ["API_KEY": "fallback"]) == "env API_KEY")
        #expect(resolve(entry, [:]) == nil)

        let value = CredentialResolver.resolve(
            entry, type: .openai, environment: ["OPENAI_API_KEY": "  sk-trim  "], keySource: .builtInDefault)
        #expect(value?.value == "sk-trim")
        #expect("\(value!)" == "credential from env OPENAI_API_KEY")
    }

    @Test(arguments: [
        (ProviderType.openai, "OPENAI_API_KEY"), (.openaiResponses, "OPENAI_API_KEY"),
        (.anthropic, "ANTHROPIC_API_KEY"), (.gemini, "GEMINI_API_KEY"),
    ])
    func standardVariables(_ type: ProviderType, _ variable: String) {
        #expect(CredentialResolver.variables(for: ProviderEntry(type: type), type: type) == [variable, "API_KEY"])
        #expect(
            CredentialResolver.resolve(
                ProviderEntry(type: type), type: type, environment: [variable: "k"], keySource: .builtInDefault)?.origin
                == "env \(variable)")
    }

    @Test func standardVariablesAreOnlySentToTheProvidersOwnEndpoint() {
        var entry = ProviderEntry(type: .openai)
        entry.baseURL = "https://openrouter.ai/api/v1"
        #expect(CredentialResolver.variables(for: entry, type: .openai) == ["API_KEY"])
        #expect(resolve(entry, ["OPENAI_API_KEY": "sk-openai"]) == nil)
        entry.apiKeyEnv = "OPENROUTER_API_KEY"
        #expect(
            resolve(entry, ["OPENAI_API_KEY": "sk-openai", "OPENROUTER_API_KEY": "or"]) == "env OPENROUTER_API_KEY")
        entry.baseURL = "https://api.openai.com/v1"
        #expect(
            CredentialResolver.variables(for: entry, type: .openai) == [
                "OPENROUTER_API_KEY", "OPENAI_API_KEY", "API_KEY",
            ])
    }

    @Test func missingKeySaysWhatToSet() {
        var entry = ProviderEntry(type: .anthropic)
        entry.apiKeyEnv = "CLAUDE_KEY"
        #expect {
            try CredentialResolver.require(
                "anthropic", entry: entry, type: .anthropic, environment: [:], keySource: .builtInDefault)
        } throws: { error in
            "\(error)"
                == "no API key for provider `anthropic`: set `api_key` in [providers.registry.anthropic], "
                + "or export one of CLAUDE_KEY, ANTHROPIC_API_KEY, API_KEY"
        }
    }

    @Test(arguments: [
        ("http://127.0.0.1:11434", false), ("http://localhost:8080/v1", false), ("http://[::1]:8000", false),
        ("http://127.1.2.3:1234", false), ("https://api.openai.com", true), ("http://192.168.1.20:8000", true),
    ])
    func loopbackServersNeedNoKey(_ url: String, _ required: Bool) throws {
        var entry = ProviderEntry(type: .openai)
        entry.baseURL = url
        #expect(CredentialResolver.requiresKey(entry, type: .openai) == required)
        let credential = try? CredentialResolver.require(
            "local", entry: entry, type: .openai, environment: [:], keySource: .builtInDefault)
        if !required { #expect(credential == nil) }
    }
}

@Suite("Catalog files and model selection")
struct ModelSelectionTests {
    @Test func userCatalogFilesExtendTheBuiltInOne() throws {
        let sandbox = try ConfigSandbox()
        defer { sandbox.remove() }
        try sandbox.write(
            #"{"format_version": 1, "providers": {"ollama": {"models": [{"id": "qwen3:8b", "context_tokens": 40960}]}}}"#,
            layer: .user, file: "model_catalog.json")
        try sandbox.write(
            #"{"format_version": 1, "providers": {"ollama": {"models": [{"id": "qwen3:8b", "context_tokens": 32768}]}}}"#,
            layer: .project, file: "model_catalog.json")
        let loader = sandbox.loader()
        let (catalog, files) = try CatalogLoader.load(paths: loader.paths, display: sandbox.display)
        #expect(files == ["~/.config/oxydra/model_catalog.json", "./.oxydra/model_catalog.json"])
        #expect(try catalog.model("qwen3:8b", provider: "ollama").capabilities.contextTokens == 32768)
        #expect(try catalog.model("gpt-4o", provider: "openai").id == "gpt-4o")

        try sandbox.write(
            """
            [selection]
            provider = "local"
            model = "qwen3:8b"
            [providers.registry.local]
            provider_type = "openai"
            base_url = "http://127.0.0.1:11434"
            catalog_provider = "ollama"
            """, layer: .project)
        let config = try sandbox.load().validated()
        #expect(try ModelSelection.resolve(config, catalog: catalog).capabilities.contextTokens == 32768)
    }

    @Test func brokenCatalogFileIsNamed() throws {
        let sandbox = try ConfigSandbox()
        defer { sandbox.remove() }
        try sandbox.write("{not json", layer: .project, file: "model_catalog.json")
        #expect {
            try CatalogLoader.load(paths: sandbox.loader().paths, display: sandbox.display)
        } throws: { error in
            "\(error)".hasPrefix("invalid model catalog ./.oxydra/model_catalog.json: not valid JSON")
        }
    }

    @Test func unknownModelIsRejectedBeforeAnyNetworkIO() throws {
        let sandbox = try ConfigSandbox()
        defer { sandbox.remove() }
        try sandbox.write("[selection]\nprovider = \"anthropic\"\nmodel = \"claude-sonet-4-5\"", layer: .project)
        let config = try sandbox.load().validated()
        #expect {
            try ModelSelection.resolve(config, catalog: .builtIn)
        } throws: { error in
            "\(error)".hasPrefix(
                "unknown model `claude-sonet-4-5` for catalog provider `anthropic`; did you mean `claude-sonnet-4-5`")
        }
    }

    @Test func skipFlagGlobalOrPerEntry() throws {
        let sandbox = try ConfigSandbox()
        defer { sandbox.remove() }
        try sandbox.write(
            """
            [selection]
            provider = "vllm"
            model = "meta-llama/Llama-3.3-70B-Instruct"
            [providers.registry.vllm]
            provider_type = "openai"
            base_url = "http://10.0.0.5:8000/v1"
            skip_catalog_validation = true
            max_context_tokens = 65536
            """, layer: .project)
        let model = try ModelSelection.resolve(try sandbox.load().validated(), catalog: .builtIn)
        #expect(model.isSynthetic)
        #expect(model.capabilities.contextTokens == 65536)

        try sandbox.write(
            "[selection]\nmodel = \"gpt-9-preview\"\n[catalog]\nskip_catalog_validation = true", layer: .project)
        #expect(try ModelSelection.resolve(try sandbox.load().validated(), catalog: .builtIn).isSynthetic)
    }
}
