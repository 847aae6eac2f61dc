extension String {
    /// The text of `bytes` when they are valid UTF-8, nil otherwise — what
    /// `String(validating:as: UTF8.self)` gives, without its generic path: that initializer is not
    /// specialized for a buffer, and its run-time type lookups were most of the cost of reading the
    /// short strings of every streamed chunk. ASCII needs no check; other bytes are decoded (which
    /// replaces invalid sequences with U+FFFD) and kept only if decoding gave back the same bytes.
    @inlinable
    public init?(exactUTF8 bytes: UnsafeBufferPointer<UInt8>) {
        var high: UInt8 = 0
        for byte in bytes { high |= byte }
        let text = String(decoding: bytes, as: UTF8.self)
        guard high < 0x80 || text.utf8.elementsEqual(bytes) else { return nil }
        self = text
    }

    /// ``init(exactUTF8:)-(UnsafeBufferPointer<UInt8>)`` for an array's bytes.
    @inlinable
    public init?(exactUTF8 bytes: ArraySlice<UInt8>) {
        guard let text = bytes.withUnsafeBufferPointer({ String(exactUTF8: $0) }) else { return nil }
        self = text
    }
}
