import Foundation
import OxydraCore
import OxydraSandbox
import OxydraTesting
import OxydraTools
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The command-line policy is only as good as its parser: it must find every program the shell
/// will run. This runs a generated corpus of command lines — operators, redirections (bash's `&>`
/// among them), quoting, comments, here-documents, substitutions, subshells and groups — through
/// dash inside the real sandbox, where every command name is a stub program that records its own
/// name, and compares what ran with what `ShellCommandLine` reported.
@Suite(
    "Shell grammar against dash", .serialized, .timeLimit(.minutes(3)),
    .enabled(
        if: Capability.shouldRun(sandboxUnavailable),
        "\(Capability.skipReason("shell grammar differential tests", sandboxUnavailable))"))
struct ShellGrammarDifferentialTests {
    @Test func theParserUsesTheSandboxShell() {
        #expect(ShellCommandLine.shell == ShellSandbox.shell)
        #expect(sandboxUnavailable == nil, "required but missing: \(sandboxUnavailable ?? "")")
    }

    @Test func theParserFindsEveryProgramDashRuns() async throws {
        let count = Int(ProcessInfo.processInfo.environment["OXYDRA_GRAMMAR_CASES"] ?? "") ?? 1500
        var generator = CommandLineGenerator(seed: 0x5EED_0F_DA5C)
        let lines = (0..<count).map { _ in generator.line() } + CommandLineGenerator.fixed

        let daemon = try DaemonFixture(sandboxed: true)
        defer { daemon.stop() }
        let shared = daemon.shared
        for directory in ["bin", "cases", "trace", "status", "work"] {
            try FileManager.default.createDirectory(atPath: shared + "/" + directory, withIntermediateDirectories: true)
        }
        // Stubs: p0…p9 succeed, q0…q9 fail; each appends its name to $TRACE.
        for prefix in ["p", "q"] {
            for digit in 0..<10 {
                let path = shared + "/bin/\(prefix)\(digit)"
                let body = "#!/bin/dash\necho \"${0##*/}\" >> \"$TRACE\"\n" + (prefix == "q" ? "exit 1\n" : "")
                try body.write(toFile: path, atomically: false, encoding: .utf8)
                chmod(path, 0o755)
            }
        }
        try "input\n".write(toFile: shared + "/work/i1", atomically: false, encoding: .utf8)

        var expected: [Int: (names: Set<String>, exact: Bool)] = [:]
        var refused = 0
        for (number, line) in lines.enumerated() {
            guard let parsed = try? ShellCommandLine.parse(line) else {
                refused += 1
                continue
            }
            let programs = parsed.commands.flatMap(ShellPolicy.programs(of:))
            let names = Set(programs.filter(CommandLineGenerator.isStub))
            // Where the line's outcome depends on exit statuses, some reported programs may not run.
            let dependsOnStatus =
                parsed.operators.contains("||")
                || (parsed.operators.contains("&&")
                    && (line.contains("!")
                        || programs.contains { !$0.hasPrefix("p") || !CommandLineGenerator.isStub($0) }))
            expected[number] = (names, !dependsOnStatus)
            try (line + "\nwait\n").write(
                toFile: shared + "/cases/\(number)", atomically: false, encoding: .utf8)
        }
        #expect(refused < lines.count / 4, "the parser refused \(refused) of \(lines.count) lines")

        let session = try await DaemonSession.open(try await daemon.connect(), cwd: "/shared/work")
        let driver = """
            for f in /shared/cases/*; do n=${f##*/}; : > /shared/trace/$n; \
            TRACE=/shared/trace/$n PATH=/shared/bin:/usr/bin:/bin /bin/dash $f </dev/null >/dev/null 2>&1; \
            echo $? > /shared/status/$n; done; echo finished
            """
        let run: (chunks: [ShellOutputChunk], last: ShellOutputChunk)
        do {
            run = try await session.run(driver, timeout: 170)
        } catch {
            let log = (try? String(contentsOfFile: daemon.log, encoding: .utf8)) ?? ""
            throw TestSupportError("\(error); daemon log:\n\(log.suffix(2000))")
        }
        try #require(run.chunks.text(.stdout).hasSuffix("finished\n"), "driver: \(run.chunks.text(.stderr))")

        var missed: [String] = []
        var extra: [String] = []
        var compared = 0
        for (number, entry) in expected.sorted(by: { $0.key < $1.key }) {
            let trace = (try? String(contentsOfFile: shared + "/trace/\(number)", encoding: .utf8)) ?? ""
            let status = (try? String(contentsOfFile: shared + "/status/\(number)", encoding: .utf8))?.trimmed
            let ran = Set(trace.split(separator: "\n").map(String.init))
            // The security property: nothing runs that the parser did not report.
            if !ran.isSubset(of: entry.names) {
                missed.append(
                    "\(lines[number].debugDescription): ran \(ran.sorted()), parser saw \(entry.names.sorted())")
            }
            // And the parser is not just cautious: where every reported program must run, all did
            // (dash exits 2 on a syntax error, and then runs nothing of that line).
            if entry.exact && status != "2" && ran != entry.names {
                extra.append(
                    "\(lines[number].debugDescription): ran \(ran.sorted()), parser saw \(entry.names.sorted())")
            }
            compared += 1
        }
        #expect(compared > lines.count / 2)
        #expect(missed.isEmpty, "programs the parser missed:\n\(missed.prefix(10).joined(separator: "\n"))")
        #expect(extra.isEmpty, "reported but never run:\n\(extra.prefix(10).joined(separator: "\n"))")
    }
}

