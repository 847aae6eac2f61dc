import OxydraCore
import Synchronization

/// The agent turn loop: send the context, stream the answer, run the tools it asks for, append
/// their results, repeat until the model answers without tools — within the configured limits.
///
/// - Consecutive read-only tool calls run concurrently (results stay in call order); every other
///   call runs alone, in order.
/// - Invalid arguments are never executed: the model gets the validator's error and the schema.
/// - The same call (name and arguments) `loopGuardRepeats` times in a row stops the turn.
/// - `maxTurns` bounds provider calls, `maxCost` the money spent (catalog prices); every provider
///   wait and tool run is bounded by `turnTimeout`.
/// - Cancelling the calling task stops the stream and the running tools; the history stays
///   consistent (every tool call gets a result, partial text is kept).
/// - With a store, every message is committed before the loop moves on.
public struct AgentRuntime: Sendable {
    public let provider: any ModelProvider
    public let tools: any ToolExecutor
    public let model: ModelDescriptor
    public let settings: RuntimeSettings
    public let systemPrompt: String
    public let store: (any MemoryStore)?
    /// Snippets recalled from memory before each provider call (`memory.retrieval.top_k`); nil
    /// when memory retrieval is off.
    public let recallLimit: Int?
    /// Tried in order when the provider fails before any output (`selection.fallbacks`).
    public let fallbacks: [FallbackModel]
    /// Which providers failed recently, shared by the runtimes of a guest.
    public let failover: FailoverState
    /// Spending limits and the usage ledger (nil: nothing recorded, no limits).
    public let budget: Budget?
    private let calibrations = CalibrationTable()

    public init(
        provider: any ModelProvider, tools: any ToolExecutor, model: ModelDescriptor, settings: RuntimeSettings,
        systemPrompt: String, store: (any MemoryStore)? = nil, recallLimit: Int? = nil,
        fallbacks: [FallbackModel] = [], failover: FailoverState = FailoverState(cooldown: .seconds(60)),
        budget: Budget? = nil
    ) {
        self.budget = budget
        self.fallbacks = fallbacks
        self.failover = failover
        self.recallLimit = recallLimit
        self.provider = provider
        self.tools = tools
        self.model = model
        self.settings = settings
        self.systemPrompt = systemPrompt
        self.store = store
    }

    /// The same runtime (tools, prompt, store, settings) on another provider and model: a session
    /// switched with `set_model`.
    public func switched(to provider: any ModelProvider, model: ModelDescriptor) -> AgentRuntime {
        AgentRuntime(
            provider: provider, tools: tools, model: model, settings: settings, systemPrompt: systemPrompt,
            store: store, recallLimit: recallLimit, fallbacks: fallbacks, failover: failover, budget: budget)
    }

    /// The context window used for budgeting.
    var contextTokens: Int { window(of: model) }

    /// A model's context window as budgeted: an unlisted (synthetic) one at most the fallback.
    func window(of model: ModelDescriptor) -> Int {
        model.isSynthetic
            ? min(model.capabilities.contextTokens, settings.fallbackMaxContextTokens)
            : model.capabilities.contextTokens
    }

    /// Runs one turn. `history` is the session so far (without the system prompt; message *i* has
    /// sequence *i* + 1 in the store), `input` the new user message. `events` receives progress for UIs.
    /// With an `approver`, every tool call is reviewed before it runs (`[tools.approval]`).
    public func run(
        session: SessionID, user: UserID? = nil, history: [Message], input: Message,
        approver: (any ToolApprover)? = nil, events: @escaping @Sendable (RuntimeEvent) async -> Void = { _ in }
    ) async throws -> TurnResult {
        try await turn(session: session, user: user, history: history, input: input, approver: approver, events: events)
    }

    /// Continues a turn that stopped while its tool calls waited (for an approval, across a guest
    /// restart): runs the calls of the last assistant message that have no result yet, then goes
    /// on as ``run(session:user:history:input:approver:events:)`` would. A history that ends with
    /// the user's message or tool results (the guest stopped before the model answered) goes
    /// straight to the model. The result's messages are everything added after `history`.
    public func resume(
        session: SessionID, user: UserID? = nil, history: [Message], approver: (any ToolApprover)? = nil,
        events: @escaping @Sendable (RuntimeEvent) async -> Void = { _ in }
    ) async throws -> TurnResult {
        try await turn(session: session, user: user, history: history, input: nil, approver: approver, events: events)
    }

