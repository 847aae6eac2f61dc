import Foundation
import OxydraCore
import OxydraTesting
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A project directory laid out like the seed README's quick start, with separate stand-ins for
/// /etc/oxydra and $HOME so no host configuration leaks in.
struct Project {
    let directory: TemporaryDirectory
    var root: String { directory.path }
    var environment: [String: String]

    init(agent: String? = nil) throws {
        directory = try TemporaryDirectory(prefix: "oxydra-cli")
        try directory.write(SeedConfig.runnerTOML, to: ".oxydra/runner.toml")
        try directory.write(SeedConfig.aliceTOML, to: ".oxydra/users/alice.toml")
        if let agent { try directory.write(agent, to: ".oxydra/agent.toml") }
        _ = try directory.createDirectory("home")
        _ = try directory.createDirectory("etc-oxydra")
        environment = [
            "HOME": directory.path + "/home", "OXYDRA_SYSTEM_CONFIG_DIR": directory.path + "/etc-oxydra",
            "PATH": "/usr/bin:/bin",
        ]
    }

    func run(_ arguments: [String], extraEnvironment: [String: String] = [:]) async throws -> ProcessResult {
        try await run("runner", arguments, extraEnvironment: extraEnvironment)
    }

    func run(_ product: String, _ arguments: [String], extraEnvironment: [String: String] = [:])
        async throws -> ProcessResult
    {
        try await ChildProcess.run(
            product, arguments, environment: environment.merging(extraEnvironment) { _, new in new },
            workingDirectory: root)
    }
}

@Suite("Executables", .serialized)
struct RunnerCLITests {
    @Test(arguments: [
        (
            "runner",
            [
                "--config", "--user", "--insecure", "--tui", "config show", "config check", "start", "stop", "restart",
                "status", "logs", "ask", "tui", "images build", "images list",
            ]
        ),
        ("oxydra-vm", ["--user-id", "--workspace-root", "--bootstrap-stdin", "--bootstrap-file", "--gateway-bind"]),
        ("shell-daemon", ["--socket"]),
        ("oxydra-tui", ["--gateway-endpoint", "--user", "--session", "--token-env"]),
    ])
    func helpDescribesTheRealFlags(_ product: String, _ flags: [String]) async throws {
        let project = try Project()
        defer { project.directory.remove() }
        let result = try await project.run(product, ["--help"])
        #expect(result.exitCode == 0)
        for flag in flags { #expect(result.standardOutput.contains(flag), "\(product) --help lacks \(flag)") }
        if product == "runner" {
            let start = try await project.run(product, ["start", "--help"])
            for flag in ["--config", "--user", "--insecure", "--tui"] { #expect(start.standardOutput.contains(flag)) }
            let show = try await project.run(product, ["config", "show", "--help"])
            for flag in ["--sources", "--json", "--set"] { #expect(show.standardOutput.contains(flag)) }
        }
    }

    @Test func shellEgressNeedsTheContainerTier() async throws {
        let project = try Project(
            agent:
                "[selection]\nprovider = \"local\"\nmodel = \"m\"\n[providers.registry.local]\nprovider_type = \"openai\"\nbase_url = \"http://127.0.0.1:9\"\nskip_catalog_validation = true\n[tools.shell]\nnetwork = \"egress\"\n"
        )
        defer { project.directory.remove() }
        let started = try await project.run(["start", "--insecure"])
        #expect(started.exitCode == 1)
        #expect(
            started.standardError.contains(
                "tools.shell.network = \"egress\" (./.oxydra/agent.toml) needs the container tier"),
            "\(started.standardError)")
    }

    @Test func checkPassesOnTheSeedLayout() async throws {
        let project = try Project(agent: "[selection]\nprovider = \"anthropic\"\nmodel = \"claude-haiku-4-5\"\n")
        defer { project.directory.remove() }
        let result = try await project.run(["config", "check"], extraEnvironment: ["ANTHROPIC_API_KEY": "sk-ant-test"])
        #expect(result.exitCode == 0, "\(result.standardError)")
        #expect(
            result.standardOutput == """
                ok: ./.oxydra/runner.toml (1 user(s))
                ok: ./.oxydra/users/alice.toml (user alice, sandbox_tier = process; config_path relative to the project root)
                ok: agent config (./.oxydra/agent.toml)
                ok: model `claude-haiku-4-5` on provider `anthropic` (catalog anthropic, context 200000, output 64000 tokens, $1.0/$5.0 per 1M tokens)
                configuration is valid

                """)
        #expect(result.standardError.isEmpty)
    }

    @Test func checkWarnsAboutAMissingKeyAndSaysHowToSetOne() async throws {
        let project = try Project()
        defer { project.directory.remove() }
        let result = try await project.run(["config", "check"])
        #expect(result.exitCode == 0)
        #expect(
            result.standardOutput.contains(
                "warning: no API key for provider `openai`: set `api_key` in [providers.registry.openai], "
                    + "or export one of OPENAI_API_KEY, API_KEY"))
    }

