import OxydraCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An IPv4 or IPv6 address with the classification the SSRF guard needs.
public enum IPAddress: Sendable, Hashable, CustomStringConvertible {
    case v4(UInt32)
    case v6([UInt8])

    /// Parses a literal (`10.0.0.1`, `::1`, `[fe80::1]`); nil for anything else.
    public init?(_ text: String) {
        var literal = text
        if literal.hasPrefix("[") && literal.hasSuffix("]") { literal = String(literal.dropFirst().dropLast()) }
        if let zone = literal.firstIndex(of: "%") { literal = String(literal[..<zone]) }
        var v4 = in_addr()
        if inet_pton(AF_INET, literal, &v4) == 1 {
            self = .v4(UInt32(bigEndian: v4.s_addr))
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, literal, &v6) == 1 {
            self = .v6(withUnsafeBytes(of: &v6) { Array($0) })
            return
        }
        return nil
    }

    public var description: String {
        switch self {
        case .v4(let value):
            return "\(value >> 24).\((value >> 16) & 0xFF).\((value >> 8) & 0xFF).\(value & 0xFF)"
        case .v6(let bytes):
            var address = in6_addr()
            withUnsafeMutableBytes(of: &address) { $0.copyBytes(from: bytes) }
            var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            inet_ntop(AF_INET6, &address, &buffer, socklen_t(buffer.count))
            return String(nulTerminated: buffer)
        }
    }

    /// Why this address must not be reached from the agent, or nil when it is public.
    public var blockedReason: String? {
        switch self {
        case .v4(let value):
            return Self.v4Reason(value)
        case .v6(let bytes):
            if bytes.allSatisfy({ $0 == 0 }) { return "unspecified address" }
            if bytes[0..<15].allSatisfy({ $0 == 0 }) && bytes[15] == 1 { return "loopback" }
            // IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d) and NAT64 (64:ff9b::a.b.c.d)
            // addresses reach the embedded IPv4 address.
            let embedded =
                UInt32(bytes[12]) << 24 | UInt32(bytes[13]) << 16 | UInt32(bytes[14]) << 8 | UInt32(bytes[15])
            if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF {
                return Self.v4Reason(embedded).map { "IPv4-mapped \($0)" }
            }
            if bytes[0..<12].allSatisfy({ $0 == 0 }) {
                return Self.v4Reason(embedded).map { "IPv4-compatible \($0)" } ?? "reserved"
            }
            if bytes[0] == 0x00 && bytes[1] == 0x64 && bytes[2] == 0xFF && bytes[3] == 0x9B
                && bytes[4..<12].allSatisfy({ $0 == 0 })
            {
                return Self.v4Reason(embedded).map { "NAT64 \($0)" }
            }
            if bytes[0] & 0xFE == 0xFC { return "unique local" }
            if bytes[0] == 0xFE && bytes[1] & 0xC0 == 0x80 { return "link-local" }
            if bytes[0] == 0xFE && bytes[1] & 0xC0 == 0xC0 { return "site-local" }
            if bytes[0] == 0xFF { return "multicast" }
            if bytes[0] == 0x20 && bytes[1] == 0x01 && bytes[2] == 0x0D && bytes[3] == 0xB8 { return "documentation" }
            return nil
        }
    }

    private static func v4Reason(_ value: UInt32) -> String? {
        func inRange(_ base: UInt32, _ bits: UInt32) -> Bool {
            let mask: UInt32 = bits == 0 ? 0 : ~UInt32(0) << (32 - bits)
            return value & mask == base & mask
        }
        if value == 0xA9FE_A9FE { return "cloud metadata" }
        if inRange(0x0000_0000, 8) { return "this network (0.0.0.0/8)" }
        if inRange(0x0A00_0000, 8) { return "private" }
        if inRange(0x6440_0000, 10) { return "carrier-grade NAT (100.64/10)" }
        if inRange(0x7F00_0000, 8) { return "loopback" }
        if inRange(0xA9FE_0000, 16) { return "link-local" }
        if inRange(0xAC10_0000, 12) { return "private" }
        if inRange(0xC000_0000, 24) { return "IETF protocol assignments" }
        if inRange(0xC000_0200, 24) || inRange(0xC633_6400, 24) || inRange(0xCB00_7100, 24) { return "documentation" }
        if inRange(0xC0A8_0000, 16) { return "private" }
        if inRange(0xC612_0000, 15) { return "benchmarking (198.18/15)" }
        if inRange(0xE000_0000, 4) { return "multicast" }
        if inRange(0xF000_0000, 4) { return "reserved" }
        return nil
    }
}

/// Host name resolution through `getaddrinfo`, run off the cooperative thread pool.
public enum SystemResolver {
    public static func resolve(_ host: String) async throws -> [IPAddress] {
        if let literal = IPAddress(host) { return [literal] }
        return try await withCheckedThrowingContinuation { continuation in
            let thread = Thread(host: host, continuation: continuation)
            thread.start()
        }
    }

    /// A short-lived thread for one lookup (getaddrinfo blocks; DNS can take seconds).
    private final class Thread: @unchecked Sendable {
        let host: String
        let continuation: CheckedContinuation<[IPAddress], any Error>

        init(host: String, continuation: CheckedContinuation<[IPAddress], any Error>) {
            self.host = host
            self.continuation = continuation
        }

        func start() {
            var thread = pthread_t()
            let unmanaged = Unmanaged.passRetained(self)
            let result = pthread_create(
                &thread, nil,
                { raw in
                    let box = Unmanaged<Thread>.fromOpaque(raw!).takeRetainedValue()
                    box.run()
                    return nil
                }, unmanaged.toOpaque())
            if result != 0 {
                unmanaged.release()
                continuation.resume(
                    throwing: ToolError.executionFailed(tool: "web", message: "cannot start a resolver thread"))
            } else {
                pthread_detach(thread)
            }
        }

        func run() {
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            hints.ai_family = AF_UNSPEC
            var list: UnsafeMutablePointer<addrinfo>?
            let status = getaddrinfo(host, nil, &hints, &list)
            guard status == 0, let first = list else {
                let message = String(cString: gai_strerror(status))
                continuation.resume(
                    throwing: ToolError.executionFailed(tool: "web", message: "cannot resolve `\(host)`: \(message)"))
                return
            }
            defer { freeaddrinfo(first) }
            var addresses: [IPAddress] = []
            var node: UnsafeMutablePointer<addrinfo>? = first
            while let current = node {
                if let socketAddress = current.pointee.ai_addr {
                    switch Int32(current.pointee.ai_family) {
                    case AF_INET:
                        socketAddress.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                            addresses.append(.v4(UInt32(bigEndian: $0.pointee.sin_addr.s_addr)))
                        }
                    case AF_INET6:
                        socketAddress.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                            var address = pointer.pointee.sin6_addr
                            addresses.append(.v6(withUnsafeBytes(of: &address) { Array($0) }))
                        }
                    default: break
                    }
                }
                node = current.pointee.ai_next
            }
            var unique: [IPAddress] = []
            for address in addresses where !unique.contains(address) { unique.append(address) }
            continuation.resume(returning: unique)
        }
    }
}
