import OxydraCore

/// The terminal UI. Built by issue 6.
///
/// Until then the module only names its place in the layer table of `Package.swift`.
public enum OxydraTUIModule {
    /// The layer this module belongs to (see `Package.swift`).
    public static let layer = "application"
}
