import OxydraCore

/// A tool whose arguments decode into a `Decodable` struct after schema validation.
///
/// The registry validates the JSON against ``Tool/declaration`` first, so decoding only fails when
/// the schema and the struct disagree — a test decodes every tool's schema-valid examples to keep
/// them in step.
public protocol TypedTool: Tool {
    associatedtype Arguments: Decodable & Sendable
    func run(_ arguments: Arguments, context: ToolContext) async throws -> ToolOutput
}

extension TypedTool {
    public func run(_ arguments: JSONValue, context: ToolContext) async throws -> ToolOutput {
        try await run(try Self.decode(arguments, tool: declaration.name), context: context)
    }

    static func decode(_ arguments: JSONValue, tool: String) throws(ToolError) -> Arguments {
        do {
            // JSONWriter, not JSONEncoder: the same text for half the work (a call's arguments are small).
            return try JSONDecoder().decode(Arguments.self, from: Data(JSONWriter.text(arguments).utf8))
        } catch {
            throw .invalidArguments(tool: tool, message: DecodingErrorDescription.describe(error))
        }
    }
}

/// Building blocks for tool schemas (`additionalProperties` is always false: unknown arguments
/// are errors the model can see and fix).
public enum Schema {
    public static func object(_ properties: [String: JSONValue], required: [String] = []) -> JSONValue {
        [
            "type": "object", "properties": .object(properties), "required": .array(required.map(JSONValue.string)),
            "additionalProperties": false,
        ]
    }

    public static func string(
        _ description: String, minLength: Int? = nil, maxLength: Int? = nil, enum values: [String]? = nil
    )
        -> JSONValue
    {
        var schema: [String: JSONValue] = ["type": "string", "description": .string(description)]
        if let minLength { schema["minLength"] = .integer(minLength) }
        if let maxLength { schema["maxLength"] = .integer(maxLength) }
        if let values { schema["enum"] = .array(values.map(JSONValue.string)) }
        return .object(schema)
    }

    public static func integer(_ description: String, minimum: Int? = nil, maximum: Int? = nil) -> JSONValue {
        var schema: [String: JSONValue] = ["type": "integer", "description": .string(description)]
        if let minimum { schema["minimum"] = .integer(minimum) }
        if let maximum { schema["maximum"] = .integer(maximum) }
        return .object(schema)
    }

    public static func boolean(_ description: String) -> JSONValue {
        ["type": "boolean", "description": .string(description)]
    }

    public static func array(_ description: String, items: JSONValue, minItems: Int? = nil, maxItems: Int? = nil)
        -> JSONValue
    {
        var schema: [String: JSONValue] = ["type": "array", "description": .string(description), "items": items]
        if let minItems { schema["minItems"] = .integer(minItems) }
        if let maxItems { schema["maxItems"] = .integer(maxItems) }
        return .object(schema)
    }
}
