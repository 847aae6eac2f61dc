/// A type that can be read from and written back to a configuration tree.
///
/// Reading is *onto* a base value (the default, or what a lower layer produced), so a section keeps
/// every key the file does not mention, and a registry entry named like a built-in one inherits it.
public protocol ConfigCodable: Sendable {
    /// "an integer", "a table", ... for type-mismatch messages.
    static var expectation: String { get }
    /// The value at `node`, or nil (after reporting why) when it cannot be used.
    static func decode(_ node: ConfigNode, base: Self?, at path: [String], in diagnostics: ConfigDiagnostics) -> Self?
    /// The tree form; nil for "unset" (an absent optional).
    func encode() -> ConfigNode?
    /// What values look like, for forms (see ``ConfigShape``).
    static var shape: ConfigShape { get }
}

extension ConfigCodable {
    static func node(_ value: ConfigValue) -> ConfigNode { ConfigNode(value, source: .builtInDefault) }
}

extension String: ConfigCodable {
    public static var expectation: String { "a string" }
    public static func decode(_ node: ConfigNode, base: String?, at path: [String], in diagnostics: ConfigDiagnostics)
        -> String?
    {
        if case .string(let text) = node.value { return text }
        // Environment and command-line values are typed by their spelling; a string key takes the text.
        if let literal = node.literal, !literal.hasPrefix("[") { return literal }
        diagnostics.typeMismatch(path, expectation: expectation, got: node)
        return nil
    }
    public func encode() -> ConfigNode? { Self.node(.string(self)) }
}

extension Int: ConfigCodable {
    public static var expectation: String { "an integer" }
    public static func decode(_ node: ConfigNode, base: Int?, at path: [String], in diagnostics: ConfigDiagnostics)
        -> Int?
    {
        if case .integer(let number) = node.value { return number }
        diagnostics.typeMismatch(path, expectation: expectation, got: node)
        return nil
    }
    public func encode() -> ConfigNode? { Self.node(.integer(self)) }
}

extension Double: ConfigCodable {
    public static var expectation: String { "a number" }
    public static func decode(_ node: ConfigNode, base: Double?, at path: [String], in diagnostics: ConfigDiagnostics)
        -> Double?
    {
        switch node.value {
        case .float(let number): return number
        case .integer(let number): return Double(number)
        default:
            diagnostics.typeMismatch(path, expectation: expectation, got: node)
            return nil
        }
    }
    public func encode() -> ConfigNode? { Self.node(.float(self)) }
}

extension Bool: ConfigCodable {
    public static var expectation: String { "a boolean (true or false)" }
    public static func decode(_ node: ConfigNode, base: Bool?, at path: [String], in diagnostics: ConfigDiagnostics)
        -> Bool?
    {
        if case .bool(let flag) = node.value { return flag }
        diagnostics.typeMismatch(path, expectation: expectation, got: node)
        return nil
    }
    public func encode() -> ConfigNode? { Self.node(.bool(self)) }
}

extension Optional: ConfigCodable where Wrapped: ConfigCodable {
    public static var expectation: String { Wrapped.expectation }
    public static func decode(
        _ node: ConfigNode, base: Wrapped??, at path: [String], in diagnostics: ConfigDiagnostics
    ) -> Wrapped?? {
        guard let value = Wrapped.decode(node, base: base ?? nil, at: path, in: diagnostics) else { return nil }
        return .some(value)
    }
    public func encode() -> ConfigNode? { self.flatMap { $0.encode() } }
}

extension Array: ConfigCodable where Element: ConfigCodable {
    public static var expectation: String { "an array" }
    public static func decode(
        _ node: ConfigNode, base: [Element]?, at path: [String], in diagnostics: ConfigDiagnostics
    )
        -> [Element]?
    {
        guard case .array(let items) = node.value else {
            diagnostics.typeMismatch(path, expectation: "an array of \(Element.expectation.dropArticle)", got: node)
            return nil
        }
        var result: [Element] = []
        var ok = true
        for (index, item) in items.enumerated() {
            if let element = Element.decode(item, base: nil, at: path + ["[\(index)]"], in: diagnostics) {
                result.append(element)
            } else {
                ok = false
            }
        }
        return ok ? result : nil
    }
    public func encode() -> ConfigNode? { Self.node(.array(compactMap { $0.encode() })) }
}

extension Dictionary: ConfigCodable where Key == String, Value: ConfigCodable {
    public static var expectation: String { "a table" }
    /// Entries merge onto `base` key by key; a key present in both is decoded onto the base entry.
    public static func decode(
        _ node: ConfigNode, base: [String: Value]?, at path: [String], in diagnostics: ConfigDiagnostics
    ) -> [String: Value]? {
        guard case .table(let entries) = node.value else {
            diagnostics.typeMismatch(path, expectation: expectation, got: node)
            return nil
        }
        var result = base ?? [:]
        for key in entries.keys.sorted() {
            if let value = Value.decode(entries[key]!, base: result[key], at: path + [key], in: diagnostics) {
                result[key] = value
            }
        }
        return result
    }
    public func encode() -> ConfigNode? {
        var entries: [String: ConfigNode] = [:]
        for (key, value) in self { entries[key] = value.encode() }
        return Self.node(.table(entries))
    }
}

extension StringProtocol {
    /// "an integer" → "integer" (for "an array of integers"-style phrasing).
    var dropArticle: String {
        if hasPrefix("an ") { return String(dropFirst(3)) }
        if hasPrefix("a ") { return String(dropFirst(2)) }
        return String(self)
    }
}

/// Enumerations spelled as strings in config files (`default_tier = "process"`).
public protocol ConfigEnum: ConfigCodable, RawRepresentable, CaseIterable where RawValue == String {}

extension ConfigEnum {
    public static var expectation: String {
        "one of " + allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
    }
    public static func decode(_ node: ConfigNode, base: Self?, at path: [String], in diagnostics: ConfigDiagnostics)
        -> Self?
    {
        guard let text = String.decode(node, base: nil, at: path, in: diagnostics) else { return nil }
        if let value = Self(rawValue: text) { return value }
        let suggestions = Suggestions.closest(to: text, in: allCases.map(\.rawValue), limit: 1)
        diagnostics.report(
            path, "\(ConfigPath.render(path)) must be \(expectation), got \(diagnostics.shown(node))",
            source: node.source, hint: Suggestions.question(suggestions))
        return nil
    }
    public func encode() -> ConfigNode? { Self.node(.string(rawValue)) }
}
