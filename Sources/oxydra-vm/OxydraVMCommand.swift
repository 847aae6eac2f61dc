import ArgumentParser
import OxydraConfig
import OxydraCore
import OxydraGateway
import OxydraSandbox

#if canImport(Glibc)
    import Glibc
#endif

/// `oxydra-vm`: one user's guest (agent runtime, gateway, memory). The runner starts it.
///
/// Start-up runs in two phases. The first is single-threaded: read the bootstrap envelope, load the
/// configuration, the catalog and the operator prompt, then (process tier) confine the process with
/// Landlock — Landlock only covers threads created afterwards. The second phase builds the provider,
/// memory, tools and gateway, and serves until SIGTERM or `shutdown_user`.
@main
struct OxydraVMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "oxydra-vm",
        abstract: "Run one user's Oxydra guest: agent runtime, WebSocket gateway and memory.",
        discussion: """
            Started by `runner`, which sends the bootstrap envelope on stdin (--bootstrap-stdin) or \
            in a file. Reads the layered agent config from its working directory.
            """)

    @Option(name: .long, help: "The user this guest serves.")
    var userID: String

    @Option(name: .long, help: "The user's workspace directory (shared, tmp, vault, ipc, logs, .oxydra).")
    var workspaceRoot: String

    @Flag(help: "Read the bootstrap envelope (4-byte big-endian length + JSON) from standard input.")
    var bootstrapStdin = false

    @Option(name: .long, help: "Read the bootstrap envelope from this file (container and micro_vm tiers).")
    var bootstrapFile: String?

    @Option(name: .long, help: "Gateway listen address (overrides gateway.bind).")
    var gatewayBind: String?

    @Option(name: .customLong("set"), help: "Override an agent config key, e.g. --set runtime.max_turns=12.")
    var overrides: [String] = []

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Apply the process-tier confinement, try to read this path, report the outcome and exit.",
            visibility: .hidden))
    var confinementProbe: String?

    func validate() throws {
        do {
            _ = try UserID.validated(userID)
        } catch {
            throw ValidationError("\(error)")
        }
        if bootstrapStdin && bootstrapFile != nil {
            throw ValidationError("pass either --bootstrap-stdin or --bootstrap-file, not both")
        }
    }

    func run() throws {
        if let probe = confinementProbe { ConfinementProbe.run(workspace: workspaceRoot, path: probe) }
        // Everything the guest and its shell sandbox create is private to the user.
        umask(0o077)
        let prepared: PreparedGuest
        do {
            prepared = try PreparedGuest.load(
                user: UserID(userID), workspaceRoot: workspaceRoot, bootstrap: bootstrapSource,
                gatewayBind: gatewayBind, overrides: overrides)
        } catch {
            StandardStreams.write("oxydra-vm error: \(error)\n", to: 2)
            throw ExitCode(1)
        }
        let code = BlockingBridge.run { await Guest(prepared).run() }
        throw ExitCode(code)
    }

    private var bootstrapSource: PreparedGuest.BootstrapSource {
        if bootstrapStdin { return .standardInput }
        if let bootstrapFile { return .file(bootstrapFile) }
        if let path = ProcessInfo.processInfo.environment["OXYDRA_BOOTSTRAP_FILE"] { return .file(path) }
        return .none
    }
}

/// `--confinement-probe`: the same confinement as a real process-tier start, then one read.
enum ConfinementProbe {
    static func run(workspace: String, path: String) -> Never {
        switch Landlock.restrictSelf(GuestConfinement.rules(workspace: workspace)) {
        case .failure(let reason):
            StandardStreams.write("unconfined: \(reason)\n", to: 1)
            exit(3)
        case .success(let abi):
            let fd = path.withCString { open($0, O_RDONLY | O_CLOEXEC) }
            if fd >= 0 {
                close(fd)
                StandardStreams.write("allowed: \(path) (landlock abi \(abi))\n", to: 1)
                exit(0)
            }
            StandardStreams.write("denied: \(path): \(String(cString: strerror(errno))) (landlock abi \(abi))\n", to: 1)
            exit(2)
        }
    }
}
