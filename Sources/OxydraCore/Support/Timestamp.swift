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
        var text = String(parts.tm_year + 1900)
        text += "-" + pad(Int(parts.tm_mon) + 1) + "-" + pad(Int(parts.tm_mday))
        text += "T" + pad(Int(parts.tm_hour)) + ":" + pad(Int(parts.tm_min)) + ":" + pad(Int(parts.tm_sec))
        if milliseconds { text += "." + pad(fraction, width: 3) }
        return text + "Z"
    }

    private static func pad(_ value: Int, width: Int = 2) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
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