    /// The calls of the history's last assistant message that have no result after it.
    public static func unansweredCalls(_ history: [Message]) -> [ToolCall] {
        guard let index = history.lastIndex(where: { $0.role == .assistant }) else { return [] }
        let answered = Set(history[(index + 1)...].compactMap(\.toolCallID))
        return history[index].toolCalls.filter { !answered.contains($0.id) }
    }

    private func turn(
        session: SessionID, user: UserID?, history: [Message], input: Message?, approver: (any ToolApprover)?,
        events: @escaping @Sendable (RuntimeEvent) async -> Void
    ) async throws -> TurnResult {
        var state = TurnState(history: history, resuming: input == nil)
        do {
            return try await turn(
                state: &state, session: session, user: user, input: input, approver: approver, events: events)
        } catch {
            // A turn that stops before its next synced write still leaves its messages on disk.
            await state.syncIfNeeded(session: session, store: store)
            throw error
        }
    }

    private func turn(
        state: inout TurnState, session: SessionID, user: UserID?, input: Message?, approver: (any ToolApprover)?,
        events: @escaping @Sendable (RuntimeEvent) async -> Void
    ) async throws -> TurnResult {
        let history = state.messages
        let context = ToolContext(user: user, session: session)
        if let input {
            try await state.appendInput(input, to: session, store: store)
        } else {
            let waiting = Self.unansweredCalls(history)
            if waiting.isEmpty {
                // A turn the guest stopped before the model answered: the history ends with the
                // user's message or tool results, and the model is simply asked again.
                guard let last = history.last, last.role == .user || last.role == .tool else {
                    throw RuntimeError.nothingToResume
                }
            } else {
                try await runTools(
                    waiting, context: context, state: &state, session: session, turn: 0, approver: approver,
                    events: events)
            }
        }
        var usage = Usage()
        var cost: Double? = model.pricing == nil ? nil : 0
        var providerCalls = 0
        var recentCalls: [String] = []
        var contextUsed: Int?
        var answeredBy = (provider: provider.id.rawValue, model: model)

        while true {
            if Task.isCancelled { throw RuntimeError.cancelled }
            if providerCalls >= settings.maxTurns {
                throw RuntimeError.budgetExceeded(
                    detail: "runtime.max_turns (\(settings.maxTurns)) provider calls reached")
            }
            providerCalls += 1
            await events(
                .progress(
                    TurnProgress(
                        kind: .providerCall, message: "[\(providerCalls)/\(settings.maxTurns)] Calling provider",
                        turn: providerCalls, maxTurns: settings.maxTurns)))

            let (request, estimated) = try await prepareRequest(
                state.messages, session: session, turn: providerCalls, events: events)
            let response: ModelResponse
            var reservation: Budget.Reservation?
            do {
                (response, answeredBy, reservation) = try await budgetedStream(
                    request, estimatedPrompt: estimated, call: providerCalls, events: events)
            } catch let error as StreamCancelled {
                if !error.partialText.isEmpty {
                    try await state.appendAfterCancellation(.assistant(error.partialText), to: session, store: store)
                }
                throw RuntimeError.cancelled
            } catch let error as ProviderError {
                throw Self.explained(
                    error, promptTokens: estimated, window: contextTokens, provider: provider.id,
                    unlisted: model.isSynthetic)
            }
            if let reported = response.usage?.promptTokens { learn(session, estimated: estimated, reported: reported) }
            // The call's usage, as reported (estimated only when the provider reported nothing).
            var usageRecord: UsageRecord?
            if let budget, reservation != nil {
                let spent =
                    response.usage
                    ?? Usage(
                        promptTokens: estimated, completionTokens: (response.message.content?.utf8.count ?? 0) / 4)
                usageRecord = UsageRecord(
                    session: session, at: budget.now(), provider: answeredBy.provider,
                    model: answeredBy.model.id.rawValue, usage: spent,
                    costUSD: answeredBy.model.pricing?.cost(of: spent))
            }
            contextUsed =
                (response.usage?.promptTokens ?? estimated)
                + (response.usage?.completionTokens ?? (response.message.content?.utf8.count ?? 0) / 4)
            if let update = response.usage {
                usage = Usage(
                    promptTokens: (usage.promptTokens ?? 0) + (update.promptTokens ?? 0),
                    completionTokens: (usage.completionTokens ?? 0) + (update.completionTokens ?? 0),
                    totalTokens: (usage.totalTokens ?? 0) + (update.effectiveTotal ?? 0))
                if let pricing = answeredBy.model.pricing { cost = (cost ?? 0) + pricing.cost(of: update) }
            }
            await events(.usage(usage, cost: cost))

            let answer = response.message
            // The answer and its usage record are committed together (one write). An answer whose
            // tool calls all only read is not synced on its own: they act on nothing, and the next
            // answer's sync takes it to the disk (a power cut before then loses the unfinished turn,
            // as it would lose its prompt).
            let ledger = store as? any UsageLedger
            let readsOnly = !answer.toolCalls.isEmpty && answer.toolCalls.allSatisfy { tools.isReadOnly($0) }
            do {
                try await state.append(
                    answer, to: session, store: store, usage: ledger == nil ? nil : usageRecord, sync: !readsOnly)
            } catch {
                if let budget, let reservation { await budget.release(reservation) }
                throw error
            }
            if let budget, let reservation, let usageRecord,
                let warning = await budget.settle(reservation, record: usageRecord, recorded: ledger != nil)
            {
                await events(
                    .progress(
                        TurnProgress(
                            kind: .budgetWarning, message: "[\(providerCalls)/\(settings.maxTurns)] \(warning)",
                            turn: providerCalls, maxTurns: settings.maxTurns)))
            }
            if answer.toolCalls.isEmpty {
                return TurnResult(
                    messages: state.added, answer: answer, usage: usage, cost: cost, providerCalls: providerCalls,
                    finishReason: response.finishReason, contextTokens: contextUsed,
                    contextWindow: window(of: answeredBy.model), provider: answeredBy.provider,
                    model: answeredBy.model.id.rawValue)
            }

            // Limits that stop before tools run still leave a result for every call.
            if let maxCost = settings.maxCost, let spent = cost, spent > maxCost {
                try await state.skip(
                    answer.toolCalls, reason: "not run: the turn's cost limit was reached", session: session,
                    store: store)
                throw RuntimeError.budgetExceeded(
                    detail: "runtime.max_cost ($\(Money.format(maxCost))) reached: $\(Money.format(spent)) spent")
            }
            for call in answer.toolCalls {
                let signature = call.name + "\u{0}" + call.arguments.text
                recentCalls = recentCalls.last == signature ? recentCalls + [signature] : [signature]
            }
            if recentCalls.count >= settings.loopGuardRepeats {
                try await state.skip(
                    answer.toolCalls, reason: "not run: the same call was repeated \(recentCalls.count) times",
                    session: session, store: store)
                let name = answer.toolCalls.last!.name
                throw RuntimeError.loopDetected(
                    detail:
                        "\(name) was called \(recentCalls.count) times in a row with the same arguments (runtime.loop_guard_repeats = \(settings.loopGuardRepeats))"
                )
            }

            try await runTools(
                answer.toolCalls, context: context, state: &state, session: session, turn: providerCalls,
                approver: approver, events: events)
        }
    }

