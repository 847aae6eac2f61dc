import Logging
import OxydraCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// swift-log to an append-only file: one line per record,
/// `2026-11-26T03:00:00Z info oxydra.gateway: message key=value`.
public struct FileLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    let label: String
    let sink: LogSink

    public init(label: String, sink: LogSink, level: Logger.Level = .info) {
        self.label = label
        self.sink = sink
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line = Timestamp.rfc3339(Date(), milliseconds: true)
        line += " \(event.level.rawValue) \(label): \(event.message)"
        if let error = event.error { line += " error=\(error)" }
        let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
        for key in merged.keys.sorted() {
            line += " \(key)=\(merged[key]!)"
        }
        line += "\n"
        sink.write(line)
    }
}

/// An open log file shared by every logger of the process; writes are whole lines (O_APPEND).
public final class LogSink: Sendable {
    private let descriptor: Mutex<Int32>
    public let path: String

    /// Opens (creating, mode 0600) `path` for appending.
    public init(path: String) throws(LogSinkError) {
        let fd = path.withCString { open($0, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600) }
        if fd < 0 { throw LogSinkError(path: path, errno: errno) }
        self.path = path
        descriptor = Mutex(fd)
    }

    public func write(_ line: String) {
        descriptor.withLock { fd in
            var bytes = Array(line.utf8)[...]
            while !bytes.isEmpty {
                let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
                if written < 0 {
                    if errno == EINTR { continue }
                    return
                }
                bytes = bytes.dropFirst(written)
            }
        }
    }

    deinit {
        descriptor.withLock { _ = close($0) }
    }
}

public struct LogSinkError: Error, CustomStringConvertible {
    public var path: String
    public var errno: Int32
    public var description: String { "cannot open log file \(path): \(String(cString: strerror(errno)))" }
}
