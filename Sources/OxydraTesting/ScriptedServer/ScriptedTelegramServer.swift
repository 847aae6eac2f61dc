import NIOCore
import NIOHTTP1
import NIOPosix
import OxydraCore
import Synchronization

/// A real HTTP server on loopback that plays Telegram's Bot API for one bot: `getUpdates` long
/// polling with offsets (updates below the offset are acknowledged and dropped, as Telegram does),
/// `sendMessage` / `editMessageText` with Telegram's own checks (4096 characters, the HTML parse
/// mode's tags and entities, "message is not modified"), `answerCallbackQuery`, `sendChatAction`,
/// `setMyCommands`, `deleteMessage`, `getFile` and file downloads — and the faults: 409 Conflict, 429 with
/// `retry_after`, 5xx, slow answers.
///
/// Tests push updates (``sendText(from:chat:text:)``, ``pressButton(from:chat:messageID:data:)``)
/// and read the calls the bot made (``calls(_:)``).
public final class ScriptedTelegramServer: Sendable {
    public let token: String
    /// `http://127.0.0.1:<port>` — the bot's `api_base_url`.
    public let baseURL: String
    private let state: TelegramState
    private let server: NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never>
    private let task: Task<Void, Never>

    /// A failure for the next call of a method.
    public enum Fault: Sendable {
        case status(Int, description: String, retryAfter: Int? = nil)
        /// Answers normally after this long.
        case delay(Duration)
    }

    /// One call the bot made.
    public struct Call: Sendable {
        public var method: String
        public var parameters: JSONValue
        public var at: ContinuousClock.Instant
    }