    // MARK: Provider

    struct StreamCancelled: Error {
        var partialText: String
    }

    /// A provider error, with the likely cause when it is a prompt too long for the model: an error
    /// that says so, or a stream that ended with nothing after a prompt of over half the window
    /// (llama.cpp closes the stream when its context overflows).
    /// Only for a model no catalog lists (a local one) is an empty ending read as an overflow.
    public static func explained(
        _ error: ProviderError, promptTokens: Int, window: Int, provider: ProviderID, unlisted: Bool
    ) -> RuntimeError {
        var endedEmpty = false
        if case .transport(_, let message) = error, message.contains("ended") { endedEmpty = true }
        let long = promptTokens * 2 > window || promptTokens > 2048
        if error.mentionsContextLimit || (endedEmpty && unlisted && long) {
            return .contextOverflow(error, promptTokens: promptTokens, window: window, provider: provider.rawValue)
        }
        return .provider(error)
    }

    /// Streams one response, forwarding text and reasoning as they arrive. Text deltas that
    /// arrived together (in one network read) are forwarded as one; none waits for the network.
    /// A provider call with its worst case reserved in the budget first (the reservation is
    /// released when the call fails, settled by the caller otherwise).
    private func budgetedStream(
        _ request: ModelRequest, estimatedPrompt: Int, call: Int, events: @Sendable (RuntimeEvent) async -> Void
    ) async throws -> (ModelResponse, (provider: String, model: ModelDescriptor), Budget.Reservation?) {
        guard let budget else {
            let (response, answeredBy) = try await stream(request, call: call, events: events)
            return (response, answeredBy, nil)
        }
        let worst =
            model.pricing?.cost(
                of: Usage(
                    promptTokens: estimatedPrompt,
                    completionTokens: request.maxOutputTokens ?? model.capabilities.outputTokens)) ?? 0
        let reservation = try await budget.reserve(worst)
        do {
            let (response, answeredBy) = try await stream(request, call: call, events: events)
            return (response, answeredBy, reservation)
        } catch {
            await budget.release(reservation)
            throw error
        }
    }

