import ArgumentParser
import OxydraConfig
import OxydraCore
import OxydraRunner

/// Options every runner command accepts (the seed README's flags).
struct GlobalOptions: ParsableArguments {
    @Option(name: [.short, .long], help: "Runner config file.")
    var config: String = RunnerConfigLoader.defaultPath

    @Option(name: [.short, .long], help: "User to act for (optional when exactly one user is configured).")
    var user: String?

    var context: RunnerContext { RunnerContext(configPath: config, requestedUser: user) }
}

@main
struct RunnerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runner",
        abstract: "Provision, start and inspect a user's isolated Oxydra guest.",
        usage: """
            runner [--config <path>] [--user <id>] [--insecure] [--tui]
            runner config show [--config <path>] [--user <id>] [--sources] [--json] [--set <key=value> ...]
            runner config check [--config <path>] [--user <id>] [--set <key=value> ...]
            """,
        discussion: """
            Configuration: .oxydra/runner.toml (users, tiers), the user's own file, and the layered \
            agent config (agent.toml + providers.toml in /etc/oxydra, ~/.config/oxydra, ./.oxydra, then \
            OXYDRA__SECTION__KEY environment variables, then --set overrides).
            """,
        subcommands: [Start.self, Config.self],
        defaultSubcommand: Start.self)
}

extension RunnerCommand {
    /// `runner [--insecure] [--tui]` (the default command).
    struct Start: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start the user's guest (default), or connect to it with --tui.")

        @OptionGroup var global: GlobalOptions

        @Flag(help: "Use the process tier (no sandbox; a host process confined with Landlock).")
        var insecure = false

        @Flag(help: "Connect the terminal UI to the user's running guest instead of starting one.")
        var tui = false

        func run() throws {
            let check = ConfigCommands.check(global.context)
            guard check.exitCode == 0 else { check.emitAndExit() }
            CommandOutput(
                standardError: "runner error: configuration is valid, but starting guests and connecting the "
                    + "terminal UI are not available in this build yet (issue 6: runner, oxydra-vm, gateway and TUI); "
                    + "`runner config show --sources` prints the effective configuration\n",
                exitCode: 1
            ).emitAndExit()
        }
    }

    struct Config: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Inspect and validate configuration.", subcommands: [Show.self, Check.self])

        struct Show: ParsableCommand {
            static let configuration = CommandConfiguration(
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
