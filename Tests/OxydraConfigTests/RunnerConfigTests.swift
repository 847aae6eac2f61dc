import OxydraConfig
import OxydraCore
import OxydraTesting
import Testing

/// The package root, found from this file's location (examples live there).
let packageRoot: String = {
    var path = #filePath
    for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
    return path
}()

@Suite("Runner and user config")
struct RunnerConfigTests {
    private func layout(_ runner: String, user: String? = nil) throws -> (
        TemporaryDirectory, LoadedRunnerConfig, DisplayPath
    ) {
        let directory = try TemporaryDirectory(prefix: "oxydra-runner")
        try directory.write(runner, to: ".oxydra/runner.toml")
        if let user { try directory.write(user, to: ".oxydra/users/alice.toml") }
        let display = DisplayPath(workingDirectory: directory.path, homeDirectory: nil)
        return (directory, RunnerConfigLoader.load(path: ".oxydra/runner.toml", display: display), display)
    }

    @Test func seedQuickStartResolvesFromTheProjectRoot() throws {
        let (directory, runner, display) = try layout(SeedConfig.runnerTOML, user: SeedConfig.aliceTOML)
        defer { directory.remove() }
        #expect(runner.issues.isEmpty, "\(runner.issues)")
        #expect(runner.baseDirectory == directory.path)
        #expect(runner.workspaceRoot == directory.path + "/.oxydra/workspaces")
        #expect(runner.config.defaultTier == .process)
        let user = try runner.selectUser(nil)
        #expect(runner.userConfigPath(user) == directory.path + "/.oxydra/users/alice.toml")
        let loaded = RunnerConfigLoader.loadUser(user, of: runner, display: display)
        #expect(loaded.issues.isEmpty, "\(loaded.issues)")
        #expect(loaded.config.behavior.sandboxTier == .process)
        #expect(loaded.config.behavior.shellEnabled == false)
    }

    @Test func filesOutsideAnOxydraDirectoryResolveFromTheirOwnDirectory() throws {
        let directory = try TemporaryDirectory(prefix: "oxydra-runner")
        defer { directory.remove() }
        try directory.write(
            "workspace_root = \"ws\"\n[users.bob]\nconfig_path = \"users/bob.toml\"", to: "etc/runner.toml")
        let runner = RunnerConfigLoader.load(
            path: directory.path + "/etc/runner.toml", display: DisplayPath(workingDirectory: "/", homeDirectory: nil))
        #expect(runner.workspaceRoot == directory.path + "/etc/ws")
        #expect(runner.userConfigPath("bob") == directory.path + "/etc/users/bob.toml")
    }

    @Test func runnerDefaults() throws {
        let (directory, runner, _) = try layout("[users.alice]\nconfig_path = \"/abs/alice.toml\"")
        defer { directory.remove() }
        #expect(runner.issues.isEmpty)
        #expect(runner.config.workspaceRoot == ".oxydra/workspaces")
        #expect(runner.config.defaultTier == .microVM)
        #expect(runner.config.guestImages.oxydraVM == "oxydra-vm:latest")
        #expect(runner.config.guestImages.shellVM == "shell-vm:latest")
        #expect(runner.userConfigPath("alice") == "/abs/alice.toml")
        #expect(runner.config.runner == Supervision())
        #expect(runner.config.runner.restart == .onFailure && runner.config.runner.maxRestarts == 5)
        #expect(runner.config.runner.restartWindowSecs == 600)
    }

    @Test(arguments: [
        (
            "default_tier = \"vm\"",
            "default_tier must be one of \"process\", \"container\", \"micro_vm\", got \"vm\" in ./.oxydra/runner.toml"
        ),
        ("workspace_root = \"\"", "workspace_root must not be empty (got \"\") in ./.oxydra/runner.toml"),
        (
            "[guest_images]\noxydra_vm = \" \"",
            "guest_images.oxydra_vm must not be empty (got \" \") in ./.oxydra/runner.toml"
        ),
        ("[users.alice]", "users.alice.config_path is required in ./.oxydra/runner.toml"),
        (
            "[runner]\nrestart = \"always\"",
            "runner.restart must be one of \"on-failure\", \"no\", got \"always\" in ./.oxydra/runner.toml"
        ),
        ("[runner]\nmax_restarts = 0", "runner.max_restarts must be greater than 0 (got 0) in ./.oxydra/runner.toml"),
        (
            "[users.\"a/b\"]\nconfig_path = \"x.toml\"",
            "[users.\"a/b\"]: invalid user id `a/b`: it contains a path separator; use letters, digits, `-` or `_` in ./.oxydra/runner.toml"
        ),
        (
            "[users.\"..\"]\nconfig_path = \"x.toml\"",
            "[users.\"..\"]: invalid user id `..`: it contains `..` or is `.`; use letters, digits, `-` or `_` in ./.oxydra/runner.toml"
        ),
        ("[user.alice]\nconfig_path = \"x\"", "unknown key user in ./.oxydra/runner.toml; did you mean `users`?"),
        (
            "config_version = \"3\"",
            "config_version \"3\" is not supported; this Oxydra reads config version 1.x (e.g. \"1.0.0\") in ./.oxydra/runner.toml"
        ),
    ])
    func runnerRules(_ toml: String, _ message: String) throws {
        let (directory, runner, _) = try layout(toml)
        defer { directory.remove() }
        #expect(runner.issues.map(\.description) == [message])
    }

