/// Who authored a message in a conversation.
public enum MessageRole: String, Sendable, Hashable, Codable, CaseIterable {
    case system, user, assistant, tool
}

/// Binary content attached to a message (an image the user sent, a PDF). `data` is the raw bytes;
/// on the wire (JSON) it is base64.
public struct Attachment: Sendable, Hashable, Codable {
    public var mimeType: String
    public var data: Data

    public init(mimeType: String, data: Data) {
        self.mimeType = mimeType
        self.data = data
    }

    enum CodingKeys: String, CodingKey {
        case mimeType = "mime_type"
        case data
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        mimeType = try container.decode(String.self, forKey: .mimeType)
        let base64 = try container.decode(String.self, forKey: .data)
        guard let bytes = Data(base64Encoded: base64) else {
            throw DecodingError.dataCorruptedError(
                forKey: .data, in: container, debugDescription: "attachment data is not valid base64")
        }
        data = bytes
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(mimeType, forKey: .mimeType)
        try container.encode(data.base64EncodedString(), forKey: .data)
    }

    /// The input modality this attachment needs from a model (`image/png` → `.image`).
    public var modality: InputModality { InputModality(mimeType: mimeType) }
}

/// The arguments of a tool call as the model produced them.
///
/// Models sometimes emit arguments that are not JSON. Those are kept as `.malformed` with the raw
/// text and the parse error, so the runtime can tell the model exactly what was wrong instead of
/// running the tool with guessed (`{}`) arguments.
public enum ToolArguments: Sendable, Hashable {
    case json(JSONValue)
    case malformed(raw: String, error: String)

    /// Parses a streamed or string-encoded argument text. Blank text means "no arguments" (`{}`).
    public init(parsing raw: String) {
        let trimmed = raw.trimmed
        if trimmed.isEmpty {
            self = .json(.object([:]))
            return
        }
        do {
            self = .json(try JSONValue(parsing: trimmed))
        } catch {
            self = .malformed(raw: raw, error: ToolArguments.describe(error))
        }
    }

    /// The arguments as a JSON text, as providers expect them (`function.arguments`).
    /// Malformed arguments are echoed back verbatim.
    public var text: String {
        switch self {
        case .json(let value): value.compactText
        case .malformed(let raw, _): raw
        }
    }

    static func describe(_ error: any Error) -> String {
        if let syntax = error as? JSONSyntaxError { return "not valid JSON (\(syntax))" }
        if let decoding = error as? DecodingError {
            switch decoding {
            case .dataCorrupted(let context):
                if let underlying = context.underlyingError {
                    return "not valid JSON (\(underlying))"
                }
                return "not valid JSON (\(context.debugDescription))"
            default: return "not valid JSON (\(decoding))"
            }
        }
        return "not valid JSON (\(error))"
    }
}

/// A request from the model to run one tool.
public struct ToolCall: Sendable, Hashable, Codable {
    public var id: String
    public var name: String
    public var arguments: ToolArguments
    /// Provider-specific data that must be sent back with the call (Gemini's `thoughtSignature`).
    public var metadata: JSONValue?

    public init(id: String, name: String, arguments: ToolArguments, metadata: JSONValue? = nil) {
        self.id = id
        self.name = name
        self.arguments = arguments
        self.metadata = metadata
    }

    public init(id: String, name: String, arguments: JSONValue, metadata: JSONValue? = nil) {
        self.init(id: id, name: name, arguments: .json(arguments), metadata: metadata)
    }

