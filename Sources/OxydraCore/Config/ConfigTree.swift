/// Where a configuration value came from. Shown by `runner config show --sources` and named in
/// every validation error, so users can see which layer to edit.
public enum ConfigSource: Sendable, Hashable, CustomStringConvertible {
    case builtInDefault
    /// A config file, by its display path (`./.oxydra/agent.toml`, `~/.config/oxydra/agent.toml`).
    case file(String)
    /// An `OXYDRA__…` environment variable, by name.
    case environment(String)
    /// A `--set key=value` command-line override, by key.
    case commandLine(String)

    public var description: String {
        switch self {
        case .builtInDefault: "built-in default"
        case .file(let path): path
        case .environment(let name): "env \(name)"
        case .commandLine(let key): "--set \(key)"
        }
    }
}

/// A configuration value with where it came from.
public struct ConfigNode: Sendable, Hashable {
    public var value: ConfigValue
    public var source: ConfigSource
    /// The text as the user typed it, for values that came from an environment variable or the
    /// command line: `OXYDRA__SELECTION__MODEL=4` parses as an integer but a string key accepts `"4"`.
    public var literal: String?
    /// Secrets (API keys, tokens) are printed as `********` and never quoted in error messages.
    public var isSecret: Bool

    public init(_ value: ConfigValue, source: ConfigSource, literal: String? = nil, isSecret: Bool = false) {
        self.value = value
        self.source = source
        self.literal = literal
        self.isSecret = isSecret
    }

    /// An empty table.
    public static func table(source: ConfigSource) -> ConfigNode { ConfigNode(.table([:]), source: source) }

    /// Deep merge: tables merge key by key; anything else (scalars, arrays, a table replacing a
    /// scalar) is replaced by `overlay`.
    public func merged(with overlay: ConfigNode) -> ConfigNode {
        guard case .table(let base) = value, case .table(let top) = overlay.value else { return overlay }
        var result = base
        for (key, node) in top {
            result[key] = result[key].map { $0.merged(with: node) } ?? node
        }
        return ConfigNode(.table(result), source: overlay.source)
    }

    /// The node at `path` (table keys), or nil.
    public func node(at path: [String]) -> ConfigNode? {
        var current = self
        for key in path {
            guard case .table(let entries) = current.value, let next = entries[key] else { return nil }
            current = next
        }
        return current
    }

    /// Sets `node` at `path`, creating intermediate tables (a non-table in the way is replaced).
    public mutating func set(_ node: ConfigNode, at path: [String]) {
        guard let first = path.first else {
            self = node
            return
        }
        var entries: [String: ConfigNode] = [:]
        if case .table(let existing) = value { entries = existing } else { value = .table([:]) }
        var child = entries[first] ?? ConfigNode.table(source: node.source)
        child.set(node, at: Array(path.dropFirst()))
        entries[first] = child
        value = .table(entries)
    }

    /// Removes and returns the node at `path`.
    @discardableResult
    public mutating func remove(at path: [String]) -> ConfigNode? {
        guard let first = path.first, case .table(var entries) = value else { return nil }
        if path.count == 1 {
            let removed = entries.removeValue(forKey: first)
            value = .table(entries)
            return removed
        }
        guard var child = entries[first] else { return nil }
        let removed = child.remove(at: Array(path.dropFirst()))
        entries[first] = child
        value = .table(entries)
        return removed
    }

    /// Every leaf (non-table value) with its path, sorted by path.
    public func leaves(prefix: [String] = []) -> [(path: [String], node: ConfigNode)] {
        guard case .table(let entries) = value else { return [(prefix, self)] }
        return entries.keys.sorted().flatMap { key in entries[key]!.leaves(prefix: prefix + [key]) }
    }
}

/// The shape of a configuration value (TOML's types minus dates, which no key uses).
public indirect enum ConfigValue: Sendable, Hashable {
    case string(String)
    case integer(Int)
    case float(Double)
    case bool(Bool)
    case array([ConfigNode])
    case table([String: ConfigNode])

    /// "a string", "an integer", ... for error messages.
    public var kindDescription: String {
        switch self {
        case .string: "a string"
        case .integer: "an integer"
        case .float: "a floating-point number"
        case .bool: "a boolean"
        case .array: "an array"
        case .table: "a table"
        }
    }

    /// TOML spelling of the value (strings quoted and escaped), for messages and `config show`.
    public var tomlText: String {
        switch self {
        case .string(let text): ConfigPath.quoted(text)
        case .integer(let number): String(number)
        case .float(let number): ConfigValue.render(number)
        case .bool(let flag): flag ? "true" : "false"
        case .array(let items): "[" + items.map(\.value.tomlText).joined(separator: ", ") + "]"
        case .table(let entries):
            "{ "
                + entries.keys.sorted().map { "\(ConfigPath.renderKey($0)) = \(entries[$0]!.value.tomlText)" }
                .joined(separator: ", ") + " }"
        }
    }

    /// Shortest round-tripping text for a double, always with a decimal point (`0.9`, `1.0`, `1e+20`).
    public static func render(_ number: Double) -> String {
        if number.isNaN { return "nan" }
        if number.isInfinite { return number < 0 ? "-inf" : "inf" }
        let text = "\(number)"
        return text.contains(".") || text.contains("e") ? text : text + ".0"
    }
}

/// Rendering of key paths the way TOML writes them.
public enum ConfigPath {
    /// `runtime.max_turns`, `providers.registry."my.local".base_url`.
    /// Array positions (`[0]` segments) attach without a dot: `input_modalities[0]`.
    public static func render(_ path: [String]) -> String {
        var text = ""
        for segment in path {
            if segment.hasPrefix("["), segment.hasSuffix("]"), segment.dropFirst().dropLast().allSatisfy(\.isNumber) {
                text += segment
            } else {
                text += (text.isEmpty ? "" : ".") + renderKey(segment)
            }
        }
        return text
    }

    /// A bare key when it only has `A-Za-z0-9_-`, else a quoted key.
    public static func renderKey(_ key: String) -> String {
        let bare =
            !key.isEmpty
            && key.unicodeScalars.allSatisfy { scalar in
                (scalar >= "a" && scalar <= "z") || (scalar >= "A" && scalar <= "Z") || (scalar >= "0" && scalar <= "9")
                    || scalar == "_" || scalar == "-"
            }
        return bare ? key : quoted(key)
    }

    /// A TOML basic string: quotes, backslashes and control characters escaped.
    public static func quoted(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    let hex = String(scalar.value, radix: 16, uppercase: true)
                    result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
    }
}
