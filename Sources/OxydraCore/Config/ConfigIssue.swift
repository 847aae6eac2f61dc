/// One problem in the configuration: what is wrong, at which key, and in which layer.
public struct ConfigIssue: Sendable, Hashable, CustomStringConvertible {
    /// The key path (`runtime.max_turns`), or `""` for whole-file problems.
    public var path: String
    /// The complete sentence without its location, e.g.
    /// `runtime.turn_timeout_secs must be greater than 0 (got 0)`.
    public var message: String
    /// The layer that set the offending value; nil when the problem is not tied to one.
    public var location: ConfigSource?
    /// What to do about it, printed after the location ("did you mean `runtime.max_turns`?").
    public var hint: String?

    public init(path: String, message: String, location: ConfigSource?, hint: String? = nil) {
        self.path = path
        self.message = message
        self.location = location
        self.hint = hint
    }

    public var description: String {
        let suffix = hint.map { "; \($0)" } ?? ""
        guard let location else { return message + suffix }
        switch location {
        case .builtInDefault: return "\(message) (built-in default)\(suffix)"
        default: return "\(message) in \(location)\(suffix)"
        }
    }
}

/// Configuration that cannot be used, with every problem found.
public struct ConfigError: Error, Sendable, Hashable, CustomStringConvertible {
    public var issues: [ConfigIssue]

    public init(_ issues: [ConfigIssue]) { self.issues = issues }

    public init(path: String = "", message: String, location: ConfigSource?) {
        self.init([ConfigIssue(path: path, message: message, location: location)])
    }

    public var description: String {
        if issues.count == 1 { return issues[0].description }
        return "\(issues.count) configuration problems:\n" + issues.map { "  - \($0)" }.joined(separator: "\n")
    }
}

/// Collects issues while a configuration tree is decoded and validated.
///
/// Decoding never stops at the first problem: a value that cannot be used keeps its default and
/// the issue is recorded, so `runner config check` can report everything in one run.
public final class ConfigDiagnostics {
    public private(set) var issues: [ConfigIssue] = []
    /// The merged tree the values came from, to find the layer of any key.
    public let root: ConfigNode
    /// Config files in precedence order (lowest first), to rank sources of multi-key rules.
    public let fileOrder: [String]
    /// Set while a secret field decodes, so messages never quote its value.
    var redacting = false

    public init(root: ConfigNode, fileOrder: [String] = []) {
        self.root = root
        self.fileOrder = fileOrder
    }

    public func report(_ path: [String], _ message: String, source: ConfigSource?, hint: String? = nil) {
        issues.append(ConfigIssue(path: ConfigPath.render(path), message: message, location: source, hint: hint))
    }

    /// The layer that set `path`, or `.builtInDefault` when no layer did.
    public func source(of path: [String]) -> ConfigSource {
        root.node(at: path)?.source ?? .builtInDefault
    }

    /// The highest-precedence layer among several keys (for rules that involve more than one).
    public func source(ofAny paths: [[String]]) -> ConfigSource {
        let found = paths.compactMap { root.node(at: $0)?.source }
        return found.max { rank($0) < rank($1) } ?? .builtInDefault
    }

    /// Precedence of a source: defaults < files (in ``fileOrder``) < environment < command line.
    public func rank(_ source: ConfigSource) -> Int {
        switch source {
        case .builtInDefault: 0
        case .file(let path): 1 + (fileOrder.firstIndex(of: path) ?? 0)
        case .environment: 1_000_000
        case .commandLine: 2_000_000
        }
    }

    /// A value as it may be quoted in a message: redacted for secrets.
    func shown(_ node: ConfigNode) -> String {
        redacting || node.isSecret ? "(redacted)" : (node.literal.map(ConfigPath.quoted) ?? node.value.tomlText)
    }

    func typeMismatch(_ path: [String], expectation: String, got node: ConfigNode) {
        report(
            path, "\(ConfigPath.render(path)) must be \(expectation), got \(node.value.kindDescription) \(shown(node))",
            source: node.source)
    }

    public var error: ConfigError? { issues.isEmpty ? nil : ConfigError(issues) }
}
