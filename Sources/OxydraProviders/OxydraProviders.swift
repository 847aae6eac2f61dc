import OxydraCore

/// HTTP model providers (OpenAI, Anthropic, Gemini, Responses), the SSE parser, tool-call accumulation and the retrying wrapper. Built by issue 3.
///
/// Until then the module only names its place in the layer table of `Package.swift`.
public enum OxydraProvidersModule {
    /// The layer this module belongs to (see `Package.swift`).
    public static let layer = "core"
}
