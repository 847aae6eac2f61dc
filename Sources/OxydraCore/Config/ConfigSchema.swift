/// The shape of a configuration value, derived from the same declarations that read and check it
/// (``ConfigSection/fields``), so a form built from it offers exactly the keys the loader accepts.
public indirect enum ConfigShape: Sendable, Hashable {
    case string
    case integer
    case number
    case boolean
    /// One of these spellings (a ``ConfigEnum``).
    case choice([String])
    /// `config_version`: a version string such as `"1.0.0"`.
    case version
    case list(ConfigShape)
    /// A table whose keys the user names (`providers.registry.<name>`, `users.<id>`).
    case map(ConfigShape)
    /// A table with a fixed set of keys.
    case section([ConfigKeySchema])

    /// The schema of `key` when this is a section.
    public func key(_ key: String) -> ConfigKeySchema? {
        guard case .section(let keys) = self else { return nil }
        return keys.first { $0.key == key }
    }

    /// The shape at `path` (map keys are any name), or nil when no key is there.
    public func shape(at path: [String]) -> ConfigShape? {
        guard let first = path.first else { return self }
        switch self {
        case .section: return key(first)?.shape.shape(at: Array(path.dropFirst()))
        case .map(let value): return value.shape(at: Array(path.dropFirst()))
        default: return nil
        }
    }

    /// Whether the path names a secret (a secret key, or anything below one).
    public func isSecret(at path: [String]) -> Bool {
        guard let first = path.first else { return false }
        switch self {
        case .section:
            guard let schema = key(first) else { return false }
            return schema.isSecret || schema.shape.isSecret(at: Array(path.dropFirst()))
        case .map(let value): return value.isSecret(at: Array(path.dropFirst()))
        default: return false
        }
    }
}

/// One key of a section: its shape, whether it is a secret or required, and its default.
public struct ConfigKeySchema: Sendable, Hashable {
    public var key: String
    public var shape: ConfigShape
    public var isSecret: Bool
    public var isRequired: Bool
    /// The built-in default; nil when the key is unset by default.
    public var defaultValue: ConfigNode?

    public init(key: String, shape: ConfigShape, isSecret: Bool, isRequired: Bool, defaultValue: ConfigNode?) {
        self.key = key
        self.shape = shape
        self.isSecret = isSecret
        self.isRequired = isRequired
        self.defaultValue = defaultValue
    }
}

extension String { public static var shape: ConfigShape { .string } }
extension Int { public static var shape: ConfigShape { .integer } }
extension Double { public static var shape: ConfigShape { .number } }
extension Bool { public static var shape: ConfigShape { .boolean } }
extension Optional where Wrapped: ConfigCodable { public static var shape: ConfigShape { Wrapped.shape } }
extension Array where Element: ConfigCodable { public static var shape: ConfigShape { .list(Element.shape) } }
extension Dictionary where Key == String, Value: ConfigCodable {
    public static var shape: ConfigShape { .map(Value.shape) }
}
extension ConfigEnum { public static var shape: ConfigShape { .choice(allCases.map(\.rawValue)) } }
extension ConfigVersion { public static var shape: ConfigShape { .version } }
extension HeaderMap { public static var shape: ConfigShape { .map(.string) } }

extension ConfigSection {
    public static var shape: ConfigShape {
        let defaults = Self()
        return .section(
            fields.map { field in
                ConfigKeySchema(
                    key: field.key, shape: field.shape, isSecret: field.isSecret, isRequired: field.isRequired,
                    defaultValue: field.encodeFrom(defaults))
            })
    }
}
