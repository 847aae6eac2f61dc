/// Typed access to the members of a JSON object received from the network, with errors that name
/// the offending field (`send_turn.payload.prompt: expected a string, got integer`).
public struct FieldReader: Sendable {
    public let members: [String: JSONValue]
    /// Where this object sits in the frame, for messages (`send_turn.payload`).
    public let path: String

    public init(_ value: JSONValue, path: String) throws(WireError) {
        guard case .object(let members) = value else {
            throw WireError("\(path): expected an object, got \(value.typeName)")
        }
        self.members = members
        self.path = path
    }

    private func present(_ key: String) -> JSONValue? {
        switch members[key] {
        case .none, .null?: nil
        case let value?: value
        }
    }

    public func string(_ key: String) throws(WireError) -> String {
        guard let value = try optionalString(key) else { throw WireError("\(path).\(key): required string is missing") }
        return value
    }

    /// A required string that is not blank.
    public func nonBlankString(_ key: String) throws(WireError) -> String {
        let value = try string(key)
        if value.trimmed.isEmpty { throw WireError("\(path).\(key): must not be empty") }
        return value
    }

    public func optionalString(_ key: String) throws(WireError) -> String? {
        guard let value = present(key) else { return nil }
        guard case .string(let text) = value else {
            throw WireError("\(path).\(key): expected a string, got \(value.typeName)")
        }
        return text
    }

    public func int(_ key: String) throws(WireError) -> Int {
        guard let value = try optionalInt(key) else { throw WireError("\(path).\(key): required integer is missing") }
        return value
    }

    public func optionalInt(_ key: String) throws(WireError) -> Int? {
        guard let value = present(key) else { return nil }
        guard let number = value.intValue else {
            throw WireError("\(path).\(key): expected an integer, got \(value.typeName)")
        }
        return number
    }

    public func optionalDouble(_ key: String) throws(WireError) -> Double? {
        switch present(key) {
        case nil: return nil
        case .integer(let number)?: return Double(number)
        case .number(let number)?: return number
        case let value?: throw WireError("\(path).\(key): expected a number, got \(value.typeName)")
        }
    }

    public func bool(_ key: String, default fallback: Bool) throws(WireError) -> Bool {
        guard let value = present(key) else { return fallback }
        guard case .bool(let flag) = value else {
            throw WireError("\(path).\(key): expected true or false, got \(value.typeName)")
        }
        return flag
    }

    public func object(_ key: String) throws(WireError) -> FieldReader {
        guard let reader = try optionalObject(key) else {
            throw WireError("\(path).\(key): required object is missing")
        }
        return reader
    }

    public func optionalObject(_ key: String) throws(WireError) -> FieldReader? {
        guard let value = present(key) else { return nil }
        return try FieldReader(value, path: "\(path).\(key)")
    }

    public func array(_ key: String) throws(WireError) -> [JSONValue] {
        guard let value = present(key) else { return [] }
        guard case .array(let items) = value else {
            throw WireError("\(path).\(key): expected an array, got \(value.typeName)")
        }
        return items
    }

    public func stringArray(_ key: String) throws(WireError) -> [String] {
        var result: [String] = []
        for (index, item) in try array(key).enumerated() {
            guard case .string(let text) = item else {
                throw WireError("\(path).\(key)[\(index)]: expected a string, got \(item.typeName)")
            }
            result.append(text)
        }
        return result
    }
}

/// A message from the network that does not have the expected shape.
public struct WireError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension JSONValue {
    /// Builds an object leaving out nil members.
    public static func compactObject(_ members: KeyValuePairs<String, JSONValue?>) -> JSONValue {
        var object: [String: JSONValue] = [:]
        object.reserveCapacity(members.count)
        for (key, value) in members {
            if let value { object[key] = value }
        }
        return .object(object)
    }
}
