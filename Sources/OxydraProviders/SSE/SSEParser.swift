import OxydraCore

/// One Server-Sent Event.
public struct SSEEvent: Sendable, Hashable {
    /// The `event:` name, or nil for the default ("message").
    public var event: String?
    /// The `data:` lines joined with `\n`.
    public var data: String
    public var id: String?

    public init(event: String? = nil, data: String, id: String? = nil) {
        self.event = event
        self.data = data
        self.id = id
    }
}

/// Why a byte stream is not a valid event stream.
public enum SSEError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A line exceeded the limit without a line break (a broken or hostile server).
    case lineTooLong(limit: Int)
    /// An event's text is not UTF-8.
    case invalidUTF8

    public var description: String {
        switch self {
        case .lineTooLong(let limit): "event stream line longer than \(limit) bytes"
        case .invalidUTF8: "event stream is not valid UTF-8"
        }
    }
}

/// An incremental parser for `text/event-stream` (the WHATWG Server-Sent Events format).
///
/// Feed it bytes exactly as they arrive — split anywhere, including inside a UTF-8 sequence or
/// between the `\r` and `\n` of a CRLF — and it returns the events completed so far. Lines end with
/// LF, CR or CRLF; `:` lines are comments; `data:` lines accumulate; `event:` names the event; a
/// blank line dispatches. One leading space after the colon is removed. At end of input a pending
/// event with data is dispatched too (servers that omit the final blank line).
public struct SSEParser: Sendable {
    public static let defaultMaxLineBytes = 4 << 20

    private let maxLineBytes: Int
    private var line: [UInt8] = []
    private var sawCarriageReturn = false
    private var data: [UInt8] = []
    private var hasData = false
    private var eventName: String?
    private var lastID: String?

    public init(maxLineBytes: Int = SSEParser.defaultMaxLineBytes) {
        self.maxLineBytes = maxLineBytes
        line.reserveCapacity(256)
        data.reserveCapacity(256)
    }

    /// Parses the next bytes; returns the events they complete.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) throws(SSEError) -> [SSEEvent] {
        var events: [SSEEvent] = []
        let buffer = bytes.bindMemory(to: UInt8.self)
        var position = 0
        let count = buffer.count
        while position < count {
            if sawCarriageReturn {
                sawCarriageReturn = false
                if buffer[position] == 0x0A {
                    position += 1
                    continue
                }
            }
            // Find the next line break in the remaining bytes: eight at a time (the lowest byte
            // flagged by the "has a zero byte" test on the word XORed with LF or CR is a real one),
            // then one at a time.
            var end = position
            if let base = buffer.baseAddress {
                let ones: UInt64 = 0x0101_0101_0101_0101
                while end + 8 <= count {
                    let word = UInt64(littleEndian: UnsafeRawPointer(base + end).loadUnaligned(as: UInt64.self))
                    let lf = word ^ (ones &* 0x0A)
                    let cr = word ^ (ones &* 0x0D)
                    let flags = (((lf &- ones) & ~lf) | ((cr &- ones) & ~cr)) & (ones &* 0x80)
                    if flags != 0 {
                        end += flags.trailingZeroBitCount / 8
                        break
                    }
                    end += 8
                }
            }
            while end < count {
                let byte = buffer[end]
                if byte == 0x0A || byte == 0x0D { break }
                end += 1
            }
            if line.count + (end - position) > maxLineBytes { throw .lineTooLong(limit: maxLineBytes) }
            guard end < count else {
                // The line goes on in the next bytes.
                line.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[position..<end]))
                break
            }
            sawCarriageReturn = buffer[end] == 0x0D
            let event: SSEEvent?
            if line.isEmpty {
                // The whole line is in these bytes (the usual case): read where it is.
                event = try processLine(UnsafeBufferPointer(rebasing: buffer[position..<end]))
            } else {
                line.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[position..<end]))
                event = try processBufferedLine()
            }
            position = end + 1
            if let event { events.append(event) }
        }
        return events
    }

    /// Convenience for byte collections.
    public mutating func feed(_ bytes: some Collection<UInt8>) throws(SSEError) -> [SSEEvent] {
        let array = Array(bytes)
        do {
            return try array.withUnsafeBytes { raw in try feed(raw) }
        } catch let error as SSEError {
            throw error
        } catch {
            preconditionFailure("unreachable: \(error)")
        }
    }

    /// Ends the input: dispatches a pending event that has data.
    public mutating func finish() throws(SSEError) -> [SSEEvent] {
        var events: [SSEEvent] = []
        if !line.isEmpty, let event = try processBufferedLine() { events.append(event) }
        if let event = try dispatch() { events.append(event) }
        return events
    }

    /// The line gathered in `line` over several feeds (taken out while it is read, then put back
    /// empty with its capacity).
    private mutating func processBufferedLine() throws(SSEError) -> SSEEvent? {
        var buffered: [UInt8] = []
        swap(&buffered, &line)
        defer {
            buffered.removeAll(keepingCapacity: true)
            line = buffered
        }
        return try buffered.withUnsafeBufferPointer { bytes in
            Result { () throws(SSEError) in try processLine(bytes) }
        }.get()
    }

    private mutating func processLine(_ line: UnsafeBufferPointer<UInt8>) throws(SSEError) -> SSEEvent? {
        if line.isEmpty { return try dispatch() }
        if line[0] == UInt8(ascii: ":") { return nil }
        let colon = line.firstIndex(of: UInt8(ascii: ":")) ?? line.count
        var valueStart = colon < line.count ? colon + 1 : line.count
        if valueStart < line.count && line[valueStart] == UInt8(ascii: " ") { valueStart += 1 }
        let name = UnsafeBufferPointer(rebasing: line[0..<colon])
        let value = UnsafeBufferPointer(rebasing: line[valueStart...])
        if Self.isField(name, "data") {
            if hasData { data.append(0x0A) }
            data.append(contentsOf: value)
            hasData = true
        } else if Self.isField(name, "event") {
            eventName = try Self.text(value)
        } else if Self.isField(name, "id") {
            if !value.contains(0) { lastID = try Self.text(value) }
        }
        // `retry:` and unknown fields are ignored, as the standard says.
        return nil
    }

    private mutating func dispatch() throws(SSEError) -> SSEEvent? {
        defer {
            data.removeAll(keepingCapacity: true)
            hasData = false
            eventName = nil
        }
        guard hasData else { return nil }
        guard let text = String(exactUTF8: data[...]) else { throw .invalidUTF8 }
        return SSEEvent(event: eventName, data: text, id: lastID)
    }

    /// A field name compared byte by byte (the generic `elementsEqual` cost a few hundred
    /// instructions per line).
    private static func isField(_ name: UnsafeBufferPointer<UInt8>, _ field: StaticString) -> Bool {
        guard name.count == field.utf8CodeUnitCount else { return false }
        let literal = field.utf8Start
        var offset = 0
        for byte in name {
            if byte != literal[offset] { return false }
            offset += 1
        }
        return true
    }

    private static func text(_ bytes: UnsafeBufferPointer<UInt8>) throws(SSEError) -> String {
        guard let text = String(exactUTF8: bytes) else { throw .invalidUTF8 }
        return text
    }
}
