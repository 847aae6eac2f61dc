import OxydraConfig
import OxydraCore
import OxydraTesting
import Testing

@testable import OxydraTools

/// A tool for pipeline tests: echoes, sleeps, fails or floods on request.
struct ProbeTool: TypedTool {
    struct Arguments: Decodable, Sendable {
        var mode: String
        var size: Int?
    }
    var name = "probe"
    var safety: SafetyTier = .readOnly
    var timeout: Duration = .seconds(5)
    var declaration: ToolDeclaration {
        ToolDeclaration(
            name: name, description: "test probe",
            parameters: Schema.object(
                [
                    "mode": Schema.string("what to do", enum: ["echo", "sleep", "fail", "flood", "secret"]),
                    "size": Schema.integer("bytes", minimum: 1, maximum: 1_000_000),
                ], required: ["mode"]))
    }

    func run(_ arguments: Arguments, context: ToolContext) async throws -> ToolOutput {
        switch arguments.mode {
        case "sleep":
            try await Task.sleep(for: .seconds(30))
            return ToolOutput("woke up")
        case "fail": throw ToolError.executionFailed(tool: name, message: "it broke")
        case "flood": return ToolOutput(String(repeating: "é", count: (arguments.size ?? 20000) / 2))
        case "secret": return ToolOutput("config: api_key=sk_live_51HqZtLkJd8sP2mQ9xV3 done")
        default: return ToolOutput("echo")
        }
    }
}

@Suite("Tool registry pipeline")
struct RegistryTests {
    let registry = ToolRegistry(
        [ProbeTool(), ProbeTool(name: "danger", safety: .privileged), ProbeTool(name: "alpha")],
        approval: .denyPrivileged)

    @Test func declarationsAreSortedByName() {
        #expect(registry.declarations.map(\.name) == ["alpha", "danger", "probe"])
    }

