import NIOCore
import NIOPosix
import OxydraCore
import Synchronization

/// One connection to the shell daemon: requests go out one at a time and each waits for its
/// response. Cancelling a waiting call closes the connection, which makes the daemon kill the
/// connection's commands.
public final class ShellDaemonConnection: Sendable {
    private struct Pending: Sendable {
        var request: ShellRequest
        var reply: CheckedContinuation<ShellResponse, any Error>
    }

    private let requests: AsyncStream<Pending>.Continuation
    private let channel: any NIOCore.Channel
    private let closed = Flag()

    private final class Flag: Sendable {
        private let value = Atomic<Bool>(false)
        func set() { value.store(true, ordering: .relaxed) }
        var isSet: Bool { value.load(ordering: .relaxed) }
    }

    public static func connect(to path: String) async throws(ShellClientError) -> ShellDaemonConnection {
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(unixDomainSocketPath: path) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw ShellClientError.unavailable("cannot connect to the shell daemon at \(path): \(error)")
        }
        return ShellDaemonConnection(channel)
    }

    private init(_ asyncChannel: NIOAsyncChannel<ByteBuffer, ByteBuffer>) {
        channel = asyncChannel.channel
        let (stream, continuation) = AsyncStream.makeStream(of: Pending.self)
        requests = continuation
        let closed = self.closed
        Task {
            var failure: ShellClientError = .connectionLost("the shell daemon closed the connection")
            do {
                try await asyncChannel.executeThenClose { inbound, outbound in
                    var frames = inbound.makeAsyncIterator()
                    var decoder = LengthPrefixedDecoder(maxLength: 64 << 20)
                    for await pending in stream {
                        do {
                            try await outbound.write(
                                ByteBuffer(bytes: LengthPrefixedFrame.encode(pending.request.json)))
                            func nextFrame() async throws -> [UInt8] {
                                while true {
                                    if let body = try decoder.next() { return body }
                                    guard let buffer = try await frames.next() else {
                                        throw ShellClientError.connectionLost("the shell daemon closed the connection")
                                    }
                                    decoder.append(buffer.readableBytesView)
                                }
                            }
                            let body = try await nextFrame()
                            let value = try body.withUnsafeBufferPointer { try JSONParser.parse($0) }
                            var response = try ShellResponse(value)
                            if case .output(let session, var chunk) = response.body, chunk.rawLength > 0 {
                                let bytes = try await nextFrame()
                                guard bytes.count == chunk.rawLength else {
                                    throw ShellClientError.protocolError(
                                        "the shell daemon announced \(chunk.rawLength) raw bytes and sent \(bytes.count)"
                                    )
                                }
                                chunk.raw = bytes
                                response.body = .output(sessionID: session, chunk)
                            }
                            pending.reply.resume(returning: response)
                        } catch let error as ShellClientError {
                            pending.reply.resume(throwing: error)
                            throw error
                        } catch {
                            let wrapped = ShellClientError.connectionLost("shell daemon connection failed: \(error)")
                            pending.reply.resume(throwing: wrapped)
                            throw wrapped
                        }
                    }
                }
            } catch let error as ShellClientError {
                failure = error
            } catch {
                failure = .connectionLost("shell daemon connection failed: \(error)")
            }
            closed.set()
            continuation.finish()
            // Requests that arrived after the failure.
            for await pending in stream { pending.reply.resume(throwing: failure) }
        }
    }

    public var isClosed: Bool { closed.isSet }

    /// Sends `request` and waits for its response.
    public func call(_ request: ShellRequest) async throws -> ShellResponse {
        if isClosed { throw ShellClientError.connectionLost("the shell daemon connection is closed") }
        let response = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<ShellResponse, any Error>) in
                if case .terminated = requests.yield(Pending(request: request, reply: continuation)) {
                    continuation.resume(
                        throwing: ShellClientError.connectionLost("the shell daemon connection is closed"))
                }
            }
        } onCancel: {
            close()
        }
        if Task.isCancelled { throw CancellationError() }
        if let id = response.requestID, id != request.requestID {
            close()
            throw ShellClientError.protocolError(
                "the shell daemon answered request `\(id)` while `\(request.requestID)` was expected")
        }
        return response
    }

    public func close() {
        closed.set()
        channel.close(promise: nil)
    }
}

/// Why talking to the shell daemon failed.
public enum ShellClientError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Not reachable (not started, socket missing, refused).
    case unavailable(String)
    /// The connection broke (the daemon or its sandbox restarted or crashed).
    case connectionLost(String)
    /// The daemon said something unexpected.
    case protocolError(String)
    /// The daemon refused the request.
    case refused(String)

    public var description: String {
        switch self {
        case .unavailable(let message), .connectionLost(let message), .protocolError(let message),
            .refused(let message):
            message
        }
    }
}
