import ArgumentParser
import CSystemShims
import OxydraCore
import OxydraSandbox
import OxydraShellDaemon

#if canImport(Glibc)
    import Glibc
#endif

/// `shell-daemon --socket PATH`: the shell sidecar. With `--sandbox` it is instead the supervisor
/// that keeps the daemon running inside bubblewrap (what the guest starts).
@main
struct ShellDaemonCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shell-daemon",
        abstract: "Run shell commands for one user's agent over a Unix socket (the shell sidecar).",
        discussion: """
            Serves length-prefixed JSON requests (spawn_session, exec_command, stream_output, \
            kill_session) on the socket; see docs/protocol.md. The guest starts it with --sandbox, \
            which binds the socket and runs the daemon inside bubblewrap; it is not meant to be run \
            by hand.
            """)

    @Option(name: .long, help: "Unix socket path to listen on (a stale socket file is replaced).")
    var socket: String?

    @Option(name: .long, help: "Serve on this inherited, already listening socket descriptor instead.")
    var listenFd: Int32?

    @Option(name: .long, help: "Default command timeout in seconds.")
    var timeout = 60

    @Flag(name: .long, help: "Supervise the daemon inside a bubblewrap sandbox serving --socket.")
    var sandbox = false
    @Option(name: .long, help: "With --sandbox: path of bwrap.") var bwrap: String?
    @Option(name: .long, help: "With --sandbox: host directory mounted read-write at /shared.") var shared: String?
    @Option(name: .long, help: "With --sandbox: host directory mounted read-write at /tmp.") var tmp: String?
    @Option(name: .long, help: "With --sandbox: directory for the sandbox's generated /etc files.") var etc: String?
    @Option(name: .long, help: "With --sandbox: the process that must stay alive (the guest).") var parent: Int32?
    @Option(
        name: .long,
        help: "With --sandbox, started as root: the UID:GID the sandbox runs as once its cgroup is set up.")
    var runAs: String?
    @Option(
        name: .long,
        help: "With --sandbox: a host path inside --shared or --tmp that commands must not see (repeatable).")
    var mask: [String] = []
    @Option(
        name: .long, help: "With --sandbox: a variable of this process's environment to pass to commands (repeatable).")
    var env: [String] = []
    @Option(name: .long, help: "With --sandbox: CPUs the sandbox may use.") var maxVcpus: Int?
    @Option(
        name: .long,
        help:
            "Private memory per process (RLIMIT_DATA) in MiB; with --sandbox also the sandbox's total where cgroups allow."
    )
    var maxMemoryMib: Int?
    @Option(
        name: .long,
        help:
            "Processes (RLIMIT_NPROC, counted inside the sandbox's user namespace); with --sandbox also a cgroup total where possible."
    )
    var maxProcesses: Int?

    func validate() throws {
        if sandbox {
            guard socket != nil, bwrap != nil, shared != nil, tmp != nil, etc != nil, parent != nil else {
                throw ValidationError("--sandbox needs --socket, --bwrap, --shared, --tmp, --etc and --parent")
            }
            return
        }
        if (socket == nil) == (listenFd == nil) { throw ValidationError("pass exactly one of --socket or --listen-fd") }
        if timeout <= 0 { throw ValidationError("--timeout must be positive") }
    }

    func run() throws {
        if sandbox { try supervise() }
        signal(SIGPIPE, SIG_IGN)
        if maxProcesses != nil || maxMemoryMib != nil,
            oxydra_set_process_limits(Int64(maxProcesses ?? 0), Int64((maxMemoryMib ?? 0) << 20)) != 0
        {
            throw ValidationError("cannot set the process limits: \(String(cString: strerror(errno)))")
        }
        let listener: Int32
        if let socket {
            do {
                listener = try UnixSocket.listen(at: socket)
            } catch {
                throw ValidationError(error.description)
            }
        } else {
            listener = listenFd!
        }
        var environment = ProcessInfo.processInfo.environment
        // Variables only the daemon needs (its library path inside the sandbox) stay out of commands.
        if let names = environment.removeValue(forKey: ShellSandbox.daemonOnlyMarker) {
            for name in names.split(separator: ",") { environment[String(name)] = nil }
        }
        var settings = ShellDaemonServer.Settings(environment: environment)
        settings.defaultTimeout = .seconds(timeout)
        ShellDaemonServer(listeningDescriptor: listener, settings: settings).run()
    }

    private func supervise() throws -> Never {
        guard let executable = ExecutableLocator.selfPath() else {
            throw ValidationError("cannot find this executable's path (/proc/self/exe)")
        }
        var environment: [String: String] = [:]
        for key in env {
            if let value = getenv(key) { environment[key] = String(cString: value) }
        }
        let spec = ShellSandbox.Spec(
            bubblewrap: bwrap!, daemonExecutable: executable, sharedDirectory: shared!, tmpDirectory: tmp!,
            environment: environment, maxVCPUs: maxVcpus, maxMemoryMiB: maxMemoryMib, maxProcesses: maxProcesses,
            maskedPaths: mask)
        var identity: (uid: uid_t, gid: gid_t)?
        if let runAs {
            let parts = runAs.split(separator: ":")
            guard parts.count == 2, let uid = uid_t(parts[0]), let gid = gid_t(parts[1]) else {
                throw ValidationError("--run-as takes UID:GID, not `\(runAs)`")
            }
            identity = (uid, gid)
        }
        ShellSandboxSupervisor.run(spec, socketPath: socket!, etcDirectory: etc!, parent: parent!, runAs: identity)
    }
}
