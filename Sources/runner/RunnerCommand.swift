import ArgumentParser
import Dispatch
import OxydraClient
import OxydraConfig
import OxydraContainer
import OxydraCore
import OxydraRunner
import OxydraSandbox
import OxydraWeb

#if canImport(Glibc)
    import Glibc
#endif

/// Options every runner command accepts (the seed README's flags).
struct GlobalOptions: ParsableArguments {
    @Option(name: [.short, .long], help: "Runner config file.")
    var config: String = RunnerConfigLoader.defaultPath

    @Option(name: [.short, .long], help: "User to act for (optional when exactly one user is configured).")
    var user: String?

    var context: RunnerContext { RunnerContext(configPath: config, requestedUser: user) }
}

/// Everything on standard input, or nil when it holds more than `limit` bytes.
func readStandardInput(limit: Int) -> [UInt8]? {
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65_536)
    while true {
        let count = read(0, &buffer, buffer.count)
        if count < 0 && errno == EINTR { continue }
        if count <= 0 { return bytes }
        bytes += buffer[..<count]
        if bytes.count > limit { return nil }
    }
}

@main
struct RunnerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runner",
        abstract: "Provision, start and inspect a user's isolated Oxydra guest.",
        usage: """
            runner [--config <path>] [--user <id>] [--insecure] [--tui]
            runner start|stop|restart [--config <path>] [--user <id>] [--insecure]
            runner status [--json] | logs [--follow] [--tail <n>] [--role <role>] | tui [--session <id>]
            runner ask "<prompt>" [--session <id> | --new-session] [--json]
            runner config show [--config <path>] [--user <id>] [--sources] [--json] [--set <key=value> ...]
            runner config check [--config <path>] [--user <id>] [--set <key=value> ...]
            runner images build [--tier container|micro_vm] [--only runtime|sidecar] [--json] | images list [--json]
            """,
        discussion: """
            Configuration: .oxydra/runner.toml (users, tiers), the user's own file, and the layered \
            agent config (agent.toml + providers.toml in /etc/oxydra, ~/.config/oxydra, ./.oxydra, then \
            OXYDRA__SECTION__KEY environment variables, then --set overrides).
            """,
        subcommands: [
            Start.self, Stop.self, Restart.self, Status.self, Logs.self, Ask.self, TUI.self, Config.self, Images.self,
            Sessions.self, Usage.self, Audit.self, Approvals.self, NotBuilt.Catalog.self, NotBuilt.CheckUpdate.self,
            Web.self,
            Supervise.self, VMConnectCommand.self,
        ],
        defaultSubcommand: Start.self)

    /// Global options also work before the subcommand (`runner --config C --user U status`).
    static func main() async {
        await main(GlobalArguments.hoisted(Array(CommandLine.arguments.dropFirst())))
    }
}

