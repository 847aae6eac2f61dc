import OxydraClient
import OxydraConfig
import OxydraCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// `runner ask "<prompt>"`: one turn through the running guest's gateway. The answer streams to
/// standard output; progress and tool activity go to standard error (`--json`: every frame as a
/// JSON line on standard output). Exit 0 on success, 1 on failure, 130 when cancelled.
public enum AskCommand {
    public struct Options: Sendable {
        public var prompt: String
        public var session: String?
        public var newSession: Bool
        public var json: Bool
        /// Whether to remove terminal control sequences from what is printed; nil: for each of
        /// standard output and standard error, when it is a terminal (model and tool text could
        /// otherwise retitle the window or rewrite the screen). `--json` output is escaped anyway.
        public var stripControlSequences: Bool?
        /// A new session, archived once the turn ends (one-shot asks from scripts stay out of lists).
        public var ephemeral = false
        /// Files sent with the prompt (`--attach`).
        public var attachments: [ClientFrame.FileAttachment] = []
        /// `--approve-all`: every approval request of the turn is allowed once.
        public var approveAll = false
        /// `--approve TOOL,…`: requests for these tools are allowed once.
        public var approveTools: Set<String> = []
        /// Asks the person at the terminal (nil without one: requests not covered above are denied).
        public var prompter: (@Sendable (ApprovalRequest) async -> (ApprovalDecision, ApprovalScope))?

        public init(
            prompt: String, session: String? = nil, newSession: Bool = false, json: Bool = false,
            stripControlSequences: Bool? = nil
        ) {
            self.stripControlSequences = stripControlSequences
            self.prompt = prompt
            self.session = session
            self.newSession = newSession
            self.json = json
        }
    }

    public static let cancelledExitCode: Int32 = 130

