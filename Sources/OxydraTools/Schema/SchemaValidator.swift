import OxydraCore

/// Validates tool arguments against the JSON Schema subset Oxydra's tools use: `type` (one or a
/// list), `properties`, `required`, `additionalProperties` (bool or schema), `enum`, `items`,
/// `minimum`/`maximum`, `minLength`/`maxLength` (characters), `minItems`/`maxItems`.
///
/// Messages follow the wording of the reference `jsonschema` implementation that models have seen
/// most (`"path" is a required property`), prefixed with the location for nested values.
public enum SchemaValidator {
    /// Every violation, in document order; empty when `value` is valid.
    public static func violations(of value: JSONValue, against schema: JSONValue) -> [String] {
        var problems: [String] = []
        validate(value, schema, location: [], into: &problems)
        return problems
    }

    private static func validate(
        _ value: JSONValue, _ schema: JSONValue, location: [String], into problems: inout [String]
    ) {
        func report(_ message: String) {
            problems.append(location.isEmpty ? message : "at /\(location.joined(separator: "/")): \(message)")
        }
        guard case .object(let rules) = schema else { return }

        if let type = rules["type"] {
            let allowed = type.arrayValue?.compactMap(\.stringValue) ?? [type.stringValue].compactMap { $0 }
            if !allowed.isEmpty && !allowed.contains(where: { matches(value, type: $0) }) {
                let expected =
                    allowed.count == 1 ? "'\(allowed[0])'" : allowed.map { "'\($0)'" }.joined(separator: ", ")
                report("\(render(value)) is not of type \(expected)")
                return
            }
        }
        if let options = rules["enum"]?.arrayValue, !options.contains(where: { equalJSON($0, value) }) {
            report("\(render(value)) is not one of [\(options.map(render).joined(separator: ", "))]")
        }
        switch value {
        case .object(let object):
            let properties = rules["properties"]?.objectValue ?? [:]
            for name in rules["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] where object[name] == nil {
                report("\"\(name)\" is a required property")
            }
            let extra = object.keys.filter { properties[$0] == nil }.sorted()
            switch rules["additionalProperties"] {
            case .bool(false)?:
                if !extra.isEmpty {
                    let names = extra.map { "'\($0)'" }.joined(separator: ", ")
                    report(
                        "Additional properties are not allowed (\(names) \(extra.count == 1 ? "was" : "were") unexpected)"
                    )
                }
            case .object(let extraSchema)?:
                for name in extra {
                    validate(object[name]!, .object(extraSchema), location: location + [name], into: &problems)
                }
            default:
                break
            }
            for name in object.keys.sorted() {
                if let propertySchema = properties[name] {
                    validate(object[name]!, propertySchema, location: location + [name], into: &problems)
                }
            }
        case .array(let items):
            if let minimum = rules["minItems"]?.intValue, items.count < minimum {
                report("\(render(value)) should have at least \(minimum) item\(minimum == 1 ? "" : "s")")
            }
            if let maximum = rules["maxItems"]?.intValue, items.count > maximum {
                report("array has \(items.count) items; at most \(maximum) allowed")
            }
            if let itemSchema = rules["items"] {
                for (index, item) in items.enumerated() {
                    validate(item, itemSchema, location: location + [String(index)], into: &problems)
                }
            }
        case .string(let text):
            let length = text.count
            if let minimum = rules["minLength"]?.intValue, length < minimum {
                report(
                    minimum == 1
                        ? "\(render(value)) should be non-empty"
                        : "\(render(value)) is too short (minimum \(minimum) characters)")
            }
            if let maximum = rules["maxLength"]?.intValue, length > maximum {
                report("string of \(length) characters is too long (maximum \(maximum))")
            }
        case .integer, .number:
            let number = numeric(value)
            if let minimum = rules["minimum"].flatMap(numericOptional), number < minimum {
                report("\(render(value)) is less than the minimum of \(render(rules["minimum"]!))")
            }
            if let maximum = rules["maximum"].flatMap(numericOptional), number > maximum {
                report("\(render(value)) is greater than the maximum of \(render(rules["maximum"]!))")
            }
        default:
            break
        }
    }

    static func matches(_ value: JSONValue, type: String) -> Bool {
        switch (type, value) {
        case ("object", .object), ("array", .array), ("string", .string), ("boolean", .bool), ("null", .null): true
        case ("integer", .integer): true
        case ("integer", .number(let number)): number.rounded() == number
        case ("number", .integer), ("number", .number): true
        default: false
        }
    }

    private static func numeric(_ value: JSONValue) -> Double { numericOptional(value) ?? 0 }

    private static func numericOptional(_ value: JSONValue) -> Double? {
        switch value {
        case .integer(let number): Double(number)
        case .number(let number): number
        default: nil
        }
    }

    private static func equalJSON(_ lhs: JSONValue, _ rhs: JSONValue) -> Bool {
        if let left = numericOptional(lhs), let right = numericOptional(rhs) { return left == right }
        return lhs == rhs
    }

    /// A short rendering of a value for messages (long strings and containers are abbreviated).
    static func render(_ value: JSONValue) -> String {
        switch value {
        case .string(let text): return "'\(text.count > 60 ? String(text.prefix(60)) + "…" : text)'"
        case .object: return "{…}"
        case .array(let items): return items.isEmpty ? "[]" : "[…]"
        default: return value.compactText
        }
    }
}
