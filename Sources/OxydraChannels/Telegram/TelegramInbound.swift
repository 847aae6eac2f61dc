import OxydraCore

/// An update from Telegram as the channel uses it: who sent it, in which chat, and what it is.
struct TelegramInbound: Sendable {
    enum Kind: Sendable {
        /// A message: its text (or a file's caption) and the files it carries.
        case message(text: String, files: [TelegramFile])
        /// A press on an inline keyboard button of `messageID`.
        case button(queryID: String, messageID: Int, data: String)
        /// Anything else (edits, joins, stickers without text): acknowledged and ignored.
        case other
    }

    var updateID: Int64
    var from: Int64
    var chat: Int64
    var kind: Kind

    init(_ update: ChannelUpdate) {
        updateID = update.id
        let json = (try? JSONValue(parsing: update.payload)) ?? [:]
        if let query = json["callback_query"] {
            from = Int64(query["from"]?["id"]?.intValue ?? 0)
            chat = Int64(query["message"]?["chat"]?["id"]?.intValue ?? Int(from))
            kind = .button(
                queryID: query["id"]?.stringValue ?? "", messageID: query["message"]?["message_id"]?.intValue ?? 0,
                data: query["data"]?.stringValue ?? "")
            return
        }
        guard let message = json["message"] else {
            from = 0
            chat = 0
            kind = .other
            return
        }
        from = Int64(message["from"]?["id"]?.intValue ?? 0)
        chat = Int64(message["chat"]?["id"]?.intValue ?? 0)
        var files: [TelegramFile] = []
        if case .array(let sizes)? = message["photo"], let largest = sizes.last,
            let id = largest["file_id"]?.stringValue
        {
            files.append(
                TelegramFile(
                    fileID: id, name: "photo-\(update.id).jpg", mimeType: "image/jpeg",
                    size: largest["file_size"]?.intValue))
        }
        if let document = message["document"], let id = document["file_id"]?.stringValue {
            files.append(
                TelegramFile(
                    fileID: id, name: document["file_name"]?.stringValue ?? "document-\(update.id)",
                    mimeType: document["mime_type"]?.stringValue ?? "application/octet-stream",
                    size: document["file_size"]?.intValue))
        }
        let text = message["text"]?.stringValue ?? message["caption"]?.stringValue ?? ""
        kind = text.isEmpty && files.isEmpty ? .other : .message(text: text, files: files)
    }

    /// `/switch abc` → (`switch`, `abc`); `/help@my_bot` → (`help`, ``). Nil for ordinary text.
    static func command(_ text: String) -> (name: String, argument: String)? {
        guard text.hasPrefix("/") else { return nil }
        let trimmed = text.dropFirst()
        let word = trimmed.prefix { !$0.isWhitespace }
        let name = word.prefix { $0 != "@" }.lowercased()
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else { return nil }
        return (name, String(trimmed.dropFirst(word.count)).trimmed)
    }
}

/// A photo or document in a message.
struct TelegramFile: Sendable {
    var fileID: String
    var name: String
    var mimeType: String
    /// As Telegram announced it (bytes), when it did.
    var size: Int?
}
