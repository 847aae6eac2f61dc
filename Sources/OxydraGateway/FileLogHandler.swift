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
        // Built as bytes: a turn logs two lines, and string appends were most of their cost.
        var line: [UInt8] = []
        line.reserveCapacity(160)
        func add(_ text: String) {
            var text = text
            text.withUTF8 { line.append(contentsOf: $0) }
        }
        add(Timestamp.rfc3339(Date(), milliseconds: true))
        line.append(UInt8(ascii: " "))
        add(event.level.rawValue)
        line.append(UInt8(ascii: " "))
        add(label)
        line.append(UInt8(ascii: ":"))
        line.append(UInt8(ascii: " "))
        add(event.message.description)
        if let error = event.error { add(" error=\(error)") }
        let merged =
            if metadata.isEmpty { event.metadata ?? [:] } else {
                metadata.merging(event.metadata ?? [:]) { _, new in new }
            }
        for key in merged.keys.sorted() {
            line.append(UInt8(ascii: " "))
            add(key)
            line.append(UInt8(ascii: "="))
            add(merged[key]!.description)
        }
        line.append(UInt8(ascii: "\n"))
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

    public func write(_ line: [UInt8]) {
        descriptor.withLock { fd in
            var bytes = line[...]
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
