/// What a guest could set up, reported by `runner start`/`status`, `health_status` frames and the
/// bootstrap envelope. A reason is added for everything that is degraded, so nothing fails silently.
public struct StartupStatus: Sendable, Hashable {
    public var sandboxTier: SandboxTier
    public var sidecarAvailable: Bool
    public var shellAvailable: Bool
    public var browserAvailable: Bool
    public var degradedReasons: [DegradedReason]

    public init(
        sandboxTier: SandboxTier, sidecarAvailable: Bool = false, shellAvailable: Bool = false,
        browserAvailable: Bool = false, degradedReasons: [DegradedReason] = []
    ) {
        self.sandboxTier = sandboxTier
        self.sidecarAvailable = sidecarAvailable
        self.shellAvailable = shellAvailable
        self.browserAvailable = browserAvailable
        self.degradedReasons = degradedReasons
    }

    public var json: JSONValue {
        [
            "sandbox_tier": .string(sandboxTier.rawValue), "sidecar_available": .bool(sidecarAvailable),
            "shell_available": .bool(shellAvailable), "browser_available": .bool(browserAvailable),
            "degraded_reasons": .array(degradedReasons.map(\.json)),
        ]
    }

    public init(_ reader: FieldReader) throws(WireError) {
        let tier = try reader.string("sandbox_tier")
        guard let sandboxTier = SandboxTier(rawValue: tier) else {
            throw WireError("\(reader.path).sandbox_tier: unknown tier `\(tier)` (process, container or micro_vm)")
        }
        self.sandboxTier = sandboxTier
        sidecarAvailable = try reader.bool("sidecar_available", default: false)
        shellAvailable = try reader.bool("shell_available", default: false)
        browserAvailable = try reader.bool("browser_available", default: false)
        degradedReasons = []
        for (index, item) in try reader.array("degraded_reasons").enumerated() {
            degradedReasons.append(
                try DegradedReason(FieldReader(item, path: "\(reader.path).degraded_reasons[\(index)]")))
        }
    }
}

/// Why a capability is missing: a stable code for programs and a sentence for people.
public struct DegradedReason: Sendable, Hashable, CustomStringConvertible {
    public var code: String
    public var detail: String

    public init(code: String, detail: String) {
        self.code = code
        self.detail = detail
    }

    public static let processHardeningLimited = "process_hardening_limited"
    public static let sidecarUnavailable = "sidecar_unavailable"
    public static let insecureProcessTier = "insecure_process_tier"
    public static let sidecarConnectionFailed = "sidecar_connection_failed"
    /// A configured chat channel cannot run (its token is missing, the store cannot hold its state).
    public static let channelUnavailable = "channel_unavailable"
    /// A micro VM runs under QEMU's CPU emulation (TCG) because KVM cannot run guests here:
    /// isolated, but several times slower.
    public static let emulatedMicroVM = "micro_vm_emulated"
    /// The web tools are not offered (a micro VM reaches only its providers).
    public static let webUnavailable = "web_unavailable"

    public var description: String { "\(code):\(detail)" }

    public var json: JSONValue { ["code": .string(code), "detail": .string(detail)] }

    public init(_ reader: FieldReader) throws(WireError) {
        code = try reader.nonBlankString("code")
        detail = try reader.optionalString("detail") ?? ""
    }
}
