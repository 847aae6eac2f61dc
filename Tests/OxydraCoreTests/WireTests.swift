import OxydraCore
import Testing

@Suite("Wire formats")
struct WireTests {
    static let session = SessionRef(userID: "alice", sessionID: "s-1")
    static let header = TurnHeader(requestID: "r1", session: session, turn: TurnRef(turnID: "t1", state: .running))

    static let serverFrames: [ServerFrame] = [
        .helloAck(
            requestID: "h", protocolVersion: 1, session: session, activeTurn: TurnRef(turnID: "t0", state: .queued)),
        .turnStarted(header),
        .assistantDelta(
            TurnHeader(
                requestID: "r\"1\\", session: SessionRef(userID: "al ice", sessionID: "s\u{01}é"),
                turn: TurnRef(turnID: "t\n", state: .queued)), delta: ""),
        .assistantDelta(header, delta: "quote \" backslash \\ newline \n tab \t bell \u{07} é 漢字 🎉"),
        .turnProgress(
            header,
            ProgressInfo(
                kind: "tool_heartbeat", toolNames: ["a", "b"], elapsedSeconds: 5, message: "[1/8] Still", turn: 1,
                maxTurns: 8)),
        .turnProgress(
            header,
            ProgressInfo(kind: "provider_call", message: "[1/8] \"Calling\" provider\n", turn: 1, maxTurns: 8)),
        .toolCall(header, ToolCallInfo(callID: "c1", name: "file_read", summary: "file_read(path=/shared/a)")),
        .toolCall(
            header,
            ToolCallInfo(
                callID: "c2", name: "shell_exec", summary: "shell_exec(command=ls)", arguments: #"{"command":"ls"}"#)),
        .toolResult(
            header,
            ToolResultInfo(
                callID: "c2", name: "shell_exec", isError: false, durationMilliseconds: 3, summary: "a",
                output: "a\nb\n")),
        .toolResult(
            header,
            ToolResultInfo(
                callID: "c1", name: "file_read", isError: true, durationMilliseconds: 12, summary: "no such file")),
        .turnCompleted(
            header,
            TurnCompletion(
                message: "done", finishReason: "stop",
                usage: Usage(promptTokens: 3, completionTokens: 4, totalTokens: 7),
                costUSD: 0.0123, providerCalls: 2, durationMilliseconds: 1500)),
        .turnCompleted(
            header,
            TurnCompletion(
                message: "m", providerCalls: 1, contextTokens: 1200, contextWindow: 128_000, provider: "backup",
                model: "claude-haiku-4-5")),
        .turnCompleted(
            header,
            TurnCompletion(
                message: "line \"one\"\n\ttwo \u{1F} é 🎉", finishReason: nil,
                usage: Usage(promptTokens: nil, completionTokens: 5, totalTokens: 5), costUSD: 2.5,
                providerCalls: 3, durationMilliseconds: 0, contextTokens: nil, contextWindow: 8192)),
        .turnCompleted(
            header, TurnCompletion(message: "", usage: Usage(promptTokens: 1, completionTokens: nil, totalTokens: 1))),
        .turnCancelled(header),
        .error(
            GatewayErrorInfo(
                requestID: "r", session: session, turn: TurnRef(turnID: "t", state: .failed), code: .turnFailed,
                message: "boom")),
        .error(GatewayErrorInfo(code: .badFrame, message: "bad")),
        .healthStatus(
            HealthInfo(
                requestID: "hc", session: session,
                startupStatus: StartupStatus(
                    sandboxTier: .process, degradedReasons: [DegradedReason(code: "x", detail: "y")]),
                message: "ready")),
        .sessionCreated(requestID: "c", session: session, displayName: "work", agentName: "default"),
        .sessionList(
            requestID: "l",
            sessions: [
                SessionInfo(sessionID: "a", createdAt: "2026-01-01T00:00:00Z", lastActiveAt: "2026-01-02T00:00:00Z"),
                SessionInfo(
                    sessionID: "b", displayName: "n", createdAt: "c", lastActiveAt: "d", archived: true,
                    activeTurn: TurnRef(turnID: "t", state: .running)),
            ]),
        .sessionList(requestID: "l2", sessions: [], nextCursor: "1700000000000.42", total: 100_000),
        .modelChanged(
            requestID: "m", session: session,
            model: ModelInfo(provider: "anthropic", model: "claude-sonnet-4-5", contextWindow: 200_000, images: true)),
        .modelList(
            requestID: "ml", current: ModelInfo(provider: "openai", model: "gpt-4o-mini"),
            models: [ModelInfo(provider: "openai", model: "gpt-4o", contextWindow: 128_000)]),
        .sessionSwitched(requestID: "s", session: session, activeTurn: nil),
        .history(
            requestID: "g", session: session,
            entries: [
                HistoryEntry(role: "user", text: "hi"),
                HistoryEntry(role: "assistant", text: "", toolNames: ["file_read"]),
                HistoryEntry(role: "tool", text: "3 lines", toolNames: ["file_read"]),
                HistoryEntry(role: "assistant", text: "done"),
            ], truncated: true, first: 7),
    ]

    @Test(arguments: serverFrames)
    func serverFramesRoundTrip(_ frame: ServerFrame) throws {
        let parsed = try ServerFrame(parsing: frame.text)
        #expect(parsed == frame)
        // The fast writer produces JSON the parser (and any JSON reader) accepts, with the same value.
        #expect(try JSONValue(parsing: frame.text) == frame.json)
    }

    static let clientFrames: [ClientFrame] = [
        .hello(.init(requestID: "h", userID: "alice", sessionID: "abc", createNewSession: true)),
        .sendTurn(.init(requestID: "r", sessionID: "s", turnID: "t", prompt: "hi")),
        .cancelActiveTurn(requestID: "c", sessionID: nil, turnID: "t"),
        .cancelAllActiveTurns(requestID: "ca"),
        .healthCheck(requestID: "hc"),
        .createSession(requestID: "cs", displayName: "work", agentName: nil),
        .listSessions(requestID: "ls", includeArchived: true),
        .setModel(requestID: "sm", provider: nil, model: "gpt-4o"),
        .getUsage(requestID: "gu", days: 30),
        .setModel(requestID: "sm2", provider: "anthropic", model: "claude-sonnet-4-5"),
        .listModels(requestID: "lm"),
        .listSessions(requestID: "ls2", includeArchived: false, limit: 20, cursor: "1700000000000.42"),
        .switchSession(requestID: "ss", session: "ab"),
        .getHistory(requestID: "gh", limit: 20),
        .getHistory(requestID: "gh2", limit: 20, before: 40),
    ]

    @Test(arguments: clientFrames)
    func clientFramesRoundTrip(_ frame: ClientFrame) throws {
        #expect(try ClientFrame(parsing: frame.text) == frame)
    }

    @Test(
        arguments: [
            ("[]", nil, "frame: expected an object, got array"),
            (#"{"payload":{}}"#, nil, "frame.type: required string is missing"),
            (
                #"{"type":"hello","payload":{"request_id":"h"}}"#, "h",
                "hello.payload.protocol_version: required integer is missing"
            ),
            (
                #"{"type":"hello","payload":{"request_id":"h","protocol_version":"1"}}"#, "h",
                "hello.payload.protocol_version: expected an integer, got string"
            ),
            (
                #"{"type":"send_turn","payload":{"request_id":"r","turn_id":"t","prompt":"   "}}"#, "r",
                "send_turn.payload.prompt: must not be empty"
            ),
            (
                #"{"type":"send_turn","payload":{"request_id":"r","prompt":"x"}}"#, "r",
                "send_turn.payload.turn_id: required string is missing"
            ),
            (
                #"{"type":"switch_session","payload":{"request_id":"r","session_id":""}}"#, "r",
                "switch_session.payload.session_id: must not be empty"
            ),
            (#"{"type":"health_check","payload":[]}"#, nil, "health_check.payload: expected an object, got array"),
            (
                #"{"type":"list_sessions","payload":{"request_id":"r","include_archived":"yes"}}"#, "r",
                "list_sessions.payload.include_archived: expected true or false, got string"
            ),
        ] as [(String, String?, String)])
    func clientFrameErrorsNameTheField(_ text: String, _ requestID: String?, _ message: String) {
        #expect(throws: ClientFrameError(requestID: requestID, message: message)) { try ClientFrame(parsing: text) }
    }

    @Test func lengthPrefixedFramesSurviveArbitrarySplits() throws {
        let bodies = ["{}", #"{"op":"health_check"}"#, String(repeating: "x", count: 70_000)]
        let stream = bodies.flatMap { LengthPrefixedFrame.encode(Array($0.utf8)) }
        for chunk in [1, 3, 4, 5, 4096] {
            var decoder = LengthPrefixedDecoder()
            var out: [String] = []
            var index = 0
            while index < stream.count {
                decoder.append(stream[index..<min(index + chunk, stream.count)])
                index += chunk
                while let body = try decoder.next() { out.append(String(decoding: body, as: UTF8.self)) }
            }
            #expect(out == bodies)
            #expect(decoder.pendingByteCount == 0)
        }
        var small = LengthPrefixedDecoder(maxLength: 10)
        small.append([0, 0, 0, 11])
        #expect(throws: WireError("frame of 11 bytes exceeds the limit of 10 bytes")) { try small.next() }
        #expect(throws: WireError("frame is 3 bytes; a frame starts with a 4-byte big-endian length")) {
            try LengthPrefixedFrame.decodeSingle([0, 0, 1])
        }
        #expect(throws: WireError("frame header says 5 bytes but 2 bytes follow it")) {
            try LengthPrefixedFrame.decodeSingle([0, 0, 0, 5, 1, 2])
        }
    }

    @Test func bootstrapEnvelopeRoundTripsAndIsValidated() throws {
        let envelope = BootstrapEnvelope(
            userID: "alice", sandboxTier: .process, workspaceRoot: "/ws/alice",
            runtimePolicy: .init(mounts: ["shared": "/data"], resources: ["max_vcpus": 2], credentialRefs: ["k": "v"]),
            startupStatus: StartupStatus(sandboxTier: .process, degradedReasons: [.init(code: "c", detail: "d")]))
        #expect(try BootstrapEnvelope(framed: envelope.framed) == envelope)
        var withBot = envelope
        var telegram = TelegramConfig()
        telegram.enabled = true
        telegram.botTokenEnv = "BOT_TOKEN"
        telegram.allowedUserIDs = [42, 7]
        telegram.sessionMode = .shared
        withBot.telegram = telegram
        #expect(try BootstrapEnvelope(framed: withBot.framed) == withBot)
        #expect(withBot.json.compactText.contains(#""bot_token_env":"BOT_TOKEN""#))
        let framed = envelope.framed
        let length = framed.prefix(4).reduce(0) { $0 << 8 | Int($1) }
        #expect(length == framed.count - 4)

        func rejects(_ json: String, _ message: String) {
            #expect(throws: WireError(message)) { try BootstrapEnvelope(json: Array(json.utf8)) }
        }
        let status = #""startup_status":{"sandbox_tier":"process"}"#
        rejects(
            #"{"sandbox_tier":"process","workspace_root":"/w",\#(status)}"#,
            "bootstrap.user_id: required string is missing")
        rejects(
            #"{"user_id":"../x","sandbox_tier":"process","workspace_root":"/w",\#(status)}"#,
            "bootstrap.user_id: invalid user id `../x`: it contains a path separator; use letters, digits, `-` or `_`")
        rejects(
            #"{"user_id":"a","sandbox_tier":"process","workspace_root":"/w",\#(status),"channels":{"telegram":{"allowed_user_ids":["42"],"session_mode":"per_chat","api_base_url":"x"}}}"#,
            "bootstrap.channels.telegram.allowed_user_ids[0]: expected an integer")
        rejects(
            #"{"user_id":"a","sandbox_tier":"process","workspace_root":"/w",\#(status),"control_listen":{"port":8081,"token":"0123456789abcdef"}}"#,
            "bootstrap.control_listen: only the micro_vm tier serves control over TCP")
        let vm = #""startup_status":{"sandbox_tier":"micro_vm"}"#
        rejects(
            #"{"user_id":"a","sandbox_tier":"micro_vm","workspace_root":"/w",\#(vm),"control_listen":{"port":8081,"token":"short"}}"#,
            "bootstrap.control_listen.token: must be at least 16 characters")
        var inVM = BootstrapEnvelope(
            userID: "alice", sandboxTier: .microVM, workspaceRoot: "/workspace",
            startupStatus: StartupStatus(sandboxTier: .microVM))
        inVM.controlListen = .init(port: 8081, token: "0123456789abcdef0123")
        #expect(try BootstrapEnvelope(framed: inVM.framed) == inVM)
        rejects(
            #"{"user_id":"a","sandbox_tier":"vm","workspace_root":"/w",\#(status)}"#,
            "bootstrap.sandbox_tier: unknown tier `vm` (process, container or micro_vm)")
        rejects(
            #"{"user_id":"a","sandbox_tier":"container","workspace_root":"/w",\#(status)}"#,
            "bootstrap.startup_status.sandbox_tier (process) does not match bootstrap.sandbox_tier (container)")
        rejects(
            #"{"user_id":"a","sandbox_tier":"process","workspace_root":"/w","startup_status":{"sandbox_tier":"process","shell_available":true}}"#,
            "bootstrap.startup_status claims a sidecar or shell but there is no sidecar_endpoint")
        rejects(
            #"{"user_id":"a","sandbox_tier":"process","workspace_root":"/w","runtime_policy":{"resources":{"max_vcpus":0}},\#(status)}"#,
            "bootstrap.runtime_policy.resources.max_vcpus: must be greater than 0")
        rejects("{", "bootstrap envelope is not valid JSON: expected a key at byte 1")
    }

    @Test func controlMessagesRoundTrip() throws {
        for request in [ControlRequest.healthCheck, .shutdownUser, .logs(role: "runtime", tail: 5, offset: 10)] {
            #expect(try ControlRequest(request.json) == request)
        }
        #expect(throws: WireError("control.op: unknown operation `reboot` (health_check, shutdown_user or logs)")) {
            try ControlRequest(["op": "reboot"])
        }
        let health = GuestHealth(
            userID: "alice", healthy: true, startupStatus: StartupStatus(sandboxTier: .process),
            gatewayEndpoint: "ws://127.0.0.1:1/ws", pid: 42, uptimeSeconds: 3, openSessions: 2, activeTurns: 1,
            logDirectory: "/ws/logs")
        #expect(try ControlResponse(ControlResponse.health(health).json, replyingTo: .healthCheck) == .health(health))
        #expect(try ControlResponse(ControlResponse.failure("x").json, replyingTo: .shutdownUser) == .failure("x"))
    }

    @Test func gatewayBindParsing() {
        #expect(GatewayBind.parse("127.0.0.1:0").bind == GatewayBind(host: "127.0.0.1", port: 0))
        #expect(GatewayBind.parse("[::1]:8080").bind == GatewayBind(host: "::1", port: 8080))
        #expect(GatewayBind.parse("[::1]:8080").bind?.isLoopback == true)
        #expect(GatewayBind.parse("0.0.0.0:9").bind?.isLoopback == false)
        #expect(GatewayBind.parse("localhost").problem == "must be `host:port`, e.g. \"127.0.0.1:0\"")
        #expect(
            GatewayBind.parse("1.2.3.4:70000").problem == "has an invalid port `70000` (0-65535; 0 picks a free port)")
    }
}

@Suite("send_turn attachments")
struct SendTurnAttachmentTests {
    func parse(_ attachments: String) throws -> ClientFrame {
        try ClientFrame(
            parsing:
                #"{"type":"send_turn","payload":{"request_id":"r","turn_id":"t","prompt":"p","attachments":"#
                + attachments + "}}")
    }

