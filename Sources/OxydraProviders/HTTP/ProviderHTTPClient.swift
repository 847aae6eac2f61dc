import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import OxydraCore
import Synchronization

/// A provider request ready to send: where it goes, its head and its body.
struct ProviderHTTPRequest: Sendable {
    /// Scheme, host and port: what a pooled connection is kept for.
    struct Endpoint: Hashable, Sendable {
        let tls: Bool
        /// Without brackets for an IPv6 literal.
        let host: String
        let port: Int
    }

    let endpoint: Endpoint
    let head: HTTPRequestHead
    let body: ByteBuffer

    /// A POST of `body` to `url` (`http://` or `https://`, credentials in the URL become Basic
    /// authentication) with `headers`; `Host` and `Content-Length` are added.
    init(post url: String, headers: [(String, String)], body: ByteBuffer) throws(ProviderHTTPError) {
        let lowered = url.lowercased()
        let tls: Bool
        let rest: Substring
        if lowered.hasPrefix("https://") {
            tls = true
            rest = url.dropFirst(8)
        } else if lowered.hasPrefix("http://") {
            tls = false
            rest = url.dropFirst(7)
        } else {
            throw .badURL("`\(url)` is neither an http:// nor an https:// URL")
        }
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        var authority = rest[..<authorityEnd]
        var target = rest[authorityEnd...]
        if let fragment = target.firstIndex(of: "#") { target = target[..<fragment] }
        var credentials: Substring?
        if let at = authority.lastIndex(of: "@") {
            credentials = authority[..<at]
            authority = authority[authority.index(after: at)...]
        }
        let host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw .badURL("`\(url)` has an unclosed `[`") }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw .badURL("`\(url)` has text after the IPv6 address") }
                portText = after.dropFirst()
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        } else {
            host = authority
        }
        guard !host.isEmpty else { throw .badURL("`\(url)` has no host") }
        var port = tls ? 443 : 80
        if let portText {
            guard let number = Int(portText), (1...65535).contains(number) else {
                throw .badURL("`\(url)` has an invalid port `\(portText)`")
            }
            port = number
        }
        endpoint = Endpoint(tls: tls, host: String(host), port: port)

        var fields = HTTPHeaders()
        fields.add(name: "Host", value: String(authority))
        if let credentials {
            fields.add(
                name: "Authorization", value: "Basic " + Data(Self.percentDecoded(credentials)).base64EncodedString())
        }
        for (name, value) in headers {
            guard !name.isEmpty, name.utf8.allSatisfy(Self.isTokenByte) else {
                throw .badHeader("header name `\(name)` is not a valid HTTP token")
            }
            guard !value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }) else {
                throw .badHeader("the value of header `\(name)` contains a line break or NUL")
            }
            fields.replaceOrAdd(name: name, value: value)
        }
        fields.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes))
        let path = target.isEmpty ? "/" : target.hasPrefix("?") ? "/" + target : String(target)
        head = HTTPRequestHead(version: .http1_1, method: .POST, uri: path, headers: fields)
        self.body = body
    }

    /// `text`'s bytes with `%XX` escapes decoded (a malformed escape is kept as it is).
    static func percentDecoded(_ text: Substring) -> [UInt8] {
        let bytes = Array(text.utf8)
        var result: [UInt8] = []
        result.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "%"), index + 2 < bytes.count,
                let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2])
            {
                result.append(high << 4 | low)
                index += 3
            } else {
                result.append(bytes[index])
                index += 1
            }
        }
        return result
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// RFC 9110 `tchar`.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "A")...UInt8(ascii: "Z"):
            true
        default: "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}

/// Why a provider request failed below HTTP (the provider's own errors are statuses).
enum ProviderHTTPError: Error, Equatable, CustomStringConvertible {
    case badURL(String)
    case badHeader(String)
    /// Nothing was heard for the provider's `timeout`.
    case readTimeout
    /// The server closed the connection before the response was complete.
    case connectionClosed(duringBody: Bool)
    /// The reader went away, or let go of more body than is worth reading to the end.
    case cancelled

    var description: String {
        switch self {
        case .badURL(let reason): "invalid URL: \(reason)"
        case .badHeader(let reason): "invalid request header: \(reason)"
        case .readTimeout: "the server did not respond in time"
        case .connectionClosed(false): "the server closed the connection before answering"
        case .connectionClosed(true): "the server closed the connection before the response ended"
        case .cancelled: "the request was cancelled"
        }
    }
}

