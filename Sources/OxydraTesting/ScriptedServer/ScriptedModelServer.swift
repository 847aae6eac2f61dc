import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import OxydraCore
import Synchronization

/// A real HTTP server on loopback that plays the model: it speaks OpenAI Chat Completions,
/// Anthropic Messages, Gemini and OpenAI Responses (streaming and not), and answers each request
/// with the next ``ScriptedReply`` in its queue — including the faults real networks produce.
///
/// ```swift
/// let server = try await ScriptedModelServer.start()
/// server.enqueue(.text("Hello there"))
/// // point a provider's base_url at server.baseURL …
/// try await server.shutdown()
/// ```
///
/// Every request is recorded (``requests``); connections the client closes before the reply was
/// fully sent are counted (``disconnects``). With an empty queue the server answers 500
/// "no scripted reply", so a test that makes an unexpected request fails visibly.
public final class ScriptedModelServer: Sendable {
    private let channel: any NIOCore.Channel
    private let state: ServerState
    /// `http://127.0.0.1:<port>` (`https://` when serving TLS).
    public let baseURL: String

    /// `agent.toml` text selecting this server as provider `local` with an unlisted model
    /// (loopback: no key needed), followed by `extra` (more tables).
    public func agentConfig(_ extra: String = "") -> String {
        """
        [selection]
        provider = "local"
        model = "scripted-model"
        [providers.registry.local]
        provider_type = "openai"
        base_url = "\(baseURL)"
        skip_catalog_validation = true

        """ + extra
    }
    public let port: Int

    private init(channel: any NIOCore.Channel, state: ServerState, port: Int, tls: Bool) {
        self.channel = channel
        self.state = state
        self.port = port
        self.baseURL = "\(tls ? "https" : "http")://127.0.0.1:\(port)"
    }

    /// Binds `host:0` (`127.0.0.1` unless a container must reach it: `0.0.0.0`) and starts serving,
    /// over TLS with `tls` when given.
    public static func start(host: String = "127.0.0.1", tls: NIOSSLContext? = nil) async throws
        -> ScriptedModelServer
    {
        let state = ServerState()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
                    try channel.pipeline.syncOperations.addHandler(ScriptedConnectionHandler(state: state))
                }
            }
            .bind(host: host, port: 0).get()
        return ScriptedModelServer(
            channel: channel, state: state, port: channel.localAddress?.port ?? 0, tls: tls != nil)
    }

    /// Queues the answer to the next request.
    public func enqueue(_ reply: ScriptedReply) { state.enqueue(reply) }
    public func enqueue(_ replies: [ScriptedReply]) { replies.forEach(state.enqueue) }

    /// Answers `path` (GET or POST, any query) with `reply` every time, outside the queue.
    public func route(_ path: String, _ reply: ScriptedReply) { state.route(path, reply) }
    /// Requests answered by ``route(_:_:)`` paths.
    public var routeRequests: [RecordedRequest] { state.routeRequests }

    /// Every request so far, in arrival order.
    public var requests: [RecordedRequest] { state.requests }
    /// Connections closed by the client before their reply was fully written.
    public var disconnects: Int { state.disconnects }
    /// Connections accepted so far.
    public var connections: Int { state.connections }
    /// Replies still queued.
    public var pendingReplies: Int { state.pending }

    /// Waits until at least `count` early disconnects were seen, or `timeout` passes.
    public func waitForDisconnects(_ count: Int = 1, timeout: Duration = .seconds(5)) async -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            if state.disconnects >= count { return true }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return state.disconnects >= count
    }

    public func shutdown() async throws {
        try await channel.close()
    }
}

