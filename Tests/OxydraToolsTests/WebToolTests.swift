import OxydraCore
import OxydraTesting
import Testing

@testable import OxydraTools

@Suite("SSRF guard")
struct SSRFGuardTests {
    @Test(arguments: [
        ("127.0.0.1", "loopback"), ("127.9.9.9", "loopback"), ("10.1.2.3", "private"), ("172.16.0.1", "private"),
        ("172.31.255.255", "private"), ("192.168.1.1", "private"), ("169.254.169.254", "cloud metadata"),
        ("169.254.10.1", "link-local"), ("100.64.0.1", "carrier-grade NAT (100.64/10)"),
        ("0.0.0.0", "this network (0.0.0.0/8)"),
        ("224.0.0.1", "multicast"), ("255.255.255.255", "reserved"), ("::1", "loopback"), ("::", "unspecified address"),
        ("::ffff:127.0.0.1", "IPv4-mapped loopback"), ("::ffff:169.254.169.254", "IPv4-mapped cloud metadata"),
        ("64:ff9b::10.0.0.1", "NAT64 private"), ("fc00::1", "unique local"), ("fd12:3456::1", "unique local"),
        ("fe80::1", "link-local"), ("ff02::1", "multicast"), ("[::1]", "loopback"),
    ])
    func blockedAddresses(_ address: String, _ reason: String) throws {
        #expect(try #require(IPAddress(address)).blockedReason == reason)
    }

    @Test(arguments: ["8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
    func publicAddresses(_ address: String) throws {
        #expect(try #require(IPAddress(address)).blockedReason == nil)
    }

    private func guardFor(_ addresses: [String: [String]], allowlist: [String] = []) -> SSRFGuard {
        SSRFGuard(allowlist: allowlist) { host in (addresses[host] ?? []).compactMap(IPAddress.init) }
    }

    @Test func everyResolvedAddressIsChecked() async throws {
        let guardrail = guardFor([
            "evil.test": ["93.184.216.34", "10.0.0.7"], "meta.test": ["169.254.169.254"],
            "v6.test": ["::ffff:127.0.0.1"],
            "fine.test": ["93.184.216.34"],
        ])
        await #expect {
            try await guardrail.check(URL(string: "https://evil.test/x")!, tool: "web_fetch")
        } throws: { error in
            "\(error)"
                == "blocked by security policy (EgressBlocked): web target `evil.test` resolved to blocked address `10.0.0.7` "
                + "(private); add it to tools.web.egress_allowlist if it is meant to be reachable"
        }
        await #expect(throws: ToolError.self) {
            try await guardrail.check(URL(string: "http://meta.test/latest")!, tool: "t")
        }
        await #expect(throws: ToolError.self) { try await guardrail.check(URL(string: "http://v6.test/")!, tool: "t") }
        await #expect(throws: ToolError.self) {
            try await guardrail.check(URL(string: "http://[::1]:8080/")!, tool: "t")
        }
        let target = try await guardrail.check(URL(string: "https://fine.test/page")!, tool: "t")
        #expect(target.address.description == "93.184.216.34" && target.port == 443)
    }

    @Test func onlyHTTPSchemes() async {
        await #expect {
            try await guardFor([:]).check(URL(string: "file:///etc/passwd")!, tool: "web_fetch")
        } throws: { error in
            "\(error)"
                == "blocked by security policy (EgressBlocked): only http and https URLs can be fetched (got `file`)"
        }
    }
}

@Suite("Web tools", .serialized)
struct WebToolTests {
    /// A registry whose resolver maps `site.test` and `search.test` to the scripted server on loopback
    /// (allowlisted), and `metadata.test` to the cloud metadata address.
    private func setup() async throws -> (ScriptedModelServer, ToolRegistry, WorkspaceFixture) {
        let server = try await ScriptedModelServer.start()
        let fixture = try WorkspaceFixture()
        var config = AgentConfig()
        config.tools.web.egressAllowlist = ["site.test:\(server.port)", "search.test"]
        config.tools.webSearch.provider = .searxng
        config.tools.webSearch.baseURL = "http://search.test:\(server.port)"
        let registry = BuiltInTools.registry(
            workspace: fixture.workspace, config: config, environment: [:],
            resolver: { host in
                switch host {
                case "site.test", "search.test": [IPAddress("127.0.0.1")!]
                case "metadata.test": [IPAddress("169.254.169.254")!]
                default: []
                }
            })
        return (server, registry, fixture)
    }

