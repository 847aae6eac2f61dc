import CSystemShims
import OxydraCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The process tier's shell sandbox: `shell-daemon` inside bubblewrap with fresh user, mount, pid,
/// ipc, uts, cgroup and network namespaces, all capabilities dropped, `/usr` (and the libraries the
/// daemon needs) read-only, the user's `shared` and `tmp` read-write at `/shared` and `/tmp`, no
/// host home, no network, a minimal `/etc`, and `--die-with-parent`.
public enum ShellSandbox {
    public struct Spec: Sendable, Hashable {
        public var bubblewrap: String
        public var daemonExecutable: String
        public var sharedDirectory: String
        public var tmpDirectory: String
        /// Variables commands see besides PATH, HOME, LANG and TERM (`tools.shell.env_keys`).
        public var environment: [String: String]
        public var maxVCPUs: Int?
        public var maxMemoryMiB: Int?
        public var maxProcesses: Int?
        /// Host paths commands must never see, even where they lie inside `shared` or `tmp` (the
        /// runner's configuration, a workspace's `.oxydra/`, `ipc/`, `logs/`): covered by an empty
        /// read-only directory (or `/dev/null` for a file) inside the sandbox.
        public var maskedPaths: [String]

        public init(
            bubblewrap: String, daemonExecutable: String, sharedDirectory: String, tmpDirectory: String,
            environment: [String: String] = [:], maxVCPUs: Int? = nil, maxMemoryMiB: Int? = nil,
            maxProcesses: Int? = nil, maskedPaths: [String] = []
        ) {
            self.maskedPaths = maskedPaths
            self.bubblewrap = bubblewrap
            self.daemonExecutable = daemonExecutable
            self.sharedDirectory = sharedDirectory
            self.tmpDirectory = tmpDirectory
            self.environment = environment
            self.maxVCPUs = maxVCPUs
            self.maxMemoryMiB = maxMemoryMiB
            self.maxProcesses = maxProcesses
        }
    }

    /// Processes the sandbox may hold when `[resources] max_processes` is not set.
    public static let defaultMaxProcesses = 256

    /// The user and group commands run as inside the sandbox.
    public static let sandboxUID = 1000
    public static let path = "/usr/local/bin:/usr/bin:/bin"

    /// `bwrap` on PATH (or `$OXYDRA_BWRAP`), or nil.
    public static func findBubblewrap(environment: [String: String]) -> String? {
        if let explicit = environment["OXYDRA_BWRAP"], !explicit.isEmpty {
            return access(explicit, X_OK) == 0 ? explicit : nil
        }
        if let found = ExecutableLocator.onPath("bwrap", environment: environment) { return found }
        for candidate in ["/usr/bin/bwrap", "/usr/local/bin/bwrap"] where access(candidate, X_OK) == 0 {
            return candidate
        }
        return nil
    }

    /// The shell commands run with: dash (Debian's and Ubuntu's `/bin/sh`), the grammar the
    /// command-line policy implements.
    public static let shell = "/bin/dash"