/// State shared by all connections.
final class ServerState: Sendable {
    private struct Storage {
        var queue: [ScriptedReply] = []
        var cursor = 0
        var requests: [RecordedRequest] = []
        var disconnects = 0
        var connections = 0
        /// Fixed answers by path, outside the queue and the recorded requests: the metadata a
        /// local server offers (llama.cpp `/props`, `/v1/models`, Ollama `/api/show`), 404 unless set.
        var routes: [String: ScriptedReply] = Dictionary(
            uniqueKeysWithValues: ["/props", "/v1/models", "/api/show"].map {
                ($0, ScriptedReply.raw(#"{"error":"not found"}"#, status: 404, contentType: "application/json"))
            })
        var routeRequests: [RecordedRequest] = []
    }

    func route(_ path: String, _ reply: ScriptedReply) { storage.withLock { $0.routes[path] = reply } }
    var routeRequests: [RecordedRequest] { storage.withLock { $0.routeRequests } }

    private let storage = Mutex(Storage())

    func enqueue(_ reply: ScriptedReply) { storage.withLock { $0.queue.append(reply) } }

    func next(for request: RecordedRequest) -> ScriptedReply? {
        storage.withLock { storage in
            let path = request.path.split(separator: "?").first.map(String.init) ?? request.path
            if let fixed = storage.routes[path] {
                storage.routeRequests.append(request)
                return fixed
            }
            storage.requests.append(request)
            guard storage.cursor < storage.queue.count else { return nil }
            storage.cursor += 1
            return storage.queue[storage.cursor - 1]
        }
    }

    var requests: [RecordedRequest] { storage.withLock { $0.requests } }
    var disconnects: Int { storage.withLock { $0.disconnects } }
    var connections: Int { storage.withLock { $0.connections } }
    func recordConnection() { storage.withLock { $0.connections += 1 } }
    var pending: Int { storage.withLock { $0.queue.count - $0.cursor } }
    func recordDisconnect() { storage.withLock { $0.disconnects += 1 } }
}

/// One connection: decodes requests, writes raw HTTP/1.1 replies on a schedule.
final class ScriptedConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = ByteBuffer

    private let state: ServerState
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    private var replying = false
    private var finished = true

    init(state: ServerState) { self.state = state }

