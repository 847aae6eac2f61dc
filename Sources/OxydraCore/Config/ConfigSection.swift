/// One key of a configuration table, bound to a stored property.
///
/// The same declaration reads the key, writes it back for `config show`, documents it and checks it,
/// so the accepted keys and the printed ones cannot drift apart.
public struct ConfigField<Root> {
    public let key: String
    public let isSecret: Bool
    public let isRequired: Bool
    /// Computed on demand: decoding never pays for it.
    public var shape: ConfigShape { shapeOf() }
    let shapeOf: () -> ConfigShape
    let decodeInto: (inout Root, ConfigNode, [String], ConfigDiagnostics) -> Void
    let encodeFrom: (Root) -> ConfigNode?

    /// A key stored in `property`. `check` returns a rule violation ("must be greater than 0") or nil.
    public static func field<Value: ConfigCodable>(
        _ key: String, _ property: WritableKeyPath<Root, Value>, secret: Bool = false, required: Bool = false,
        check: ConfigCheck<Value>? = nil
    ) -> ConfigField<Root> {
        ConfigField(
            key: key, isSecret: secret, isRequired: required, shapeOf: { Value.shape },
            decodeInto: { root, node, path, diagnostics in
                let wasRedacting = diagnostics.redacting
                diagnostics.redacting = wasRedacting || secret
                defer { diagnostics.redacting = wasRedacting }
                guard let value = Value.decode(node, base: root[keyPath: property], at: path, in: diagnostics) else {
                    return
                }
                if let check, let problem = check.problem(value) {
                    let shown = secret ? "" : " (got \(diagnostics.shown(value.encode() ?? node)))"
                    diagnostics.report(path, "\(ConfigPath.render(path)) \(problem)\(shown)", source: node.source)
                    return
                }
                root[keyPath: property] = value
            },
            encodeFrom: { root in
                guard var node = root[keyPath: property].encode() else { return nil }
                if secret { node.markSecret() }
                return node
            })
    }
}

extension ConfigNode {
    mutating func markSecret() {
        isSecret = true
        switch value {
        case .table(var entries):
            for key in entries.keys { entries[key]!.markSecret() }
            value = .table(entries)
        case .array(let items):
            value = .array(
                items.map { item in
                    var copy = item
                    copy.markSecret()
                    return copy
                })
        default: break
        }
    }
}

/// A rule on one value. Returns the violation as a phrase that follows the key path.
public struct ConfigCheck<Value> {
    public let problem: (Value) -> String?
    public init(_ problem: @escaping (Value) -> String?) { self.problem = problem }
}

extension ConfigCheck where Value == Int {
    public static var positive: Self { Self { $0 > 0 ? nil : "must be greater than 0" } }
}

extension ConfigCheck where Value == Int? {
    public static var positiveWhenSet: Self {
        Self { value in value.map { $0 > 0 ? nil : "must be greater than 0" } ?? nil }
    }
}

extension ConfigCheck where Value == Double {
    public static var ratio: Self {
        Self { $0.isFinite && $0 >= 0 && $0 <= 1 ? nil : "must be between 0.0 and 1.0" }
    }
}

extension ConfigCheck where Value == Double? {
    public static var finitePositiveWhenSet: Self {
        Self { value in
            guard let value else { return nil }
            return value.isFinite && value > 0 ? nil : "must be a finite number greater than 0"
        }
    }
}

extension ConfigCheck where Value == String {
    public static var nonBlank: Self {
        Self { $0.trimmed.isEmpty ? "must not be empty" : nil }
    }
}

extension ConfigCheck where Value == String? {
    public static var nonBlankWhenSet: Self {
        Self { value in
            guard let value else { return nil }
            return value.trimmed.isEmpty ? "must not be empty" : nil
        }
    }
}

/// A configuration table with a fixed set of keys. Unknown keys are errors with a suggestion.
public protocol ConfigSection: ConfigCodable {
    /// The defaults.
    init()
    static var fields: [ConfigField<Self>] { get }
}

extension ConfigSection {
    public static var expectation: String { "a table" }

    public static func decode(_ node: ConfigNode, base: Self?, at path: [String], in diagnostics: ConfigDiagnostics)
        -> Self?
    {
        guard case .table(let entries) = node.value else {
            diagnostics.typeMismatch(path, expectation: expectation, got: node)
            return nil
        }
        var result = base ?? Self()
        let fields = Self.fields
        for key in entries.keys.sorted() {
            let child = entries[key]!
            if let field = fields.first(where: { $0.key == key }) {
                field.decodeInto(&result, child, path + [key], diagnostics)
            } else {
                let suggestion = Suggestions.closest(to: key, in: fields.map(\.key), limit: 1)
                    .map { ConfigPath.render(path + [$0]) }
                diagnostics.report(
                    path + [key], "unknown key \(ConfigPath.render(path + [key]))", source: child.source,
                    hint: Suggestions.question(suggestion))
            }
        }
        for field in fields where field.isRequired && entries[field.key] == nil {
            diagnostics.report(
                path + [field.key], "\(ConfigPath.render(path + [field.key])) is required", source: node.source)
        }
        return result
    }

    public func encode() -> ConfigNode? {
        var entries: [String: ConfigNode] = [:]
        for field in Self.fields {
            if let node = field.encodeFrom(self) { entries[field.key] = node }
        }
        return ConfigNode(.table(entries), source: .builtInDefault)
    }

    /// Reads a whole document (the root of a file or of merged layers).
    public static func read(_ root: ConfigNode, diagnostics: ConfigDiagnostics) -> Self {
        decode(root, base: Self(), at: [], in: diagnostics) ?? Self()
    }
}