extension RunnerCommand {
    /// `runner audit verify|show`.
    struct Audit: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "audit",
            abstract: "The user's tamper-evident log of tool calls: check its hash chain, or show records.",
            subcommands: [Verify.self, Show.self])

        struct Verify: ParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "verify",
                abstract: "Check every record's hash and link (exit 0: the chain holds, 1: broken).")
            @OptionGroup var global: GlobalOptions
            @Flag(help: "Print JSON.") var json = false
            func run() throws { AuditCommand.verify(global.context, json: json).emitAndExit() }
        }

        struct Show: ParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "show", abstract: "The newest records, oldest first.")
            @OptionGroup var global: GlobalOptions
            @Option(help: "Only records from the last `7d`, `12h`…") var since: String?
            @Option(help: "At most this many records.") var tail = 50
            @Flag(help: "Print JSON.") var json = false
            var start: Date?? {
                guard let since else { return .some(nil) }
                let unit: Double = since.hasSuffix("h") ? 3600 : since.hasSuffix("d") ? 86_400 : 0
                guard unit > 0, let count = Double(since.dropLast()), count > 0 else { return nil }
                return .some(Date().addingTimeInterval(-count * unit))
            }
            func validate() throws {
                guard start != nil else {
                    throw ValidationError("--since takes `<n>d` or `<n>h`, got `\(since ?? "")`")
                }
                guard tail > 0 else { throw ValidationError("--tail must be at least 1") }
            }
            func run() throws {
                AuditCommand.show(global.context, since: start ?? nil, tail: tail, json: json).emitAndExit()
            }
        }
    }

    /// `runner web`.
    struct Web: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "web",
            abstract: "Serve the web app (chat, sessions, approvals, guests) until Ctrl-C.",
            discussion:
                "Prints web_url=… and, when the token is made at start (no web.auth_token_env), web_login=… with the "
                + "token in the link's fragment. Exit 0 after a clean stop, 1 on errors.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Listen address host:port (default: [web] bind, 127.0.0.1:9400).") var bind: String?
        @Flag(help: "Guests started from the page run in the process tier (as `runner --insecure`).")
        var insecure = false
        func run() async throws {
            let code = await WebCommand.run(
                global.context, bind: bind, insecure: insecure,
                runnerExecutable: ExecutableLocator.selfPath() ?? CommandLine.arguments[0])
            throw ExitCode(code)
        }
    }

    /// `runner approvals list|revoke`.
    struct Approvals: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "approvals",
            abstract: "Standing approvals (\"allow for this session\" and \"always\"): list or revoke them "
                + "(needs the running guest).",
            subcommands: [List.self, Revoke.self])

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "list", abstract: "Every standing approval of the user.")
            @OptionGroup var global: GlobalOptions
            @Flag(help: "Print JSON.") var json = false
            func run() async throws { await SessionsCommand.run(global.context, .grants, json: json).emitAndExit() }
        }

        struct Revoke: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "revoke",
                abstract: "Remove a standing approval: that kind of call asks again.")
            @OptionGroup var global: GlobalOptions
            @Argument(help: "The grant id (`runner approvals list` shows them).") var grant: String
            func run() async throws {
                await SessionsCommand.run(global.context, .revokeGrant(grant), json: false).emitAndExit()
            }
        }
    }

    /// `runner usage [--since 7d] [--json]`.
    struct Usage: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "usage",
            abstract: "Tokens and dollars per UTC day, model and session, and the budget (needs the running guest).")
        @OptionGroup var global: GlobalOptions
        @Option(help: "How far back: `7d` (the default), `30d`, or a number of days (1…366).")
        var since = "7d"
        @Flag(help: "Print JSON.") var json = false
        var days: Int? {
            let digits = since.hasSuffix("d") ? String(since.dropLast()) : since
            return Int(digits).flatMap { (1...366).contains($0) ? $0 : nil }
        }
        func validate() throws {
            guard days != nil else {
                throw ValidationError("--since takes 1d…366d (or a number of days), got `\(since)`")
            }
        }
        func run() async throws {
            await SessionsCommand.run(global.context, .usage(days: days ?? 7), json: json).emitAndExit()
        }
    }

    /// `runner supervise`: the process `runner start` leaves behind to restart a crashed guest
    /// (not for people: it reads its instructions from standard input).
    struct Supervise: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "supervise",
            abstract: "Internal: keeps a process-tier guest running ([runner] restart).", shouldDisplay: false)
        func run() throws {
            guard let bytes = readStandardInput(limit: 16 << 20),
                let spec = try? JSONDecoder().decode(Supervisor.Spec.self, from: Data(bytes))
            else {
                StandardStreams.write("runner supervise: expected its instructions on standard input\n", to: 2)
                throw ExitCode(2)
            }
            throw ExitCode(Supervisor.run(spec))
        }
    }

    /// `runner vm-connect <host> <port>`: one connection of a micro VM to a provider (QEMU runs it
    /// per connection; not for people).
    struct VMConnectCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "vm-connect",
            abstract: "Internal: carries one micro VM connection to a configured provider.", shouldDisplay: false)
        @Argument var host: String
        @Argument var port: Int
        func run() throws { throw ExitCode(VMConnect.run(host: host, port: port)) }
    }

    /// `runner [--insecure] [--tui]` (the default command).
    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "start",
            abstract: "Start the user's guest (default), or connect the terminal UI to it with --tui.")

        @OptionGroup var global: GlobalOptions

        @Flag(help: "Use the process tier (no sandbox; a host process confined with Landlock).")
        var insecure = false

        @Flag(help: "Connect the terminal UI to the user's running guest instead of starting one.")
        var tui = false

        func run() async throws {
            if tui { TUILaunch.exec(global.context, session: nil).emitAndExit() }
            await GuestLifecycle.start(global.context, insecure: insecure).emitAndExit()
        }
    }

    struct Stop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "stop",
            abstract: "Stop the user's guest (running turns are cancelled and their progress saved).")

        @OptionGroup var global: GlobalOptions

        func run() async throws { await GuestLifecycle.stop(global.context).emitAndExit() }
    }

    struct Restart: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "restart", abstract: "Stop the user's guest if it runs, then start it.")

        @OptionGroup var global: GlobalOptions

        @Flag(help: "Use the process tier (no sandbox; a host process confined with Landlock).")
        var insecure = false

        func run() async throws { await GuestLifecycle.restart(global.context, insecure: insecure).emitAndExit() }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "status",
            abstract: "Show whether the user's guest runs and what it could set up (exit 3 when not running).")

        @OptionGroup var global: GlobalOptions

        @Flag(help: "Print JSON.")
        var json = false

        func run() async throws { await GuestLifecycle.status(global.context, json: json).emitAndExit() }
    }

    struct Logs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "logs", abstract: "Print the guest's logs.")

        @OptionGroup var global: GlobalOptions

        @Flag(name: [.short, .long], help: "Keep printing new lines as they are written.")
        var follow = false

        @Option(help: "Lines to print from the end of each log.")
        var tail = 200

        @Option(help: "runtime (the guest's log), stderr (its raw standard error), sidecar, or all.")
        var role = "runtime"

        func validate() throws {
            guard (1...10_000).contains(tail) else { throw ValidationError("--tail must be between 1 and 10000") }
        }

        func run() async throws {
            let code = await GuestLogs.run(global.context, role: role, tail: tail, follow: follow) { text, descriptor in
                StandardStreams.write(text, to: descriptor)
            }
            throw ExitCode(code)
        }
    }

    struct Ask: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ask",
            abstract: "Run one turn through the user's running guest and stream the answer.",
            discussion:
                "Ctrl-C cancels the turn (twice quits at once). Exit 0 on success, 1 on failure, 130 if cancelled.")

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The prompt; `-` reads it from standard input.")
        var prompt: String

        @Option(help: "Continue this session (id or unique prefix); default: the user's default session.")
        var session: String?

        @Flag(help: "Start a new session.")
        var newSession = false

        @Flag(help: "Use a new session and archive it after the answer (for scripts).")
        var ephemeral = false
        @Option(
            help: ArgumentHelp(
                "Send a file with the prompt (repeatable; 8 MiB in all). It lands in /shared/inbox/; images also "
                    + "reach the model as images when it accepts them.", valueName: "file"))
        var attach: [String] = []

        @Flag(help: "Print every gateway frame as a JSON line instead of the text.")
        var json = false

        @Flag(help: "Allow every tool call that asks for approval in this turn (once each).")
        var approveAll = false

        @Option(
            help: ArgumentHelp(
                "Allow approval requests of these tools (comma-separated, repeatable), e.g. shell_exec,file_write. "
                    + "Others are asked on the terminal, or denied without one.", valueName: "tools"))
        var approve: [String] = []

        func validate() throws {
            if session != nil && (newSession || ephemeral) {
                throw ValidationError("pass either --session or --new-session/--ephemeral")
            }
        }

        func run() async throws {
            var text = prompt
            if prompt == "-" {
                guard let bytes = readStandardInput(limit: 1 << 20) else {
                    StandardStreams.write("runner error: the prompt on standard input exceeds 1 MiB\n", to: 2)
                    throw ExitCode(1)
                }
                text = String(decoding: bytes, as: UTF8.self)
                if text.hasSuffix("\n") { text.removeLast() }
                guard !text.trimmed.isEmpty else {
                    StandardStreams.write(
                        "runner error: `runner ask -` read an empty prompt from standard input\n", to: 2)
                    throw ExitCode(1)
                }
            }
            var attachments: [ClientFrame.FileAttachment] = []
            for path in attach {
                do {
                    attachments.append(try AttachmentFile.load(path))
                } catch {
                    StandardStreams.write("runner error: \(error)\n", to: 2)
                    throw ExitCode(1)
                }
            }
            guard attachments.reduce(0, { $0 + $1.data.count }) <= GatewayProtocol.maxAttachmentBytes else {
                StandardStreams.write(
                    "runner error: the attachments hold more than \(GatewayProtocol.maxAttachmentBytes >> 20) MiB in all\n",
                    to: 2)
                throw ExitCode(1)
            }
            let interrupts = Interrupts.install()
            let code = await AskCommand.run(
                global.context,
                options: {
                    var options = AskCommand.Options(prompt: text, session: session, newSession: newSession, json: json)
                    options.ephemeral = ephemeral
                    options.attachments = attachments
                    options.approveAll = approveAll
                    options.approveTools = Set(
                        approve.flatMap { $0.split(separator: ",") }.map { $0.trimmed }.filter { !$0.isEmpty })
                    options.prompter = TerminalApproval.prompter()
                    return options
                }(),
                interrupts: interrupts
            ) { text, descriptor in
                StandardStreams.write(text, to: descriptor)
            }
            throw ExitCode(code)
        }
    }

    struct TUI: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "tui", abstract: "Open the terminal UI on the user's running guest (connect-only).")

        @OptionGroup var global: GlobalOptions

        @Option(
            help:
                "Resume this session (id or unique prefix); default: the user's default session (runtime-<user>); /new in the UI starts a new one."
        )
        var session: String?

        func run() throws { TUILaunch.exec(global.context, session: session).emitAndExit() }
    }
}

