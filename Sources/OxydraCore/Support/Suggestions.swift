/// "Did you mean" candidates for a mistyped name.
public enum Suggestions {
    /// Up to `limit` candidates closest to `input` by edit distance (case-insensitive), best first.
    /// A candidate qualifies when its distance is small relative to its length, or when one string
    /// contains the other (`gpt4o` → `gpt-4o`, `sonnet` → `claude-sonnet-4-5`).
    public static func closest(to input: String, in candidates: some Sequence<String>, limit: Int = 3) -> [String] {
        let needle = input.lowercased()
        let compactNeedle = needle.filter { $0.isLetter || $0.isNumber }
        var scored: [(candidate: String, score: Int)] = []
        let needleWords = Set(needle.split { $0 == "_" || $0 == "-" || $0 == "." })
        for candidate in Set(candidates) {
            let lower = candidate.lowercased()
            // The same words in another order (`read_file` → `file_read`).
            if needleWords.count > 1 && Set(lower.split { $0 == "_" || $0 == "-" || $0 == "." }) == needleWords {
                scored.append((candidate, 1))
                continue
            }
            let distance = editDistance(needle, lower)
            let threshold = max(2, min(needle.count, lower.count) / 3)
            let compact = lower.filter { $0.isLetter || $0.isNumber }
            if distance <= threshold {
                scored.append((candidate, distance))
            } else if !compactNeedle.isEmpty && compactNeedle.count >= 3
                && (compact.contains(compactNeedle) || compactNeedle.contains(compact))
            {
                scored.append((candidate, threshold + abs(compact.count - compactNeedle.count)))
            }
        }
        return scored.sorted { ($0.score, $0.candidate) < ($1.score, $1.candidate) }.prefix(limit).map(\.candidate)
    }

    /// Optimal-string-alignment distance: insertions, deletions, substitutions and adjacent swaps
    /// each cost 1, so `max_turn` ↔ `max_turns` is 1 and `trun` ↔ `turn` is 1.
    public static func editDistance(_ lhs: String, _ rhs: String) -> Int {
        let a = Array(lhs.unicodeScalars)
        let b = Array(rhs.unicodeScalars)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previousPrevious = [Int](repeating: 0, count: b.count + 1)
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                var value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    value = min(value, previousPrevious[j - 2] + 1)
                }
                current[j] = value
            }
            (previousPrevious, previous, current) = (previous, current, previousPrevious)
        }
        return previous[b.count]
    }

    /// Formats candidates as "; did you mean `a` or `b`?" or "" when there are none.
    public static func phrase(_ candidates: [String]) -> String {
        question(candidates).map { "; " + $0 } ?? ""
    }

    /// "did you mean `a` or `b`?", or nil when there are no candidates.
    public static func question(_ candidates: [String]) -> String? {
        guard !candidates.isEmpty else { return nil }
        return "did you mean " + candidates.map { "`\($0)`" }.joined(separator: " or ") + "?"
    }
}
