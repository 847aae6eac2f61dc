import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import OxydraCore
import Synchronization

/// HTTP plumbing shared by every provider: request building, timeouts, error mapping, SSE reading.
///
/// Timeouts: `timeout` bounds the wait for the response head and every silence between body
/// chunks (an idle timeout, so long answers that keep streaming are never cut). Redirects are not
/// followed (an API that redirects would otherwise receive credentials on another host).
struct ProviderTransport: Sendable {
    let provider: ProviderID
    /// Normalised base URL without trailing `/` or API version.
    let baseURL: String
    /// Authentication and `extra_headers`, added to every request.
    let headers: [(String, String)]
    /// Values that must never appear in error messages (the API key).
    let secrets: [String]
    let timeout: Duration

    /// Bytes of an error body read for the message.
    static let errorBodyLimit = 64 * 1024
    /// Bytes of a non-streamed response accepted.
    static let responseBodyLimit = 32 << 20

    init(provider: ProviderID, baseURL: String, headers: [(String, String)], secrets: [String], timeout: Duration) {
        self.provider = provider
        self.baseURL = baseURL
        self.headers = headers
        self.secrets = secrets.filter { !$0.isEmpty }
        self.timeout = timeout
    }

    /// POSTs JSON to `path` (appended to the base URL) and returns the response once its head is in;
    /// non-2xx statuses become ``ProviderError/httpStatus(provider:status:message:retryAfter:)``.
    func post(_ path: String, json body: Data, accept: String) async throws -> ProviderResponse {
        // Bodies come as they are (see `ProviderHTTPClient`): said out loud, because a request
        // without `Accept-Encoding` leaves a server free to pick any coding.
        let headers =
            [
                ("Content-Type", "application/json"), ("Accept", accept), ("User-Agent", "oxydra/0.1"),
                ("Accept-Encoding", "identity"),
            ] + self.headers
        let response: ProviderResponse
        do {
            let request = try ProviderHTTPRequest(
                post: baseURL + path, headers: headers, body: ByteBuffer(bytes: body))
            let exchange = ProviderExchange.start(
                request, on: ProviderHTTPClient.forCurrentLoop(), timeout: TimeAmount(timeout))
            response = ProviderResponse(head: try await exchange.head(), exchange: exchange)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw mapTransportError(error)
        }
        if let coding = response.headers.first(name: "Content-Encoding")?.lowercased(), coding != "identity" {
            throw ProviderError.responseParse(
                provider: provider,
                message:
                    "the server sent a `\(coding)`-encoded body although the request asked for `identity` (Accept-Encoding); a proxy in between may be compressing responses"
            )
        }
        guard (200..<300).contains(response.status) else {
            let body = (try? await readBody(response, limit: Self.errorBodyLimit)) ?? Data()
            throw ProviderError.httpStatus(
                provider: provider, status: response.status, message: errorMessage(body),
                retryAfter: Self.retryAfter(response.headers.first(name: "Retry-After")))
        }
        return response
    }

    /// The whole body, up to `limit` bytes.
    func readBody(_ response: ProviderResponse, limit: Int = ProviderTransport.responseBodyLimit) async throws -> Data {
        var data = Data()
        do {
            while let part = try await response.nextPart() {
                if data.count + part.readableBytes > limit {
                    throw ProviderError.responseParse(
                        provider: provider, message: "response larger than \(limit) bytes")
                }
                part.withUnsafeReadableBytes { data.append(contentsOf: $0) }
            }
        } catch let error as ProviderError {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw mapTransportError(error)
        }
        return data
    }

    /// Whether `response` is an event stream; other content types are read whole for the error.
    func requireEventStream(_ response: ProviderResponse) async throws -> ContentKind {
        let type = response.headers.first(name: "Content-Type")?.lowercased() ?? ""
        if type.hasPrefix("text/event-stream") { return .eventStream }
        if type.hasPrefix("application/json") { return .json }
        let body = (try? await readBody(response, limit: 4096)) ?? Data()
        throw ProviderError.responseParse(
            provider: provider,
            message: "expected an event stream but got content type `\(type.isEmpty ? "none" : type)`: "
                + redact(Self.preview(body)))
    }

    enum ContentKind { case eventStream, json }

    func mapTransportError(_ error: any Error) -> ProviderError {
        if let error = error as? ProviderError { return error }
        var timedOut = error as? ProviderHTTPError == .readTimeout
        if case ChannelError.connectTimeout = error { timedOut = true }
        if timedOut {
            return .timedOut(provider: provider, seconds: Int(timeout.components.seconds))
        }
        if let reason = connectFailure(error) { return .transport(provider: provider, message: reason) }
        return .transport(provider: provider, message: describe(error))
    }