/// Command lines from a small grammar of dash, seeded so a failure can be replayed.
struct CommandLineGenerator {
    var random: SeededGenerator

    init(seed: UInt64) { random = SeededGenerator(seed: seed) }

    static func isStub(_ name: String) -> Bool {
        name.count == 2 && (name.first == "p" || name.first == "q") && name.last!.isNumber
    }

    /// Lines that once fooled a parser.
    static let fixed = [
        "p1 &>/dev/null p2 victim", "p1 &>o1 p2", "p1 &>>o1 p2 x", "echo &>/dev/stderr p3 -c x", "p1&p2", "p1&&p2",
        "p1;p2", "p1|p2", "p1 # p2", "p1 'a;p2'", "p1 \"$(p2)\"", "p1 `p2`", "p1 \\\np2", "time p1", ">o1 p2",
        "2>o1 p3 x", "p1 <<EOF\np2\nEOF\np3", "p1 <<'EOF'\n$(p2)\nEOF", "p1 <<-EOF\n\tx\n\tEOF", "{ p1; p2; }",
        "(p1; p2) | p3", "for x in p1 p2; do p3; done", "! p1", "p\\1", "'p2' x", "\"p3\" y", "p1 >|o1", "p1 <>o2",
        "p1 2>&1 | p2", "p1 >&2", "x=1 p1", "p1 x=1", "[[ -f a ]] && p1", "p1 $(p2 $(p3))",
    ]

    mutating func next() -> UInt64 { random.next() }
    mutating func pick<T>(_ options: [T]) -> T { random.pick(options) }
    mutating func chance(_ percent: Int) -> Bool { random.chance(percent) }

    mutating func name() -> String {
        let stub = pick(["p", "p", "p", "q"]) + String(next() % 10)
        switch next() % 6 {
        case 0: return "'\(stub)'"
        case 1: return "\"\(stub)\""
        case 2: return "\(stub.prefix(1))\\\(stub.suffix(1))"
        default: return stub
        }
    }

    mutating func redirection() -> String {
        pick([
            ">o1", ">>o1", "<i1", "2>o2", "2>&1", ">&2", "&>o1", "&>>o2", ">|o1", "<>o2", "2>/dev/null", "> o1",
            "&> o2", "1>o1", "<&0",
        ])
    }

    mutating func argument(depth: Int) -> String {
        switch next() % 10 {
        case 0 where depth < 2: return "\"$(\(list(depth: depth + 1)))\""
        case 1 where depth < 2: return "`\(simple(depth: 2))`"
        case 2: return "'a;b|c&d'"
        case 3: return "\"x && y\""
        case 4: return "$HOME"
        case 5: return "a\\;b"
        default: return pick(["a", "b", "-c", "--x=1", "o1", "=", "x=1"])
        }
    }

    mutating func simple(depth: Int) -> String {
        var words: [String] = []
        if chance(10) { words.append("V\(next() % 3)=1") }
        if chance(10) { words.append(redirection()) }
        words.append(name())
        for _ in 0..<(next() % 3) { words.append(argument(depth: depth)) }
        if chance(35) { words.append(redirection()) }
        if chance(10) { words.append(name()) }
        return words.joined(separator: " ")
    }

    mutating func command(depth: Int) -> String {
        switch next() % 12 {
        case 0 where depth < 2: return "( \(list(depth: depth + 1)) )"
        case 1 where depth < 2: return "{ \(list(depth: depth + 1)); }"
        case 2: return "! " + simple(depth: depth)
        case 3: return "for v in a b; do \(simple(depth: depth)); done"
        default: return simple(depth: depth)
        }
    }

    mutating func list(depth: Int) -> String {
        var text = command(depth: depth)
        for _ in 0..<(next() % 3) {
            let separator = pick([" ; ", " && ", " || ", " | ", " & ", "\n", ";", "&&", "|", " &", "& "])
            text += separator + command(depth: depth)
        }
        return text
    }

    mutating func line() -> String {
        var text = list(depth: 0)
        if chance(8) { text += " # " + simple(depth: 2) }
        if chance(8) {
            let quoted = chance(50)
            text += " <<\(quoted ? "'END'" : "END")\n\(pick(["body", "p1 here", "$HOME"]))\nEND\n" + simple(depth: 2)
        }
        return text
    }
}
