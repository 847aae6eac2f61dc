import Foundation
import OxydraCore
import OxydraTesting
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The terminal UI in a real terminal (tmux) against a real guest: what it draws.
@Suite("Terminal UI rendering under tmux", .serialized)
struct TerminalUIRenderingTests {
    static let answer = """
        ## Steps
        Run **this** first:
        ```bash
        echo "$HOME" # where
        ```
        | tool | use |
        |------|-----|
        | tmux | tests |
        - [x] done
        > quoted
        """

    /// Markdown, a code block and a table at 50 columns without colour; a tool call that expands;
    /// pastes whose line breaks arrive as CR or as LF.
    @Test func markdownToolCallsAndPastesOnANarrowTerminalWithoutColour() async throws {
        try await Project.withGuest { project, server in
            try FileManager.default.createDirectory(
                atPath: project.workspace + "/shared", withIntermediateDirectories: true)
            try "hello\n".write(toFile: project.workspace + "/shared/notes.md", atomically: true, encoding: .utf8)
            let tmux = try await Tmux.terminalUI(project, columns: 50, rows: 30, environment: "NO_COLOR=1")
            defer { tmux.kill() }

            server.enqueue(.text(Self.answer))
            tmux.send("show me", "Enter")
            try await tmux.waitFor("quoted")
            let screen = try tmux.capture()
            for expected in [
                "Steps", "─────", "Run this first:", "╭─ bash", "│ echo \"$HOME\" # where", "╰─",
                "┌──────┬───────┐", "│ tool │ use   │", "├──────┼───────┤", "│ tmux │ tests │", "• ☑ done", "│ quoted",
            ] {
                #expect(screen.contains(expected), "missing \(expected.debugDescription) in:\n\(screen)")
            }
            #expect(!screen.contains("**") && !screen.contains("```") && !screen.contains("## "), "\(screen)")
            // NO_COLOR: no colours anywhere; only the status bar's reverse video.
            // (tmux itself writes 39/49, "default colour".)
            let styled = try tmux.capture(escapes: true).replacing("\u{1B}[39m", with: "").replacing(
                "\u{1B}[49m", with: "")
            #expect(!styled.contains("\u{1B}[3") && !styled.contains("\u{1B}[9"), "\(styled.debugDescription)")

            server.enqueue([
                .toolCalls([ScriptedToolCall(id: "c1", name: "file_list", arguments: #"{"path":"/shared"}"#)]),
                .text("listed"),
            ])
            tmux.send("list files", "Enter")
            try await tmux.waitFor("listed")
            try await tmux.waitFor("▸ ✓ file_list(path=/shared) · ")
            #expect(!(try tmux.capture()).contains("notes.md"))
            tmux.send("C-o")
            try await tmux.waitFor("(Ctrl+O hides)")
            let expanded = try tmux.capture()
            #expect(expanded.contains("    arguments") && expanded.contains(#"{"path":"/shared"}"#), "\(expanded)")
            #expect(expanded.contains("    output") && expanded.contains("    notes.md"), "\(expanded)")
            tmux.send("C-o")
            try await tmux.waitFor("(Ctrl+O shows)")

            // A paste keeps its line breaks whether the terminal sends CR (tmux's default) or LF.
            tmux.paste("first line\nsecond line")
            try await tmux.waitFor("  second line")
            #expect(try tmux.capture().contains("› first line"))
            // Ctrl+C on a prompt clears it.
            tmux.send("C-c")
            server.enqueue(.text("got both"))
            tmux.paste("alpha\nbeta", keepLineFeeds: true)
            try await tmux.waitFor("  beta")
            tmux.send("Enter")
            try await tmux.waitFor("got both")
            let prompt = String(decoding: server.requests.last?.body ?? Data(), as: UTF8.self)
            #expect(prompt.contains(#"alpha\nbeta"#), "\(prompt)")
            #expect(!prompt.contains("first line"), "the first paste was cleared: \(prompt)")

            // /model: the choices, then a switch the next turn uses.
            tmux.send("/model", "Enter")
            try await tmux.waitFor("/model <name> or /model")
            tmux.send("/model gpt-4o", "Enter")
            try await tmux.waitFor("model for this session: local/gpt-4o (")
            server.enqueue(.text("switched"))
            tmux.send("which model?", "Enter")
            try await tmux.waitFor("switched")
            #expect(server.requests.last?.json?["model"] == "gpt-4o")

            // /attach: the file goes with the next message and lands in /shared/inbox.
            try Data([0x89, 0x50, 0x4E, 0x47, 1, 2]).write(to: URL(fileURLWithPath: project.root + "/shot.png"))
            tmux.send("/attach \(project.root)/shot.png", "Enter")
            try await tmux.waitFor("attached shot.png (image/png, 6 bytes)")
            server.enqueue(.text("a tiny image"))
            tmux.send("what is this", "Enter")
            try await tmux.waitFor("a tiny image")
            #expect(FileManager.default.fileExists(atPath: project.workspace + "/shared/inbox/shot.png"))
            let sent = String(decoding: server.requests.last?.body ?? Data(), as: UTF8.self)
            #expect(sent.contains("/shared/inbox/shot.png (image/png, 6 bytes"), "\(sent)")
        }
    }
}
