import OxydraCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Turns text into unit-length vectors whose dot product measures similarity.
public protocol Embedder: Sendable {
    /// Stored with every vector; vectors of different embedders are never compared.
    var id: String { get }
    var dimension: Int { get }
    func embed(_ text: String) -> [Float]
}

extension Embedder {
    public func embed(_ texts: [String]) -> [[Float]] { texts.map(embed) }
}

/// Scales `vector` to unit length (zero vectors stay zero).
func normalized(_ vector: [Float]) -> [Float] {
    var sum: Float = 0
    for value in vector { sum += value * value }
    guard sum > .ulpOfOne else { return vector }
    let scale = 1 / sum.squareRoot()
    return vector.map { $0 * scale }
}

/// The built-in deterministic embedder: feature hashing of words, word bigrams and character
/// trigrams into 256 dimensions, sublinear term weights, L2-normalised.
///
/// It needs no model file and gives *lexical* similarity — texts sharing words or word pieces
/// score high (`deploy`/`deployment`, typos) — unlike a hash of the whole text, which only matches
/// identical strings. For semantic similarity use a model2vec model (``Model2VecEmbedder``).
public struct HashingEmbedder: Embedder {
    public let id = "hashing-ngram-v1"
    public let dimension = 256

    public init() {}

    public func embed(_ text: String) -> [Float] {
        var vector = [Float](repeating: 0, count: dimension)
        let words = Self.words(text)
        var counts: [UInt64: Float] = [:]
        func add(_ feature: some Sequence<UInt8>, weight: Float) {
            counts[StableHash.fnv1a(feature), default: 0] += weight
        }
        for (index, word) in words.enumerated() {
            let bytes = Array(word.utf8)
            add([0x77] + bytes, weight: 1)  // "w" + word
            if index > 0 { add([0x62] + Array(words[index - 1].utf8) + [0x20] + bytes, weight: 0.5) }
            let padded = [0x23] + bytes + [0x23]  // #word#
            if padded.count >= 3 {
                for start in 0...(padded.count - 3) { add([0x63] + padded[start..<start + 3], weight: 0.5) }
            }
        }
        for (hash, count) in counts {
            let index = Int(hash % UInt64(dimension))
            let sign: Float = (hash >> 32) & 1 == 0 ? 1 : -1
            vector[index] += sign * (1 + log(count))
        }
        return normalized(vector)
    }

    /// Lowercased runs of letters and digits.
    static func words(_ text: String) -> [String] {
        text.lowercased().split { !($0.isLetter || $0.isNumber) }.map(String.init)
    }
}
