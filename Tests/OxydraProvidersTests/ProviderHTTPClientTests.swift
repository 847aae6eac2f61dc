import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import OxydraCore
import OxydraTesting
import Testing

@testable import OxydraProviders

/// The provider HTTP client over real loopback sockets: requests as built, TLS (certificates and
/// host names checked), keep-alive connections and what happens when a server drops one.
@Suite("Provider HTTP client")
struct ProviderHTTPClientTests {
    @Test func requestsCarryTheHostTheLengthAndTheURLsCredentials() throws {
        let request = try ProviderHTTPRequest(
            post: "https://user:p%40ss@api.example.com:8443/v1/chat?x=1#part", headers: [("X-Test", "1")],
            body: ByteBuffer(string: "{}"))
        #expect(request.endpoint == .init(tls: true, host: "api.example.com", port: 8443))
        #expect(request.head.method == .POST)
        #expect(request.head.uri == "/v1/chat?x=1")
        #expect(request.head.headers["Host"] == ["api.example.com:8443"])
        #expect(request.head.headers["Content-Length"] == ["2"])
        #expect(request.head.headers["X-Test"] == ["1"])
        // base64("user:p@ss")
        #expect(request.head.headers["Authorization"] == ["Basic dXNlcjpwQHNz"])

        let v6 = try ProviderHTTPRequest(post: "http://[::1]:8080", headers: [], body: ByteBuffer())
        #expect(v6.endpoint == .init(tls: false, host: "::1", port: 8080))
        #expect(v6.head.uri == "/")
        #expect(v6.head.headers["Host"] == ["[::1]:8080"])
        let plain = try ProviderHTTPRequest(post: "HTTP://Example.com?q", headers: [], body: ByteBuffer())
        #expect(plain.endpoint == .init(tls: false, host: "Example.com", port: 80))
        #expect(plain.head.uri == "/?q")
        let tls = try ProviderHTTPRequest(post: "https://example.com/x", headers: [], body: ByteBuffer())
        #expect(tls.endpoint.port == 443)
    }

