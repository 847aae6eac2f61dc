import OxydraCore

/// What every concrete provider is built from.
struct ProviderSetup: Sendable {
    let id: ProviderID
    let transport: ProviderTransport
    let models: ModelResolver
}

/// Catalog lookups for one registry entry, before any network I/O.
public struct ModelResolver: Sendable {
    public let catalog: ModelCatalog
    public let catalogProvider: String
    public let skipValidation: Bool
    public let overrides: ModelOverrides

    public init(catalog: ModelCatalog, catalogProvider: String, skipValidation: Bool, overrides: ModelOverrides) {
        self.catalog = catalog
        self.catalogProvider = catalogProvider
        self.skipValidation = skipValidation
        self.overrides = overrides
    }

    public func descriptor(_ model: ModelID, provider: ProviderID) throws(ProviderError) -> ModelDescriptor {
        do {
            return try catalog.resolve(
                model, provider: catalogProvider, skipValidation: skipValidation, overrides: overrides)
        } catch {
            throw .unknownModel(provider: provider, error)
        }
    }
}

extension ProviderSetup {
    /// The model's descriptor, after checking that every attachment is a modality both the model
    /// and this wire format accept.
    func checkedDescriptor(for request: ModelRequest, transportAccepts: Set<InputModality>) throws(ProviderError)
        -> ModelDescriptor
    {
        let descriptor = try models.descriptor(request.model, provider: id)
        for message in request.messages {
            for attachment in message.attachments {
                let modality = attachment.modality
                if !descriptor.capabilities.accepts(modality) {
                    let accepted = descriptor.capabilities.inputModalities.map(\.rawValue).sorted()
                    throw .requestFailed(
                        provider: id,
                        message: "model `\(request.model)` does not accept \(modality.rawValue) input "
                            + "(`\(attachment.mimeType)`; it accepts \(accepted.joined(separator: ", ")))")
                }
                if !transportAccepts.contains(modality) {
                    throw .requestFailed(
                        provider: id,
                        message: "this provider's API cannot carry \(modality.rawValue) attachments "
                            + "(`\(attachment.mimeType)`)")
                }
            }
        }
        return descriptor
    }

    func encode(_ body: JSONValue) -> Data { WireJSON.encode(body) }

    /// A pull-based stream of `path`'s event stream; a body that cannot be built fails on first pull.
    /// A streamed request; `fallbackBody` (the same request without streaming) is sent instead when
    /// the stream ends without a single event (see ``EventStreamSource``).
    func eventStream<Translator: StreamTranslator>(
        path: String, translator: Translator, body: () throws(ProviderError) -> Data,
        fallbackBody: (@Sendable () throws(ProviderError) -> Data)? = nil
    ) -> ModelEventStream {
        let data: Data
        do {
            data = try body()
        } catch {
            return .failing(error)
        }
        let transport = self.transport
        return ModelEventStream {
            EventStreamSource(
                transport: transport, path: path, body: data, translator: translator, fallbackBody: fallbackBody)
        }
    }

    /// POSTs a non-streaming request and returns the whole response body.
    func completeBody(path: String, body: Data) async throws -> Data {
        let response = try await transport.post(path, json: body, accept: "application/json")
        return try await transport.readBody(response)
    }
}

/// A provider speaking one wire format through a ``ProviderSetup``.
protocol WireProvider: ModelProvider {
    var setup: ProviderSetup { get }
}

extension WireProvider {
    public var id: ProviderID { setup.id }

    public func capabilities(for model: ModelID) throws(ProviderError) -> ModelCapabilities {
        try setup.models.descriptor(model, provider: id).capabilities
    }
}

/// Field decoding that accepts either a JSON string or any JSON value (some OpenAI-compatible
/// servers send tool arguments as an object instead of a string).
struct FlexibleText: Decodable, Sendable {
    let text: String
    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let string = try? container.decode(String.self) {
            text = string
        } else {
            text = try container.decode(JSONValue.self).compactText
        }
    }
}
