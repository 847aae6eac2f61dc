import Foundation
import OxydraClient
import OxydraCore
import OxydraTesting
import Testing

/// The web app in Debian's Chromium (headless, over the DevTools protocol) against a real guest:
/// login, a streamed answer (seen while it streams), an approval answered with a button, a tool
/// card, hostile Markdown rendered inert, cancel, sessions, guest stop/start, and the screenshots in
/// docs/images/.
@Suite("Web app in a real browser", .serialized)
struct WebBrowserTests {
    static let images = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("docs/images").path

    /// The last assistant message's text, as a JavaScript expression.
    static let lastAnswer = "([...document.querySelectorAll('.msg.assistant')].pop()?.textContent ?? '')"

    static func send(_ page: BrowserPage, _ prompt: String) async throws {
        try await page.evaluate(
            "document.getElementById('prompt').value = \(JSONWriter.text(.string(prompt))); "
                + "document.getElementById('composer').requestSubmit(); true")
    }

    static func click(_ page: BrowserPage, _ selector: String, text: String? = nil) async throws {
        let filter = text.map { ".filter(b => b.textContent === \(JSONWriter.text(.string($0))))" } ?? ""
        try await page.wait(
            for:
                "(() => { const b = [...document.querySelectorAll(\(JSONWriter.text(.string(selector))))]\(filter)[0]; "
                + "if (!b || b.hidden) return false; b.click(); return true; })()")
    }

    /// Replaces the text of the element `expression` finds the way typing does (focus, select all,
    /// then text through the DevTools input domain, which fires the page's input events).
    static func type(_ page: BrowserPage, into expression: String, _ text: String) async throws {
        try await page.wait(
            for: "(() => { const i = \(expression); if (!i) return false; "
                + "for (let d = i.closest('details'); d; d = d.parentElement?.closest('details')) d.open = true; "
                + "i.focus(); i.select(); return document.activeElement === i; })()")
        _ = try await page.send("Input.insertText", ["text": .string(text)])
    }

