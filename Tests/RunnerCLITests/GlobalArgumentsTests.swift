import OxydraRunner
import OxydraTesting
import Testing

/// `runner --config C --user U <subcommand>`: the global options work before the subcommand too.
@Suite("Global options before the subcommand")
struct GlobalArgumentsTests {
    @Test func leadingOptionsMoveAfterTheSubcommand() {
        #expect(
            GlobalArguments.hoisted(["--config", "c.toml", "--user", "bob", "status", "--json"])
                == ["status", "--config", "c.toml", "--user", "bob", "--json"])
        #expect(
            GlobalArguments.hoisted(["-c", "x", "config", "show", "--sources"])
                == ["config", "show", "-c", "x", "--sources"])
        #expect(GlobalArguments.hoisted(["--config=x", "images", "list"]) == ["images", "list", "--config=x"])
        // An option's value is never taken for a subcommand.
        #expect(GlobalArguments.hoisted(["--user", "status", "stop"]) == ["stop", "--user", "status"])
        // Without a subcommand the default (start) parses them itself; after one, nothing moves.
        #expect(GlobalArguments.hoisted(["--config", "c", "--insecure"]) == ["--config", "c", "--insecure"])
        #expect(GlobalArguments.hoisted(["ask", "--user", "u", "status"]) == ["ask", "--user", "u", "status"])
        #expect(GlobalArguments.hoisted(["--", "status"]) == ["--", "status"])
    }

    /// Commands that run for real without a guest: they must parse and act, not fail on usage.
    @Test(arguments: [
        ("status", Int32(3)), ("stop", 0), ("logs", 0), ("config show", 0), ("config check", 0), ("ask hi", 1),
        ("start --help", 0), ("restart --help", 0), ("tui --help", 0), ("images list --help", 0),
        ("web --help", 0), ("approvals list --help", 0), ("catalog fetch --pinned", 2), ("check-update", 2),
        ("usage --since 30d", 1), ("sessions list --limit 5", 1), ("audit verify", 0), ("audit show --tail 5", 0),
    ])
    func everySubcommandTakesThemFirst(_ command: String, _ expected: Int32) async throws {
        let project = try Project(agent: "[selection]\nprovider = \"anthropic\"\nmodel = \"claude-haiku-4-5\"\n")
        defer { project.directory.remove() }
        let result = try await project.run(
            ["--config", ".oxydra/runner.toml", "--user", "alice"] + command.split(separator: " ").map(String.init),
            extraEnvironment: ["ANTHROPIC_API_KEY": "k"])
        #expect(result.exitCode == expected, "\(command): \(result.standardError)")
        #expect(!result.standardError.contains("Unknown option"), "\(result.standardError)")
        #expect(!result.standardError.contains("Unexpected argument"), "\(result.standardError)")
        if expected == 2 { #expect(result.standardError.contains("is not built yet"), "\(result.standardError)") }
    }
}
