/// A command line taken apart with the grammar of the shell that runs it: `dash`, Debian's POSIX
/// `/bin/sh`, which the shell sandbox runs every command with (``ShellCommandLine/shell``). Quotes,
/// escapes, `&&`, `||`, `;`, `|`, `&`, subshells, `$( )`, backticks, redirections and
/// here-documents. The result is every simple command the line can run — including those inside
/// substitutions — so a policy can vet each one. Bash-only syntax is read as dash reads it (`&>`
/// is `&` then `>`: the next word runs as a command) or refused (`<( )`, `|&`), and constructs this
/// parser does not understand are errors, never guesses. `ShellGrammarDifferentialTests` checks it
/// against dash itself on a generated corpus.
public struct ShellCommandLine: Sendable, Hashable {
    /// One simple command.
    public struct Command: Sendable, Hashable {
        /// The words after quote removal; substitutions appear as `$(…)`. Leading assignments,
        /// redirections and their targets are not words.
        public var words: [String]
        /// Names assigned before the command (`FOO=1 cmd`) or by `export`/`declare`-style builtins.
        public var assignments: [String]
        /// True when the command's first word is computed (`$x`, `$(…)`, globs, brace lists), so
        /// the program that runs cannot be known before it runs.
        public var dynamicName: Bool

        public var name: String? { words.first }
    }

    public var commands: [Command]
    /// Operators and constructs in the order they appear: `&&`, `||`, `;`, `|`, `&`, `(`,
    /// `$(`, `` ` ``, `<(`, `>(`, redirections (`>`, `>>`, `<`, `<<`, `2>`, …) and line breaks (`\n`).
    public var operators: [String]
    /// Redirections with a target word, in order (here-documents are not among them).
    public var redirections: [Redirection] = []

    /// A redirection: its operator with any descriptor (`>`, `2>>`, `>&`, `<`) and its target word
    /// after quote removal.
    public struct Redirection: Sendable, Hashable {
        public var op: String
        public var target: String
    }

    /// The shell whose grammar this is; the sandbox runs commands with it.
    public static let shell = "/bin/dash"

    public static func parse(_ text: String) throws(ShellParseError) -> ShellCommandLine {
        var parser = Parser(bytes: Array(text.utf8))
        try parser.parseList(until: nil)
        if let pending = parser.pendingHeredocs.first {
            throw ShellParseError("here-document `<<\(pending.delimiter)` has no body before the end of the command")
        }
        return ShellCommandLine(
            commands: parser.commands, operators: parser.operators, redirections: parser.redirections)
    }
}

/// Why a command line could not be taken apart.
public struct ShellParseError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

private struct Heredoc {
    var delimiter: String
    var stripTabs: Bool
    var expands: Bool
}

private struct Parser {
    let bytes: [UInt8]
    var index = 0
    var commands: [ShellCommandLine.Command] = []
    var operators: [String] = []
    var redirections: [ShellCommandLine.Redirection] = []
    var pendingHeredocs: [Heredoc] = []

    init(bytes: [UInt8]) { self.bytes = bytes }

    // Per simple command.
    private var words: [String] = []
    private var assignments: [String] = []
    private var dynamicName = false
    /// `for`/`select`/`[[`: the rest of the command is data, not a program.
    private var restIsData = false

    // Per word.
    private var word: [UInt8]? = nil
    private var wordDynamic = false
    private var wordHasUnquotedEquals = false
    private var wordQuoted = false
    private var redirectTarget: String? = nil

    /// dash's reserved words (no `time`, `[[`, `function`, `select` or `coproc`: there those are
    /// ordinary command names).
    private static let keywordsBeforeCommand: Set<String> = [
        "if", "then", "else", "elif", "do", "while", "until", "!", "{",
    ]
    private static let keywordsEndingCommand: Set<String> = ["fi", "done", "}"]
    private static let unsupportedKeywords: [String: String] = [
        "case": "`case` statements", "function": "function definitions", "coproc": "`coproc`",
        "select": "`select` loops",
    ]

