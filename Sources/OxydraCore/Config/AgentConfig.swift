/// `agent.toml` / `providers.toml`: the agent's runtime, provider, memory and reliability settings.
///
/// Every key of the seed README's agent table, with its defaults, plus the provider registry and
/// `catalog.*`. Load it through `OxydraConfig.AgentConfigLoader`, which merges the layers and calls
/// ``validate(_:)``.
public struct AgentConfig: ConfigSection, Hashable {
    public var configVersion = ConfigVersion.current
    public var selection = SelectionConfig()
    public var runtime = RuntimeConfig()
    public var memory = MemoryConfig()
    public var providers = ProvidersConfig()
    public var reliability = ReliabilityConfig()
    public var catalog = CatalogConfig()
    public var tools = ToolsConfig()
    public var gateway = GatewayConfig()
    public var sessions = SessionsConfig()
    public var budget = BudgetConfig()

    public init() {}

    public static var fields: [ConfigField<AgentConfig>] {
        [
            .field("config_version", \.configVersion),
            .field("selection", \.selection),
            .field("runtime", \.runtime),
            .field("memory", \.memory),
            .field("providers", \.providers),
            .field("reliability", \.reliability),
            .field("catalog", \.catalog),
            .field("tools", \.tools),
            .field("gateway", \.gateway),
            .field("sessions", \.sessions),
            .field("budget", \.budget),
        ]
    }
}

/// `[selection]`: which provider and model the agent uses.
public struct SelectionConfig: ConfigSection, Hashable {
    /// A provider registry name (`openai`, `anthropic`, `gemini` or a `[providers.registry.<name>]`).
    public var provider = "openai"
    public var model = "gpt-4o-mini"
    /// Tried in order when the provider fails before any output (refused connection, 5xx, 429
    /// after its own retries, timeout).
    public var fallbacks: [Fallback] = []

    public init() {}

    public static var fields: [ConfigField<SelectionConfig>] {
        [
            .field("provider", \.provider, check: .nonBlank),
            .field("model", \.model, check: .nonBlank),
            .field("fallbacks", \.fallbacks),
        ]
    }
}

/// One `[[selection.fallbacks]]` (or `fallbacks = [{provider = "…", model = "…"}]`).
public struct Fallback: ConfigSection, Hashable {
    public var provider = ""
    public var model = ""

    public init() {}

    public init(provider: String, model: String) {
        self.provider = provider
        self.model = model
    }

    public static var fields: [ConfigField<Fallback>] {
        [
            .field("provider", \.provider, required: true, check: .nonBlank),
            .field("model", \.model, required: true, check: .nonBlank),
        ]
    }
}

/// `[runtime]`: limits of one turn.
public struct RuntimeConfig: ConfigSection, Hashable {
    /// Bound on every provider wait and tool run, in seconds.
    public var turnTimeoutSecs = 60
    /// Provider calls per turn.
    /// 100, not the seed table's 8: real multi-step tasks (read, edit, run, check) need more
    /// provider calls per turn; the original raised it the same way.
    public var maxTurns = 100
    /// Money per turn in US dollars, priced from the model catalog; unset means no limit.
    public var maxCost: Double?
    public var contextBudget = ContextBudgetConfig()
    public var summarization = SummarizationConfig()
    /// The same tool call (name and arguments) this many times in a row stops the turn.
    public var loopGuardRepeats = 3

    public init() {}

    public static var fields: [ConfigField<RuntimeConfig>] {
        [
            .field("turn_timeout_secs", \.turnTimeoutSecs, check: .positive),
            .field("max_turns", \.maxTurns, check: .positive),
            .field("max_cost", \.maxCost, check: .finitePositiveWhenSet),
            .field("context_budget", \.contextBudget),
            .field("summarization", \.summarization),
            .field("loop_guard_repeats", \.loopGuardRepeats, check: .positive),
        ]
    }
}

/// `[runtime.context_budget]`.
public struct ContextBudgetConfig: ConfigSection, Hashable {
    /// Fraction of the context window at which rolling summarisation starts.
    public var triggerRatio = 0.85
    /// Tokens kept free for the answer and estimation error.
    public var safetyBufferTokens = 1024
    /// Context window assumed for models whose limit is unknown.
    public var fallbackMaxContextTokens = 128_000

    public init() {}

    public static var fields: [ConfigField<ContextBudgetConfig>] {
        [
            .field("trigger_ratio", \.triggerRatio, check: .ratio),
            .field("safety_buffer_tokens", \.safetyBufferTokens, check: .positive),
            .field("fallback_max_context_tokens", \.fallbackMaxContextTokens, check: .positive),
        ]
    }
}

/// `[runtime.summarization]`.
public struct SummarizationConfig: ConfigSection, Hashable {
    /// Fraction of the context window to shrink the history to.
    public var targetRatio = 0.5
    /// Messages a session needs before it is summarised.
    public var minTurns = 6

    public init() {}

    public static var fields: [ConfigField<SummarizationConfig>] {
        [
            .field("target_ratio", \.targetRatio, check: .ratio),
            .field("min_turns", \.minTurns, check: .positive),
        ]
    }
}

/// `[budget]` (agent config and the user's file; the stricter wins): what the user's turns may
/// spend per UTC day and per UTC month, in US dollars.
public struct BudgetConfig: ConfigSection, Hashable {
    public var dailyUSD: Double?
    public var monthlyUSD: Double?

    public init() {}

    public init(dailyUSD: Double?, monthlyUSD: Double?) {
        self.dailyUSD = dailyUSD
        self.monthlyUSD = monthlyUSD
    }

    public static var fields: [ConfigField<BudgetConfig>] {
        [
            .field("daily_usd", \.dailyUSD, check: .finitePositiveWhenSet),
            .field("monthly_usd", \.monthlyUSD, check: .finitePositiveWhenSet),
        ]
    }

