import Foundation
import OxydraCore
import OxydraTesting
import Synchronization
import Testing

@testable import OxydraMemory
@testable import OxydraRuntime

/// A clock the test moves.
final class TestClock: Sendable {
    let time: Mutex<Date>
    init(_ text: String) { time = Mutex(Self.date(text)) }
    var now: Date { time.withLock { $0 } }
    func set(_ text: String) { time.withLock { $0 = Self.date(text) } }
    /// `2026-12-02T10:00:00Z`.
    static func date(_ text: String) -> Date {
        var parts = tm()
        let numbers = text.split(whereSeparator: { !$0.isNumber }).compactMap { Int32($0) }
        parts.tm_year = numbers[0] - 1900
        parts.tm_mon = numbers[1] - 1
        parts.tm_mday = numbers[2]
        parts.tm_hour = numbers[3]
        parts.tm_min = numbers[4]
        parts.tm_sec = numbers[5]
        return Date(timeIntervalSince1970: Double(timegm(&parts)))
    }
}

@Suite("Spending limits")
struct BudgetTests {
    static func record(_ cost: Double?, at clock: TestClock, session: SessionID = "s") -> UsageRecord {
        UsageRecord(
            session: session, at: clock.now, provider: "openai", model: "gpt-4o-mini",
            usage: Usage(promptTokens: 1000, completionTokens: 500), costUSD: cost)
    }

    @Test func reservationsHoldConcurrentCallsUnderTheLimitAndSettleExactly() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let store = try fixture.open(indexing: false)
        let clock = TestClock("2026-12-02T10:00:00Z")
        let budget = Budget(limits: BudgetConfig(dailyUSD: 1, monthlyUSD: 10), ledger: store, now: { clock.now })
        let first = try await budget.reserve(0.6)
        // A second call running at the same time cannot take what the first may spend.
        await #expect {
            _ = try await budget.reserve(0.6)
        } throws: { error in
            "\(error)".contains(
                "budget.daily_usd ($1.0000) would be exceeded: $0.0000 spent today, $0.6000 reserved by running turns, "
                    + "and this call may cost up to $0.6000; it resets at 2026-12-03T00:00:00Z")
        }
        // gpt-4o-mini: 1000 × $0.15/M + 500 × $0.60/M = $0.00045, exactly as priced.
        let pricing = ModelPricing(inputPerMillion: 0.15, outputPerMillion: 0.6)
        let cost = pricing.cost(of: Usage(promptTokens: 1000, completionTokens: 500))
        #expect(abs(cost - 0.00045) < 1e-15)
        #expect(await budget.settle(first, record: Self.record(cost, at: clock)) == nil)
        let second = try await budget.reserve(0.6)
        await budget.release(second)
        let status = await budget.status()
        #expect(status.spentToday == cost && status.spentThisMonth == cost)
        #expect(try await store.spentNanodollars(since: TestClock.date("2026-12-02T00:00:00Z")) == 450_000)
    }

    @Test func totalsSurviveARestartWarnAt80PercentAndResetAtTheBoundaries() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let clock = TestClock("2026-12-02T10:00:00Z")
        let limits = BudgetConfig(dailyUSD: 1, monthlyUSD: 1.5)
        do {
            let budget = Budget(limits: limits, ledger: try fixture.open(indexing: false), now: { clock.now })
            let call = try await budget.reserve(0.1)
            #expect(await budget.settle(call, record: Self.record(0.5, at: clock)) == nil)
            let next = try await budget.reserve(0.1)
            let warning = await budget.settle(next, record: Self.record(0.35, at: clock))
            #expect(
                warning
                    == "80% of budget.daily_usd is spent ($0.8500 of $1.0000); it resets at 2026-12-03T00:00:00Z")
        }
        // A new process: the day's spending comes back from the ledger.
        let budget = Budget(limits: limits, ledger: try fixture.open(indexing: false), now: { clock.now })
        #expect(await budget.status().spentToday == 0.85)
        await #expect(throws: RuntimeError.self) { _ = try await budget.reserve(0.2) }
        await budget.release(try await budget.reserve(0.1))  // still fits: 0.85 + 0.1 ≤ 1

        // The next UTC day: the daily total starts again, the month's does not.
        clock.set("2026-12-03T00:00:01Z")
        let status = await budget.status()
        #expect(status.spentToday == 0 && status.spentThisMonth == 0.85)
        let morning = try await budget.reserve(0.3)
        let warning = await budget.settle(morning, record: Self.record(0.35, at: clock))
        #expect(
            warning == "80% of budget.monthly_usd is spent ($1.2000 of $1.5000); it resets at 2027-01-01T00:00:00Z")
        await #expect {
            _ = try await budget.reserve(0.4)
        } throws: { error in
            "\(error)".contains("budget.monthly_usd ($1.5000) would be exceeded: $1.2000 spent this month")
                && "\(error)".contains("2027-01-01T00:00:00Z")
        }
        // January: a new month.
        clock.set("2027-01-01T00:00:00Z")
        #expect(await budget.status().spentThisMonth == 0)
        _ = try await budget.reserve(0.9)
    }

    /// Unpriced (local) models count 0; with no limits the ledger still records every call.
    @Test func unpricedCallsCountNothingButAreRecorded() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let store = try fixture.open(indexing: false)
        let clock = TestClock("2026-12-02T10:00:00Z")
        let budget = Budget(limits: BudgetConfig(), ledger: store, now: { clock.now })
        let call = try await budget.reserve(0)
        _ = await budget.settle(call, record: Self.record(nil, at: clock))
        let records = try await store.usageRecords(since: TestClock.date("2026-12-01T00:00:00Z"))
        #expect(records.count == 1 && records[0].costUSD == nil && records[0].usage.promptTokens == 1000)
        #expect(try await store.spentNanodollars(since: .distantPast) == 0)
    }
}