    /// One provider call: on the provider, or — when it fails before any output with an error a
    /// retry could not fix — on the fallbacks in order. A provider that failed is skipped for the
    /// cool-down while another is available. Returns who answered.
    private func stream(_ request: ModelRequest, call: Int, events: @Sendable (RuntimeEvent) async -> Void)
        async throws -> (ModelResponse, (provider: String, model: ModelDescriptor))
    {
        let candidates = [FallbackModel(provider: provider, model: model)] + fallbacks
        guard candidates.count > 1 else {
            var emitted = false
            return (
                try await attempt(request, on: candidates[0], call: call, events: events, emitted: &emitted),
                (provider.id.rawValue, model)
            )
        }
        var index = 0
        let ordered = failover.order(candidates)
        while true {
            let candidate = ordered[index]
            var request = request
            request.model = candidate.model.id
            var emitted = false
            do {
                let response = try await attempt(request, on: candidate, call: call, events: events, emitted: &emitted)
                return (response, (candidate.provider.id.rawValue, candidate.model))
            } catch let error as ProviderError where !emitted && error.failsOver {
                failover.failed(candidate)
                index += 1
                guard index < ordered.count else { throw error }
                await events(
                    .progress(
                        TurnProgress(
                            kind: .providerFailover(from: candidate.name, to: ordered[index].name),
                            message: "[\(call)/\(settings.maxTurns)] \(candidate.name) failed (\(error.shortReason)); "
                                + "continuing on \(ordered[index].name)", turn: call, maxTurns: settings.maxTurns)))
            }
        }
    }

    private func attempt(
        _ request: ModelRequest, on candidate: FallbackModel, call: Int,
        events: @Sendable (RuntimeEvent) async -> Void, emitted: inout Bool
    ) async throws -> ModelResponse {
        let provider = candidate.provider
        guard candidate.model.capabilities.streaming else { return try await provider.complete(request) }
        var builder = ModelResponseBuilder()
        var held = ""
        do {
            var iterator = provider.stream(request).makeAsyncIterator()
            // Events that already arrived (most of a read's worth of deltas) are taken without an
            // `await`; the loop suspends only for the network.
            while true {
                let event: ModelEvent
                if let buffered = try iterator.nextBuffered() {
                    event = buffered
                } else if let next = try await iterator.next() {
                    event = next
                } else {
                    break
                }
                try builder.add(event, provider: provider.id)
                switch event {
                case .textDelta, .reasoningDelta, .toolCallDelta: emitted = true
                default: break
                }
                if case .textDelta(let text) = event {
                    held += text
                    if iterator.hasBufferedEvent { continue }
                }
                if !held.isEmpty {
                    await events(.textDelta(held))
                    held = ""
                }
                if case .reasoningDelta(let text) = event { await events(.reasoningDelta(text)) }
                if case .retrying(let attempt, let maxAttempts, let wait, let reason) = event {
                    let after =
                        wait < 1000
                        ? "\(wait) ms" : wait % 1000 == 0 ? "\(wait / 1000) s" : "\(Double(wait / 100) / 10) s"
                    await events(
                        .progress(
                            TurnProgress(
                                kind: .providerRetry(
                                    attempt: attempt, maxAttempts: maxAttempts, waitMilliseconds: wait),
                                message: "[\(call)/\(settings.maxTurns)] \(reason); retrying in \(after) "
                                    + "(attempt \(attempt)/\(maxAttempts))", turn: call, maxTurns: settings.maxTurns)))
                }
            }
        } catch {
            if !held.isEmpty { await events(.textDelta(held)) }
            if Task.isCancelled || error is CancellationError { throw StreamCancelled(partialText: builder.text) }
            throw error
        }
        if Task.isCancelled { throw StreamCancelled(partialText: builder.text) }
        return try builder.build(provider: provider.id)
    }

    // MARK: Context

    private func estimator(for session: SessionID) -> TokenEstimator {
        calibrations.table.withLock { $0[session] ?? TokenEstimator() }
    }

    private func learn(_ session: SessionID, estimated: Int, reported: Int) {
        calibrations.table.withLock { table in
            var estimator = table[session] ?? TokenEstimator()
            estimator.learn(estimated: estimated, reported: reported)
            table[session] = estimator
        }
    }

