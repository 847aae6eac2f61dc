import HummingbirdCore
import Logging
import NIOCore

/// Sends what a connection's handlers flush during one run of its event loop's tasks in one
/// system call.
///
/// Hummingbird's WebSocket writer flushes every frame, so the frames one batch of the outbound
/// queue holds (a turn's `turn_started` and `turn_progress`, the last delta and the frame after
/// it) each cost a `writev` and a wake-up of the client. First in the pipeline (next to the
/// socket), this handler lets writes through and turns the first flush into a task that runs
/// after the loop's tasks already queued; later flushes before it are absorbed. A close flushes
/// at once, so the last frames before a close are never dropped.
final class FlushCoalescingHandler: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var flushScheduled = false

    init() {}

    func flush(context: ChannelHandlerContext) {
        guard !flushScheduled else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.flushNow(context: context)
        }
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        flushNow(context: context)
        context.close(mode: mode, promise: promise)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        flushNow(context: context)
    }

    private func flushNow(context: ChannelHandlerContext) {
        guard flushScheduled else { return }
        flushScheduled = false
        context.flush()
    }
}

/// A server child channel with ``FlushCoalescingHandler`` first in its pipeline, where it stays
/// through the WebSocket upgrade (which replaces only the HTTP handlers after it).
struct FlushCoalescingChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value
    let base: Base

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        do {
            try channel.pipeline.syncOperations.addHandler(FlushCoalescingHandler(), position: .first)
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        return base.setup(channel: channel, logger: logger)
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}
