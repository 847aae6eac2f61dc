/// The `config_version` of a file. Major version 1 is accepted in any of the spellings `1`, `1.0`,
/// `1.0.0` (as a string, an integer or a float); anything else is an error that says what is supported.
public struct ConfigVersion: ConfigCodable, Hashable, CustomStringConvertible {
    public static let current = ConfigVersion(text: "1.0.0")
    public static let supportedMajor = 1

    public let text: String
    public init(text: String) { self.text = text }

    public var description: String { text }

    public static var expectation: String { "a version string such as \"1.0.0\"" }

    public static func decode(
        _ node: ConfigNode, base: ConfigVersion?, at path: [String], in diagnostics: ConfigDiagnostics
    ) -> ConfigVersion? {
        let text: String
        switch node.value {
        case .string(let raw): text = node.literal ?? raw
        case .integer(let number): text = node.literal ?? String(number)
        case .float(let number): text = node.literal ?? ConfigValue.render(number)
        default:
            diagnostics.typeMismatch(path, expectation: expectation, got: node)
            return nil
        }
        let trimmed = text.trimmed
        let segments = trimmed.split(separator: ".", omittingEmptySubsequences: false)
        let wellFormed =
            !trimmed.isEmpty && segments.count <= 3
            && segments.allSatisfy { !$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isNumber } }
        guard wellFormed else {
            diagnostics.report(
                path,
                "\(ConfigPath.render(path)) \(ConfigPath.quoted(text)) is not a version number; "
                    + "use \"1.0.0\" (MAJOR[.MINOR[.PATCH]], digits only)",
                source: node.source)
            return nil
        }
        guard Int(segments[0]) == supportedMajor else {
            diagnostics.report(
                path,
                "\(ConfigPath.render(path)) \(ConfigPath.quoted(text)) is not supported; "
                    + "this Oxydra reads config version \(supportedMajor).x (e.g. \"1.0.0\")",
                source: node.source)
            return nil
        }
        return ConfigVersion(text: trimmed)
    }

    public func encode() -> ConfigNode? { ConfigNode(.string(text), source: .builtInDefault) }
}