    /// The request for the next provider call: system prompt, rolling summary and the newest
    /// history that fits `context − safety buffer − tools`, never splitting a tool call from its
    /// results and always keeping the latest user message.
    func prepareRequest(
        _ history: [Message], session: SessionID, turn: Int, events: @Sendable (RuntimeEvent) async -> Void
    )
        async throws -> (ModelRequest, Int)
    {
        let estimator = estimator(for: session)
        let window = contextTokens
        let system = Message.system(systemPrompt)
        let systemTokens = estimator.tokens(system)
        let toolTokens = estimator.tokens(toolBytes: tools.declarationBytes)
        let fixed = systemTokens + toolTokens + settings.safetyBufferTokens
        guard fixed < window else {
            throw RuntimeError.budgetExceeded(
                detail: "the system prompt and tools (\(fixed) tokens) do not fit the \(window)-token context window")
        }
        var summary = try await storedSummary(session)
        var visible = Array(history.dropFirst(summary?.upperSequence ?? 0))
        var summaryMessage = summary.map { Message.system("Rolling session summary:\n\($0.text)") }

        // Roll older messages into the summary when the visible history crosses the trigger.
        // (Estimates add up message by message: each list is counted once and the sums reused.)
        var visibleTokens = estimator.tokens(visible)
        let used = fixed + visibleTokens + (summaryMessage.map(estimator.tokens) ?? 0)
        if store != nil, Double(used) > Double(window) * settings.triggerRatio,
            visible.count >= settings.summaryMinTurns
        {
            await events(
                .progress(
                    TurnProgress(
                        kind: .summarizing, message: "[\(turn)/\(settings.maxTurns)] Summarizing older messages",
                        turn: turn, maxTurns: settings.maxTurns)))
            if let rolled = try await roll(
                history, summary: summary, estimator: estimator, fixed: fixed, window: window, session: session)
            {
                summary = rolled
                visible = Array(history.dropFirst(rolled.upperSequence))
                visibleTokens = estimator.tokens(visible)
                summaryMessage = .system("Rolling session summary:\n\(rolled.text)")
            }
        }

        let summaryTokens = summaryMessage.map(estimator.tokens) ?? 0
        let budget = window - fixed - summaryTokens
        guard
            let (selected, selectedTokens) = ContextBudget.select(
                visible, tokens: visibleTokens, budget: budget, estimator: estimator)
        else {
            throw RuntimeError.budgetExceeded(
                detail: "the latest message does not fit the \(window)-token context window")
        }
        let recall = try await recallMessage(
            history: history, firstSentSequence: history.count - selected.count + 1, session: session,
            room: budget - selectedTokens, estimator: estimator)
        var messages = [system] + (summaryMessage.map { [$0] } ?? []) + (recall.map { [$0] } ?? []) + selected
        // Attachment bytes are not stored: after a restart an earlier image is only its note in the text.
        for index in messages.indices where messages[index].attachments.contains(where: \.data.isEmpty) {
            messages[index].attachments.removeAll { $0.data.isEmpty }
        }
        let request = ModelRequest(
            model: model.id, messages: messages, tools: model.capabilities.tools ? tools.declarations : [],
            maxOutputTokens: nil, session: session)
        // Attachments without bytes, dropped above, counted nothing.
        let recallTokens = recall.map(estimator.tokens) ?? 0
        return (request, systemTokens + summaryTokens + recallTokens + selectedTokens + toolTokens)
    }

    /// `Retrieved memory snippets:` for the latest user message — notes and older messages that
    /// are no longer in the context — as many as fit in `room` tokens.
    private func recallMessage(
        history: [Message], firstSentSequence: Int, session: SessionID, room: Int, estimator: TokenEstimator
    )
        async throws -> Message?
    {
        guard let limit = recallLimit, let store, room > 0,
            let query = history.last(where: { $0.role == .user })?.content?.trimmed, !query.isEmpty
        else { return nil }
        let hits: [MemoryHit]
        do {
            hits = try await store.search(query, in: session, limit: limit)
        } catch {
            throw RuntimeError.memory(error)
        }
        var lines: [String] = []
        for hit in hits where hit.sequence.map({ $0 < firstSentSequence }) ?? true {
            let text = hit.text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            let score = Double(Int((hit.score * 1000).rounded())) / 1000
            lines.append(
                "- [\(hit.chunkID) score=\(score)] \(text.count > 240 ? String(text.prefix(240)) + "..." : text)")
        }
        while !lines.isEmpty {
            let message = Message.system("Retrieved memory snippets:\n" + lines.joined(separator: "\n"))
            if estimator.tokens(message) <= room { return message }
            lines.removeLast()
        }
        return nil
    }

    private func storedSummary(_ session: SessionID) async throws -> SessionSummary? {
        guard let store else { return nil }
        do {
            return try await store.summary(of: session)
        } catch {
            throw RuntimeError.memory(error)
        }
    }