    @Test func chatApprovalsSessionsAndGuestsInChromium() async throws {
        let web = try await WebFixture.start()
        defer { Teardown.run { await web.stop() } }
        let browser = try await HeadlessBrowser.launch()
        defer { browser.close() }
        try FileManager.default.createDirectory(atPath: Self.images, withIntermediateDirectories: true)
        let page = try await browser.open(web.origin + "/")
        defer { page.close() }

        // Without the token: the login form. Typing the token logs in (the cookie is HttpOnly).
        try await page.wait(for: "!document.getElementById('login').hidden")
        #expect(try await page.evaluate("document.cookie") == "", "the session cookie is not readable by script")
        try await page.evaluate(
            "document.getElementById('token').value = '\(web.token)'; "
                + "document.getElementById('login-form').requestSubmit(); true")
        try await page.wait(for: "!document.getElementById('app').hidden")
        try await page.wait(for: "document.getElementById('guest').textContent.includes('healthy')")
        try await page.wait(for: "document.body.dataset.session")

        // A streamed answer: seen part-way, then whole, then the turn's figures.
        var slow = ScriptedReply()
        slow.text = ["Hello", " from", " the", " scripted", " model"]
        slow.chunkDelay = .milliseconds(250)
        web.guest.server.enqueue(slow)
        try await Self.send(page, "say hello")
        try await page.wait(for: "\(Self.lastAnswer).startsWith('Hello') && !\(Self.lastAnswer).includes('model')")
        try await page.wait(for: "\(Self.lastAnswer) === 'Hello from the scripted model'")
        try await page.wait(for: "document.querySelector('.msg.stats')?.textContent.includes('tokens')")
        try await page.wait(
            for: "/ [1-9][0-9]* sessions open · 0 turns running/.test(document.getElementById('guest').textContent)")
        #expect(try await page.evaluate("document.getElementById('user').options[0].textContent") == "alice · running")

        // A call that needs approval: the card's buttons answer it; the tool card shows the result;
        // hostile Markdown stays text.
        var writes = ScriptedReply()
        writes.toolCalls = [
            ScriptedToolCall(id: "w1", name: "file_write", arguments: #"{"path":"/shared/page.md","content":"hi"}"#)
        ]
        web.guest.server.enqueue([
            writes,
            .text(
                "**Done.** <img src=x onerror=\"window.pwned=1\"> [click](javascript:window.pwned=2) "
                    + "<script>window.pwned=3</script>\n\n```swift\nlet x = 1\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |"),
        ])
        try await Self.send(page, "write the page")
        try await page.wait(for: "document.querySelector('.approval strong')?.textContent.includes('file_write')")
        try await page.screenshot(to: Self.images + "/web-desktop.png")
        try await Self.click(page, ".approval button", text: "Allow once")
        try await page.wait(for: "document.querySelector('details.tool summary')?.textContent.startsWith('✓')")
        try await page.wait(for: "document.querySelector('.approval')?.textContent.includes('Allowed (once) by web#')")
        try await page.wait(for: "\(Self.lastAnswer).includes('Done.')")
        let inert = try await page.evaluate(
            "window.pwned === undefined && !document.querySelector('.messages img, .messages script') "
                + "&& !document.querySelector('.messages a[href^=\"javascript\"]') "
                + "&& \(Self.lastAnswer).includes('<img src=x')")
        #expect(inert == true, "model output must not run or load anything")
        #expect(try await page.evaluate("document.querySelectorAll('.msg pre button.copy').length >= 1") == true)
        #expect(try await page.evaluate("document.querySelectorAll('.msg table td').length") == 2)
        #expect(FileManager.default.fileExists(atPath: web.guest.project.workspace + "/shared/page.md"))

        // Cancel a long turn.
        var long = ScriptedReply()
        long.text = (0..<40).map { "word\($0) " }
        long.chunkDelay = .milliseconds(200)
        web.guest.server.enqueue(long)
        try await Self.send(page, "talk for a while")
        try await page.wait(for: "\(Self.lastAnswer).includes('word1 ')")
        try await Self.click(page, "#cancel")
        try await page.wait(
            for: "[...document.querySelectorAll('.msg.note')].some(n => n.textContent === 'turn cancelled')")

        // Sessions: a new one is empty; switching back shows the earlier conversation.
        try await Self.click(page, "#new-session")
        try await page.wait(for: "document.querySelectorAll('#sessions li').length >= 2")
        try await page.wait(for: "document.querySelectorAll('.msg.assistant').length === 0")
        try await Self.click(page, "#sessions button", text: "say hello")
        try await page.wait(for: "[...document.querySelectorAll('.msg.user')].some(m => m.textContent === 'say hello')")

        // The phone-sized layout.
        try await page.resize(width: 390, height: 844, mobile: true)
        try await page.wait(for: "window.innerWidth === 390")
        try await page.wait(for: "document.getElementById('guest').textContent.includes('sessions')")
        try await page.evaluate("document.querySelector('.msg.assistant')?.scrollIntoView(); true")
        try await page.screenshot(to: Self.images + "/web-phone.png")
        try await page.resize(width: 1280, height: 800)

        // A hostile session title stays text; the log panel shows the guest's log.
        let renamer = GatewayClient(
            endpoint: "ws://127.0.0.1:\(web.port)/api/v1/users/alice/ws", token: web.token)
        defer { renamer.close() }
        renamer.send(.hello(.init(requestID: "h", userID: "alice", client: "test")))
        for await frame in renamer.frames {
            if case .helloAck(_, _, let ref, _) = frame {
                renamer.send(
                    .renameSession(
                        requestID: "r", session: ref.sessionID.rawValue,
                        displayName: "<img src=x onerror=\"window.pwned=4\">"))
            }
            if case .sessionUpdated = frame { break }
        }
        try await Self.click(page, "#new-session")
        try await page.wait(
            for: "[...document.querySelectorAll('#sessions button')].some(b => b.textContent.startsWith('<img'))")
        #expect(
            try await page.evaluate("window.pwned === undefined && !document.querySelector('#sessions img')") == true)
        // A long conversation: its latest page first, earlier messages as the reader scrolls up.
        let writer = GatewayClient(endpoint: "ws://127.0.0.1:\(web.port)/api/v1/users/alice/ws", token: web.token)
        defer { writer.close() }
        writer.send(.hello(.init(requestID: "h", userID: "alice", createNewSession: true, client: "test")))
        var talk: SessionID?
        var completed = 0
        for await frame in writer.frames {
            switch frame {
            case .helloAck(_, _, let ref, _):
                talk = ref.sessionID
                writer.send(.renameSession(requestID: "n", session: ref.sessionID.rawValue, displayName: "long talk"))
                for index in 0..<30 { web.guest.server.enqueue(.text("answer \(index)")) }
            case .turnCompleted:
                completed += 1
            default:
                continue
            }
            if completed == 30 { break }
            writer.send(
                .sendTurn(
                    .init(
                        requestID: "t\(completed)", sessionID: talk, turnID: TurnID(rawValue: "long-\(completed)"),
                        prompt: "question \(completed)")))
        }
        #expect(completed == 30)
        try await Self.click(page, "#new-session")
        try await Self.click(page, "#sessions button", text: "long talk")
        try await page.wait(for: "document.querySelectorAll('#messages .msg').length === 50")
        #expect(try await page.evaluate("document.querySelector('#messages .msg').textContent") == "question 5")
        #expect(try await page.evaluate("Boolean(document.getElementById('earlier'))") == true)
        _ = try await page.evaluate("document.getElementById('messages').scrollTop = 0; true")
        try await page.wait(for: "document.querySelectorAll('#messages .msg').length === 60")
        #expect(try await page.evaluate("document.querySelector('#messages .msg').textContent") == "question 0")
        #expect(try await page.evaluate("Boolean(document.getElementById('earlier'))") == false)

        try await Self.click(page, "#show-logs")
        try await page.wait(for: "document.getElementById('panel-text').textContent.includes('gateway ready')")
        try await Self.click(page, "#close-panel")

        // Configuration: a typo is shown next to its field and nothing is written; the fix is saved
        // with the file's comments kept.
        let agentFile = web.guest.project.root + "/.oxydra/agent.toml"
        let original = try String(contentsOfFile: agentFile, encoding: .utf8)
        try ("# edited from the browser test\n" + original).write(toFile: agentFile, atomically: true, encoding: .utf8)
        try await Self.click(page, "#show-config")
        try await page.wait(for: "document.querySelector('#config-check summary').textContent.includes('valid')")
        let maxTurns = "document.querySelector('[data-path=\"runtime.max_turns\"] input')"
        try await Self.type(page, into: maxTurns, "1o")
        try await Self.click(page, "#config-save")
        try await page.wait(
            for: "document.querySelector('[data-path=\"runtime.max_turns\"] .field-error').textContent"
                + ".includes('must be an integer')")
        #expect(try await page.evaluate("\(maxTurns).getAttribute('aria-invalid')") == "true")
        #expect(try await page.evaluate("document.activeElement === \(maxTurns)") == true, "the error takes the focus")
        #expect(try String(contentsOfFile: agentFile, encoding: .utf8).hasPrefix("# edited from the browser test\n"))
        #expect(!(try String(contentsOfFile: agentFile, encoding: .utf8)).contains("1o"))
        try await page.screenshot(to: Self.images + "/web-config.png")
        try await Self.type(page, into: maxTurns, "12")
        try await Self.click(page, "#config-save")
        try await page.wait(
            for: "document.getElementById('config-status').textContent.startsWith('saved runtime.max_turns')")
        let saved = try String(contentsOfFile: agentFile, encoding: .utf8)
        #expect(saved.hasPrefix("# edited from the browser test\n") && saved.contains("max_turns = 12"), "\(saved)")
        #expect(try await page.evaluate("\(maxTurns).value") == "12", "the form shows the saved file")
        try await Self.click(page, "#close-config")

        // Stop and start the guest from the page.
        try await Self.click(page, "#stop")
        try await page.wait(
            for: "document.getElementById('guest').textContent === 'guest stopped'", timeout: .seconds(30))
        #expect(try await web.guest.project.run(["status"]).exitCode == 3)
        try await Self.click(page, "#start")
        try await page.wait(
            for: "document.getElementById('guest').textContent.includes('healthy')", timeout: .seconds(30))
        #expect(try await web.guest.project.run(["status"]).exitCode == 0)
    }
}
