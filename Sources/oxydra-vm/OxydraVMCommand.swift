import ArgumentParser
import OxydraConfig
import OxydraCore

/// `oxydra-vm`: one user's guest (agent runtime, gateway, memory). The runner starts it.
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

    @Option(name: .long, help: "Gateway listen address.")
    var gatewayBind = "127.0.0.1:0"

    @Option(name: .customLong("set"), help: "Override an agent config key, e.g. --set runtime.max_turns=12.")
    var overrides: [String] = []

    func validate() throws {
        do {
            _ = try UserID.validated(userID)
        } catch {
            throw ValidationError("\(error)")
        }
    }

    func run() throws {
        let loaded = AgentConfigLoader.standard(commandLineOverrides: overrides).load()
        do {
            _ = try loaded.validated()
        } catch {
            throw ValidationError("oxydra-vm error: \(error)")
        }
        throw ValidationError(
            "oxydra-vm error: the agent configuration is valid, but serving the gateway is not available in "
                + "this build yet (issue 6: runner, oxydra-vm, gateway and TUI)")
    }
}
