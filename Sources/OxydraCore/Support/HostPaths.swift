#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Comparing host paths the way the kernel will resolve them.
public enum HostPaths {
    /// `path` made absolute against `base`, with `.`/`..`/repeated slashes removed and symbolic
    /// links resolved for the part that exists (a path that does not exist yet keeps its tail).
    public static func resolved(_ path: String, relativeTo base: String = "/") -> String {
        var components: [Substring] = []
        let absolute = path.hasPrefix("/") ? path : base + "/" + path
        for part in absolute.split(separator: "/") {
            if part == "." { continue }
            if part == ".." {
                _ = components.popLast()
            } else {
                components.append(part)
            }
        }
        var existing = components.count
        while existing > 0 {
            let prefix = "/" + components[..<existing].joined(separator: "/")
            if let real = realpath(prefix, nil) {
                defer { free(real) }
                let rest = components[existing...].joined(separator: "/")
                let head = String(cString: real)
                return rest.isEmpty ? head : (head == "/" ? "/" + rest : head + "/" + rest)
            }
            existing -= 1
        }
        return "/" + components.joined(separator: "/")
    }

    /// Whether `inner` is `outer` or lies below it (both already resolved).
    public static func contains(_ outer: String, _ inner: String) -> Bool {
        outer == "/" || inner == outer || inner.hasPrefix(outer + "/")
    }

    /// Whether either path contains the other (both already resolved).
    public static func overlap(_ a: String, _ b: String) -> Bool { contains(a, b) || contains(b, a) }
}
