import NIOCore
import NIOHTTP1
import OxydraCore

/// Every request the WebSocket upgrade did not take: `GET /healthz` (open, says nothing about whose
/// guest this is), `/ws` without an upgrade or with one refused — answered with the refusal's own
/// status and reason (401 no or wrong token, 403 a browser origin or a rebound Host, 400 two Host
/// headers) or 426 when only the upgrade was missing — and 404 for any other path. A connection
/// without a request for `Settings.idleTimeout` (30 s) is closed.
final class GatewayHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    static let name = "oxydra-gateway-http"
    static let idleName = "oxydra-gateway-idle"

    let hub: SessionHub
    let guardrails: RequestGuard
    private var head: HTTPRequestHead?

    init(hub: SessionHub, guardrails: RequestGuard) {
        self.hub = hub
        self.guardrails = guardrails
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            guard let head else { return }
            self.head = nil
            answer(head, context: context)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func answer(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        switch head.path {
        case "/healthz":
            if let refusal = guardrails.hostRefusal(of: head) { return respond(refusal, to: head, context: context) }
            guard head.method == .GET || head.method == .HEAD else {
                return respond(Refusal(status: .methodNotAllowed, message: "only GET"), to: head, context: context)
            }
            let hub = self.hub
            let loop = context.eventLoop
            let handler = NIOLoopBound(self, eventLoop: loop)
            let bound = NIOLoopBound(context, eventLoop: loop)
            loop.makeFutureWithTask { await hub.isShuttingDown }.whenSuccess { shuttingDown in
                let body = JSONWriter.text([
                    "status": .string(shuttingDown ? "shutting_down" : "ok"),
                    "protocol_version": .integer(GatewayProtocol.version),
                ])
                handler.value.respond(.ok, body, type: "application/json", to: head, context: bound.value)
            }
        case GatewayProtocol.path:
            let refusal =
                guardrails.refusal(of: head)
                ?? Refusal(
                    status: .upgradeRequired,
                    message: "this is the gateway's WebSocket endpoint: connect with a WebSocket client (protocol v1)")
            respond(refusal, to: head, context: context)
        default:
            respond(Refusal(status: .notFound, message: "not found"), to: head, context: context)
        }
    }

    private func respond(_ refusal: Refusal, to head: HTTPRequestHead, context: ChannelHandlerContext) {
        respond(refusal.status, refusal.message + "\n", type: "text/plain; charset=utf-8", to: head, context: context)
    }

    private func respond(
        _ status: HTTPResponseStatus, _ body: String, type: String, to request: HTTPRequestHead,
        context: ChannelHandlerContext
    ) {
        // Errors close the connection; a health check may keep it.
        let keepAlive = status == .ok && request.isKeepAlive
        var head = HTTPResponseHead(version: request.version, status: status)
        head.headers.add(name: "content-type", value: type)
        head.headers.add(name: "content-length", value: "\(body.utf8.count)")
        head.headers.add(name: "server", value: "oxydra-gateway")
        // A refusal quotes the request's Origin or Host: never to be read as anything but text.
        head.headers.add(name: "x-content-type-options", value: "nosniff")
        if status == .upgradeRequired { head.headers.add(name: "upgrade", value: "websocket") }
        if !keepAlive { head.headers.add(name: "connection", value: "close") }
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if request.method != .HEAD {
            context.write(
                wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}

extension HTTPRequestHead {
    /// The request target without its query.
    var path: String {
        guard let query = uri.firstIndex(of: "?") else { return uri }
        return String(uri[..<query])
    }
}
