import CSystemShims
import OxydraCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Starting child processes with exactly the descriptors, process group and death signal
/// they should have (a thin layer over `oxydra_spawn`, which forks and execs in C).
public enum ProcessSpawner {
    public struct Options: Sendable {
        public var workingDirectory: String?
        public var standardInput: Int32
        public var standardOutput: Int32
        public var standardError: Int32
        /// A descriptor the child receives as descriptor 3.
        public var passDescriptor: Int32?
        public var newProcessGroup = false
        /// A new session (implies a new process group): for processes that outlive their starter.
        public var newSession = false
        /// Signal delivered to the child when the spawning *thread* exits (`PR_SET_PDEATHSIG`):
        /// spawn from a thread that lives as long as the parent should (the guest uses its main thread).
        public var deathSignal: Int32?
        /// The child becomes a reaper that runs the program as its own child and, when the program
        /// exits or the reaper gets SIGTERM, kills every process the program started — also ones that
        /// double-forked into a new session (see `oxydra_spawn_options.reap_descendants`).
        public var reapDescendants = false

        public init(standardInput: Int32, standardOutput: Int32, standardError: Int32) {
            self.standardInput = standardInput
            self.standardOutput = standardOutput
            self.standardError = standardError
        }
    }

    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var errorNumber: Int32
        public var description: String
    }

    public static func spawn(_ executable: String, arguments: [String], environment: [String], options: Options)
        throws(Failure) -> pid_t
    {
        var raw = oxydra_spawn_options(
            cwd: nil, stdin_fd: options.standardInput, stdout_fd: options.standardOutput,
            stderr_fd: options.standardError, pass_fd: options.passDescriptor ?? -1,
            new_process_group: options.newProcessGroup ? 1 : 0, new_session: options.newSession ? 1 : 0,
            death_signal: options.deathSignal ?? 0, reap_descendants: options.reapDescendants ? 1 : 0)
        var execErrno: Int32 = 0
        let pid = CStringArray.with([executable] + arguments) { argv in
            CStringArray.with(environment) { envp in
                if let directory = options.workingDirectory {
                    return directory.withCString { cwd in
                        raw.cwd = cwd
                        return oxydra_spawn(executable, argv, envp, &raw, &execErrno)
                    }
                }
                return oxydra_spawn(executable, argv, envp, &raw, &execErrno)
            }
        }
        guard pid > 0 else {
            throw Failure(errorNumber: execErrno, description: String(cString: strerror(execErrno)))
        }
        return pid
    }
}

/// NULL-terminated arrays of C strings for exec.
public enum CStringArray {
    public static func with<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
        let pointers = strings.map { strdup($0) } + [nil]
        defer { for pointer in pointers { free(pointer) } }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}