    mutating func parseList(until terminator: UInt8?) throws(ShellParseError) {
        while index < bytes.count {
            let byte = bytes[index]
            if let terminator, byte == terminator {
                try finishCommand()
                index += 1
                return
            }
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\t"):
                try finishWord()
                index += 1
            case UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                try finishCommand()
                operators.append("\n")
                index += 1
                try readHeredocBodies()
            case UInt8(ascii: "#") where word == nil:
                while index < bytes.count, bytes[index] != UInt8(ascii: "\n") { index += 1 }
            case UInt8(ascii: "'"):
                try singleQuoted()
            case UInt8(ascii: "\""):
                try doubleQuoted()
            case UInt8(ascii: "\\"):
                if peek(1) == UInt8(ascii: "\n") {
                    index += 2
                } else {
                    guard let next = peek(1) else { throw ShellParseError("the command ends with a lone backslash") }
                    append([next], quoted: true)
                    index += 2
                }
            case UInt8(ascii: "$"):
                try dollar(inDoubleQuotes: false)
            case UInt8(ascii: "`"):
                try backtick()
            case UInt8(ascii: ";"):
                if peek(1) == UInt8(ascii: ";") { throw ShellParseError("`;;` (case statements) is not supported") }
                try operatorBoundary(";", length: 1)
            case UInt8(ascii: "&"):
                // dash has no `&>` (bash's redirect-both): it is `&` (background) and then a
                // redirection, and the word after it starts a new command.
                if peek(1) == UInt8(ascii: "&") {
                    try operatorBoundary("&&", length: 2)
                } else {
                    try operatorBoundary("&", length: 1)
                }
            case UInt8(ascii: "|"):
                if peek(1) == UInt8(ascii: "|") {
                    try operatorBoundary("||", length: 2)
                } else if peek(1) == UInt8(ascii: "&") {
                    throw ShellParseError("`|&` is bash syntax; /bin/sh (dash) does not have it — use `2>&1 |`")
                } else {
                    try operatorBoundary("|", length: 1)
                }
            case UInt8(ascii: "("):
                if let current = word {
                    throw ShellParseError(
                        "unexpected `(` after `\(String(decoding: current, as: UTF8.self))` (function definitions are not supported)"
                    )
                }
                if let last = words.last {
                    throw ShellParseError("unexpected `(` after `\(last)` (function definitions are not supported)")
                }
                operators.append("(")
                index += 1
                try parseList(until: UInt8(ascii: ")"))
            case UInt8(ascii: ")"):
                throw ShellParseError("unexpected `)` with no matching `(`")
            case UInt8(ascii: "<"), UInt8(ascii: ">"):
                try redirection()
            case UInt8(ascii: "*"), UInt8(ascii: "?"), UInt8(ascii: "["):
                // A lone `[` (test) or `[[` is a word, not a bracket pattern.
                let next = peek(1)
                let literal =
                    byte == UInt8(ascii: "[")
                    && (next == nil || next == UInt8(ascii: "[") || next == UInt8(ascii: " ")
                        || next == UInt8(ascii: "\t") || next == UInt8(ascii: "\n"))
                append([byte], quoted: false)
                if !literal { wordDynamic = true }
                index += 1
            case UInt8(ascii: "{"):
                // `{a,b}` brace expansion makes a word (or several) out of a pattern.
                let pattern =
                    word != nil || peek(1).map({ $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") }) == true
                append([byte], quoted: false)
                if pattern { wordDynamic = true }
                index += 1
            case UInt8(ascii: "="):
                if word != nil, !wordQuoted { wordHasUnquotedEquals = true }
                append([byte], quoted: false)
                index += 1
            case UInt8(ascii: "~"):
                if word == nil { wordDynamic = true }
                append([byte], quoted: false)
                index += 1
            default:
                append([byte], quoted: false)
                index += 1
            }
        }
        if let terminator {
            throw ShellParseError(
                terminator == UInt8(ascii: ")")
                    ? "a `(` or `$(` is never closed with `)`" : "a backtick substitution is never closed")
        }
        try finishCommand()
    }

    private func peek(_ offset: Int) -> UInt8? {
        index + offset < bytes.count ? bytes[index + offset] : nil
    }

    private mutating func append(_ part: [UInt8], quoted: Bool) {
        if word == nil {
            word = []
            wordDynamic = false
            wordHasUnquotedEquals = false
            wordQuoted = false
        }
        word!.append(contentsOf: part)
        if quoted { wordQuoted = true }
    }

    private mutating func operatorBoundary(_ op: String, length: Int) throws(ShellParseError) {
        try finishCommand()
        operators.append(op)
        index += length
    }

    // MARK: Words

    private mutating func singleQuoted() throws(ShellParseError) {
        let start = index + 1
        guard let end = bytes[start...].firstIndex(of: UInt8(ascii: "'")) else {
            throw ShellParseError("a single quote (') is never closed")
        }
        append(Array(bytes[start..<end]), quoted: true)
        index = end + 1
    }

    private mutating func doubleQuoted() throws(ShellParseError) {
        index += 1
        append([], quoted: true)
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                return
            case UInt8(ascii: "\\"):
                guard let next = peek(1) else { break }
                if next == UInt8(ascii: "\n") {
                    index += 2
                } else if [UInt8(ascii: "$"), UInt8(ascii: "`"), UInt8(ascii: "\""), UInt8(ascii: "\\")].contains(next)
                {
                    append([next], quoted: true)
                    index += 2
                } else {
                    append([byte, next], quoted: true)
                    index += 2
                }
            case UInt8(ascii: "$"):
                try dollar(inDoubleQuotes: true)
            case UInt8(ascii: "`"):
                try backtick()
            default:
                append([byte], quoted: true)
                index += 1
            }
        }
        throw ShellParseError("a double quote (\") is never closed")
    }

    /// `$(…)`, `$((…))`, `${…}`, `$name` and a plain `$`.
    private mutating func dollar(inDoubleQuotes: Bool) throws(ShellParseError) {
        switch peek(1) {
        case UInt8(ascii: "(") where peek(2) == UInt8(ascii: "("):
            let start = index + 3
            var depth = 2
            var cursor = start
            while cursor < bytes.count, depth > 0 {
                if bytes[cursor] == UInt8(ascii: "(") { depth += 1 }
                if bytes[cursor] == UInt8(ascii: ")") { depth -= 1 }
                cursor += 1
            }
            guard depth == 0 else { throw ShellParseError("an arithmetic expansion `$((` is never closed") }
            let inner = bytes[start..<cursor]
            if inner.contains(UInt8(ascii: "`")) || contains(inner, "$(") {
                throw ShellParseError("command substitution inside `$(( ))` is not supported")
            }
            append(Array(bytes[index..<cursor]), quoted: inDoubleQuotes)
            wordDynamic = true
            index = cursor
        case UInt8(ascii: "("):
            try substitution("$(", startingAt: index + 2, quoted: inDoubleQuotes)
        case UInt8(ascii: "{"):
            let start = index + 2
            guard let end = bytes[start...].firstIndex(of: UInt8(ascii: "}")) else {
                throw ShellParseError("a parameter expansion `${` is never closed")
            }
            let inner = bytes[start..<end]
            if inner.contains(UInt8(ascii: "`")) || contains(inner, "$(") || inner.contains(UInt8(ascii: "{")) {
                throw ShellParseError("nested expansions inside `${ }` are not supported")
            }
            append(Array(bytes[index...end]), quoted: inDoubleQuotes)
            wordDynamic = true
            index = end + 1
        case let next?
        where next == UInt8(ascii: "_") || next == UInt8(ascii: "@") || next == UInt8(ascii: "*")
            || next == UInt8(ascii: "#") || next == UInt8(ascii: "?") || next == UInt8(ascii: "$")
            || next == UInt8(ascii: "!") || next == UInt8(ascii: "-") || (next >= 48 && next <= 57)
            || (next | 0x20 >= 97 && next | 0x20 <= 122):
            append([UInt8(ascii: "$")], quoted: inDoubleQuotes)
            wordDynamic = true
            index += 1
        default:
            append([UInt8(ascii: "$")], quoted: inDoubleQuotes)
            index += 1
        }
    }

    /// `$(…)`, `<(…)` or `>(…)` whose body starts at `start`: its commands are checked like the
    /// rest, and the word it sits in becomes computed.
    private mutating func substitution(_ op: String, startingAt start: Int, quoted: Bool) throws(ShellParseError) {
        operators.append(op)
        var inner = Parser(bytes: bytes)
        inner.index = start
        try inner.parseList(until: UInt8(ascii: ")"))
        commands += inner.commands
        operators += inner.operators
        index = inner.index
        append(Array("$(…)".utf8), quoted: quoted)
        wordDynamic = true
    }

    private mutating func backtick() throws(ShellParseError) {
        operators.append("`")
        var cursor = index + 1
        var inner: [UInt8] = []
        while cursor < bytes.count, bytes[cursor] != UInt8(ascii: "`") {
            if bytes[cursor] == UInt8(ascii: "\\"), cursor + 1 < bytes.count,
                [UInt8(ascii: "`"), UInt8(ascii: "\\"), UInt8(ascii: "$")].contains(bytes[cursor + 1])
            {
                inner.append(bytes[cursor + 1])
                cursor += 2
                continue
            }
            inner.append(bytes[cursor])
            cursor += 1
        }
        guard cursor < bytes.count else { throw ShellParseError("a backtick substitution is never closed") }
        var nested = Parser(bytes: inner)
        try nested.parseList(until: nil)
        commands += nested.commands
        operators += nested.operators
        index = cursor + 1
        append(Array("$(…)".utf8), quoted: false)
        wordDynamic = true
    }

    private func contains(_ slice: ArraySlice<UInt8>, _ needle: String) -> Bool {
        let pattern = Array(needle.utf8)
        guard slice.count >= pattern.count else { return false }
        var start = slice.startIndex
        while start + pattern.count <= slice.endIndex {
            if slice[start..<start + pattern.count].elementsEqual(pattern) { return true }
            start += 1
        }
        return false
    }

    // MARK: Redirections

    private mutating func redirection() throws(ShellParseError) {
        // A word of digits right before the operator is the file descriptor (`2>`).
        var prefix = ""
        if let current = word, !wordQuoted, !current.isEmpty, current.allSatisfy({ $0 >= 48 && $0 <= 57 }) {
            prefix = String(decoding: current, as: UTF8.self)
            word = nil
        } else {
            try finishWord()
        }
        var op = ""
        let first = bytes[index]
        op.append(Character(UnicodeScalar(first)))
        index += 1
        if peek(0) == UInt8(ascii: "(") {
            throw ShellParseError(
                "process substitution `\(op)(…)` is bash syntax; /bin/sh (dash) does not have it — use a pipe or a file"
            )
        } else {
            while let next = peek(0),
                next == UInt8(ascii: ">") || next == UInt8(ascii: "<") || next == UInt8(ascii: "&")
                    || next == UInt8(ascii: "|") || (next == UInt8(ascii: "-") && op == "<<")
            {
                op.append(Character(UnicodeScalar(next)))
                index += 1
                if op.count >= 3 { break }
            }
        }
        operators.append(prefix + op)
        redirectTarget = prefix + op
        if op == "<<" || op == "<<-" {
            try readHeredocDelimiter(stripTabs: op == "<<-")
            redirectTarget = nil
        }
    }

    private mutating func readHeredocDelimiter(stripTabs: Bool) throws(ShellParseError) {
        while index < bytes.count, bytes[index] == UInt8(ascii: " ") || bytes[index] == UInt8(ascii: "\t") {
            index += 1
        }
        var delimiter: [UInt8] = []
        var quoted = false
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "'") || byte == UInt8(ascii: "\"") {
                quoted = true
                guard let end = bytes[(index + 1)...].firstIndex(of: byte) else {
                    throw ShellParseError("the here-document delimiter has an unclosed quote")
                }
                delimiter += bytes[(index + 1)..<end]
                index = end + 1
            } else if byte == UInt8(ascii: "\\") {
                quoted = true
                index += 1
            } else if [
                UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: ";"), UInt8(ascii: "&"),
                UInt8(ascii: "|"), UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: ")"),
            ].contains(byte) {
                break
            } else {
                delimiter.append(byte)
                index += 1
            }
        }
        guard !delimiter.isEmpty else { throw ShellParseError("`<<` needs a here-document delimiter") }
        pendingHeredocs.append(
            Heredoc(delimiter: String(decoding: delimiter, as: UTF8.self), stripTabs: stripTabs, expands: !quoted))
    }

    private mutating func readHeredocBodies() throws(ShellParseError) {
        while !pendingHeredocs.isEmpty {
            let heredoc = pendingHeredocs.removeFirst()
            var closed = false
            while index < bytes.count {
                let end = bytes[index...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.count
                var line = bytes[index..<end]
                index = min(end + 1, bytes.count)
                if heredoc.stripTabs { line = line.drop(while: { $0 == UInt8(ascii: "\t") }) }
                if line.elementsEqual(heredoc.delimiter.utf8) {
                    closed = true
                    break
                }
                if heredoc.expands, line.contains(UInt8(ascii: "`")) || contains(line, "$(") {
                    throw ShellParseError(
                        "command substitution inside a here-document is not supported (quote the delimiter: <<'\(heredoc.delimiter)')"
                    )
                }
            }
            guard closed else {
                throw ShellParseError(
                    "here-document `<<\(heredoc.delimiter)` is never closed by a `\(heredoc.delimiter)` line")
            }
        }
    }

    // MARK: Commands

    private mutating func finishWord() throws(ShellParseError) {
        guard let current = word else { return }
        word = nil
        let text = String(decoding: current, as: UTF8.self)
        if let op = redirectTarget {
            redirections.append(ShellCommandLine.Redirection(op: op, target: text))
            redirectTarget = nil
            return
        }
        if restIsData {
            words.append(text)
            return
        }
        if words.isEmpty {
            if !wordQuoted {
                if Self.keywordsBeforeCommand.contains(text) {
                    return
                }
                if Self.keywordsEndingCommand.contains(text) { return }
                if let construct = Self.unsupportedKeywords[text] {
                    throw ShellParseError("\(construct) are not supported")
                }
                if text == "for" {
                    restIsData = true
                    return
                }
            }
            if wordHasUnquotedEquals, let equals = current.firstIndex(of: UInt8(ascii: "=")), equals > 0,
                current[..<equals].allSatisfy({
                    $0 == UInt8(ascii: "_") || ($0 >= 48 && $0 <= 57) || ($0 | 0x20 >= 97 && $0 | 0x20 <= 122)
                }),
                !(current[0] >= 48 && current[0] <= 57)
            {
                assignments.append(String(decoding: current[..<equals], as: UTF8.self))
                return
            }
            dynamicName = wordDynamic
        }
        words.append(text)
    }

    private mutating func finishCommand() throws(ShellParseError) {
        try finishWord()
        if redirectTarget != nil {
            throw ShellParseError("a redirection (`\(redirectTarget!)`) has no target")
        }
        if !restIsData, !words.isEmpty || !assignments.isEmpty {
            commands.append(
                ShellCommandLine.Command(words: words, assignments: assignments, dynamicName: dynamicName))
        }
        words = []
        assignments = []
        dynamicName = false
        restIsData = false
    }
}
