#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// RFC 3339 timestamps in UTC (`2026-11-26T06:04:25Z`, or with `.123` milliseconds). Formatted
/// with `gmtime_r` rather than Foundation's ISO 8601 style, which loads ICU's time-zone data (and
/// keeps about 4 MiB of ICU code resident) just to print UTC.
public enum Timestamp {
    public static func rfc3339(_ date: Date, milliseconds: Bool = false) -> String {
        let since1970 = date.timeIntervalSince1970
        var seconds = time_t(since1970.rounded(.down))
        var fraction = Int(((since1970 - Double(seconds)) * 1000).rounded(.down))
        if fraction >= 1000 {
            seconds += 1
            fraction -= 1000
        }
        var parts = tm()
        _ = gmtime_r(&seconds, &parts)
        // Written as ASCII digits into one buffer (a string append per field cost more than the rest).
        let year = Int(parts.tm_year) + 1900
        var bytes: [UInt8] = []
        bytes.reserveCapacity(24)
        func digits(_ value: Int, _ width: Int) {
            var divisor = 1
            for _ in 1..<width { divisor *= 10 }
            var value = value
            while divisor > 0 {
                bytes.append(UInt8(ascii: "0") + UInt8(value / divisor))
                value %= divisor
                divisor /= 10
            }
        }
        if (0...9999).contains(year) { digits(year, 4) } else { bytes.append(contentsOf: String(year).utf8) }
        bytes.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mon) + 1, 2)
        bytes.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mday), 2)
        bytes.append(UInt8(ascii: "T"))
        digits(Int(parts.tm_hour), 2)
        bytes.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_min), 2)
        bytes.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_sec), 2)
        if milliseconds {
            bytes.append(UInt8(ascii: "."))
            digits(fraction, 3)
        }
        bytes.append(UInt8(ascii: "Z"))
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// UTC calendar periods (what budgets count in).
public enum UTCPeriod {
    /// Midnight UTC of `date`'s day and of the next day.
    public static func day(of date: Date) -> (start: Date, end: Date) {
        let start = (date.timeIntervalSince1970 / 86_400).rounded(.down) * 86_400
        return (Date(timeIntervalSince1970: start), Date(timeIntervalSince1970: start + 86_400))
    }

    /// The first of `date`'s month and of the next month, midnight UTC.
    public static func month(of date: Date) -> (start: Date, end: Date) {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        _ = gmtime_r(&seconds, &parts)
        parts.tm_mday = 1
        parts.tm_hour = 0
        parts.tm_min = 0
        parts.tm_sec = 0
        let start = timegm(&parts)
        parts.tm_mon += 1
        let end = timegm(&parts)
        return (Date(timeIntervalSince1970: Double(start)), Date(timeIntervalSince1970: Double(end)))
    }
}