    /// Each limit the lower of the two that are set.
    public func stricter(_ other: BudgetConfig) -> BudgetConfig {
        func lower(_ a: Double?, _ b: Double?) -> Double? { [a, b].compactMap { $0 }.min() }
        return BudgetConfig(dailyUSD: lower(dailyUSD, other.dailyUSD), monthlyUSD: lower(monthlyUSD, other.monthlyUSD))
    }

    public var isEmpty: Bool { dailyUSD == nil && monthlyUSD == nil }
}

/// `[sessions]`: how sessions are kept.
public struct SessionsConfig: ConfigSection, Hashable {
    /// A model that titles a new session after its first answer (`model` on the selected provider,
    /// or `provider/model`); unset, the title is the first prompt's first line (no model call).
    public var titleModel: String?

    public init() {}

    public static var fields: [ConfigField<SessionsConfig>] {
        [.field("title_model", \.titleModel, check: .nonBlankWhenSet)]
    }
}

/// `[memory]`: conversation persistence and retrieval.
public struct MemoryConfig: ConfigSection, Hashable {
    /// Retrieval and the memory tools; conversations are persisted either way.
    public var enabled = false
    /// Relative paths resolve against the user's workspace.
    public var dbPath = ".oxydra/memory.db"
    public var remoteURL: String?
    public var authToken: String?
    /// `hashing` (built in, lexical similarity) or `model2vec` (a local model directory).
    public var embedder = EmbedderKind.hashing
    /// The model2vec model directory (`tokenizer.json` + `model.safetensors`); relative paths
    /// resolve against the user's workspace.
    public var model2vecPath: String?
    public var retrieval = RetrievalConfig()
    /// When a committed message is on disk: `full` (every commit is fsynced: it survives a power
    /// loss) or `normal` (the write-ahead log is fsynced at checkpoints only: a commit survives the
    /// guest being killed, not the machine losing power).
    public var durability = MemoryDurability.full

    public init() {}

    public static var fields: [ConfigField<MemoryConfig>] {
        [
            .field("enabled", \.enabled),
            .field("db_path", \.dbPath, check: .nonBlank),
            .field("durability", \.durability),
            .field("embedder", \.embedder),
            .field("model2vec_path", \.model2vecPath, check: .nonBlankWhenSet),
            .field("remote_url", \.remoteURL),
            .field("auth_token", \.authToken, secret: true),
            .field("retrieval", \.retrieval),
        ]
    }
}

public enum EmbedderKind: String, ConfigEnum, Hashable {
    case hashing, model2vec
}

/// `memory.durability`: SQLite's `synchronous` for the memory database (in WAL mode).
public enum MemoryDurability: String, ConfigEnum, Hashable {
    case full, normal
}

/// `[memory.retrieval]`: hybrid search weights.
public struct RetrievalConfig: ConfigSection, Hashable {
    public var topK = 8
    public var vectorWeight = 0.7
    public var ftsWeight = 0.3

    public init() {}

    public static var fields: [ConfigField<RetrievalConfig>] {
        [
            .field("top_k", \.topK, check: .positive),
            .field("vector_weight", \.vectorWeight, check: .ratio),
            .field("fts_weight", \.ftsWeight, check: .ratio),
        ]
    }
}

/// `[providers]`: the provider registry. The seed's `[providers.openai]`, `[providers.anthropic]`
/// (and `[providers.gemini]`) tables are another spelling of `[providers.registry.<name>]`; the loader
/// rewrites them before merging (see ``AgentConfig/canonicalizingProviderAliases(_:)``).
public struct ProvidersConfig: ConfigSection, Hashable {
    public var registry: [String: ProviderEntry] = ProvidersConfig.builtInRegistry

    public init() {}

    /// Built-in entries; configuration extends them key by key.
    public static let builtInNames = ["anthropic", "gemini", "openai"]
    public static var builtInRegistry: [String: ProviderEntry] {
        [
            "openai": ProviderEntry(type: .openai, baseURL: ProviderType.openai.defaultBaseURL),
            "anthropic": ProviderEntry(type: .anthropic, baseURL: ProviderType.anthropic.defaultBaseURL),
            "gemini": ProviderEntry(type: .gemini, baseURL: ProviderType.gemini.defaultBaseURL),
        ]
    }

    public static var fields: [ConfigField<ProvidersConfig>] {
        [.field("registry", \.registry)]
    }
}

/// `[reliability]`: retries of provider calls.
public struct ReliabilityConfig: ConfigSection, Hashable {
    public var maxAttempts = 3
    public var backoffBaseMs = 250
    public var backoffMaxMs = 2000
    /// Randomise each backoff delay (full jitter) to spread retries of many clients.
    public var jitter = false
    /// A provider that failed over is skipped this long (while another is available).
    public var failoverCooldownSecs = 60

    public init() {}

    public static var fields: [ConfigField<ReliabilityConfig>] {
        [
            .field("max_attempts", \.maxAttempts, check: .positive),
            .field("backoff_base_ms", \.backoffBaseMs, check: .positive),
            .field("backoff_max_ms", \.backoffMaxMs, check: .positive),
            .field("jitter", \.jitter),
            .field("failover_cooldown_secs", \.failoverCooldownSecs, check: .positive),
        ]
    }
}

/// `[catalog]`.
public struct CatalogConfig: ConfigSection, Hashable {
    /// Admit models that are in no catalog, with default limits (Ollama, llama.cpp, vLLM).
    public var skipCatalogValidation = false

    public init() {}

    public static var fields: [ConfigField<CatalogConfig>] {
        [.field("skip_catalog_validation", \.skipCatalogValidation)]
    }
}
