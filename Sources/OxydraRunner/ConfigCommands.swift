import OxydraConfig
import OxydraCore

/// `runner config check` and `runner config show`: how users debug their configuration.
public enum ConfigCommands {
    /// Validates `runner.toml`, the user files, the layered agent config, the model catalog and the
    /// selected model. Exit code 1 with every problem listed when anything is wrong.
    public static func check(_ context: RunnerContext) -> CommandOutput {
        var out: [String] = []
        var errors: [String] = []
        var warnings: [String] = []
        let display = context.display

        let runner = RunnerConfigLoader.load(path: context.configPath, display: display)
        errors += runner.issues.map(\.description)
        if runner.issues.isEmpty { out.append("ok: \(runner.displayPath) (\(runner.config.users.count) user(s))") }

        var users: [UserID] = []
        if runner.issues.isEmpty || !runner.config.users.isEmpty {
            if let requested = context.requestedUser {
                do { users = [try runner.selectUser(requested)] } catch { errors += error.issues.map(\.description) }
            } else {
                users = runner.config.users.keys.sorted().compactMap { try? UserID.validated($0) }
            }
        }
        let protected = MountSafety.protectedPaths(context: context, runner: runner)
        for user in users {
            let loaded = RunnerConfigLoader.loadUser(user, of: runner, display: display)
            errors += loaded.issues.map(\.description)
            let mountProblems = MountSafety.problems(
                user: user, mounts: loaded.config.mounts,
                workspace: UserTarget.workspacePath(of: user, in: runner), protected: protected,
                display: display)
            errors += mountProblems
            if loaded.issues.isEmpty && mountProblems.isEmpty {
                let tier = loaded.config.behavior.sandboxTier ?? runner.config.defaultTier
                let basis = runner.userConfigLocation(user).map { "; config_path relative to \($0.basis)" } ?? ""
                out.append("ok: \(loaded.displayPath) (user \(user), sandbox_tier = \(tier.rawValue)\(basis))")
            }
        }

        let agent = context.agentLoader.load()
        errors += agent.issues.map(\.description)
        let found = agent.files.filter(\.found).map(\.displayPath)
        if agent.issues.isEmpty {
            let files = found.isEmpty ? "built-in defaults only" : found.joined(separator: ", ")
            let env =
                agent.environmentVariables.isEmpty ? "" : ", \(agent.environmentVariables.count) OXYDRA__ override(s)"
            out.append("ok: agent config (\(files)\(env))")
            do {
                let (catalog, catalogFiles) = try CatalogLoader.load(paths: context.agentLoader.paths, display: display)
                if !catalogFiles.isEmpty { out.append("ok: model catalog (\(catalogFiles.joined(separator: ", ")))") }
                let model = try ModelSelection.resolve(agent.config, catalog: catalog)
                out.append("ok: model \(Describe.model(model, provider: agent.config.selection.provider))")
                for (index, fallback) in agent.config.selection.fallbacks.enumerated() {
                    var copy = agent.config
                    copy.selection.provider = fallback.provider
                    copy.selection.model = fallback.model
                    do {
                        let resolved = try ModelSelection.resolve(copy, catalog: catalog)
                        if let (name, entry, type) = copy.selectedProvider {
                            _ = try CredentialResolver.require(
                                name, entry: entry, type: type, environment: context.environment,
                                keySource: agent.source(of: ["providers", "registry", name, "api_key"]))
                        }
                        out.append("ok: fallback \(index + 1) \(Describe.model(resolved, provider: fallback.provider))")
                    } catch {
                        errors.append(
                            "selection.fallbacks[\(index)] (\(fallback.provider)/\(fallback.model)): \(error)")
                    }
                }
            } catch let error as CatalogError {
                errors.append(error.description)
            } catch {
                errors.append("\(error) (selection.model in \(agent.source(of: ["selection", "model"])))")
            }
            if let (name, entry, type) = agent.config.selectedProvider {
                let keySource = agent.source(of: ["providers", "registry", name, "api_key"])
                do {
                    _ = try CredentialResolver.require(
                        name, entry: entry, type: type, environment: context.environment, keySource: keySource)
                } catch {
                    warnings.append("\(error)")
                }
            }
        }

        var stdout = out.joined(separator: "\n")
        if !warnings.isEmpty {
            stdout += (stdout.isEmpty ? "" : "\n") + warnings.map { "warning: \($0)" }.joined(separator: "\n")
        }
        if errors.isEmpty {
            return CommandOutput(standardOutput: stdout + "\nconfiguration is valid\n", exitCode: 0)
        }
        let stderr =
            errors.map { "error: \($0)" }.joined(separator: "\n")
            + "\n\(errors.count) configuration problem\(errors.count == 1 ? "" : "s") found\n"
        return CommandOutput(standardOutput: stdout.isEmpty ? "" : stdout + "\n", standardError: stderr, exitCode: 1)
    }