/// The HTTP/1.1 client provider requests go through: one per event loop, with a pool of
/// keep-alive connections per endpoint on that loop.
///
/// Why not AsyncHTTPClient (which the rest of Oxydra uses): a streamed answer arrives as ~50 tiny
/// body parts, and each went through AsyncHTTPClient's generic request state machines before it
/// reached us — about a fifth of the instructions of a steady turn. Here a part goes from NIO's
/// HTTP decoder to ``ProviderExchange`` in one call. The client speaks HTTP/1.1 only (TLS with
/// ALPN `http/1.1`, certificates checked against the system's roots and the host name); redirects
/// are not followed; a body is never decompressed (requests ask for `identity`).
///
/// Connections: each request takes the endpoint's most recently used idle connection or opens a
/// new one (no limit: one per concurrent request). A connection goes back to the pool after a
/// response read to its end (or drained, see ``ProviderExchange/abandon()``) unless either side
/// said `Connection: close`; idle ones are closed after `idleTimeout`. A request on a reused
/// connection the server had closed meanwhile (a keep-alive timeout racing the request) is sent
/// once more on a new connection if nothing of a response had arrived.
final class ProviderHTTPClient: Sendable {
    static let connectTimeout = TimeAmount.seconds(10)
    static let maxIdlePerEndpoint = 64

    let loop: any EventLoop
    let idleTimeout: TimeAmount
    private let tls: Mutex<NIOSSLContext?>
    private let tlsConfiguration: TLSConfiguration
    private let pool: NIOLoopBoundBox<Pool>

    private struct Pool {
        var idle: [ProviderHTTPRequest.Endpoint: [ProviderConnection]] = [:]
        var sweeping = false
    }

    init(
        loop: any EventLoop, tlsConfiguration: TLSConfiguration = .makeClientConfiguration(),
        idleTimeout: TimeAmount = .seconds(60)
    ) {
        self.loop = loop
        self.idleTimeout = idleTimeout
        var configuration = tlsConfiguration
        configuration.applicationProtocols = ["http/1.1"]
        self.tlsConfiguration = configuration
        tls = Mutex(nil)
        pool = NIOLoopBoundBox.makeBoxSendingValue(Pool(), eventLoop: loop)
    }

    /// Sends `request` for `exchange`; the response and any failure reach the exchange.
    func execute(_ request: ProviderHTTPRequest, for exchange: ProviderExchange) {
        if loop.inEventLoop {
            start(request, for: exchange, mayReuse: true)
        } else {
            loop.execute { self.start(request, for: exchange, mayReuse: true) }
        }
    }

    /// Connections idle in the pool now (for tests).
    func idleConnections() async -> Int {
        (try? await loop.submit { self.pool.value.idle.values.reduce(0) { $0 + $1.count } }.get()) ?? 0
    }

    // MARK: On the loop

    func start(_ request: ProviderHTTPRequest, for exchange: ProviderExchange, mayReuse: Bool) {
        if mayReuse, let connection = takeIdle(request.endpoint) {
            connection.send(request, for: exchange, reused: true)
            return
        }
        let context: NIOSSLContext?
        do { context = request.endpoint.tls ? try tlsContext() : nil } catch {
            exchange.failed(error)
            return
        }
        let endpoint = request.endpoint
        ClientBootstrap(group: loop)
            .connectTimeout(Self.connectTimeout)
            // (TCP_NODELAY is ClientBootstrap's default.)
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if let context {
                        // SNI and the name checked: the host, unless it is an IP address (its SAN is checked).
                        let isAddress = (try? SocketAddress(ipAddress: endpoint.host, port: 0)) != nil
                        try pipeline.addHandler(
                            NIOSSLClientHandler(context: context, serverHostname: isAddress ? nil : endpoint.host))
                    }
                    try pipeline.addHTTPClientHandlers(leftOverBytesStrategy: .dropBytes)
                    try pipeline.addHandler(ProviderConnection(client: self, endpoint: endpoint))
                }
            }
            .connect(host: endpoint.host, port: endpoint.port)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    do {
                        let connection = try channel.pipeline.syncOperations.handler(type: ProviderConnection.self)
                        connection.send(request, for: exchange, reused: false)
                    } catch {
                        exchange.failed(error)
                        channel.close(promise: nil)
                    }
                case .failure(let error):
                    exchange.failed(error)
                }
            }
    }

    /// Made on first use and kept; a failure (no trust roots readable) is not kept, so a fixed
    /// system is picked up by the next request.
    private func tlsContext() throws -> NIOSSLContext {
        try tls.withLock { cached in
            if let cached { return cached }
            let made = try NIOSSLContext(configuration: tlsConfiguration)
            cached = made
            return made
        }
    }

    private func takeIdle(_ endpoint: ProviderHTTPRequest.Endpoint) -> ProviderConnection? {
        while let connection = pool.value.idle[endpoint]?.popLast() {
            if connection.isActive { return connection }
        }
        return nil
    }

    /// A connection whose response ended cleanly: kept for the next request to its endpoint.
    func release(_ connection: ProviderConnection) {
        guard connection.isActive, pool.value.idle[connection.endpoint, default: []].count < Self.maxIdlePerEndpoint
        else {
            connection.close()
            return
        }
        connection.idleSince = .now()
        pool.value.idle[connection.endpoint, default: []].append(connection)
        if !pool.value.sweeping {
            pool.value.sweeping = true
            sweep(after: idleTimeout)
        }
    }

    /// A connection that closed: out of the pool.
    func forget(_ connection: ProviderConnection) {
        pool.value.idle[connection.endpoint]?.removeAll { $0 === connection }
    }

    /// Closes connections idle for `idleTimeout`, one timer per pool (not one per connection).
    private func sweep(after delay: TimeAmount) {
        loop.scheduleTask(in: delay) { [self] in
            let now = NIODeadline.now()
            var next: NIODeadline?
            for connections in pool.value.idle.values {
                for connection in connections {
                    let due = connection.idleSince + idleTimeout
                    if due <= now {
                        connection.close()
                    } else {
                        next = min(next ?? due, due)
                    }
                }
            }
            if let next {
                sweep(after: next - now)
            } else {
                pool.value.sweeping = false
            }
        }
    }
}

