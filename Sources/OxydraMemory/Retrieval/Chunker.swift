import OxydraCore

/// Splits text for indexing: whitespace collapsed, windows of 640 characters overlapping by 96.
public enum Chunker {
    public static let window = 640
    public static let overlap = 96

    public static func normalize(_ text: String) -> String {
        text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
    }

    public static func chunks(_ text: String) -> [String] {
        let characters = Array(normalize(text))
        guard !characters.isEmpty else { return [] }
        guard characters.count > window else { return [String(characters)] }
        var chunks: [String] = []
        var start = 0
        while start < characters.count {
            let end = min(start + window, characters.count)
            let chunk = String(characters[start..<end]).trimmed
            if !chunk.isEmpty { chunks.append(chunk) }
            if end == characters.count { break }
            start = end - overlap
        }
        return chunks
    }
}