    /// Prints the effective agent configuration for the chosen user, secrets redacted; with
    /// `sources`, the layer each value came from.
    public static func show(_ context: RunnerContext, sources: Bool, json: Bool) -> CommandOutput {
        let display = context.display
        let runner = RunnerConfigLoader.load(path: context.configPath, display: display)
        guard runner.issues.isEmpty else { return failure(runner.issues.map(\.description)) }
        let user: UserID
        do { user = try runner.selectUser(context.requestedUser) } catch {
            return failure(error.issues.map(\.description))
        }
        let userConfig = RunnerConfigLoader.loadUser(user, of: runner, display: display)

        let agent = context.agentLoader.load()
        let effective = ConfigRendering.annotate(
            agent.config.encode() ?? .table(source: .builtInDefault), from: agent.tree)
        let credentials = credentialLines(agent.config, agent: agent, environment: context.environment)
        let tier = userConfig.config.behavior.sandboxTier ?? runner.config.defaultTier
        let problems = (userConfig.issues + agent.issues).map(\.description)

        let stdout: String
        if json {
            var document: [String: JSONValue] = [
                "user_id": .string(user.rawValue),
                "runner_config": .string(runner.displayPath),
                "user_config": .string(userConfig.displayPath),
                "sandbox_tier": .string(tier.rawValue),
                "files": .array(
                    agent.files.map { .object(["path": .string($0.displayPath), "found": .bool($0.found)]) }),
                "environment_overrides": .array(agent.environmentVariables.map(JSONValue.string)),
                "config": ConfigRendering.json(effective),
                "credentials": .object(credentials.mapValues(JSONValue.string)),
                "problems": .array(problems.map(JSONValue.string)),
            ]
            if sources {
                document["sources"] = .object(ConfigRendering.sourceMap(effective).mapValues(JSONValue.string))
            }
            stdout = JSONValue.object(document).prettyText + "\n"
        } else {
            var header = [
                "# Effective agent configuration for user \(user) (sandbox_tier = \(tier.rawValue))",
                "# runner config: \(runner.displayPath)",
                "# user config:   \(userConfig.displayPath)",
                "# layers, lowest precedence first:",
                "#   built-in defaults",
            ]
            for file in agent.files { header.append("#   \(file.displayPath)\(file.found ? "" : " (not found)")") }
            header.append(
                "#   environment: "
                    + (agent.environmentVariables.isEmpty
                        ? "(no OXYDRA__ variables)" : agent.environmentVariables.joined(separator: ", ")))
            header.append(
                "#   command line: "
                    + (context.overrides.isEmpty
                        ? "(no --set)"
                        : context.overrides.map { "--set \(ConfigRendering.maskAssignment($0))" }.joined(separator: " "))
            )
            header.append("# credentials:")
            for name in credentials.keys.sorted() { header.append("#   \(name): \(credentials[name]!)") }
            stdout = header.joined(separator: "\n") + "\n\n" + ConfigRendering.toml(effective, sources: sources)
        }
        if problems.isEmpty { return CommandOutput(standardOutput: stdout) }
        return CommandOutput(
            standardOutput: stdout,
            standardError: problems.map { "error: \($0)" }.joined(separator: "\n")
                + "\n\(problems.count) configuration problem\(problems.count == 1 ? "" : "s") found\n",
            exitCode: 1)
    }

    private static func failure(_ messages: [String]) -> CommandOutput {
        CommandOutput(standardError: messages.map { "error: \($0)" }.joined(separator: "\n") + "\n", exitCode: 1)
    }

    /// Where each registry entry's key comes from, or what to set; never the key.
    static func credentialLines(_ config: AgentConfig, agent: LoadedAgentConfig, environment: [String: String])
        -> [String: String]
    {
        var lines: [String: String] = [:]
        for (name, entry) in config.providers.registry {
            guard let type = entry.providerType else {
                lines[name] = "provider_type missing"
                continue
            }
            let endpoint = entry.normalizedBaseURL(for: type)
            let keySource = agent.source(of: ["providers", "registry", name, "api_key"])
            if let credential = CredentialResolver.resolve(
                entry, type: type, environment: environment, keySource: keySource)
            {
                lines[name] = "\(type.rawValue) at \(endpoint), key from \(credential.origin)"
            } else if !CredentialResolver.requiresKey(entry, type: type) {
                lines[name] = "\(type.rawValue) at \(endpoint), no key needed (local server)"
            } else {
                let variables = CredentialResolver.variables(for: entry, type: type)
                lines[name] =
                    "\(type.rawValue) at \(endpoint), no key (set one of \(variables.joined(separator: ", ")))"
            }
        }
        return lines
    }
}

/// One-line descriptions for command output.
enum Describe {
    static func model(_ model: ModelDescriptor, provider: String) -> String {
        var text = "`\(model.id)` on provider `\(provider)`"
        if model.isSynthetic {
            text += " (not in the catalog; admitted by skip_catalog_validation"
        } else {
            text += " (catalog \(model.provider)"
        }
        text += ", context \(model.capabilities.contextTokens), output \(model.capabilities.outputTokens) tokens"
        if let pricing = model.pricing {
            text +=
                ", $\(ConfigValue.render(pricing.inputPerMillion))/$\(ConfigValue.render(pricing.outputPerMillion)) per 1M tokens"
        }
        if model.deprecated { text += ", deprecated" }
        return text + ")"
    }

    /// `1234 tokens in · 56 out · <$0.01 · 1.8 s · 2 provider calls`.
    static func completion(_ completion: TurnCompletion) -> String {
        var parts: [String] = []
        if let usage = completion.usage {
            if let prompt = usage.promptTokens { parts.append("\(prompt) token\(prompt == 1 ? "" : "s") in") }
            if let output = usage.completionTokens { parts.append("\(output) out") }
        }
        if let cost = completion.costUSD { parts.append(Money.display(cost)) }
        let tenths = (completion.durationMilliseconds + 50) / 100
        parts.append("\(tenths / 10).\(tenths % 10) s")
        parts.append("\(completion.providerCalls) provider call\(completion.providerCalls == 1 ? "" : "s")")
        return parts.joined(separator: " · ")
    }
}