/// One connection to a provider: hands the response of the request it carries to that request's
/// ``ProviderExchange`` and holds reading back while the exchange's reader is behind. Lives on
/// its channel's loop (as does every method).
final class ProviderConnection: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    let client: ProviderHTTPClient
    let endpoint: ProviderHTTPRequest.Endpoint
    var idleSince = NIODeadline.now()
    private var context: ChannelHandlerContext?
    private var exchange: ProviderExchange?
    private var request: ProviderHTTPRequest?
    private var reused = false
    /// A response head or byte of this request's response has arrived.
    private var heard = false
    private var keepAlive = true
    private var paused = false
    private var readPending = false
    private var error: (any Error)?

    init(client: ProviderHTTPClient, endpoint: ProviderHTTPRequest.Endpoint) {
        self.client = client
        self.endpoint = endpoint
    }

    var isActive: Bool { context?.channel.isActive ?? false }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func send(_ request: ProviderHTTPRequest, for exchange: ProviderExchange, reused: Bool) {
        guard let context else {
            exchange.failed(ProviderHTTPError.connectionClosed(duringBody: false))
            return
        }
        guard exchange.attach(NIOLoopBound(self, eventLoop: context.eventLoop)) else {
            // Ended while the connection was being found (cancelled, timed out): nothing was sent.
            client.release(self)
            return
        }
        self.exchange = exchange
        self.request = request
        self.reused = reused
        heard = false
        keepAlive = !request.head.headers[canonicalForm: "connection"].contains { $0.lowercased() == "close" }
        context.write(wrapOutboundOut(.head(request.head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(request.body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func close() { context?.close(promise: nil) }

    /// The reader has caught up: read again.
    func resume() {
        paused = false
        guard readPending, let context else { return }
        readPending = false
        context.read()
    }

    func read(context: ChannelHandlerContext) {
        if paused {
            readPending = true
        } else {
            context.read()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            // Interim answers (`100 Continue`) come before the real head.
            if head.status.code >= 100 && head.status.code < 200 && head.status.code != 101 { return }
            heard = true
            keepAlive = keepAlive && head.isKeepAlive
            exchange?.received(head: head)
        case .body(let part):
            heard = true
            guard let exchange else { return }
            switch exchange.received(part: part) {
            case .read: break
            case .pause: paused = true
            case .stop: context.close(promise: nil)
            }
        case .end:
            guard let exchange else { return }
            self.exchange = nil
            request = nil
            // Reading again if it was held: an idle connection must see the server close it.
            resume()
            if exchange.finished() && keepAlive {
                client.release(self)
            } else {
                context.close(promise: nil)
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if self.error == nil { self.error = error }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        client.forget(self)
        if let exchange, let request {
            self.exchange = nil
            self.request = nil
            if reused && !heard && (error == nil || error is IOError) && !exchange.isOver {
                // The server closed the idle connection as the request went out: nothing of it
                // was answered, so it goes once more on a new connection.
                client.start(request, for: exchange, mayReuse: false)
            } else {
                exchange.failed(error ?? ProviderHTTPError.connectionClosed(duringBody: heard))
            }
        }
        context.fireChannelInactive()
    }
}
