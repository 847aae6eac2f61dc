import HTTPTypes
import Hummingbird
import OxydraConfig
import OxydraCore
import OxydraProviders
import OxydraRunner

/// The first run: no usable provider yet → say how to get one, try it with one request, save it.
///
/// - `GET /api/v1/onboarding` — `{needs_setup, provider, model, message, variables, key_file}`.
/// - `POST /api/v1/onboarding/test` `{kind, model, api_key?, base_url?, name?}` — one small
///   request through the same provider code the guest uses; `{ok, message, reply?}`.
/// - `POST /api/v1/onboarding/save` (same body) — the key (when given) and the entry go to the
///   project's `providers.toml` (mode 0600), the selection to its `agent.toml`, checked together.
///
/// `kind` is `openai`, `anthropic`, `gemini` (their own APIs) or `openai_compatible` (a local or
/// self-hosted server: Ollama, llama.cpp, vLLM, LM Studio; saved as `providers.registry.<name>`,
/// default `local`, with catalog validation skipped).
struct WebOnboarding: Sendable {
    let settings: WebServer.Settings

    var editing: ConfigEditing { ConfigEditing(context: settings.context) }

    func status() -> JSONValue {
        let loaded = editing.effectiveAgent()
        let config = loaded.config
        let keyFile = editing.document("agent/project/providers.toml")?.displayPath ?? "./.oxydra/providers.toml"
        var reply: [String: JSONValue] = [
            "provider": .string(config.selection.provider), "model": .string(config.selection.model),
            "key_file": .string(keyFile), "needs_setup": false,
        ]
        guard let (name, entry, type) = config.selectedProvider else {
            reply["needs_setup"] = true
            reply["message"] = .string(
                "selection.provider `\(config.selection.provider)` is not in providers.registry; choose a provider below"
            )
            return .object(reply)
        }
        do {
            _ = try CredentialResolver.require(
                name, entry: entry, type: type, environment: settings.context.environment,
                keySource: loaded.source(of: ["providers", "registry", name, "api_key"]))
        } catch {
            reply["needs_setup"] = true
            reply["variables"] = .array(
                CredentialResolver.variables(for: entry, type: type).map(JSONValue.string))
            reply["message"] = .string(
                "\(error). Either set the variable in the environment `runner web` and `runner start` run in, "
                    + "paste a key below (saved to \(keyFile), readable only by you), or point at a local "
                    + "OpenAI-compatible server (Ollama, llama.cpp, vLLM), which needs no key.")
        }
        return .object(reply)
    }

    struct Choice {
        var name: String
        var entry: ProviderEntry
        var model: String
        var apiKey: String?
        var isCompatible: Bool
    }

    /// The provider `body` describes, built on `registry` (the effective one: built-in entries keep
    /// their endpoints).
    func choice(_ body: JSONValue, registry: [String: ProviderEntry]) throws -> Choice {
        guard let kind = body["kind"]?.stringValue else {
            throw HTTPError(.badRequest, message: "`kind` is required: openai, anthropic, gemini or openai_compatible")
        }
        guard let model = body["model"]?.stringValue?.trimmed, !model.isEmpty else {
            throw HTTPError(.badRequest, message: "`model` is required (for example gpt-4o-mini)")
        }
        let key = body["api_key"]?.stringValue?.trimmed
        let apiKey = key?.isEmpty == false ? key : nil
        switch kind {
        case "openai", "anthropic", "gemini":
            let type = ProviderType(rawValue: kind)!
            var entry = registry[kind] ?? ProviderEntry(type: type)
            if let apiKey { entry.apiKey = apiKey }
            return Choice(name: kind, entry: entry, model: model, apiKey: apiKey, isCompatible: false)
        case "openai_compatible":
            guard let url = body["base_url"]?.stringValue?.trimmed, !url.isEmpty else {
                throw HTTPError(.badRequest, message: "`base_url` is required (for example http://127.0.0.1:11434)")
            }
            if let problem = ConfigCheck<String?>.httpURLWhenSet.problem(url) {
                throw HTTPError(.unprocessableContent, message: "base_url \(problem)")
            }
            let name = body["name"]?.stringValue?.trimmed ?? "local"
            guard !name.isEmpty, name == ConfigPath.renderKey(name) else {
                throw HTTPError(.badRequest, message: "`name` must be letters, digits, - and _")
            }
            var entry = ProviderEntry(type: .openai, baseURL: url)
            entry.skipCatalogValidation = true
            if let apiKey { entry.apiKey = apiKey }
            return Choice(name: name, entry: entry, model: model, apiKey: apiKey, isCompatible: true)
        default:
            throw HTTPError(
                .badRequest, message: "unknown kind `\(kind)`; use openai, anthropic, gemini or openai_compatible")
        }
    }

