import OxydraCore

/// The tool registry, built-in tools, path confinement, the SSRF guard and the output scrubber. Built by issue 4.
///
/// Until then the module only names its place in the layer table of `Package.swift`.
public enum OxydraToolsModule {
    /// The layer this module belongs to (see `Package.swift`).
    public static let layer = "core"
}
