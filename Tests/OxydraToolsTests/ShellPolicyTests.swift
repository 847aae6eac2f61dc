import OxydraCore
import Testing

@testable import OxydraTools

@Suite("Shell command policy")
struct ShellPolicyTests {
    static let defaults = ShellPolicy(ShellToolsConfig())

    struct Case: CustomTestStringConvertible, Sendable {
        var command: String
        var allowed: Bool
        /// A fragment the refusal must contain (names the offending program or construct).
        var reason: String = ""
        var testDescription: String { command }
    }

    @Test(
        "defaults",
        arguments: [
            Case(command: "ls -la /shared", allowed: true),
            Case(command: "echo 'a && rm -rf /'", allowed: true),
            Case(command: "echo \"a; rm -rf / | curl x\"", allowed: true),
            Case(command: "echo a\\;rm", allowed: true),
            Case(command: "ls; rm -rf /", allowed: false, reason: "`rm`"),
            Case(command: "ls && rm x", allowed: false, reason: "`rm`"),
            Case(command: "ls || rm x", allowed: false, reason: "`rm`"),
            Case(command: "cat a | sh", allowed: false, reason: "`sh`"),
            Case(command: "ls & rm x", allowed: false, reason: "`rm`"),
            Case(command: "ls\nrm x", allowed: false, reason: "`rm`"),
            Case(command: "(cd /tmp && rm x)", allowed: false, reason: "`rm`"),
            Case(command: "echo $(rm -rf /)", allowed: false, reason: "`rm`"),
            Case(command: "echo \"$(rm -rf /)\"", allowed: false, reason: "`rm`"),
            Case(command: "echo `rm -rf /`", allowed: false, reason: "`rm`"),
            Case(command: "echo $(echo $(rm x))", allowed: false, reason: "`rm`"),
            Case(command: "diff <(rm x) a", allowed: false, reason: "process substitution"),
            Case(command: "cat a > >(rm x)", allowed: false, reason: "process substitution"),
            // dash reads `&>` as `&` then `>`: the word after the target runs as a command.
            Case(command: "ls &>/dev/null rm victim", allowed: false, reason: "`rm`"),
            Case(command: "echo &>/dev/stderr sh -c 'id'", allowed: false, reason: "`sh`"),
            Case(command: "ls &>>log rm victim", allowed: false, reason: "`rm`"),
            Case(command: "ls |& cat", allowed: false, reason: "`|&`"),
            Case(command: "time rm x", allowed: false, reason: "`time`"),
            Case(command: "env rm x", allowed: false, reason: "`rm`"),
            Case(command: "env -i FOO=1 rm x", allowed: false, reason: "`rm`"),
            Case(command: "env FOO=1 ls", allowed: true),
            Case(command: "env -S 'rm x'", allowed: false, reason: "env -S"),
            Case(command: "find . -name x -exec rm {} \\;", allowed: false, reason: "`rm`"),
            Case(command: "find . -name '*.txt' -exec cat {} +", allowed: true),
            Case(command: "command rm x", allowed: false, reason: "`rm`"),
            Case(command: "exec rm x", allowed: false, reason: "`rm`"),
            Case(command: "$CMD -rf /", allowed: false, reason: "computed"),
            Case(command: "$(echo rm) -rf /", allowed: false, reason: "computed"),
            Case(command: "r? -rf /", allowed: false, reason: "computed"),
            Case(command: "{rm,-rf,/}", allowed: false, reason: "computed"),
            Case(command: "/usr/bin/ls /", allowed: true),
            Case(command: "/shared/ls /", allowed: false, reason: "`/shared/ls`"),
            Case(command: "./ls", allowed: false, reason: "`./ls`"),
            Case(command: "PATH=/shared ls", allowed: false, reason: "PATH"),
            Case(command: "export PATH=/shared:$PATH", allowed: false, reason: "PATH"),
            Case(command: "LD_PRELOAD=/tmp/x.so ls", allowed: false, reason: "LD_PRELOAD"),
            Case(command: "FOO=bar ls", allowed: true),
            Case(command: "cd /shared && ls | grep x | wc -l", allowed: true),
            Case(command: "ls > /tmp/out 2>&1", allowed: true),
            Case(command: "ls 2>/dev/null || echo none", allowed: true),
            Case(command: "cat <<'EOF'\n$(rm x)\nEOF", allowed: true),
            Case(command: "cat <<EOF\n$(rm x)\nEOF", allowed: false, reason: "here-document"),
            Case(command: "cat <<EOF\nplain\nEOF\nls", allowed: true),
            Case(command: "if test -f a; then cat a; else echo none; fi", allowed: true),
            Case(command: "if test -f a; then rm a; fi", allowed: false, reason: "`rm`"),
            Case(command: "for f in a b; do cat $f; done", allowed: true),
            Case(command: "for f in a b; do rm $f; done", allowed: false, reason: "`rm`"),
            Case(command: "while true; do sleep 1; done", allowed: true),
            Case(command: "[ -f a ] && cat a", allowed: true),
            // dash has no `[[`: it is a program name (none is installed), not a keyword.
            Case(command: "[[ -f a ]] && cat a", allowed: false, reason: "`[[`"),
            Case(command: "echo $((1 + 2))", allowed: true),
            Case(command: "echo ${HOME}", allowed: true),
            Case(command: "f() { ls; }; f", allowed: false, reason: "function"),
            Case(command: "case x in x) ls;; esac", allowed: false, reason: "case"),
            Case(command: "eval 'ls'", allowed: false, reason: "`eval`"),
            Case(command: "echo 'unterminated", allowed: false, reason: "never closed"),
            Case(command: "echo $(ls", allowed: false, reason: "never closed"),
            Case(command: "   ", allowed: false, reason: "empty"),
            Case(command: "LS -la", allowed: true),
            Case(command: "# just a comment", allowed: true),
        ])
    func defaults(_ example: Case) {
        let decision = Self.defaults.check(example.command)
        switch decision {
        case .allowed:
            #expect(example.allowed, "expected a refusal for \(example.command)")
        case .refused(let reason):
            #expect(!example.allowed, "unexpected refusal: \(reason)")
            #expect(reason.contains(example.reason), "reason `\(reason)` should mention \(example.reason)")
        }
    }

