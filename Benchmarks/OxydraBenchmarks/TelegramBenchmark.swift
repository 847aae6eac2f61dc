import OxydraClient
import OxydraCore
import OxydraTesting

#if canImport(Glibc)
    import Glibc
#endif

/// The Telegram channel of a real guest (release, process tier, `runner start`), against a scripted
/// Bot API and a scripted model that answers at once.
///
/// Intake: 200 messages from 20 chats (10 each) arrive in one `getUpdates` answer; the time until
/// the model has seen all 200 turns (turn start) and until every answer is in its chat, in
/// messages per second (target ≥ 200/s to turn start). The floor, same guest, same model, same
/// run: 20 WebSocket clients on 20 sessions sending 10 turns each, one after another.
///
/// Edits: a 2,000-token answer streamed over ~10 s; the edits Telegram receives while it streams,
/// per second of streaming (target ≤ 1).
func benchmarkTelegram() async throws {
    let model = try await ScriptedModelServer.start()
    let telegram = try await ScriptedTelegramServer.start()
    let directory = try TemporaryDirectory(prefix: "oxydra-bench-telegram")
    defer { directory.remove() }
    let owner = 4242
    try directory.write(SeedConfig.runnerTOML, to: ".oxydra/runner.toml")
    try directory.write(
        SeedConfig.aliceTOML + telegram.userConfig(tokenVariable: "OXYDRA_BENCH_BOT_TOKEN", allowed: [owner]),
        to: ".oxydra/users/alice.toml")
    try directory.write(
        model.agentConfig(
            """
            [gateway]
            max_sessions_per_user = 200
            max_concurrent_turns_per_user = 50
            max_queued_turns_per_user = 100
            """), to: ".oxydra/agent.toml")
    _ = try directory.createDirectory("home")
    _ = try directory.createDirectory("etc-oxydra")
    let environment = [
        "HOME": directory.path + "/home", "OXYDRA_SYSTEM_CONFIG_DIR": directory.path + "/etc-oxydra",
        "PATH": "/usr/bin:/bin", "OXYDRA_BENCH_BOT_TOKEN": telegram.token,
    ]
    try await startGuest(in: directory.path, environment)
    let access = try GatewayAccess.discover(ipcDirectory: directory.path + "/.oxydra/workspaces/alice/ipc")

    func waitUntil(_ what: String, _ condition: () -> Bool) async throws {
        let deadline = clock.now + .seconds(120)
        while !condition() {
            guard clock.now < deadline else {
                throw TestSupportError(
                    "the benchmark stalled waiting for \(what) (model requests: \(model.requests.count), Bot API "
                        + "calls: \(telegram.calls().count))")
            }
            try await Task.sleep(for: .milliseconds(1))
        }
    }
    let chats = 20
    let perChat = 10
    let total = chats * perChat
    func answered(_ round: Int) -> Int {
        (0..<chats).reduce(0) { sum, chat in
            sum + telegram.chat(10_000 + chat).filter { $0.text == "ok \(round)" }.count
        }
    }

    var telegramStart: [Double] = []
    var telegramDone: [Double] = []
    var gatewayDone: [Double] = []
    let clients = try await withThrowingTaskGroup(of: GatewaySession.self) { group in
        for _ in 0..<chats { group.addTask { try await GatewaySession.connect(access, newSession: true) } }
        return try await group.reduce(into: []) { $0.append($1) }
    }
    for round in 0..<7 {
        // Telegram: every message of the round in one getUpdates answer.
        model.enqueue(Array(repeating: .text("ok \(round)"), count: total))
        var before = model.requests.count
        var begin = clock.now
        for message in 0..<perChat {
            for chat in 0..<chats {
                telegram.sendText(from: owner, chat: 10_000 + chat, text: "message \(message) of round \(round)")
            }
        }
        try await waitUntil("turn starts") { model.requests.count >= before + total }
        telegramStart.append(seconds(clock.now - begin))
        try await waitUntil("answers") { answered(round) >= total }
        telegramDone.append(seconds(clock.now - begin))

        // The floor: the same turns from WebSocket clients.
        model.enqueue(Array(repeating: .text("floor"), count: total))
        before = model.requests.count
        begin = clock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, client) in clients.enumerated() {
                group.addTask {
                    for message in 0..<perChat { _ = try await client.timedTurn("r\(round)-c\(index)-m\(message)") }
                }
            }
            try await group.waitForAll()
        }
        gatewayDone.append(seconds(clock.now - begin))
        precondition(model.requests.count == before + total)
    }
    for client in clients { client.client.close() }
    let rate = Double(total) / median(telegramStart)
    print(
        "telegram intake: \(total) messages from \(chats) chats, to turn start min/median/max "
            + "\(spread(telegramStart, scale: 1000)) ms (\(String(format2: rate)) messages/s; target ≥ 200/s), to every "
            + "answer shown \(spread(telegramDone, scale: 1000)) ms; the same turns from \(chats) WebSocket clients "
            + "\(spread(gatewayDone, scale: 1000)) ms; ratio of medians (all answers shown / WebSocket) "
            + "\(String(format2: median(telegramDone) / median(gatewayDone)))x")

    // Edits while a 2,000-token answer streams.
    var perSecond: [Double] = []
    var perAnswer: [Double] = []
    var streaming: [Double] = []
    let chat = 77_000
    for round in 0..<5 {
        var reply = ScriptedReply()
        reply.text = Array(repeating: "tok ", count: 1999) + ["end\(round)"]
        reply.chunkDelay = .milliseconds(5)
        model.enqueue(reply)
        let editsBefore = telegram.calls("editMessageText").count
        let begin = clock.now
        telegram.sendText(from: owner, chat: chat, text: "a long answer please")
        try await waitUntil("the long answer") {
            telegram.calls().contains {
                $0.parameters["parse_mode"]?.stringValue == "HTML" && $0.parameters["chat_id"]?.intValue == chat
                    && ($0.parameters["text"]?.stringValue ?? "").hasSuffix("end\(round)")
            }
        }
        let calls = telegram.calls("editMessageText").dropFirst(editsBefore).filter {
            $0.parameters["chat_id"]?.intValue == chat
        }
        let streamed = calls.filter { $0.parameters["parse_mode"] == nil }
        let duration = seconds(clock.now - begin)
        streaming.append(duration)
        perAnswer.append(Double(streamed.count))
        perSecond.append(Double(streamed.count) / duration)
    }
    print(
        "telegram edits: a 2,000-token answer streamed in min/median/max \(spread(streaming)) s got "
            + "\(spread(perAnswer)) edits while streaming (then one HTML edit per message; 8,000 characters: 3 messages), "
            + "\(spread(perSecond)) edits per second (floor: 1 edit per second per chat; target ≤ 1)")
    await stopGuest(in: directory.path, environment)
    await telegram.shutdown()
    try? await model.shutdown()
}