/// Ctrl-C as an async stream; a second Ctrl-C within 2 s exits immediately with 130.
enum Interrupts {
    nonisolated(unsafe) private static var source: (any DispatchSourceSignal)?

    static func install() -> AsyncStream<Void> {
        let (stream, continuation) = AsyncStream.makeStream(of: Void.self)
        signal(SIGINT, SIG_IGN)
        let signalSource = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        nonisolated(unsafe) var last: ContinuousClock.Instant?
        signalSource.setEventHandler {
            let now = ContinuousClock.now
            if let previous = last, now - previous < .seconds(2) { exit(AskCommand.cancelledExitCode) }
            last = now
            continuation.yield()
        }
        signalSource.resume()
        source = signalSource
        return stream
    }
}

extension RunnerCommand {
    struct Config: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "config",
            abstract: "Inspect and validate configuration.", subcommands: [Show.self, Check.self])

        struct Show: ParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "show",
                abstract: "Print the effective agent configuration for the user (secrets redacted).")

            @OptionGroup var global: GlobalOptions

            @Flag(help: "Show the layer each value came from (file, environment variable, --set, default).")
            var sources = false

            @Flag(help: "Print JSON instead of TOML.")
            var json = false

            @Option(name: .customLong("set"), help: "Override an agent config key, e.g. --set runtime.max_turns=12.")
            var overrides: [String] = []

            func run() throws {
                var context = global.context
                context.overrides = overrides
                ConfigCommands.show(context, sources: sources, json: json).emitAndExit()
            }
        }

        struct Check: ParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "check",
                abstract: "Validate runner, user and agent configuration; exit 1 listing every problem.")

            @OptionGroup var global: GlobalOptions

            @Option(name: .customLong("set"), help: "Override an agent config key, e.g. --set runtime.max_turns=12.")
            var overrides: [String] = []

            func run() throws {
                var context = global.context
                context.overrides = overrides
                ConfigCommands.check(context).emitAndExit()
            }
        }
    }
}

