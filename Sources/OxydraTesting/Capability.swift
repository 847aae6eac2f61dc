#if canImport(Glibc)
    import Glibc
#endif

/// Suites that need something of the machine (bubblewrap able to create namespaces, root to create
/// a second OS user, …) are skipped with the reason where it is missing — except when
/// `OXYDRA_REQUIRE_SANDBOX=1` (set by `.ci/run`): then they run, and their first test fails
/// naming what is missing, so CI can never pass by skipping them.
public enum Capability {
    public static let requireVariable = "OXYDRA_REQUIRE_SANDBOX"

    /// Whether missing capabilities are failures rather than reasons to skip.
    public static var required: Bool {
        guard let value = getenv(requireVariable) else { return false }
        return String(cString: value) == "1"
    }

    /// For `.enabled(if:)`: run when the capability is present or required.
    public static func shouldRun(_ missing: String?) -> Bool { missing == nil || required }

    /// The skip comment for `.enabled(if:_:)`.
    public static func skipReason(_ suite: String, _ missing: String?) -> String {
        "\(suite) skipped: \(missing ?? "") (set \(requireVariable)=1 to make this a failure)"
    }
}

/// A seeded pseudo-random generator (SplitMix64) for generated test inputs: a failure replays
/// from the same seed.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A number in `0..<bound`.
    public mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(max(bound, 1))) }
    public mutating func pick<T>(_ options: [T]) -> T { options[below(options.count)] }
    /// True `percent` times in a hundred.
    public mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
}
