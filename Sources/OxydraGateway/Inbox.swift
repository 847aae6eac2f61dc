import OxydraCore

#if canImport(Glibc)
    import Glibc
#endif

/// Where files sent with a turn land: the workspace's `/shared/inbox/`, under safe names, never
/// through a symbolic link (the agent can write in `/shared`, so it could plant one): every
/// directory and file is opened relative to its parent with `O_NOFOLLOW`, and a file is only ever
/// created new (`O_EXCL`), never overwritten.
public struct Inbox: Sendable {
    /// The host path of the workspace's `/shared`.
    public let shared: String
    /// How the agent sees the inbox.
    public static let virtualDirectory = "/shared/inbox"

    public init(shared: String) { self.shared = shared }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Saves `data` as `name` (made safe; `-2`, `-3`… before the extension when taken) and returns
    /// the path the agent sees.
    public func save(_ data: Data, as name: String) throws(Failure) -> String {
        let sharedFD = open(shared, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard sharedFD >= 0 else { throw Failure(description: "cannot open /shared: \(Self.error())") }
        defer { close(sharedFD) }
        if mkdirat(sharedFD, "inbox", 0o755) != 0 && errno != EEXIST {
            throw Failure(description: "cannot create \(Self.virtualDirectory): \(Self.error())")
        }
        let inboxFD = openat(sharedFD, "inbox", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard inboxFD >= 0 else {
            throw Failure(description: "cannot open \(Self.virtualDirectory) (it must be a directory): \(Self.error())")
        }
        defer { close(inboxFD) }
        let safe = Self.safeName(name)
        let (stem, suffix) = Self.split(safe)
        for attempt in 1...100 {
            let candidate = attempt == 1 ? safe : "\(stem)-\(attempt)\(suffix)"
            let fd = openat(inboxFD, candidate, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
            if fd < 0 {
                if errno == EEXIST { continue }
                throw Failure(description: "cannot create \(Self.virtualDirectory)/\(candidate): \(Self.error())")
            }
            defer { close(fd) }
            let written = data.withUnsafeBytes { buffer -> Bool in
                var offset = 0
                while offset < buffer.count {
                    let count = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                    if count < 0 {
                        if errno == EINTR { continue }
                        return false
                    }
                    offset += count
                }
                return true
            }
            guard written else {
                let reason = Self.error()
                unlinkat(inboxFD, candidate, 0)
                throw Failure(description: "cannot write \(Self.virtualDirectory)/\(candidate): \(reason)")
            }
            return Self.virtualDirectory + "/" + candidate
        }
        throw Failure(description: "\(Self.virtualDirectory) already holds 100 files named like \(safe)")
    }

    /// The base name only, printable, at most 100 characters (the extension kept), never hidden
    /// and never empty: `../../etc/passwd` → `passwd`, `a b?.txt` → `a b_.txt`.
    public static func safeName(_ name: String) -> String {
        let base = name.split(whereSeparator: { $0 == "/" || $0 == "\\" }).last.map(String.init) ?? ""
        var cleaned = String(
            base.map { character -> Character in
                if character.isLetter || character.isNumber || "._- +()[],@".contains(character) { return character }
                return "_"
            }
        ).trimmed
        while cleaned.hasPrefix(".") || cleaned.hasPrefix("-") { cleaned.removeFirst() }
        if cleaned.isEmpty { cleaned = "attachment" }
        guard cleaned.count > 100 else { return cleaned }
        let (stem, suffix) = split(cleaned)
        return String(stem.prefix(100 - min(suffix.count, 20))) + String(suffix.prefix(20))
    }

    /// `report.pdf` → (`report`, `.pdf`); `README` → (`README`, ``).
    static func split(_ name: String) -> (stem: String, suffix: String) {
        guard let dot = name.lastIndex(of: "."), dot > name.startIndex else { return (name, "") }
        return (String(name[..<dot]), String(name[dot...]))
    }

    private static func error() -> String { String(cString: strerror(errno)) }
}
