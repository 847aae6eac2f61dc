import OxydraCore
import OxydraTesting
import Testing

@testable import OxydraTools

@Suite("File tools")
struct FileToolTests {
    @Test func writeReadEditDelete() async throws {
        let fixture = try WorkspaceFixture()
        defer { fixture.remove() }
        let registry = fixture.registry()
        #expect(
            try await registry.call("file_write", #"{"path":"/shared/a.md","content":"one two one"}"#).text
                == "wrote 11 bytes to /shared/a.md")
        #expect(try await registry.call("file_read", #"{"path":"/shared/a.md"}"#).text == "one two one")
        let ambiguous = try await registry.call(
            "file_edit", #"{"path":"/shared/a.md","old_text":"one","new_text":"1"}"#)
        #expect(
            ambiguous.text
                == "tool execution failed for file_edit: old_text matched 2 locations in /shared/a.md (lines 1, 1); include more surrounding text so it matches once"
        )
        let missing = try await registry.call(
            "file_edit", #"{"path":"/shared/a.md","old_text":"three","new_text":"3"}"#)
        #expect(missing.text == "tool execution failed for file_edit: old_text was not found in /shared/a.md")
        let empty = try await registry.call("file_edit", #"{"path":"/shared/a.md","old_text":"","new_text":"3"}"#)
        #expect(empty.text.contains("at /old_text: '' should be non-empty"))
        #expect(
            try await registry.call("file_edit", #"{"path":"/shared/a.md","old_text":"two","new_text":"2"}"#).text
                == "updated /shared/a.md")
        #expect(fixture.contents("shared/a.md") == "one 2 one")
        #expect(try await registry.call("file_delete", #"{"path":"/shared/a.md"}"#).text == "deleted file /shared/a.md")
        #expect(
            try await registry.call("file_read", #"{"path":"/shared/a.md"}"#).text
                == "tool execution failed for file_read: no such file or directory: /shared/a.md")
    }

    @Test func listAndSearch() async throws {
        let fixture = try WorkspaceFixture()
        defer { fixture.remove() }
        let registry = fixture.registry()
        _ = try await registry.call("file_write", #"{"path":"/shared/docs/b.txt","content":"alpha\nbeta needle\n"}"#)
        _ = try await registry.call("file_write", #"{"path":"/shared/docs/deep/c.txt","content":"needle here\n"}"#)
        #expect(try await registry.call("file_list", "{}").text == "docs/\nnotes.txt")
        #expect(try await registry.call("file_list", #"{"path":"/shared/docs"}"#).text == "b.txt\ndeep/")
        #expect(try await registry.call("file_list", #"{"path":"/vault"}"#).text == "contract.txt")
        #expect(try await registry.call("file_list", #"{"path":"/tmp"}"#).text == "no entries found")
        #expect(
            try await registry.call("file_search", #"{"path":"/shared","query":"needle"}"#).text
                == "/shared/docs/b.txt:2:beta needle\n/shared/docs/deep/c.txt:1:needle here")
        #expect(
            try await registry.call("file_search", #"{"path":"/shared","query":"absent"}"#).text == "no matches found")
    }

    @Test func binaryFilesAreNotDumped() async throws {
        let fixture = try WorkspaceFixture()
        defer { fixture.remove() }
        #expect(
            FileManager.default.createFile(atPath: fixture.path("shared/blob.bin"), contents: Data([0, 1, 2, 0xFF])))
        #expect(
            try await fixture.registry().call("file_read", #"{"path":"/shared/blob.bin"}"#).text
                == "tool execution failed for file_read: /shared/blob.bin is a binary file (4 bytes); it is not shown")
    }

    @Test func vaultCopyIsTwoAuditedSteps() async throws {
        let fixture = try WorkspaceFixture()
        defer { fixture.remove() }
        let registry = fixture.registry()
        let outcome = try await registry.call(
            "vault_copyto", #"{"source_path":"/vault/contract.txt","destination_path":"/shared/in/contract.txt"}"#)
        #expect(
            outcome.text.hasPrefix(
                "copied 15 bytes from /vault/contract.txt to /shared/in/contract.txt (operation vault-copyto-"))
        #expect(fixture.contents("shared/in/contract.txt") == "vault document\n")
        let log = try #require(fixture.contents(".oxydra/audit.log")).split(separator: "\n").map {
            try JSONValue(parsing: String($0))
        }
        #expect(log.count == 2)
        #expect(log.map { $0["step"] } == ["read", "write"])
        #expect(log[0]["operation_id"] == log[1]["operation_id"])
        #expect(log[0]["path"] == "/vault/contract.txt" && log[1]["path"] == "/shared/in/contract.txt")
        let wrongSource = try await registry.call(
            "vault_copyto", #"{"source_path":"/shared/notes.txt","destination_path":"/tmp/x"}"#)
        #expect(
            wrongSource.text
                == "blocked by security policy (InvalidArguments): source_path must be under /vault, got /shared/notes.txt"
        )
        let intoVault = try await registry.call(
            "vault_copyto", #"{"source_path":"/vault/contract.txt","destination_path":"/vault/copy"}"#)
        #expect(intoVault.text == "blocked by security policy (ReadOnlyRoot): /vault is read-only")
    }
}
