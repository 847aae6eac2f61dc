/// What running one tool call could do, as the tool judges it from the call's arguments: whether a
/// human should approve it (`[tools.approval] mode = "risky"`) and what "allow this kind for the
/// session" would cover.
public struct ToolRisk: Sendable, Hashable {
    public enum Level: String, Sendable, Hashable, Comparable, CaseIterable {
        /// Reads only, or writes only scratch space: runs without asking in `risky` mode.
        case none
        /// Changes files or reaches a new place; asked in `risky` mode.
        case medium
        /// Hard to undo or reaches secrets (`vault_copyto`, a command that could not be read).
        case high

        private var rank: Int {
            switch self {
            case .none: 0
            case .medium: 1
            case .high: 2
            }
        }
        public static func < (lhs: Level, rhs: Level) -> Bool { lhs.rank < rhs.rank }
    }

    /// One thing a grant can cover: `key` is compared (`shell:rm`, `host:example.com`,
    /// `write:/shared/notes`), `label` is shown (`` `rm` commands``).
    public struct Kind: Sendable, Hashable {
        public var key: String
        public var label: String
        public init(key: String, label: String) {
            self.key = key
            self.label = label
        }
    }

    public var level: Level
    /// Why, in a few words: "runs `rm`", "writes /shared/a.txt".
    public var reason: String
    /// What a grant must cover for this call to run without asking; empty: the tool itself.
    public var kinds: [Kind]
    /// Once such a call was approved, calls of the same kinds in the session run without asking
    /// (`web_fetch`: a host fetched before).
    public var rememberedForSession: Bool

    public init(level: Level, reason: String, kinds: [Kind] = [], rememberedForSession: Bool = false) {
        self.level = level
        self.reason = reason
        self.kinds = kinds
        self.rememberedForSession = rememberedForSession
    }

    public static let none = ToolRisk(level: .none, reason: "reads only")

    /// The risk a tool has without judging its arguments: privileged tools are high, others none.
    public static func byTier(_ tier: SafetyTier) -> ToolRisk {
        tier == .privileged ? ToolRisk(level: .high, reason: "a privileged tool") : .none
    }

    /// `kinds`, or the tool itself when the tool named none.
    public func grantKinds(tool: String) -> [Kind] {
        kinds.isEmpty ? [Kind(key: "tool:" + tool, label: "`\(tool)` calls")] : kinds
    }
}
