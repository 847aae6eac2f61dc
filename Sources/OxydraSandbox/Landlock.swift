import CSystemShims
import OxydraCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Kernel-enforced file access limits for the calling process (Linux Landlock).
///
/// Landlock applies to the calling thread and the threads and processes it creates afterwards, so
/// ``restrictSelf(_:)`` must run while the process has a single thread; it checks that and refuses
/// otherwise, rather than confining one thread and pretending the rest are too.
public enum Landlock {
    /// Access rights (linux/landlock.h `LANDLOCK_ACCESS_FS_*`).
    public struct Access: OptionSet, Sendable, Hashable {
        public let rawValue: UInt64
        public init(rawValue: UInt64) { self.rawValue = rawValue }

        public static let execute = Access(rawValue: 1 << 0)
        public static let writeFile = Access(rawValue: 1 << 1)
        public static let readFile = Access(rawValue: 1 << 2)
        public static let readDir = Access(rawValue: 1 << 3)
        public static let removeDir = Access(rawValue: 1 << 4)
        public static let removeFile = Access(rawValue: 1 << 5)
        public static let makeChar = Access(rawValue: 1 << 6)
        public static let makeDir = Access(rawValue: 1 << 7)
        public static let makeReg = Access(rawValue: 1 << 8)
        public static let makeSock = Access(rawValue: 1 << 9)
        public static let makeFifo = Access(rawValue: 1 << 10)
        public static let makeBlock = Access(rawValue: 1 << 11)
        public static let makeSym = Access(rawValue: 1 << 12)
        /// ABI 2: link or rename across directories.
        public static let refer = Access(rawValue: 1 << 13)
        /// ABI 3.
        public static let truncate = Access(rawValue: 1 << 14)
        /// ABI 5.
        public static let ioctlDev = Access(rawValue: 1 << 15)

        /// Rights that apply to a regular file (a rule on a file may only grant these).
        public static let fileRights: Access = [.execute, .writeFile, .readFile, .truncate, .ioctlDev]
        public static let readOnly: Access = [.readFile, .readDir]
        public static let readExecute: Access = [.readFile, .readDir, .execute]
        public static let readWrite: Access = [
            .readFile, .readDir, .writeFile, .removeDir, .removeFile, .makeDir, .makeReg, .makeSock, .makeFifo,
            .makeSym,
            .refer, .truncate,
        ]

        /// Everything the given ABI can restrict.
        public static func handled(byABI abi: Int) -> Access {
            var access = Access(rawValue: (1 << 13) - 1)
            if abi >= 2 { access.insert(.refer) }
            if abi >= 3 { access.insert(.truncate) }
            if abi >= 5 { access.insert(.ioctlDev) }
            return access
        }
    }

    /// A path and what may be done beneath it.
    public struct Rule: Sendable, Hashable {
        public var path: String
        public var access: Access
        public init(_ path: String, _ access: Access) {
            self.path = path
            self.access = access
        }
    }

    /// The kernel's Landlock ABI version, or why there is none.
    public static func probe() -> Result<Int, LandlockUnavailable> {
        let abi = oxydra_landlock_abi()
        if abi >= 1 { return .success(Int(abi)) }
        let code = errno
        switch code {
        case ENOSYS: return .failure(LandlockUnavailable("the kernel has no Landlock support (ENOSYS)"))
        case EOPNOTSUPP:
            return .failure(
                LandlockUnavailable("Landlock is disabled at boot (add `landlock` to the lsm= kernel parameter)"))
        default: return .failure(LandlockUnavailable("Landlock probe failed: \(String(cString: strerror(code)))"))
        }
    }

    /// Number of threads of this process (from /proc/self/task).
    public static func threadCount() -> Int? {
        guard let directory = opendir("/proc/self/task") else { return nil }
        defer { closedir(directory) }
        var count = 0
        while let entry = readdir(directory) {
            let isDotEntry = withUnsafeBytes(of: entry.pointee.d_name) { name in
                name[0] == UInt8(ascii: ".") && (name[1] == 0 || (name[1] == UInt8(ascii: ".") && name[2] == 0))
            }
            if !isDotEntry { count += 1 }
        }
        return count
    }

    /// Confines the process to `rules`; everything else in the file system becomes inaccessible
    /// (for the rights the kernel's ABI handles). Paths that do not exist are skipped. Returns the ABI
    /// in force.
    public static func restrictSelf(_ rules: [Rule]) -> Result<Int, LandlockUnavailable> {
        let abi: Int
        switch probe() {
        case .success(let version): abi = version
        case .failure(let reason): return .failure(reason)
        }
        if let threads = threadCount(), threads > 1 {
            return .failure(
                LandlockUnavailable(
                    "\(threads) threads were running before confinement; Landlock would miss all but one"))
        }
        let handled = Access.handled(byABI: abi)
        let ruleset = oxydra_landlock_create_ruleset(handled.rawValue)
        guard ruleset >= 0 else { return .failure(LandlockUnavailable("creating the ruleset failed: \(errorText())")) }
        defer { close(ruleset) }
        for rule in rules {
            let fd = rule.path.withCString { open($0, Int32(OXYDRA_O_PATH) | O_CLOEXEC) }
            guard fd >= 0 else { continue }
            defer { close(fd) }
            var info = stat()
            guard fstat(fd, &info) == 0 else { continue }
            var access = rule.access.intersection(handled)
            if (info.st_mode & S_IFMT) != S_IFDIR { access.formIntersection(.fileRights) }
            guard !access.isEmpty else { continue }
            if oxydra_landlock_add_path_rule(ruleset, fd, access.rawValue) != 0 {
                return .failure(LandlockUnavailable("adding a rule for \(rule.path) failed: \(errorText())"))
            }
        }
        if oxydra_landlock_restrict_self(ruleset) != 0 {
            return .failure(LandlockUnavailable("enforcing the ruleset failed: \(errorText())"))
        }
        return .success(abi)
    }

    private static func errorText() -> String { String(cString: strerror(errno)) }
}

/// Why Landlock could not be applied; becomes the `process_hardening_limited` degraded reason.
public struct LandlockUnavailable: Error, Sendable, Hashable, CustomStringConvertible {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}