extension RunnerCommand {
    struct Images: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "images",
            abstract: "Build and inspect the guest images (container: oxydra-vm, shell-vm; micro_vm: root disk).",
            discussion: """
                Images are assembled on this host — no registry: oxydra-vm from the oxydra-vm binary beside \
                runner and its libraries, shell-vm from a Debian minbase made by mmdebstrap plus shell-daemon — \
                and imported through the Docker Engine API ($DOCKER_HOST or /var/run/docker.sock). The micro_vm \
                form is both in one ext4 root disk plus an initramfs for the kernel, in [guest_images] \
                micro_vm_dir. Exit 0 on success, 1 on errors.
                """,
            subcommands: [Build.self, List.self])

        struct Build: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "build",
                abstract: "Build the guest images (skipped when their inputs are unchanged).")

            @OptionGroup var global: GlobalOptions

            @Option(help: "Only this image: runtime (oxydra-vm) or sidecar (shell-vm).")
            var only: String?

            @Option(
                help: """
                    The tier to build for: container (images in the engine) or micro_vm (root disk and initramfs); \
                    default: the tiers runner.toml and the users' files use (container when only process).
                    """)
            var tier: String?

            @Flag(help: "Print the result as JSON.")
            var json = false

            func validate() throws {
                if let only, GuestImageBuilder.Role(rawValue: only) == nil {
                    throw ValidationError("--only takes `runtime` or `sidecar`, not `\(only)`")
                }
                if let tier, tier != "container" && tier != "micro_vm" {
                    throw ValidationError("--tier takes `container` or `micro_vm`, not `\(tier)`")
                }
            }

            func run() async throws {
                let output = await ImagesCommand.build(
                    global.context, only: only.flatMap(GuestImageBuilder.Role.init(rawValue:)),
                    tier: tier.flatMap(SandboxTier.init(rawValue:)), json: json
                ) { line in
                    StandardStreams.write("==> " + line + "\n", to: 2)
                }
                output.emitAndExit()
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "list",
                abstract: "Show the installed guest images and whether they match this build's binaries.")

            @OptionGroup var global: GlobalOptions

            @Flag(help: "Print JSON.")
            var json = false

            func run() async throws { await ImagesCommand.list(global.context, json: json).emitAndExit() }
        }
    }
}

