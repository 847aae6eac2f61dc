extension StringProtocol {
    /// The text without leading and trailing whitespace (spaces, tabs, newlines; Unicode-aware).
    /// FoundationEssentials has no `trimmingCharacters(in:)`, and this avoids `CharacterSet`.
    public var trimmed: String {
        guard let first = firstIndex(where: { !$0.isWhitespace }) else { return "" }
        let last = lastIndex(where: { !$0.isWhitespace })!
        return String(self[first...last])
    }
}

extension String {
    /// ``StringProtocol/trimmed``, without a copy when there is nothing to trim (the usual case,
    /// e.g. every streamed chunk): ends that are printable ASCII are not whitespace.
    public var trimmed: String {
        if let head = utf8.first, let tail = utf8.last, (0x21...0x7E).contains(head), (0x21...0x7E).contains(tail) {
            return self
        }
        return self[...].trimmed
    }
}

extension String {
    /// The text of a NUL-terminated C buffer (up to the first NUL).
    public init(nulTerminated buffer: [CChar]) {
        self = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
