import Logging
import OxydraCore
import OxydraRuntime

/// A tool call waiting for a person.
struct PendingApproval {
    var stored: StoredApproval
    var header: TurnHeader
    /// The waiting turn (nil for a request restored after a restart until its turn asks again).
    var continuation: CheckedContinuation<ApprovalOutcome, Never>?
    var timeout: Task<Void, Never>?
}

enum ApprovalOutcome: Sendable {
    case resolved(ApprovalResolution)
    /// The guest is stopping: the request stays stored for the next start.
    case suspended
}

/// The approver a turn runs with: calls that need no approval are decided here, without a hop to
/// the hub; the others wait in the hub for the first client that answers.
struct TurnApprover: ToolApprover {
    let hub: SessionHub
    let key: TurnKey
    let header: TurnHeader
    let config: ApprovalConfig

    func review(_ call: ToolCall, risk: ToolRisk, summary: String, details: @autoclosure () -> String)
        async throws -> ApprovalVerdict
    {
        guard config.asks(tool: call.name, risk: risk.level) else { return .notAsked }
        let text = details()
        return try await hub.awaitApproval(
            call: call, risk: risk, summary: summary, details: text, key: key, header: header)
    }
}

extension SessionHub {
    // MARK: - Waiting

    /// Decides a call that needs approval: a standing grant lets it run; otherwise every client on
    /// the session is asked and the first answer (or the timeout, or the turn's cancellation) decides.
    func awaitApproval(
        call: ToolCall, risk: ToolRisk, summary: String, details: String, key: TurnKey, header: TurnHeader
    ) async throws -> ApprovalVerdict {
        let kinds = risk.grantKinds(tool: call.name)
        await loadGrants()
        if let scope = coveringScope(kinds, key: key) {
            return ApprovalVerdict(allowed: true, decision: "granted_" + scope.rawValue)
        }
        let id: String
        if let parked = parkedResolutions.removeValue(forKey: call.id) {
            return try await verdict(for: .resolved(parked), call: call, id: parked.approvalID)
        } else if let restored = pendingApprovals.values.first(where: {
            $0.stored.session == key.session && $0.stored.request.callID == call.id
        }) {
            // Offered again after a restart: the same request, its original deadline.
            id = restored.stored.request.approvalID
        } else {
            id = Self.newID("ap_")
            let expires = Date().addingTimeInterval(Double(approvalConfig.timeoutSecs))
            let request = ApprovalRequest(
                approvalID: id, callID: call.id, tool: call.name, summary: summary, risk: risk.level,
                reason: risk.reason.isEmpty ? "tools.approval.mode = \"\(approvalConfig.mode.rawValue)\"" : risk.reason,
                details: details, expiresAt: Timestamp.rfc3339(expires),
                kindLabel: kinds.map(\.label).joined(separator: ", "))
            let stored = StoredApproval(
                request: request, session: key.session, turn: key.turn, turnRequestID: header.requestID, kinds: kinds,
                rememberedForSession: risk.rememberedForSession, expiresAt: expires)
            if let approvalStore {
                do {
                    try await approvalStore.savePending(stored)
                } catch {
                    logger.error("cannot store an approval request", metadata: ["error": "\(error)"])
                }
            }
            register(stored, header: header)
        }
        // Registered just now, or restored: nothing between here and the wait below suspends.
        guard let request = pendingApprovals[id]?.stored.request else { throw CancellationError() }
        publish(.approvalRequest(header, request), to: key.session)
        publish(
            .turnProgress(
                header,
                ProgressInfo(
                    kind: "awaiting_approval", toolNames: [call.name],
                    message: "Waiting for approval: \(summary) (\(request.reason))", turn: 0,
                    maxTurns: runtime.settings.maxTurns)), to: key.session)
        logger.info(
            "approval requested",
            metadata: ["session": "\(key.session)", "tool": "\(call.name)", "approval": "\(id)"])
        let outcome = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                if pendingApprovals[id] != nil {
                    pendingApprovals[id]!.continuation = continuation
                } else if let parked = parkedResolutions.removeValue(forKey: call.id) {
                    continuation.resume(returning: .resolved(parked))
                } else {
                    continuation.resume(
                        returning: .resolved(
                            ApprovalResolution(
                                approvalID: id, decision: .deny, scope: .once, reason: .cancelled, answeredBy: nil)))
                }
            }
        } onCancel: {
            Task { await self.interrupted(id) }
        }
        return try await verdict(for: outcome, call: call, id: id)
    }

    /// The verdict of an ended approval; the stored request is removed before the call runs, so a
    /// crash while the call runs does not offer it again.
    private func verdict(for outcome: ApprovalOutcome, call: ToolCall, id: String) async throws -> ApprovalVerdict {
        guard case .resolved(let resolution) = outcome else { throw ApprovalSuspended() }
        if let approvalStore {
            do {
                try await approvalStore.removePending(id)
            } catch {
                logger.error("cannot remove an answered approval request", metadata: ["error": "\(error)"])
            }
        }
        let by = resolution.answeredBy
        switch (resolution.reason, resolution.decision) {
        case (.answered, .allow):
            return ApprovalVerdict(allowed: true, decision: resolution.auditDecision, answeredBy: by)
        case (.answered, .deny):
            return ApprovalVerdict(
                allowed: false, decision: "denied", answeredBy: by,
                message: "tool \(call.name) was not run: the user denied it"
                    + (by.map { " (answered from \($0))" } ?? "")
                    + ". Do not try to do the same thing another way; ask the user how to proceed.")
        case (.timedOut, _):
            return ApprovalVerdict(
                allowed: false, decision: "timed_out",
                message: "tool \(call.name) was not run: nobody approved it within \(approvalConfig.timeoutSecs) s "
                    + "(tools.approval.timeout_secs), so it was denied. Tell the user what you wanted to run.")
        case (.cancelled, _):
            throw CancellationError()
        }
    }

    /// Registers a request (new, or restored after a restart) with its timeout.
    func register(_ stored: StoredApproval, header: TurnHeader) {
        let id = stored.request.approvalID
        let remaining = max(stored.expiresAt.timeIntervalSinceNow, 0)
        let timeout = Task { [weak self] in
            try? await Task.sleep(for: .milliseconds(Int(remaining * 1000)))
            if Task.isCancelled { return }
            await self?.resolve(id, decision: .deny, scope: .once, reason: .timedOut, by: nil)
        }
        pendingApprovals[id] = PendingApproval(stored: stored, header: header, continuation: nil, timeout: timeout)
    }

    /// The waiting turn was cancelled: a denial — unless the guest is stopping, when the request
    /// stays stored and the turn resumes at the next start.
    func interrupted(_ id: String) {
        guard let pending = pendingApprovals[id] else { return }
        if shuttingDown {
            pendingApprovals[id] = nil
            pending.timeout?.cancel()
            pending.continuation?.resume(returning: .suspended)
            return
        }
        resolve(id, decision: .deny, scope: .once, reason: .cancelled, by: nil)
    }

    /// Ends a pending approval: tells every client on the session, records grants, wakes the turn.
    @discardableResult
    func resolve(
        _ id: String, decision: ApprovalDecision, scope: ApprovalScope, reason: ApprovalResolution.Reason, by: String?
    ) -> ApprovalResolution? {
        guard let pending = pendingApprovals.removeValue(forKey: id) else { return nil }
        pending.timeout?.cancel()
        let resolution = ApprovalResolution(
            approvalID: id, decision: decision, scope: decision == .allow ? scope : .once, reason: reason,
            answeredBy: by)
        recentResolutions.append(resolution)
        if recentResolutions.count > 64 { recentResolutions.removeFirst() }
        publish(.approvalResolved(pending.header, resolution), to: pending.stored.session)
        logger.info(
            "approval resolved",
            metadata: [
                "approval": "\(id)", "decision": "\(resolution.auditDecision)", "by": "\(by ?? "-")",
            ])
        if decision == .allow && reason == .answered {
            grant(pending.stored, scope: scope, by: by)
        }
        if let continuation = pending.continuation {
            continuation.resume(returning: .resolved(resolution))
        } else {
            parkedResolutions[pending.stored.request.callID] = resolution
        }
        return resolution
    }

    // MARK: - Grants

    private func grant(_ stored: StoredApproval, scope: ApprovalScope, by: String?) {
        let key = TurnKey(session: stored.session, turn: stored.turn)
        var new: [ApprovalGrant] = []
        let now = Timestamp.rfc3339(Date())
        switch scope {
        case .once:
            if stored.rememberedForSession {
                new = stored.kinds.map {
                    ApprovalGrant(
                        grantID: Self.newID("gr_"), scope: .session, session: stored.session,
                        tool: stored.request.tool, kind: $0, createdAt: now, createdBy: by)
                }
            }
        case .turn:
            turnGrants[key, default: []].formUnion(stored.kinds.map(\.key))
        case .session, .always:
            new = stored.kinds.map {
                ApprovalGrant(
                    grantID: Self.newID("gr_"), scope: scope, session: scope == .session ? stored.session : nil,
                    tool: stored.request.tool, kind: $0, createdAt: now, createdBy: by)
            }
        }
        guard !new.isEmpty else { return }
        grantCache = (grantCache ?? []) + new
        if let approvalStore {
            let logger = self.logger
            Task {
                do {
                    try await approvalStore.addGrants(new)
                } catch {
                    logger.error("cannot store a grant", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    func loadGrants() async {
        guard grantCache == nil else { return }
        guard let approvalStore else {
            grantCache = []
            return
        }
        do {
            let loaded = try await approvalStore.grants()
            if grantCache == nil { grantCache = loaded }
        } catch {
            logger.error("cannot read grants; asking for every call", metadata: ["error": "\(error)"])
            grantCache = []
        }
    }

    /// The scope of the grants that cover every kind, or nil when one is not covered.
    func coveringScope(_ kinds: [ToolRisk.Kind], key: TurnKey) -> ApprovalScope? {
        var widest: ApprovalScope?
        let turn = turnGrants[key] ?? []
        for kind in kinds {
            if turn.contains(kind.key) {
                widest = widest ?? .turn
                continue
            }
            guard
                let grant = grantCache?.first(where: { grant in
                    (grant.scope == .always || grant.session == key.session) && Self.covers(grant.kind.key, kind.key)
                })
            else { return nil }
            widest = grant.scope
        }
        return widest
    }

    /// A grant covers its own kind; a directory grant (`file:/shared/notes`) also covers what is below it.
    nonisolated static func covers(_ granted: String, _ kind: String) -> Bool {
        granted == kind || (granted.hasPrefix("file:") && kind.hasPrefix(granted == "file:/" ? granted : granted + "/"))
    }

    // MARK: - Client requests

    /// `approve`: the first answer wins; a later one gets an error naming the first.
    func answerApproval(
        requestID: String, approvalID: String, decision: ApprovalDecision, scope: ApprovalScope,
        connection: ConnectionID
    ) -> [ServerFrame] {
        let by = connections[connection]?.label
        guard let pending = pendingApprovals[approvalID] else {
            if let earlier = recentResolutions.last(where: { $0.approvalID == approvalID }) {
                let how =
                    earlier.reason == .answered
                    ? "answered (\(earlier.decision.rawValue), \(earlier.scope.rawValue))"
                        + (earlier.answeredBy.map { " by \($0)" } ?? "")
                    : earlier.reason == .timedOut ? "denied: it timed out" : "denied: its turn was cancelled"
                return [error(requestID, .notFound, "approval `\(approvalID)` is no longer pending: it was \(how)")]
            }
            return [error(requestID, .notFound, "no pending approval `\(approvalID)`")]
        }
        let session = pending.stored.session
        guard let resolution = resolve(approvalID, decision: decision, scope: scope, reason: .answered, by: by) else {
            return []
        }
        // A client answering from another session still learns the outcome.
        if currentSession(of: connection) != session {
            return [.approvalResolved(pending.header, resolution)]
        }
        return []
    }

    /// The approval requests waiting in `session`, for a client that joins it.
    func pendingRequests(in session: SessionID) -> [ServerFrame] {
        pendingApprovals.values.filter { $0.stored.session == session }
            .sorted { $0.stored.expiresAt < $1.stored.expiresAt }
            .map { .approvalRequest($0.header, $0.stored.request) }
    }

    func listGrants(requestID: String) async -> ServerFrame {
        grantCache = nil
        await loadGrants()
        return .grantList(requestID: requestID, grants: grantCache ?? [])
    }

    func revokeGrant(requestID: String, grantID: String) async -> ServerFrame {
        guard let approvalStore else { return error(requestID, .notFound, "this guest keeps no grants") }
        do {
            guard try await approvalStore.revokeGrant(grantID) else {
                return error(requestID, .notFound, "no grant `\(grantID)` (`runner approvals list` shows them)")
            }
        } catch {
            return self.error(requestID, .internalError, "cannot revoke the grant: \(error)")
        }
        grantCache?.removeAll { $0.grantID == grantID }
        logger.info("grant revoked", metadata: ["grant": "\(grantID)"])
        return .grantRevoked(requestID: requestID, grantID: grantID)
    }

    // MARK: - Restart

    /// Offers the approvals stored before the guest stopped again and resumes their turns: each
    /// waits for its answer and then continues where it stopped. Requests whose call was answered
    /// meanwhile (or whose session is gone) are dropped. Returns how many turns resumed.
    @discardableResult
    public func resumeSuspendedTurns() async -> Int {
        guard let approvalStore else { return 0 }
        let stored: [StoredApproval]
        do {
            stored = try await approvalStore.pendingApprovals()
        } catch {
            logger.error("cannot read stored approval requests", metadata: ["error": "\(error)"])
            return 0
        }
        var resumed = 0
        for (sessionID, approvals) in Dictionary(grouping: stored, by: \.session) {
            let live: LiveSession
            let history: [Message]
            do {
                live = try await resolve(sessionID.rawValue)
                keptOpen[sessionID] = Set(approvals.map(\.request.callID))
                live.history = nil
                history = try await loadHistory(live)
            } catch {
                logger.warning(
                    "dropping approval requests of a session that cannot be loaded",
                    metadata: ["session": "\(sessionID)", "error": "\(error.message)"])
                for approval in approvals { try? await approvalStore.removePending(approval.request.approvalID) }
                continue
            }
            let open = Set(AgentRuntime.unansweredCalls(history).map(\.id))
            let current = approvals.filter { open.contains($0.request.callID) }
            for stale in approvals where !open.contains(stale.request.callID) {
                try? await approvalStore.removePending(stale.request.approvalID)
            }
            guard let first = current.first, live.activeTurn == nil else {
                keptOpen[sessionID] = nil
                continue
            }
            let key = TurnKey(session: sessionID, turn: first.turn)
            let header = TurnHeader(
                requestID: first.turnRequestID, session: ref(sessionID),
                turn: TurnRef(turnID: first.turn, state: .running))
            for approval in current { register(approval, header: header) }
            live.activeTurn = ActiveTurn(turnID: first.turn, requestID: first.turnRequestID, state: .running)
            live.lastTerminal = nil
            running += 1
            turnTasks[key] = Task {
                await self.execute(key: key, header: header, prompt: nil, attachments: [], queued: false)
            }
            logger.info(
                "resuming a turn that waits for approval",
                metadata: ["session": "\(sessionID)", "turn": "\(first.turn)", "requests": "\(current.count)"])
            resumed += 1
        }
        return resumed
    }

    nonisolated static func newID(_ prefix: String) -> String {
        var generator = SystemRandomNumberGenerator()
        return prefix + String(generator.next() as UInt64, radix: 16)
    }
}
