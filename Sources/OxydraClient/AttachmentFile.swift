import OxydraCore

#if canImport(Glibc)
    import Glibc
#endif

/// A local file read for `send_turn.attachments` (`runner ask --attach`, the terminal UI's
/// `/attach` and dropped paths): its base name, a MIME type from its extension, its bytes.
public enum AttachmentFile {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Reads the regular file at `path` (a `~/` prefix is the home directory).
    public static func load(_ path: String) throws(Failure) -> ClientFrame.FileAttachment {
        let expanded = expandingHome(path)
        var status = stat()
        guard stat(expanded, &status) == 0 else {
            throw Failure(description: "cannot attach \(path): \(String(cString: strerror(errno)))")
        }
        guard (status.st_mode & S_IFMT) == S_IFREG else {
            throw Failure(description: "cannot attach \(path): not a regular file")
        }
        guard Int(status.st_size) <= GatewayProtocol.maxAttachmentBytes else {
            throw Failure(
                description:
                    "cannot attach \(path): it holds \(status.st_size) bytes, more than the "
                    + "\(GatewayProtocol.maxAttachmentBytes >> 20) MiB (\(GatewayProtocol.maxAttachmentBytes) bytes) a "
                    + "turn's attachments may hold"
            )
        }
        guard let data = FileManager.default.contents(atPath: expanded) else {
            throw Failure(description: "cannot attach \(path): cannot read it")
        }
        let name = expanded.split(separator: "/").last.map(String.init) ?? "attachment"
        return ClientFrame.FileAttachment(name: name, mimeType: mimeType(of: name, data: data), data: data)
    }

    /// The MIME type of a file name's extension (image bytes are recognised whatever the name).
    public static func mimeType(of name: String, data: Data = Data()) -> String {
        let signatures: [([UInt8], String)] = [
            ([0x89, 0x50, 0x4E, 0x47], "image/png"), ([0xFF, 0xD8, 0xFF], "image/jpeg"),
            ([0x47, 0x49, 0x46, 0x38], "image/gif"), ([0x25, 0x50, 0x44, 0x46], "application/pdf"),
        ]
        for (signature, type) in signatures where data.starts(with: signature) { return type }
        if data.count >= 12, data.prefix(4).elementsEqual("RIFF".utf8),
            data.dropFirst(8).prefix(4).elementsEqual("WEBP".utf8)
        {
            return "image/webp"
        }
        let suffix =
            name.split(separator: ".").count > 1 ? (name.split(separator: ".").last.map { $0.lowercased() } ?? "") : ""
        switch suffix {
        case "png": return "image/png"
        case "jpg", "jpeg": return "image/jpeg"
        case "gif": return "image/gif"
        case "webp": return "image/webp"
        case "pdf": return "application/pdf"
        case "txt", "log": return "text/plain"
        case "md", "markdown": return "text/markdown"
        case "csv": return "text/csv"
        case "html", "htm": return "text/html"
        case "json": return "application/json"
        case "toml": return "application/toml"
        case "yaml", "yml": return "application/yaml"
        case "xml": return "application/xml"
        case "zip": return "application/zip"
        case "swift", "py", "js", "ts", "rs", "go", "c", "h", "cpp", "java", "sh", "rb", "sql": return "text/plain"
        default: return "application/octet-stream"
        }
    }

    /// A path dropped on the terminal (it pastes it): quoted, with backslash-escaped spaces, or a
    /// `file://` URL — the file's path when it names an existing regular file, else nil.
    public static func droppedPath(_ pasted: String) -> String? {
        var text = pasted.trimmed
        guard !text.isEmpty, !text.contains("\n") else { return nil }
        if text.count >= 2, let first = text.first, first == "'" || first == "\"", text.last == first {
            text = String(text.dropFirst().dropLast())
        } else if text.contains("\\ ") {
            text = text.replacing("\\ ", with: " ")
        }
        if text.hasPrefix("file://") {
            text = String(text.dropFirst(7))
            text = percentDecoded(text)
        }
        guard text.hasPrefix("/") || text.hasPrefix("~/") else { return nil }
        var status = stat()
        guard stat(expandingHome(text), &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else { return nil }
        return text
    }

    /// `~/x` as `$HOME/x`; other paths as they are.
    static func expandingHome(_ path: String) -> String {
        guard path.hasPrefix("~/"), let home = getenv("HOME").map({ String(cString: $0) }) else { return path }
        return home + path.dropFirst()
    }

    private static func percentDecoded(_ text: String) -> String {
        var bytes: [UInt8] = []
        var index = text.utf8.startIndex
        let utf8 = text.utf8
        while index < utf8.endIndex {
            let byte = utf8[index]
            if byte == UInt8(ascii: "%"), let high = utf8.index(index, offsetBy: 1, limitedBy: utf8.endIndex),
                let low = utf8.index(index, offsetBy: 2, limitedBy: utf8.endIndex), low < utf8.endIndex,
                let value = UInt8(String(decoding: [utf8[high], utf8[low]], as: UTF8.self), radix: 16)
            {
                bytes.append(value)
                index = utf8.index(after: low)
            } else {
                bytes.append(byte)
                index = utf8.index(after: index)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
