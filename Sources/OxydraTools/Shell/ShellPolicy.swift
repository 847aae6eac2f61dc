import OxydraCore

/// Decides whether `shell_exec` may run a command line (`[tools.shell]`).
///
/// Every program the line can start is checked — each side of `&&`, `||`, `;`, `|`, `&`, inside
/// subshells, `$( )`, backticks and process substitution, and the program behind wrappers such as
/// `env`, `xargs`, `timeout`, `nice` or `find -exec`. `deny` always wins over `allow`, including `*`.
/// The policy narrows what the agent asks for; the sandbox is what contains it.
public struct ShellPolicy: Sendable, Hashable {
    public var allow: [String]
    public var deny: [String]
    public var allowOperators: Bool

    public init(allow: [String], deny: [String], allowOperators: Bool) {
        self.allow = allow.map { $0.trimmed.lowercased() }
        self.deny = deny.map { $0.trimmed.lowercased() }
        self.allowOperators = allowOperators
    }

    public init(_ config: ShellToolsConfig) {
        self.init(allow: config.allowed, deny: config.deny, allowOperators: config.allowOperators)
    }

    /// Shell builtins with no effect outside the command itself; allowed unless denied.
    static let harmlessBuiltins: Set<String> = [
        "cd", "true", "false", ":", "test", "[", "pwd", "echo", "printf", "exit", "read", "wait", "export", "unset",
        "set", "shift", "local", "declare", "readonly", "type",
    ]
    /// Builtins that run another program; the program is checked instead.
    static let transparentWrappers: Set<String> = ["command", "exec", "builtin"]
    /// Variables that change which program runs or what the shell executes.
    static let protectedVariables: Set<String> = [
        "PATH", "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "BASH_ENV", "ENV", "IFS", "SHELLOPTS", "BASHOPTS",
        "PROMPT_COMMAND", "PS4", "CDPATH", "GLOBIGNORE",
    ]
    /// Directories whose programs are named by their basename.
    static let systemDirectories: Set<String> = [
        "/bin", "/usr/bin", "/usr/local/bin", "/sbin", "/usr/sbin", "/usr/local/sbin",
    ]

    public enum Decision: Sendable, Hashable {
        case allowed
        case refused(String)
    }

    public func check(_ commandLine: String) -> Decision {
        if commandLine.allSatisfy(\.isWhitespace) { return .refused("the command is empty") }
        let parsed: ShellCommandLine
        do {
            parsed = try ShellCommandLine.parse(commandLine)
        } catch {
            return .refused("the command could not be checked: \(error.message)")
        }
        if !allowOperators, let op = parsed.operators.first(where: { $0 != "\n" }) ?? parsed.operators.first {
            let shown = op == "\n" ? "a line break" : "`\(op)`"
            return .refused(
                "operators are disabled (tools.shell.allow_operators = false) and the command uses \(shown); run one program at a time"
            )
        }
        for command in parsed.commands {
            if case .refused(let reason) = check(command) { return .refused(reason) }
        }
        return .allowed
    }

    private func check(_ command: ShellCommandLine.Command) -> Decision {
        for name in command.assignments where Self.protectedVariables.contains(name) {
            return .refused("setting \(name) is not allowed: it changes which program runs")
        }
        guard !command.words.isEmpty else { return .allowed }
        if command.dynamicName {
            return .refused(
                "the program name `\(command.words[0])` is computed when the command runs (variables, substitutions or patterns), so it cannot be checked; write the program name literally"
            )
        }
        var words = command.words[...]
        while let first = words.first {
            let name = Self.programName(first)
            if let denial = denied(name) { return .refused(denial) }
            if Self.transparentWrappers.contains(name) {
                words = Self.skipOptions(words.dropFirst(), takingValue: [])
                if words.first == nil { return .allowed }
                continue
            }
            if name == "export" || name == "declare" || name == "readonly" || name == "local" {
                for word in words.dropFirst() {
                    let variable = String(word.prefix { $0 != "=" })
                    if Self.protectedVariables.contains(variable) {
                        return .refused("setting \(variable) is not allowed: it changes which program runs")
                    }
                }
            }
            if !Self.harmlessBuiltins.contains(name) {
                guard allowed(name) else {
                    return .refused(
                        "`\(name)` is not an allowed command (tools.shell.allow; the agent may run: \(allowSummary))")
                }
            }
            if name == "find" {
                var rest = words.dropFirst()
                while let index = rest.firstIndex(where: { ["-exec", "-execdir", "-ok", "-okdir"].contains($0) }) {
                    rest = rest[(index + 1)...]
                    guard let program = rest.first else { break }
                    let inner = ShellCommandLine.Command(
                        words: Array(rest.prefix { $0 != ";" && $0 != "+" }), assignments: [], dynamicName: false)
                    if program.contains("$") || program.contains("{}") {
                        return .refused("`find -exec` must name its program literally")
                    }
                    if case .refused(let reason) = check(inner) { return .refused(reason) }
                }
                return .allowed
            }
            guard let wrapped = Self.wrappedProgram(name, arguments: words.dropFirst()) else { return .allowed }
            switch wrapped {
            case .refused(let reason): return .refused(reason)
            case .program(let rest):
                if let program = rest.first, program.contains("$") || program.contains("*") {
                    return .refused("`\(name)` must name the program it runs literally (got `\(program)`)")
                }
                words = rest
            }
        }
        return .allowed
    }

