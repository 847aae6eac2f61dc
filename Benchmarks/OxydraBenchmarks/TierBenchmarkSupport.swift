import OxydraClient
import OxydraCore
import OxydraTesting

#if canImport(Glibc)
    import Glibc
#endif

/// The unprivileged account a tier benchmark runs its guests as (the container and micro_vm tiers
/// refuse root), created with `useradd` and removed by ``remove()``.
struct BenchAccount {
    let name: String
    let uid: UInt32
    let gid: UInt32

    /// Creates `name` as a system account in the groups of `groups` that exist here.
    static func create(_ name: String, groups: [String]) async throws -> BenchAccount {
        let existing = groups.filter { getgrnam($0) != nil }
        _ = try await ChildProcess.runTool(
            "/usr/sbin/useradd",
            ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
                + (existing.isEmpty ? [] : ["-G", existing.joined(separator: ",")]) + [name])
        guard let entry = getpwnam(name) else { throw TestSupportError("useradd did not create \(name)") }
        return BenchAccount(name: name, uid: entry.pointee.pw_uid, gid: entry.pointee.pw_gid)
    }

    func remove() { _ = ChildProcess.runToolSynchronously("/usr/sbin/userdel", [name]) }

    /// `executable arguments…` as this account.
    func run(_ executable: String, _ arguments: [String], environment: [String: String], directory: String)
        async throws -> ProcessResult
    {
        try await ChildProcess.runTool(
            "/usr/bin/setpriv",
            ["--reuid=\(uid)", "--regid=\(gid)", "--init-groups", "--", executable] + arguments,
            environment: environment, workingDirectory: directory)
    }

    /// `runner stop --user <user>` for each user, as this account, whatever happened before.
    func stop(_ runner: String, config: String, users: [String]) {
        for user in users {
            _ = ChildProcess.runToolSynchronously(
                "/usr/bin/setpriv",
                [
                    "--reuid=\(uid)", "--regid=\(gid)", "--init-groups", "--", runner, "stop", "--config", config,
                    "--user", user,
                ])
        }
    }
}

/// The same scripted reply through two gateways, turn by turn (each on a new session): `warmup`
/// pairs unmeasured, then `count` measured pairs; the seconds per turn of each.
func interleavedTurns(
    _ server: ScriptedModelServer, _ first: (GatewayAccess, UserID), _ second: (GatewayAccess, UserID),
    warmup: Int = 10, count: Int
) async throws -> ([Double], [Double]) {
    let reply = ScriptedReply.text(String(repeating: "token ", count: 20))
    var counter = 0
    func turn(_ access: GatewayAccess, user: UserID) async throws -> Double {
        let session = try await GatewaySession.connect(access, user: user, newSession: true)
        defer { session.client.close() }
        server.enqueue(reply)
        counter += 1
        return try await session.timedTurn("t\(counter)")
    }
    for _ in 0..<warmup {
        _ = try await turn(first.0, user: first.1)
        _ = try await turn(second.0, user: second.1)
    }
    var firsts: [Double] = []
    var seconds: [Double] = []
    for _ in 0..<count {
        firsts.append(try await turn(first.0, user: first.1))
        seconds.append(try await turn(second.0, user: second.1))
    }
    return (firsts, seconds)
}
