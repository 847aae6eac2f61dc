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