    enum CodingKeys: String, CodingKey {
        case id, name, arguments, metadata
        case argumentsError = "arguments_error"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(String.self, forKey: .id)
        name = try container.decode(String.self, forKey: .name)
        metadata = try container.decodeIfPresent(JSONValue.self, forKey: .metadata)
        if let error = try container.decodeIfPresent(String.self, forKey: .argumentsError) {
            arguments = .malformed(raw: try container.decode(String.self, forKey: .arguments), error: error)
        } else {
            arguments = .json(try container.decodeIfPresent(JSONValue.self, forKey: .arguments) ?? .object([:]))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(name, forKey: .name)
        switch arguments {
        case .json(let value):
            try container.encode(value, forKey: .arguments)
        case .malformed(let raw, let error):
            try container.encode(raw, forKey: .arguments)
            try container.encode(error, forKey: .argumentsError)
        }
        try container.encodeIfPresent(metadata, forKey: .metadata)
    }
}

/// One message of a conversation; also the payload stored in memory.
///
/// JSON shape: `{"role", "content"?, "tool_calls"?, "tool_call_id"?, "attachments"?}`; empty fields
/// are omitted and unknown fields ignored, so stored history survives additive changes.
public struct Message: Sendable, Hashable, Codable {
    public var role: MessageRole
    public var content: String?
    public var toolCalls: [ToolCall]
    /// For `role == .tool`: the id of the call this message answers.
    public var toolCallID: String?
    public var attachments: [Attachment]

    public init(
        role: MessageRole, content: String?, toolCalls: [ToolCall] = [], toolCallID: String? = nil,
        attachments: [Attachment] = []
    ) {
        self.role = role
        self.content = content
        self.toolCalls = toolCalls
        self.toolCallID = toolCallID
        self.attachments = attachments
    }

    public static func system(_ text: String) -> Message { Message(role: .system, content: text) }
    public static func user(_ text: String, attachments: [Attachment] = []) -> Message {
        Message(role: .user, content: text, attachments: attachments)
    }
    public static func assistant(_ text: String?, toolCalls: [ToolCall] = []) -> Message {
        Message(role: .assistant, content: text, toolCalls: toolCalls)
    }
    public static func toolResult(callID: String, content: String) -> Message {
        Message(role: .tool, content: content, toolCallID: callID)
    }

    enum CodingKeys: String, CodingKey {
        case role, content, attachments
        case toolCalls = "tool_calls"
        case toolCallID = "tool_call_id"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        role = try container.decode(MessageRole.self, forKey: .role)
        content = try container.decodeIfPresent(String.self, forKey: .content)
        toolCalls = try container.decodeIfPresent([ToolCall].self, forKey: .toolCalls) ?? []
        toolCallID = try container.decodeIfPresent(String.self, forKey: .toolCallID)
        attachments = try container.decodeIfPresent([Attachment].self, forKey: .attachments) ?? []
    }

    /// The same JSON as ``encode(to:)`` (what ``init(from:)`` reads back), written without an
    /// `Encoder`: every message a turn adds is stored this way, and `JSONEncoder` costs several
    /// times more.
    public var storedJSON: String {
        var members: [String: JSONValue] = ["role": .string(role.rawValue)]
        if let content { members["content"] = .string(content) }
        if !toolCalls.isEmpty {
            members["tool_calls"] = .array(
                toolCalls.map { call in
                    var wire: [String: JSONValue] = ["id": .string(call.id), "name": .string(call.name)]
                    switch call.arguments {
                    case .json(let value): wire["arguments"] = value
                    case .malformed(let raw, let error):
                        wire["arguments"] = .string(raw)
                        wire["arguments_error"] = .string(error)
                    }
                    if let metadata = call.metadata { wire["metadata"] = metadata }
                    return .object(wire)
                })
        }
        if let toolCallID { members["tool_call_id"] = .string(toolCallID) }
        if !attachments.isEmpty {
            members["attachments"] = .array(
                attachments.map { ["mime_type": .string($0.mimeType), "data": .string($0.data.base64EncodedString())] })
        }
        return JSONWriter.text(.object(members), sortedKeys: true)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(role, forKey: .role)
        try container.encodeIfPresent(content, forKey: .content)
        if !toolCalls.isEmpty { try container.encode(toolCalls, forKey: .toolCalls) }
        try container.encodeIfPresent(toolCallID, forKey: .toolCallID)
        if !attachments.isEmpty { try container.encode(attachments, forKey: .attachments) }
    }
}
