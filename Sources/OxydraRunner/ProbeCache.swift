import OxydraCore

#if canImport(Glibc)
    import Glibc
#endif

/// A host probe's verdict kept in a private file of the user's `ipc/` directory until the host
/// reboots or anything in the key changes (the probed binary, the device's permissions…), so that
/// `runner start` does not pay for the same probe every time.
enum ProbeCache {
    /// This boot's id (`/proc/sys/kernel/random/boot_id`).
    static var bootID: String {
        (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8))?.trimmed ?? ""
    }

    /// A file's identity for a key: path, size, modification time and inode.
    static func identity(of path: String) -> String {
        var info = stat()
        guard stat(path, &info) == 0 else { return path }
        return "\(path):\(info.st_size):\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec):\(info.st_ino)"
    }

    /// `.some(nil)`: the probe passed; `.some(problem)`: it failed so; nil: no verdict for `key`.
    static func verdict(at path: String, key: String) -> String?? {
        guard let data = FileManager.default.contents(atPath: path),
            let cached = try? JSONValue(parsing: String(decoding: data, as: UTF8.self)),
            cached["key"]?.stringValue == key
        else { return nil }
        return .some(cached["problem"]?.stringValue)
    }

    static func store(at path: String, key: String, problem: String?) {
        let verdict = JSONValue.compactObject(["key": .string(key), "problem": problem.map(JSONValue.string)])
        try? ContainerGuest.writePrivate(verdict.compactText, to: path)
    }
}
