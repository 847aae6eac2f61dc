import OxydraCore

/// A command's output as it arrives: stdout and stderr pieces in the order they were read, handed
/// out in pieces that never split a UTF-8 character.
///
/// At most `limit` bytes are kept: the first half as it comes (so a client sees output live), and
/// the last half in a rolling window delivered when the command ends — the end of a long build log
/// is usually what matters. What falls between is counted and dropped, and the first piece after
/// the gap says how many bytes were skipped.
final class OutputBuffer: @unchecked Sendable {
    private typealias Segment = (stream: ShellStream, bytes: [UInt8])

    private let monitor = Monitor()
    private let headLimit: Int
    private let tailLimit: Int
    /// Ready to hand out.
    private var segments: [Segment] = []
    private var headOffset = 0
    /// Trailing bytes of an incomplete UTF-8 character, per stream, held until the rest arrives.
    private var pending: [ShellStream: [UInt8]] = [:]
    private var headBytes = 0
    /// The rolling window of the latest output once the head is full.
    private var tail: [Segment] = []
    private var tailBytes = 0
    private var skipped = 0
    private var total = 0
    private var exitStatus: ShellExitStatus?

    init(limit: Int) {
        headLimit = max(1, limit / 2)
        tailLimit = max(1, limit - limit / 2)
    }

    func append(_ bytes: UnsafeRawBufferPointer, from stream: ShellStream) {
        monitor.locked {
            total += bytes.count
            var rest = bytes[...]
            if headBytes < headLimit {
                let room = headLimit - headBytes
                let taken = rest.prefix(room)
                rest = rest.dropFirst(taken.count)
                headBytes += taken.count
                var data = pending.removeValue(forKey: stream) ?? []
                data.append(contentsOf: taken)
                // Hold back an incomplete character unless the head just filled up.
                let complete = rest.isEmpty ? Self.completePrefixLength(data) : data.count
                if complete < data.count { pending[stream] = Array(data[complete...]) }
                if complete > 0 {
                    if segments.last?.stream == stream {
                        segments[segments.count - 1].bytes.append(contentsOf: data[..<complete])
                    } else {
                        segments.append((stream, Array(data[..<complete])))
                    }
                    monitor.broadcast()
                }
            }
            guard !rest.isEmpty else { return }
            if tail.last?.stream == stream {
                tail[tail.count - 1].bytes.append(contentsOf: rest)
            } else {
                tail.append((stream, Array(rest)))
            }
            tailBytes += rest.count
            trimTail()
        }
    }

    /// Drops the oldest tail bytes beyond the window, then any continuation bytes at its start.
    private func trimTail() {
        var excess = tailBytes - tailLimit
        while excess > 0, !tail.isEmpty {
            let count = tail[0].bytes.count
            if count <= excess {
                tail.removeFirst()
                tailBytes -= count
                skipped += count
                excess -= count
            } else {
                var drop = excess
                while drop < count, tail[0].bytes[drop] & 0xC0 == 0x80 { drop += 1 }
                tail[0].bytes.removeFirst(drop)
                tailBytes -= drop
                skipped += drop
                excess = 0
                if tail[0].bytes.isEmpty { tail.removeFirst() }
            }
        }
    }

    func finish(_ status: ShellExitStatus) {
        monitor.locked {
            for stream in [ShellStream.stdout, .stderr] {
                if let rest = pending.removeValue(forKey: stream), !rest.isEmpty { segments.append((stream, rest)) }
            }
            if skipped > 0, let first = tail.first {
                // A marker segment: the first tail piece reports the gap before it.
                segments.append((first.stream, []))
            }
            segments += tail
            tail = []
            exitStatus = status
            monitor.broadcast()
        }
    }

    var isFinished: Bool { monitor.locked { exitStatus != nil } }

    /// The next piece, waiting up to `waitNanoseconds` for output when none is buffered.
    func next(maxBytes: Int, waitNanoseconds: UInt64, raw: Bool = false) -> ShellOutputChunk {
        monitor.locked {
            let deadline = Monotonic.now + waitNanoseconds
            while segments.isEmpty, exitStatus == nil {
                if !monitor.wait(until: deadline), Monotonic.now >= deadline { break }
            }
            guard !segments.isEmpty else {
                return chunk(.stdout, raw ? .raw([]) : .text(""), skippedBefore: 0)
            }
            var skippedBefore = 0
            if segments[0].bytes.isEmpty {
                // The gap marker.
                segments.removeFirst()
                skippedBefore = skipped
                guard !segments.isEmpty else {
                    return chunk(.stdout, raw ? .raw([]) : .text(""), skippedBefore: skippedBefore)
                }
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
            let piece = head.bytes[headOffset..<headOffset + take]
            let payload: Payload = raw ? .raw(Array(piece)) : .text(String(decoding: piece, as: UTF8.self))
            headOffset += take
            if headOffset == head.bytes.count {
                segments.removeFirst()
                headOffset = 0
            }
            return chunk(head.stream, payload, skippedBefore: skippedBefore)
        }
    }

    private enum Payload {
        case text(String)
        case raw([UInt8])
    }

    private func chunk(_ stream: ShellStream, _ payload: Payload, skippedBefore: Int) -> ShellOutputChunk {
        let eof = segments.isEmpty && exitStatus != nil
        var chunk = ShellOutputChunk(
            stream: stream, data: "", eof: eof, exitStatus: eof ? exitStatus : nil, truncated: skipped > 0,
            totalBytes: total, skippedBefore: skippedBefore)
        switch payload {
        case .text(let text): chunk.data = text
        case .raw(let bytes): chunk.raw = bytes
        }
        return chunk
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
