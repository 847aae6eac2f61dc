/// A string-backed identifier that encodes as a bare JSON string.
public protocol StringIdentifier: RawRepresentable, Sendable, Hashable, Codable, Comparable,
    CustomStringConvertible, ExpressibleByStringLiteral
where RawValue == String {
    init(rawValue: String)
}

extension StringIdentifier {
    public init(_ rawValue: String) { self.init(rawValue: rawValue) }
    public init(stringLiteral value: String) { self.init(rawValue: value) }
    public var description: String { rawValue }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    public init(from decoder: any Decoder) throws {
        self.init(rawValue: try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// A registered user of a runner (`[users.<id>]`). Use ``UserID/validated(_:)`` for untrusted input:
/// the id becomes a directory name under the workspace root.
public struct UserID: StringIdentifier {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    /// Checks that `raw` is usable as a single directory name: not blank, no `/` or `\`, not `.` or `..`,
    /// no `..` sequence, no control characters.
    public static func validated(_ raw: String) throws(IdentifierError) -> UserID {
        let trimmed = raw.trimmed
        if trimmed.isEmpty { throw .invalidUserID(raw, reason: "it is empty") }
        if trimmed != raw { throw .invalidUserID(raw, reason: "it has leading or trailing whitespace") }
        if raw.contains("/") || raw.contains("\\") {
            throw .invalidUserID(raw, reason: "it contains a path separator")
        }
        if raw.contains("..") || raw == "." { throw .invalidUserID(raw, reason: "it contains `..` or is `.`") }
        if raw.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            throw .invalidUserID(raw, reason: "it contains a control character")
        }
        if raw.utf8.count > 128 { throw .invalidUserID(raw, reason: "it is longer than 128 bytes") }
        return UserID(rawValue: raw)
    }
}

/// One conversation of a user with the agent.
public struct SessionID: StringIdentifier {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
}

/// One turn (user prompt → final answer) inside a session.
public struct TurnID: StringIdentifier {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
}

/// A model id as the provider spells it (`gpt-4o-mini`, `claude-sonnet-4-5`).
public struct ModelID: StringIdentifier {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
}

/// A provider registry key (`openai`, `anthropic`, or a user-chosen name such as `local-ollama`).
public struct ProviderID: StringIdentifier {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
}

/// Errors from validating identifiers supplied by users or config files.
public enum IdentifierError: Error, Sendable, Hashable, CustomStringConvertible {
    case invalidUserID(String, reason: String)

    public var description: String {
        switch self {
        case .invalidUserID(let raw, let reason):
            "invalid user id `\(raw)`: \(reason); use letters, digits, `-` or `_`"
        }
    }
}
