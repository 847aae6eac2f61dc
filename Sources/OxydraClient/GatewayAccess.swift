import OxydraCore

#if canImport(Glibc)
    import Glibc
#endif

/// What a client needs to talk to a guest: the gateway URL and the bearer token.
///
/// A local guest publishes both in its workspace's `ipc/` directory (0700, owned by the user who
/// runs it): `gateway-endpoint` holds the URL and no secret, `gateway-token` (0600) the token,
/// created anew at every guest start. Only that user can read them, so only that user's clients
/// can connect — also on loopback.
public struct GatewayAccess: Sendable, Hashable {
    public var endpoint: String
    public var token: String

    public init(endpoint: String, token: String) {
        self.endpoint = endpoint
        self.token = token
    }

    public static func markerPath(ipcDirectory: String) -> String {
        ipcDirectory + "/" + GatewayProtocol.endpointMarkerFile
    }

    public static func tokenPath(ipcDirectory: String) -> String { ipcDirectory + "/" + GatewayProtocol.tokenFile }

    /// Reads the endpoint marker and the token of the guest whose `ipc/` directory this is.
    public static func discover(ipcDirectory: String) throws(GatewayClientError) -> GatewayAccess {
        let marker = markerPath(ipcDirectory: ipcDirectory)
        let url = try readSmallFile(marker, what: "gateway endpoint marker").trimmed
        guard url.hasPrefix("ws://") || url.hasPrefix("wss://") else {
            throw GatewayClientError("the gateway endpoint marker \(marker) does not hold a ws:// URL")
        }
        return GatewayAccess(endpoint: url, token: try readToken(at: tokenPath(ipcDirectory: ipcDirectory)))
    }

    /// Reads a token file (surrounding white space is ignored).
    public static func readToken(at path: String) throws(GatewayClientError) -> String {
        let token = try readSmallFile(path, what: "gateway token").trimmed
        guard token.utf8.count >= 16 else {
            throw GatewayClientError("the gateway token in \(path) is missing or too short")
        }
        return token
    }

    /// Reads at most 4 KiB; errors name the file and the reason (`permission denied` when the
    /// guest belongs to another user).
    static func readSmallFile(_ path: String, what: String) throws(GatewayClientError) -> String {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard descriptor >= 0 else {
            let reason = String(cString: strerror(errno)).lowercased()
            throw GatewayClientError("cannot read the \(what) \(path): \(reason)")
        }
        defer { close(descriptor) }
        var bytes = [UInt8](repeating: 0, count: 4096)
        var filled = 0
        while filled < bytes.count {
            let count = bytes.withUnsafeMutableBytes { read(descriptor, $0.baseAddress! + filled, $0.count - filled) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            filled += count
        }
        return String(decoding: bytes[..<filled], as: UTF8.self)
    }
}
