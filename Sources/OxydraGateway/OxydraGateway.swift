import OxydraCore

/// The WebSocket and HTTP gateway with sessions. Built by issue 6.
///
/// Until then the module only names its place in the layer table of `Package.swift`.
public enum OxydraGatewayModule {
    /// The layer this module belongs to (see `Package.swift`).
    public static let layer = "application"
}
