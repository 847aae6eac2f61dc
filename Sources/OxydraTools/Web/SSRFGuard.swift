import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import NIOHTTPCompression
import OxydraCore

/// Keeps web tools away from the host's own network.
///
/// A URL's host is resolved **once**; every address is checked (loopback, private, link-local,
/// CGNAT 100.64/10, 0.0.0.0/8, multicast, reserved, IPv4-mapped/compatible and NAT64 IPv6, ULA,
/// cloud metadata 169.254.169.254); if any is blocked the request is refused. The connection then
/// goes to the checked address (the HTTP client's DNS is overridden for that host), so a DNS answer
/// that changes between check and connect (rebinding) cannot redirect it. Hosts on the egress
/// allowlist skip the private-address check (a LAN SearXNG).
public struct SSRFGuard: Sendable {
    public typealias Resolver = @Sendable (String) async throws -> [IPAddress]

    public let allowlist: Set<String>
    let resolve: Resolver

    public init(allowlist: [String] = [], resolver: @escaping Resolver = SystemResolver.resolve) {
        self.allowlist = Set(allowlist.map { $0.trimmed.lowercased() }.filter { !$0.isEmpty })
        self.resolve = resolver
    }

    /// A URL that passed the check, with the address to connect to.
    public struct Target: Sendable {
        public var url: URL
        public var host: String
        public var port: Int
        public var address: IPAddress
    }

    public func check(_ url: URL, tool: String) async throws(ToolError) -> Target {
        guard let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
            throw .blocked(
                tool: tool, reason: "EgressBlocked",
                detail: "only http and https URLs can be fetched (got `\(url.scheme ?? "none")`)")
        }
        guard let rawHost = url.host, !rawHost.isEmpty else {
            throw .blocked(tool: tool, reason: "EgressBlocked", detail: "the URL has no host")
        }
        let host = rawHost.lowercased().trimmingSuffix(".")
        let port = url.port ?? (scheme == "https" ? 443 : 80)
        let allowed = allowlist.contains(host) || allowlist.contains("\(host):\(port)")
        let addresses: [IPAddress]
        do {
            if let literal = IPAddress(host) {
                addresses = [literal]
            } else {
                addresses = try await resolve(host)
            }
        } catch let error as ToolError {
            throw error.retagged(tool)
        } catch {
            throw .executionFailed(tool: tool, message: "cannot resolve `\(host)`: \(error)")
        }
        guard let first = addresses.first else {
            throw .executionFailed(tool: tool, message: "`\(host)` has no addresses")
        }
        if !allowed {
            for address in addresses {
                if let reason = address.blockedReason {
                    throw .blocked(
                        tool: tool, reason: "EgressBlocked",
                        detail: "web target `\(host)` resolved to blocked address `\(address)` (\(reason)); "
                            + "add it to tools.web.egress_allowlist if it is meant to be reachable")
                }
            }
        }
        return Target(url: url, host: host, port: port, address: first)
    }
}

extension String {
    func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}

extension ToolError {
    func retagged(_ tool: String) -> ToolError {
        if case .executionFailed(_, let message) = self { return .executionFailed(tool: tool, message: message) }
        return self
    }
}

/// An HTTP response read by a web tool.
public struct WebResponse: Sendable {
    public var url: URL
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]
    public var truncated: Bool

    public func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
}

/// GET requests for web tools: SSRF-checked, pinned to the checked address, redirects followed
/// only after checking their target, bodies capped.
public struct WebClient: Sendable {
    public let guardrail: SSRFGuard
    public let maxBytes: Int
    public let timeout: Duration
    public static let maxRedirects = 5
    public static let userAgent = "oxydra/0.1 (+https://github.com/oxydra)"

    public init(guardrail: SSRFGuard, maxBytes: Int = 5 << 20, timeout: Duration = .seconds(30)) {
        self.guardrail = guardrail
        self.maxBytes = maxBytes
        self.timeout = timeout
    }

    public func get(_ url: URL, accept: String, headers extra: [(String, String)] = [], tool: String)
        async throws(ToolError) -> WebResponse
    {
        var current = url
        for _ in 0...Self.maxRedirects {
            let target = try await guardrail.check(current, tool: tool)
            let response = try await fetch(target, accept: accept, headers: extra, tool: tool)
            if (300..<400).contains(response.status), let location = response.header("Location") {
                guard let next = URL(string: location, relativeTo: current)?.absoluteURL else {
                    throw .executionFailed(tool: tool, message: "redirect to an invalid location `\(location)`")
                }
                current = next
                continue
            }
            return response
        }
        throw .executionFailed(tool: tool, message: "more than \(Self.maxRedirects) redirects")
    }

    private func fetch(_ target: SSRFGuard.Target, accept: String, headers extra: [(String, String)], tool: String)
        async throws(ToolError)
        -> WebResponse
    {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow, timeout: .init(connect: .seconds(10), read: TimeAmount(timeout)))
        configuration.dnsOverride = [target.host: target.address.description]
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.decompression = .enabled(limit: .ratio(100))
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
        do {
            let response = try await read(client: client, target: target, accept: accept, headers: extra, tool: tool)
            try? await client.shutdown()
            return response
        } catch {
            try? await client.shutdown()
            if let error = error as? ToolError { throw error }
            if error is CancellationError { throw .executionFailed(tool: tool, message: "cancelled") }
            throw .executionFailed(tool: tool, message: "request to \(target.url.absoluteString) failed: \(error)")
        }
    }

    private func read(
        client: HTTPClient, target: SSRFGuard.Target, accept: String, headers extra: [(String, String)], tool: String
    )
        async throws -> WebResponse
    {
        var request = HTTPClientRequest(url: target.url.absoluteString)
        request.headers.add(name: "User-Agent", value: Self.userAgent)
        request.headers.add(name: "Accept", value: accept)
        for (name, value) in extra { request.headers.replaceOrAdd(name: name, value: value) }
        let response = try await client.execute(request, timeout: TimeAmount(timeout))
        var body: [UInt8] = []
        var truncated = false
        for try await chunk in response.body {
            let room = maxBytes - body.count
            if chunk.readableBytes > room {
                chunk.withUnsafeReadableBytes { body.append(contentsOf: $0.prefix(room)) }
                truncated = true
                break
            }
            chunk.withUnsafeReadableBytes { body.append(contentsOf: $0) }
        }
        return WebResponse(
            url: target.url, status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) },
            body: body, truncated: truncated)
    }
}
