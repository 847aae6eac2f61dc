import HTTPTypes
import HummingbirdWSClient
import Logging
import NIOCore
import NIOWebSocket
import OxydraCore
import Synchronization

/// A WebSocket connection to a guest's gateway, for the TUI, `runner ask` and tests.
///
/// Frames from the server arrive on ``frames`` (one consumer); ``send(_:)`` queues a frame. When the
/// connection ends, ``frames`` finishes and ``failure`` says why (nil for a clean close).
public final class GatewayClient: Sendable {
    public let frames: AsyncStream<ServerFrame>
    /// With `raw`: the server's frames as the text they arrived in, unparsed (``frames`` stays empty).
    /// A relay (the web app's proxy) forwards them without decoding and encoding each one.
    public let texts: AsyncStream<String>
    private let outbound: AsyncStream<String>.Continuation
    private let shared = Shared()

    struct State {
        var failure: GatewayClientError?
        var closed = false
        var task: Task<Void, Never>?
    }

    final class Shared: Sendable {
        let state = Mutex<State>(State())
    }

    /// Starts connecting to `endpoint` (`ws://127.0.0.1:PORT/ws`); frames flow once connected.
    public init(
        endpoint: String, token: String? = nil, raw: Bool = false, logger: Logger = Logger(label: "oxydra.client")
    ) {
        let (inbound, inboundContinuation) = AsyncStream.makeStream(of: ServerFrame.self)
        let (texts, textContinuation) = AsyncStream.makeStream(of: String.self)
        self.texts = texts
        let (outgoing, outgoingContinuation) = AsyncStream.makeStream(of: String.self)
        frames = inbound
        outbound = outgoingContinuation
        var headers = HTTPFields()
        if let token { headers[.authorization] = "Bearer \(token)" }
        let configuration = WebSocketClientConfiguration(
            maxFrameSize: 16 << 20, additionalHeaders: headers, autoPing: .disabled)
        let shared = self.shared
        let running = Task {
            do {
                let close = try await WebSocketClient.connect(
                    url: endpoint, configuration: configuration, logger: logger
                ) {
                    inbound, outbound, _ in
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask {
                            for await text in outgoing {
                                try await outbound.write(.text(text))
                            }
                            try await outbound.close(.normalClosure, reason: nil)
                        }
                        for try await message in inbound.messages(maxSize: 16 << 20) {
                            let text: String
                            switch message {
                            case .text(let string): text = string
                            case .binary(let buffer): text = String(buffer: buffer)
                            }
                            if raw {
                                textContinuation.yield(text)
                                continue
                            }
                            do {
                                inboundContinuation.yield(try ServerFrame(parsing: text))
                            } catch {
                                shared.state.withLock {
                                    $0.failure = GatewayClientError(
                                        "the gateway sent a frame this client cannot read: \(error)")
                                }
                            }
                        }
                        group.cancelAll()
                    }
                }
                if let close, close.closeCode != .normalClosure {
                    shared.state.withLock {
                        if $0.failure == nil {
                            $0.failure = GatewayClientError(
                                "the gateway closed the connection (\(close.closeCode)\(close.reason.map { ": \($0)" } ?? ""))"
                            )
                        }
                    }
                }
            } catch {
                shared.state.withLock {
                    if !$0.closed { $0.failure = GatewayClientError(Self.describe(error, endpoint: endpoint)) }
                }
            }
            inboundContinuation.finish()
            textContinuation.finish()
        }
        shared.state.withLock { $0.task = running }
    }

    deinit {
        outbound.finish()
    }

    public func send(_ frame: ClientFrame) {
        outbound.yield(frame.text)
    }

    /// Sends text as-is (tests use it for malformed frames).
    public func sendRaw(_ text: String) {
        outbound.yield(text)
    }

    /// Closes the connection cleanly.
    public func close() {
        shared.state.withLock { $0.closed = true }
        outbound.finish()
    }

    /// Why the connection ended; nil while open or after a clean close.
    public var failure: GatewayClientError? { shared.state.withLock { $0.failure } }

    /// Waits until the connection has fully ended.
    public func waitUntilClosed() async {
        let running = shared.state.withLock { $0.task }
        await running?.value
    }

    static func describe(_ error: any Error, endpoint: String) -> String {
        let text = "\(error)"
        if text.contains("connectionRefused") || text.contains("Connection refused") {
            return "cannot connect to the gateway at \(endpoint): connection refused (is the guest running?)"
        }
        if text.contains("webSocketUpgradeFailed") || text.contains("upgrade failed")
            || text.contains("invalidResponseStatus")
        {
            return "the gateway at \(endpoint) refused the WebSocket upgrade (wrong token or origin?): \(text)"
        }
        return "cannot connect to the gateway at \(endpoint): \(text)"
    }
}

public struct GatewayClientError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Request and turn ids: `req-<n>`, `turn-<n>` (unique within the process, time-ordered across runs).
public enum FrameIDs {
    private static let counter = Atomic<UInt64>(0)

    public static func request() -> String { "req-" + next() }
    public static func turn() -> TurnID { TurnID("turn-" + next()) }

    private static func next() -> String {
        let sequence = counter.add(1, ordering: .relaxed).newValue
        let now = Date().timeIntervalSince1970
        return String(UInt64(now * 1000), radix: 36) + "-" + String(sequence)
    }
}
