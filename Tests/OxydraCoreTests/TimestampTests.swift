import Foundation
import Testing

@testable import OxydraCore

@Suite struct TimestampTests {
    @Test func matchesFoundationISO8601ForSecondsAcrossTheCalendar() {
        // Leap days, year ends, the epoch, before it, and far future; Foundation is the oracle.
        var instants: [Double] = [0, -1, 951_782_400, 1_709_164_800, 1_798_761_599, 4_102_444_800, -86_401]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            instants.append(Double(Int64.random(in: -2_000_000_000...4_000_000_000, using: &generator)))
        }
        for instant in instants {
            let date = Date(timeIntervalSince1970: instant)
            #expect(Timestamp.rfc3339(date) == date.ISO8601Format(), "at \(instant)")
        }
    }

    @Test func millisecondsAreTruncatedAndPadded() {
        #expect(
            Timestamp.rfc3339(Date(timeIntervalSince1970: 1.0456), milliseconds: true) == "1970-01-01T00:00:01.045Z")
        #expect(
            Timestamp.rfc3339(Date(timeIntervalSince1970: 59.9999), milliseconds: true) == "1970-01-01T00:00:59.999Z")
        #expect(Timestamp.rfc3339(Date(timeIntervalSince1970: -0.5), milliseconds: true) == "1969-12-31T23:59:59.500Z")
        #expect(
            Timestamp.rfc3339(Date(timeIntervalSince1970: 1_795_000_000.002), milliseconds: true).hasSuffix(".002Z"))
    }
}
