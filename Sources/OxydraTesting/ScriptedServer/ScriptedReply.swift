import OxydraCore

/// One tool call the scripted model makes.
public struct ScriptedToolCall: Sendable, Hashable {
    public var id: String
    public var name: String
    /// The arguments as JSON text (or deliberately broken text).
    public var arguments: String
    /// How many stream fragments the arguments are split into (1 = the whole call in one chunk).
    public var fragments: Int

    public init(id: String, name: String, arguments: String, fragments: Int = 3) {
        self.id = id
        self.name = name
        self.arguments = arguments
        self.fragments = max(1, fragments)
    }
}

/// What the scripted model answers to one request, and how the answer is delivered.
///
/// The content (text, reasoning, tool calls, usage) is rendered in whichever wire format the request
/// used (OpenAI Chat, Anthropic, Gemini, Responses; streaming or not), so one script drives every
/// provider. The delivery fields inject the faults real networks produce.
public struct ScriptedReply: Sendable {
    // Content
    /// Answer text, one element per streamed delta.
    public var text: [String] = []
    public var reasoning: [String] = []
    public var toolCalls: [ScriptedToolCall] = []
    /// Nil omits usage entirely (as llama.cpp and some Ollama versions do).
    public var usage: Usage? = Usage(promptTokens: 11, completionTokens: 7, totalTokens: 18)
    /// Provider-neutral finish: "stop", "length" or "tool_calls" (mapped to each format's spelling).
    public var finish: String?
    /// Responses API: the response id (for `previous_response_id` chaining tests).
    public var responseID: String = "resp_scripted"
    /// OpenAI: send tool-call arguments as a JSON object instead of a string.
    public var argumentsAsObject = false

    // Delivery
    public var status = 200
    public var headers: [(String, String)] = []
    /// Replaces the rendered body entirely (error bodies, malformed JSON, arbitrary SSE text).
    public var rawBody: String?
    /// Overrides the content type (e.g. `text/html` where an event stream is expected).
    public var contentType: String?
    /// Wait before sending the response head.
    public var headDelay: Duration = .zero
    /// Wait between body pieces.
    public var chunkDelay: Duration = .zero
    /// Re-split the body into pieces of this many bytes (splits land anywhere, even inside UTF-8).
    public var fragmentBytes: Int?
    /// Keep the connection open after the reply (`Connection: keep-alive`) for the client's next
    /// request, instead of closing it.
    public var keepAlive = false
    /// Close the connection after this many body bytes (mid-chunk: the client sees a broken transfer).
    public var dropAfterBytes: Int?
    /// Close the connection as soon as the request is in, sending nothing (a server whose
    /// keep-alive timeout ran out as the request arrived, or one that died).
    public var closeWithoutAnswer = false
    /// Omit the format's end marker (`[DONE]`, `message_stop`, `response.completed`, Gemini's finishReason).
    public var omitEndMarker = false
    /// A whole HTTP response recorded from a real server (status line, headers, body framing),
    /// sent byte for byte — in `fragmentBytes` pieces `chunkDelay` apart when set — then closed.
    public var recordedResponse: [UInt8]?

    public init() {}

    /// A plain text answer, streamed word by word.
    public static func text(
        _ text: String, usage: Usage? = Usage(promptTokens: 11, completionTokens: 7, totalTokens: 18)
    )
        -> ScriptedReply
    {
        var reply = ScriptedReply()
        reply.text = Self.words(text)
        reply.usage = usage
        return reply
    }

    /// A reply that calls tools (and optionally says something first).
    public static func toolCalls(_ calls: [ScriptedToolCall], text: String = "") -> ScriptedReply {
        var reply = ScriptedReply()
        reply.toolCalls = calls
        reply.text = text.isEmpty ? [] : Self.words(text)
        return reply
    }

    /// An error status with a provider-style JSON error body.
    public static func status(_ status: Int, message: String = "scripted error", retryAfter: String? = nil)
        -> ScriptedReply
    {
        var reply = ScriptedReply()
        reply.status = status
        reply.rawBody = #"{"error":{"message":"\#(message)","type":"scripted"}}"#
        reply.contentType = "application/json"
        if let retryAfter { reply.headers.append(("Retry-After", retryAfter)) }
        return reply
    }

    /// A response recorded from a real server, replayed byte for byte (see ``recordedResponse``).
    public static func recorded(_ bytes: [UInt8], fragmentBytes: Int? = nil) -> ScriptedReply {
        var reply = ScriptedReply()
        reply.recordedResponse = bytes
        reply.fragmentBytes = fragmentBytes
        return reply
    }

    /// A body sent verbatim with the given status and content type.
    public static func raw(_ body: String, status: Int = 200, contentType: String = "text/event-stream")
        -> ScriptedReply
    {
        var reply = ScriptedReply()
        reply.status = status
        reply.rawBody = body
        reply.contentType = contentType
        return reply
    }

    /// Splits text into deltas at word boundaries, keeping the spaces.
    static func words(_ text: String) -> [String] {
        var pieces: [String] = []
        var current = ""
        for character in text {
            current.append(character)
            if character == " " {
                pieces.append(current)
                current = ""
            }
        }
        if !current.isEmpty { pieces.append(current) }
        return pieces
    }

    var effectiveFinish: String { finish ?? (toolCalls.isEmpty ? "stop" : "tool_calls") }
}

/// A request the scripted server received.
public struct RecordedRequest: Sendable {
    public var method: String
    /// Path and query, e.g. `/v1/chat/completions` or `/v1beta/models/x:streamGenerateContent?alt=sse`.
    public var path: String
    public var headers: [(String, String)]
    public var body: Data

    public func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    /// The body as JSON (nil if it is not JSON).
    public var json: JSONValue? { try? JSONDecoder().decode(JSONValue.self, from: body) }
}