    func handlerAdded(context: ChannelHandlerContext) { state.recordConnection() }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let requestHead):
            head = requestHead
            body.clear()
        case .body(var chunk):
            body.writeBuffer(&chunk)
        case .end:
            guard let head, !replying else { return }
            replying = true
            finished = false
            let request = RecordedRequest(
                method: head.method.rawValue, path: head.uri, headers: head.headers.map { ($0.name, $0.value) },
                body: Data(body.readableBytesView))
            let reply = state.next(for: request)
            send(plan(for: request, reply: reply), context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !finished { state.recordDisconnect() }
        finished = true
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// What to write, when.
    struct Step {
        var delay: Duration
        var bytes: [UInt8]
    }

    struct Plan {
        var steps: [Step]
        /// Close after the steps without finishing the response properly.
        var abort: Bool
        /// Leave the connection open for the next request.
        var keepAlive = false
    }

    private func plan(for request: RecordedRequest, reply: ScriptedReply?) -> Plan {
        guard let reply else {
            return Plan(
                steps: [
                    Step(
                        delay: .zero,
                        bytes: response(
                            status: 500, contentType: "application/json",
                            body: #"{"error":{"message":"no scripted reply"}}"#))
                ], abort: false)
        }
        if reply.closeWithoutAnswer { return Plan(steps: [], abort: true) }
        if let recorded = reply.recordedResponse {
            let size = max(1, reply.fragmentBytes ?? recorded.count)
            let steps = stride(from: 0, to: recorded.count, by: size).map {
                Step(
                    delay: $0 == 0 ? reply.headDelay : reply.chunkDelay,
                    bytes: Array(recorded[$0..<min($0 + size, recorded.count)]))
            }
            return Plan(steps: steps, abort: false)
        }
        let json = request.json
        let model = json?["model"]?.stringValue ?? "scripted-model"
        let detected = WireFormat.detect(path: request.path)
        let streaming = detected?.pathStreams == true || json?["stream"] == .bool(true)
        let rendered: WireRendering.Rendered
        if detected != nil || reply.rawBody != nil {
            rendered = WireRendering.render(
                reply, format: detected?.format ?? .openAIChat, streaming: streaming, model: model)
        } else {
            rendered = WireRendering.Rendered(
                contentType: "application/json", pieces: [#"{"error":{"message":"unknown path"}}"#], streaming: false)
        }
        let status = reply.rawBody == nil && detected == nil ? 404 : reply.status
        var headerLines = "HTTP/1.1 \(status) \(HTTPResponseStatus(statusCode: status).reasonPhrase)\r\n"
        headerLines +=
            "Content-Type: \(rendered.contentType)\r\nConnection: \(reply.keepAlive ? "keep-alive" : "close")\r\n"
        for (name, value) in reply.headers { headerLines += "\(name): \(value)\r\n" }

        // Body pieces: one per event, or re-split at arbitrary byte boundaries.
        var pieces = rendered.pieces.map { Array($0.utf8) }
        if let size = reply.fragmentBytes, size > 0 {
            let all = pieces.flatMap { $0 }
            pieces = stride(from: 0, to: all.count, by: size).map { Array(all[$0..<min($0 + size, all.count)]) }
        }
        let chunked = rendered.streaming || reply.fragmentBytes != nil || reply.dropAfterBytes != nil
        var steps: [Step] = []
        if chunked {
            headerLines += "Transfer-Encoding: chunked\r\n\r\n"
            steps.append(Step(delay: reply.headDelay, bytes: Array(headerLines.utf8)))
            var sent = 0
            for piece in pieces where !piece.isEmpty {
                if let limit = reply.dropAfterBytes, sent + piece.count > limit {
                    // Send part of this chunk, then break the connection mid-transfer.
                    let take = max(0, limit - sent)
                    var framed = Array(String(piece.count, radix: 16).utf8) + [13, 10]
                    framed += piece.prefix(take)
                    steps.append(Step(delay: reply.chunkDelay, bytes: framed))
                    return Plan(steps: steps, abort: true)
                }
                sent += piece.count
                steps.append(
                    Step(
                        delay: reply.chunkDelay,
                        bytes: Array(String(piece.count, radix: 16).utf8) + [13, 10] + piece + [13, 10]))
            }
            steps.append(Step(delay: reply.chunkDelay, bytes: Array("0\r\n\r\n".utf8)))
        } else {
            let body = pieces.flatMap { $0 }
            headerLines += "Content-Length: \(body.count)\r\n\r\n"
            steps.append(Step(delay: reply.headDelay, bytes: Array(headerLines.utf8) + body))
        }
        return Plan(steps: steps, abort: false, keepAlive: reply.keepAlive)
    }

    private func response(status: Int, contentType: String, body: String) -> [UInt8] {
        let head =
            "HTTP/1.1 \(status) \(HTTPResponseStatus(statusCode: status).reasonPhrase)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n"
        return Array((head + body).utf8)
    }

    private func send(_ plan: Plan, context: ChannelHandlerContext) {
        var steps = plan.steps[...]
        let loop = context.eventLoop.assumeIsolated()
        // Steps without a delay are written in a loop (a reply of many thousand chunks must not
        // recurse once per chunk); a delayed one is scheduled and goes on from there.
        func writeNext() {
            while true {
                guard context.channel.isActive else { return }
                guard let step = steps.popFirst() else {
                    if !plan.abort { finished = true }
                    if plan.keepAlive {
                        replying = false
                        return
                    }
                    // Closed once all of it has left: a close with writes still queued (a client that
                    // reads slowly) would drop them.
                    context.writeAndFlush(self.wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)))
                        .assumeIsolated().whenComplete { _ in context.close(promise: nil) }
                    return
                }
                let write = {
                    context.writeAndFlush(
                        self.wrapOutboundOut(context.channel.allocator.buffer(bytes: step.bytes)), promise: nil)
                }
                if step.delay == .zero {
                    write()
                    continue
                }
                loop.scheduleTask(
                    in: TimeAmount.nanoseconds(
                        Int64(step.delay.components.seconds) * 1_000_000_000 + step.delay.components.attoseconds
                            / 1_000_000_000)
                ) {
                    guard context.channel.isActive else { return }
                    write()
                    writeNext()
                }
                return
            }
        }
        writeNext()
    }
}
