/// Errors from reading model catalogs and looking models up.
public enum CatalogError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The model is not in the catalog of `provider`.
    case unknownModel(provider: String, model: String, suggestions: [String])
    /// No catalog lists this provider at all.
    case unknownProvider(provider: String, known: [String], suggestions: [String])
    /// A catalog file could not be read or has invalid content.
    case invalidFile(origin: String, reason: String)

    public var description: String {
        switch self {
        case .unknownModel(let provider, let model, let suggestions):
            "unknown model `\(model)` for catalog provider `\(provider)`\(Suggestions.phrase(suggestions)); "
                + "for a local or custom model set `catalog.skip_catalog_validation = true` "
                + "or add it to ./.oxydra/model_catalog.json"
        case .unknownProvider(let provider, let known, let suggestions):
            "no model catalog for provider `\(provider)` (known: \(known.joined(separator: ", ")))"
                + "\(Suggestions.phrase(suggestions)); add one in ./.oxydra/model_catalog.json "
                + "or set `catalog.skip_catalog_validation = true`"
        case .invalidFile(let origin, let reason):
            "invalid model catalog \(origin): \(reason)"
        }
    }

    /// A one-line description of a JSON decoding error with its coding path.
    static func describe(_ error: any Error) -> String { DecodingErrorDescription.describe(error) }
}

/// One-line descriptions of JSON decoding errors with their coding path (`missing key `id` at
/// providers.p.models[0]`), for messages about files and provider responses.
public enum DecodingErrorDescription {
    public static func describe(_ error: any Error) -> String {
        guard let decoding = error as? DecodingError else { return "\(error)" }
        func path(_ context: DecodingError.Context) -> String {
            let rendered = context.codingPath.map { key in
                key.intValue.map { "[\($0)]" } ?? ".\(key.stringValue)"
            }.joined()
            return rendered.isEmpty ? "top level" : String(rendered.drop(while: { $0 == "." }))
        }
        switch decoding {
        case .keyNotFound(let key, let context):
            return "missing key `\(key.stringValue)` at \(path(context))"
        case .typeMismatch(let type, let context):
            return "wrong type at \(path(context)): expected \(type)"
        case .valueNotFound(let type, let context):
            return "missing value at \(path(context)): expected \(type)"
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty {
                let detail = context.underlyingError.map { "\($0)" } ?? context.debugDescription
                return "not valid JSON (\(detail))"
            }
            return "\(context.debugDescription) at \(path(context))"
        @unknown default:
            return "\(decoding)"
        }
    }
}
