import OxydraCore
import OxydraTesting
import Testing

@testable import OxydraTools

#if canImport(Glibc)
    import Glibc
#endif

/// A real workspace in a temp directory: `shared/`, `tmp/`, `vault/`, `.oxydra/`, plus a file
/// outside every root (`outside.txt`) and one in the internal directory.
struct WorkspaceFixture {
    let directory: TemporaryDirectory
    let workspace: Workspace

    init() throws {
        directory = try TemporaryDirectory(prefix: "oxydra-tools")
        let root = try directory.createDirectory("ws/alice")
        workspace = Workspace(root: root)
        for name in ["shared", "tmp", "vault", ".oxydra"] { _ = try directory.createDirectory("ws/alice/\(name)") }
        try directory.write("TOP SECRET outside\n", to: "ws/alice/outside.txt")
        try directory.write("internal db\n", to: "ws/alice/.oxydra/memory.db")
        try directory.write("hello from shared\nsecond line\n", to: "ws/alice/shared/notes.txt")
        try directory.write("vault document\n", to: "ws/alice/vault/contract.txt")
        try directory.write("host secret\n", to: "host-secret.txt")
    }

    func path(_ relative: String) -> String { workspace.root + "/" + relative }

    func symlink(_ target: String, at relative: String) {
        precondition(Glibc.symlink(target, path(relative)) == 0, "symlink failed")
    }

    func contents(_ relative: String) -> String? {
        FileManager.default.contents(atPath: path(relative)).map { String(decoding: $0, as: UTF8.self) }
    }

    func registry(forceFallback: Bool = false, extra: [any Tool] = [], approval: ApprovalPolicy = .denyPrivileged)
        -> ToolRegistry
    {
        let confinement = PathConfinement(workspace: workspace, forceFallback: forceFallback)
        return ToolRegistry(
            FileTools.all(confinement: confinement, audit: AuditLog(path: workspace.internalDirectory + "/audit.log"))
                + extra,
            scrubber: OutputScrubber(workspace: workspace), approval: approval)
    }

    func remove() { directory.remove() }
}

extension ToolRegistry {
    /// Runs a call with JSON arguments given as text.
    func call(_ name: String, _ arguments: String, limit: Duration = .seconds(30)) async throws -> ToolOutcome {
        try await run(
            ToolCall(id: "call_1", name: name, arguments: ToolArguments(parsing: arguments)), context: ToolContext(),
            limit: limit)
    }
}
