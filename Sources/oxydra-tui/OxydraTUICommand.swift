import ArgumentParser
import OxydraCore
import OxydraTUI

/// `oxydra-tui --gateway-endpoint URL --user ID`: the terminal UI.
@main
struct OxydraTUICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "oxydra-tui",
        abstract: "Chat with a running Oxydra guest in the terminal.",
        discussion: """
            Usually started by `runner --tui`, which finds the gateway endpoint of the user's running \
            guest. Requires a running guest (`runner --insecure` or `runner start`). Set NO_COLOR to \
            turn colours off.
            """)

    @Option(name: .long, help: "Gateway WebSocket URL, e.g. ws://127.0.0.1:41234/ws.")
    var gatewayEndpoint: String

    @Option(name: .long, help: "The user whose guest to talk to.")
    var user: String = "default"

    @Option(name: .long, help: "Resume this session (exact id or unique prefix); default: the user's default session.")
    var session: String?

    @Option(name: .long, help: "Environment variable holding the gateway's bearer token (when it requires one).")
    var tokenEnv: String = "OXYDRA_GATEWAY_TOKEN"

    @Option(name: .long, help: "The guest's gateway endpoint marker, re-read when reconnecting (set by runner --tui).")
    var endpointFile: String?

    func validate() throws {
        guard gatewayEndpoint.hasPrefix("ws://") || gatewayEndpoint.hasPrefix("wss://") else {
            throw ValidationError("--gateway-endpoint must be a ws:// or wss:// URL, got `\(gatewayEndpoint)`")
        }
    }

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let color = environment["NO_COLOR"].map(\.isEmpty) ?? true
        let app = TUIApp(
            TUIApp.Options(
                endpoint: gatewayEndpoint, user: user, session: session, token: environment[tokenEnv], color: color,
                endpointFile: endpointFile))
        throw ExitCode(await app.run())
    }
}
