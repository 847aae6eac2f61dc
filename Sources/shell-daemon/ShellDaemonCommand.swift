import ArgumentParser
import OxydraCore
import OxydraSandbox
import OxydraShellDaemon

#if canImport(Glibc)
    import Glibc
#endif

/// `shell-daemon --socket PATH`: the shell sidecar.
@main
struct ShellDaemonCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shell-daemon",
        abstract: "Run shell commands for one user's agent over a Unix socket (the shell sidecar).",
        discussion: """
            Serves length-prefixed JSON requests (spawn_session, exec_command, stream_output, \
            kill_session) on the socket; see docs/protocol.md. The guest starts it inside the user's \
            sandbox (`shell-daemon sandbox`); it is not meant to be run by hand.
            """,
        subcommands: [Serve.self, Sandbox.self], defaultSubcommand: Serve.self)
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve on a Unix socket (the default).")

    @Option(name: .long, help: "Unix socket path to listen on (a stale socket file is replaced).")
    var socket: String?

    @Option(name: .long, help: "Serve on this inherited, already listening socket descriptor instead.")
    var listenFd: Int32?

    @Option(name: .long, help: "Default command timeout in seconds.")
    var timeout = 60

    func validate() throws {
        if (socket == nil) == (listenFd == nil) { throw ValidationError("pass exactly one of --socket or --listen-fd") }
        if timeout <= 0 { throw ValidationError("--timeout must be positive") }
    }

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
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
        var environment: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                environment[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            pointer += 1
        }
        var settings = ShellDaemonServer.Settings(environment: environment)
        settings.defaultTimeout = .seconds(timeout)
        ShellDaemonServer(listeningDescriptor: listener, settings: settings).run()
    }
}

struct Sandbox: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Keep the daemon running inside a bubblewrap sandbox (started by oxydra-vm).")

    @Option(name: .long, help: "Unix socket path the guest connects to.")
    var socket: String
    @Option(name: .long, help: "Path of bwrap.") var bwrap: String
    @Option(name: .long, help: "Host directory mounted read-write at /shared.") var shared: String
    @Option(name: .long, help: "Host directory mounted read-write at /tmp.") var tmp: String
    @Option(name: .long, help: "Directory for the sandbox's generated /etc files.") var etc: String
    @Option(name: .long, help: "The process that must stay alive (the guest).") var parent: Int32
    @Option(name: .long, help: "A variable of this process's environment to pass to commands (repeatable).")
    var env: [String] = []
    @Option(name: .long) var maxVcpus: Int?
    @Option(name: .long) var maxMemoryMib: Int?
    @Option(name: .long) var maxProcesses: Int?

    func run() throws {
        guard let executable = ExecutableLocator.selfPath() else {
            throw ValidationError("cannot find this executable's path (/proc/self/exe)")
        }
        var environment: [String: String] = [:]
        for key in env {
            if let value = getenv(key) { environment[key] = String(cString: value) }
        }
        let spec = ShellSandbox.Spec(
            bubblewrap: bwrap, daemonExecutable: executable, sharedDirectory: shared, tmpDirectory: tmp,
            environment: environment, maxVCPUs: maxVcpus, maxMemoryMiB: maxMemoryMib, maxProcesses: maxProcesses)
        ShellSandboxSupervisor.run(spec, socketPath: socket, etcDirectory: etc, parent: parent)
    }
}
