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
public struct ControlServer: Service {
    public let path: String
    let handler: @Sendable (ControlRequest) async -> ControlResponse
    let logger: Logger

    public init(path: String, logger: Logger, handler: @escaping @Sendable (ControlRequest) async -> ControlResponse) {
        self.path = path
        self.logger = logger
        self.handler = handler
    }

    /// Binds the socket now (so its existence means the guest is up), returning the running service.
    public func bind() async throws -> BoundControlServer {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 16)
            .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true) { child in
                child.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: child)
                }
            }
        _ = path.withCString { chmod($0, 0o600) }
        return BoundControlServer(server: self, channel: channel)
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
                        response = await handler(try ControlRequest(value))
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
        _ = server.path.withCString { unlink($0) }
    }
}
