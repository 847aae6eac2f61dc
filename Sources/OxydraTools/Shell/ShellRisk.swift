import OxydraCore

/// Whether a `shell_exec` command line only reads (runs without asking in `tools.approval.mode =
/// "risky"`): taken apart with the shell's own grammar (``ShellCommandLine``), every program it can
/// start — each side of lists and pipes, inside substitutions, behind wrappers such as `env`,
/// `xargs` or `timeout` — must be on the read-only list with arguments that do not write
/// (`sort -o`, `find -delete`, `git push` ask), and no redirection may write anywhere but
/// `/dev/null`. Anything else, and anything the parser refuses, asks. A grant for the session
/// covers the programs that made it ask (`rm`, `git commit`), or the exact line when it could not
/// be read.
public enum ShellRisk {
    /// Programs that only read (or only print), and the shell builtins the command policy already
    /// treats as harmless.
    static let readOnlyPrograms = ShellPolicy.harmlessBuiltins.union([
        "ls", "cat", "head", "tail", "grep", "egrep", "fgrep", "rg", "wc", "stat", "file", "du", "df", "tree", "which",
        "whoami", "id", "date", "uname", "printenv", "sort", "uniq", "cut", "tr", "diff", "cmp", "comm", "basename",
        "dirname", "realpath", "readlink", "md5sum", "sha1sum", "sha256sum", "sha512sum", "jq", "column", "nl", "od",
        "hexdump", "seq", "nproc", "uptime", "free", "ps", "find", "git", "less", "more", "sleep", "command",
    ])
    /// Wrappers that run the program after them (checked as that program).
    static let wrappers: Set<String> = ["env", "xargs", "timeout", "nice", "nohup", "setsid", "time", "stdbuf"]
    /// `git` subcommands that only read.
    static let readOnlyGit: Set<String> = [
        "status", "log", "diff", "show", "ls-files", "rev-parse", "blame", "describe", "shortlog", "grep",
    ]

    public static func assess(_ commandLine: String) -> ToolRisk {
        let parsed: ShellCommandLine
        do {
            parsed = try ShellCommandLine.parse(commandLine)
        } catch {
            return ToolRisk(
                level: .high, reason: "the command could not be read (\(error.message))",
                kinds: [exact(commandLine)])
        }
        var kinds: [ToolRisk.Kind] = []
        func add(_ kind: ToolRisk.Kind) { if !kinds.contains(kind) { kinds.append(kind) } }
        for redirection in parsed.redirections where writes(redirection) {
            add(ToolRisk.Kind(key: "shell:>", label: "commands that write files with `>`"))
        }
        for command in parsed.commands {
            if command.dynamicName {
                add(exact(commandLine))
                continue
            }
            let stages = ShellPolicy.stages(of: command)
            for (index, stage) in stages.enumerated() {
                guard let first = stage.first else { continue }
                let name = ShellPolicy.programName(first)
                let last = index == stages.count - 1
                if wrappers.contains(name) {
                    // A wrapper with nothing after it prints (`env`, `xargs` runs echo); with words
                    // the parser could not follow (`env -S …`) it asks.
                    if last && stage.count > 1 { add(program(name)) }
                    continue
                }
                if name == "command" {
                    // `command -v NAME` only looks the name up; otherwise the next stage is the program.
                    if stage.dropFirst().first == "-v" || stage.dropFirst().first == "-V" { break }
                    continue
                }
                if let kind = writingKind(name, arguments: stage.dropFirst()) { add(kind) }
            }
        }
        guard !kinds.isEmpty else { return ToolRisk(level: .none, reason: "reads only") }
        let names = kinds.map(\.label).joined(separator: ", ")
        return ToolRisk(level: .medium, reason: "runs " + names, kinds: kinds)
    }

    static func exact(_ commandLine: String) -> ToolRisk.Kind {
        ToolRisk.Kind(key: "shell=" + commandLine, label: "exactly `\(commandLine.prefix(80))`")
    }

    static func program(_ name: String) -> ToolRisk.Kind {
        ToolRisk.Kind(key: "shell:" + name, label: "`\(name)` commands")
    }

    static func writes(_ redirection: ShellCommandLine.Redirection) -> Bool {
        let op = redirection.op.drop { $0.isNumber }
        if op == "<" || op == "<&" { return false }
        // `>&2`, `2>&1`: duplicating a descriptor writes nothing new.
        if op == ">&" && (redirection.target.allSatisfy(\.isNumber) || redirection.target == "-") { return false }
        return redirection.target != "/dev/null"
    }

    /// The kind a program makes the line ask for, or nil when the program (with these arguments) only reads.
    static func writingKind(_ name: String, arguments: ArraySlice<String>) -> ToolRisk.Kind? {
        guard readOnlyPrograms.contains(name) else { return program(name) }
        switch name {
        case "git":
            let sub = arguments.first { !$0.hasPrefix("-") }
            if arguments.contains(where: { $0 == "-c" || $0.hasPrefix("--exec-path") || $0.hasPrefix("--output") }) {
                return program("git")
            }
            guard let sub else { return nil }
            if readOnlyGit.contains(sub) { return nil }
            if sub == "branch" || sub == "remote" || sub == "tag" || sub == "stash" {
                // Listing forms only: flags, no names.
                let rest = arguments.drop { $0 != sub }.dropFirst()
                let listing: Set<String> = ["-a", "-r", "-v", "-vv", "--list", "-l", "--all", "list"]
                if rest.allSatisfy(listing.contains) { return nil }
            }
            return program("git " + sub)
        case "sort":
            return arguments.contains { $0 == "-o" || $0.hasPrefix("--output") || ($0.hasPrefix("-o") && $0.count > 2) }
                ? program(name) : nil
        case "tree":
            return arguments.contains { $0 == "-o" } ? program(name) : nil
        case "uniq":
            // `uniq input output` writes the output file.
            return arguments.filter { !$0.hasPrefix("-") }.count > 1 ? program(name) : nil
        case "find":
            let writing: Set<String> = [
                "-delete", "-exec", "-execdir", "-ok", "-okdir", "-fprint", "-fprint0", "-fprintf", "-fls",
            ]
            return arguments.contains(where: writing.contains) ? program(name) : nil
        default:
            return nil
        }
    }
}
