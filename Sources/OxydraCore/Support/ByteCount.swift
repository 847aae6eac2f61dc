/// Sizes for people.
public enum ByteCount {
    /// `512 bytes`, `12 KB`, `2.1 MB` (1 KB = 1024 bytes).
    public static func display(_ count: Int) -> String {
        if count < 1024 { return "\(count) \(count == 1 ? "byte" : "bytes")" }
        if count < 1 << 20 { return "\((count + 512) / 1024) KB" }
        let tenths = (count * 10 + (1 << 19)) >> 20
        return "\(tenths / 10).\(tenths % 10) MB"
    }
}

/// Token counts for people: `850`, `1.2k`, `128k`, `1.0M`.
public enum TokenCount {
    public static func display(_ count: Int) -> String {
        switch count {
        case ..<1000: "\(count)"
        case ..<10_000: "\(count / 1000).\(count % 1000 / 100)k"
        case ..<1_000_000: "\(count / 1000)k"
        default: "\(count / 1_000_000).\(count % 1_000_000 / 100_000)M"
        }
    }
}
