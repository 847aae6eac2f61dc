import OxydraCore
import OxydraMemory
import OxydraRuntime
import OxydraTesting

/// The budget check a provider call pays (reserve + release) with a year of usage records in the
/// store (200 calls a day), against the same check with an empty ledger (the floor: the mechanism
/// without the history). Also the one-off cost of a new day's totals (an index range SUM).
func benchmarkBudget() async throws {
    let directory = try TemporaryDirectory(prefix: "oxydra-bench-budget")
    defer { directory.remove() }
    let full = try SQLiteMemoryStore(path: directory.path + "/full.db", user: "alice", indexing: false)
    let empty = try SQLiteMemoryStore(path: directory.path + "/empty.db", user: "alice", indexing: false)
    let now = Date()
    let perDay = 200
    try await full.pool.write { db in
        for day in 0..<365 {
            for call in 0..<perDay {
                let at = Int64((now.timeIntervalSince1970 - Double(day) * 86_400 - Double(call) * 300) * 1000)
                try db.execute(
                    """
                    INSERT INTO usage_records (user_id, session_id, at, provider, model, prompt_tokens, completion_tokens, cost_nanousd)
                    VALUES ('alice', ?, ?, 'openai', 'gpt-4o-mini', 1200, 300, 360000)
                    """, ["session-\(day % 40)", at])
            }
        }
    }
    let limits = BudgetConfig(dailyUSD: 1_000, monthlyUSD: 10_000)

    func perCheck(_ ledger: SQLiteMemoryStore) async throws -> (check: Double, refresh: Double) {
        let budget = Budget(limits: limits, ledger: ledger, now: { now })
        var start = clock.now
        _ = await budget.status()  // the day's and month's totals, read once
        let refresh = seconds(clock.now - start)
        let count = 20_000
        start = clock.now
        for _ in 0..<count {
            let reservation = try await budget.reserve(0.01)
            await budget.release(reservation)
        }
        return (seconds(clock.now - start) / Double(count), refresh)
    }

    var withYear: [Double] = []
    var floor: [Double] = []
    var refreshes: [Double] = []
    for _ in 0..<7 {
        let measured = try await perCheck(full)
        withYear.append(measured.check)
        refreshes.append(measured.refresh)
        floor.append(try await perCheck(empty).check)
    }
    print(
        "budget: reserve+release per provider call with a year of usage records (\(365 * perDay) rows) "
            + "min/median/max \(spread(withYear, scale: 1e6)) µs; with an empty ledger (floor) \(spread(floor, scale: 1e6)) µs; "
            + "ratio of medians \(String(format2: median(withYear) / median(floor)))x (target ≤ 100 µs); "
            + "a new day's totals (index range SUM) \(spread(refreshes, scale: 1000)) ms")
}
