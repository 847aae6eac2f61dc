import OxydraCore
import OxydraTesting
import Testing

@testable import OxydraTools

/// Every escape attempt, with real files and symlinks, through both resolution strategies.
@Suite("Path confinement")
struct ConfinementTests {
    static let modes = [false, true]

    @Test(arguments: modes)
    func readsInsideTheRootsWork(_ fallback: Bool) async throws {
        let fixture = try WorkspaceFixture()
        defer { fixture.remove() }
        let registry = fixture.registry(forceFallback: fallback)
        #expect(
            try await registry.call("file_read", #"{"path":"/shared/notes.txt"}"#).text
                == "hello from shared\nsecond line\n")
        #expect(
            try await registry.call("file_read", #"{"path":"notes.txt"}"#).text == "hello from shared\nsecond line\n")
        #expect(try await registry.call("file_read", #"{"path":"/shared/./notes.txt"}"#).isError == false)
    }

    /// A file longer than one read comes back whole; one past the limit is refused.
    @Test(arguments: modes)
    func longFilesAreReadWholeUpToTheLimit(_ fallback: Bool) throws {
        let fixture = try WorkspaceFixture()
        defer { fixture.remove() }
        let confinement = PathConfinement(workspace: fixture.workspace, forceFallback: fallback)
        let text = (0..<30_000).map { "\($0 % 10)" }.joined() + "\n" + String(repeating: "é", count: 60_000)
        _ = try fixture.directory.write(text, to: "ws/alice/shared/long.txt")
        let bytes = try confinement.readFile(
            VirtualPath(root: .shared, relative: "long.txt"), limit: 1 << 20, tool: "file_read")
        #expect(bytes.count > 64 * 1024 && bytes == Array(text.utf8))
        #expect(throws: ToolError.self) {
            try confinement.readFile(
                VirtualPath(root: .shared, relative: "long.txt"), limit: text.utf8.count - 1, tool: "file_read")
        }
    }