    @Test func fetchConnectsToTheCheckedAddressAndReadsHTML() async throws {
        let (server, registry, fixture) = try await setup()
        defer {
            fixture.remove()
            Task { try? await server.shutdown() }
        }
        server.enqueue(
            .raw(
                "<html><head><title>Hello &amp; welcome</title><style>p{}</style><script>alert(1)</script></head>"
                    + "<body><h1>News</h1><p>First&nbsp;para.</p><ul><li>one</li><li>two</li></ul></body></html>",
                contentType: "text/html; charset=utf-8"))
        let outcome = try await registry.call("web_fetch", #"{"url":"http://site.test:\#(server.port)/article"}"#)
        #expect(!outcome.isError, "\(outcome.text)")
        let json = try JSONValue(parsing: outcome.text)
        #expect(json["title"] == "Hello & welcome")
        #expect(json["body"] == "News\nFirst para.\n- one\n- two")
        #expect(json["status"] == 200)
        // The host name resolves nowhere else: reaching the server proves the pinned address was used.
        #expect(server.requests.first?.path == "/article")
        #expect(server.requests.first?.header("Host")?.hasPrefix("site.test") == true)
    }

    @Test func redirectsAreRecheckedBeforeFollowing() async throws {
        let (server, registry, fixture) = try await setup()
        defer {
            fixture.remove()
            Task { try? await server.shutdown() }
        }
        var redirect = ScriptedReply.raw("", status: 302, contentType: "text/plain")
        redirect.headers = [("Location", "http://metadata.test/latest/meta-data/")]
        server.enqueue(redirect)
        let outcome = try await registry.call("web_fetch", #"{"url":"http://site.test:\#(server.port)/go"}"#)
        #expect(
            outcome.text.hasPrefix(
                "blocked by security policy (EgressBlocked): web target `metadata.test` resolved to blocked address `169.254.169.254` (cloud metadata)"
            ))
        var local = ScriptedReply.raw("", status: 301, contentType: "text/plain")
        local.headers = [("Location", "/final")]
        server.enqueue([local, .raw(#"{"ok":true}"#, contentType: "application/json")])
        let followed = try await registry.call("web_fetch", #"{"url":"http://site.test:\#(server.port)/start"}"#)
        #expect(try JSONValue(parsing: followed.text)["body"] == #"{"ok":true}"#)
    }

    @Test func privateTargetsAreBlockedAndErrorsAreReported() async throws {
        let (server, registry, fixture) = try await setup()
        defer {
            fixture.remove()
            Task { try? await server.shutdown() }
        }
        let direct = try await registry.call("web_fetch", #"{"url":"http://127.0.0.1:\#(server.port)/"}"#)
        #expect(
            direct.text.hasPrefix(
                "blocked by security policy (EgressBlocked): web target `127.0.0.1` resolved to blocked address `127.0.0.1` (loopback)"
            ))
        server.enqueue(.raw("nope", status: 404, contentType: "text/plain"))
        let missing = try await registry.call("web_fetch", #"{"url":"http://site.test:\#(server.port)/gone"}"#)
        #expect(
            missing.text
                == "tool execution failed for web_fetch: web fetch returned status 404 for http://site.test:\(server.port)/gone: nope"
        )
        server.enqueue(.raw("PNG", contentType: "image/png"))
        let binary = try await registry.call("web_fetch", #"{"url":"http://site.test:\#(server.port)/logo.png"}"#)
        #expect(try JSONValue(parsing: binary.text)["note"] == "binary content omitted to reduce token usage")
        #expect(server.requests.count == 2)
    }

    @Test func searxngSearch() async throws {
        let (server, registry, fixture) = try await setup()
        defer {
            fixture.remove()
            Task { try? await server.shutdown() }
        }
        server.enqueue(
            .raw(
                #"{"results":[{"title":"Swift","url":"https://swift.org","content":"The Swift language"},{"title":"NIO","url":"https://github.com/apple/swift-nio","content":"Event-driven networking"}]}"#,
                contentType: "application/json"))
        let outcome = try await registry.call("web_search", #"{"query":"swift server","count":1,"freshness":"week"}"#)
        let json = try JSONValue(parsing: outcome.text)
        #expect(json["result_count"] == 1)
        #expect(json["results"] == [["title": "Swift", "url": "https://swift.org", "snippet": "The Swift language"]])
        #expect(server.requests.first?.path == "/search?q=swift%20server&format=json&time_range=week")
    }
}

@Suite("HTML to text")
struct HTMLTextTests {
    @Test func convertsStructureAndEntities() {
        let result = HTMLText.convert(
            "<!DOCTYPE html><html><head><title> A  title </title></head><body><!-- hidden --><div>x &lt;y&gt; &#169; &#x1F389;</div>"
                + "<noscript>no</noscript><p>two   spaces</p><br/>end</body></html>")
        #expect(result.title == "A title")
        #expect(result.text == "x <y> © 🎉\ntwo spaces\nend")
    }
}

@Suite("Search result parsing")
struct SearchParsingTests {
    @Test func duckDuckGoInstantAnswers() throws {
        let json = try JSONValue(
            parsing: #"""
                {"Heading":"Swift","AbstractText":"Swift is a language.","AbstractURL":"https://en.wikipedia.org/wiki/Swift",
                 "Results":[],"RelatedTopics":[{"Text":"Swift - Apple's language","FirstURL":"https://swift.org"},
                 {"Name":"See also","Topics":[{"Text":"SwiftNIO - networking","FirstURL":"https://github.com/apple/swift-nio"}]}]}
                """#)
        let results = WebSearch.results(json, provider: .duckduckgo)
        #expect(
            results.map(\.url) == [
                "https://en.wikipedia.org/wiki/Swift", "https://swift.org", "https://github.com/apple/swift-nio",
            ])
        #expect(results[0].title == "Swift" && results[0].snippet == "Swift is a language.")
        #expect(results[1].title == "Swift")
    }

    @Test func googleCustomSearch() throws {
        let json = try JSONValue(
            parsing: #"{"items":[{"title":"T","link":"https://a.example","snippet":"S"},{"title":"no link"}]}"#)
        #expect(
            WebSearch.results(json, provider: .google) == [.init(title: "T", url: "https://a.example", snippet: "S")])
    }
}