    @Test func unknownToolsSuggestTheClosestName() async throws {
        let outcome = try await registry.call("prob", #"{"mode":"echo"}"#)
        #expect(outcome.isError)
        #expect(outcome.text == "unknown tool `prob`; did you mean `probe`?; available tools: alpha, danger, probe")
    }

    @Test func schemaViolationsComeBackWithTheSchema() async throws {
        let outcome = try await registry.call("probe", #"{"mode":"explode","size":0,"extra":true}"#)
        #expect(outcome.isError)
        let lines = outcome.text.split(separator: "\n").map(String.init)
        #expect(lines[0] == "invalid arguments for tool probe: schema validation failed:")
        #expect(lines[1] == "- Additional properties are not allowed ('extra' was unexpected)")
        #expect(lines[2] == "- at /mode: 'explode' is not one of ['echo', 'sleep', 'fail', 'flood', 'secret']")
        #expect(lines[3] == "- at /size: 0 is less than the minimum of 1")
        #expect(lines[4].hasPrefix("expected arguments (JSON Schema): {\"additionalProperties\":false"))
        let missing = try await registry.call("probe", "{}")
        #expect(
            missing.text.hasPrefix(
                "invalid arguments for tool probe: schema validation failed:\n- \"mode\" is a required property"))
    }

    @Test func malformedArgumentsAreNeverRun() async throws {
        let outcome = try await registry.call("probe", #"{"mode": "echo""#)
        #expect(outcome.isError)
        #expect(outcome.text.hasPrefix("invalid arguments for tool probe: arguments are not valid JSON ("))
        #expect(outcome.text.contains(#"raw arguments: {"mode": "echo""#))
        #expect(outcome.text.contains("expected arguments (JSON Schema)"))
    }

    @Test func timeoutsCancelTheTool() async throws {
        let clock = ContinuousClock()
        let start = clock.now
        let outcome = try await registry.call("probe", #"{"mode":"sleep"}"#, limit: .milliseconds(200))
        #expect(outcome.text == "tool probe timed out after 0s")
        #expect(clock.now - start < .seconds(2))
    }

    @Test func failuresBecomeResults() async throws {
        let outcome = try await registry.call("probe", #"{"mode":"fail"}"#)
        #expect(outcome.isError)
        #expect(outcome.text == "tool execution failed for probe: it broke")
    }

    @Test func outputOver16KiBIsCutAtACharacterBoundary() async throws {
        let outcome = try await registry.call("probe", #"{"mode":"flood","size":40000}"#)
        #expect(outcome.originalBytes == 40000)
        #expect(outcome.text.hasSuffix("\n...[output truncated: 40000 bytes total]"))
        let body = outcome.text.replacing("\n...[output truncated: 40000 bytes total]", with: "")
        #expect(body.utf8.count == 16384)
        #expect(body.allSatisfy { $0 == "é" })
        let small = try await registry.call("probe", #"{"mode":"flood","size":100}"#)
        #expect(small.originalBytes == nil)
    }

    @Test func privilegedToolsNeedApproval() async throws {
        let denied = try await registry.call("danger", #"{"mode":"echo"}"#)
        #expect(
            denied.text == "blocked by security policy (ApprovalRequired): danger is privileged and was not approved "
                + "(tools.privileged = \"deny\")")
        let approving = ToolRegistry([ProbeTool(name: "danger", safety: .privileged)], approval: .allowAll)
        #expect(try await approving.call("danger", #"{"mode":"echo"}"#).text == "echo")
    }

    @Test func outputIsScrubbed() async throws {
        #expect(try await registry.call("probe", #"{"mode":"secret"}"#).text == "config: api_key=[REDACTED] done")
    }

    @Test func cancellationPropagates() async throws {
        let task = Task { try await registry.call("probe", #"{"mode":"sleep"}"#) }
        try await Task.sleep(for: .milliseconds(50))
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
    }
}

@Suite("Schema validator")
struct SchemaValidatorTests {
    let schema: JSONValue = [
        "type": "object", "additionalProperties": false, "required": ["name"],
        "properties": [
            "name": ["type": "string", "minLength": 1, "maxLength": 5],
            "count": ["type": "integer", "minimum": 1, "maximum": 10],
            "ratio": ["type": "number"],
            "tags": ["type": "array", "items": ["type": "string"], "maxItems": 2],
            "kind": ["type": ["string", "null"], "enum": ["a", "b", .null]],
        ],
    ]

    @Test(arguments: [
        (#"{"name":"ok"}"#, [String]()),
        (#"{"name":"ok","count":3,"ratio":0.5,"tags":["x"],"kind":null}"#, []),
        (#"{"name":"ok","count":3.0}"#, []),
        (#"{}"#, [#""name" is a required property"#]),
        (#"{"name":""}"#, ["at /name: '' should be non-empty"]),
        (#"{"name":"toolong"}"#, ["at /name: string of 7 characters is too long (maximum 5)"]),
        (#"{"name":5}"#, ["at /name: 5 is not of type 'string'"]),
        (#"{"name":"a","count":11}"#, ["at /count: 11 is greater than the maximum of 10"]),
        (#"{"name":"a","count":1.5}"#, ["at /count: 1.5 is not of type 'integer'"]),
        (
            #"{"name":"a","tags":["x",2,"z"]}"#,
            ["array has 3 items; at most 2 allowed", "at /tags/1: 2 is not of type 'string'"]
        ),
        (#"{"name":"a","kind":"c"}"#, ["at /kind: 'c' is not one of ['a', 'b', null]"]),
        (#"{"name":"a","x":1,"y":2}"#, ["Additional properties are not allowed ('x', 'y' were unexpected)"]),
        (#"[1]"#, ["[…] is not of type 'object'"]),
    ])
    func violations(_ arguments: String, _ expected: [String]) throws {
        var problems = SchemaValidator.violations(of: try JSONValue(parsing: arguments), against: schema)
        problems = problems.map { $0.hasPrefix("at /tags: ") ? String($0.dropFirst(10)) : $0 }
        #expect(problems == expected)
    }
}

@Suite("Output scrubbing")
struct ScrubberTests {
    let scrubber = OutputScrubber(workspace: nil)

    @Test(arguments: [
        ("api_key=sk_live_abcdef1234567890", "api_key=[REDACTED]"),
        ("export OPENAI_API_KEY=sk-proj-abc123", "export OPENAI_API_KEY=[REDACTED]"),
        ("Authorization: Bearer abc.def.ghi", "Authorization: Bearer [REDACTED]"),
        (#"{"password":"hunter2"}"#, #"{"password":"[REDACTED]"}"#),
        (#"{"client_secret": "s3cr3t", "user": "bob"}"#, #"{"client_secret": "[REDACTED]", "user": "bob"}"#),
        ("the token is abc123", "the token is [REDACTED]"),
        (
            "GET https://api.example.com/v1/x?api_key=XYZ123&page=2",
            "GET https://api.example.com/v1/x?api_key=[REDACTED]&page=2"
        ),
        ("artifact_id=A1b2C3d4E5f6G7h8I9j0K1l2M3n4", "artifact_id=[REDACTED]"),
        ("commit 3f2a9c1b7e8d4f6a0b5c2d9e8f7a6b5c4d3e2f1a", "commit 3f2a9c1b7e8d4f6a0b5c2d9e8f7a6b5c4d3e2f1a"),
        ("saved note-3f2a9c1b-7e8d-4f6a-0b5c-2d9e8f7a6b5c ok", "saved note-3f2a9c1b-7e8d-4f6a-0b5c-2d9e8f7a6b5c ok"),
        (
            "see /shared/projects/alpha/reports/quarterly_summary_2026.md",
            "see /shared/projects/alpha/reports/quarterly_summary_2026.md"
        ),
        ("plain words only, nothing to hide", "plain words only, nothing to hide"),
        ("cannot open /etc/passwd: Invalid argument", "cannot open /etc/passwd: Invalid argument"),
        ("read /etc/password-policy: denied", "read /etc/password-policy: denied"),
        ("db:\n  password: hunter2\n", "db:\n  password: [REDACTED]\n"),
        // Quoted values: exactly the agent.toml format, and YAML, shell and JavaScript.
        (#"api_key = "sk-short1""#, #"api_key = "[REDACTED]""#),
        ("password='hunter2'", "password='[REDACTED]'"),
        ("token: 'abc123def'", "token: '[REDACTED]'"),
        (#"secret="s3cr3t-value""#, #"secret="[REDACTED]""#),
        (#"const config = { apiKey: "AIzaShort9" };"#, #"const config = { apiKey: "[REDACTED]" };"#),
        ("apiKey: plainvalue42", "apiKey: [REDACTED]"),
        ("x-api-key: abcdef123456", "x-api-key: [REDACTED]"),
        ("X-Api-Key: abcdef123456", "X-Api-Key: [REDACTED]"),
        ("curl -H 'x-api-key: k-9f8e7d' https://h", "curl -H 'x-api-key: [REDACTED]' https://h"),
        (
            "clone https://alice:pw1234@git.example.com/repo.git",
            "clone https://alice:[REDACTED]@git.example.com/repo.git"
        ),
        ("postgres://app:s3cret@db:5432/x", "postgres://app:[REDACTED]@db:5432/x"),
        (
            "mail alice@example.com about https://example.com/a@b",
            "mail alice@example.com about https://example.com/a@b"
        ),
    ])
    func vectors(_ input: String, _ expected: String) {
        #expect(scrubber.scrub(input) == expected)
    }

    /// Secrets the guest holds are redacted wherever they appear, whatever their shape — a short
    /// provider key in prose has no keyword and too little entropy for the patterns.
    @Test func knownSecretsAreRedactedByExactMatch() {
        var config = AgentConfig()
        config.providers.registry["openai"]?.apiKey = "sk-tiny"
        config.memory.authToken = "memtok-42"
        let environment = [
            "GITHUB_TOKEN": "ghp_short", "ANTHROPIC_API_KEY": "ant-key-7", "HOME": "/root", "X": "sk-tiny2",
        ]
        let secrets = KnownSecrets.values(in: config, environment: environment)
        #expect(Set(secrets) == ["sk-tiny", "memtok-42", "ghp_short", "ant-key-7"])
        let scrubber = OutputScrubber(workspace: nil, secrets: secrets + ["gateway-token-value"])
        let text = "the key sk-tiny works; gh ghp_short; ant-key-7 and memtok-42; gateway-token-value; home /root"
        #expect(
            scrubber.scrub(text)
                == "the key [REDACTED] works; gh [REDACTED]; [REDACTED] and [REDACTED]; [REDACTED]; home /root")
        // Too short to match safely: left to the patterns.
        #expect(OutputScrubber(workspace: nil, secrets: ["abc"]).scrub("abc def") == "abc def")
    }

    /// The patterns run on windows of lines, not the whole text; on thousands of generated texts —
    /// keys in any case and spelling, values on the next lines, quotes, URLs, query strings,
    /// non-ASCII look-alikes (the Kelvin sign) — the result is what the patterns give on the whole
    /// text (the reference below is the scrubber's keyword, query and URL passes applied whole).
    @Test func windowsGiveWhatTheWholeTextGives() {
        let pieces = [
            "api_key", "API-KEY", "apiKey", "x-api-key", "access_token", "Refresh-Token", "token", "TOKEN",
            "password", "passwd", "PassWord", "client_secret", "secret", "Bearer", "basic", "monkey", "tokenizer",
            "api_\u{212A}ey", "pa\u{017F}\u{017F}word", "=", ":", " = ", ": ", " is ", "\"", "'", "{", "}", ",",
            ";", "&", "?", "@", "://", "https://alice:pw12@host/x", "?api_key=XYZ&page=2", "&sig=abc#frag",
            "value123", "hunter2", "s3cr3t-value", "\n", "\n\n", "  ", "\t", "é", "日本", "🙂", "[REDACTED]",
            "/etc/passwd",
            "db:\n  password: hunter2\n", #"{"password":"x"}"#, "Authorization: Bearer abc.def",
        ]
        var generator = SystemRandomNumberGenerator()
        var seed = UInt64.random(in: 0...UInt64.max, using: &generator)
        func next(_ bound: Int) -> Int {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((seed >> 33) % UInt64(bound))
        }
        let initialSeed = seed
        for round in 0..<3_000 {
            var text = ""
            for _ in 0..<(1 + next(24)) { text += pieces[next(pieces.count)] }
            let windowed = scrubber.scrub(text)
            let whole = Self.wholeText(text)
            #expect(windowed == whole, "round \(round) (seed \(initialSeed)): \(text.debugDescription)")
            if windowed != whole { return }
        }
    }

    /// The byte pre-check before a character search: never false when the text holds the needle.
    @Test func theBytePreCheckNeverMissesANeedle() {
        let cases: [(String, String, Bool)] = [
            ("aaab", "aab", true), ("xyz", "xyz", true), ("xyz", "yz", true), ("xyz", "xy", true),
            ("ab", "abc", false), ("", "a", false), ("sk-live-1 and more", "sk-live-2", false),
            ("café", "é", true), ("abc\u{301}", "abc", true), ("ab", "", true),
        ]
        for (text, needle, expected) in cases {
            #expect(OutputScrubber.mayContain(text, needle) == expected, "\(text.debugDescription) ∋ \(needle)")
            if text.contains(needle) { #expect(OutputScrubber.mayContain(text, needle)) }
        }
        // A secret followed by a combining mark is another character: left as it was before.
        let scrubber = OutputScrubber(workspace: nil, secrets: ["gateway-token-value"])
        #expect(scrubber.scrub("x gateway-token-value\u{301} y") == "x gateway-token-value\u{301} y")
        #expect(scrubber.scrub("x gateway-token-value y") == "x [REDACTED] y")
    }

    /// The scrubber as it was before windows: every pattern over the whole text.
    static func wholeText(_ text: String) -> String {
        var result = text
        if result.firstMatch(of: OutputScrubber.keyword) != nil {
            result = OutputScrubber.keepingGroup(OutputScrubber.jsonSecret, in: result, suffix: "\"")
            result = OutputScrubber.keepingGroup(OutputScrubber.quotedAssignment, in: result)
            result = OutputScrubber.keepingGroup(OutputScrubber.assignment, in: result)
            result = OutputScrubber.keepingGroup(OutputScrubber.bearer, in: result)
        }
        result = OutputScrubber.keepingGroup(OutputScrubber.querySecret, in: result)
        if result.contains("@") {
            result = OutputScrubber.keepingGroup(OutputScrubber.urlPassword, in: result, suffix: "@")
        }
        return OutputScrubber.redactHighEntropy(result)
    }

    @Test func awsStyleKeysAreCaughtByEntropy() {
        let text = "aws_secret_access_key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
        #expect(scrubber.scrub(text) == "aws_secret_access_key [REDACTED]")
    }
}
