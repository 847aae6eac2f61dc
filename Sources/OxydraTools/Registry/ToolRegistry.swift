import OxydraCore
import Synchronization

/// Decides whether a privileged call may run (the human-approval hook).
public struct ApprovalPolicy: Sendable {
    public let decide: @Sendable (ToolCall, SafetyTier) async -> Bool

    public init(_ decide: @escaping @Sendable (ToolCall, SafetyTier) async -> Bool) { self.decide = decide }

    /// Privileged calls are refused, everything else runs (the default without a human in the loop).
    public static let denyPrivileged = ApprovalPolicy { _, tier in tier != .privileged }
    public static let allowAll = ApprovalPolicy { _, _ in true }
}

/// The tools an agent may call, and the pipeline every call goes through:
/// unknown name → error; malformed JSON → error; schema violations → error with the schema (so
/// the model can correct itself); approval for privileged tools; the run, bounded by the tool's
/// timeout; output scrubbing; truncation at 16 KiB.
///
/// Problems never throw: they become an error result the model reads. Only cancellation of the
/// turn propagates.
public struct ToolRegistry: ToolExecutor {
    public static let outputLimit = 16 * 1024

    private let tools: [String: any Tool]
    private let allDeclarations: [ToolDeclaration]
    private let bytesByName: [String: Int]
    private let allBytes: Int
    /// Tools taken out after start (a sidecar that never came up), shared by every copy.
    public let withdrawals = ToolWithdrawals()
    public let scrubber: OutputScrubber
    public let approval: ApprovalPolicy

    public init(
        _ tools: [any Tool], scrubber: OutputScrubber = OutputScrubber(workspace: nil),
        approval: ApprovalPolicy = .denyPrivileged
    ) {
        var byName: [String: any Tool] = [:]
        for tool in tools {
            precondition(byName[tool.declaration.name] == nil, "tool `\(tool.declaration.name)` registered twice")
            byName[tool.declaration.name] = tool
        }
        self.tools = byName
        self.allDeclarations = byName.values.map(\.declaration).sorted { $0.name < $1.name }
        self.bytesByName = Dictionary(uniqueKeysWithValues: allDeclarations.map { ($0.name, $0.estimatedBytes) })
        self.allBytes = bytesByName.values.reduce(0, +)
        self.scrubber = scrubber
        self.approval = approval
    }

    /// Declarations sorted by name (stable prompts, stable caching), without withdrawn tools.
    public var declarations: [ToolDeclaration] {
        let withdrawn = withdrawals.names
        return withdrawn.isEmpty ? allDeclarations : allDeclarations.filter { !withdrawn.contains($0.name) }
    }

    public var declarationBytes: Int {
        let withdrawn = withdrawals.names
        return withdrawn.reduce(allBytes) { $0 - (bytesByName[$1] ?? 0) }
    }

    public var names: [String] { declarations.map(\.name) }

    public func tool(named name: String) -> (any Tool)? { tools[name] }

    /// Whether `call` may run concurrently with its read-only neighbours.
    public func isReadOnly(_ call: ToolCall) -> Bool { tools[call.name]?.safety == .readOnly }

    public func risk(of call: ToolCall) -> ToolRisk {
        guard let tool = tools[call.name], case .json(let arguments) = call.arguments, problem(with: call) == nil
        else { return .none }
        return tool.risk(of: arguments)
    }

    public func reviewText(of call: ToolCall) -> String {
        var text = call.arguments.text
        if case .json(let arguments) = call.arguments { text = JSONWriter.text(arguments, sortedKeys: true) }
        if text.utf8.count > 8192 { text = Self.truncated(text, bytes: 8192) + "…" }
        return scrubber.scrub(text)
    }

    /// Validates arguments without running anything; nil when the call may run.
    public func problem(with call: ToolCall) -> String? {
        guard let tool = tools[call.name] else {
            return ToolError.unknownTool(name: call.name, available: names).description
        }
        if let reason = withdrawals.reason(call.name) {
            return ToolError.executionFailed(tool: call.name, message: "not available: \(reason)").description
        }
        switch call.arguments {
        case .malformed(let raw, let error):
            return ToolError.invalidArguments(
                tool: call.name, message: "arguments are \(error); raw arguments: \(raw.prefix(500))"
            ).description + Self.schemaReminder(tool)
        case .json(let arguments):
            let violations = SchemaValidator.violations(of: arguments, against: tool.declaration.parameters)
            guard !violations.isEmpty else { return nil }
            return ToolError.invalidArguments(
                tool: call.name,
                message: "schema validation failed:\n" + violations.map { "- \($0)" }.joined(separator: "\n")
            ).description + Self.schemaReminder(tool)
        }
    }

