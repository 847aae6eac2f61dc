extension AgentConfig {
    /// Keys that exist only as aliases: `[providers.<builtin>]` → `[providers.registry.<builtin>]`.
    public static let providerAliasNames = ProvidersConfig.builtInNames

    /// Rewrites the seed's `[providers.openai]`-style tables of one layer into the registry form.
    /// A key set in both spellings within the same layer is reported.
    public static func canonicalizingProviderAliases(_ layer: ConfigNode, diagnostics: ConfigDiagnostics)
        -> ConfigNode
    {
        var result = layer
        for name in providerAliasNames {
            guard let alias = result.remove(at: ["providers", name]) else { continue }
            guard case .table(let entries) = alias.value else {
                diagnostics.typeMismatch(["providers", name], expectation: "a table", got: alias)
                continue
            }
            for key in entries.keys.sorted() {
                let target = ["providers", "registry", name, key]
                if result.node(at: target) != nil {
                    diagnostics.report(
                        ["providers", name, key],
                        "providers.\(name).\(ConfigPath.renderKey(key)) and \(ConfigPath.render(target)) are both set; "
                            + "keep one",
                        source: entries[key]!.source)
                    continue
                }
                result.set(entries[key]!, at: target)
            }
        }
        return result
    }

    /// Rules that involve more than one key, and registry completeness. Single-key rules are checked
    /// while decoding. A rule spanning keys from several layers names the highest one.
    public func validate(_ diagnostics: ConfigDiagnostics) {

        for (name, entry) in providers.registry.sorted(by: { $0.key < $1.key }) where entry.providerType == nil {
            let path = ["providers", "registry", name]
            // An invalid provider_type was reported while decoding; say it once.
            if diagnostics.root.node(at: path + ["provider_type"]) != nil { continue }
            diagnostics.report(
                path + ["provider_type"],
                "\(ConfigPath.render(path + ["provider_type"])) is required; use one of "
                    + ProviderType.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "),
                source: diagnostics.source(of: path))
        }

        // The selected provider and every fallback's must be in the registry.
        let named =
            [(["selection", "provider"], "selection.provider", selection.provider)]
            + selection.fallbacks.enumerated().map { index, fallback in
                (["selection", "fallbacks"], "selection.fallbacks[\(index)].provider", fallback.provider)
            }
        for (path, label, name) in named where !name.isEmpty && providers.registry[name] == nil {
            let known = providers.registry.keys.sorted()
            diagnostics.report(
                path,
                "\(label) \(ConfigPath.quoted(name)) is not a configured provider (known: \(known.joined(separator: ", ")))",
                source: diagnostics.source(of: path),
                hint: Suggestions.question(Suggestions.closest(to: name, in: known, limit: 1))
                    ?? "add [providers.registry.\(ConfigPath.renderKey(name))] with a provider_type")
        }

        if reliability.backoffBaseMs > reliability.backoffMaxMs {
            diagnostics.report(
                ["reliability"],
                "reliability.backoff_base_ms (\(reliability.backoffBaseMs)) must not exceed "
                    + "reliability.backoff_max_ms (\(reliability.backoffMaxMs))",
                source: diagnostics.source(
                    ofAny: [["reliability", "backoff_base_ms"], ["reliability", "backoff_max_ms"]]))
        }

        let weights = memory.retrieval.vectorWeight + memory.retrieval.ftsWeight
        if abs(weights - 1.0) > 1e-6 {
            diagnostics.report(
                ["memory", "retrieval"],
                "memory.retrieval weights must sum to 1.0 (vector_weight \(ConfigValue.render(memory.retrieval.vectorWeight))"
                    + " + fts_weight \(ConfigValue.render(memory.retrieval.ftsWeight)) = \(Self.roundedSum(weights)))",
                source: diagnostics.source(
                    ofAny: [["memory", "retrieval", "vector_weight"], ["memory", "retrieval", "fts_weight"]]))
        }

        if memory.embedder == .model2vec && memory.model2vecPath == nil {
            diagnostics.report(
                ["memory", "model2vec_path"], "memory.model2vec_path is required when memory.embedder = \"model2vec\"",
                source: diagnostics.source(of: ["memory", "embedder"]),
                hint:
                    "point it at a directory with tokenizer.json and model.safetensors (e.g. minishlab/potion-base-8M)")
        }

        if let bind = GatewayBind.parse(gateway.bind).bind, !bind.isLoopback, gateway.authTokenEnv == nil {
            diagnostics.report(
                ["gateway", "auth_token_env"],
                "gateway.auth_token_env is required when gateway.bind (\(gateway.bind)) is not a loopback address",
                source: diagnostics.source(of: ["gateway", "bind"]),
                hint: "set gateway.auth_token_env = \"OXYDRA_GATEWAY_TOKEN\" and export a long random token in it")
        }

        let remote = memory.remoteURL?.trimmed ?? ""
        let token = memory.authToken?.trimmed ?? ""
        // The guest would refuse to start on it: say so at `config check` (a later issue builds it).
        if !remote.isEmpty {
            diagnostics.report(
                ["memory", "remote_url"],
                "memory.remote_url is not supported yet (no remote memory store in this build); remove it to use "
                    + "the local database at memory.db_path",
                source: diagnostics.source(of: ["memory", "remote_url"]))
        }
        if memory.enabled && !remote.isEmpty && token.isEmpty {
            diagnostics.report(
                ["memory", "auth_token"],
                "memory.auth_token is required when memory.enabled = true and memory.remote_url is set",
                source: diagnostics.source(
                    ofAny: [["memory", "enabled"], ["memory", "remote_url"]]))
        }
    }

    /// The sum printed to at most 6 decimals (`0.9`, not `0.8999999999999999`).
    static func roundedSum(_ value: Double) -> String {
        let rounded = (value * 1_000_000).rounded() / 1_000_000
        return ConfigValue.render(rounded)
    }

    /// The registry entry chosen by `selection.provider` with its type (validated configs only).
    public var selectedProvider: (name: String, entry: ProviderEntry, type: ProviderType)? {
        guard let entry = providers.registry[selection.provider], let type = entry.providerType else { return nil }
        return (selection.provider, entry, type)
    }
}
