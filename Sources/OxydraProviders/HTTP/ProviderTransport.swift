import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import NIOHTTPCompression
import NIOPosix
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
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Accept", value: accept)
        headers.add(name: "User-Agent", value: "oxydra/0.1")
        // Bodies come as they are (see `ProviderHTTPClients`): said out loud, because a request
        // without `Accept-Encoding` leaves a server free to pick any coding.
        headers.add(name: "Accept-Encoding", value: "identity")
        for (name, value) in self.headers { headers.replaceOrAdd(name: name, value: value) }
        let response: ProviderResponse
        do {
            let request = try HTTPClient.Request(
                url: baseURL + path, method: .POST, headers: headers, body: .data(body))
            let (client, loop) = ProviderHTTPClients.client()
            let exchange = ProviderExchange.start(request, on: client, loop: loop, timeout: TimeAmount(timeout))
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
        if let error = error as? HTTPClientError {
            if error == .readTimeout || error == .deadlineExceeded || error == .connectTimeout {
                return .timedOut(provider: provider, seconds: Int(timeout.components.seconds))
            }
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

/// Process-wide HTTP clients, one per event loop of the shared group. They live for the whole
/// process, so they are never shut down.
///
/// A request made on one of the shared loops (the gateway runs each connection's turns on its
/// socket's loop) gets that loop's client, whose connections live on the same loop: the streamed
/// response is read, parsed and forwarded without a thread hop per chunk. One client over the whole
/// group would hand out whichever idle connection it has, often on the other loop.
///
/// The clients have no read timeout of their own: ``ProviderExchange`` keeps the provider's
/// `timeout` with one timer per request instead of one per read.
enum ProviderHTTPClients {
    private static let loops: [any EventLoop] = Array(HTTPClient.defaultEventLoopGroup.makeIterator())
    private static let clients: [HTTPClient] = loops.map { loop in
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow, timeout: .init(connect: .seconds(10), read: nil))
        // No decompression: with it, every request advertised gzip and every body part of a
        // streamed answer went through one more handler (and an inflate when a server took the
        // offer) — per streamed token, for answers a few hundred bytes long. Requests ask for
        // `identity`, and a compressed answer is refused with a clear error.
        configuration.decompression = .disabled
        // ReliableProvider retries with the configured backoff; the pool must not retry a
        // refused connection for the whole connect timeout behind its back.
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.httpVersion = .automatic
        // No tracing system is set up in the guest: the default no-op tracer would still build
        // a span and its attributes for every request (about 2 % of a steady turn's CPU).
        configuration.tracing.tracer = nil
        return HTTPClient(eventLoopGroup: loop, configuration: configuration)
    }

    /// The client for the calling thread's loop and that loop; callers on other threads (the
    /// one-shot CLI, tests) share the first loop's, so their calls reuse its connections too.
    static func client() -> (HTTPClient, any EventLoop) {
        let current = MultiThreadedEventLoopGroup.currentEventLoop
        let index = current.flatMap { current in loops.firstIndex { $0 === current } } ?? 0
        return (clients[index], loops[index])
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
