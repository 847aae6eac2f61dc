import Foundation
import OxydraCore
import OxydraTesting
import Testing

@testable import OxydraRunner

#if canImport(Glibc)
    import Glibc
#endif

/// `runner supervise` itself (a real process, given its instructions on standard input) watching a
/// stand-in guest: a shell script that is "ready" when it writes the marker, as the guest writes
/// its endpoint marker once its gateway listens.
@Suite("Supervisor", .serialized)
struct SupervisorTests {
    struct Supervised {
        let directory: TemporaryDirectory
        let supervisor: Int32
        var ipc: String { directory.path }

        /// Starts `runner supervise` over `script`; the script sees `$MARKER` and counts its starts
        /// in `starts`.
        init(script: String, readySeconds: Int, maxRestarts: Int = 5) throws {
            directory = try TemporaryDirectory(prefix: "oxydra-supervisor")
            let root = directory.path
            let spec = Supervisor.Spec(
                executable: "/bin/sh", arguments: ["-c", script],
                environment: ["PATH": "/usr/bin:/bin", "MARKER": root + "/marker"], workingDirectory: root, input: "",
                standardOutput: root + "/guest.log", standardError: root + "/guest.log",
                runtimeLog: root + "/runtime.log",
                marker: root + "/marker", controlSocket: root + "/control.sock", ipc: root, maxRestarts: maxRestarts,
                windowSeconds: 300, readySeconds: readySeconds)
            supervisor = try DetachedProcess.launch(
                ChildProcess.path(of: "runner"), arguments: ["supervise"], environment: ["PATH": "/usr/bin:/bin"],
                workingDirectory: root, input: Array(try JSONEncoder().encode(spec)),
                standardOutput: root + "/supervisor.log", standardError: root + "/supervisor.log")
        }

        var state: Supervisor.State? { Supervisor.readState(ipc: ipc) }

        /// Polls the state until `condition` holds (or 20 s pass); the last state read.
        func wait(for what: String, _ condition: (Supervisor.State) -> Bool) async throws -> Supervisor.State {
            var last: Supervisor.State?
            for _ in 0..<400 {
                last = state
                if let last, condition(last) { return last }
                try await Task.sleep(for: .milliseconds(50))
            }
            let log = (try? String(contentsOfFile: ipc + "/runtime.log", encoding: .utf8)) ?? "-"
            throw TestSupportError("waited in vain for \(what): \(String(describing: last))\nlog:\n\(log)")
        }

        func end() {
            if let guest = state?.guestPID { kill(guest, SIGKILL) }
            Supervisor.stop(ipc: ipc, wait: true, timeout: .seconds(10))
            kill(supervisor, SIGKILL)
            _ = DetachedProcess.hasExited(supervisor)
            directory.remove()
        }
    }

    /// A restarted guest that hangs while starting (as QEMU under TCG once did) is killed at its
    /// deadline and counted as a crash; the next start succeeds.
    @Test func aRestartThatHangsIsKilledAndCountedAsACrash() async throws {
        let script = """
            n=$(($(cat starts 2>/dev/null || echo 0) + 1)); echo $n > starts
            case $n in
              1) echo up > "$MARKER"; sleep 0.3; exit 1 ;;
              2) exec sleep 1000 ;;
              *) echo up > "$MARKER"; exec sleep 1000 ;;
            esac
            """
        let run = try Supervised(script: script, readySeconds: 2)
        defer { run.end() }
        let hung = try await run.wait(for: "the hung second start") { $0.restarts == 1 && $0.guestPID != nil }
        let hungPID = try #require(hung.guestPID)
        let back = try await run.wait(for: "a third start that is ready") { $0.restarts == 2 && $0.phase == .running }
        #expect(back.lastCrash?.status == "not ready within 2 s, killed", "\(back)")
        #expect(back.guestPID != hungPID)
        #expect(kill(hungPID, 0) != 0, "the hung start was killed")
        #expect(try String(contentsOfFile: run.ipc + "/starts", encoding: .utf8).trimmed == "3")
        let log = try String(contentsOfFile: run.ipc + "/runtime.log", encoding: .utf8)
        #expect(log.contains("oxydra.supervisor: the guest ended (not ready within 2 s, killed) after 2 s"), "\(log)")
    }

    /// At the first start a hung guest is a failed start (nothing to restart), and the supervisor ends.
    @Test func aFirstStartThatHangsFails() async throws {
        let run = try Supervised(script: "exec sleep 1000", readySeconds: 1)
        defer { run.end() }
        let failed = try await run.wait(for: "a failed start") { $0.phase == .startFailed }
        #expect(failed.lastCrash?.status == "not ready within 1 s, killed", "\(failed)")
        #expect(failed.restarts == 0)
        for _ in 0..<100 where !DetachedProcess.hasExited(run.supervisor).exited {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(!Supervisor.isActive(ipc: run.ipc))
    }

    /// A stop request while the guest is not ready ends it at once (it cannot shut itself down).
    @Test func stoppingAGuestThatIsNotReadyEndsItAtOnce() async throws {
        let run = try Supervised(script: "exec sleep 1000", readySeconds: 60)
        defer { run.end() }
        let starting = try await run.wait(for: "a started guest") { $0.guestPID != nil }
        let guest = try #require(starting.guestPID)
        let asked = ContinuousClock.now
        Supervisor.stop(ipc: run.ipc, wait: true, timeout: .seconds(10))
        #expect(ContinuousClock.now - asked < .seconds(3))
        #expect(!Supervisor.isActive(ipc: run.ipc))
        #expect(kill(guest, 0) != 0, "the guest was ended")
        #expect(run.state?.phase == .stopped)
    }
}
