import OxydraCore

/// The person in the loop, asked before a tool call that needs approval runs
/// (`[tools.approval]`). The gateway's implementation asks every client on the session.
public protocol ToolApprover: Sendable {
    /// Decides whether `call` may run; waits (bounded by `tools.approval.timeout_secs`) when a
    /// person must answer. Throws `CancellationError` when the turn is cancelled while it waits
    /// and ``ApprovalSuspended`` when the guest stops (the request stays stored).
    func review(_ call: ToolCall, risk: ToolRisk, summary: String, details: @autoclosure () -> String)
        async throws -> ApprovalVerdict
}

/// Whether a call may run, and how that was decided (the audit log's `decision`).
public struct ApprovalVerdict: Sendable, Hashable {
    public var allowed: Bool
    /// `not_asked`, `granted_session`, `granted_always`, `granted_turn`, `allowed_once`, `denied`, `timed_out`, …
    public var decision: String
    /// The client that answered (`tui#3`).
    public var answeredBy: String?
    /// For a call that does not run: what the model reads instead of the result.
    public var message: String?

    public init(allowed: Bool, decision: String, answeredBy: String? = nil, message: String? = nil) {
        self.allowed = allowed
        self.decision = decision
        self.answeredBy = answeredBy
        self.message = message
    }

    public static let notAsked = ApprovalVerdict(allowed: true, decision: "not_asked")
}

/// The guest is stopping while a call waits for approval: the turn ends without closing the call.
public struct ApprovalSuspended: Error, Sendable {
    public init() {}
}