    @Test func badURLsAndHeadersAreRefusedWithTheReason() {
        func refusal(_ url: String, _ headers: [(String, String)] = []) -> String? {
            do {
                _ = try ProviderHTTPRequest(post: url, headers: headers, body: ByteBuffer())
                return nil
            } catch {
                return error.description
            }
        }
        #expect(
            refusal("ftp://example.com") == "invalid URL: `ftp://example.com` is neither an http:// nor an https:// URL"
        )
        #expect(refusal("http://example.com:0/") == "invalid URL: `http://example.com:0/` has an invalid port `0`")
        #expect(
            refusal("http://example.com:70000") == "invalid URL: `http://example.com:70000` has an invalid port `70000`"
        )
        #expect(refusal("http:///v1") == "invalid URL: `http:///v1` has no host")
        #expect(refusal("http://[::1/") == "invalid URL: `http://[::1/` has an unclosed `[`")
        #expect(
            refusal("http://example.com", [("X-Injected", "a\r\nHost: evil")])
                == "invalid request header: the value of header `X-Injected` contains a line break or NUL")
        #expect(
            refusal("http://example.com", [("Bad Name", "x")])
                == "invalid request header: header name `Bad Name` is not a valid HTTP token")
    }

    /// A header that would split the request is an error the user can act on, and nothing is sent.
    @Test func aHeaderWithALineBreakFailsTheCallWithoutSendingIt() async throws {
        let server = try await ScriptedModelServer.start()
        defer { Teardown.run { try? await server.shutdown() } }
        let transport = ProviderTransport(
            provider: ProviderID("scripted"), baseURL: server.baseURL, headers: [("X-Team", "a\nb")], secrets: [],
            timeout: .seconds(5))
        await #expect {
            _ = try await transport.post("/v1/chat/completions", json: Data("{}".utf8), accept: "application/json")
        } throws: { error in
            "\(error)".contains("the value of header `X-Team` contains a line break")
        }
        #expect(server.requests.isEmpty)
    }

    @Test func anUntrustedCertificateIsRefusedBeforeAnythingIsSent() async throws {
        try await Self.withTLSServer(names: "DNS:localhost,IP:127.0.0.1") { _, server in
            server.enqueue(.text("never sent"))
            let transport = ProviderTransport(
                provider: ProviderID("scripted"), baseURL: "https://localhost:\(server.port)", headers: [],
                secrets: [], timeout: .seconds(5))
            await #expect {
                _ = try await transport.post(
                    "/v1/chat/completions", json: Data("{}".utf8), accept: "text/event-stream")
            } throws: { error in
                "\(error)".contains("the TLS handshake failed")
                    && "\(error)".contains("https://localhost:\(server.port)")
            }
            #expect(server.requests.isEmpty)
        }
    }

    /// With the test's certificate trusted, a streamed answer comes over TLS — by name (SNI and the
    /// DNS name checked) and by address (the IP address checked) — and the connection is kept.
    @Test func aTrustedServerStreamsOverTLSAndItsConnectionIsKept() async throws {
        try await Self.withTLSServer(names: "DNS:localhost,IP:127.0.0.1") { certificate, server in
            let client = certificate.trustingClient()
            for host in ["localhost", "localhost", "127.0.0.1"] {
                var reply = ScriptedReply()
                reply.text = ["over tls to \(host)"]
                reply.keepAlive = true
                server.enqueue(reply)
                let body = try await Self.post(to: "https://\(host):\(server.port)", on: client)
                #expect(body.contains("over tls to \(host)"))
                #expect(body.contains("[DONE]"))
            }
            #expect(server.requests.count == 3)
            // One connection per host name: `localhost` twice on one, `127.0.0.1` on its own.
            #expect(server.connections == 2)
            #expect(await client.idleConnections() == 2)
        }
    }

    @Test func aCertificateForAnotherNameIsRefusedEvenWhenTrusted() async throws {
        try await Self.withTLSServer(names: "DNS:other.example") { certificate, server in
            server.enqueue(.text("never sent"))
            let client = certificate.trustingClient()
            await #expect {
                _ = try await Self.post(to: "https://localhost:\(server.port)", on: client)
            } throws: { error in
                "\(error)".contains("failedToValidateHostname")
            }
            #expect(server.requests.isEmpty)
        }
    }

    /// Runs `body` with a scripted server serving TLS with a new certificate for `names`.
    private static func withTLSServer(
        names: String, _ body: (TestCertificate, ScriptedModelServer) async throws -> Void
    ) async throws {
        let certificate = try await TestCertificate.make(names: names)
        defer { certificate.directory.remove() }
        let server = try await ScriptedModelServer.start(tls: try certificate.serverContext())
        defer { Teardown.run { try? await server.shutdown() } }
        try await body(certificate, server)
    }

    /// A kept connection the server closed as the next request went out (its keep-alive timeout)
    /// costs nothing: the request goes once more on a new connection.
    @Test func aKeptConnectionTheServerDroppedIsReplacedOnce() async throws {
        let server = try await ScriptedModelServer.start()
        defer { Teardown.run { try? await server.shutdown() } }
        var first = ScriptedReply.text("first")
        first.keepAlive = true
        var dropped = ScriptedReply()
        dropped.closeWithoutAnswer = true
        server.enqueue([first, dropped, .text("second")])
        let client = ProviderHTTPClient(loop: MultiThreadedEventLoopGroup.singleton.next())
        #expect(try await Self.post(to: server.baseURL, on: client).contains("first"))
        #expect(try await Self.post(to: server.baseURL, on: client).contains("second"))
        #expect(server.requests.count == 3)
        #expect(server.connections == 2)
    }

    /// On a new connection a close without an answer is the server's failure, reported (the
    /// provider's retry policy decides what happens next), not silently sent again.
    @Test func aNewConnectionClosedWithoutAnAnswerIsReported() async throws {
        let server = try await ScriptedModelServer.start()
        defer { Teardown.run { try? await server.shutdown() } }
        var dropped = ScriptedReply()
        dropped.closeWithoutAnswer = true
        server.enqueue([dropped, .text("must not be requested")])
        let client = ProviderHTTPClient(loop: MultiThreadedEventLoopGroup.singleton.next())
        await #expect(throws: ProviderHTTPError.connectionClosed(duringBody: false)) {
            _ = try await Self.post(to: server.baseURL, on: client)
        }
        #expect(server.requests.count == 1)
    }

    /// A server that says `Connection: close` gets a new connection next time; idle kept ones are
    /// closed after the idle timeout.
    @Test func connectionsAreKeptOnlyWhenBothSidesAgreeAndNotForEver() async throws {
        let server = try await ScriptedModelServer.start()
        defer { Teardown.run { try? await server.shutdown() } }
        let client = ProviderHTTPClient(
            loop: MultiThreadedEventLoopGroup.singleton.next(), idleTimeout: .milliseconds(300))
        server.enqueue(.text("closing"))
        _ = try await Self.post(to: server.baseURL, on: client)
        #expect(await client.idleConnections() == 0)
        var kept = ScriptedReply.text("kept")
        kept.keepAlive = true
        server.enqueue(kept)
        _ = try await Self.post(to: server.baseURL, on: client)
        #expect(await client.idleConnections() == 1)
        #expect(server.connections == 2)
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(5)
        while await client.idleConnections() > 0, clock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(await client.idleConnections() == 0)
    }

    /// POSTs a streaming chat request to `base` with `client` and returns the whole body.
    private static func post(to base: String, on client: ProviderHTTPClient) async throws -> String {
        let request = try ProviderHTTPRequest(
            post: base + "/v1/chat/completions", headers: [("Content-Type", "application/json")],
            body: ByteBuffer(string: #"{"model":"m","stream":true}"#))
        let exchange = ProviderExchange.start(request, on: client, timeout: .seconds(5))
        let response = ProviderResponse(head: try await exchange.head(), exchange: exchange)
        var body = ""
        while let part = try await response.nextPart() { body += String(buffer: part) }
        return body
    }
}

/// A self-signed certificate made with `openssl` for one test.
struct TestCertificate {
    let directory: TemporaryDirectory
    let certificate: NIOSSLCertificate
    let key: NIOSSLPrivateKey

    /// `names`: the subjectAltName list (`DNS:localhost,IP:127.0.0.1`).
    static func make(names: String) async throws -> TestCertificate {
        let directory = try TemporaryDirectory(prefix: "oxydra-tls")
        let result = try await ChildProcess.runTool(
            "/usr/bin/openssl",
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                "-subj", "/CN=oxydra-test", "-addext", "subjectAltName=\(names)", "-keyout",
                directory.path + "/key.pem",
                "-out", directory.path + "/cert.pem",
            ])
        guard result.exitCode == 0 else { throw TestSupportError("openssl failed: \(result.standardError)") }
        return TestCertificate(
            directory: directory,
            certificate: try NIOSSLCertificate(file: directory.path + "/cert.pem", format: .pem),
            key: try NIOSSLPrivateKey(file: directory.path + "/key.pem", format: .pem))
    }

    func serverContext() throws -> NIOSSLContext {
        try NIOSSLContext(
            configuration: .makeServerConfiguration(
                certificateChain: [.certificate(certificate)], privateKey: .privateKey(key)))
    }

    /// A provider client with the default TLS configuration but trusting only this certificate.
    func trustingClient() -> ProviderHTTPClient {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .certificates([certificate])
        return ProviderHTTPClient(loop: MultiThreadedEventLoopGroup.singleton.next(), tlsConfiguration: configuration)
    }
}
