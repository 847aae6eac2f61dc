import OxydraCore

/// The shell-daemon sidecar's RPC server. Built by issue 7.
///
/// Until then the module only names its place in the layer table of `Package.swift`.
public enum OxydraShellDaemonModule {
    /// The layer this module belongs to (see `Package.swift`).
    public static let layer = "application"
}
