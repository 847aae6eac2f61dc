import OxydraCore

/// Landlock, bubblewrap and confinement helpers. Built by issues 6 and 7.
///
/// Until then the module only names its place in the layer table of `Package.swift`.
public enum OxydraSandboxModule {
    /// The layer this module belongs to (see `Package.swift`).
    public static let layer = "core"
}
