import OxydraCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Append-only JSON-lines audit log in the workspace's internal directory.
public final class AuditLog: Sendable {
    public let path: String?
    private let lock = Mutex<Void>(())

    public init(path: String?) { self.path = path }

    public func record(_ fields: [String: JSONValue]) {
        guard let path else { return }
        var entry = fields
        entry["timestamp"] = .string(Timestamp.rfc3339(Date()))
        let line = Array((JSONValue.object(entry).compactText + "\n").utf8)
        lock.withLock { _ in
            let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0o600)
            guard fd >= 0 else { return }
            defer { close(fd) }
            _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        }
    }
}

/// `vault_copyto {source_path, destination_path}`: copies a file out of the read-only `/vault`.
///
/// Two steps share one operation id and are audited separately: the *read* step opens only the
/// vault root, the *write* step only the writable roots — no step holds both.
struct VaultCopyTo: TypedTool {
    struct Arguments: Decodable, Sendable {
        var sourcePath: String
        var destinationPath: String
        enum CodingKeys: String, CodingKey {
            case sourcePath = "source_path"
            case destinationPath = "destination_path"
        }
    }

    let confinement: PathConfinement
    let audit: AuditLog
    var safety: SafetyTier { .sideEffecting }
    /// Always asks: it takes a secret out of the vault.
    func risk(of arguments: JSONValue) -> ToolRisk {
        let source = arguments["source_path"]?.stringValue ?? ""
        return ToolRisk(
            level: .high, reason: "copies \(source) out of the vault",
            kinds: [ToolRisk.Kind(key: "vault:" + source, label: "copies of \(source)")])
    }
    var timeout: Duration { .seconds(30) }
    var declaration: ToolDeclaration {
        ToolDeclaration(
            name: "vault_copyto",
            description: "Copy a file from the read-only /vault to /shared or /tmp, where other tools can read it.",
            parameters: Schema.object(
                [
                    "source_path": Schema.string("File under /vault", minLength: 1),
                    "destination_path": Schema.string("Destination under /shared or /tmp", minLength: 1),
                ], required: ["source_path", "destination_path"]))
    }

    private static let counter = Mutex<UInt64>(0)

    func run(_ arguments: Arguments, context: ToolContext) async throws -> ToolOutput {
        let number = Self.counter.withLock { count in
            count += 1
            return count
        }
        let operation = "vault-copyto-\(number)"
        let source = try confinement.virtualPath(arguments.sourcePath, tool: "vault_copyto")
        let destination = try confinement.virtualPath(arguments.destinationPath, tool: "vault_copyto")
        guard source.root == .vault else {
            throw ToolError.blocked(
                tool: "vault_copyto", reason: "InvalidArguments",
                detail: "source_path must be under /vault, got \(source)")
        }
        guard destination.root != .vault else {
            throw ToolError.blocked(tool: "vault_copyto", reason: "ReadOnlyRoot", detail: "/vault is read-only")
        }
        // Each step is audited on its own, success or failure.
        func step<T>(_ name: String, _ path: VirtualPath, _ work: () throws -> T) throws -> T {
            var entry: [String: JSONValue] = [
                "operation_id": .string(operation), "step": .string(name), "path": .string(path.description),
                "session": context.session.map { .string($0.rawValue) } ?? .null,
            ]
            do {
                let result = try work()
                entry["outcome"] = "ok"
                audit.record(entry)
                return result
            } catch {
                entry["outcome"] = .string("\(error)")
                audit.record(entry)
                throw error
            }
        }
        // Step 1 opens only the vault; step 2 only the writable roots.
        let bytes = try step("read", source) {
            try confinement.readFile(source, limit: FileTools.readLimit, tool: "vault_copyto")
        }
        _ = try step("write", destination) {
            try confinement.writeFile(destination, bytes: bytes, tool: "vault_copyto")
        }
        return ToolOutput("copied \(bytes.count) bytes from \(source) to \(destination) (operation \(operation))")
    }
}