    /// Runs the turn. Each element of `interrupts` (Ctrl-C) asks the guest to cancel it.
    public static func run(
        _ context: RunnerContext, options: Options, interrupts: AsyncStream<Void>,
        emit raw: @escaping @Sendable (_ text: String, _ descriptor: Int32) -> Void
    ) async -> Int32 {
        let strip = (
            out: !options.json && (options.stripControlSequences ?? (isatty(1) == 1)),
            err: options.stripControlSequences ?? (isatty(2) == 1)
        )
        // One filter per stream, so a sequence split across two deltas is still removed whole.
        let filters = Mutex((out: TerminalText.Filter(tab: "\t"), err: TerminalText.Filter(tab: "\t")))
        let emit: @Sendable (String, Int32) -> Void = { text, descriptor in
            guard descriptor == 1 ? strip.out : strip.err else { return raw(text, descriptor) }
            let clean = filters.withLock { descriptor == 1 ? $0.out.feed(text) : $0.err.feed(text) }
            raw(clean, descriptor)
        }
        let connection: GatewayEndpoint
        do {
            connection = try GatewayEndpoint.locate(context)
        } catch {
            emit(error.standardError, 2)
            return error.exitCode
        }
        guard !options.prompt.trimmed.isEmpty else {
            emit("runner error: the prompt is empty\n", 2)
            return 1
        }
        let client = GatewayClient(endpoint: connection.url, token: connection.token)
        let turnID = FrameIDs.turn()
        let helloID = FrameIDs.request()
        let turnRequestID = FrameIDs.request()
        client.send(
            .hello(
                ClientFrame.Hello(
                    requestID: helloID, userID: connection.user.rawValue, sessionID: options.session,
                    createNewSession: options.newSession || options.ephemeral, client: "ask")))
        let acknowledged = Flag()

        return await withTaskGroup(of: Int32?.self) { group in
            group.addTask {
                try? await Task.sleep(for: .seconds(10))
                if !Task.isCancelled && !acknowledged.isSet {
                    emit("runner error: the gateway at \(connection.url) did not answer hello within 10 s\n", 2)
                    client.close()
                    return 1
                }
                return nil
            }
            group.addTask {
                for await _ in interrupts {
                    emit("\n^C cancelling the turn…\n", 2)
                    client.send(.cancelActiveTurn(requestID: FrameIDs.request(), sessionID: nil, turnID: turnID))
                }
                return nil
            }
            group.addTask {
                var session: SessionID?
                var streamed = false
                var ended: Int32?
                let archiveID = FrameIDs.request()
                /// The turn's exit code, after archiving the session of an ephemeral ask.
                func end(_ code: Int32) -> Int32? {
                    guard options.ephemeral, let session else {
                        client.close()
                        return code
                    }
                    ended = code
                    client.send(.archiveSession(requestID: archiveID, session: session.rawValue, archived: true))
                    return nil
                }
                for await frame in client.frames {
                    if let code = ended {
                        switch frame {
                        case .sessionUpdated(let request, _) where request == archiveID:
                            client.close()
                            return code
                        case .error(let info) where info.requestID == archiveID:
                            emit("runner error: archiving the ephemeral session failed: \(info.message)\n", 2)
                            client.close()
                            return code == 0 ? 1 : code
                        default: continue
                        }
                    }
                    // Only this turn's frames: a reconnecting client is also sent the previous
                    // turn's terminal frame, which is not this ask's answer.
                    if options.json && (frame.turnID == nil || frame.turnID == turnID) {
                        emit(JSONWriter.text(frame.json, sortedKeys: true) + "\n", 1)
                    }
                    switch frame {
                    case .helloAck(_, _, let ref, _):
                        acknowledged.set()
                        session = ref.sessionID
                        if !options.json { emit("session \(ref.sessionID)\n", 2) }
                        client.send(
                            .sendTurn(
                                ClientFrame.SendTurn(
                                    requestID: turnRequestID, sessionID: ref.sessionID, turnID: turnID,
                                    prompt: options.prompt, attachments: options.attachments)))
                    case .assistantDelta(let header, let delta) where header.turn.turnID == turnID:
                        streamed = true
                        if !options.json { emit(delta, 1) }
                    case .turnProgress(let header, let progress) where header.turn.turnID == turnID:
                        if !options.json { emit("· \(progress.message)\n", 2) }
                    case .toolCall(let header, let call) where header.turn.turnID == turnID:
                        if !options.json { emit("→ \(call.summary)\n", 2) }
                    case .toolResult(let header, let result) where header.turn.turnID == turnID:
                        if !options.json {
                            emit(
                                "← \(result.name) \(result.isError ? "failed" : "ok") (\(result.durationMilliseconds) ms)"
                                    + (result.isError ? ": \(result.summary)" : "") + "\n", 2)
                        }
                    case .turnCompleted(let header, let completion) where header.turn.turnID == turnID:
                        if !options.json {
                            if !streamed { emit(completion.message, 1) }
                            emit("\n", 1)
                            emit(Describe.completion(completion) + "\n", 2)
                        }
                        if let code = end(0) { return code }
                    case .approvalRequest(let header, let request) where header.turn.turnID == turnID:
                        let answer = { (decision: ApprovalDecision, scope: ApprovalScope) in
                            client.send(
                                .approve(
                                    requestID: FrameIDs.request(), approvalID: request.approvalID, decision: decision,
                                    scope: scope))
                        }
                        if options.approveAll || options.approveTools.contains(request.tool) {
                            if !options.json {
                                emit(
                                    "✓ allowing \(request.summary) (\(options.approveAll ? "--approve-all" : "--approve"))\n",
                                    2)
                            }
                            answer(.allow, .once)
                        } else if let prompter = options.prompter {
                            Task {
                                let (decision, scope) = await prompter(request)
                                answer(decision, scope)
                            }
                        } else {
                            emit(
                                "✗ denied \(request.summary) (\(request.reason)): no terminal to ask; pass "
                                    + "--approve-all or --approve \(request.tool) to allow it\n", 2)
                            answer(.deny, .once)
                        }
                    case .approvalResolved(let header, let resolution)
                    where header.turn.turnID == turnID && !options.json:
                        let by = resolution.answeredBy.map { " by \($0)" } ?? ""
                        switch (resolution.reason, resolution.decision) {
                        case (.answered, .allow): emit("· approved (\(resolution.scope.rawValue))\(by)\n", 2)
                        case (.answered, .deny): emit("· denied\(by)\n", 2)
                        case (.timedOut, _): emit("· not approved in time: denied\n", 2)
                        case (.cancelled, _): emit("· approval cancelled with the turn\n", 2)
                        }
                    case .turnCancelled(let header) where header.turn.turnID == turnID:
                        if !options.json { emit((streamed ? "\n" : "") + "turn cancelled\n", 2) }
                        if let code = end(cancelledExitCode) { return code }
                    case .error(let info)
                    where info.turn?.turnID == turnID || info.requestID == turnRequestID || info.requestID == helloID
                        || info.requestID == nil:
                        if !options.json {
                            emit((streamed ? "\n" : "") + "runner error: \(info.message) [\(info.code.rawValue)]\n", 2)
                        }
                        if info.turn?.turnID == turnID, let code = end(1) { return code }
                        if info.turn?.turnID != turnID {
                            client.close()
                            return 1
                        }
                    default:
                        continue
                    }
                }
                let reason = client.failure?.message ?? "the gateway closed the connection before the turn ended"
                emit("runner error: \(reason)\(session.map { " (session \($0))" } ?? "")\n", 2)
                return 1
            }
            var code: Int32 = 1
            for await result in group {
                if let result {
                    code = result
                    break
                }
            }
            group.cancelAll()
            client.close()
            return code
        }
    }
}

/// A running guest's gateway as recorded in its `ipc/` directory.
public struct GatewayEndpoint: Sendable {
    public var url: String
    public var token: String
    public var user: UserID
    /// The marker file the URL was read from.
    public var marker: String
    /// The file the token was read from.
    public var tokenFile: String

    /// Reads the marker and checks that the guest answers; else `NoRunningGuest`.
    public static func locate(_ context: RunnerContext) throws(CommandOutput) -> GatewayEndpoint {
        let target = try UserTarget.resolve(context).get()
        guard access(target.marker, F_OK) == 0 else {
            throw target.noRunningGuest(context, detail: "no gateway endpoint marker")
        }
        switch Result(catching: { () throws(ControlClientError) in
            try ControlClient.request(.healthCheck, socket: target.controlSocket, timeout: .seconds(3))
        }) {
        case .success(.health(let health)) where health.healthy: break
        case .success: throw target.noRunningGuest(context, detail: "the guest is shutting down")
        case .failure(let error): throw target.noRunningGuest(context, detail: "stale marker: \(error)")
        }
        let found: GatewayAccess
        do {
            found = try GatewayAccess.discover(ipcDirectory: target.ipc)
        } catch {
            let denied = error.message.hasSuffix("permission denied")
            throw CommandOutput.error(
                "\(error)" + (denied ? " — only the OS user who started the guest can talk to it" : ""))
        }
        return GatewayEndpoint(
            url: found.endpoint, token: found.token, user: target.user, marker: target.marker,
            tokenFile: GatewayAccess.tokenPath(ipcDirectory: target.ipc))
    }
}

/// A boolean set once, readable from any task.
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .relaxed) }
    var isSet: Bool { value.load(ordering: .relaxed) }
}
