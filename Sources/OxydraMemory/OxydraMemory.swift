import OxydraCore

/// The SQLite memory store: sessions, events, retrieval. Built by issue 5.
///
/// Until then the module only names its place in the layer table of `Package.swift`.
public enum OxydraMemoryModule {
    /// The layer this module belongs to (see `Package.swift`).
    public static let layer = "core"
}
