/// `usage_report`: the user's provider calls since a day, added up per UTC day, model and session,
/// and where the budget stands.
public struct UsageReport: Sendable, Hashable {
    public struct Row: Sendable, Hashable {
        /// `2026-12-02`, `openai/gpt-4o-mini` or a session id.
        public var key: String
        public var calls = 0
        /// Calls to models without a price (counted as $0).
        public var unpricedCalls = 0
        public var promptTokens = 0
        public var completionTokens = 0
        public var costNanodollars: Int64 = 0

        public init(key: String) { self.key = key }

        public var costUSD: Double { Money.dollars(costNanodollars) }

        mutating func add(_ record: UsageRecord) {
            calls += 1
            if record.costUSD == nil { unpricedCalls += 1 }
            promptTokens += record.usage.promptTokens ?? 0
            completionTokens += record.usage.completionTokens ?? 0
            costNanodollars += record.costNanodollars
        }

        var json: JSONValue {
            [
                "key": .string(key), "calls": .integer(calls), "unpriced_calls": .integer(unpricedCalls),
                "prompt_tokens": .integer(promptTokens), "completion_tokens": .integer(completionTokens),
                "cost_usd": .number(costUSD),
            ]
        }

        init(_ p: FieldReader) throws(WireError) {
            key = try p.string("key")
            calls = try p.optionalInt("calls") ?? 0
            unpricedCalls = try p.optionalInt("unpriced_calls") ?? 0
            promptTokens = try p.optionalInt("prompt_tokens") ?? 0
            completionTokens = try p.optionalInt("completion_tokens") ?? 0
            costNanodollars = Money.nanodollars(try p.optionalDouble("cost_usd") ?? 0)
        }
    }

    /// RFC 3339: the start of the first day counted.
    public var since: String
    public var total: Row
    public var days: [Row]
    public var models: [Row]
    public var sessions: [Row]
    /// `[budget]` limits and what is spent toward them (nil limits: none set).
    public var dailyLimitUSD: Double?
    public var monthlyLimitUSD: Double?
    public var spentTodayUSD: Double
    public var spentThisMonthUSD: Double

    public init(
        since: Date, records: [UsageRecord], dailyLimitUSD: Double? = nil, monthlyLimitUSD: Double? = nil,
        spentTodayUSD: Double = 0, spentThisMonthUSD: Double = 0
    ) {
        self.since = Timestamp.rfc3339(since)
        var total = Row(key: "total")
        var days: [String: Row] = [:]
        var models: [String: Row] = [:]
        var sessions: [String: Row] = [:]
        for record in records {
            total.add(record)
            let day = String(Timestamp.rfc3339(record.at).prefix(10))
            days[day, default: Row(key: day)].add(record)
            let model = record.provider + "/" + record.model
            models[model, default: Row(key: model)].add(record)
            sessions[record.session.rawValue, default: Row(key: record.session.rawValue)].add(record)
        }
        self.total = total
        self.days = days.values.sorted { $0.key < $1.key }
        self.models = models.values.sorted { ($0.costNanodollars, $0.key) > ($1.costNanodollars, $1.key) }
        self.sessions = sessions.values.sorted { ($0.costNanodollars, $0.key) > ($1.costNanodollars, $1.key) }
        self.dailyLimitUSD = dailyLimitUSD
        self.monthlyLimitUSD = monthlyLimitUSD
        self.spentTodayUSD = spentTodayUSD
        self.spentThisMonthUSD = spentThisMonthUSD
    }

    /// For people: totals, the budget, then per day, model and (the ten costliest) sessions.
    public var text: String {
        let tokens = TokenCount.display
        func line(_ row: Row, width: Int) -> String {
            let key = row.key.count >= width ? row.key : row.key + String(repeating: " ", count: width - row.key.count)
            return "  \(key)  \(row.calls) call\(row.calls == 1 ? "" : "s"), \(tokens(row.promptTokens)) in, "
                + "\(tokens(row.completionTokens)) out, $\(Money.format(row.costUSD))"
        }
        var lines = [
            "since \(since.prefix(10)): \(total.calls) call\(total.calls == 1 ? "" : "s"), \(tokens(total.promptTokens)) "
                + "prompt and \(tokens(total.completionTokens)) output tokens, $\(Money.format(total.costUSD))"
        ]
        var budget = "budget: today $\(Money.format(spentTodayUSD))"
        budget += dailyLimitUSD.map { " of $\(Money.format($0))" } ?? " (no daily limit)"
        budget += ", this month $\(Money.format(spentThisMonthUSD))"
        budget += monthlyLimitUSD.map { " of $\(Money.format($0))" } ?? " (no monthly limit)"
        lines.append(budget + "; days and months are UTC")
        if total.unpricedCalls > 0 {
            lines.append(
                "\(total.unpricedCalls) call\(total.unpricedCalls == 1 ? "" : "s") to unpriced (local) models count $0")
        }
        for (title, rows) in [("by day", days), ("by model", models), ("by session", Array(sessions.prefix(10)))]
        where !rows.isEmpty {
            lines.append(title + ":")
            let width = rows.map(\.key.count).max() ?? 0
            lines += rows.map { line($0, width: width) }
        }
        return lines.joined(separator: "\n")
    }

    public var json: JSONValue {
        .compactObject([
            "since": .string(since), "total": total.json, "days": .array(days.map(\.json)),
            "models": .array(models.map(\.json)), "sessions": .array(sessions.map(\.json)),
            "budget": .compactObject([
                "daily_usd": dailyLimitUSD.map(JSONValue.number), "monthly_usd": monthlyLimitUSD.map(JSONValue.number),
                "spent_today_usd": .number(spentTodayUSD), "spent_this_month_usd": .number(spentThisMonthUSD),
            ]),
        ])
    }

    init(_ p: FieldReader) throws(WireError) {
        since = try p.string("since")
        total = try Row(p.object("total"))
        func rows(_ key: String) throws(WireError) -> [Row] {
            var rows: [Row] = []
            for (index, item) in try p.array(key).enumerated() {
                rows.append(try Row(FieldReader(item, path: "\(p.path).\(key)[\(index)]")))
            }
            return rows
        }
        days = try rows("days")
        models = try rows("models")
        sessions = try rows("sessions")
        let budget = try p.optionalObject("budget")
        dailyLimitUSD = try budget?.optionalDouble("daily_usd")
        monthlyLimitUSD = try budget?.optionalDouble("monthly_usd")
        spentTodayUSD = try budget?.optionalDouble("spent_today_usd") ?? 0
        spentThisMonthUSD = try budget?.optionalDouble("spent_this_month_usd") ?? 0
    }
}
