import ArgumentParser
import OxydraClient
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

    @Option(
        name: .long,
        help: ArgumentHelp(
            "File holding the gateway's bearer token, re-read when reconnecting.",
            discussion: "Default: gateway-token beside --endpoint-file (where a local guest writes it)."))
    var tokenFile: String?

    @Option(name: .long, help: "Environment variable holding the bearer token, for a gateway without a token file.")
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
        var tokenFile = self.tokenFile
        if tokenFile == nil, let marker = endpointFile, let slash = marker.lastIndex(of: "/") {
            tokenFile = String(marker[..<slash]) + "/" + GatewayProtocol.tokenFile
        }
        if let file = tokenFile, environment[tokenEnv] == nil {
            do {
                _ = try GatewayAccess.readToken(at: file)
            } catch {
                throw ValidationError("\(error)")
            }
        }
        let color = environment["NO_COLOR"].map(\.isEmpty) ?? true
        var options = TUIApp.Options(
            endpoint: gatewayEndpoint, user: user, session: session, token: environment[tokenEnv], color: color,
            endpointFile: endpointFile, tokenFile: tokenFile)
        options.history = PromptHistory.standard(environment: environment)
        let app = TUIApp(options)
        throw ExitCode(await app.run())
    }
}
