import ArgumentParser
import OxydraCore
import OxydraGuest

#if canImport(Glibc)
    import Glibc
#endif

/// `oxydra-vm`: one user's guest (agent runtime, gateway, memory). The runner starts it. Only the
/// command line lives here; the guest itself is the `OxydraGuest` library (`GuestMain`).
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

    @Option(
        name: .long,
        help: "The host:port clients reach the gateway at, when it differs from the bind (the container tier).")
    var gatewayAdvertise: String?

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
        throw ExitCode(
            GuestMain.run(
                user: UserID(userID), workspaceRoot: workspaceRoot, bootstrap: bootstrapSource,
                gatewayBind: gatewayBind, gatewayAdvertise: gatewayAdvertise, overrides: overrides))
    }

    private var bootstrapSource: PreparedGuest.BootstrapSource {
        if bootstrapStdin { return .standardInput }
        if let bootstrapFile { return .file(bootstrapFile) }
        if let path = ProcessInfo.processInfo.environment["OXYDRA_BOOTSTRAP_FILE"] { return .file(path) }
        return .none
    }
}
