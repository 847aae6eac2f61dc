import OxydraCore

/// The agent turn loop. Built by issue 4.
///
/// Until then the module only names its place in the layer table of `Package.swift`.
public enum OxydraRuntimeModule {
    /// The layer this module belongs to (see `Package.swift`).
    public static let layer = "core"
}
