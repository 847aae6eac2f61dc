import OxydraCore

#if canImport(Glibc)
    import Glibc
#endif

/// Gives back the code pages a long-running process is not using.
///
/// Start-up runs a lot of code once (dynamic linking, config parsing, migrations, confinement) and
/// the kernel maps file pages in 64 KiB "fault-around" blocks, so a freshly started guest holds
/// ~35 MiB of executable and library pages it will not touch again while idle (a turn, likewise,
/// leaves ~20 MiB mapped). `release()` drops this process's mappings of pages that are clean copies
/// of files — read-only, file-backed mappings with no private (copy-on-write), swapped or locked
/// pages — with `MADV_DONTNEED`. The pages stay in the page cache (shared with every other process
/// using the same files); touching them again is a minor fault that maps them back. Mappings
/// holding private pages (relocated data, anything writable) are never touched, so no state is
/// lost: this is what the kernel's own reclaim does under memory pressure, done at a moment we
/// know the code is finished with (after start-up, and after a couple of minutes without turns).
public enum CodePages {
    public struct Released: Sendable {
        public var mappings = 0
        public var kibibytes = 0
    }

    /// Set `OXYDRA_KEEP_CODE_PAGES=1` to skip (for comparing memory figures).
    public static let disableVariable = "OXYDRA_KEEP_CODE_PAGES"

    /// False when this process's environment sets `OXYDRA_KEEP_CODE_PAGES=1`.
    public static var enabled: Bool {
        getenv(disableVariable).map { String(cString: $0) } != "1"
    }

    @discardableResult
    public static func release() -> Released {
        #if os(Linux)
            var released = Released()
            for mapping in cleanFileMappings() {
                guard let start = UnsafeMutableRawPointer(bitPattern: mapping.start) else { continue }
                if madvise(start, Int(mapping.end - mapping.start), MADV_DONTNEED) == 0 {
                    released.mappings += 1
                    released.kibibytes += mapping.residentKiB
                }
            }
            return released
        #else
            return Released()
        #endif
    }

    /// When to release again after turns: checked at a fixed interval, it is due once turns have
    /// finished since the last release but none finished during the last interval, and none is
    /// running.
    public struct IdleRelease: Sendable {
        private var releasedAt = 0
        private var previous = 0

        public init() {}

        public mutating func check(finishedTurns: Int, activeTurns: Int) -> Bool {
            let quiet = finishedTurns == previous
            previous = finishedTurns
            guard quiet, activeTurns == 0, finishedTurns != releasedAt else { return false }
            releasedAt = finishedTurns
            return true
        }
    }

    struct Mapping: Equatable {
        var start: UInt
        var end: UInt
        var residentKiB: Int
    }

    /// Read-only (`r--p`/`r-xp`), file-backed mappings whose resident pages are all clean file
    /// pages (`Anonymous: 0 kB`, nothing swapped or locked), from `/proc/self/smaps`.
    static func cleanFileMappings() -> [Mapping] {
        guard let text = ProcFiles.read("/proc/self/smaps") else { return [] }
        return parse(text)
    }

    static func parse(_ smaps: String) -> [Mapping] {
        var result: [Mapping] = []
        var current: Mapping?
        var anonymous = -1
        func finish() {
            if let mapping = current, anonymous == 0, mapping.residentKiB > 0 { result.append(mapping) }
            current = nil
            anonymous = -1
        }
        for line in smaps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let first = fields.first else { continue }
            if first.hasSuffix(":") {
                guard current != nil, fields.count >= 2, let value = Int(fields[1]) else { continue }
                if first == "Rss:" { current?.residentKiB = value }
                if first == "Anonymous:" { anonymous = value }
                // Swapped-out private pages are not "Anonymous" any more but would be lost too.
                if (first == "Swap:" || first == "Locked:") && value != 0 { anonymous = -1 }
                continue
            }
            finish()
            // `start-end perms offset dev inode path`
            guard fields.count >= 6, fields[1] == "r-xp" || fields[1] == "r--p", fields[4] != "0",
                fields[5].hasPrefix("/"), let dash = first.firstIndex(of: "-"),
                let start = UInt(first[..<dash], radix: 16),
                let end = UInt(first[first.index(after: dash)...], radix: 16)
            else { continue }
            current = Mapping(start: start, end: end, residentKiB: 0)
        }
        finish()
        return result
    }
}
