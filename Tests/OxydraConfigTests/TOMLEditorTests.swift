import Foundation
import OxydraConfig
import OxydraCore
import Testing

@Suite("TOML editing keeps the file as written")
struct TOMLEditorTests {
    private let source = ConfigSource.file("agent.toml")

    private func edited(_ text: String, _ edits: [TOMLEditor.Edit]) throws -> String {
        var editor = TOMLEditor(text: text, source: source)
        try editor.apply(edits)
        return editor.text
    }

    private let sample = """
        # Oxydra agent configuration
        config_version = "1.0.0"   # keep

        [selection]
        # which model answers
        provider = "openai"  # the default provider
        model = "gpt-4o-mini"

        # Tools
        [tools.shell]
        allow = [
          "git",   # version control
          "make",
        ]

        [providers.registry.local]
        provider_type = "openai"
        base_url = "http://127.0.0.1:11434"

        """

    @Test func replacingAValueKeepsCommentsSpacingAndOrder() throws {
        let result = try edited(sample, [.set(["selection", "model"], .string("gpt-4.1"))])
        #expect(result == sample.replacingOccurrences(of: "\"gpt-4o-mini\"", with: "\"gpt-4.1\""))
        let commented = try edited(sample, [.set(["selection", "provider"], .string("local"))])
        #expect(commented.contains("provider = \"local\"  # the default provider\n"))
    }

    @Test func aMultiLineArrayIsReplacedWholeAndTheRestStays() throws {
        let result = try edited(sample, [.set(["tools", "shell", "allow"], .array([node(.string("git"))]))])
        #expect(result.contains("[tools.shell]\nallow = [\"git\"]\n\n[providers.registry.local]"))
        #expect(result.contains("# Tools\n"))
    }

    @Test func aNewKeyGoesAtTheEndOfItsTable() throws {
        let result = try edited(sample, [.set(["selection", "fallbacks"], .array([]))])
        #expect(result.contains("model = \"gpt-4o-mini\"\nfallbacks = []\n\n# Tools\n[tools.shell]"))
        let root = try edited(sample, [.set(["extra"], .integer(1))])
        #expect(root.contains("config_version = \"1.0.0\"   # keep\nextra = 1\n"))
    }

    @Test func aNewTableIsAppended() throws {
        let result = try edited(sample, [.set(["runtime", "max_turns"], .integer(12))])
        #expect(result.hasPrefix(sample))
        #expect(result.hasSuffix("\n[runtime]\nmax_turns = 12\n"))
        let registry = try edited(
            sample, [.set(["providers", "registry", "my.host", "api_key_env"], .string("MY_KEY"))])
        #expect(registry.hasSuffix("[providers.registry.\"my.host\"]\napi_key_env = \"MY_KEY\"\n"))
    }

    @Test func dottedKeysAndInlineTablesAreExtendedWhereTheyAre() throws {
        let text = """
            memory.enabled = true
            [providers]
            registry.local = { provider_type = "openai", base_url = "http://127.0.0.1:8080" }

            """
        let dotted = try edited(text, [.set(["memory", "db_path"], .string("m.db"))])
        #expect(dotted.hasPrefix("memory.enabled = true\nmemory.db_path = \"m.db\"\n[providers]"))
        let inline = try edited(text, [.set(["providers", "registry", "local", "api_key_env"], .string("K"))])
        #expect(
            inline.contains(
                "registry.local = { api_key_env = \"K\", base_url = \"http://127.0.0.1:8080\", provider_type = \"openai\" }"
            ))
        let removed = try edited(text, [.remove(["providers", "registry", "local", "base_url"])])
        #expect(removed.contains("registry.local = { provider_type = \"openai\" }"))
    }

    @Test func removingAKeyOrATableLeavesTheRest() throws {
        let key = try edited(sample, [.remove(["selection", "model"])])
        #expect(key.contains("provider = \"openai\"  # the default provider\n\n# Tools"))
        let table = try edited(sample, [.remove(["providers", "registry", "local"])])
        #expect(!table.contains("providers.registry.local"))
        #expect(!table.contains("base_url"))
        #expect(table.contains("[tools.shell]"))
        let absent = try edited(sample, [.remove(["runtime", "max_turns"])])
        #expect(absent == sample)
    }

    @Test func aListOfTablesIsReplacedByTheNewList() throws {
        let text = """
            [selection]
            provider = "openai"

            [[selection.fallbacks]]
            provider = "anthropic"
            model = "claude-haiku-4-5"

            [[selection.fallbacks]]
            provider = "gemini"
            model = "gemini-2.5-flash"

            """
        let entry = node(.table(["provider": node(.string("gemini")), "model": node(.string("gemini-2.5-pro"))]))
        let result = try edited(text, [.set(["selection", "fallbacks"], .array([entry]))])
        #expect(result.contains("fallbacks = [{ model = \"gemini-2.5-pro\", provider = \"gemini\" }]"))
        #expect(!result.contains("[[selection.fallbacks]]"))
        #expect(throws: ConfigError.self) {
            _ = try edited(text, [.set(["selection", "fallbacks", "model"], .string("x"))])
        }
    }

    @Test func crlfFilesStayCRLFAndQuotedKeysAreFound() throws {
        let text = "[providers.registry.\"my.local\"]\r\nbase_url = 'http://127.0.0.1:1'\r\n"
        let result = try edited(
            text,
            [
                .set(["providers", "registry", "my.local", "base_url"], .string("http://127.0.0.1:2")),
                .set(["providers", "registry", "my.local", "api_key_env"], .string("K")),
            ])
        #expect(
            result
                == "[providers.registry.\"my.local\"]\r\nbase_url = \"http://127.0.0.1:2\"\r\napi_key_env = \"K\"\r\n")
    }

    @Test func multiLineStringsAreSkippedWhole() throws {
        let text = "prompt = \"\"\"\nline [not a table]\nx = 1\n\"\"\"\nafter = 2\n"
        let result = try edited(text, [.set(["after"], .integer(3))])
        #expect(result == "prompt = \"\"\"\nline [not a table]\nx = 1\n\"\"\"\nafter = 3\n")
    }

    @Test func anEmptyFileGetsTheKey() throws {
        #expect(
            try edited("", [.set(["web", "bind"], .string("127.0.0.1:9500"))]) == "[web]\nbind = \"127.0.0.1:9500\"\n")
        #expect(try edited("# just a comment", [.set(["a"], .bool(true))]) == "# just a comment\n\na = true\n")
    }

    @Test func invalidTOMLIsRefusedWithItsLine() throws {
        let error = try #require(throws: ConfigError.self) {
            _ = try edited("a = 1\nb = = 2\n", [.set(["a"], .integer(2))])
        }
        #expect(error.description.contains("line 2"), "\(error)")
    }

    private func node(_ value: ConfigValue) -> ConfigNode { ConfigNode(value, source: .builtInDefault) }
}