    @Test(arguments: [
        (
            "[resources]\nmax_vcpus = 0",
            "resources.max_vcpus must be greater than 0 (got 0) in ./.oxydra/users/alice.toml"
        ),
        (
            "[resources]\nmax_memory_mib = -5",
            "resources.max_memory_mib must be greater than 0 (got -5) in ./.oxydra/users/alice.toml"
        ),
        (
            "[resources]\nmax_processes = 0",
            "resources.max_processes must be greater than 0 (got 0) in ./.oxydra/users/alice.toml"
        ),
        (
            "[credential_refs]\ngithub = \"vault:x\"",
            "credential_refs is not supported yet: nothing delivers referenced secrets to a guest in this build; remove the [credential_refs] table (provider keys come from agent.toml or environment variables) in ./.oxydra/users/alice.toml"
        ),
        (
            "[behavior]\nbrowser_enabled = true",
            "behavior.browser_enabled = true is not supported yet: this build has no browser tool; remove it or set it to false in ./.oxydra/users/alice.toml"
        ),
        (
            "[channels.telegram]\nenabled = true\nbot_token_env = \"bot token\"\nallowed_user_ids = [42]",
            "channels.telegram.bot_token_env must be an environment variable name (letters, digits and _) (got \"bot token\") in ./.oxydra/users/alice.toml"
        ),
        (
            "[channels.telegram]\nsession_mode = \"per-chat\"",
            "channels.telegram.session_mode must be one of \"per_chat\", \"shared\", got \"per-chat\" in ./.oxydra/users/alice.toml; did you mean `per_chat`?"
        ),
        (
            "[behavior]\nsandbox_tier = \"procss\"",
            "behavior.sandbox_tier must be one of \"process\", \"container\", \"micro_vm\", got \"procss\" in ./.oxydra/users/alice.toml; did you mean `process`?"
        ),
        (
            "[behavior]\nshell_enabled = \"no\"",
            "behavior.shell_enabled must be a boolean (true or false), got a string \"no\" in ./.oxydra/users/alice.toml"
        ),
        ("[mounts]\nshared = \"\"", "mounts.shared must not be empty (got \"\") in ./.oxydra/users/alice.toml"),
        (
            "[behaviour]\nshell_enabled = false",
            "unknown key behaviour in ./.oxydra/users/alice.toml; did you mean `behavior`?"
        ),
    ])
    func userRules(_ toml: String, _ message: String) throws {
        let (directory, runner, display) = try layout(
            "[users.alice]\nconfig_path = \".oxydra/users/alice.toml\"", user: toml)
        defer { directory.remove() }
        let loaded = RunnerConfigLoader.loadUser("alice", of: runner, display: display)
        #expect(loaded.issues.map(\.description) == [message])
    }