    /// Condenses the oldest whole groups until the rest fits `target_ratio` of the window, keeping
    /// at least the last two groups; written with an epoch compare-and-swap. Nil when nothing changed
    /// or another writer got there first.
    private func roll(
        _ history: [Message], summary: SessionSummary?, estimator: TokenEstimator, fixed: Int, window: Int,
        session: SessionID
    )
        async throws -> SessionSummary?
    {
        guard let store else { return nil }
        let start = summary?.upperSequence ?? 0
        let visible = Array(history.dropFirst(start))
        let groups = ContextBudget.groups(visible)
        guard groups.count > 2 else { return nil }
        let target = Int(Double(window) * settings.summaryTargetRatio)
        var remaining = fixed + estimator.tokens(visible)
        var cut = 0
        for group in groups.dropLast(2) {
            if remaining <= target { break }
            remaining -= estimator.tokens(visible[group])
            cut = group.upperBound
        }
        guard cut > 0 else { return nil }
        let text = RollingSummary.text(previous: summary?.text, messages: visible[..<cut], firstSequence: start + 1)
        let expected = summary?.epoch ?? 0
        let next = SessionSummary(epoch: expected + 1, upperSequence: start + cut, text: text)
        do {
            return try await store.replaceSummary(of: session, expectedEpoch: expected, with: next) ? next : nil
        } catch {
            throw RuntimeError.memory(error)
        }
    }

    // MARK: Tools

    /// Runs the calls: consecutive read-only calls together, the rest one by one, results in call order.
    private func runTools(
        _ calls: [ToolCall], context: ToolContext, state: inout TurnState, session: SessionID, turn: Int,
        approver: (any ToolApprover)?, events: @escaping @Sendable (RuntimeEvent) async -> Void
    ) async throws {
        var batches: [[ToolCall]] = []
        for call in calls {
            if tools.isReadOnly(call), let last = batches.last, let first = last.first, tools.isReadOnly(first) {
                batches[batches.count - 1].append(call)
            } else {
                batches.append([call])
            }
        }
        let names = calls.map(\.name)
        await events(
            .progress(
                TurnProgress(
                    kind: .toolExecution(names: names),
                    message: "[\(turn)/\(settings.maxTurns)] Executing tools: \(names.joined(separator: ", "))",
                    turn: turn, maxTurns: settings.maxTurns)))
        for (index, batch) in batches.enumerated() {
            var outcomes: [ToolOutcome]
            do {
                // Each call is reviewed before the batch runs; refused calls get their refusal as the result.
                var verdicts: [String: ApprovalVerdict] = [:]
                var refused: [String: ToolOutcome] = [:]
                if let approver {
                    for call in batch {
                        let verdict = try await approver.review(
                            call, risk: tools.risk(of: call), summary: Self.summary(of: call),
                            details: tools.reviewText(of: call))
                        verdicts[call.id] = verdict
                        if !verdict.allowed { refused[call.id] = await refusal(call, verdict: verdict, events: events) }
                    }
                }
                let allowed = batch.filter { refused[$0.id] == nil }
                let decided = verdicts
                let ran =
                    allowed.isEmpty
                    ? []
                    : try await withHeartbeat(names: allowed.map(\.name), turn: turn, events: events) {
                        try await self.run(allowed, verdicts: decided, context: context, events: events)
                    }
                var byID = refused
                for outcome in ran { byID[outcome.callID] = outcome }
                outcomes = batch.compactMap { byID[$0.id] }
            } catch is ApprovalSuspended {
                // The guest is stopping: the calls stay unanswered and the request stored, to resume.
                throw RuntimeError.suspended
            } catch {
                // Cancelled: every call of this and later batches gets a result, then the turn ends.
                let pending = batches[index...].flatMap { $0 }
                try await state.skip(
                    pending, reason: "cancelled before it finished", session: session, store: store,
                    afterCancellation: true)
                throw RuntimeError.cancelled
            }
            // One transaction for the batch's results, reaching the disk with the next synced
            // commit (normally the model's next message); a result lost to a power cut before
            // that is repaired like any unanswered call at the session's next turn.
            try await state.appendResults(
                outcomes.map { .toolResult(callID: $0.callID, content: $0.text) }, to: session, store: store)
        }
    }

