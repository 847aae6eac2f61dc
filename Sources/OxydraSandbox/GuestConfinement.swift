import OxydraCore

#if canImport(Glibc)
    import Glibc
#endif

/// The file system a process-tier guest keeps after confining itself: its workspace read-write,
/// and read-only the system files it needs (shared libraries, TLS roots, name resolution, time
/// zones, /proc) plus any extra paths (e.g. a model2vec model outside the workspace). Everything
/// else — the user's home, other users' workspaces, /root, /etc/passwd — is denied by the kernel.
public enum GuestConfinement {
    public static func rules(workspace: String, extraReadOnly: [String] = []) -> [Landlock.Rule] {
        var rules: [Landlock.Rule] = [
            Landlock.Rule(workspace, .readWrite),
            Landlock.Rule("/dev/null", [.readFile, .writeFile]),
            Landlock.Rule("/dev/urandom", .readOnly),
            Landlock.Rule("/dev/random", .readOnly),
            // libdispatch's worker-pool monitor reads /proc/<thread id>/stat and crashes when it
            // cannot; thread ids are not known in advance, so /proc is readable. Other processes'
            // memory, environment and file descriptors stay out of reach: Landlock refuses ptrace
            // access (which guards those files) to processes outside the sandbox.
            Landlock.Rule("/proc", .readOnly),
            Landlock.Rule("/sys/fs/cgroup", .readOnly),
            Landlock.Rule("/sys/devices/system/cpu", .readOnly),
        ]
        for path in [
            "/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/libexec", "/usr/share/zoneinfo",
            "/usr/share/ca-certificates", "/usr/local/share/ca-certificates", "/etc/ssl", "/etc/ca-certificates",
            "/etc/pki", "/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/gai.conf", "/etc/host.conf",
            "/etc/localtime", "/etc/services", "/etc/protocols", "/etc/ld.so.cache",
        ] {
            rules.append(Landlock.Rule(path, .readExecute))
        }
        for directory in loadedImageDirectories() {
            rules.append(Landlock.Rule(directory, .readExecute))
        }
        for path in extraReadOnly { rules.append(Landlock.Rule(path, .readOnly)) }
        return rules
    }

    /// Directories of the executable and every shared library mapped into this process (the Swift
    /// runtime may live in a toolchain directory outside /usr/lib).
    static func loadedImageDirectories() -> [String] {
        guard let maps = ProcFiles.read("/proc/self/maps") else { return [] }
        var directories: Set<String> = []
        for line in maps.split(separator: "\n") {
            guard let slash = line.firstIndex(of: "/") else { continue }
            let path = line[slash...]
            guard let last = path.lastIndex(of: "/"), last != path.startIndex else { continue }
            directories.insert(String(path[..<last]))
        }
        return directories.sorted()
    }
}