    static func schemaReminder(_ tool: any Tool) -> String {
        "\nexpected arguments (JSON Schema): \(tool.declaration.parameters.compactText)"
    }

    /// Runs one call through the whole pipeline. `limit` caps the tool's own timeout (the turn's).
    public func run(_ call: ToolCall, context: ToolContext, limit: Duration) async throws(CancellationError)
        -> ToolOutcome
    {
        let clock = ContinuousClock()
        let start = clock.now
        func outcome(_ text: String, isError: Bool) -> ToolOutcome {
            let (shown, original) = Self.truncate(
                scrubber.scrub(Self.prefixWindow(text)), originalBytes: text.utf8.count)
            return ToolOutcome(
                callID: call.id, name: call.name, text: shown, isError: isError, duration: clock.now - start,
                originalBytes: original)
        }
        if let problem = problem(with: call) { return outcome(problem, isError: true) }
        guard let tool = tools[call.name], case .json(let arguments) = call.arguments else {
            return outcome("unreachable", isError: true)
        }
        if tool.safety == .privileged, !(await approval.decide(call, tool.safety)) {
            return outcome(
                ToolError.blocked(
                    tool: call.name, reason: "ApprovalRequired",
                    detail: "\(call.name) is privileged and was not approved (tools.privileged = \"deny\")"
                ).description, isError: true)
        }
        if Task.isCancelled { throw CancellationError() }
        let timeout = min(tool.timeout, limit)
        do {
            let output = try await Self.withTimeout(timeout) { try await tool.run(arguments, context: context) }
            return outcome(output.text, isError: false)
        } catch is CancellationError {
            throw CancellationError()
        } catch let error as TimeoutError {
            _ = error
            return outcome(
                ToolError.timedOut(tool: call.name, seconds: Int(timeout.components.seconds)).description, isError: true
            )
        } catch let error as ToolError {
            return outcome(error.description, isError: true)
        } catch {
            return outcome(ToolError.executionFailed(tool: call.name, message: "\(error)").description, isError: true)
        }
    }

    struct TimeoutError: Error {}

    /// Runs `work`, cancelling it when `timeout` passes first.
    static func withTimeout<T: Sendable>(_ timeout: Duration, _ work: @escaping @Sendable () async throws -> T)
        async throws -> T
    {
        try await withThrowingTaskGroup(of: T.self) { group in
            group.addTask { try await work() }
            group.addTask {
                try await Sleep.for(timeout)
                throw TimeoutError()
            }
            defer { group.cancelAll() }
            guard let first = try await group.next() else { throw CancellationError() }
            return first
        }
    }

    /// At most a little more than the shown limit is scrubbed (secrets cut at the boundary are
    /// still recognised), so huge outputs cost nothing extra.
    static func prefixWindow(_ text: String) -> String {
        text.utf8.count <= outputLimit + 4096 ? text : truncated(text, bytes: outputLimit + 4096)
    }

    /// Output over 16 KiB is cut at a character boundary with a notice giving the original size.
    static func truncate(_ text: String, originalBytes: Int) -> (String, Int?) {
        let size = max(originalBytes, text.utf8.count)
        guard size > outputLimit else { return (text, nil) }
        return (truncated(text, bytes: outputLimit) + "\n...[output truncated: \(size) bytes total]", size)
    }

    /// The longest prefix of `text` that is at most `bytes` UTF-8 bytes and ends on a character.
    static func truncated(_ text: String, bytes: Int) -> String {
        var count = 0
        var end = text.startIndex
        for index in text.indices {
            let next = text.index(after: index)
            let width = text.utf8.distance(from: index, to: next)
            if count + width > bytes { break }
            count += width
            end = next
        }
        return String(text[..<end])
    }
}

/// Tools withdrawn from a registry after it was built, with why: their declarations are no longer
/// offered and a call to one is answered with the reason.
public final class ToolWithdrawals: Sendable {
    private let storage = Mutex<[String: String]>([:])

    public init() {}

    public func withdraw(_ name: String, reason: String) { storage.withLock { $0[name] = reason } }

    public func reason(_ name: String) -> String? { storage.withLock { $0.isEmpty ? nil : $0[name] } }

    var names: Set<String> { storage.withLock { $0.isEmpty ? [] : Set($0.keys) } }
}
