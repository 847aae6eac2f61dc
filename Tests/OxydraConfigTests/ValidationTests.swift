import OxydraConfig
import OxydraCore
import OxydraTesting
import Testing

private let file = "./.oxydra/agent.toml"

@Suite("Agent config validation messages")
struct ValidationTests {
    @Test(arguments: [
        // config_version
        (
            "config_version = \"v1\"",
            "config_version \"v1\" is not a version number; use \"1.0.0\" (MAJOR[.MINOR[.PATCH]], digits only) in \(file)"
        ),
        (
            "config_version = \"2.0.0\"",
            "config_version \"2.0.0\" is not supported; this Oxydra reads config version 1.x (e.g. \"1.0.0\") in \(file)"
        ),
        (
            "config_version = 2",
            "config_version \"2\" is not supported; this Oxydra reads config version 1.x (e.g. \"1.0.0\") in \(file)"
        ),
        (
            "config_version = \"1..0\"",
            "config_version \"1..0\" is not a version number; use \"1.0.0\" (MAJOR[.MINOR[.PATCH]], digits only) in \(file)"
        ),
        // selection
        ("[selection]\nmodel = \"  \"", "selection.model must not be empty (got \"  \") in \(file)"),
        ("[selection]\nprovider = \"\"", "selection.provider must not be empty (got \"\") in \(file)"),
        (
            "[selection]\nprovider = \"openia\"",
            "selection.provider \"openia\" is not a configured provider (known: anthropic, gemini, openai) in \(file); did you mean `openai`?"
        ),
        (
            "[selection]\nprovider = \"mine\"",
            "selection.provider \"mine\" is not a configured provider (known: anthropic, gemini, openai) in \(file); add [providers.registry.mine] with a provider_type"
        ),
        (
            "[selection]\nfallbacks = [{provider = \"antropic\", model = \"claude-haiku-4-5\"}]",
            "selection.fallbacks[0].provider \"antropic\" is not a configured provider (known: anthropic, gemini, openai) in \(file); did you mean `anthropic`?"
        ),
        (
            "[selection]\nfallbacks = [{provider = \"anthropic\"}]",
            "selection.fallbacks[0].model is required in \(file)"
        ),
        ("[budget]\ndaily_usd = 0", "budget.daily_usd must be a finite number greater than 0 (got 0.0) in \(file)"),
        ("[sessions]\ntitle_model = \" \"", "sessions.title_model must not be empty (got \" \") in \(file)"),
        // runtime
        ("[runtime]\nturn_timeout_secs = 0", "runtime.turn_timeout_secs must be greater than 0 (got 0) in \(file)"),
        ("[runtime]\nmax_turns = -1", "runtime.max_turns must be greater than 0 (got -1) in \(file)"),
        ("[runtime]\nmax_turns = \"8\"", "runtime.max_turns must be an integer, got a string \"8\" in \(file)"),
        ("[runtime]\nmax_cost = 0", "runtime.max_cost must be a finite number greater than 0 (got 0.0) in \(file)"),
        ("[runtime]\nmax_cost = nan", "runtime.max_cost must be a finite number greater than 0 (got nan) in \(file)"),
        (
            "[runtime.context_budget]\ntrigger_ratio = 1.5",
            "runtime.context_budget.trigger_ratio must be between 0.0 and 1.0 (got 1.5) in \(file)"
        ),
        (
            "[runtime.context_budget]\nsafety_buffer_tokens = 0",
            "runtime.context_budget.safety_buffer_tokens must be greater than 0 (got 0) in \(file)"
        ),
        (
            "[runtime.context_budget]\nfallback_max_context_tokens = 0",
            "runtime.context_budget.fallback_max_context_tokens must be greater than 0 (got 0) in \(file)"
        ),
        (
            "[runtime.summarization]\ntarget_ratio = -0.1",
            "runtime.summarization.target_ratio must be between 0.0 and 1.0 (got -0.1) in \(file)"
        ),
        (
            "[runtime.summarization]\nmin_turns = 0",
            "runtime.summarization.min_turns must be greater than 0 (got 0) in \(file)"
        ),
        ("runtime = 5", "runtime must be a table, got an integer 5 in \(file)"),
        // memory
        ("[memory]\ndb_path = \"\"", "memory.db_path must not be empty (got \"\") in \(file)"),
        ("[memory.retrieval]\ntop_k = 0", "memory.retrieval.top_k must be greater than 0 (got 0) in \(file)"),
        (
            "[memory.retrieval]\nvector_weight = 0.6\nfts_weight = 0.3",
            "memory.retrieval weights must sum to 1.0 (vector_weight 0.6 + fts_weight 0.3 = 0.9) in \(file)"
        ),
        (
            "[memory.retrieval]\nvector_weight = 1.2",
            "memory.retrieval.vector_weight must be between 0.0 and 1.0 (got 1.2) in \(file)"
        ),
        (
            "[memory]\nenabled = true\nremote_url = \"libsql://db.example\"\nauth_token = \"t\"",
            "memory.remote_url is not supported yet (no remote memory store in this build); remove it to use the "
                + "local database at memory.db_path in \(file)"
        ),
        // reliability
        ("[reliability]\nmax_attempts = 0", "reliability.max_attempts must be greater than 0 (got 0) in \(file)"),
        ("[reliability]\nbackoff_base_ms = 0", "reliability.backoff_base_ms must be greater than 0 (got 0) in \(file)"),
        (
            "[reliability]\nbackoff_base_ms = 3000",
            "reliability.backoff_base_ms (3000) must not exceed reliability.backoff_max_ms (2000) in \(file)"
        ),
        (
            "[reliability]\njitter = 1",
            "reliability.jitter must be a boolean (true or false), got an integer 1 in \(file)"
        ),
        // unknown keys
        ("[selecton]\nmodel = \"x\"", "unknown key selecton in \(file); did you mean `selection`?"),
        ("[runtime]\nmax_turn = 3", "unknown key runtime.max_turn in \(file); did you mean `runtime.max_turns`?"),
        ("[runtime]\nzzzzzz = 3", "unknown key runtime.zzzzzz in \(file)"),
        (
            "[providers.registry.openai]\nbase_ulr = \"https://x\"",
            "unknown key providers.registry.openai.base_ulr in \(file); did you mean `providers.registry.openai.base_url`?"
        ),
        // providers
        (
            "[providers.registry.x]\nbase_url = \"https://x.example\"",
            "providers.registry.x.provider_type is required; use one of \"openai\", \"openai_responses\", \"anthropic\", \"gemini\" in \(file)"
        ),
        (
            "[providers.registry.x]\nprovider_type = \"opneai\"",
            "providers.registry.x.provider_type must be one of \"openai\", \"openai_responses\", \"anthropic\", \"gemini\", got \"opneai\" in \(file); did you mean `openai`?"
        ),
        (
            "[providers.openai]\nbase_url = \"ftp://x\"",
            "providers.registry.openai.base_url must be an http:// or https:// URL with a host (got \"ftp://x\") in \(file)"
        ),
        (
            "[providers.openai]\nbase_url = \"https://api.openai.com?x=1\"",
            "providers.registry.openai.base_url must not contain a query string or fragment (got \"https://api.openai.com?x=1\") in \(file)"
        ),
        (
            "[providers.registry.openai]\napi_key_env = \"MY-KEY\"",
            "providers.registry.openai.api_key_env must be an environment variable name (letters, digits and _) (got \"MY-KEY\") in \(file)"
        ),
        (
            "[providers.registry.openai]\nmax_context_tokens = 0",
            "providers.registry.openai.max_context_tokens must be greater than 0 (got 0) in \(file)"
        ),
        (
            "[providers.registry.openai.extra_headers]\n\"X-Title\" = \"a\\nb\"",
            "providers.registry.openai.extra_headers.X-Title must not contain line breaks in \(file)"
        ),
        (
            "[providers.openai]\nbase_url = \"https://a.example\"\n[providers.registry.openai]\nbase_url = \"https://b.example\"",
            "providers.openai.base_url and providers.registry.openai.base_url are both set; keep one in \(file)"
        ),
        (
            "[providers.registry.x]\nprovider_type = \"openai\"\ninput_modalities = [\"smell\"]",
            "providers.registry.x.input_modalities[0] must be one of \"text\", \"image\", \"audio\", \"video\", \"pdf\", \"document\", got \"smell\" in \(file)"
        ),
        // TOML itself
        (
            "[runtime]\nmax_turns = 1979-05-27",
            "runtime.max_turns is a TOML date/time; no Oxydra key takes one (quote it as a string) in \(file)"
        ),
    ])
    func rule(_ toml: String, _ message: String) throws {
        #expect(try agentIssues(toml) == [message])
    }

