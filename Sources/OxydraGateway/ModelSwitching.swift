import Logging
import OxydraCore
import OxydraRuntime

/// What a guest offers for `set_model` and `list_models`: the models of its configured providers
/// (those with a usable key, or local ones), and how to reach one.
public struct ModelSwitching: Sendable {
    public var choices: [ModelInfo]
    /// The provider and model for a registry name and a model id; throws when the provider is not
    /// configured, has no key, or does not have the model.
    public var resolve: @Sendable (_ provider: String, _ model: String) throws -> (any ModelProvider, ModelDescriptor)

    public init(
        choices: [ModelInfo],
        resolve:
            @escaping @Sendable (_ provider: String, _ model: String) throws -> (any ModelProvider, ModelDescriptor)
    ) {
        self.choices = choices
        self.resolve = resolve
    }
}

extension SessionHub {
    /// The guest's own model.
    var defaultModel: ModelInfo { Self.info(provider: runtime.provider.id.rawValue, runtime.model) }

    public static func info(provider: String, _ model: ModelDescriptor) -> ModelInfo {
        ModelInfo(
            provider: provider, model: model.id.rawValue, contextWindow: model.capabilities.contextTokens,
            images: model.capabilities.accepts(.image))
    }

    /// The runtime a session's turns use: the guest's, or the one for the model it switched to.
    func runtime(for session: LiveSession) async -> AgentRuntime {
        if !session.modelLoaded {
            session.modelLoaded = true
            session.model = try? await store.sessionModel(of: session.id)
        }
        guard let chosen = session.model else { return runtime }
        let key = chosen.provider + "\u{0}" + chosen.model
        if let known = runtimes[key] { return known }
        guard let switching else { return runtime }
        do {
            let (provider, model) = try switching.resolve(chosen.provider, chosen.model)
            let switched = runtime.switched(to: provider, model: model)
            runtimes[key] = switched
            return switched
        } catch {
            logger.warning(
                "the session's model is no longer available; using the guest's",
                metadata: [
                    "session": "\(session.id)", "model": "\(chosen.provider)/\(chosen.model)", "error": "\(error)",
                ])
            return runtime
        }
    }

    /// `list_models`.
    func listModels(requestID: String, connection: ConnectionID) async -> ServerFrame {
        guard let id = currentSession(of: connection), let session = sessions[id] else {
            return error(requestID, .protocolError, "no session: send hello first")
        }
        let current = await runtime(for: session)
        let info = Self.info(provider: current.provider.id.rawValue, current.model)
        return .modelList(requestID: requestID, current: info, models: switching?.choices ?? [defaultModel])
    }

    /// `set_model`: the session's model from its next turn (a running turn keeps its own).
    func setModel(requestID: String, provider: String?, model: String, connection: ConnectionID) async
        -> ServerFrame?
    {
        guard let id = currentSession(of: connection), let session = sessions[id] else {
            return error(requestID, .protocolError, "no session: send hello first")
        }
        guard let switching else {
            return error(
                requestID, .notFound, "this guest has one model (\(defaultModel.provider)/\(defaultModel.model))")
        }
        let current = await runtime(for: session)
        var provider = provider
        var model = model
        // `provider/model`, when the part before the slash is a provider here (model ids may hold
        // slashes of their own: `meta-llama/llama-3.1-8b` on OpenRouter).
        if provider == nil, let slash = model.firstIndex(of: "/") {
            let prefix = String(model[..<slash])
            if prefix == current.provider.id.rawValue || switching.choices.contains(where: { $0.provider == prefix }) {
                provider = prefix
                model = String(model[model.index(after: slash)...])
            }
        }
        var candidates: [String]
        if let provider {
            candidates = [provider]
        } else {
            candidates = [current.provider.id.rawValue]
            for choice in switching.choices where !candidates.contains(choice.provider) {
                candidates.append(choice.provider)
            }
        }
        var firstError: String?
        for candidate in candidates {
            do {
                let (resolvedProvider, descriptor) = try switching.resolve(candidate, model)
                let info = Self.info(provider: candidate, descriptor)
                let isDefault = info.provider == defaultModel.provider && info.model == defaultModel.model
                do {
                    try await store.setSessionModel(isDefault ? nil : (candidate, model), of: id)
                } catch {
                    return self.error(requestID, .internalError, "cannot record the session's model: \(error)")
                }
                session.model = isDefault ? nil : (candidate, model)
                session.modelLoaded = true
                if !isDefault {
                    runtimes[candidate + "\u{0}" + model] = runtime.switched(to: resolvedProvider, model: descriptor)
                }
                logger.info("session model changed", metadata: ["session": "\(id)", "model": "\(candidate)/\(model)"])
                publish(.modelChanged(requestID: requestID, session: ref(id), model: info), to: id)
                return nil
            } catch {
                firstError = firstError ?? "\(error)"
            }
        }
        let message =
            provider.map { "cannot switch to `\(model)` on `\($0)`: \(firstError ?? "unknown")" }
            ?? "no configured provider offers model `\(model)` (\(firstError ?? "")); `list_models` shows the choices"
        return error(requestID, .notFound, message)
    }
}
