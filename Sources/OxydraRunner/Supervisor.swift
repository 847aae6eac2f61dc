import CSystemShims
import OxydraCore

#if canImport(Glibc)
    import Glibc
#endif

/// Keeps a process-tier guest running (`[runner] restart = "on-failure"`): `runner start` launches
/// this supervisor (the runner executable itself, `runner supervise`), which launches the guest as
/// its child and waits for it. A guest that exits with an error or is killed after it became ready
/// is started again after a pause (1 s, doubling to 30 s); more than `max_restarts` crashes within
/// `restart_window_secs` is a crash loop, and the guest is left stopped. A guest that is not ready
/// within ``Spec/readySeconds`` is killed: at the first start that is a failed start (`runner start`
/// has given up on it already), after a crash it is one more crash, so a restarted guest that hangs
/// while booting (seen with QEMU under TCG) is retried, never left spinning. A clean exit (the
/// guest was asked to shut down) or SIGTERM to the supervisor (`runner stop`) ends supervision; a
/// guest that is not ready yet is then ended at once.
///
/// The supervisor holds an exclusive lock on `ipc/supervisor.lock` for its whole life (so a second
/// `runner start` waits for its guest instead of starting another) and writes what it does to
/// `ipc/supervisor.json` (read by `runner status`) and, one line per event, to the guest's log
/// (`runner logs`).
public enum Supervisor {
    /// What the supervisor runs, handed to it on standard input.
    public struct Spec: Codable, Sendable {
        public var executable: String
        public var arguments: [String]
        public var environment: [String: String]
        public var workingDirectory: String
        /// The guest's bootstrap frame (base64), written to its standard input at every start.
        public var input: String
        public var standardOutput: String
        public var standardError: String
        /// The guest's own log (`runner logs`), where the supervisor notes crashes and restarts.
        public var runtimeLog: String
        public var marker: String
        public var controlSocket: String
        public var ipc: String
        public var maxRestarts: Int
        public var windowSeconds: Int
        /// How long a start may take before the guest is killed as hung: a little longer than
        /// `runner start` waits, so that its own message is the one a user sees.
        public var readySeconds: Int
        /// A micro VM (the executable is QEMU): the supervisor serves the control socket for it,
        /// writes its boot-time secrets before each boot and removes them once it is up, and
        /// reads the guest's own exit status from ``MicroVM/exitStatusFile`` (a powered-off VM
        /// always ends QEMU with status 0).
        public var microVM: MicroVM?

        public struct MicroVM: Codable, Sendable {
            public var relay: ControlRelay
            /// A file (0600) of the configuration share the guest reads at boot: the provider keys.
            public var secretsFile: String
            public var secrets: String
            public var exitStatusFile: String
        }
    }

    /// What `runner status` reads.
    public struct State: Codable, Sendable, Equatable {
        public enum Phase: String, Codable, Sendable {
            case starting, running, restarting, stopped
            case crashLoop = "crash_loop"
            case startFailed = "start_failed"
        }

        public struct Crash: Codable, Sendable, Equatable {
            /// RFC 3339.
            public var at: String
            /// `exit 1`, `signal 9 (SIGKILL)`.
            public var status: String
            public var uptimeSeconds: Int
        }

        public var supervisorPID: Int32
        public var guestPID: Int32?
        public var phase: Phase
        /// Restarts after crashes since `runner start`.
        public var restarts: Int
        public var lastCrash: Crash?
        /// RFC 3339: when a `restarting` guest is started again.
        public var nextStartAt: String?
    }

    public static func statePath(ipc: String) -> String { ipc + "/supervisor.json" }
    static func lockPath(ipc: String) -> String { ipc + "/supervisor.lock" }

    public static func readState(ipc: String) -> State? {
        guard let data = FileManager.default.contents(atPath: statePath(ipc: ipc)) else { return nil }
        return try? JSONDecoder().decode(State.self, from: data)
    }