    @Test func attachmentsRoundTripAndBadOnesAreNamed() throws {
        let frame = ClientFrame.sendTurn(
            ClientFrame.SendTurn(
                requestID: "r", turnID: "t", prompt: "p",
                attachments: [.init(name: "a.png", mimeType: "image/png", data: Data([1, 2, 3]))]))
        #expect(try ClientFrame(parsing: frame.text) == frame)
        #expect(
            throws: ClientFrameError(requestID: "r", message: "send_turn.payload.attachments[0].data: not valid base64")
        ) {
            try parse(#"[{"name":"a","mime_type":"text/plain","data":"@@"}]"#)
        }
        #expect(
            throws: ClientFrameError(
                requestID: "r",
                message: "send_turn.payload.attachments[0].mime_type: `text` is not a MIME type like image/png")
        ) {
            try parse(#"[{"name":"a","mime_type":"text","data":""}]"#)
        }
        let many = Array(repeating: #"{"name":"a","mime_type":"text/plain","data":""}"#, count: 9)
        #expect(
            throws: ClientFrameError(
                requestID: "r", message: "send_turn.payload.attachments: at most 8 files per turn, got 9")
        ) {
            try parse("[" + many.joined(separator: ",") + "]")
        }
        let big = Data(count: 5 << 20).base64EncodedString()
        #expect(
            throws: ClientFrameError(requestID: "r", message: "send_turn.payload.attachments: more than 8 MiB in all")
        ) {
            try parse(
                #"[{"name":"a","mime_type":"text/plain","data":""# + big
                    + #""},{"name":"b","mime_type":"text/plain","data":""#
                    + big + #""}]"#)
        }
    }
}

@Suite("Usage reports")
struct UsageReportTests {
    @Test func recordsAddUpPerDayModelAndSession() throws {
        let day1 = Date(timeIntervalSince1970: 1_764_633_600)  // 2025-12-02T00:00:00Z
        let records = [
            UsageRecord(
                session: "a", at: day1.addingTimeInterval(60), provider: "openai", model: "gpt-4o-mini",
                usage: Usage(promptTokens: 1000, completionTokens: 500), costUSD: 0.00045),
            UsageRecord(
                session: "b", at: day1.addingTimeInterval(86_400 + 60), provider: "openai", model: "gpt-4o-mini",
                usage: Usage(promptTokens: 2000, completionTokens: 100), costUSD: 0.00036),
            UsageRecord(
                session: "b", at: day1.addingTimeInterval(86_400 + 120), provider: "local", model: "llama",
                usage: Usage(promptTokens: 50, completionTokens: 5), costUSD: nil),
        ]
        let report = UsageReport(since: day1, records: records, dailyLimitUSD: 5, spentTodayUSD: 0.00036)
        #expect(report.total.calls == 3 && report.total.unpricedCalls == 1)
        #expect(report.total.costNanodollars == 810_000)
        #expect(report.days.map(\.key) == ["2025-12-02", "2025-12-03"])
        #expect(report.days.map(\.calls) == [1, 2])
        #expect(report.models.map(\.key) == ["openai/gpt-4o-mini", "local/llama"])
        #expect(report.sessions.map(\.key) == ["a", "b"])
        let frame = ServerFrame.usageReport(requestID: "u", report: report)
        #expect(try ServerFrame(parsing: frame.text) == frame)
        #expect(report.text.hasPrefix("since 2025-12-02: 3 calls, 3.0k prompt and 605 output tokens, $0.0008"))
        #expect(report.text.contains("budget: today $0.0004 of $5.0000, this month $0.0000 (no monthly limit)"))
        #expect(report.text.contains("  openai/gpt-4o-mini  2 calls, 3.0k in, 600 out, $0.0008"))
    }
}
