/// Dollar amounts with four decimals (`0.0123`).
public enum Money {
    /// For people: `$0`, `<$0.01`, `$0.42`, `$12.30` (cents; exact figures use ``format(_:)``).
    public static func display(_ dollars: Double) -> String {
        if dollars <= 0 { return "$0" }
        let cents = Int((dollars * 100).rounded())
        if cents == 0 { return "<$0.01" }
        let fraction = String(cents % 100)
        return "$\(cents / 100).\(fraction.count == 1 ? "0" : "")\(fraction)"
    }

    /// Dollars as billionths of a dollar, rounded: prices per million tokens have at most three
    /// decimals, so a token's price is a whole number of them and sums are exact.
    public static func nanodollars(_ dollars: Double) -> Int64 { Int64((dollars * 1e9).rounded()) }

    public static func dollars(_ nanodollars: Int64) -> Double { Double(nanodollars) / 1e9 }

    public static func format(_ dollars: Double) -> String {
        let units = Int((dollars * 10_000).rounded())
        let fraction = String(units % 10_000)
        return "\(units / 10_000).\(String(repeating: "0", count: 4 - fraction.count))\(fraction)"
    }
}
