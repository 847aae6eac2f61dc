/// The framing of the bootstrap envelope, the control socket and the shell daemon: a 4-byte
/// big-endian length followed by that many bytes of compact JSON.
public enum LengthPrefixedFrame {
    /// Largest frame accepted from a peer (16 MiB).
    public static let maxLength = 16 << 20

    public static func encode(_ body: some Collection<UInt8>) -> [UInt8] {
        let length = UInt32(body.count)
        var bytes: [UInt8] = [
            UInt8(truncatingIfNeeded: length >> 24), UInt8(truncatingIfNeeded: length >> 16),
            UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length),
        ]
        bytes.reserveCapacity(4 + body.count)
        bytes.append(contentsOf: body)
        return bytes
    }

    public static func encode(_ value: JSONValue) -> [UInt8] {
        var text = JSONWriter.text(value)
        return text.withUTF8 { encode($0) }
    }

    /// Decodes exactly one frame: the input must be the 4-byte header plus exactly `length` bytes.
    public static func decodeSingle(_ bytes: [UInt8]) throws(WireError) -> [UInt8] {
        guard bytes.count >= 4 else {
            throw WireError("frame is \(bytes.count) bytes; a frame starts with a 4-byte big-endian length")
        }
        let length = Int(header(bytes[0..<4]))
        guard length == bytes.count - 4 else {
            throw WireError("frame header says \(length) bytes but \(bytes.count - 4) bytes follow it")
        }
        return Array(bytes[4...])
    }

    static func header(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var index = bytes.startIndex
        var value: UInt32 = 0
        for _ in 0..<4 {
            value = value << 8 | UInt32(bytes[index])
            index += 1
        }
        return value
    }
}

/// Splits a byte stream into length-prefixed frames as bytes arrive.
public struct LengthPrefixedDecoder: Sendable {
    private var buffer: [UInt8] = []
    private var start = 0
    public let maxLength: Int

    public init(maxLength: Int = LengthPrefixedFrame.maxLength) { self.maxLength = maxLength }

    public mutating func append(_ bytes: some Sequence<UInt8>) {
        buffer.append(contentsOf: bytes)
    }

    /// The next complete frame body, nil when more bytes are needed; throws for an oversized frame.
    public mutating func next() throws(WireError) -> [UInt8]? {
        guard buffer.count - start >= 4 else { return nil }
        let length = Int(LengthPrefixedFrame.header(buffer[start..<start + 4]))
        guard length <= maxLength else {
            throw WireError("frame of \(length) bytes exceeds the limit of \(maxLength) bytes")
        }
        guard buffer.count - start - 4 >= length else { return nil }
        let body = Array(buffer[start + 4..<start + 4 + length])
        start += 4 + length
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        } else if start > 4096 {
            buffer.removeFirst(start)
            start = 0
        }
        return body
    }

    /// Bytes received that do not yet form a whole frame.
    public var pendingByteCount: Int { buffer.count - start }
}
