import OxydraCore

/// The `OXYDRA__SECTION__KEY=value` environment layer.
///
/// `__` separates path segments, which are lowercased: `OXYDRA__RUNTIME__CONTEXT_BUDGET__TRIGGER_RATIO`
/// sets `runtime.context_budget.trigger_ratio`. A segment also matches an existing key whose `-` are
/// written as `_` (shells cannot put `-` in variable names), so `OXYDRA__PROVIDERS__REGISTRY__MY_LOCAL__BASE_URL`
/// reaches `[providers.registry.my-local]` when a file defines it. Values are read as a TOML value
/// when they are one (`true`, `12`, `0.9`, `["a", "b"]`, `"quoted"`), else as a plain string.
public enum EnvironmentOverrides {
    public static let prefix = "OXYDRA__"

    /// The layer built from `environment`, resolved against `base` (the merged lower layers).
    public static func layer(from environment: [String: String], base: ConfigNode) -> (
        layer: ConfigNode, issues: [ConfigIssue]
    ) {
        var layer = ConfigNode.table(source: .builtInDefault)
        var issues: [ConfigIssue] = []
        for name in environment.keys.sorted() where name.hasPrefix(prefix) {
            let raw = environment[name]!
            let segments = name.dropFirst(prefix.count).components(separatedBy: "__")
            if segments.contains(where: \.isEmpty) {
                issues.append(
                    ConfigIssue(
                        path: "",
                        message: "environment override has an empty key segment (`____` or a trailing `__`)",
                        location: .environment(name)))
                continue
            }
            let path = resolve(segments.map { $0.lowercased() }, against: base.merged(with: layer))
            layer.set(value(raw, source: .environment(name)), at: path)
        }
        return (layer, issues)
    }

    /// Parses `raw` like a TOML value, falling back to the string itself.
    static func value(_ raw: String, source: ConfigSource) -> ConfigNode {
        var node = TOMLDocument.parseValue(raw, source: source) ?? ConfigNode(.string(raw), source: source)
        node.literal = raw
        return node
    }

    /// Maps each segment onto an existing key that differs only in case or `-`/`_`.
    static func resolve(_ segments: [String], against tree: ConfigNode) -> [String] {
        var resolved: [String] = []
        var current: ConfigNode? = tree
        for segment in segments {
            var key = segment
            if case .table(let entries)? = current?.value, entries[segment] == nil {
                let matches = entries.keys.filter { normalized($0) == normalized(segment) }
                if matches.count == 1 { key = matches[0] }
            }
            resolved.append(key)
            current = current?.node(at: [key])
        }
        return resolved
    }

    private static func normalized(_ key: String) -> String {
        key.lowercased().replacing("-", with: "_")
    }
}

/// The command-line layer: `--set runtime.max_turns=12` (repeatable). Keys are dotted paths; values
/// are read like environment values.
public enum CommandLineOverrides {
    public static func layer(from assignments: [String]) -> (layer: ConfigNode, issues: [ConfigIssue]) {
        var layer = ConfigNode.table(source: .builtInDefault)
        var issues: [ConfigIssue] = []
        for assignment in assignments {
            guard let equals = assignment.firstIndex(of: "=") else {
                issues.append(
                    ConfigIssue(
                        path: "", message: "--set \(assignment) must have the form key.path=value",
                        location: nil))
                continue
            }
            let key = String(assignment[..<equals]).trimmed
            let raw = String(assignment[assignment.index(after: equals)...])
            let path = key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard !key.isEmpty, !path.contains(where: \.isEmpty) else {
                issues.append(
                    ConfigIssue(
                        path: key, message: "--set \(assignment) has an empty key segment", location: nil))
                continue
            }
            layer.set(EnvironmentOverrides.value(raw, source: .commandLine(key)), at: path)
        }
        return (layer, issues)
    }
}
