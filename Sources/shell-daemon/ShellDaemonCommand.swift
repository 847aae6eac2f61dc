import ArgumentParser
import OxydraShellDaemon

/// `shell-daemon --socket PATH`: the shell sidecar. Its RPC server is built by issue 7.
@main
struct ShellDaemonCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shell-daemon",
        abstract: "Run shell commands for one user's agent over a Unix socket (the shell sidecar).",
        discussion: """
            Serves length-prefixed JSON requests (spawn_session, exec_command, stream_output, \
            kill_session) on the socket. The runner starts it inside the user's sandbox; it is not \
            meant to be run by hand.
            """)

    @Option(name: .long, help: "Unix socket path to listen on (a stale socket file is replaced).")
    var socket: String

    func run() throws {
        throw ValidationError(
            "shell-daemon is not available in this build yet (issue 7: the shell sidecar); "
                + "shell tools stay disabled until it lands")
    }
}
