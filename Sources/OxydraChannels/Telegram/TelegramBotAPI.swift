import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import OxydraCore

/// What went wrong with a Bot API call. Messages never contain the token (it is in the URL path).
public enum TelegramError: Error, Sendable, Hashable, CustomStringConvertible {
    /// 409: another `getUpdates` poller (or a webhook) uses this bot token.
    case conflict(String)
    /// 429: wait this many seconds.
    case retryAfter(Int, String)
    /// 400 and other refusals, with Telegram's description.
    case refused(status: Int, String)
    /// 5xx, a broken connection, a timeout.
    case unavailable(String)
    /// An answer that is not the Bot API's JSON.
    case malformed(String)

    public var description: String {
        switch self {
        case .conflict(let text):
            "Telegram answered 409 Conflict (\(text)): another program polls this bot token; stop it (or delete its webhook)"
        case .retryAfter(let seconds, let text): "Telegram asks to wait \(seconds) s (429: \(text))"
        case .refused(let status, let text): "Telegram refused the request (\(status): \(text))"
        case .unavailable(let text): "Telegram is unreachable: \(text)"
        case .malformed(let text): "Telegram's answer is not valid Bot API JSON: \(text)"
        }
    }
}

/// The Telegram Bot API over HTTPS: `POST <base>/bot<token>/<method>` with a JSON body, answers
/// `{"ok": true, "result": …}` or `{"ok": false, "error_code", "description", "parameters"}`.
public struct TelegramBotAPI: Sendable {
    let baseURL: String
    let token: String

    public init(baseURL: String, token: String) {
        var base = baseURL.trimmed
        while base.hasSuffix("/") { base.removeLast() }
        self.baseURL = base
        self.token = token
    }

    /// One shared client for every bot in the process; it lives as long as the process.
    static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow, timeout: .init(connect: .seconds(10), read: .seconds(75)))
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    /// Calls `method`; the `result` on success. `timeout` bounds the whole call.
    public func call(_ method: String, _ parameters: JSONValue = [:], timeout: Duration = .seconds(30))
        async throws(TelegramError) -> JSONValue
    {
        var request = HTTPClientRequest(url: "\(baseURL)/bot\(token)/\(method)")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: parameters.compactText))
        let status: Int
        let body: ByteBuffer
        do {
            let response = try await Self.client.execute(request, timeout: TimeAmount(timeout))
            status = Int(response.status.code)
            body = try await response.body.collect(upTo: 16 << 20)
        } catch {
            throw .unavailable(scrub("\(error)"))
        }
        return try Self.result(status: status, body: String(buffer: body), method: method)
    }

    /// Uploads a file (`sendDocument`): `multipart/form-data` with the fields and the file as `field`.
    public func upload(
        _ method: String, fields: [String: String], field: String, name: String, mimeType: String, data: [UInt8]
    ) async throws(TelegramError) -> JSONValue {
        let boundary = "oxydra-" + GatewayProtocol.newToken().prefix(24)
        var body = ByteBuffer()
        for (key, value) in fields.sorted(by: { $0.key < $1.key }) {
            body.writeString("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(key)\"\r\n\r\n\(value)\r\n")
        }
        // The name is quoted: quotes and line breaks in it would break the part's header.
        let safe = name.filter { $0 != "\"" && $0 != "\r" && $0 != "\n" && $0 != "\\" }
        body.writeString(
            "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(field)\"; filename=\"\(safe)\"\r\n"
                + "Content-Type: \(mimeType)\r\n\r\n")
        body.writeBytes(data)
        body.writeString("\r\n--\(boundary)--\r\n")
        var request = HTTPClientRequest(url: "\(baseURL)/bot\(token)/\(method)")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "multipart/form-data; boundary=\(boundary)")
        request.body = .bytes(body)
        let status: Int
        let answer: ByteBuffer
        do {
            let response = try await Self.client.execute(request, timeout: .seconds(120))
            status = Int(response.status.code)
            answer = try await response.body.collect(upTo: 1 << 20)
        } catch {
            throw .unavailable(scrub("\(error)"))
        }
        return try Self.result(status: status, body: String(buffer: answer), method: method)
    }

    /// Downloads a file by the `file_path` `getFile` gave, refusing more than `limit` bytes.
    public func download(_ filePath: String, limit: Int) async throws(TelegramError) -> [UInt8] {
        guard !filePath.contains(".."), !filePath.hasPrefix("/") else {
            throw .malformed("file_path `\(filePath)` is not a relative path")
        }
        var request = HTTPClientRequest(url: "\(baseURL)/file/bot\(token)/\(filePath)")
        request.method = .GET
        do {
            let response = try await Self.client.execute(request, timeout: .seconds(60))
            guard response.status == .ok else {
                throw TelegramError.refused(status: Int(response.status.code), "file download failed")
            }
            let body = try await response.body.collect(upTo: limit)
            return Array(buffer: body)
        } catch let error as TelegramError {
            throw error
        } catch {
            throw .unavailable(scrub("\(error)"))
        }
    }

    static func result(status: Int, body: String, method: String) throws(TelegramError) -> JSONValue {
        guard let json = try? JSONValue(parsing: body), case .object = json else {
            if status >= 500 { throw .unavailable("HTTP \(status) from \(method)") }
            throw .malformed("\(method) answered HTTP \(status) with \(body.prefix(200))")
        }
        if json["ok"]?.boolValue == true, let result = json["result"] { return result }
        let code = json["error_code"]?.intValue ?? status
        let description = json["description"]?.stringValue ?? "no description"
        switch code {
        case 409: throw .conflict(description)
        case 429: throw .retryAfter(json["parameters"]?["retry_after"]?.intValue ?? 5, description)
        case 500...: throw .unavailable("\(code) \(description)")
        default: throw .refused(status: code, description)
        }
    }

    /// Removes the token from a message (errors of the HTTP client may quote the URL).
    func scrub(_ text: String) -> String {
        token.isEmpty ? text : text.replacing(token, with: "<token>")
    }
}