    @Test(arguments: [
        "config_version = \"1\"", "config_version = 1", "config_version = 1.0", "config_version = \"1.0.0\"",
        "config_version = \"1.2\"",
    ])
    func acceptedVersions(_ toml: String) throws {
        #expect(try agentIssues(toml).isEmpty)
    }

    @Test func theShellNetworkDefaultsToNoneAndTakesOnlyItsValues() throws {
        #expect(try agentIssues("[tools.shell]\nnetwork = \"none\"").isEmpty)
        #expect(
            try agentIssues("[tools.shell]\nnetwork = \"host\"").first?.hasPrefix(
                "tools.shell.network must be one of \"none\", \"egress\", got \"host\"") == true)
    }

    /// The guest cannot start on `memory.remote_url` yet, so `config check` refuses it (with the
    /// missing token too, when memory is on).
    @Test func remoteMemoryIsRefusedUntilItExists() throws {
        let off = try agentIssues("[memory]\nenabled = false\nremote_url = \"libsql://db.example\"")
        #expect(off.count == 1 && off[0].hasPrefix("memory.remote_url is not supported yet"), "\(off)")
        let noToken = try agentIssues("[memory]\nenabled = true\nremote_url = \"libsql://db.example\"")
        #expect(noToken.count == 2)
        #expect(noToken.contains { $0.hasPrefix("memory.auth_token is required when memory.enabled = true") })
    }

    @Test func syntaxErrorsNameFileAndLine() throws {
        let issues = try agentIssues("[runtime]\nmax_turns = = 3\n")
        #expect(issues.count == 1)
        #expect(issues[0].hasPrefix("invalid TOML at line 2:"))
        #expect(issues[0].hasSuffix(" in \(file)"))
    }

    @Test func everyProblemIsReportedAtOnce() throws {
        let issues = try agentIssues(
            """
            [runtime]
            max_turn = 3
            turn_timeout_secs = 0
            [memory.retrieval]
            vector_weight = 0.6
            [reliability]
            max_attempts = 0
            """)
        #expect(issues.count == 4, "\(issues)")
    }

    @Test func secretsNeverAppearInMessages() throws {
        let issues = try agentIssues(
            """
            [providers.registry.openai]
            api_key = 123456789
            [providers.registry.openai.extra_headers]
            Authorization = 987654321
            [memory]
            auth_token = ["s3cr3t-token"]
            """)
        #expect(issues.count == 3, "\(issues)")
        for issue in issues {
            #expect(!issue.contains("123456789") && !issue.contains("987654321") && !issue.contains("s3cr3t"))
        }
        #expect(
            issues.contains("providers.registry.openai.api_key must be a string, got an integer (redacted) in \(file)"))
    }

    @Test func theSeedProviderFormIsTheRegistryForm() throws {
        let sandbox = try ConfigSandbox()
        defer { sandbox.remove() }
        try sandbox.write(
            "[providers.openai]\nbase_url = \"https://proxy.example/v1\"\napi_key = \"sk-file\"", layer: .user)
        try sandbox.write("[providers.registry.openai]\napi_key_env = \"MY_OPENAI\"", layer: .project)
        let loaded = sandbox.load(environment: ["OXYDRA__PROVIDERS__ANTHROPIC__BASE_URL": "https://claude.example"])
        #expect(loaded.issues.isEmpty, "\(loaded.issues)")
        let openai = try #require(loaded.config.providers.registry["openai"])
        #expect(openai.baseURL == "https://proxy.example/v1")
        #expect(openai.apiKey == "sk-file")
        #expect(openai.apiKeyEnv == "MY_OPENAI")
        #expect(openai.providerType == .openai)
        #expect(loaded.config.providers.registry["anthropic"]?.baseURL == "https://claude.example")
        #expect(
            loaded.source(of: ["providers", "registry", "openai", "api_key"]) == .file("~/.config/oxydra/agent.toml"))
    }
}
