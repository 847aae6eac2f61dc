import OxydraCore
import OxydraTesting
import OxydraTools

/// The approval check every tool call pays before it runs when `tools.approval.mode = "risky"`
/// (the call's risk from its arguments, then the mode/require/skip rules — what the runtime and
/// the gateway's approver do before a call that needs no approval runs), for a read-only shell
/// line and a `file_read`. The floor, measured the same way in the same run: the shell policy
/// check every `shell_exec` call already pays (the same parser over the same line).
func benchmarkApproval() throws {
    let directory = try TemporaryDirectory(prefix: "oxydra-bench-approval")
    defer { directory.remove() }
    let root = try directory.createDirectory("ws")
    for name in ["shared", "tmp", "vault"] { _ = try directory.createDirectory("ws/" + name) }
    let config = AgentConfig()
    let shell = ShellExecTool(config: config.tools.shell, sessions: ShellSessions(socketPath: root + "/none.sock"))
    let registry = BuiltInTools.registry(
        workspace: Workspace(root: root), config: config, environment: [:], extra: [shell])
    let line = "ls -la /shared && git status --short | head -20 && grep -rn TODO src 2>/dev/null"
    let shellCall = ToolCall(id: "c1", name: "shell_exec", arguments: .json(["command": .string(line)]))
    let readCall = ToolCall(id: "c2", name: "file_read", arguments: .json(["path": "/shared/notes.txt"]))
    let rules = config.tools.approval
    let policy = ShellPolicy(config.tools.shell)
    precondition(!rules.asks(tool: "shell_exec", risk: registry.risk(of: shellCall).level))
    precondition(policy.check(line) == .allowed)

    let count = 20_000
    var shellCheck: [Double] = []
    var readCheck: [Double] = []
    var floor: [Double] = []
    var asked = 0
    for _ in 0..<7 {
        var start = clock.now
        for _ in 0..<count where rules.asks(tool: shellCall.name, risk: registry.risk(of: shellCall).level) {
            asked += 1
        }
        shellCheck.append(seconds(clock.now - start) / Double(count) * 1e6)
        start = clock.now
        for _ in 0..<count where rules.asks(tool: readCall.name, risk: registry.risk(of: readCall).level) {
            asked += 1
        }
        readCheck.append(seconds(clock.now - start) / Double(count) * 1e6)
        start = clock.now
        for _ in 0..<count where policy.check(line) != .allowed { asked += 1 }
        floor.append(seconds(clock.now - start) / Double(count) * 1e6)
    }
    precondition(asked == 0)
    print(
        "approval: the check for a call that needs no approval — a read-only shell line (3 programs, a pipe, a "
            + "redirection) min/median/max \(spread(shellCheck)) µs, file_read \(spread(readCheck)) µs; the shell "
            + "policy check of the same line (floor) \(spread(floor)) µs; ratio of medians "
            + "\(String(format2: median(shellCheck) / median(floor)))x (target ≤ 50 µs)")
}
