/// How dangerous a tool is; decides scheduling and approval.
public enum SafetyTier: String, Sendable, Hashable, Codable, CaseIterable, Comparable {
    /// Reads only; consecutive read-only calls may run concurrently.
    case readOnly = "read_only"
    /// Changes state (files, network); runs one at a time, in call order.
    case sideEffecting = "side_effecting"
    /// May act outside the workspace (shell); subject to the approval hook.
    case privileged

    private var rank: Int {
        switch self {
        case .readOnly: 0
        case .sideEffecting: 1
        case .privileged: 2
        }
    }

    public static func < (lhs: SafetyTier, rhs: SafetyTier) -> Bool { lhs.rank < rhs.rank }
}

/// What the model is told about a tool: its name, what it does and the JSON Schema of its arguments.
public struct ToolDeclaration: Sendable, Hashable, Codable {
    public var name: String
    public var description: String
    /// A JSON Schema (`{"type": "object", "properties": ..., "required": [...]}`).
    public var parameters: JSONValue

    public init(name: String, description: String, parameters: JSONValue) {
        self.name = name
        self.description = description
        self.parameters = parameters
    }

    /// The bytes the token estimator counts: name, description and the compact schema.
    public var estimatedBytes: Int { name.utf8.count + description.utf8.count + parameters.compactText.utf8.count }
}
