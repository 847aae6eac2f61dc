import OxydraCore
import Synchronization

/// Vectors of one scope (a session, or a user's notes) held in memory for search, quantised to
/// 8 bits per dimension with a per-vector scale (a quarter of the Float32 footprint; cosine order
/// is preserved to well under a percent).
struct ScopeVectors: Sendable {
    /// Every vector has exactly this many values; others are refused (the scoring loop reads
    /// `dimension` values per row through a raw pointer).
    let dimension: Int
    var rowids: [Int64] = []
    var scales: [Float] = []
    var values: [Int8] = []

    init(dimension: Int) { self.dimension = dimension }

    /// Adds a vector of `dimension` finite values; returns false (and adds nothing) otherwise.
    @discardableResult
    mutating func append(rowid: Int64, vector: [Float]) -> Bool {
        guard vector.count == dimension, vector.allSatisfy(\.isFinite) else { return false }
        var maximum: Float = 0
        for value in vector { maximum = max(maximum, abs(value)) }
        let scale = maximum > 0 ? maximum / 127 : 1
        rowids.append(rowid)
        scales.append(scale)
        values.reserveCapacity(values.count + vector.count)
        for value in vector { values.append(Int8((value / scale).rounded().clamped(to: -127...127))) }
        return true
    }

    /// Cosine similarity of every vector with `query` (unit length). The query is quantised like
    /// the stored vectors, so the inner loop is an 8-bit integer dot product (which the compiler
    /// vectorises).
    func scores(_ query: [Float]) -> [Float] {
        guard !rowids.isEmpty, dimension > 0, query.count == dimension, values.count == rowids.count * dimension,
            scales.count == rowids.count
        else { return [Float](repeating: 0, count: rowids.count) }
        var maximum: Float = 0
        for value in query { maximum = max(maximum, abs(value)) }
        let queryScale = maximum > 0 ? maximum / 127 : 1
        let quantized = query.map { Int8(($0 / queryScale).rounded().clamped(to: -127...127)) }
        var result = [Float](repeating: 0, count: rowids.count)
        quantized.withUnsafeBufferPointer { q in
            values.withUnsafeBufferPointer { v in
                scales.withUnsafeBufferPointer { scale in
                    for row in 0..<rowids.count {
                        let base = v.baseAddress! + row * dimension
                        var sum: Int32 = 0
                        for column in 0..<dimension { sum &+= Int32(q[column]) &* Int32(base[column]) }
                        result[row] = Float(sum) * scale[row] * queryScale
                    }
                }
            }
        }
        return result
    }

    /// The `count` best (rowid, score) pairs, best first; ties favour newer (higher) rowids.
    func top(_ query: [Float], count: Int) -> [(Int64, Float)] {
        let all = scores(query)
        guard count > 0 else { return [] }
        // A bounded selection: keep the best `count` seen so far, replacing the weakest.
        var best: [(Int64, Float)] = []
        best.reserveCapacity(count + 1)
        var weakest = 0
        func worse(_ a: (Int64, Float), _ b: (Int64, Float)) -> Bool { a.1 != b.1 ? a.1 < b.1 : a.0 < b.0 }
        for (index, score) in all.enumerated() {
            let entry = (rowids[index], score)
            if best.count < count {
                best.append(entry)
                if best.count == count { weakest = best.indices.min { worse(best[$0], best[$1]) ? true : false }! }
            } else if worse(best[weakest], entry) {
                best[weakest] = entry
                weakest = best.indices.min { worse(best[$0], best[$1]) }!
            }
        }
        return best.sorted { worse($1, $0) }
    }

    var residentBytes: Int { rowids.count * 8 + scales.count * 4 + values.count }
}

extension Comparable {
    func clamped(to range: ClosedRange<Self>) -> Self { min(max(self, range.lowerBound), range.upperBound) }
}

/// Loaded scopes, by name. A scope is loaded on its first search and kept current by the store.
final class VectorIndex: Sendable {
    private let scopes = Mutex<[String: ScopeVectors]>([:])

    func scope(_ name: String) -> ScopeVectors? { scopes.withLock { $0[name] } }
    func set(_ name: String, _ vectors: ScopeVectors) { scopes.withLock { $0[name] = vectors } }

    /// Adds vectors to a scope only if it is already loaded (otherwise the next load reads them).
    func appendIfLoaded(_ name: String, rowid: Int64, vector: [Float]) {
        scopes.withLock { scopes in
            guard var loaded = scopes[name] else { return }
            loaded.append(rowid: rowid, vector: vector)
            scopes[name] = loaded
        }
    }

    func invalidate(_ name: String) { _ = scopes.withLock { $0.removeValue(forKey: name) } }

    var residentBytes: Int { scopes.withLock { $0.values.reduce(0) { $0 + $1.residentBytes } } }
}
