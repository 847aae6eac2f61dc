import OxydraCore

/// The user's spending limits (`[budget] daily_usd`, `monthly_usd`, per UTC day and month),
/// enforced before every provider call: the call's worst case (its prompt at the input price plus
/// its whole output allowance at the output price) is reserved against what is left, so turns
/// running at once cannot overshoot together; the reservation is settled with the usage the
/// provider reported. Totals come from the usage ledger once per period, then are kept in memory
/// (a check costs no I/O); every call is recorded in the ledger, so a restart does not reset them.
public actor Budget {
    public let limits: BudgetConfig
    let ledger: (any UsageLedger)?
    public let now: @Sendable () -> Date

    private var day: (start: Date, end: Date)?
    private var month: (start: Date, end: Date)?
    /// Totals and reservations in billionths of a dollar (exact integer sums).
    private var spentDay: Int64 = 0
    private var spentMonth: Int64 = 0
    private var reserved: [Int: Int64] = [:]
    private var lastReservation = 0
    private var warnedDay = false
    private var warnedMonth = false

    public struct Reservation: Sendable {
        let id: Int
        public let amount: Double
    }

    /// What the budget stands at.
    public struct Status: Sendable, Hashable {
        public var limits: BudgetConfig
        public var spentToday: Double
        public var spentThisMonth: Double
        public var dayEnds: Date
        public var monthEnds: Date
    }

    public init(limits: BudgetConfig, ledger: (any UsageLedger)?, now: @escaping @Sendable () -> Date = { Date() }) {
        self.limits = limits
        self.ledger = ledger
        self.now = now
    }

    /// Reads the totals of a new day or month from the ledger.
    private func refresh() async {
        let date = now()
        if let day, date < day.end, let month, date < month.end { return }
        let newDay = UTCPeriod.day(of: date)
        let newMonth = UTCPeriod.month(of: date)
        if day?.start != newDay.start {
            spentDay = (try? await ledger?.spentNanodollars(since: newDay.start)) ?? 0
            warnedDay = false
        }
        if month?.start != newMonth.start {
            spentMonth = (try? await ledger?.spentNanodollars(since: newMonth.start)) ?? 0
            warnedMonth = false
        }
        day = newDay
        month = newMonth
    }

    public func status() async -> Status {
        await refresh()
        return Status(
            limits: limits, spentToday: Money.dollars(spentDay), spentThisMonth: Money.dollars(spentMonth),
            dayEnds: day!.end, monthEnds: month!.end)
    }

    /// Reserves `amount` dollars for one provider call, or refuses it naming the limit and when it
    /// resets.
    public func reserve(_ amount: Double) async throws(RuntimeError) -> Reservation {
        await refresh()
        let wanted = Money.nanodollars(amount)
        let pending = reserved.values.reduce(0, +)
        for (key, limit, spent, end, period) in [
            ("budget.daily_usd", limits.dailyUSD, spentDay, day!.end, "today"),
            ("budget.monthly_usd", limits.monthlyUSD, spentMonth, month!.end, "this month"),
        ] {
            guard let limit, spent + pending + wanted > Money.nanodollars(limit) else { continue }
            throw RuntimeError.budgetExceeded(
                detail: "\(key) ($\(Money.format(limit))) would be exceeded: $\(Money.format(Money.dollars(spent))) "
                    + "spent \(period)"
                    + (pending > 0 ? ", $\(Money.format(Money.dollars(pending))) reserved by running turns" : "")
                    + ", and this call may cost up to $\(Money.format(amount)); it resets at \(Timestamp.rfc3339(end))")
        }
        lastReservation += 1
        reserved[lastReservation] = wanted
        return Reservation(id: lastReservation, amount: amount)
    }

    /// Ends a reservation with what the call cost (written to the ledger unless `recorded`: the
    /// runtime commits it with the answer); returns a warning when this call took a limit past 80 %.
    public func settle(_ reservation: Reservation, record: UsageRecord, recorded: Bool = false) async -> String? {
        reserved[reservation.id] = nil
        if !recorded { try? await ledger?.recordUsage(record) }
        let before = (day: day?.start, month: month?.start)
        await refresh()
        // A new period was read from the ledger, this record included; otherwise add it.
        let cost = record.costNanodollars
        if day?.start == before.day { spentDay += cost }
        if month?.start == before.month { spentMonth += cost }
        for (key, limit, spent, end, isDay) in [
            ("budget.daily_usd", limits.dailyUSD, spentDay, day!.end, true),
            ("budget.monthly_usd", limits.monthlyUSD, spentMonth, month!.end, false),
        ] {
            guard let limit, !(isDay ? warnedDay : warnedMonth), spent * 10 >= Money.nanodollars(limit) * 8 else {
                continue
            }
            if isDay { warnedDay = true } else { warnedMonth = true }
            return "80% of \(key) is spent ($\(Money.format(Money.dollars(spent))) of $\(Money.format(limit))); "
                + "it resets at \(Timestamp.rfc3339(end))"
        }
        return nil
    }

    /// Ends a reservation whose call failed (nothing was spent, or nothing reported).
    public func release(_ reservation: Reservation) {
        reserved[reservation.id] = nil
    }
}
