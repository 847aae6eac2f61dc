import Foundation
import OxydraCore
import OxydraGateway
import OxydraTesting
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The gateway's WebSocket protocol (RFC 6455) as a client on the wire sees it: frames written and
/// read byte for byte over a real loopback socket, including what no well-behaved client sends.
@Suite("Gateway WebSocket protocol", .serialized)
struct WebSocketProtocolTests {
    @Test func fragmentsAreAssembledAndPingsAnsweredInBetween() async throws {
        let fixture = try await GatewayFixture.start()
        defer { Teardown.run { await fixture.stop() } }
        let socket = try RawWebSocket(port: fixture.port, token: fixture.token)
        let hello = Array(#"{"type":"hello","payload":{"request_id":"h1","protocol_version":1}}"#.utf8)
        // Three fragments with a ping between the first two (control frames may interleave).
        try socket.send(.text, Array(hello[0..<10]), fin: false)
        try socket.send(.ping, Array("are you there".utf8))
        try socket.send(.continuation, Array(hello[10..<30]), fin: false)
        try socket.send(.continuation, Array(hello[30...]))
        let pong = try socket.receive()
        #expect(pong.opcode == .pong && pong.text == "are you there")
        let ack = try socket.receive()
        #expect(ack.opcode == .text && ack.text.contains(#""type":"hello_ack""#) && ack.text.contains(#""h1""#))
        // A binary message is read as the same JSON text.
        try socket.send(.binary, Array(#"{"type":"health_check","payload":{"request_id":"hc"}}"#.utf8))
        let health = try socket.receive()
        #expect(health.text.contains(#""type":"health_status""#) && health.text.contains(#""hc""#))
        // The client closes: the gateway answers 1000 and ends the TCP connection.
        try socket.send(.close, [0x03, 0xE8] + Array("bye".utf8))
        let close = try socket.receive()
        #expect(close.opcode == .close && close.code == 1000)
        #expect(try socket.receiveEnd())
    }

    @Test func violationsCloseWithTheCodeTheRFCNames() async throws {
        let fixture = try await GatewayFixture.start()
        defer { Teardown.run { await fixture.stop() } }
        let ping = Array("x".utf8)
        let cases: [(String, UInt16, (RawWebSocket) throws -> Void)] = [
            ("unmasked frame", 1002, { try $0.send(.text, Array("{}".utf8), masked: false) }),
            ("text that is not UTF-8", 1007, { try $0.send(.text, [0x7B, 0xFF, 0xFE, 0x7D]) }),
            ("continuation without a message", 1002, { try $0.send(.continuation, ping) }),
            ("reserved bit set", 1002, { try $0.send(.text, Array("{}".utf8), rsv1: true) }),
            ("reserved opcode", 1002, { try $0.send(.reserved3, ping) }),
            (
                "a new message inside a fragmented one", 1002,
                {
                    try $0.send(.text, ping, fin: false)
                    try $0.send(.text, ping)
                }
            ),
            ("close with a code not for the wire (1005)", 1002, { try $0.send(.close, [0x03, 0xED]) }),
            ("fragmented ping", 1002, { try $0.send(.ping, ping, fin: false) }),
            (
                "a message over the limit in fragments", 1009,
                {
                    let half = [UInt8](repeating: 0x20, count: GatewayProtocol.maxClientFrameBytes / 2 + 1)
                    try $0.send(.text, half, fin: false)
                    try $0.send(.continuation, half)
                }
            ),
        ]
        for (name, code, violate) in cases {
            let socket = try RawWebSocket(port: fixture.port, token: fixture.token)
            try violate(socket)
            let close = try socket.receive()
            #expect(close.opcode == .close && close.code == code, "\(name): \(close.opcode) \(close.code ?? 0)")
            // The gateway waits for the client's close (unless it closed at once: NIO's decoder
            // errors and an invalid close); once it comes the connection ends.
            try? socket.send(.close, [0x03, 0xE8])
            #expect(try socket.receiveEnd(), "\(name): the connection stayed open")
        }
        // The gateway still serves.
        let (client, _) = try await fixture.connected()
        client.close()
    }

    /// A client that does not read: the gateway's writer waits for the socket (its buffer past
    /// NIO's high-water mark) while the turn goes on, the deltas queued meanwhile are merged, and
    /// once the client reads it gets the whole answer in fewer frames.
    @Test func aClientThatStopsReadingGetsTheWholeAnswerMerged() async throws {
        let fixture = try await GatewayFixture.start()
        defer { Teardown.run { await fixture.stop() } }
        let piece = String(repeating: "abcdefgh", count: 128)
        fixture.server.enqueue(chunks(Array(repeating: piece, count: 2000)))
        let socket = try RawWebSocket(port: fixture.port, token: fixture.token, receiveBuffer: 4096)
        try socket.helloAndTurn()
        try await Task.sleep(for: .seconds(1))
        var text = ""
        var deltas = 0
        while true {
            let frame = try ServerFrame(parsing: try socket.receive().text)
            if case .assistantDelta(_, let delta) = frame {
                text += delta
                deltas += 1
            }
            if case .turnCompleted = frame { break }
        }
        #expect(text == String(repeating: piece, count: 2000))
        #expect(deltas < 2000, "no delta was merged while the client was not reading")
    }

    /// A client that never reads while the model streams on: once the socket holds all it can,
    /// the writer waits, what the turn publishes piles up in the connection's queue, and past its
    /// bound the client is told it lagged and closed with 1008 — the gateway does not buffer
    /// without end for a reader that is gone.
    @Test func aClientThatNeverReadsIsClosedAsLagging() async throws {
        // A bound of 64 frames (8,192 by default) between two writes.
        let fixture = try await GatewayFixture.start(clientBufferFrames: 64)
        defer { Teardown.run { await fixture.stop() } }
        // First 8 MB (16 chunks of 512 KiB): more than the kernel's socket buffers hold (tcp_wmem's
        // maximum is 4 MiB), so NIO's buffer passes its high-water mark and the writer waits; then
        // 300 small chunks, 2 ms apart so that each is a delta of its own, while the writer waits.
        var reply = chunks(
            Array(repeating: String(repeating: "z", count: 512 << 10), count: 16) + Array(repeating: "y", count: 300))
        reply.chunkDelay = .milliseconds(2)
        fixture.server.enqueue(reply)
        let socket = try RawWebSocket(port: fixture.port, token: fixture.token, receiveBuffer: 4096)
        try socket.helloAndTurn()
        // The turn ends on the server whether or not this client reads.
        try await Task.sleep(for: .milliseconds(500))
        for _ in 0..<2000 where await fixture.hub.activeTurnCount > 0 {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(await fixture.hub.activeTurnCount == 0)
        var lagging = false
        var completed = false
        while true {
            let frame = try socket.receive()
            if frame.opcode == .close {
                #expect(frame.code == 1008 && frame.text == "client too slow")
                break
            }
            if frame.text.contains(#""code":"lagging""#) { lagging = true }
            if frame.text.contains(#""type":"turn_completed""#) { completed = true }
        }
        #expect(lagging && !completed, "lagging \(lagging), the turn's end reached the client: \(completed)")
    }

    /// A connection that never sends a request is closed after the idle timeout; one that became
    /// a WebSocket is not (it is kept by pings instead).
    @Test func anIdleHTTPConnectionIsClosedButAWebSocketIsNot() async throws {
        let fixture = try await GatewayFixture.start(idleTimeout: .milliseconds(300))
        defer { Teardown.run { await fixture.stop() } }
        let idle = try LoopbackHTTP.connect(port: fixture.port)
        defer { close(idle) }
        let socket = try RawWebSocket(port: fixture.port, token: fixture.token)
        try await Task.sleep(for: .seconds(1))
        var byte: UInt8 = 0
        #expect(recv(idle, &byte, 1, 0) == 0, "the idle connection is still open")
        try socket.send(.text, Array(#"{"type":"hello","payload":{"request_id":"h","protocol_version":1}}"#.utf8))
        #expect(try socket.receive().text.contains("hello_ack"))
    }

    @Test func stoppingTheGatewayClosesWebSocketsWith1000() async throws {
        let fixture = try await GatewayFixture.start()
        let socket = try RawWebSocket(port: fixture.port, token: fixture.token)
        try socket.send(.text, Array(#"{"type":"hello","payload":{"request_id":"h","protocol_version":1}}"#.utf8))
        #expect(try socket.receive().text.contains("hello_ack"))
        await fixture.stop()
        let close = try socket.receive()
        #expect(close.opcode == .close && close.code == 1000 && close.text.hasSuffix("the gateway is stopping"))
    }
}

/// A WebSocket client written byte by byte (blocking, 5 s read timeout).
final class RawWebSocket {
    enum Opcode: UInt8 {
        case continuation = 0
        case text = 1
        case binary = 2
        case reserved3 = 3
        case close = 8
        case ping = 9
        case pong = 10
    }

    struct Frame {
        var opcode: Opcode
        var payload: [UInt8]
        var text: String {
            String(decoding: payload.count >= 2 && opcode == .close ? payload[2...] : payload[...], as: UTF8.self)
        }
        var code: UInt16? {
            opcode == .close && payload.count >= 2 ? UInt16(payload[0]) << 8 | UInt16(payload[1]) : nil
        }
    }

    let fd: Int32
    private var pending: [UInt8] = []

    init(port: Int, token: String, receiveBuffer: Int32? = nil) throws {
        fd = try LoopbackHTTP.connect(port: port, receiveBuffer: receiveBuffer)
        try write(Array(upgradeRequest(port: port, authorization: "Bearer \(token)").utf8))
        while true {
            if let end = pending.indices.dropLast(3).first(where: { Array(pending[$0..<$0 + 4]) == [13, 10, 13, 10] }) {
                let head = String(decoding: pending[..<end], as: UTF8.self)
                pending.removeFirst(end + 4)
                guard head.hasPrefix("HTTP/1.1 101 ") else { throw TestSupportError("upgrade refused: \(head)") }
                return
            }
            try fill()
        }
    }

    deinit { close(fd) }

    /// Says hello (checking the ack) and starts turn `t1`.
    func helloAndTurn() throws {
        try send(.text, Array(#"{"type":"hello","payload":{"request_id":"h","protocol_version":1}}"#.utf8))
        let ack = try receive()
        guard ack.text.contains("hello_ack") else { throw TestSupportError("no hello_ack: \(ack.text)") }
        try send(.text, Array(#"{"type":"send_turn","payload":{"request_id":"r","turn_id":"t1","prompt":"go"}}"#.utf8))
    }

    func send(_ opcode: Opcode, _ payload: [UInt8], fin: Bool = true, masked: Bool = true, rsv1: Bool = false) throws {
        var frame: [UInt8] = [(fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode.rawValue]
        let mask: UInt8 = masked ? 0x80 : 0
        if payload.count < 126 {
            frame.append(mask | UInt8(payload.count))
        } else if payload.count <= 0xFFFF {
            frame += [mask | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        } else {
            frame.append(mask | 127)
            frame += (0..<8).reversed().map { UInt8((payload.count >> ($0 * 8)) & 0xFF) }
        }
        if masked {
            let key: [UInt8] = (0..<4).map { _ in UInt8.random(in: 0...255) }
            frame += key
            frame += payload.enumerated().map { $0.element ^ key[$0.offset % 4] }
        } else {
            frame += payload
        }
        try write(frame)
    }

    /// The next frame from the server (which never masks).
    func receive() throws -> Frame {
        try need(2)
        let opcode = Opcode(rawValue: pending[0] & 0x0F) ?? .reserved3
        var length = Int(pending[1] & 0x7F)
        var offset = 2
        if length == 126 {
            try need(4)
            length = Int(pending[2]) << 8 | Int(pending[3])
            offset = 4
        } else if length == 127 {
            try need(10)
            length = (2..<10).reduce(0) { $0 << 8 | Int(pending[$1]) }
            offset = 10
        }
        try need(offset + length)
        let payload = Array(pending[offset..<offset + length])
        pending.removeFirst(offset + length)
        return Frame(opcode: opcode, payload: payload)
    }

    /// True when the server ended the connection (no more bytes, no timeout).
    func receiveEnd() throws -> Bool {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let got = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if got == 0 { return true }
            if got < 0 { return errno == ECONNRESET }
        }
    }

    private func need(_ count: Int) throws {
        while pending.count < count { try fill() }
    }

    private func fill() throws {
        var buffer = [UInt8](repeating: 0, count: 65536)
        let got = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard got > 0 else { throw TestSupportError(got == 0 ? "the server closed the connection" : "read timed out") }
        pending += buffer[0..<got]
    }

    private func write(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            guard sent > 0 else { throw TestSupportError("write failed: errno \(errno)") }
            offset += sent
        }
    }
}