    /// A call that may not run: reported as started and failed, with the refusal as its result.
    private func refusal(
        _ call: ToolCall, verdict: ApprovalVerdict, events: @Sendable (RuntimeEvent) async -> Void
    ) async -> ToolOutcome {
        let text = verdict.message ?? "tool \(call.name) was not run: it was not approved (\(verdict.decision))"
        await events(
            .toolStarted(
                callID: call.id, name: call.name, summary: Self.summary(of: call),
                arguments: Self.cut(call.arguments.text, to: ToolCallInfo.argumentsLimit), approval: verdict.decision,
                approvedBy: verdict.answeredBy))
        await events(
            .toolFinished(
                callID: call.id, name: call.name, duration: .zero, isError: true, summary: Self.preview(text),
                output: text))
        return ToolOutcome(callID: call.id, name: call.name, text: text, isError: true, duration: .zero)
    }

    private func run(
        _ batch: [ToolCall], verdicts: [String: ApprovalVerdict], context: ToolContext,
        events: @escaping @Sendable (RuntimeEvent) async -> Void
    ) async throws -> [ToolOutcome] {
        let tools = self.tools
        let limit = settings.turnTimeout
        @Sendable func execute(_ call: ToolCall) async throws -> ToolOutcome {
            let verdict = verdicts[call.id] ?? .notAsked
            await events(
                .toolStarted(
                    callID: call.id, name: call.name, summary: Self.summary(of: call),
                    arguments: Self.cut(call.arguments.text, to: ToolCallInfo.argumentsLimit),
                    approval: verdict.decision, approvedBy: verdict.answeredBy))
            let outcome = try await tools.run(call, context: context, limit: limit)
            await events(
                .toolFinished(
                    callID: call.id, name: call.name, duration: outcome.duration, isError: outcome.isError,
                    summary: Self.preview(outcome.text), output: outcome.text))
            return outcome
        }
        if batch.count == 1 { return [try await execute(batch[0])] }
        return try await withThrowingTaskGroup(of: (Int, ToolOutcome).self) { group in
            for (index, call) in batch.enumerated() { group.addTask { (index, try await execute(call)) } }
            var results = [ToolOutcome?](repeating: nil, count: batch.count)
            for try await (index, outcome) in group { results[index] = outcome }
            return results.compactMap { $0 }
        }
    }

    /// Reports `Still executing` every heartbeat interval while `work` runs.
    private func withHeartbeat<T: Sendable>(
        names: [String], turn: Int, events: @escaping @Sendable (RuntimeEvent) async -> Void,
        _ work: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let interval = settings.heartbeatInterval
        let maxTurns = settings.maxTurns
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await work() }
            group.addTask {
                var elapsed = Duration.zero
                while true {
                    try await Sleep.for(interval)
                    elapsed += interval
                    let seconds = Int(elapsed.components.seconds)
                    await events(
                        .progress(
                            TurnProgress(
                                kind: .toolHeartbeat(names: names, elapsedSeconds: seconds),
                                message:
                                    "[\(turn)/\(maxTurns)] Still executing: \(names.joined(separator: ", ")) (\(seconds)s)",
                                turn: turn, maxTurns: maxTurns)))
                }
            }
            defer { group.cancelAll() }
            while let value = try await group.next() {
                if let value { return value }
            }
            throw CancellationError()
        }
    }

    /// `file_read(path=/shared/a.txt)`, at most 100 characters.
    static func summary(of call: ToolCall) -> String {
        var arguments = call.arguments.text
        if case .json(.object(let object)) = call.arguments {
            arguments = object.keys.sorted().map { key in
                let value = object[key]!
                return "\(key)=\(value.stringValue ?? value.compactText)"
            }.joined(separator: ", ")
        }
        let text = "\(call.name)(\(arguments))"
        return text.count > 100 ? String(text.prefix(99)) + "…" : text
    }

    /// `text` cut to at most `limit` UTF-8 bytes on a character boundary, saying so when cut.
    static func cut(_ text: String, to limit: Int) -> String {
        guard text.utf8.count > limit else { return text }
        var end = text.startIndex
        var bytes = 0
        for character in text {
            bytes += character.utf8.count
            if bytes > limit - 32 { break }
            end = text.index(after: end)
        }
        return text[..<end] + "… (\(text.utf8.count) bytes)"
    }

    static func preview(_ text: String) -> String {
        let line = text.split(separator: "\n", maxSplits: 1).first.map(String.init) ?? ""
        return line.count > 100 ? String(line.prefix(99)) + "…" : line
    }
}

extension Array {
    /// The trailing elements that satisfy `predicate`.
    func suffix(while predicate: (Element) -> Bool) -> ArraySlice<Element> {
        var start = endIndex
        while start > startIndex && predicate(self[start - 1]) { start -= 1 }
        return self[start...]
    }
}