    /// Runs a trivial command in the same kind of sandbox; nil when it works, else why not (for
    /// example when unprivileged user namespaces are disabled, or dash is missing).
    public static func probe(bubblewrap: String) -> String? {
        guard access(shell, X_OK) == 0 else {
            return "the shell sandbox runs commands with dash, which is not installed (`sudo apt-get install dash`)"
        }
        var arguments = ["--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts"]
        arguments += ["--die-with-parent", "--cap-drop", "ALL"] + systemBinds() + ["--proc", "/proc", "--dev", "/dev"]
        arguments += ["/usr/bin/env", "true"]
        var pipe: [Int32] = [-1, -1]
        guard oxydra_pipe_cloexec(&pipe) == 0 else { return "cannot create a pipe" }
        let devNull = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { if devNull >= 0 { close(devNull) } }
        let pid: pid_t
        do {
            pid = try ProcessSpawner.spawn(
                bubblewrap, arguments: arguments, environment: ["PATH=\(path)"],
                options: ProcessSpawner.Options(standardInput: devNull, standardOutput: devNull, standardError: pipe[1])
            )
        } catch {
            close(pipe[0])
            close(pipe[1])
            return "cannot run \(bubblewrap): \(error)"
        }
        close(pipe[1])
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(pipe[0], &buffer, buffer.count)
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            if output.count < 4096 { output += buffer[0..<count] }
        }
        close(pipe[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0, errno == EINTR {}
        if status == 0 { return nil }
        let message = String(decoding: output, as: UTF8.self).trimmed
        return "bubblewrap cannot create the sandbox here"
            + (message.isEmpty ? " (exit status \(status >> 8))" : ": \(message)")
            + " — unprivileged user namespaces may be disabled (sysctl kernel.unprivileged_userns_clone / "
            + "user.max_user_namespaces, or an AppArmor restriction)"
    }

    /// The system directories every sandbox sees read-only. Merged-/usr systems get symlinks.
    static func systemBinds() -> [String] {
        var arguments = ["--ro-bind", "/usr", "/usr"]
        for name in ["bin", "sbin", "lib", "lib64", "lib32", "libx32"] {
            var info = stat()
            guard lstat("/" + name, &info) == 0 else { continue }
            if info.st_mode & S_IFMT == S_IFLNK {
                var buffer = [CChar](repeating: 0, count: 4096)
                let length = readlink("/" + name, &buffer, buffer.count - 1)
                guard length > 0 else { continue }
                let target = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                arguments += ["--symlink", target, "/" + name]
            } else {
                arguments += ["--ro-bind", "/" + name, "/" + name]
            }
        }
        return arguments
    }

    /// bubblewrap's arguments for running the daemon on descriptor 3. `etcDirectory` holds the
    /// generated `passwd`, `group` and `hosts`.
    public static func bubblewrapArguments(_ spec: Spec, etcDirectory: String) -> [String] {
        var arguments = [
            "--unshare-user", "--uid", String(sandboxUID), "--gid", String(sandboxUID), "--unshare-pid",
            "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--hostname", "oxydra",
            "--die-with-parent", "--new-session", "--cap-drop", "ALL",
        ]
        arguments += systemBinds()
        for path in ["/etc/alternatives", "/etc/ld.so.cache", "/etc/localtime"] where access(path, F_OK) == 0 {
            arguments += ["--ro-bind", path, path]
        }
        for name in ["passwd", "group", "hosts"] {
            arguments += ["--ro-bind", etcDirectory + "/" + name, "/etc/" + name]
        }
        // The daemon and its libraries at fixed places: a build under /tmp (a CI checkout) must not
        // be hidden by the user's /tmp, nor create mount points inside the user's directories.
        var libraryPath: [String] = []
        for (index, directory) in sharedLibraryDirectories().enumerated() where !directory.hasPrefix("/usr/") {
            if Self.isHiddenInside(directory) {
                let target = "/run/oxydra/lib\(index)"
                arguments += ["--ro-bind", directory, target]
                libraryPath.append(target)
            } else {
                arguments += ["--ro-bind", directory, directory]
            }
        }
        if !libraryPath.isEmpty {
            arguments += ["--setenv", "LD_LIBRARY_PATH", libraryPath.joined(separator: ":")]
            arguments += ["--setenv", daemonOnlyMarker, "LD_LIBRARY_PATH"]
        }
        arguments += ["--ro-bind", spec.daemonExecutable, daemonPath]
        arguments += ["--proc", "/proc", "--dev", "/dev"]
        arguments += ["--bind", spec.sharedDirectory, "/shared", "--bind", spec.tmpDirectory, "/tmp"]
        arguments += maskArguments(spec)
        // Everything but /shared and /tmp is read-only, including bubblewrap's own root and /dev.
        arguments += ["--remount-ro", "/dev", "--remount-ro", "/"]
        arguments += ["--chdir", "/shared", "--", daemonPath, "--listen-fd", "3"]
        if let processes = spec.maxProcesses { arguments += ["--max-processes", String(processes)] }
        if let memory = spec.maxMemoryMiB { arguments += ["--max-memory-mib", String(memory)] }
        return arguments
    }

    /// Covers every masked path that lies inside `shared` or `tmp` (compared after resolving
    /// symbolic links): a directory with an empty read-only tmpfs, a file with `/dev/null`. A
    /// masked path that contains a mount is the runner's to refuse (the default workspace itself
    /// lies inside the runner's configuration directory), so it is skipped here.
    static func maskArguments(_ spec: Spec) -> [String] {
        var arguments: [String] = []
        let mounts = [(spec.sharedDirectory, "/shared"), (spec.tmpDirectory, "/tmp")].map {
            (HostPaths.resolved($0.0), $0.1)
        }
        for masked in spec.maskedPaths {
            let host = HostPaths.resolved(masked)
            for (mount, inside) in mounts where HostPaths.contains(mount, host) && host != mount {
                let target = inside + host.dropFirst(mount.count)
                var info = stat()
                guard stat(host, &info) == 0 else { continue }
                if info.st_mode & S_IFMT == S_IFDIR {
                    arguments += ["--perms", "0000", "--tmpfs", target, "--remount-ro", target]
                } else {
                    arguments += ["--ro-bind", "/dev/null", target]
                }
            }
        }
        return arguments
    }

    /// Where the daemon binary is inside the sandbox.
    public static let daemonPath = "/run/oxydra/shell-daemon"
    /// Names variables meant for the daemon only (comma-separated), removed from commands' environment.
    public static let daemonOnlyMarker = "OXYDRA_DAEMON_ONLY_ENV"

    /// Whether a host path would be covered by the sandbox's own `/tmp` or `/shared`.
    static func isHiddenInside(_ path: String) -> Bool {
        ["/tmp", "/shared", "/proc", "/dev"].contains { path == $0 || path.hasPrefix($0 + "/") }
    }

    /// The environment bubblewrap (and so the daemon and every command) runs with: passed as the
    /// process environment rather than `--setenv`, so values never show in `ps`.
    public static func environment(_ spec: Spec) -> [String] {
        var environment = spec.environment
        environment["PATH"] = path
        environment["HOME"] = "/tmp"
        environment["LANG"] = environment["LANG"] ?? "C.UTF-8"
        environment["TERM"] = "dumb"
        environment["USER"] = "oxydra"
        environment["SHELL"] = shell
        return environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
    }

    /// Writes the sandbox's `/etc/passwd`, `/etc/group` and `/etc/hosts` into `directory`.
    public static func writeEtc(into directory: String) throws(UnixSocket.Failure) {
        mkdir(directory, 0o700)
        let files = [
            "passwd":
                "oxydra:x:\(sandboxUID):\(sandboxUID):oxydra:/tmp:/bin/sh\nnobody:x:65534:65534:nobody:/:/usr/sbin/nologin\n",
            "group": "oxydra:x:\(sandboxUID):\nnogroup:x:65534:\n",
            "hosts": "127.0.0.1 localhost oxydra\n::1 localhost\n",
        ]
        for (name, content) in files {
            let path = directory + "/" + name
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o644)
            guard fd >= 0 else {
                throw UnixSocket.Failure("cannot write \(path): \(String(cString: strerror(errno)))")
            }
            StandardStreams.write(content, to: fd)
            close(fd)
        }
    }

    /// Directories of the shared libraries mapped into this process (the daemon is the same
    /// binary, so it needs the same ones; the Swift runtime may live outside /usr).
    public static func sharedLibraryDirectories() -> [String] {
        guard let maps = ProcFiles.read("/proc/self/maps") else { return [] }
        var directories: Set<String> = []
        for line in maps.split(separator: "\n") {
            guard let slash = line.firstIndex(of: "/") else { continue }
            let path = line[slash...]
            guard path.contains(".so"), let last = path.lastIndex(of: "/"), last != path.startIndex else { continue }
            directories.insert(String(path[..<last]))
        }
        return directories.sorted()
    }
}