    /// One request, at most 30 s, through the provider code the guest uses.
    func test(_ body: JSONValue) async throws -> Response {
        var config = editing.effectiveAgent().config
        let choice = try choice(body, registry: config.providers.registry)
        config.runtime.turnTimeoutSecs = 30
        config.providers.registry[choice.name] = choice.entry
        let reply: JSONValue
        do {
            let catalog = try CatalogLoader.load(
                paths: settings.context.agentLoader.paths, display: settings.context.display
            ).catalog
            let provider = try ProviderFactory.make(
                name: choice.name, entry: choice.entry, config: config, catalog: catalog,
                environment: settings.context.environment)
            _ = try provider.capabilities(for: ModelID(choice.model))
            let response = try await provider.complete(
                ModelRequest(
                    model: ModelID(choice.model), messages: [.user("Reply with the single word: OK")],
                    maxOutputTokens: 16))
            let text = String((response.message.content ?? "").prefix(200))
            reply = [
                "ok": true, "reply": .string(text),
                "message": .string("\(choice.name) answered with \(choice.model): \(text)"),
            ]
        } catch {
            reply = ["ok": false, "message": .string("\(error)")]
        }
        return WebAPI.reply(reply)
    }

    func save(_ body: JSONValue) throws -> Response {
        let choice = try choice(body, registry: editing.effectiveAgent().config.providers.registry)
        guard let providers = editing.document("agent/project/providers.toml"),
            let agent = editing.document("agent/project/agent.toml")
        else { throw HTTPError(.internalServerError, message: "no project configuration directory") }
        let entry = ["providers", "registry", choice.name]
        var providerChanges: [ConfigChange] = []
        if choice.isCompatible {
            providerChanges += [
                ConfigChange(path: entry + ["provider_type"], value: .string("openai")),
                ConfigChange(path: entry + ["base_url"], value: .string(choice.entry.baseURL ?? "")),
                ConfigChange(path: entry + ["skip_catalog_validation"], value: .bool(true)),
            ]
        }
        if let key = choice.apiKey {
            providerChanges.append(ConfigChange(path: entry + ["api_key"], value: .string(key)))
        }
        let selection = [
            ConfigChange(path: ["selection", "provider"], value: .string(choice.name)),
            ConfigChange(path: ["selection", "model"], value: .string(choice.model)),
        ]
        let results: [ConfigSaveResult]
        do {
            results = try editing.save(
                [(providers, providerChanges, nil), (agent, selection, nil)], dryRun: false)
        } catch {
            throw HTTPError(.unprocessableContent, message: "\(error)")
        }
        let errors = results.flatMap(\.errors)
        guard errors.isEmpty else { return WebConfigAPI.invalid(errors, warnings: results.flatMap(\.warnings)) }
        return WebAPI.reply([
            "written": .array(
                zip([providers, agent], results).filter { $0.1.written }.map { .string($0.0.displayPath) }),
            "provider": .string(choice.name), "model": .string(choice.model),
        ])
    }
}
