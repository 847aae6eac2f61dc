import OxydraCore

#if canImport(Glibc)
    import Glibc
#endif

/// Reads files under `/proc` and `/sys` whole. They report a size of 0 and the kernel hands them
/// out a page at a time, so `String(contentsOfFile:)` (which reads once when the size is 0) gets
/// only the first ~4 KiB of `/proc/self/maps`, `smaps` or `mountinfo`.
public enum ProcFiles {
    public static func read(_ path: String) -> String? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { return nil }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