    /// Whether a supervisor holds the user's lock (is alive).
    public static func isActive(ipc: String) -> Bool {
        let fd = open(lockPath(ipc: ipc), O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if flock(fd, LOCK_EX | LOCK_NB) == 0 {
            flock(fd, LOCK_UN)
            return false
        }
        return true
    }

    /// Asks a running supervisor to stop supervising (its guest is shut down separately) and, when
    /// `wait`, waits up to `timeout` for it to end. Returns whether one was running.
    @discardableResult
    public static func stop(ipc: String, wait: Bool, timeout: Duration = .seconds(15)) -> Bool {
        guard isActive(ipc: ipc), let state = readState(ipc: ipc) else { return false }
        kill(state.supervisorPID, SIGTERM)
        guard wait else { return true }
        let deadline = ContinuousClock.now + timeout
        while isActive(ipc: ipc) && ContinuousClock.now < deadline { usleep(20_000) }
        return true
    }

    // MARK: the supervisor process

    /// The supervisor's life; returns its exit code. Runs in the process `runner supervise` became.
    public static func run(_ spec: Spec) -> Int32 {
        let lock = open(lockPath(ipc: spec.ipc), O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lock >= 0, flock(lock, LOCK_EX | LOCK_NB) == 0 else {
            StandardStreams.write("runner supervise: another supervisor runs this user's guest\n", to: 2)
            return 75
        }
        _ = oxydra_watch_stop_signals()
        let input = Array(Data(base64Encoded: spec.input) ?? Data())
        if let vm = spec.microVM {
            do {
                try vm.relay.start()
            } catch {
                Log(path: spec.runtimeLog).line(level: "error", "cannot serve the control socket: \(error)")
                write(State(supervisorPID: getpid(), guestPID: nil, phase: .startFailed, restarts: 0), ipc: spec.ipc)
                return 1
            }
        }
        defer {
            if let vm = spec.microVM {
                unlink(vm.relay.socket)
                unlink(vm.secretsFile)
            }
        }
        var state = State(supervisorPID: getpid(), guestPID: nil, phase: .starting, restarts: 0)
        var crashes: [ContinuousClock.Instant] = []
        let log = Log(path: spec.runtimeLog)

        while true {
            unlink(spec.marker)
            if let vm = spec.microVM {
                unlink(vm.exitStatusFile)
                guard (try? ContainerGuest.writePrivate(vm.secrets, to: vm.secretsFile)) != nil else {
                    log.line(level: "error", "cannot write \(vm.secretsFile)")
                    state.phase = .startFailed
                    write(state, ipc: spec.ipc)
                    return 1
                }
            } else {
                unlink(spec.controlSocket)
            }
            let pid: Int32
            do {
                pid = try DetachedProcess.launch(
                    spec.executable, arguments: spec.arguments, environment: spec.environment,
                    workingDirectory: spec.workingDirectory, input: input, standardOutput: spec.standardOutput,
                    standardError: spec.standardError)
            } catch {
                log.line("cannot start the guest: \(error)")
                state.phase = .startFailed
                write(state, ipc: spec.ipc)
                return 1
            }
            let started = ContinuousClock.now
            state.guestPID = pid
            state.nextStartAt = nil
            write(state, ipc: spec.ipc)

            // Ready once it wrote its endpoint marker (after its gateway listens); then only wait.
            var ready = false
            var hung = false
            var status: Int32 = 0
            var stopSince: ContinuousClock.Instant?
            while true {
                // A VM is watched, not waited for: a stop request gives its guest time to power
                // off, then QEMU is told to quit (SIGTERM), then killed.
                let result = waitpid(pid, &status, ready && spec.microVM == nil ? 0 : WNOHANG)
                if result == pid { break }
                if result < 0 && errno != EINTR { break }
                if !ready && access(spec.marker, F_OK) == 0 {
                    ready = true
                    state.phase = .running
                    write(state, ipc: spec.ipc)
                    if let vm = spec.microVM { unlink(vm.secretsFile) }
                }
                if !ready && !hung && ContinuousClock.now - started > .seconds(spec.readySeconds) {
                    // Hung while starting: nothing in it can be lost, and nothing else would end it.
                    hung = true
                    kill(pid, SIGKILL)
                }
                if (spec.microVM != nil || !ready) && oxydra_stop_requested() != 0 {
                    // A guest that is not up cannot shut itself down: it gets no grace.
                    let since = stopSince ?? ContinuousClock.now
                    stopSince = since
                    let waited = ContinuousClock.now - since
                    let grace = ready ? Self.vmStopGrace : .zero
                    if waited > grace + .seconds(5) {
                        kill(pid, SIGKILL)
                    } else if waited >= grace {
                        kill(pid, SIGTERM)
                    }
                }
                if !ready || spec.microVM != nil { usleep(50_000) }
            }
            if let vm = spec.microVM {
                unlink(vm.secretsFile)
                // QEMU ends with 0 whenever the guest powers off: the guest's own status decides.
                if (status & 0x7F) == 0 && ((status >> 8) & 0xFF) == 0 {
                    let reported = (try? String(contentsOfFile: vm.exitStatusFile, encoding: .utf8))?.trimmed
                    status = reported.flatMap { Int32($0) }.map { ($0 & 0xFF) << 8 } ?? (1 << 8)
                }
            }
            // It may have become ready between two looks (a guest killed on SIGKILL leaves its marker).
            ready = ready || access(spec.marker, F_OK) == 0
            state.guestPID = nil
            let uptime = Int((ContinuousClock.now - started).components.seconds)
            let clean = (status & 0x7F) == 0 && ((status >> 8) & 0xFF) == 0
            if oxydra_stop_requested() != 0 || clean {
                state.phase = .stopped
                write(state, ipc: spec.ipc)
                return 0
            }
            let description = hung ? "not ready within \(spec.readySeconds) s, killed" : describe(status)
            guard ready || state.restarts > 0 else {
                // `runner start` reports a guest that fails during its first start; nothing to restart.
                state.phase = .startFailed
                state.lastCrash = .init(at: Timestamp.rfc3339(Date()), status: description, uptimeSeconds: uptime)
                write(state, ipc: spec.ipc)
                return 1
            }
            let now = ContinuousClock.now
            crashes = crashes.filter { now - $0 < .seconds(spec.windowSeconds) } + [now]
            state.lastCrash = .init(at: Timestamp.rfc3339(Date()), status: description, uptimeSeconds: uptime)
            if crashes.count > spec.maxRestarts {
                state.phase = .crashLoop
                write(state, ipc: spec.ipc)
                log.line(
                    level: "error",
                    "the guest ended (\(description)) after \(uptime) s; \(crashes.count) crashes within "
                        + "\(spec.windowSeconds) s is more than max_restarts = \(spec.maxRestarts): left stopped "
                        + "(`runner start` tries again)")
                return 1
            }
            let delay = min(1 << (crashes.count - 1), 30)
            state.phase = .restarting
            state.restarts += 1
            state.nextStartAt = Timestamp.rfc3339(Date().addingTimeInterval(Double(delay)))
            write(state, ipc: spec.ipc)
            log.line(
                "the guest ended (\(description)) after \(uptime) s; restarting it in \(delay) s "
                    + "(restart \(crashes.count) of at most \(spec.maxRestarts) within \(spec.windowSeconds) s)")
            var request = timespec(tv_sec: delay, tv_nsec: 0)
            var remaining = timespec()
            while nanosleep(&request, &remaining) != 0 && errno == EINTR && oxydra_stop_requested() == 0 {
                request = remaining
            }
            if oxydra_stop_requested() != 0 {
                state.phase = .stopped
                state.nextStartAt = nil
                write(state, ipc: spec.ipc)
                return 0
            }
        }
    }

    /// How long a stopping micro VM's guest gets to power off before QEMU is told to quit.
    static let vmStopGrace = Duration.seconds(12)

    /// `exit 1`, `signal 9 (SIGKILL)`.
    static func describe(_ status: Int32) -> String {
        let signal = status & 0x7F
        guard signal != 0 else { return "exit \((status >> 8) & 0xFF)" }
        let names: [Int32: String] = [
            SIGKILL: "SIGKILL", SIGSEGV: "SIGSEGV", SIGABRT: "SIGABRT", SIGILL: "SIGILL", SIGBUS: "SIGBUS",
            SIGTERM: "SIGTERM", SIGTRAP: "SIGTRAP",
        ]
        return "signal \(signal)" + (names[signal].map { " (\($0))" } ?? "")
    }

    private static func write(_ state: State, ipc: String) {
        guard let data = try? JSONEncoder().encode(state) else { return }
        let path = statePath(ipc: ipc)
        let temporary = path + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: data) else { return }
        rename(temporary, path)
    }

    /// Lines in the guest's log, in its format, so `runner logs` tells the story.
    private struct Log {
        let path: String
        func line(level: String = "warning", _ text: String) {
            let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
            guard fd >= 0 else { return }
            defer { close(fd) }
            let bytes = Array(
                "\(Timestamp.rfc3339(Date(), milliseconds: true)) \(level) oxydra.supervisor: \(text)\n".utf8)
            _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        }
    }
}
