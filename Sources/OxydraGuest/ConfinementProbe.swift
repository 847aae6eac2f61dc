import OxydraCore
import OxydraSandbox

#if canImport(Glibc)
    import Glibc
#endif

/// `--confinement-probe`: the same confinement as a real process-tier start, then one read.
public enum ConfinementProbe {
    public static func run(workspace: String, path: String) -> Never {
        switch Landlock.restrictSelf(GuestConfinement.rules(workspace: workspace)) {
        case .failure(let reason):
            StandardStreams.write("unconfined: \(reason)\n", to: 1)
            exit(3)
        case .success(let abi):
            let fd = path.withCString { open($0, O_RDONLY | O_CLOEXEC) }
            if fd >= 0 {
                close(fd)
                StandardStreams.write("allowed: \(path) (landlock abi \(abi))\n", to: 1)
                exit(0)
            }
            StandardStreams.write("denied: \(path): \(String(cString: strerror(errno))) (landlock abi \(abi))\n", to: 1)
            exit(2)
        }
    }
}
