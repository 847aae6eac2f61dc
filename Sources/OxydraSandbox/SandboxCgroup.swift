import OxydraCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Totals for the whole shell sandbox with control groups, where the runner may create them (root,
/// or a delegated cgroup v2 subtree): `pids.max` from `max_processes`, the memory limit from
/// `max_memory_mib`, a CPU quota from `max_vcpus`. Works with cgroup v2 and with v1 controllers.
/// Best effort: what cannot be applied is reported, and the per-process limits still hold.
public enum SandboxCgroup {
    public struct Outcome: Sendable {
        public var applied: [String] = []
        public var problems: [String] = []
    }

    static let prefix = "oxydra-shell-"

    /// Creates `oxydra-shell-<pid>` next to (below) the calling process's cgroup in each hierarchy,
    /// writes the limits and moves the calling process into it, so everything it starts afterwards
    /// is counted there. Empty groups left by earlier runs are removed.
    public static func confine(maxProcesses: Int?, maxMemoryMiB: Int?, maxVCPUs: Int?) -> Outcome {
        var outcome = Outcome()
        guard maxProcesses != nil || maxMemoryMiB != nil || maxVCPUs != nil else { return outcome }
        let name = prefix + String(getpid())
        let memberships = Self.memberships()
        if access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0, let path = memberships[""] {
            // cgroup v2, unified.
            let parent = "/sys/fs/cgroup" + (path == "/" ? "" : path)
            var controllers: [String] = []
            if maxProcesses != nil { controllers.append("pids") }
            if maxMemoryMiB != nil { controllers.append("memory") }
            if maxVCPUs != nil { controllers.append("cpu") }
            _ = write(controllers.map { "+" + $0 }.joined(separator: " "), to: parent + "/cgroup.subtree_control")
            let directory = parent + "/" + name
            guard makeGroup(directory, cleaning: parent, &outcome) else { return outcome }
            if let value = maxProcesses { set("pids.max", String(value), in: directory, &outcome) }
            if let value = maxMemoryMiB { set("memory.max", String(value << 20), in: directory, &outcome) }
            if let value = maxVCPUs { set("cpu.max", "\(value * 100_000) 100000", in: directory, &outcome) }
            join(directory, &outcome)
            return outcome
        }
        // cgroup v1: one hierarchy per controller.
        let mounts = Self.v1Mounts()
        for (controller, limits) in [
            ("pids", maxProcesses.map { [("pids.max", String($0))] }),
            ("memory", maxMemoryMiB.map { [("memory.limit_in_bytes", String($0 << 20))] }),
            ("cpu", maxVCPUs.map { [("cpu.cfs_period_us", "100000"), ("cpu.cfs_quota_us", String($0 * 100_000))] }),
        ] {
            guard let limits else { continue }
            guard let mount = mounts[controller], let path = memberships[controller] else {
                outcome.problems.append("no cgroup v1 `\(controller)` hierarchy is mounted")
                continue
            }
            let parent = mount + (path == "/" ? "" : path)
            let directory = parent + "/" + name
            guard makeGroup(directory, cleaning: parent, &outcome) else { continue }
            for (file, value) in limits { set(file, value, in: directory, &outcome) }
            join(directory, &outcome)
        }
        return outcome
    }

    private static func makeGroup(_ directory: String, cleaning parent: String, _ outcome: inout Outcome) -> Bool {
        if let entries = try? FileManager.default.contentsOfDirectory(atPath: parent) {
            for entry in entries where entry.hasPrefix(prefix) { rmdir(parent + "/" + entry) }
        }
        if mkdir(directory, 0o755) != 0, errno != EEXIST {
            outcome.problems.append("cannot create \(directory): \(String(cString: strerror(errno)))")
            return false
        }
        return true
    }

    private static func set(_ file: String, _ value: String, in directory: String, _ outcome: inout Outcome) {
        if let problem = write(value, to: directory + "/" + file) {
            outcome.problems.append("cannot set \(file) = \(value): \(problem)")
        } else {
            outcome.applied.append("\(file)=\(value)")
        }
    }

    private static func join(_ directory: String, _ outcome: inout Outcome) {
        if let problem = write(String(getpid()), to: directory + "/cgroup.procs") {
            outcome.problems.append("cannot move the sandbox into \(directory): \(problem)")
        }
    }

    /// nil on success, else why not.
    private static func write(_ value: String, to path: String) -> String? {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return String(cString: strerror(errno)) }
        defer { close(fd) }
        let bytes = Array(value.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        return written == bytes.count ? nil : String(cString: strerror(errno))
    }

    /// Controller (or "" for the unified hierarchy) → this process's cgroup path.
    static func memberships() -> [String: String] {
        guard let text = ProcFiles.read("/proc/self/cgroup") else { return [:] }
        var result: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            for controller in fields[1].split(separator: ",", omittingEmptySubsequences: false) {
                result[String(controller)] = String(fields[2])
            }
        }
        return result
    }

    /// Controller → mount point of its cgroup v1 hierarchy.
    static func v1Mounts() -> [String: String] {
        guard let text = ProcFiles.read("/proc/self/mountinfo") else { return [:] }
        var result: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let halves = line.components(separatedBy: " - ")
            guard halves.count == 2 else { continue }
            let after = halves[1].split(separator: " ")
            guard after.count >= 3, after[0] == "cgroup" else { continue }
            let before = halves[0].split(separator: " ")
            guard before.count >= 5 else { continue }
            for option in after[2].split(separator: ",") where ["pids", "memory", "cpu"].contains(String(option)) {
                result[String(option)] = String(before[4])
            }
        }
        return result
    }
}
