/// Dollar amounts with four decimals (`0.0123`).
public enum Money {
    public static func format(_ dollars: Double) -> String {
        let units = Int((dollars * 10_000).rounded())
        let fraction = String(units % 10_000)
        return "\(units / 10_000).\(String(repeating: "0", count: 4 - fraction.count))\(fraction)"
    }
}
