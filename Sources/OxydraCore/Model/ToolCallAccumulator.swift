/// Why streamed tool-call fragments could not be turned into a call.
public enum ToolCallAssemblyError: Error, Sendable, Hashable, CustomStringConvertible {
    case missingID(index: Int)
    case missingName(index: Int)

    public var description: String {
        switch self {
        case .missingID(let index): "streamed tool call at index \(index) is missing its id"
        case .missingName(let index): "streamed tool call at index \(index) is missing its function name"
        }
    }
}

/// Collects ``ToolCallDelta`` fragments of one response into complete ``ToolCall``s.
///
/// Fragments are keyed by `index` and may interleave (several calls streaming at once). `id` and
/// `name` are last-write-wins, argument fragments are appended, the first `metadata` is kept.
/// Arguments that are not JSON become ``ToolArguments/malformed(raw:error:)`` — never `{}` — unless
/// they are several JSON objects back to back (`{..}{..}`, a known model quirk), which become one
/// call each with ids `<id>_0`, `<id>_1`, ….
public struct ToolCallAccumulator: Sendable {
    private struct Slot: Sendable {
        var id: String?
        var name: String?
        var arguments = ""
        var metadata: JSONValue?
    }

    private var slots: [Int: Slot] = [:]

    public init() {}

    public var isEmpty: Bool { slots.isEmpty }

    public mutating func add(_ delta: ToolCallDelta) {
        var slot = slots[delta.index] ?? Slot()
        if let id = delta.id, !id.isEmpty { slot.id = id }
        if let name = delta.name, !name.isEmpty { slot.name = name }
        if let fragment = delta.argumentsFragment { slot.arguments += fragment }
        if slot.metadata == nil { slot.metadata = delta.metadata }
        slots[delta.index] = slot
    }

    /// The calls in index order, or the first assembly problem.
    public func build() throws(ToolCallAssemblyError) -> [ToolCall] {
        var calls: [ToolCall] = []
        for index in slots.keys.sorted() {
            let slot = slots[index]!
            guard let name = slot.name else { throw .missingName(index: index) }
            guard let id = slot.id else { throw .missingID(index: index) }
            let arguments = ToolArguments(parsing: slot.arguments)
            if case .malformed = arguments, let objects = Self.splitConcatenatedObjects(slot.arguments) {
                for (offset, object) in objects.enumerated() {
                    calls.append(
                        ToolCall(id: "\(id)_\(offset)", name: name, arguments: object, metadata: slot.metadata))
                }
                continue
            }
            calls.append(ToolCall(id: id, name: name, arguments: arguments, metadata: slot.metadata))
        }
        return calls
    }

    /// `{"a":1}{"b":2}` → two objects; nil unless the text is two or more JSON objects and nothing else.
    static func splitConcatenatedObjects(_ text: String) -> [JSONValue]? {
        let bytes = Array(text.utf8)
        var objects: [JSONValue] = []
        var depth = 0
        var start: Int?
        var inString = false
        var escaped = false
        for (offset, byte) in bytes.enumerated() {
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""):
                inString = true
            case UInt8(ascii: "{"):
                if depth == 0 { start = offset }
                depth += 1
            case UInt8(ascii: "}"):
                depth -= 1
                if depth < 0 { return nil }
                if depth == 0, let begin = start {
                    let slice = String(decoding: bytes[begin...offset], as: UTF8.self)
                    guard let value = try? JSONValue(parsing: slice), case .object = value else { return nil }
                    objects.append(value)
                    start = nil
                }
            case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t"):
                continue
            default:
                if depth == 0 { return nil }
            }
        }
        return depth == 0 && objects.count >= 2 ? objects : nil
    }
}
