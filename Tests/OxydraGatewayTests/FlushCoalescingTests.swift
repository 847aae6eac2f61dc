import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import OxydraGateway

/// ``FlushCoalescingHandler`` over a real loopback connection: what reaches the socket, and what the
/// peer reads.
@Suite("Flush coalescing")
struct FlushCoalescingTests {
    /// Counts the flushes that get past the coalescing handler (it sits next to the socket).
    final class FlushProbe: ChannelOutboundHandler, Sendable {
        typealias OutboundIn = ByteBuffer
        let flushes = Mutex(0)
        func flush(context: ChannelHandlerContext) {
            flushes.withLock { $0 += 1 }
            context.flush()
        }
    }

    /// Collects what the peer sends until it closes.
    final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let received = Mutex("")
        let closed: EventLoopPromise<String>
        init(closed: EventLoopPromise<String>) { self.closed = closed }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            received.withLock { $0 += String(buffer: buffer) }
        }
        func channelInactive(context: ChannelHandlerContext) {
            closed.succeed(received.withLock { $0 })
        }
    }

    struct Connection {
        let server: any Channel
        let accepted: any Channel
        let probe: FlushProbe
        let peerClosed: EventLoopFuture<String>
    }

    /// A server whose accepted channel has the probe and the coalescing handler, and a client
    /// connected to it.
    func connect(group: MultiThreadedEventLoopGroup) async throws -> Connection {
        let probe = FlushProbe()
        let accepted = group.next().makePromise(of: (any Channel).self)
        let server = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(probe)
                    try channel.pipeline.syncOperations.addHandler(FlushCoalescingHandler())
                    accepted.succeed(channel)
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let peerClosed = group.next().makePromise(of: String.self)
        _ = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Collector(closed: peerClosed))
                }
            }
            .connect(host: "127.0.0.1", port: server.localAddress!.port!).get()
        return Connection(
            server: server, accepted: try await accepted.futureResult.get(), probe: probe,
            peerClosed: peerClosed.futureResult)
    }

    /// Frames flushed one by one in one run of the loop's tasks reach the socket with one flush;
    /// a later run gets a flush of its own; nothing is lost or reordered.
    @Test func flushesOfOneRunOfTheLoopLeaveTogether() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let connection = try await connect(group: group)
        let channel = connection.accepted
        try await channel.eventLoop.submit {
            for part in ["a", "b", "c"] { channel.writeAndFlush(ByteBuffer(string: part), promise: nil) }
        }.get()
        // The flush runs after the task that wrote: by the next task it has happened once.
        #expect(try await channel.eventLoop.submit { connection.probe.flushes.withLock { $0 } }.get() == 1)
        try await channel.eventLoop.submit {
            for part in ["d", "e"] { channel.writeAndFlush(ByteBuffer(string: part), promise: nil) }
        }.get()
        #expect(try await channel.eventLoop.submit { connection.probe.flushes.withLock { $0 } }.get() == 2)
        try await channel.close()
        #expect(try await connection.peerClosed.get() == "abcde")
        try await connection.server.close()
        try await group.shutdownGracefully()
    }

    /// A close in the same task as the writes before it still sends them (a WebSocket close frame
    /// followed by the close of the connection).
    @Test func writesBeforeACloseInTheSameTaskAreSent() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let connection = try await connect(group: group)
        let channel = connection.accepted
        try await channel.eventLoop.submit {
            channel.writeAndFlush(ByteBuffer(string: "last words"), promise: nil)
            channel.close(promise: nil)
        }.get()
        #expect(try await connection.peerClosed.get() == "last words")
        #expect(connection.probe.flushes.withLock { $0 } == 1)
        try await connection.server.close()
        try await group.shutdownGracefully()
    }
}
