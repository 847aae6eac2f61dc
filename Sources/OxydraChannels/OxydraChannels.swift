import OxydraCore

/// Chat channels (Telegram) beyond the gateway's own clients. Built by a later issue.
///
/// Until then the module only names its place in the layer table of `Package.swift`.
public enum OxydraChannelsModule {
    /// The layer this module belongs to (see `Package.swift`).
    public static let layer = "application"
}
