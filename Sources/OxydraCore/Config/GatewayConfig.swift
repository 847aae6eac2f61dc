/// `[gateway]`: the guest's WebSocket gateway (docs/protocol.md).
public struct GatewayConfig: ConfigSection, Hashable {
    /// `host:port` to listen on; port 0 picks a free port (written to `<ws>/ipc/gateway-endpoint`).
    /// Anything but a loopback address requires `auth_token_env`.
    public var bind = "127.0.0.1:0"
    /// The environment variable holding the bearer token clients must send
    /// (`Authorization: Bearer <token>`). Optional on loopback, required otherwise.
    public var authTokenEnv: String?
    /// Browser origins (`https://chat.example`) allowed to open the WebSocket, besides the gateway's
    /// own. Requests without an `Origin` header (terminal clients) are not affected.
    public var allowedOrigins: [String] = []
    /// Sessions a user may have (stored, not archived).
    public var maxSessionsPerUser = 50
    /// Turns running at the same time across the user's sessions; more wait in a FIFO queue.
    public var maxConcurrentTurnsPerUser = 10
    /// Turns allowed to wait for a slot; one more gets a `queue_full` error.
    public var maxQueuedTurnsPerUser = 32
    /// A session nobody is connected to is unloaded from memory after this long (its history
    /// stays in the store and comes back on the next connect).
    public var sessionIdleTTLMinutes = 30

    public init() {}

    public static var fields: [ConfigField<GatewayConfig>] {
        [
            .field("bind", \.bind, check: ConfigCheck { GatewayBind.parse($0).problem }),
            .field(
                "auth_token_env", \.authTokenEnv, check: .environmentVariableNameWhenSet),
            .field("allowed_origins", \.allowedOrigins),
            .field("max_sessions_per_user", \.maxSessionsPerUser, check: .positive),
            .field("max_concurrent_turns_per_user", \.maxConcurrentTurnsPerUser, check: .positive),
            .field("max_queued_turns_per_user", \.maxQueuedTurnsPerUser, check: .positive),
            .field("session_idle_ttl_minutes", \.sessionIdleTTLMinutes, check: .positive),
        ]
    }
}

/// A parsed `host:port` listen address.
public struct GatewayBind: Sendable, Hashable {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Loopback hosts need no token: `127.0.0.0/8`, `::1`, `localhost`.
    public var isLoopback: Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// Parses `host:port` or `[v6]:port`; the problem is a sentence for config errors.
    public static func parse(_ text: String) -> (bind: GatewayBind?, problem: String?) {
        let trimmed = text.trimmed
        var host: Substring
        var portText: Substring
        if trimmed.hasPrefix("[") {
            guard let close = trimmed.firstIndex(of: "]"), trimmed[trimmed.index(after: close)...].hasPrefix(":") else {
                return (nil, "must be `host:port` or `[ipv6]:port`, e.g. \"127.0.0.1:0\"")
            }
            host = trimmed[trimmed.index(after: trimmed.startIndex)..<close]
            portText = trimmed[trimmed.index(close, offsetBy: 2)...]
        } else {
            guard let colon = trimmed.lastIndex(of: ":"), !trimmed[..<colon].contains(":") else {
                return (nil, "must be `host:port`, e.g. \"127.0.0.1:0\"")
            }
            host = trimmed[..<colon]
            portText = trimmed[trimmed.index(after: colon)...]
        }
        guard !host.isEmpty else { return (nil, "has no host; use e.g. \"127.0.0.1:0\"") }
        guard let port = Int(portText), (0...65535).contains(port) else {
            return (nil, "has an invalid port `\(portText)` (0-65535; 0 picks a free port)")
        }
        return (GatewayBind(host: String(host), port: port), nil)
    }
}