    @Test func checkListsEveryProblemAndFails() async throws {
        let project = try Project(
            agent: """
                [runtime]
                max_turn = 3
                [memory.retrieval]
                vector_weight = 0.6
                [selection]
                model = "gpt-4o-mni"
                """)
        defer { project.directory.remove() }
        try project.directory.write("[resources]\nmax_vcpus = 0\n", to: ".oxydra/users/alice.toml")
        let result = try await project.run(
            ["config", "check", "--set", "reliability.max_attempts=0"],
            extraEnvironment: ["OXYDRA__RUNTIME__TURN_TIMEOUT_SECS": "-1"])
        #expect(result.exitCode == 1)
        #expect(
            result.standardError == """
                error: resources.max_vcpus must be greater than 0 (got 0) in ./.oxydra/users/alice.toml
                error: reliability.max_attempts must be greater than 0 (got 0) in --set reliability.max_attempts
                error: unknown key runtime.max_turn in ./.oxydra/agent.toml; did you mean `runtime.max_turns`?
                error: runtime.turn_timeout_secs must be greater than 0 (got -1) in env OXYDRA__RUNTIME__TURN_TIMEOUT_SECS
                error: memory.retrieval weights must sum to 1.0 (vector_weight 0.6 + fts_weight 0.3 = 0.9) in ./.oxydra/agent.toml
                5 configuration problems found

                """)
    }

    @Test func checkRejectsUnknownModelsWithSuggestions() async throws {
        let project = try Project(agent: "[selection]\nmodel = \"gpt-4o-mni\"\n")
        defer { project.directory.remove() }
        let result = try await project.run(["config", "check"], extraEnvironment: ["OPENAI_API_KEY": "k"])
        #expect(result.exitCode == 1)
        #expect(
            result.standardError.hasPrefix(
                "error: unknown model `gpt-4o-mni` for catalog provider `openai`; did you mean `gpt-4o-mini`"))
    }

    @Test func showSourcesNamesEveryLayerAndRedactsSecrets() async throws {
        let project = try Project(
            agent: """
                [selection]
                model = "gpt-4.1"
                [runtime]
                max_turns = 13
                """)
        defer { project.directory.remove() }
        try project.directory.write("[runtime]\nturn_timeout_secs = 45\nmax_turns = 11\n", to: "etc-oxydra/agent.toml")
        try project.directory.write(
            "[providers.openai]\napi_key = \"sk-file-SECRET-111\"\n[providers.openai.extra_headers]\nAuthorization = \"Bearer SECRET-222\"\nX-Title = \"Oxydra\"\n",
            to: "home/.config/oxydra/providers.toml")
        let result = try await project.run(
            ["config", "show", "--sources", "--set", "memory.enabled=true"],
            extraEnvironment: ["OXYDRA__RUNTIME__MAX_COST": "0.5", "OPENAI_API_KEY": "sk-env-SECRET-333"])
        #expect(result.exitCode == 0, "\(result.standardError)")
        let out = result.standardOutput
        let etc = "./etc-oxydra/agent.toml"
        for line in [
            "# Effective agent configuration for user alice (sandbox_tier = process)",
            "#   \(etc)", "#   ./.oxydra/agent.toml", "#   ~/.config/oxydra/agent.toml (not found)",
            "#   environment: OXYDRA__RUNTIME__MAX_COST", "#   command line: --set memory.enabled=true",
            "#   openai: openai at https://api.openai.com, key from api_key in ~/.config/oxydra/providers.toml",
            "max_cost = 0.5          # env OXYDRA__RUNTIME__MAX_COST",
            "max_turns = 13          # ./.oxydra/agent.toml",
            "turn_timeout_secs = 45  # \(etc)",
            "enabled = true                 # --set memory.enabled",
            "model = \"gpt-4.1\"    # ./.oxydra/agent.toml",
            "provider = \"openai\"  # built-in default",
            "api_key = \"********\"                 # ~/.config/oxydra/providers.toml",
            "Authorization = \"********\"  # ~/.config/oxydra/providers.toml",
            "X-Title = \"Oxydra\"          # ~/.config/oxydra/providers.toml",
        ] {
            #expect(out.contains(line + "\n"), "missing line: \(line)\n\(out)")
        }
        #expect(!out.contains("SECRET") && !result.standardError.contains("SECRET"))
    }

    @Test func showJSON() async throws {
        let project = try Project(agent: "[runtime]\nmax_turns = 13\n")
        defer { project.directory.remove() }
        let result = try await project.run(
            ["config", "show", "--json", "--sources", "--set", "providers.registry.openai.api_key=sk-cli-SECRET"])
        #expect(result.exitCode == 0, "\(result.standardError)")
        #expect(!result.standardOutput.contains("SECRET"))
        let document = try JSONValue(parsing: result.standardOutput)
        #expect(document["user_id"] == "alice")
        #expect(document["config"]?["runtime"]?["max_turns"] == 13)
        #expect(document["config"]?["providers"]?["registry"]?["openai"]?["api_key"] == "********")
        #expect(document["sources"]?["runtime.max_turns"] == "./.oxydra/agent.toml")
        #expect(document["sources"]?["providers.registry.openai.api_key"] == "--set providers.registry.openai.api_key")
        #expect(document["problems"] == [])
    }

    @Test func showNeedsAUserWhenSeveralAreConfigured() async throws {
        let project = try Project()
        defer { project.directory.remove() }
        try project.directory.write(
            "[users.alice]\nconfig_path = \".oxydra/users/alice.toml\"\n[users.bob]\nconfig_path = \".oxydra/users/alice.toml\"\n",
            to: ".oxydra/runner.toml")
        let result = try await project.run(["config", "show"])
        #expect(result.exitCode == 1)
        #expect(
            result.standardError
                == "error: multiple users configured (alice, bob); pass --user <user_id> in ./.oxydra/runner.toml\n")
        #expect(try await project.run(["config", "show", "--user", "bob"]).exitCode == 0)
    }

    @Test func startExplainsMissingConfigurationAndUnavailableTiers() async throws {
        let project = try Project()
        defer { project.directory.remove() }
        let missing = try await project.run(["--config", "nowhere.toml"])
        #expect(missing.exitCode == 1)
        #expect(
            missing.standardError.contains(
                "error: runner config not found at ./nowhere.toml; create it (see examples/config/runner.toml) or pass --config <path>"
            ))
        let noKey = try await project.run(["--insecure"])
        #expect(noKey.exitCode == 1)
        #expect(noKey.standardError.contains("runner error: no API key for provider `openai`"))
        #expect(noKey.standardError.contains("local OpenAI-compatible server"))
        try project.directory.write("[behavior]\nsandbox_tier = \"micro_vm\"\n", to: ".oxydra/users/alice.toml")
        let tier = try await project.run(["--user", "alice"], extraEnvironment: ["OPENAI_API_KEY": "k"])
        #expect(tier.exitCode == 1)
        // The tests run as root, which the micro_vm tier refuses before anything boots.
        #expect(
            tier.standardError.contains(
                geteuid() == 0
                    ? "runner error: the micro_vm tier never runs QEMU as root"
                    : "runner error: the micro VM images are not built"), "\(tier.standardError)")
    }

    /// A mount that would hand the agent the runner's own files is refused by `config check` and
    /// by `start`, naming the mount and what it overlaps.
    @Test(arguments: [
        ("shared = \"..\"", "mounts.shared", "lies inside"),
        ("shared = \"../../..\"", "mounts.shared", "contains"),
        ("tmp = \"../../users\"", "mounts.tmp", "lies inside"),
        ("vault = \"ipc/x\"", "mounts.vault", "lies inside"),
        ("shared = \"/\"", "mounts.shared", "contains"),
    ])
    func mountsOverlappingOxydraFilesAreRefused(mount: String, key: String, relation: String) async throws {
        let project = try Project(agent: "[providers.openai]\napi_key = \"sk-test\"\n")
        defer { project.directory.remove() }
        try project.directory.write("[mounts]\n\(mount)\n", to: ".oxydra/users/alice.toml")
        let check = try await project.run(["config", "check"])
        #expect(check.exitCode == 1)
        #expect(check.standardError.contains("\(key) of user `alice`"), "\(check.standardError)")
        #expect(check.standardError.contains(relation), "\(check.standardError)")
        #expect(check.standardError.contains("the agent must never reach it"))
        let start = try await project.run(["--insecure"])
        #expect(start.exitCode == 1)
        #expect(start.standardError.contains("\(key) of user `alice`"))
        #expect(!FileManager.default.fileExists(atPath: project.workspace + "/ipc/gateway-endpoint"))

        // A directory beside the configuration is fine.
        _ = try project.directory.createDirectory("project-files")
        try project.directory.write(
            "[mounts]\nshared = \"\(project.root)/project-files\"\n", to: ".oxydra/users/alice.toml")
        let fine = try await project.run(["config", "check"])
        #expect(fine.exitCode == 0, "\(fine.standardError)")
    }

    @Test func guestRejectsInvalidUserIDs() async throws {
        let project = try Project()
        defer { project.directory.remove() }
        let result = try await project.run("oxydra-vm", ["--user-id", "../x", "--workspace-root", project.root])
        #expect(result.exitCode != 0)
        #expect(result.standardError.contains("invalid user id `../x`: it contains a path separator"))
    }
}
