import CSystemShims
import OxydraCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Keeps the shell sandbox running for one guest: owns the listening socket (so its path stays
/// valid while the sandbox restarts), starts `bwrap … shell-daemon --listen-fd 3`, and restarts it
/// with backoff if it dies (for example when a command kills the daemon). It dies with its parent,
/// the guest, and bubblewrap dies with it.
public enum ShellSandboxSupervisor {
    /// `runAs`: started as root (a micro VM's guest), the identity to drop to once the cgroup,
    /// the socket and the `/etc` files exist — the owner of the shared directories, which a
    /// sandbox mapped to root could not enter (9p shows the host's owner).
    public static func run(
        _ spec: ShellSandbox.Spec, socketPath: String, etcDirectory: String, parent: pid_t,
        runAs: (uid: uid_t, gid: gid_t)? = nil
    ) -> Never {
        _ = oxydra_set_death_signal(SIGKILL)
        if getppid() != parent { fail("the guest that started the shell sandbox is gone") }
        if let cpus = spec.maxVCPUs, oxydra_limit_cpus(Int32(clamping: cpus)) != 0 {
            log("cannot limit the sandbox to \(cpus) CPUs: \(String(cString: strerror(errno)))")
        }
        let limits = SandboxCgroup.confine(
            maxProcesses: spec.maxProcesses, maxMemoryMiB: spec.maxMemoryMiB, maxVCPUs: spec.maxVCPUs)
        if !limits.applied.isEmpty {
            log("cgroup limits for the whole sandbox: \(limits.applied.joined(separator: ", "))")
        }
        for problem in limits.problems {
            log("\(problem); per-process limits (RLIMIT_NPROC inside the sandbox, RLIMIT_DATA) still apply")
        }
        let listener: Int32
        do {
            try ShellSandbox.writeEtc(into: etcDirectory)
            listener = try UnixSocket.listen(at: socketPath)
        } catch {
            fail(error.description)
        }
        if let runAs {
            guard setgroups(0, nil) == 0, setgid(runAs.gid) == 0, setuid(runAs.uid) == 0 else {
                fail("cannot run the sandbox as \(runAs.uid):\(runAs.gid): \(String(cString: strerror(errno)))")
            }
            // A change of identity clears the parent-death signal.
            _ = oxydra_set_death_signal(SIGKILL)
            if getppid() != parent { fail("the guest that started the shell sandbox is gone") }
        }
        let devNull = open("/dev/null", O_RDWR | O_CLOEXEC)
        var options = ProcessSpawner.Options(standardInput: devNull, standardOutput: 2, standardError: 2)
        options.passDescriptor = listener
        options.deathSignal = SIGKILL
        // Process and memory limits are set by the daemon inside the sandbox: set here, RLIMIT_NPROC
        // would also be checked against the host user's process count (the new user namespace
        // records its creator's limit).
        let arguments = ShellSandbox.bubblewrapArguments(spec, etcDirectory: etcDirectory)
        var backoff = 200_000
        while true {
            let started = ContinuousClock.now
            let pid: pid_t
            do {
                pid = try ProcessSpawner.spawn(
                    spec.bubblewrap, arguments: arguments, environment: ShellSandbox.environment(spec), options: options
                )
            } catch {
                fail("cannot start \(spec.bubblewrap): \(error)")
            }
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0, errno == EINTR {}
            let ran = ContinuousClock.now - started
            backoff = ran > .seconds(10) ? 200_000 : min(backoff * 2, 5_000_000)
            log(
                "the shell sandbox exited (\(status & 0x7f == 0 ? "status \(status >> 8)" : "signal \(status & 0x7f)")) "
                    + "after \(ran); restarting in \(backoff / 1000) ms")
            usleep(useconds_t(backoff))
        }
    }

    static func log(_ message: String) {
        StandardStreams.write("shell-sandbox: \(message)\n", to: 2)
    }

    static func fail(_ message: String) -> Never {
        log(message)
        exit(1)
    }
}
