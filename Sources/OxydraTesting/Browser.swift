import Foundation
import HummingbirdWSClient
import Logging
import NIOCore
import OxydraCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Debian's Chromium, headless, driven over the Chrome DevTools Protocol: the page's own WebSocket
/// (`/json/new` gives one per tab), `Runtime.evaluate` to read and act on the DOM, and
/// `Page.captureScreenshot`. CDP needs nothing beyond the browser itself (no chromedriver, whose
/// version must match the browser's), and the same WebSocket client the product uses.
public final class HeadlessBrowser: Sendable {
    public static let executable = "/usr/bin/chromium"
    let process: Process
    let profile: TemporaryDirectory
    public let port: Int

    /// Starts the browser (fails when it is not installed: the web tests need it).
    public static func launch() async throws -> HeadlessBrowser {
        guard access(executable, X_OK) == 0 else {
            throw TestSupportError(
                "\(executable) is not installed (apt-get install chromium); the web app tests need it")
        }
        let profile = try TemporaryDirectory(prefix: "oxydra-chromium")
        let port = try freePort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        // As root (CI) Chromium refuses to run without --no-sandbox; the pages are our own.
        process.arguments = [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--no-default-browser-check", "--disable-extensions", "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=\(port)",
            // The WebSocket client sends `Origin: ws://127.0.0.1`, which Chromium refuses unless allowed.
            "--remote-allow-origins=ws://127.0.0.1", "--user-data-dir=\(profile.path)", "--window-size=1280,800",
            "about:blank",
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        let browser = HeadlessBrowser(process: process, profile: profile, port: port)
        for _ in 0..<200 {
            if (try? browser.http("GET", "/json/version")) != nil { return browser }
            try await Task.sleep(for: .milliseconds(50))
        }
        browser.close()
        throw TestSupportError("chromium did not open its DevTools port within 10 s")
    }

    init(process: Process, profile: TemporaryDirectory, port: Int) {
        self.process = process
        self.profile = profile
        self.port = port
    }

    /// A new tab at `url`.
    public func open(_ url: String) async throws -> BrowserPage {
        let body = try http("PUT", "/json/new?" + url)
        let target = try JSONValue(parsing: body)
        guard let socket = target["webSocketDebuggerUrl"]?.stringValue else {
            throw TestSupportError("no DevTools socket for the new tab: \(body)")
        }
        let page = try await BrowserPage.connect(socket)
        _ = try await page.send("Page.enable")
        _ = try await page.send("Runtime.enable")
        return page
    }

    public func close() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        profile.remove()
    }

    /// A plain HTTP/1.1 request to the DevTools endpoint; the body.
    func http(_ method: String, _ path: String) throws -> String {
        let response = try LoopbackHTTP.request(port: port, method, path)
        guard response.status == 200 else { throw TestSupportError("DevTools answered \(response.status)") }
        return response.body
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { Glibc.close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else { throw TestSupportError("no free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// One tab, over its DevTools WebSocket: commands by id, answers matched back.
public final class BrowserPage: Sendable {
    private let outgoing: AsyncStream<String>.Continuation
    private let state = Mutex<(next: Int, pending: [Int: CheckedContinuation<JSONValue, any Error>])>((1, [:]))
    private let connection: Mutex<Task<Void, Never>?> = Mutex(nil)

    private init(outgoing: AsyncStream<String>.Continuation) {
        self.outgoing = outgoing
    }

    static func connect(_ url: String) async throws -> BrowserPage {
        let (stream, continuation) = AsyncStream.makeStream(of: String.self)
        let page = BrowserPage(outgoing: continuation)
        var logger = Logger(label: "test.cdp")
        logger.logLevel = .critical
        let task = Task {
            do {
                _ = try await WebSocketClient.connect(
                    url: url, configuration: WebSocketClientConfiguration(maxFrameSize: 64 << 20), logger: logger
                ) { inbound, outbound, _ in
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask {
                            for await text in stream { try await outbound.write(.text(text)) }
                        }
                        for try await message in inbound.messages(maxSize: 64 << 20) {
                            guard case .text(let text) = message else { continue }
                            page.receive(text)
                        }
                        group.cancelAll()
                    }
                }
            } catch {
                page.failAll("DevTools connection: \(error)")
            }
            page.failAll("DevTools connection closed")
        }
        page.connection.withLock { $0 = task }
        return page
    }

    private func receive(_ text: String) {
        guard let message = try? JSONValue(parsing: text), let id = message["id"]?.intValue else { return }
        let waiter = state.withLock { $0.pending.removeValue(forKey: id) }
        if let error = message["error"] {
            waiter?.resume(throwing: TestSupportError("CDP error: \(error.compactText)"))
        } else {
            waiter?.resume(returning: message["result"] ?? .null)
        }
    }

    private func failAll(_ reason: String) {
        let waiters = state.withLock { state in
            defer { state.pending = [:] }
            return Array(state.pending.values)
        }
        for waiter in waiters { waiter.resume(throwing: TestSupportError(reason)) }
    }

    /// Sends a command; its result.
    @discardableResult
    public func send(_ method: String, _ params: JSONValue = [:]) async throws -> JSONValue {
        try await withCheckedThrowingContinuation { continuation in
            let id = state.withLock { state in
                let id = state.next
                state.next += 1
                state.pending[id] = continuation
                return id
            }
            outgoing.yield(JSONWriter.text(["id": .integer(id), "method": .string(method), "params": params]))
        }
    }

    /// The value of a JavaScript expression in the page (promises awaited).
    public func evaluate(_ expression: String) async throws -> JSONValue {
        let result = try await send(
            "Runtime.evaluate",
            ["expression": .string(expression), "returnByValue": true, "awaitPromise": true])
        if let exception = result["exceptionDetails"] {
            throw TestSupportError("script failed: \(exception.compactText)")
        }
        return result["result"]?["value"] ?? .null
    }

    /// Waits until `expression` is truthy; its value.
    @discardableResult
    public func wait(for expression: String, timeout: Duration = .seconds(15)) async throws -> JSONValue {
        let deadline = ContinuousClock.now + timeout
        var last: JSONValue = .null
        while ContinuousClock.now < deadline {
            last = (try? await evaluate(expression)) ?? .null
            switch last {
            case .null, .bool(false): break
            case .string(let text) where text.isEmpty: break
            default: return last
            }
            try await Task.sleep(for: .milliseconds(25))
        }
        throw TestSupportError("`\(expression)` did not become true within \(timeout) (last: \(last.compactText))")
    }

    /// Sets the viewport (desktop 1280×800, phone 390×844 …).
    public func resize(width: Int, height: Int, mobile: Bool = false) async throws {
        try await send(
            "Emulation.setDeviceMetricsOverride",
            [
                "width": .integer(width), "height": .integer(height), "deviceScaleFactor": 1, "mobile": .bool(mobile),
            ])
    }

    /// A PNG of the viewport, written to `path`.
    public func screenshot(to path: String) async throws {
        let result = try await send("Page.captureScreenshot", ["format": "png"])
        guard let base64 = result["data"]?.stringValue, let data = Data(base64Encoded: base64) else {
            throw TestSupportError("no screenshot data")
        }
        try data.write(to: URL(fileURLWithPath: path))
    }

    public func close() {
        outgoing.finish()
        connection.withLock { $0?.cancel() }
    }
}
