import OxydraContainer
import OxydraCore

#if canImport(Glibc)
    import Glibc
#endif

/// `runner logs`: the guest's log lines, through the control socket while it runs and straight from
/// `<ws>/logs/` when it does not (the interesting case after a crash). In the container tier the
/// containers' own output (`stderr`: the runtime's, `sidecar`: shell-vm's) comes from the engine
/// while they exist; `runner stop` keeps it in the same files for later.
public enum GuestLogs {
    /// Prints through `emit` as lines arrive; with `follow`, polls until interrupted. Returns the exit code.
    public static func run(
        _ context: RunnerContext, role: String, tail: Int, follow: Bool, pollInterval: Duration = .milliseconds(500),
        emit: (_ text: String, _ descriptor: Int32) -> Void
    ) async -> Int32 {
        let target: UserTarget
        switch UserTarget.resolve(context) {
        case .success(let resolved): target = resolved
        case .failure(let output):
            emit(output.standardError, 2)
            return output.exitCode
        }
        let roles = role == "all" ? LogReader.roles : [role]
        guard roles.allSatisfy(LogReader.roles.contains) else {
            emit("runner error: unknown log role `\(role)`; use runtime, stderr, sidecar or all\n", 2)
            return 1
        }
        var offsets: [String: Int] = [:]
        var warnedOffline = false
        var containers: [String: (id: String, name: String)] = [:]
        if let found = await ContainerGuest.findIfEngine(target.user, context: context) {
            for (role, container) in [("stderr", found.runtime), ("sidecar", found.sidecar)] {
                if let container, let id = ContainerGuest.Found.id(container) {
                    containers[role] = (id, ContainerGuest.Found.name(container) ?? id)
                }
            }
        }
        let engine = ContainerGuest.engine(context)
        var since: [String: String] = [:]
        var read: Set<String> = []
        repeat {
            for role in roles {
                if let container = containers[role] {
                    do {
                        let lines = try await engine.logLines(
                            container.id, tail: read.contains(role) ? nil : tail, since: since[role])
                        if !read.contains(role) && roles.count > 1 { emit("==> container \(container.name) <==\n", 1) }
                        read.insert(role)
                        if !lines.isEmpty { emit(lines.map(\.text).joined(separator: "\n") + "\n", 1) }
                        since[role] = lines.last?.timestamp ?? since[role]
                        continue
                    } catch .api(404, _, _) {
                        // Removed meanwhile (`runner stop`): its output is in the file now.
                        containers[role] = nil
                    } catch {
                        emit("runner error: \(error)\n", 2)
                        return 1
                    }
                }
                if role == "runtime" && offsets[role] == nil && MicroVMGuest.readFacts(target) != nil,
                    let console = try? String(contentsOfFile: MicroVMGuest.consoleLog(target), encoding: .utf8)
                {
                    // A micro VM's serial console (its kernel and init) is the early part of its log.
                    let lines = console.split(separator: "\n", omittingEmptySubsequences: true).suffix(tail)
                    if !lines.isEmpty {
                        emit("==> \(MicroVMGuest.consoleLog(target)) (micro VM console) <==\n", 1)
                        emit(lines.joined(separator: "\n") + "\n==> runtime <==\n", 1)
                    }
                }
                let response: ControlResponse
                let request = ControlRequest.logs(role: role, tail: tail, offset: offsets[role])
                do {
                    response = try ControlClient.request(request, socket: target.controlSocket, timeout: .seconds(5))
                } catch .notRunning {
                    if !warnedOffline {
                        emit("note: no running guest for user `\(target.user)`; reading \(target.logs) directly\n", 2)
                        warnedOffline = true
                    }
                    response = LogReader.read(role: role, directory: target.logs, tail: tail, offset: offsets[role])
                } catch {
                    emit("runner error: \(error)\n", 2)
                    return 1
                }
                switch response {
                case .logs(let lines, let next, let files):
                    if offsets[role] == nil && roles.count > 1 && !files.isEmpty {
                        // A container-tier guest names its files by its own paths.
                        let shown = files.map {
                            $0.hasPrefix("/workspace/logs/") ? target.logs + $0.dropFirst("/workspace/logs".count) : $0
                        }
                        emit("==> \(shown.joined(separator: ", ")) <==\n", 1)
                    }
                    if !lines.isEmpty { emit(lines.joined(separator: "\n") + "\n", 1) }
                    // A file that shrank was rotated or truncated: start over.
                    offsets[role] = next < (offsets[role] ?? 0) ? 0 : next
                case .failure(let message):
                    emit("runner error: \(message)\n", 2)
                    return 1
                default:
                    emit("runner error: unexpected reply from the guest\n", 2)
                    return 1
                }
            }
            if follow {
                let nanoseconds =
                    pollInterval.components.seconds * 1_000_000_000 + pollInterval.components.attoseconds
                    / 1_000_000_000
                try? await Task.sleep(for: .nanoseconds(nanoseconds))
            }
        } while follow
        return 0
    }
}
