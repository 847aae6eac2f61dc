import OxydraCore
import TOMLKit

/// Converts TOML text into a ``ConfigNode`` tree whose every value remembers its source.
public enum TOMLDocument {
    /// Parses a whole document. Syntax errors become a ``ConfigError`` with `file:line:column`.
    public static func parse(_ text: String, source: ConfigSource) throws(ConfigError) -> ConfigNode {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            let position = "\(error.source.begin.line):\(error.source.begin.column)"
            throw ConfigError(message: "invalid TOML at line \(position): \(error.description)", location: source)
        } catch {
            throw ConfigError(message: "invalid TOML: \(error)", location: source)
        }
        var issues: [ConfigIssue] = []
        let node = convert(table, path: [], source: source, issues: &issues)
        if !issues.isEmpty { throw ConfigError(issues) }
        return node
    }

    /// Parses one value the way it would be written after `key = ` in a TOML file; nil when the
    /// text is not a single TOML value (then callers treat it as a plain string).
    public static func parseValue(_ text: String, source: ConfigSource) -> ConfigNode? {
        guard !text.contains("\n"), !text.contains("\r"),
            let table = try? TOMLTable(string: "value = " + text), table.keys == ["value"],
            let value = table["value"]
        else { return nil }
        var issues: [ConfigIssue] = []
        let node = convert(value, path: [], source: source, issues: &issues)
        return issues.isEmpty ? node : nil
    }

    private static func convert(
        _ value: any TOMLValueConvertible, path: [String], source: ConfigSource, issues: inout [ConfigIssue]
    ) -> ConfigNode {
        switch value.type {
        case .table:
            var entries: [String: ConfigNode] = [:]
            if let table = value.table {
                for key in table.keys {
                    if let child = table[key] {
                        entries[key] = convert(child, path: path + [key], source: source, issues: &issues)
                    }
                }
            }
            return ConfigNode(.table(entries), source: source)
        case .array:
            var items: [ConfigNode] = []
            if let array = value.array {
                for (index, item) in array.enumerated() {
                    items.append(convert(item, path: path + ["[\(index)]"], source: source, issues: &issues))
                }
            }
            return ConfigNode(.array(items), source: source)
        case .string:
            return ConfigNode(.string(value.string ?? ""), source: source)
        case .int:
            return ConfigNode(.integer(value.int ?? 0), source: source)
        case .double:
            return ConfigNode(.float(value.double ?? 0), source: source)
        case .bool:
            return ConfigNode(.bool(value.bool ?? false), source: source)
        case .date, .time, .dateTime:
            issues.append(
                ConfigIssue(
                    path: ConfigPath.render(path),
                    message:
                        "\(ConfigPath.render(path)) is a TOML date/time; no Oxydra key takes one (quote it as a string)",
                    location: source))
            return ConfigNode(.string(""), source: source)
        }
    }
}
