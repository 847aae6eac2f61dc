/// Where and for whom a tool runs.
public struct ToolContext: Sendable, Hashable {
    public var user: UserID?
    public var session: SessionID?
    /// Host directory backing `/shared` (read-write for tools).
    public var sharedDirectory: String?
    /// Host directory backing `/tmp` (read-write scratch).
    public var tmpDirectory: String?
    /// Host directory backing `/vault` (read-only; reached only through `vault_copyto`).
    public var vaultDirectory: String?

    public init(
        user: UserID? = nil, session: SessionID? = nil, sharedDirectory: String? = nil, tmpDirectory: String? = nil,
        vaultDirectory: String? = nil
    ) {
        self.user = user
        self.session = session
        self.sharedDirectory = sharedDirectory
        self.tmpDirectory = tmpDirectory
        self.vaultDirectory = vaultDirectory
    }
}

/// What a tool returns to the model.
public struct ToolOutput: Sendable, Hashable {
    public var text: String
    public init(_ text: String) { self.text = text }
}

/// A capability the model can call.
public protocol Tool: Sendable {
    /// Name, description and JSON Schema of the arguments. Arguments are validated against the
    /// schema before ``run(_:context:)`` is called.
    var declaration: ToolDeclaration { get }
    /// Read-only tools may run concurrently; the others run one at a time, in call order.
    var safety: SafetyTier { get }
    /// Upper bound for one run; the runtime also applies `runtime.turn_timeout_secs`.
    var timeout: Duration { get }
    func run(_ arguments: JSONValue, context: ToolContext) async throws -> ToolOutput
    /// What this call could do, judged from its (schema-valid) arguments: whether a person should
    /// approve it. The default: privileged tools are high risk, the others none.
    func risk(of arguments: JSONValue) -> ToolRisk
}

extension Tool {
    public func risk(of arguments: JSONValue) -> ToolRisk { .byTier(safety) }
}

/// What happened when a tool call ran. The text is what the model sees as the tool result.
public struct ToolOutcome: Sendable, Hashable {
    public var callID: String
    public var name: String
    public var text: String
    public var isError: Bool
    public var duration: Duration
    /// Bytes of output before truncation, when it was truncated.
    public var originalBytes: Int?

    public init(
        callID: String, name: String, text: String, isError: Bool, duration: Duration, originalBytes: Int? = nil
    ) {
        self.callID = callID
        self.name = name
        self.text = text
        self.isError = isError
        self.duration = duration
        self.originalBytes = originalBytes
    }
}

extension ToolExecutor {
    public var declarationBytes: Int { declarations.reduce(0) { $0 + $1.estimatedBytes } }
}

/// Runs the model's tool calls: the runtime's view of a tool registry.
public protocol ToolExecutor: Sendable {
    /// What the model is told, sorted by name.
    var declarations: [ToolDeclaration] { get }
    /// `declarations`' ``ToolDeclaration/estimatedBytes`` summed (asked for every provider call:
    /// an executor with fixed tools answers from a cache).
    var declarationBytes: Int { get }
    /// Whether the call may run concurrently with neighbouring read-only calls.
    func isReadOnly(_ call: ToolCall) -> Bool
    /// Runs one call; problems become an error outcome, only cancellation throws.
    func run(_ call: ToolCall, context: ToolContext, limit: Duration) async throws(CancellationError) -> ToolOutcome
    /// What the call could do (``Tool/risk(of:)``); a call that would be refused before running
    /// (unknown tool, invalid arguments) has none.
    func risk(of call: ToolCall) -> ToolRisk
    /// The call's arguments as a person reviewing it sees them: scrubbed, at most 8 KiB.
    func reviewText(of call: ToolCall) -> String
}