/// Commands of the original that this build does not have yet: they say so (and where they are
/// planned) instead of failing as unknown arguments.
enum NotBuilt {
    static func refuse(_ command: String, _ plan: String) -> Never {
        StandardStreams.write("runner error: `runner \(command)` is not built yet: \(plan)\n", to: 2)
        exit(2)
    }

    struct Catalog: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "catalog",
            abstract: "Not built yet: fetch, verify or show the model catalog (the original's `catalog`).")
        @Argument(parsing: .captureForPassthrough) var rest: [String] = []
        func run() throws {
            refuse(
                "catalog",
                "the built-in catalog plus model_catalog.json files is used; `runner config check` shows "
                    + "the selected model's entry (docs/configuration.md#models)")
        }
    }

    struct CheckUpdate: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check-update", abstract: "Not built yet: look for a newer release (the original's).")
        @Argument(parsing: .captureForPassthrough) var rest: [String] = []
        func run() throws { refuse("check-update", "this build never contacts a release server") }
    }

}

extension RunnerCommand {
    /// `runner sessions …`: the user's sessions, through the running guest.
    struct Sessions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "sessions",
            abstract: "List, show, export, rename, archive or delete the user's sessions (needs the running guest).",
            subcommands: [List.self, Show.self, Export.self, Rename.self, Archive.self, Unarchive.self, Delete.self])

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "list",
                abstract: "Sessions, most recently active first, a page at a time.")
            @OptionGroup var global: GlobalOptions
            @Flag(help: "Include archived sessions.") var archived = false
            @Option(help: "Sessions per page (1…1000).") var limit = 50
            @Option(help: "Where the page starts: the next_cursor a previous page printed.") var cursor: String?
            @Flag(help: "Every session, all pages.") var all = false
            @Flag(help: "Print JSON.") var json = false
            func validate() throws {
                guard (1...1000).contains(limit) else { throw ValidationError("--limit must be 1…1000") }
            }
            func run() async throws {
                await SessionsCommand.run(
                    global.context, .list(includeArchived: archived, limit: limit, cursor: cursor, all: all), json: json
                ).emitAndExit()
            }
        }

        struct Show: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "show", abstract: "A session's conversation.")
            @OptionGroup var global: GlobalOptions
            @Argument(help: "Session id or unique prefix.") var session: String
            @Option(help: "Messages from the end (1–500).") var limit = 50
            @Flag(help: "Print JSON.") var json = false
            func run() async throws {
                await SessionsCommand.run(global.context, .show(session, limit: limit), json: json).emitAndExit()
            }
        }

        struct Export: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "export", abstract: "A session's conversation as Markdown or JSON.")
            @OptionGroup var global: GlobalOptions
            @Argument(help: "Session id or unique prefix.") var session: String
            @Option(help: "markdown or json.") var format = "markdown"
            func validate() throws {
                guard ["markdown", "json"].contains(format) else {
                    throw ValidationError("--format must be markdown or json")
                }
            }
            func run() async throws {
                await SessionsCommand.run(
                    global.context, .export(session, markdown: format == "markdown"), json: format == "json"
                ).emitAndExit()
            }
        }

        struct Rename: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "rename", abstract: "Set a session's title (empty clears it).")
            @OptionGroup var global: GlobalOptions
            @Argument(help: "Session id or unique prefix.") var session: String
            @Argument(help: "The new title.") var title: [String] = []
            @Flag(help: "Print JSON.") var json = false
            func run() async throws {
                let text = title.joined(separator: " ").trimmed
                await SessionsCommand.run(
                    global.context, .rename(session, to: text.isEmpty ? nil : text), json: json
                ).emitAndExit()
            }
        }

        struct Archive: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "archive", abstract: "Hide a session from lists (kept).")
            @OptionGroup var global: GlobalOptions
            @Argument(help: "Session id or unique prefix.") var session: String
            @Flag(help: "Print JSON.") var json = false
            func run() async throws {
                await SessionsCommand.run(global.context, .archive(session, archived: true), json: json).emitAndExit()
            }
        }

        struct Unarchive: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "unarchive", abstract: "Show an archived session in lists again.")
            @OptionGroup var global: GlobalOptions
            @Argument(help: "Session id or unique prefix.") var session: String
            @Flag(help: "Print JSON.") var json = false
            func run() async throws {
                await SessionsCommand.run(global.context, .archive(session, archived: false), json: json).emitAndExit()
            }
        }

        struct Delete: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "delete",
                abstract: "Delete a session: its history, memory and state (asks first; --yes when not a terminal).")
            @OptionGroup var global: GlobalOptions
            @Argument(help: "Session id or unique prefix.") var session: String
            @Flag(help: "Do not ask for confirmation.") var yes = false
            func run() async throws {
                if !yes {
                    guard isatty(0) == 1 else {
                        StandardStreams.write(
                            "runner error: deleting a session cannot be undone; pass --yes to confirm\n", to: 2)
                        throw ExitCode(1)
                    }
                    StandardStreams.write("Delete session `\(session)` with its history and memory? [y/N] ", to: 2)
                    guard let answer = readLine(), ["y", "yes"].contains(answer.trimmed.lowercased()) else {
                        StandardStreams.write("nothing deleted\n", to: 2)
                        throw ExitCode(1)
                    }
                }
                await SessionsCommand.run(global.context, .delete(session), json: false).emitAndExit()
            }
        }
    }
}