    @Test func wrappersAreSeenThrough() {
        let policy = ShellPolicy(allow: ["timeout", "nice", "xargs", "ls", "env"], deny: [], allowOperators: true)
        for command in [
            "timeout 5 rm x", "timeout -s KILL 5 rm x", "nice -n 5 rm x", "xargs rm < list", "xargs -I{} rm {}",
        ] {
            guard case .refused(let reason) = policy.check(command) else {
                Issue.record("\(command) should be refused")
                continue
            }
            #expect(reason.contains("`rm`"), "\(reason)")
        }
        #expect(policy.check("timeout 5 ls") == .allowed)
        #expect(policy.check("find . | xargs ls") != .allowed)  // find is not allowed here
        #expect(policy.check("ls | xargs") == .allowed)
        #expect(policy.check("env -u HOME ls") == .allowed)
    }

    @Test func denyBeatsWildcardAllow() {
        let policy = ShellPolicy(allow: ["*"], deny: ["rm", "curl*"], allowOperators: true)
        #expect(policy.check("anything --goes") == .allowed)
        #expect(policy.check("rm -rf /") == .refused("`rm` is denied by tools.shell.deny"))
        #expect(policy.check("/usr/bin/rm x") == .refused("`rm` is denied by tools.shell.deny"))
        #expect(policy.check("/tmp/rm x") == .refused("`/tmp/rm` is denied by tools.shell.deny"))
        guard case .refused(let reason) = policy.check("ls && curly x") else {
            Issue.record("curly should match the curl* deny glob")
            return
        }
        #expect(reason.contains("curl*"))
        #expect(policy.check("echo $(rm x)") != .allowed)
        #expect(policy.check("cd /tmp") == .allowed)
        // Denying a builtin works too.
        #expect(ShellPolicy(allow: ["*"], deny: ["cd"], allowOperators: true).check("cd /") != .allowed)
    }

    @Test func operatorsDisabled() {
        let policy = ShellPolicy(allow: ["ls", "grep"], deny: [], allowOperators: false)
        #expect(policy.check("ls -la 'a && b' \"c | d\"") == .allowed)
        for command in ["ls | grep x", "ls && ls", "ls; ls", "ls > out", "echo $(ls)", "ls &", "ls\nls", "ls `ls`"] {
            guard case .refused(let reason) = policy.check(command) else {
                Issue.record("\(command) should be refused with operators disabled")
                continue
            }
            #expect(reason.contains("allow_operators"), "\(reason)")
        }
    }

    @Test func replaceDefaultsAndGlobs() {
        var config = ShellToolsConfig()
        config.allow = ["py*", "make"]
        config.replaceDefaults = true
        let policy = ShellPolicy(config)
        #expect(policy.check("python3 -V") == .allowed)
        #expect(policy.check("make all") == .allowed)
        #expect(policy.check("ls") != .allowed)
        config.replaceDefaults = false
        #expect(ShellPolicy(config).check("ls && make") == .allowed)
    }

    @Test func globMatching() {
        #expect(ShellPolicy.matches("*", "anything"))
        #expect(ShellPolicy.matches("py*", "python3"))
        #expect(ShellPolicy.matches("*sum", "sha256sum"))
        #expect(ShellPolicy.matches("*git*", "legit-tool"))
        #expect(ShellPolicy.matches("g?t", "git"))
        #expect(!ShellPolicy.matches("py*", "npy"))
        #expect(!ShellPolicy.matches("ls", "lsof"))
    }
}

@Suite("shell_exec output")
struct ShellExecRenderingTests {
    @Test func longOutputShowsItsBeginningAndEnd() {
        let lines = (1...5000).map { "line \($0)" }.joined(separator: "\n")
        let result = ShellCommandResult(
            stdout: lines + "\n", stderr: "warning: x\n", exitStatus: ShellExitStatus(code: 1), truncated: false,
            totalBytes: lines.utf8.count + 12)
        let text = ShellExecTool.render(result, timeout: 60)
        #expect(text.hasPrefix("exit_status: 1\nstdout:\nline 1\nline 2\n"))
        #expect(text.contains("line 5000\nstderr:\nwarning: x"))
        #expect(text.contains("bytes left out]…"))
        #expect(text.utf8.count < 16 << 10)
        #expect(text.hasSuffix("showing the beginning and the end]"))
    }

    @Test func statusLines() {
        func render(_ status: ShellExitStatus, _ stdout: String = "") -> String {
            ShellExecTool.render(
                ShellCommandResult(stdout: stdout, stderr: "", exitStatus: status, truncated: false, totalBytes: 0),
                timeout: 5)
        }
        #expect(render(ShellExitStatus(code: 0)) == "exit_status: 0\n(no output)")
        #expect(render(ShellExitStatus(signal: 9)).hasPrefix("exit_status: killed by signal 9"))
        #expect(render(ShellExitStatus(signal: 9, timedOut: true)).hasPrefix("exit_status: timed out after 5 s"))
        #expect(render(ShellExitStatus(code: 0), "é\n\n") == "exit_status: 0\nstdout:\né")
    }
}
