import OxydraCore

/// A command's output as it arrives: stdout and stderr pieces in the order they were read,
/// capped at `limit` bytes kept (the rest counted and discarded), handed out in pieces that never
/// split a UTF-8 character.
final class OutputBuffer: @unchecked Sendable {
    private let monitor = Monitor()
    private let limit: Int
    private var segments: [(stream: ShellStream, bytes: [UInt8])] = []
    private var headOffset = 0
    /// Trailing bytes of an incomplete UTF-8 character, per stream, held until the rest arrives.
    private var pending: [ShellStream: [UInt8]] = [:]
    private var kept = 0
    private var total = 0
    private var truncated = false
    private var exitStatus: ShellExitStatus?

    init(limit: Int) { self.limit = limit }

    func append(_ bytes: UnsafeRawBufferPointer, from stream: ShellStream) {
        monitor.locked {
            total += bytes.count
            guard kept < limit else {
                truncated = true
                return
            }
            var data = pending.removeValue(forKey: stream) ?? []
            let room = limit - kept
            if bytes.count > room {
                data.append(contentsOf: bytes.prefix(room))
                truncated = true
            } else {
                data.append(contentsOf: bytes)
            }
            let complete = Self.completePrefixLength(data)
            if complete < data.count { pending[stream] = Array(data[complete...]) }
            guard complete > 0 else { return }
            kept += complete
            if let last = segments.last, last.stream == stream {
                segments[segments.count - 1].bytes.append(contentsOf: data[..<complete])
            } else {
                segments.append((stream, Array(data[..<complete])))
            }
            monitor.broadcast()
        }
    }

    func finish(_ status: ShellExitStatus) {
        monitor.locked {
            for stream in [ShellStream.stdout, .stderr] {
                if let rest = pending.removeValue(forKey: stream), !rest.isEmpty {
                    segments.append((stream, rest))
                }
            }
            exitStatus = status
            monitor.broadcast()
        }
    }

    var isFinished: Bool { monitor.locked { exitStatus != nil } }

    /// The next piece, waiting up to `wait` nanoseconds for output when none is buffered.
    func next(maxBytes: Int, waitNanoseconds: UInt64) -> ShellOutputChunk {
        monitor.locked {
            let deadline = Monotonic.now + waitNanoseconds
            while segments.isEmpty, exitStatus == nil {
                if !monitor.wait(until: deadline), Monotonic.now >= deadline { break }
            }
            guard !segments.isEmpty else {
                return ShellOutputChunk(
                    stream: .stdout, data: "", eof: exitStatus != nil, exitStatus: exitStatus, truncated: truncated,
                    totalBytes: total)
            }
            let head = segments[0]
            let available = head.bytes.count - headOffset
            var take = min(available, maxBytes)
            if take < available {
                // Back off to a character boundary (a continuation byte is 10xxxxxx).
                var boundary = headOffset + take
                while boundary > headOffset, head.bytes[boundary] & 0xC0 == 0x80 { boundary -= 1 }
                take = boundary > headOffset ? boundary - headOffset : min(available, 4)
            }
            let text = String(decoding: head.bytes[headOffset..<headOffset + take], as: UTF8.self)
            headOffset += take
            if headOffset == head.bytes.count {
                segments.removeFirst()
                headOffset = 0
            }
            let eof = segments.isEmpty && exitStatus != nil
            return ShellOutputChunk(
                stream: head.stream, data: text, eof: eof, exitStatus: eof ? exitStatus : nil, truncated: truncated,
                totalBytes: total)
        }
    }

    /// The length of the longest prefix that does not end inside a UTF-8 character.
    static func completePrefixLength(_ bytes: [UInt8]) -> Int {
        var start = bytes.count
        var back = 0
        while start > 0, back < 4 {
            start -= 1
            back += 1
            let byte = bytes[start]
            if byte & 0xC0 != 0x80 {
                let needed =
                    byte < 0x80 ? 1 : byte & 0xE0 == 0xC0 ? 2 : byte & 0xF0 == 0xE0 ? 3 : byte & 0xF8 == 0xF0 ? 4 : 1
                return back >= needed ? bytes.count : start
            }
        }
        return bytes.count
    }
}
