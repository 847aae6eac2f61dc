import Foundation
import OxydraCore

/// A model2vec static-embedding model loaded from a local directory: `tokenizer.json` (a
/// WordPiece vocabulary, as the `minishlab/potion-*` models ship) and `model.safetensors` (one
/// float32 or float16 matrix, one row per token). A text's vector is the mean of its tokens' rows,
/// L2-normalised — semantic similarity at the cost of a table lookup.
public struct Model2VecEmbedder: Embedder {
    public let id: String
    public let dimension: Int
    private let vocabulary: [String: Int]
    private let matrix: [Float]
    private let unknown: Int?
    private let lowercase: Bool
    private let maxCharactersPerWord = 100

    /// Loads `directory`; errors name the file and what is wrong with it.
    public init(directory: String) throws(MemoryError) {
        let tokenizerPath = directory + "/tokenizer.json"
        let weightsPath = directory + "/model.safetensors"
        guard let tokenizerData = FileManager.default.contents(atPath: tokenizerPath) else {
            throw .connection("model2vec tokenizer not found at \(tokenizerPath)")
        }
        guard let weights = FileManager.default.contents(atPath: weightsPath) else {
            throw .connection("model2vec weights not found at \(weightsPath)")
        }
        let tokenizer: JSONValue
        do {
            tokenizer = try JSONValue(parsing: tokenizerData)
        } catch {
            throw .serialization("\(tokenizerPath) is not JSON: \(error)")
        }
        guard let vocab = tokenizer["model"]?["vocab"]?.objectValue else {
            throw .serialization("\(tokenizerPath) has no model.vocab (a WordPiece tokenizer is expected)")
        }
        var vocabulary: [String: Int] = [:]
        for (token, index) in vocab { if let index = index.intValue { vocabulary[token] = index } }
        let unknownToken = tokenizer["model"]?["unk_token"]?.stringValue ?? "[UNK]"
        self.vocabulary = vocabulary
        self.unknown = vocabulary[unknownToken]
        self.lowercase = tokenizer["normalizer"]?["lowercase"] != .bool(false)
        let (rows, columns, values) = try Self.readSafetensors(weights, path: weightsPath)
        guard rows >= vocabulary.count else {
            throw .serialization("\(weightsPath) has \(rows) rows but the vocabulary has \(vocabulary.count) tokens")
        }
        dimension = columns
        matrix = values
        id = "model2vec:" + (directory.split(separator: "/").last.map(String.init) ?? "model") + ":\(columns)"
    }

    public func embed(_ text: String) -> [Float] {
        var sum = [Float](repeating: 0, count: dimension)
        var count = 0
        for token in tokens(text) {
            let base = token * dimension
            for column in 0..<dimension { sum[column] += matrix[base + column] }
            count += 1
        }
        guard count > 0 else { return sum }
        return normalized(sum)
    }

    /// BERT-style pre-tokenisation (whitespace and punctuation), then greedy longest-match
    /// WordPiece with `##` continuations. Unknown words map to `[UNK]` (or are skipped).
    func tokens(_ text: String) -> [Int] {
        let source = lowercase ? Self.stripAccents(text.lowercased()) : text
        var words: [String] = []
        var current = ""
        for character in source {
            if character.isWhitespace {
                if !current.isEmpty { words.append(current) }
                current = ""
            } else if character.isPunctuation || character.isSymbol {
                if !current.isEmpty { words.append(current) }
                words.append(String(character))
                current = ""
            } else {
                current.append(character)
            }
        }
        if !current.isEmpty { words.append(current) }
        var ids: [Int] = []
        for word in words {
            let characters = Array(word)
            guard characters.count <= maxCharactersPerWord else {
                if let unknown { ids.append(unknown) }
                continue
            }
            var start = 0
            var pieces: [Int] = []
            var failed = false
            while start < characters.count {
                var end = characters.count
                var match: Int?
                while start < end {
                    let piece = (start > 0 ? "##" : "") + String(characters[start..<end])
                    if let id = vocabulary[piece] {
                        match = id
                        break
                    }
                    end -= 1
                }
                guard let match else {
                    failed = true
                    break
                }
                pieces.append(match)
                start = end
            }
            if failed {
                if let unknown { ids.append(unknown) }
            } else {
                ids += pieces
            }
        }
        return ids
    }

    static func stripAccents(_ text: String) -> String {
        String(
            String.UnicodeScalarView(
                text.decomposedStringWithCanonicalMapping.unicodeScalars.filter {
                    $0.properties.generalCategory != .nonspacingMark
                }))
    }

    /// The first tensor of a safetensors file: (rows, columns, float32 values).
    static func readSafetensors(_ data: Data, path: String) throws(MemoryError) -> (Int, Int, [Float]) {
        guard data.count >= 8 else { throw .serialization("\(path) is too short to be a safetensors file") }
        let headerLength = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        guard headerLength > 0, 8 + headerLength <= data.count else {
            throw .serialization("\(path) has an invalid safetensors header length")
        }
        let header: JSONValue
        do {
            header = try JSONValue(parsing: Data(data[8..<(8 + headerLength)]))
        } catch {
            throw .serialization("\(path) has an invalid safetensors header: \(error)")
        }
        guard let (name, tensor) = header.objectValue?.first(where: { $0.key != "__metadata__" }),
            let shape = tensor["shape"]?.arrayValue?.compactMap(\.intValue), shape.count == 2,
            let dtype = tensor["dtype"]?.stringValue,
            let offsets = tensor["data_offsets"]?.arrayValue?.compactMap(\.intValue), offsets.count == 2
        else { throw .serialization("\(path) has no 2-dimensional tensor") }
        let start = 8 + headerLength + offsets[0]
        let end = 8 + headerLength + offsets[1]
        let width = dtype == "F32" ? 4 : dtype == "F16" ? 2 : 0
        guard width > 0 else {
            throw .serialization("\(path): tensor `\(name)` has dtype \(dtype); F32 or F16 is supported")
        }
        guard end <= data.count, end - start == shape[0] * shape[1] * width else {
            throw .serialization("\(path): tensor `\(name)` data does not match its shape \(shape)")
        }
        var values = [Float](repeating: 0, count: shape[0] * shape[1])
        data[start..<end].withUnsafeBytes { raw in
            for index in 0..<values.count {
                if width == 4 {
                    values[index] = Float(
                        bitPattern: raw.loadUnaligned(fromByteOffset: index * 4, as: UInt32.self).littleEndian)
                } else {
                    values[index] = Float(
                        Float16(bitPattern: raw.loadUnaligned(fromByteOffset: index * 2, as: UInt16.self).littleEndian))
                }
            }
        }
        return (shape[0], shape[1], values)
    }
}
