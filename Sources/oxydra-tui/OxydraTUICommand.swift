import ArgumentParser
import OxydraTUI

/// `oxydra-tui --gateway-endpoint URL --user ID`: the terminal UI. Built by issue 6.
@main
struct OxydraTUICommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "oxydra-tui",
        abstract: "Chat with a running Oxydra guest in the terminal.",
        discussion: """
            Usually started by `runner --tui`, which finds the gateway endpoint of the user's running \
            guest. Requires a running guest (`runner --insecure` or `runner start`).
            """)

    @Option(name: .long, help: "Gateway WebSocket URL, e.g. ws://127.0.0.1:41234/ws.")
    var gatewayEndpoint: String

    @Option(name: .long, help: "The user whose guest to talk to.")
    var user: String

    @Option(name: .long, help: "Resume this session (exact id or unique prefix) instead of creating one.")
    var session: String?

    func run() throws {
        throw ValidationError(
            "the terminal UI is not available in this build yet (issue 6: gateway and TUI)")
    }
}