    /// Plain words for the connection failures a misconfigured or stopped server causes (NIO's own
    /// descriptions read like "connection reset (error set): Connection refused) (errno: 111)").
    func connectFailure(_ error: any Error) -> String? {
        let hint = "is the server running, and is `base_url` (\(redact(baseURL))) right?"
        func reason(_ errno: Int32) -> String? {
            switch errno {
            case ECONNREFUSED: "connection refused: nothing is listening there; \(hint)"
            case ENETUNREACH, EHOSTUNREACH: "the host is unreachable from here; \(hint)"
            case ETIMEDOUT: "connecting timed out; \(hint)"
            default: nil
            }
        }
        if let error = error as? IOError { return reason(error.errnoCode) }
        if error is NIOSSLError || error is NIOSSLExtraError {
            return
                "the TLS handshake failed (\(error)); is `base_url` (\(redact(baseURL))) an HTTPS server with a certificate for that host?"
        }
        if let error = error as? NIOConnectionError {
            let reasons = error.connectionErrors.compactMap { ($0.error as? IOError).flatMap { reason($0.errnoCode) } }
            if let first = reasons.first { return first }
            if error.connectionErrors.isEmpty && (error.dnsAError != nil || error.dnsAAAAError != nil) {
                return "cannot resolve the host `\(error.host)`; check `base_url` (\(redact(baseURL)))"
            }
        }
        return nil
    }

    func describe(_ error: any Error) -> String { redact("\(error)") }

    /// The provider's own error text: `error.message`, Anthropic's `message`, Gemini's
    /// `error.status`, else the trimmed body; cut at 512 characters; secrets removed.
    func errorMessage(_ body: Data) -> String {
        var message: String?
        if let json = try? JSONDecoder().decode(JSONValue.self, from: body) {
            let candidates: [JSONValue?] = [
                json["error"]?["message"], json["message"], json["error"]?["status"], json["error"], json["detail"],
            ]
            message = candidates.lazy.compactMap { $0?.stringValue?.trimmed }.first { !$0.isEmpty }
        }
        if message == nil { message = Self.preview(body) }
        let text = (message ?? "").isEmpty ? "empty error response from provider" : message!
        return redact(text.count > 512 ? String(text.prefix(512)) + "..." : text)
    }

    func redact(_ text: String) -> String {
        var result = text
        for secret in secrets where secret.count >= 4 { result = result.replacing(secret, with: "[REDACTED]") }
        return result
    }

    static func preview(_ body: Data) -> String {
        String(decoding: body.prefix(512), as: UTF8.self).trimmed
    }

    /// `Retry-After` as seconds: a number, or an HTTP date relative to now.
    static func retryAfter(_ value: String?) -> Double? {
        guard let value = value?.trimmed, !value.isEmpty else { return nil }
        if let seconds = Double(value), seconds.isFinite, seconds >= 0 { return seconds }
        if let date = HTTPDate.parse(value) { return max(0, date.timeIntervalSinceNow) }
        return nil
    }
}

extension ProviderHTTPClient {
    private static let loops: [any EventLoop] = Array(HTTPClient.defaultEventLoopGroup.makeIterator())
    private static let clients: [ProviderHTTPClient] = loops.map { ProviderHTTPClient(loop: $0) }

    /// The client of the calling thread's loop. A request made on one of the shared loops (the
    /// gateway runs each connection's turns on its socket's loop) gets that loop's client, whose
    /// connections live on the same loop: the streamed response is read, parsed and forwarded
    /// without a thread hop per chunk. Callers on other threads (the one-shot CLI, tests) share
    /// the first loop's, so their calls reuse its connections too. The clients live for the
    /// whole process.
    static func forCurrentLoop() -> ProviderHTTPClient {
        let current = MultiThreadedEventLoopGroup.currentEventLoop
        let index = current.flatMap { current in loops.firstIndex { $0 === current } } ?? 0
        return clients[index]
    }
}

/// IMF-fixdate parsing for `Retry-After` (`Wed, 21 Oct 2015 07:28:00 GMT`).
enum HTTPDate {
    static func parse(_ text: String) -> Date? {
        let parts = text.split(separator: " ")
        guard parts.count == 6, parts[5] == "GMT", let day = Int(parts[1]), let year = Int(parts[3]) else { return nil }
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        guard let monthIndex = months.firstIndex(of: String(parts[2])) else { return nil }
        let time = parts[4].split(separator: ":").compactMap { Int($0) }
        guard time.count == 3 else { return nil }
        // Days from civil (Howard Hinnant's algorithm), then seconds since 1970.
        let month = monthIndex + 1
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        let seconds = days * 86400 + time[0] * 3600 + time[1] * 60 + time[2]
        return Date(timeIntervalSince1970: TimeInterval(seconds))
    }
}
