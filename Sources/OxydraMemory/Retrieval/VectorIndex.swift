import OxydraCore
import Synchronization

/// Vectors of one scope (a session, or a user's notes) held in memory for search, quantised to
/// 8 bits per dimension with a per-vector scale (a quarter of the Float32 footprint; cosine order
/// is preserved to well under a percent).
struct ScopeVectors: Sendable {
    var rowids: [Int64] = []
    var scales: [Float] = []
    var values: [Int8] = []

    mutating func append(rowid: Int64, vector: [Float]) {
        var maximum: Float = 0
        for value in vector { maximum = max(maximum, abs(value)) }
        let scale = maximum > 0 ? maximum / 127 : 1
        rowids.append(rowid)
        scales.append(scale)
        values.reserveCapacity(values.count + vector.count)
        for value in vector { values.append(Int8((value / scale).rounded().clamped(to: -127...127))) }
    }

    mutating func remove(rowids removed: Set<Int64>, dimension: Int) {
        var kept = ScopeVectors()
        for (index, rowid) in rowids.enumerated() where !removed.contains(rowid) {
            kept.rowids.append(rowid)
            kept.scales.append(scales[index])
            kept.values.append(contentsOf: values[(index * dimension)..<((index + 1) * dimension)])
        }
        self = kept
    }

    /// Cosine similarity of every vector with `query` (unit length).
    func scores(_ query: [Float]) -> [Float] {
        let dimension = query.count
        var result = [Float](repeating: 0, count: rowids.count)
        query.withUnsafeBufferPointer { q in
            values.withUnsafeBufferPointer { v in
                for row in 0..<rowids.count {
                    var sum: Float = 0
                    let base = row * dimension
                    for column in 0..<dimension { sum += q[column] * Float(v[base + column]) }
                    result[row] = sum * scales[row]
                }
            }
        }
        return result
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