    public static func start(token: String = "123456:TEST-token-\(GatewayProtocol.newToken().prefix(12))") async throws
        -> ScriptedTelegramServer
    {
        let state = TelegramState(token: token)
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(
                        wrappingChannelSynchronously: channel)
                }
            }
        let port = server.channel.localAddress?.port ?? 0
        let task = Task<Void, Never> {
            _ = try? await withThrowingDiscardingTaskGroup { group in
                try await server.executeThenClose { connections in
                    for try await connection in connections {
                        group.addTask { await Self.serve(connection, state: state) }
                    }
                }
            }
        }
        return ScriptedTelegramServer(
            token: token, baseURL: "http://127.0.0.1:\(port)", state: state, server: server, task: task)
    }

    private init(
        token: String, baseURL: String, state: TelegramState,
        server: NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never>,
        task: Task<Void, Never>
    ) {
        self.token = token
        self.baseURL = baseURL
        self.state = state
        self.server = server
        self.task = task
    }

    public func shutdown() async {
        try? await server.channel.close()
        task.cancel()
        state.wake()
    }

    /// A user file's `[channels.telegram]` for this server: the token in `tokenVariable`, `allowed`
    /// senders, short long polls.
    public func userConfig(tokenVariable: String, allowed: [Int]) -> String {
        """
        [channels.telegram]
        enabled = true
        bot_token_env = "\(tokenVariable)"
        allowed_user_ids = [\(allowed.map(String.init).joined(separator: ", "))]
        api_base_url = "\(baseURL)"
        polling_timeout_secs = 2

        """
    }

    // MARK: scripting

    /// A text message from a Telegram user in a private chat (chat id = user id unless given);
    /// returns the update id.
    @discardableResult
    public func sendText(from user: Int, chat: Int? = nil, text: String, name: String = "Alice") -> Int {
        state.push { id, messageID in
            [
                "update_id": .integer(id),
                "message": [
                    "message_id": .integer(messageID), "date": .integer(1_790_000_000),
                    "from": ["id": .integer(user), "is_bot": false, "first_name": .string(name)],
                    "chat": ["id": .integer(chat ?? user), "type": "private", "first_name": .string(name)],
                    "text": .string(text),
                ],
            ]
        }
    }

    /// A document (`photo`: a photo instead) from a user, with an optional caption; its bytes are
    /// served by `getFile` and the file download. Returns the update id.
    @discardableResult
    public func sendFile(
        from user: Int, chat: Int? = nil, name: String, mimeType: String, bytes: [UInt8], caption: String? = nil,
        photo: Bool = false
    ) -> Int {
        let fileID = "file\(GatewayProtocol.newToken().prefix(10))"
        state.store(file: "documents/" + fileID, bytes)
        return state.push { id, messageID in
            let attachment: (String, JSONValue) =
                photo
                ? (
                    "photo",
                    [
                        ["file_id": .string(fileID + "s"), "width": 90, "height": 90, "file_size": 100],
                        [
                            "file_id": .string(fileID), "width": 800, "height": 600,
                            "file_size": .integer(bytes.count),
                        ],
                    ]
                )
                : (
                    "document",
                    [
                        "file_id": .string(fileID), "file_name": .string(name), "mime_type": .string(mimeType),
                        "file_size": .integer(bytes.count),
                    ]
                )
            var message: [String: JSONValue] = [
                "message_id": .integer(messageID), "date": .integer(1_790_000_000),
                "from": ["id": .integer(user), "is_bot": false, "first_name": "Alice"],
                "chat": ["id": .integer(chat ?? user), "type": "private"], attachment.0: attachment.1,
            ]
            if let caption { message["caption"] = .string(caption) }
            return ["update_id": .integer(id), "message": .object(message)]
        }
    }

    /// A press on an inline keyboard button of `messageID`; returns the update id.
    @discardableResult
    public func pressButton(from user: Int, chat: Int? = nil, messageID: Int, data: String) -> Int {
        state.push { id, _ in
            [
                "update_id": .integer(id),
                "callback_query": [
                    "id": .string("cb\(id)"), "from": ["id": .integer(user), "is_bot": false, "first_name": "Alice"],
                    "chat_instance": "1",
                    "message": [
                        "message_id": .integer(messageID), "date": .integer(1_790_000_000),
                        "chat": ["id": .integer(chat ?? user), "type": "private"],
                    ],
                    "data": .string(data),
                ],
            ]
        }
    }

    /// The next call of `method` fails (or waits) as `fault` says.
    public func inject(_ fault: Fault, into method: String) { state.inject(fault, method) }

    /// Every call of `method` so far, in order (`nil`: every call).
    public func calls(_ method: String? = nil) -> [Call] { state.calls(method) }

    /// Messages as the chat shows them now: message id → text (after edits).
    public func chat(_ id: Int) -> [(messageID: Int, text: String)] { state.chat(id) }

    /// Waits until `condition` holds for the recorded calls (15 s at most).
    public func wait(timeout: Duration = .seconds(15), _ condition: ([Call]) -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if condition(state.calls(nil)) { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw TestSupportError(
            "the bot did not make the expected Bot API calls; it made: "
                + state.calls(nil).map { "\($0.method) \($0.parameters.compactText.prefix(160))" }.joined(
                    separator: "\n"))
    }

    // MARK: serving

    private static func serve(
        _ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>,
        state: TelegramState
    ) async {
        try? await connection.executeThenClose { inbound, outbound in
            var head: HTTPRequestHead?
            var body = ByteBuffer()
            for try await part in inbound {
                switch part {
                case .head(let value):
                    head = value
                    body.clear()
                case .body(var chunk):
                    body.writeBuffer(&chunk)
                case .end:
                    guard let request = head else { continue }
                    let (status, contentType, payload) = await state.answer(
                        method: request.method, uri: request.uri, body: String(buffer: body),
                        bytes: Array(buffer: body), contentType: request.headers.first(name: "Content-Type"))
                    var headers = HTTPHeaders()
                    headers.add(name: "Content-Type", value: contentType)
                    headers.add(name: "Content-Length", value: String(payload.readableBytes))
                    try await outbound.write(
                        .head(HTTPResponseHead(version: .http1_1, status: .init(statusCode: status), headers: headers)))
                    try await outbound.write(.body(.byteBuffer(payload)))
                    try await outbound.write(.end(nil))
                }
            }
        }
    }
}

/// The bot's world: pending updates, chats with their messages, faults, calls.
final class TelegramState: Sendable {
    struct Storage {
        var updates: [(id: Int, json: JSONValue)] = []
        var nextUpdate = 1000
        var nextMessage = 1
        var messages: [Int: [(id: Int, text: String)]] = [:]
        var faults: [String: [ScriptedTelegramServer.Fault]] = [:]
        var calls: [ScriptedTelegramServer.Call] = []
        var files: [String: [UInt8]] = [:]
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    let token: String
    private let storage = Mutex(Storage())

    init(token: String) { self.token = token }

    func push(_ make: (Int, Int) -> JSONValue) -> Int {
        let (id, waiters) = storage.withLock { storage in
            let id = storage.nextUpdate
            storage.nextUpdate += 1
            storage.nextMessage += 1
            storage.updates.append((id, make(id, 100_000 + storage.nextMessage)))
            let waiters = storage.waiters
            storage.waiters = []
            return (id, waiters)
        }
        for waiter in waiters { waiter.resume() }
        return id
    }