    @Test func anEnabledBotWithoutTokenOrSendersGetsEveryProblemAtOnce() throws {
        let (directory, runner, display) = try layout(
            "[users.alice]\nconfig_path = \".oxydra/users/alice.toml\"", user: "[channels.telegram]\nenabled = true")
        defer { directory.remove() }
        let loaded = RunnerConfigLoader.loadUser("alice", of: runner, display: display)
        #expect(
            loaded.issues.map(\.description) == [
                "channels.telegram.bot_token_env is required when the bot is enabled: name the environment variable "
                    + "that holds the token from @BotFather in ./.oxydra/users/alice.toml",
                "channels.telegram.allowed_user_ids is empty: nobody could talk to the bot; add your Telegram user id "
                    + "(a number; @userinfobot tells you yours) in ./.oxydra/users/alice.toml",
            ])
    }

    @Test func userSelection() throws {
        let (directory, runner, _) = try layout(
            "[users.alice]\nconfig_path = \"a.toml\"\n[users.bob]\nconfig_path = \"b.toml\"")
        defer { directory.remove() }
        #expect(throws: ConfigError.self) { try runner.selectUser(nil) }
        #expect {
            try runner.selectUser(nil)
        } throws: { error in
            "\(error)" == "multiple users configured (alice, bob); pass --user <user_id> in ./.oxydra/runner.toml"
        }
        #expect(try runner.selectUser("bob") == "bob")
        #expect {
            try runner.selectUser("alise")
        } throws: { error in
            "\(error)"
                == "unknown runner user `alise` (configured: alice, bob) in ./.oxydra/runner.toml; did you mean `alice`?"
        }
        #expect {
            try runner.selectUser("../etc")
        } throws: { error in
            "\(error)" == "invalid user id `../etc`: it contains a path separator; use letters, digits, `-` or `_`"
        }
        let (empty, none, _) = try layout("default_tier = \"process\"")
        defer { empty.remove() }
        #expect {
            try none.selectUser(nil)
        } throws: { error in
            "\(error)"
                == "no users are configured in runner config; add [users.<id>] with config_path in ./.oxydra/runner.toml"
        }
    }

    @Test func missingFilesSayWhatToDo() throws {
        let directory = try TemporaryDirectory(prefix: "oxydra-runner")
        defer { directory.remove() }
        let display = DisplayPath(workingDirectory: directory.path, homeDirectory: nil)
        let missing = RunnerConfigLoader.load(path: ".oxydra/runner.toml", display: display)
        #expect(
            missing.issues.map(\.description) == [
                "runner config not found at ./.oxydra/runner.toml; create it (see examples/config/runner.toml) or pass --config <path>"
            ])
        try directory.write("[users.alice]\nconfig_path = \".oxydra/users/alice.toml\"", to: ".oxydra/runner.toml")
        let runner = RunnerConfigLoader.load(path: ".oxydra/runner.toml", display: display)
        let user = RunnerConfigLoader.loadUser("alice", of: runner, display: display)
        #expect(
            user.issues.map(\.description) == [
                "config file for user `alice` not found (users.alice.config_path; tried "
                    + "./.oxydra/.oxydra/users/alice.toml (relative to the runner config's directory), "
                    + "./.oxydra/users/alice.toml (relative to the project root)) in ./.oxydra/runner.toml"
            ])
    }

    /// The seed's table (relative to the runner config's directory) and its quick start (the
    /// project-root form inside `.oxydra/`) both find the user's file; the documented rule wins.
    @Test func userFilesResolveByTheSeedsRuleThenTheProjectRoot() throws {
        let directory = try TemporaryDirectory(prefix: "oxydra-runner")
        defer { directory.remove() }
        let display = DisplayPath(workingDirectory: directory.path, homeDirectory: nil)
        try directory.write("[users.alice]\nconfig_path = \"users/alice.toml\"", to: ".oxydra/runner.toml")
        try directory.write("[behavior]\nshell_enabled = false\n", to: ".oxydra/users/alice.toml")
        var runner = RunnerConfigLoader.load(path: ".oxydra/runner.toml", display: display)
        #expect(runner.userConfigLocation("alice")?.basis == "the runner config's directory")
        #expect(RunnerConfigLoader.loadUser("alice", of: runner, display: display).issues.isEmpty)

        try directory.write("[users.alice]\nconfig_path = \".oxydra/users/alice.toml\"", to: ".oxydra/runner.toml")
        runner = RunnerConfigLoader.load(path: ".oxydra/runner.toml", display: display)
        #expect(runner.userConfigLocation("alice")?.basis == "the project root")
        #expect(RunnerConfigLoader.loadUser("alice", of: runner, display: display).issues.isEmpty)

        // Both exist: the documented rule wins.
        try directory.write("[behavior]\nshell_enabled = true\n", to: ".oxydra/.oxydra/users/alice.toml")
        runner = RunnerConfigLoader.load(path: ".oxydra/runner.toml", display: display)
        #expect(runner.userConfigLocation("alice")?.basis == "the runner config's directory")
        #expect(RunnerConfigLoader.loadUser("alice", of: runner, display: display).config.behavior.shellEnabled == true)
    }

    @Test func shippedExamplesAreValid() throws {
        let directory = try TemporaryDirectory(prefix: "oxydra-examples")
        defer { directory.remove() }
        for (source, target) in [
            ("agent.toml", ".oxydra/agent.toml"), ("runner.toml", ".oxydra/runner.toml"),
            ("runner-user.toml", ".oxydra/users/alice.toml"),
        ] {
            let data = try #require(FileManager.default.contents(atPath: "\(packageRoot)/examples/config/\(source)"))
            try directory.write(String(decoding: data, as: UTF8.self), to: target)
        }
        let display = DisplayPath(workingDirectory: directory.path, homeDirectory: nil)
        let runner = RunnerConfigLoader.load(path: ".oxydra/runner.toml", display: display)
        #expect(runner.issues.isEmpty, "\(runner.issues)")
        let user = RunnerConfigLoader.loadUser(try runner.selectUser(nil), of: runner, display: display)
        #expect(user.issues.isEmpty, "\(user.issues)")
        #expect(user.config.resources.maxVCPUs == 2)
        let agent = AgentConfigLoader.standard(
            environment: ["HOME": directory.path + "/home", "OXYDRA_SYSTEM_CONFIG_DIR": directory.path + "/etc"],
            workingDirectory: directory.path
        ).load()
        #expect(agent.issues.isEmpty, "\(agent.issues)")
        // The example spells out the defaults; loading it must not change any of them.
        var expected = AgentConfig()
        expected.providers.registry["openai"]?.baseURL = "https://api.openai.com"
        #expect(agent.config == expected)
    }
}