/// Per-session token calibration, shared by the turns of a runtime.
final class CalibrationTable: Sendable {
    let table = Mutex<[SessionID: TokenEstimator]>([:])
}

/// Messages of the turn so far, committed to the store as they are added.
///
/// Three kinds of write are committed without a sync of their own: the user's message, a tool
/// batch's results, and an answer whose tool calls all only read (they act on nothing). Each is
/// followed by a synced write — the model's answer, committed before any of its tool calls that
/// may act runs — and the write-ahead log reaches the disk as a whole, so a turn pays one
/// `fdatasync` per answer that ends it or asks for an action. A turn that ends before such an
/// answer (a failed provider call, a cancellation) syncs on its way out
/// (``syncIfNeeded(session:store:)``).
struct TurnState {
    var messages: [Message]
    var added: [Message] = []
    private let baseCount: Int
    /// A write of the turn was committed without a sync and no synced write followed it yet.
    private(set) var unsynced = false

    /// `resuming`: no input message comes first, so everything appended counts as added.
    init(history: [Message], resuming: Bool = false) {
        messages = history
        baseCount = resuming ? history.count - 1 : history.count
    }

    /// `sync: false`: committed without a sync of its own, like the user's message (an answer
    /// whose tool calls only read; see the type's notes).
    mutating func append(
        _ message: Message, to session: SessionID, store: (any MemoryStore)?, usage: UsageRecord? = nil,
        sync: Bool = true
    ) async throws {
        if let store {
            do {
                switch (usage, store as? any UsageLedger, sync) {
                case (let usage?, let ledger?, true): _ = try await ledger.append([message], to: session, usage: usage)
                case (let usage?, let ledger?, false):
                    _ = try await ledger.appendWithoutSync([message], to: session, usage: usage)
                case (_, _, true): _ = try await store.append([message], to: session)
                case (_, _, false): _ = try await store.appendWithoutSync([message], to: session)
                }
            } catch {
                throw RuntimeError.memory(error)
            }
            unsynced = !sync
        }
        remember(message)
    }

    /// The user's message, committed without a sync of its own (see the type's notes).
    mutating func appendInput(_ message: Message, to session: SessionID, store: (any MemoryStore)?) async throws {
        if let store {
            do {
                _ = try await store.appendWithoutSync([message], to: session)
            } catch {
                throw RuntimeError.memory(error)
            }
            unsynced = true
        }
        remember(message)
    }

    /// Syncs what the turn committed without a sync, after it stopped short of its next synced
    /// write; in a task of its own so that the turn's cancellation does not stop it. A failure
    /// here leaves the writes where `kill -9` would (committed, not yet synced).
    func syncIfNeeded(session: SessionID, store: (any MemoryStore)?) async {
        guard unsynced, let store else { return }
        let write = Task { try await store.sync(session) }
        _ = try? await write.value
    }

    /// A message now in the history: everything after the input counts as added by the turn.
    private mutating func remember(_ message: Message) {
        messages.append(message)
        if messages.count > baseCount + 1 { added.append(message) }
    }

    /// A tool batch's results in one write without a sync of its own (``MemoryStore/appendWithoutSync(_:to:)``).
    mutating func appendResults(_ results: [Message], to session: SessionID, store: (any MemoryStore)?) async throws {
        guard !results.isEmpty else { return }
        if let store {
            do {
                _ = try await store.appendWithoutSync(results, to: session)
            } catch {
                throw RuntimeError.memory(error)
            }
            unsynced = true
        }
        for result in results { remember(result) }
    }

    /// Appends after the turn's task was cancelled: the write runs in its own task so the
    /// cancellation does not stop it.
    mutating func appendAfterCancellation(_ message: Message, to session: SessionID, store: (any MemoryStore)?)
        async throws
    {
        if let store {
            let write = Task { try await store.append([message], to: session) }
            if (try? await write.value) != nil { unsynced = false }
        }
        messages.append(message)
        added.append(message)
    }

    /// Gives every call a result saying why it did not run.
    mutating func skip(
        _ calls: [ToolCall], reason: String, session: SessionID, store: (any MemoryStore)?,
        afterCancellation: Bool = false
    ) async throws {
        let answered = Set(messages.suffix(while: { $0.role == .tool }).compactMap(\.toolCallID))
        for call in calls where !answered.contains(call.id) {
            let result = Message.toolResult(callID: call.id, content: "tool \(call.name) was \(reason)")
            if afterCancellation {
                try await appendAfterCancellation(result, to: session, store: store)
            } else {
                try await append(result, to: session, store: store)
            }
        }
    }
}