    @Test(
        arguments: modes,
        [
            (#"{"path":"/shared/../outside.txt"}"#, "PathOutsideAllowedRoots"),
            (#"{"path":"/shared/../../../host-secret.txt"}"#, "PathOutsideAllowedRoots"),
            (#"{"path":"../outside.txt"}"#, "PathOutsideAllowedRoots"),
            (#"{"path":"/etc/passwd"}"#, "PathOutsideAllowedRoots"),
            (#"{"path":"/proc/self/root/etc/passwd"}"#, "PathOutsideAllowedRoots"),
            (#"{"path":"/sharedevil/x"}"#, "PathOutsideAllowedRoots"),
            (#"{"path":"/shared/.oxydra/x"}"#, "InternalPath"),
            (#"{"path":"/vault/contract.txt"}"#, "VaultRequiresCopy"),
        ])
    func lexicalAndDotDotEscapesAreBlocked(_ fallback: Bool, _ attempt: (String, String)) async throws {
        let (arguments, reason) = attempt
        let fixture = try WorkspaceFixture()
        defer { fixture.remove() }
        let outcome = try await fixture.registry(forceFallback: fallback).call("file_read", arguments)
        #expect(outcome.isError)
        #expect(outcome.text.hasPrefix("blocked by security policy (\(reason)): "), "\(outcome.text)")
        #expect(!outcome.text.contains("SECRET") && !outcome.text.contains("internal db"))
    }

    @Test(arguments: modes)
    func symlinksPointingOutAreBlocked(_ fallback: Bool) async throws {
        let fixture = try WorkspaceFixture()
        defer { fixture.remove() }
        fixture.symlink("/etc/passwd", at: "shared/abs-link")
        fixture.symlink("../outside.txt", at: "shared/rel-link")
        fixture.symlink("../.oxydra/memory.db", at: "shared/internal-link")
        fixture.symlink("/proc/self/root", at: "shared/magic")
        fixture.symlink(fixture.directory.path, at: "shared/dir-link")
        let registry = fixture.registry(forceFallback: fallback)
        for path in [
            "/shared/abs-link", "/shared/rel-link", "/shared/internal-link", "/shared/magic/etc/passwd",
            "/shared/dir-link/host-secret.txt",
        ] {
            let outcome = try await registry.call("file_read", #"{"path":"\#(path)"}"#)
            #expect(outcome.isError, "\(path) was readable")
            #expect(
                outcome.text.hasPrefix(
                    "blocked by security policy (PathOutsideAllowedRoots): `\(path)` resolves outside /shared"),
                "\(path): \(outcome.text)")
        }
        // Writing through a symlinked directory is refused too, and nothing lands outside.
        let write = try await registry.call("file_write", #"{"path":"/shared/dir-link/planted.txt","content":"x"}"#)
        #expect(write.isError)
        #expect(!FileManager.default.fileExists(atPath: fixture.directory.path + "/planted.txt"))
    }

    @Test func symlinksThatStayInsideWorkWithOpenat2() async throws {
        let fixture = try WorkspaceFixture()
        defer { fixture.remove() }
        fixture.symlink("notes.txt", at: "shared/alias.txt")
        #expect(
            try await fixture.registry().call("file_read", #"{"path":"/shared/alias.txt"}"#).text.hasPrefix("hello"))
        // The fallback walk refuses every symlink, inside or not.
        #expect(
            try await fixture.registry(forceFallback: true).call("file_read", #"{"path":"/shared/alias.txt"}"#).isError)
    }

    @Test(arguments: modes)
    func writesStayInWritableRoots(_ fallback: Bool) async throws {
        let fixture = try WorkspaceFixture()
        defer { fixture.remove() }
        let registry = fixture.registry(forceFallback: fallback)
        let vault = try await registry.call("file_write", #"{"path":"/vault/new.txt","content":"x"}"#)
        #expect(
            vault.text
                == "blocked by security policy (ReadOnlyRoot): /vault is read-only; copy files out of it with vault_copyto"
        )
        let escape = try await registry.call("file_write", #"{"path":"/tmp/../outside.txt","content":"pwned"}"#)
        #expect(escape.isError)
        #expect(fixture.contents("outside.txt") == "TOP SECRET outside\n")
        let deep = try await registry.call("file_write", #"{"path":"/tmp/a/b/c.txt","content":"deep"}"#)
        #expect(deep.text == "wrote 4 bytes to /tmp/a/b/c.txt")
        #expect(fixture.contents("tmp/a/b/c.txt") == "deep")
    }

    @Test func deletingALinkRemovesOnlyTheLink() async throws {
        let fixture = try WorkspaceFixture()
        defer { fixture.remove() }
        fixture.symlink("../outside.txt", at: "shared/rel-link")
        let outcome = try await fixture.registry().call("file_delete", #"{"path":"/shared/rel-link"}"#)
        #expect(outcome.text == "deleted file /shared/rel-link")
        #expect(fixture.contents("outside.txt") == "TOP SECRET outside\n")
        let root = try await fixture.registry().call("file_delete", #"{"path":"/shared"}"#)
        #expect(root.text == "blocked by security policy (InvalidArguments): /shared itself cannot be deleted")
    }

    @Test func nulBytesAreRejected() async throws {
        let fixture = try WorkspaceFixture()
        defer { fixture.remove() }
        let outcome = try await fixture.registry().call("file_read", #"{"path":"/shared/notes.txt\u0000.png"}"#)
        #expect(outcome.text == "blocked by security policy (InvalidArguments): path contains a NUL byte")
    }

    @Test func hostPathsNeverReachTheModel() async throws {
        let fixture = try WorkspaceFixture()
        defer { fixture.remove() }
        try fixture.directory.write(
            "see \(fixture.workspace.shared)/notes.txt and \(fixture.workspace.root)/x", to: "ws/alice/shared/paths.txt"
        )
        let outcome = try await fixture.registry().call("file_read", #"{"path":"/shared/paths.txt"}"#)
        #expect(outcome.text == "see /shared/notes.txt and /workspace/x")
    }
}
