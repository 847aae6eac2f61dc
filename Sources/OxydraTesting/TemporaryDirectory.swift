import OxydraCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A fresh directory under the system temp dir, removed by ``remove()``.
public struct TemporaryDirectory: Sendable {
    /// Absolute path without a trailing slash (symlinks resolved, so it compares equal to what
    /// child processes report as their working directory).
    public let path: String

    public init(prefix: String = "oxydra-test") throws {
        let base = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array("\(base)/\(prefix)-XXXXXX".utf8CString)
        let created = template.withUnsafeMutableBufferPointer { buffer in mkdtemp(buffer.baseAddress!) }
        guard created != nil else { throw TestSupportError("mkdtemp failed with errno \(errno)") }
        let raw = String(nulTerminated: template)
        var resolved = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        path = realpath(raw, &resolved) != nil ? String(nulTerminated: resolved) : raw
    }

    /// Writes `contents` to `relativePath`, creating parent directories.
    @discardableResult
    public func write(_ contents: String, to relativePath: String) throws -> String {
        let full = path + "/" + relativePath
        let parent = String(full[..<full.lastIndex(of: "/")!])
        try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: full, contents: Data(contents.utf8)) else {
            throw TestSupportError("cannot write \(full)")
        }
        return full
    }

    public func createDirectory(_ relativePath: String) throws -> String {
        let full = path + "/" + relativePath
        try FileManager.default.createDirectory(atPath: full, withIntermediateDirectories: true)
        return full
    }

    public func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// A failure in test scaffolding (not in the code under test).
public struct TestSupportError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