    func wake() {
        let waiters = storage.withLock { storage in
            let waiters = storage.waiters
            storage.waiters = []
            return waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func store(file path: String, _ bytes: [UInt8]) { storage.withLock { $0.files[path] = bytes } }

    func inject(_ fault: ScriptedTelegramServer.Fault, _ method: String) {
        storage.withLock { $0.faults[method, default: []].append(fault) }
    }

    func calls(_ method: String?) -> [ScriptedTelegramServer.Call] {
        storage.withLock { storage in storage.calls.filter { method == nil || $0.method == method } }
    }

    func chat(_ id: Int) -> [(messageID: Int, text: String)] {
        storage.withLock { storage in (storage.messages[id] ?? []).map { ($0.id, $0.text) } }
    }

    static func json(_ status: Int, _ body: JSONValue) -> (Int, String, ByteBuffer) {
        (status, "application/json", ByteBuffer(string: body.compactText))
    }

    static func failure(_ code: Int, _ description: String, retryAfter: Int? = nil) -> (Int, String, ByteBuffer) {
        var body: [String: JSONValue] = [
            "ok": false, "error_code": .integer(code), "description": .string(description),
        ]
        if let retryAfter { body["parameters"] = ["retry_after": .integer(retryAfter)] }
        return json(code, .object(body))
    }

    static func ok(_ result: JSONValue) -> (Int, String, ByteBuffer) { json(200, ["ok": true, "result": result]) }

    func answer(method httpMethod: HTTPMethod, uri: String, body: String, bytes: [UInt8], contentType: String?)
        async -> (Int, String, ByteBuffer)
    {
        let path = uri.split(separator: "?").first.map(String.init) ?? uri
        if httpMethod == .GET, path.hasPrefix("/file/bot\(token)/") {
            let file = String(path.dropFirst("/file/bot\(token)/".count))
            guard let bytes = storage.withLock({ $0.files[file] }) else { return Self.failure(404, "Not Found") }
            return (200, "application/octet-stream", ByteBuffer(bytes: bytes))
        }
        guard path.hasPrefix("/bot") else { return Self.failure(404, "Not Found") }
        let rest = path.dropFirst(4)
        guard let slash = rest.firstIndex(of: "/"), rest[..<slash] == token else {
            return Self.failure(401, "Unauthorized")
        }
        let method = String(rest[rest.index(after: slash)...])
        var parameters = (try? JSONValue(parsing: body.isEmpty ? "{}" : body)) ?? [:]
        if let contentType, contentType.hasPrefix("multipart/form-data"),
            let boundary = contentType.split(separator: "boundary=").last
        {
            parameters = Self.multipart(bytes, boundary: String(boundary))
        }
        let fault = storage.withLock { storage -> ScriptedTelegramServer.Fault? in
            storage.calls.append(.init(method: method, parameters: parameters, at: .now))
            guard var queue = storage.faults[method], !queue.isEmpty else { return nil }
            let first = queue.removeFirst()
            storage.faults[method] = queue
            return first
        }
        switch fault {
        case .status(let code, let description, let retryAfter)?:
            return Self.failure(code, description, retryAfter: retryAfter)
        case .delay(let duration)?:
            try? await Task.sleep(for: duration)
        case nil:
            break
        }
        switch method {
        case "getUpdates": return await getUpdates(parameters)
        case "sendMessage": return send(parameters)
        case "editMessageText": return edit(parameters)
        case "answerCallbackQuery", "sendChatAction", "setMyCommands": return Self.ok(true)
        case "sendDocument":
            let chat = parameters["chat_id"]?.intValue ?? Int(parameters["chat_id"]?.stringValue ?? "") ?? 0
            guard let name = parameters["document_name"]?.stringValue else {
                return Self.failure(400, "Bad Request: there is no document in the request")
            }
            let id = storage.withLock { storage in
                storage.nextMessage += 1
                storage.messages[chat, default: []].append(
                    (storage.nextMessage, "[document \(name)] " + (parameters["caption"]?.stringValue ?? "")))
                return storage.nextMessage
            }
            return Self.ok([
                "message_id": .integer(id), "date": .integer(1_790_000_000),
                "chat": ["id": .integer(chat), "type": "private"],
                "document": ["file_id": .string("sent\(id)"), "file_name": .string(name)],
            ])
        case "deleteMessage":
            let chat = parameters["chat_id"]?.intValue ?? 0
            let id = parameters["message_id"]?.intValue ?? 0
            let removed = storage.withLock { storage -> Bool in
                guard let index = storage.messages[chat]?.firstIndex(where: { $0.id == id }) else { return false }
                storage.messages[chat]!.remove(at: index)
                return true
            }
            return removed ? Self.ok(true) : Self.failure(400, "Bad Request: message to delete not found")
        case "getFile":
            let id = parameters["file_id"]?.stringValue ?? ""
            return Self.ok(["file_id": .string(id), "file_path": .string("documents/\(id)")])
        default:
            return Self.failure(404, "Not Found: method \(method) not found")
        }
    }

    private func getUpdates(_ parameters: JSONValue) async -> (Int, String, ByteBuffer) {
        let offset = parameters["offset"]?.intValue ?? 0
        let timeout = min(parameters["timeout"]?.intValue ?? 0, 50)
        // Telegram answers at most `limit` (1–100, default 100) updates per call.
        let limit = max(1, min(parameters["limit"]?.intValue ?? 100, 100))
        let deadline = ContinuousClock.now + .seconds(timeout)
        while true {
            let ready = storage.withLock { storage -> [JSONValue] in
                // Telegram forgets updates below the offset: they are acknowledged.
                storage.updates.removeAll { $0.id < offset }
                return storage.updates.prefix(limit).map(\.json)
            }
            if !ready.isEmpty || ContinuousClock.now >= deadline { return Self.ok(.array(ready)) }
            await withCheckedContinuation { continuation in
                storage.withLock { $0.waiters.append(continuation) }
                Task {
                    try? await Task.sleep(until: deadline)
                    self.wake()
                }
            }
        }
    }

    /// A `multipart/form-data` body as parameters: each field's text; a file part as
    /// `<field>_name`, `<field>_type` and `<field>_text` (its bytes as UTF-8).
    static func multipart(_ bytes: [UInt8], boundary: String) -> JSONValue {
        var result: [String: JSONValue] = [:]
        let delimiter = Array(("--" + boundary).utf8)
        var parts: [ArraySlice<UInt8>] = []
        var start: Int?
        var index = 0
        while index + delimiter.count <= bytes.count {
            if bytes[index..<index + delimiter.count].elementsEqual(delimiter) {
                if let start { parts.append(bytes[start..<max(start, index - 2)]) }  // drop the CRLF before it
                index += delimiter.count
                start = index + 2  // after the CRLF that ends the delimiter line
                continue
            }
            index += 1
        }
        for part in parts {
            let separator = Array("\r\n\r\n".utf8)
            guard
                let split = (part.startIndex..<part.endIndex).first(where: { position in
                    position + 4 <= part.endIndex && part[position..<position + 4].elementsEqual(separator)
                })
            else { continue }
            let head = String(decoding: part[part.startIndex..<split], as: UTF8.self)
            let content = part[(split + 4)...]
            guard let nameRange = head.firstRange(of: "name=\"") else { continue }
            let name = String(head[nameRange.upperBound...].prefix { $0 != "\"" })
            if let fileRange = head.firstRange(of: "filename=\"") {
                result[name + "_name"] = .string(String(head[fileRange.upperBound...].prefix { $0 != "\"" }))
                result[name + "_text"] = .string(String(decoding: content, as: UTF8.self))
                let type = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-type:") }
                result[name + "_type"] = .string(type.map { $0.dropFirst(13).trimmed } ?? "")
            } else {
                result[name] = .string(String(decoding: content, as: UTF8.self))
            }
        }
        return .object(result)
    }

    /// Telegram's checks on a message text: length after entity parsing, and the HTML parse mode.
    static func check(_ parameters: JSONValue) -> (text: String, problem: String?) {
        let raw = parameters["text"]?.stringValue ?? ""
        var text = raw
        if parameters["parse_mode"]?.stringValue == "HTML" {
            switch TelegramHTML.parse(raw) {
            case .success(let plain): text = plain
            case .failure(let problem): return (raw, "Bad Request: can't parse entities: \(problem.message)")
            }
        }
        // Telegram drops leading and trailing white space.
        text = text.trimmed
        if text.isEmpty { return (text, "Bad Request: message text is empty") }
        if text.utf16.count > 4096 { return (text, "Bad Request: message is too long") }
        return (text, nil)
    }

    private func send(_ parameters: JSONValue) -> (Int, String, ByteBuffer) {
        let chat = parameters["chat_id"]?.intValue ?? 0
        let (text, problem) = Self.check(parameters)
        if let problem { return Self.failure(400, problem) }
        let id = storage.withLock { storage in
            storage.nextMessage += 1
            storage.messages[chat, default: []].append((storage.nextMessage, text))
            return storage.nextMessage
        }
        return Self.ok([
            "message_id": .integer(id), "date": .integer(1_790_000_000),
            "chat": ["id": .integer(chat), "type": "private"],
            "text": .string(text),
        ])
    }

    private func edit(_ parameters: JSONValue) -> (Int, String, ByteBuffer) {
        let chat = parameters["chat_id"]?.intValue ?? 0
        let id = parameters["message_id"]?.intValue ?? 0
        let (text, problem) = Self.check(parameters)
        if let problem { return Self.failure(400, problem) }
        let outcome = storage.withLock { storage -> String? in
            guard let index = storage.messages[chat]?.firstIndex(where: { $0.id == id }) else {
                return "Bad Request: message to edit not found"
            }
            if storage.messages[chat]![index].text == text && parameters["reply_markup"] == nil {
                return "Bad Request: message is not modified: specified new message content and reply markup are "
                    + "exactly the same as a current content and reply markup of the message"
            }
            storage.messages[chat]![index].text = text
            return nil
        }
        if let outcome { return Self.failure(400, outcome) }
        return Self.ok([
            "message_id": .integer(id), "date": .integer(1_790_000_000),
            "chat": ["id": .integer(chat), "type": "private"],
            "text": .string(text),
        ])
    }
}

/// Telegram's HTML parse mode as its parser treats it: the supported tags in matched pairs, `<a>`
/// with an `href`, the four named entities and numeric ones; anything else is an error.
public enum TelegramHTML {
    public struct Problem: Error { public let message: String }

    static let tags: Set<String> = [
        "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "pre", "a", "tg-spoiler", "span",
        "blockquote", "tg-emoji",
    ]

    /// The text after parsing (tags removed, entities decoded).
    public static func parse(_ html: String) -> Result<String, Problem> {
        var plain = ""
        var open: [String] = []
        var index = html.startIndex
        while index < html.endIndex {
            let character = html[index]
            if character == "<" {
                guard let close = html[index...].firstIndex(of: ">") else {
                    return .failure(
                        Problem(
                            message:
                                "Unclosed start tag at byte offset \(html.utf8.distance(from: html.startIndex, to: index))"
                        ))
                }
                var inside = html[html.index(after: index)..<close]
                let closing = inside.hasPrefix("/")
                if closing { inside = inside.dropFirst() }
                let name = String(inside.prefix { $0.isLetter || $0 == "-" }).lowercased()
                guard tags.contains(name) else {
                    return .failure(
                        Problem(
                            message:
                                "Unsupported start tag \"\(name)\" at byte offset \(html.utf8.distance(from: html.startIndex, to: index))"
                        ))
                }
                if closing {
                    guard open.last == name else {
                        return .failure(Problem(message: "Unmatched end tag \"\(name)\""))
                    }
                    open.removeLast()
                } else {
                    if name == "a", !inside.contains("href=") {
                        return .failure(Problem(message: "Tag \"a\" must have an href attribute"))
                    }
                    open.append(name)
                }
                index = html.index(after: close)
                continue
            }
            if character == "&" {
                guard let semicolon = html[index...].firstIndex(of: ";"),
                    html.distance(from: index, to: semicolon) <= 10
                else {
                    return .failure(Problem(message: "Unrecognized character entity"))
                }
                let entity = html[html.index(after: index)..<semicolon]
                switch entity {
                case "lt": plain += "<"
                case "gt": plain += ">"
                case "amp": plain += "&"
                case "quot": plain += "\""
                default:
                    guard entity.hasPrefix("#"), let code = UInt32(entity.dropFirst()),
                        let scalar = Unicode.Scalar(code)
                    else { return .failure(Problem(message: "Unsupported HTML entity \"&\(entity);\"")) }
                    plain.unicodeScalars.append(scalar)
                }
                index = html.index(after: semicolon)
                continue
            }
            plain.append(character)
            index = html.index(after: index)
        }
        guard open.isEmpty else {
            return .failure(Problem(message: "Can't find end tag corresponding to start tag \"\(open.last!)\""))
        }
        return .success(plain)
    }
}
