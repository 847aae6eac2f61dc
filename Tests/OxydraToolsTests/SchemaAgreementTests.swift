import OxydraCore
import OxydraTesting
import Testing

@testable import OxydraTools

/// A decoder that records which keys a `Decodable` type reads (answering every request with a
/// placeholder), so each tool's argument struct can be compared with its JSON Schema.
private final class KeyRecorder: Decoder {
    var codingPath: [any CodingKey] = []
    var userInfo: [CodingUserInfoKey: Any] = [:]
    var keys: Set<String> = []

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        KeyedDecodingContainer(Keyed<Key>(recorder: self))
    }
    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        throw DecodingError.typeMismatch([Any].self, .init(codingPath: [], debugDescription: "nested"))
    }
    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        throw DecodingError.typeMismatch(Any.self, .init(codingPath: [], debugDescription: "nested"))
    }

    struct Keyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let recorder: KeyRecorder
        var codingPath: [any CodingKey] { [] }
        var allKeys: [Key] { [] }
        func contains(_ key: Key) -> Bool { true }
        func decodeNil(forKey key: Key) throws -> Bool {
            recorder.keys.insert(key.stringValue)
            return true
        }
        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
            recorder.keys.insert(key.stringValue)
            if let value = placeholder(type) { return value }
            throw DecodingError.typeMismatch(type, .init(codingPath: [key], debugDescription: "unsupported"))
        }
        func placeholder<T>(_ type: T.Type) -> T? {
            switch type {
            case is String.Type: "x" as? T
            case is Int.Type: 1 as? T
            case is Bool.Type: true as? T
            case is Double.Type: 1.0 as? T
            case is [String].Type: [String]() as? T
            default: nil
            }
        }
        func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws
            -> KeyedDecodingContainer<NestedKey>
        {
            recorder.keys.insert(key.stringValue)
            return KeyedDecodingContainer(Keyed<NestedKey>(recorder: KeyRecorder()))
        }
        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
            recorder.keys.insert(key.stringValue)
            throw DecodingError.typeMismatch([Any].self, .init(codingPath: [key], debugDescription: "nested"))
        }
        func superDecoder() throws -> any Decoder { recorder }
        func superDecoder(forKey key: Key) throws -> any Decoder { recorder }
    }
}

private func decodedKeys<T: TypedTool>(_ tool: T) -> Set<String> {
    let recorder = KeyRecorder()
    _ = try? T.Arguments(from: recorder)
    return recorder.keys
}

/// A value that satisfies a (sub)schema, for the round trip below.
private func example(for schema: JSONValue) -> JSONValue {
    if let values = schema["enum"]?.arrayValue, let first = values.first { return first }
    let type = schema["type"]?.stringValue ?? schema["type"]?.arrayValue?.first?.stringValue
    switch type {
    case "object":
        var object: [String: JSONValue] = [:]
        for (key, property) in schema["properties"]?.objectValue ?? [:] { object[key] = example(for: property) }
        return .object(object)
    case "array": return .array([example(for: schema["items"] ?? ["type": "string"])])
    case "integer": return .integer(schema["minimum"]?.intValue ?? 1)
    case "number": return .number(1.5)
    case "boolean": return .bool(true)
    default:
        let length = schema["minLength"]?.intValue ?? 1
        return .string("/shared/" + String(repeating: "x", count: max(1, length)))
    }
}

@Suite("Tool schemas and argument structs agree")
struct SchemaAgreementTests {
    let tools: [any Tool] = {
        let fixture = try! WorkspaceFixture()
        defer { fixture.remove() }
        let confinement = PathConfinement(workspace: fixture.workspace)
        return FileTools.all(confinement: confinement, audit: AuditLog(path: nil))
    }()

    @Test func everyToolDecodesExactlyItsSchemaProperties() throws {
        #expect(tools.count == 7)
        for tool in tools {
            let schema = tool.declaration.parameters
            let properties = Set(schema["properties"]?.objectValue?.keys ?? [:].keys)
            guard let typed = tool as? any TypedTool else {
                Issue.record("\(tool.declaration.name) is not a TypedTool")
                continue
            }
            #expect(decodedKeys(typed) == properties, "\(tool.declaration.name): struct and schema disagree")
            #expect(schema["additionalProperties"] == false, "\(tool.declaration.name) accepts unknown arguments")
            // A schema-valid example decodes.
            let sample = example(for: schema)
            #expect(
                SchemaValidator.violations(of: sample, against: schema).isEmpty, "\(tool.declaration.name): \(sample)")
            #expect(throws: Never.self) { try decodeOnly(typed, sample) }
            // Every required property is required by both.
            for required in schema["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] {
                var missing = sample.objectValue ?? [:]
                missing[required] = nil
                #expect(!SchemaValidator.violations(of: .object(missing), against: schema).isEmpty)
            }
        }
    }

    private func decodeOnly<T: TypedTool>(_ tool: T, _ value: JSONValue) throws {
        _ = try T.decode(value, tool: tool.declaration.name)
    }

    @Test func theToolSurfaceUsesTheOriginalNames() {
        #expect(
            tools.map(\.declaration.name).sorted() == [
                "file_delete", "file_edit", "file_list", "file_read", "file_search", "file_write", "vault_copyto",
            ])
        for legacy in ["read_file", "write_file", "edit_file", "bash"] {
            #expect(!tools.contains { $0.declaration.name == legacy })
        }
    }
}
