import OxydraCore
import Testing

@testable import OxydraTools

/// Which `shell_exec` command lines ask for approval in `risky` mode, decided with dash's grammar.
@Suite("Shell risk")
struct ShellRiskTests {
    static let readOnly = [
        "ls -la", "cat a.txt | grep x | wc -l", "git status", "git log --oneline -5", "git diff HEAD~1",
        "grep -rn TODO . 2>/dev/null", "find . -name '*.swift'", "ls > /dev/null 2>&1", "echo hi >&2",
        "cd src && ls", "timeout 5 cat big.log", "env", "sort data.csv", "uniq counts.txt", "head -n 3 <a.txt",
        "echo $(date)", "git branch -a", "command -v jq", "du -sh .", "wc -l < input.txt",
    ]

    static let asking: [(String, [String])] = [
        ("rm -rf build", ["shell:rm"]),
        ("echo hi > notes.txt", ["shell:>"]),
        ("cat a >> b", ["shell:>"]),
        ("ls && rm x", ["shell:rm"]),
        ("git commit -m wip", ["shell:git commit"]),
        ("git push", ["shell:git push"]),
        ("git branch new-feature", ["shell:git branch"]),
        ("sort -o out.txt in.txt", ["shell:sort"]),
        ("find . -name '*.o' -delete", ["shell:find"]),
        ("find . -exec rm {} \\;", ["shell:find"]),
        ("uniq in.txt out.txt", ["shell:uniq"]),
        ("xargs rm < list", ["shell:rm"]),
        ("env FOO=1 python3 script.py", ["shell:python3"]),
        ("timeout 5 curl http://example.com", ["shell:curl"]),
        ("echo $(rm -rf x)", ["shell:rm"]),
        ("ls; mv a b; cp c d", ["shell:mv", "shell:cp"]),
        ("env -S 'rm -rf x'", ["shell:env"]),
        ("$CMD arg", ["shell=$CMD arg"]),
        ("git -c core.pager=x log", ["shell:git"]),
        ("/shared/ls", ["shell:/shared/ls"]),
    ]

    @Test(arguments: readOnly) func readOnlyLinesRunWithoutAsking(_ line: String) {
        let risk = ShellRisk.assess(line)
        #expect(risk.level == .none, "\(line): \(risk)")
    }

    @Test(arguments: asking) func writingLinesAskAndNameWhatAGrantCovers(_ example: (String, [String])) {
        let risk = ShellRisk.assess(example.0)
        #expect(risk.level == .medium, "\(example.0): \(risk)")
        #expect(risk.kinds.map(\.key) == example.1, "\(example.0)")
    }

    @Test func aLineThatCannotBeReadIsHighRiskAndOnlyItselfCanBeGranted() {
        let risk = ShellRisk.assess("cat <(ls)")
        #expect(risk.level == .high)
        #expect(risk.kinds.map(\.key) == ["shell=cat <(ls)"])
        #expect(risk.reason.contains("process substitution"))
    }

    @Test func fileWritesOutsideTmpAskAndGrantsCoverTheDirectory() throws {
        let fixture = try WorkspaceFixture()
        defer { fixture.remove() }
        let tools = fixture.registry()
        func risk(_ name: String, _ path: String) -> ToolRisk {
            tools.risk(
                of: ToolCall(
                    id: "c", name: name,
                    arguments: .json(
                        name == "file_write" ? ["path": .string(path), "content": "x"] : ["path": .string(path)])))
        }
        #expect(risk("file_write", "/tmp/scratch.txt").level == .none)
        #expect(risk("file_write", "/shared/notes/a.md").kinds.map(\.key) == ["file:/shared/notes"])
        #expect(risk("file_write", "notes/a.md").kinds.map(\.key) == ["file:/shared/notes"])
        #expect(risk("file_delete", "/tmp/../shared/x").level == .medium)
        #expect(risk("file_delete", "/tmp/../shared/x").kinds.map(\.key) == ["file=/tmp/../shared/x"])
        #expect(risk("file_read", "/shared/a").level == .none)
        // Invalid arguments never run, so they never ask.
        #expect(risk("file_write", "").level == .none)
    }

    @Test func approvalRulesFollowModeRequireAndSkip() {
        var config = ApprovalConfig()
        #expect(config.asks(tool: "shell_exec", risk: .medium))
        #expect(!config.asks(tool: "file_read", risk: .none))
        config.require = ["file_read"]
        #expect(config.asks(tool: "file_read", risk: .none))
        config.skip = ["shell_exec"]
        #expect(!config.asks(tool: "shell_exec", risk: .high))
        config.mode = .all
        #expect(config.asks(tool: "memory_search", risk: .none))
        config.mode = .off
        #expect(!config.asks(tool: "vault_copyto", risk: .high))
    }
}
