import OxydraCore

/// Renders configuration trees for `runner config show`.
public enum ConfigRendering {
    public static let redacted = "********"

    /// `typed` (the effective values) with each node's source taken from `merged` (the layers);
    /// values no layer set keep `.builtInDefault`.
    public static func annotate(_ typed: ConfigNode, from merged: ConfigNode, path: [String] = []) -> ConfigNode {
        var result = typed
        if let source = merged.node(at: path)?.source { result.source = source }
        if case .table(let entries) = typed.value {
            var annotated: [String: ConfigNode] = [:]
            for (key, child) in entries { annotated[key] = annotate(child, from: merged, path: path + [key]) }
            result.value = .table(annotated)
        }
        return result
    }

    /// What ``toml(_:sources:secrets:)`` does with secret values.
    public enum Secrets: Sendable {
        /// `"********"` (for people).
        case redacted
        /// `""` (for a guest that receives the values as `OXYDRA__…` variables: the key stays in the
        /// file, so the variable lands on it with its exact spelling, e.g. a header's case).
        case emptied
    }

    /// TOML text of `tree`; with `sources`, each value is followed by `# <source>`. Secrets print as
    /// `"********"` or as `""`.
    public static func toml(_ tree: ConfigNode, sources: Bool, secrets: Secrets = .redacted) -> String {
        var lines: [String] = []
        render(tree, path: [], sources: sources, secrets: secrets, into: &lines)
        return lines.joined(separator: "\n") + "\n"
    }

    private static func render(
        _ node: ConfigNode, path: [String], sources: Bool, secrets: Secrets, into lines: inout [String]
    ) {
        guard case .table(let entries) = node.value else { return }
        let keys = entries.keys.sorted()
        let scalars = keys.filter { !isTable(entries[$0]!) }
        let tables = keys.filter { isTable(entries[$0]!) }
        if !path.isEmpty && !scalars.isEmpty {
            if !lines.isEmpty { lines.append("") }
            lines.append("[\(ConfigPath.render(path))]")
        }
        let width = scalars.map { ConfigPath.renderKey($0).count + 3 + text(entries[$0]!).count }.max() ?? 0
        for key in scalars {
            let child = entries[key]!
            let value = child.isSecret && secrets == .emptied ? "\"\"" : text(child)
            var line = "\(ConfigPath.renderKey(key)) = \(value)"
            if sources {
                line += String(repeating: " ", count: max(1, width - line.count + 2)) + "# \(child.source)"
            }
            lines.append(line)
        }
        for key in tables {
            render(entries[key]!, path: path + [key], sources: sources, secrets: secrets, into: &lines)
        }
    }

    private static func isTable(_ node: ConfigNode) -> Bool {
        if case .table = node.value { return true }
        return false
    }

    private static func text(_ node: ConfigNode) -> String {
        if node.isSecret { return ConfigPath.quoted(redacted) }
        if case .array(let items) = node.value { return "[" + items.map(text).joined(separator: ", ") + "]" }
        return node.value.tomlText
    }

    /// The tree as JSON (secrets redacted).
    public static func json(_ node: ConfigNode) -> JSONValue {
        if node.isSecret, !isTable(node) { return .string(redacted) }
        switch node.value {
        case .string(let text): return .string(text)
        case .integer(let number): return .integer(number)
        case .float(let number): return .number(number)
        case .bool(let flag): return .bool(flag)
        case .array(let items): return .array(items.map(json))
        case .table(let entries): return .object(entries.mapValues(json))
        }
    }

    /// `"runtime.max_turns": "env OXYDRA__RUNTIME__MAX_TURNS"` for every leaf.
    public static func sourceMap(_ node: ConfigNode) -> [String: String] {
        var result: [String: String] = [:]
        for (path, leaf) in node.leaves() { result[ConfigPath.render(path)] = leaf.source.description }
        return result
    }
}

extension ConfigRendering {
    /// `key=value` with the value masked when the key names a secret (`api_key`, `auth_token`).
    public static func maskAssignment(_ assignment: String) -> String {
        guard let equals = assignment.firstIndex(of: "=") else { return assignment }
        let path = assignment[..<equals].lowercased().split(separator: ".").map(String.init)
        let last = path.last ?? ""
        let sensitive =
            ["api_key", "auth_token"].contains(last) || (path.contains("extra_headers") && HeaderMap.isSensitive(last))
        return sensitive ? String(assignment[...equals]) + redacted : assignment
    }
}
