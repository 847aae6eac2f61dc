import Logging
import NIOCore
import NIOPosix
import OxydraCore
import ServiceLifecycle

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The guest's control socket (`<ws>/ipc/runner-control.sock`, mode 0600): one length-prefixed
/// JSON request per connection, one reply.
///
/// In the micro_vm tier the same protocol is also served on a TCP port of the VM (QEMU publishes it
/// on the host's loopback only): every request there must carry the guest's control `token`.
public struct ControlServer: Service {
    public let path: String
    /// The TCP port (micro_vm tier) instead of the Unix socket; requests must carry ``token``.
    let tcpPort: Int?
    let token: String?
    let handler: @Sendable (ControlRequest) async -> ControlResponse
    let logger: Logger

    public init(path: String, logger: Logger, handler: @escaping @Sendable (ControlRequest) async -> ControlResponse) {
        self.path = path
        self.logger = logger
        self.handler = handler
        tcpPort = nil
        token = nil
    }

    /// The control protocol on `0.0.0.0:<tcpPort>` of a micro VM, for requests that carry `token`.
    public init(
        tcpPort: Int, token: String, logger: Logger,
        handler: @escaping @Sendable (ControlRequest) async -> ControlResponse
    ) {
        path = ""
        self.tcpPort = tcpPort
        self.token = token
        self.logger = logger
        self.handler = handler
    }

    /// Binds the socket now (so its existence means the guest is up), returning the running service.
    public func bind() async throws -> BoundControlServer {
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 16)
        let channel: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>
        if let tcpPort {
            channel = try await bootstrap.serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .bind(host: "0.0.0.0", port: tcpPort) { child in
                    child.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: child)
                    }
                }
        } else {
            channel = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true) { child in
                child.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: child)
                }
            }
            _ = path.withCString { chmod($0, 0o600) }
        }
        return BoundControlServer(server: self, channel: channel)
    }

    /// Whether `request` carries the token (always, for the Unix socket: its mode is the check).
    func authorized(_ request: JSONValue) -> Bool {
        guard let token else { return true }
        let given = Array((request["token"]?.stringValue ?? "").utf8)
        let expected = Array(token.utf8)
        guard given.count == expected.count else { return false }
        return zip(given, expected).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }

    public func run() async throws {
        try await bind().run()
    }

    func serve(_ client: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async {
        do {
            try await client.executeThenClose { inbound, outbound in
                var decoder = LengthPrefixedDecoder(maxLength: 1 << 20)
                for try await buffer in inbound {
                    decoder.append(buffer.readableBytesView)
                    guard let body = try decoder.next() else { continue }
                    let response: ControlResponse
                    do {
                        let value = try body.withUnsafeBufferPointer { buffer throws(JSONSyntaxError) in
                            try JSONParser.parse(buffer)
                        }
                        if authorized(value) {
                            response = await handler(try ControlRequest(value))
                        } else {
                            response = .failure("unauthorized: this control port needs the guest's control token")
                        }
                    } catch let error as WireError {
                        response = .failure("bad control request: \(error.message)")
                    } catch {
                        response = .failure("bad control request: \(error)")
                    }
                    try await outbound.write(ByteBuffer(bytes: LengthPrefixedFrame.encode(response.json)))
                    return
                }
            }
        } catch {
            logger.debug("control connection ended", metadata: ["error": "\(error)"])
        }
    }
}

/// A control server whose socket is bound.
public struct BoundControlServer: Service {
    let server: ControlServer
    let channel: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>

    public func run() async throws {
        try await withGracefulShutdownHandler {
            try await channel.executeThenClose { clients in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await client in clients {
                        group.addTask { await server.serve(client) }
                    }
                }
            }
        } onGracefulShutdown: {
            channel.channel.close(promise: nil)
        }
        if !server.path.isEmpty { _ = server.path.withCString { unlink($0) } }
    }
}