    /// The programs one simple command runs, as the policy checks them: its name and, behind each
    /// wrapper (`env`, `time`, `xargs`, `command`…), the program the wrapper starts.
    public static func programs(of command: ShellCommandLine.Command) -> [String] {
        stages(of: command).compactMap(\.first)
    }

    /// The words of each program one simple command runs: the command itself, then behind each
    /// wrapper the wrapped program with its arguments. A wrapper that refuses (`env -S`) ends the list.
    public static func stages(of command: ShellCommandLine.Command) -> [ArraySlice<String>] {
        var words = command.words[...]
        var result: [ArraySlice<String>] = []
        while let name = words.first {
            result.append(words)
            if transparentWrappers.contains(name) {
                words = words.dropFirst()
                continue
            }
            guard case .program(let rest)? = wrappedProgram(programName(name), arguments: words.dropFirst()) else {
                break
            }
            words = rest
        }
        return result
    }

    private enum Wrapped {
        case program(ArraySlice<String>)
        case refused(String)
    }

    /// The program a wrapper such as `env` or `xargs` runs, with its arguments; nil for none.
    private static func wrappedProgram(_ name: String, arguments: ArraySlice<String>) -> Wrapped? {
        var rest: ArraySlice<String>
        switch name {
        case "env":
            rest = arguments
            while let word = rest.first {
                if word == "-S" || word.hasPrefix("--split-string") || (word.hasPrefix("-") && word.contains("S")) {
                    return .refused("`env -S` is not allowed: it runs a program named inside a string")
                }
                if word == "-u" || word == "--unset" || word == "-C" || word == "--chdir" {
                    rest = rest.dropFirst(2)
                } else if word.hasPrefix("-") {
                    rest = rest.dropFirst()
                } else if word.contains("=") {
                    let variable = String(word.prefix { $0 != "=" })
                    if protectedVariables.contains(variable) {
                        return .refused("setting \(variable) is not allowed: it changes which program runs")
                    }
                    rest = rest.dropFirst()
                } else {
                    break
                }
            }
        case "nice":
            rest = skipOptions(arguments, takingValue: ["-n", "--adjustment"])
        case "nohup", "setsid", "time":
            rest = skipOptions(arguments, takingValue: [])
        case "stdbuf":
            rest = skipOptions(arguments, takingValue: ["-i", "-o", "-e"])
        case "timeout":
            rest = skipOptions(arguments, takingValue: ["-s", "--signal", "-k", "--kill-after"]).dropFirst()
        case "xargs":
            rest = skipOptions(
                arguments,
                takingValue: ["-I", "-i", "-n", "-P", "-d", "-E", "-e", "-L", "-l", "-s", "-a", "--arg-file"])
            if rest.isEmpty { return nil }  // xargs alone runs echo
        default:
            return nil
        }
        return rest.isEmpty ? nil : .program(rest)
    }

    private static func skipOptions(_ words: ArraySlice<String>, takingValue: Set<String>) -> ArraySlice<String> {
        var rest = words
        while let word = rest.first, word.hasPrefix("-") {
            if word == "--" { return rest.dropFirst() }
            rest = takingValue.contains(word) ? rest.dropFirst(2) : rest.dropFirst()
        }
        return rest
    }

    /// The name a program is checked by: the lowercased basename for system directories, the
    /// whole path otherwise (so `/shared/ls` is not `ls`).
    static func programName(_ word: String) -> String {
        guard let slash = word.lastIndex(of: "/") else { return word.lowercased() }
        let directory = String(word[..<slash])
        let base = String(word[word.index(after: slash)...])
        return systemDirectories.contains(directory) ? base.lowercased() : word.lowercased()
    }

    private func denied(_ name: String) -> String? {
        let base = name.split(separator: "/").last.map(String.init) ?? name
        guard let entry = deny.first(where: { Self.matches($0, name) || Self.matches($0, base) }) else { return nil }
        return entry == name || entry == base
            ? "`\(name)` is denied by tools.shell.deny" : "`\(name)` is denied by tools.shell.deny (`\(entry)`)"
    }

    private func allowed(_ name: String) -> Bool {
        allow.contains { Self.matches($0, name) }
    }

    private var allowSummary: String {
        let shown = allow.prefix(40).joined(separator: ", ")
        return allow.count > 40 ? shown + ", …" : shown
    }

    /// `*` matches any run of characters, `?` one character; everything else literally.
    static func matches(_ pattern: String, _ name: String) -> Bool {
        let pattern = Array(pattern.utf8)
        let name = Array(name.utf8)
        var p = 0
        var n = 0
        var star: Int? = nil
        var starMatch = 0
        while n < name.count {
            if p < pattern.count, pattern[p] == UInt8(ascii: "?") || pattern[p] == name[n] {
                p += 1
                n += 1
            } else if p < pattern.count, pattern[p] == UInt8(ascii: "*") {
                star = p
                starMatch = n
                p += 1
            } else if let star {
                p = star + 1
                starMatch += 1
                n = starMatch
            } else {
                return false
            }
        }
        while p < pattern.count, pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.count
    }
}
