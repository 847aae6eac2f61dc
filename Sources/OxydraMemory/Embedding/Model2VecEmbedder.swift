import OxydraCore
@_spi(_Unicode) import Swift

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
        try self.init(
            tokenizer: tokenizerData, tokenizerPath: tokenizerPath, weights: weights, weightsPath: weightsPath,
            name: directory.split(separator: "/").last.map(String.init) ?? "model")
    }

    /// Loads a model from the two files' bytes. A damaged or hostile file is an error naming what is
    /// wrong — every header field, shape, offset and token id is checked before it is used.
    public init(tokenizer tokenizerData: Data, tokenizerPath: String, weights: Data, weightsPath: String, name: String)
        throws(MemoryError)
    {
        let tokenizer: JSONValue
        do {
            tokenizer = try JSONValue(parsing: tokenizerData)
        } catch {
            throw .serialization("\(tokenizerPath) is not JSON: \(error)")
        }
        guard let vocab = tokenizer["model"]?["vocab"]?.objectValue else {
            throw .serialization("\(tokenizerPath) has no model.vocab (a WordPiece tokenizer is expected)")
        }
        let (rows, columns, values) = try Self.readSafetensors(weights, path: weightsPath)
        var vocabulary: [String: Int] = [:]
        for (token, index) in vocab {
            guard let index = index.intValue, index >= 0, index < rows else {
                throw .serialization(
                    "\(tokenizerPath): token \(token.debugDescription) has id \(index.compactText), outside the \(rows) rows of \(weightsPath)"
                )
            }
            vocabulary[token] = index
        }
        let unknownToken = tokenizer["model"]?["unk_token"]?.stringValue ?? "[UNK]"
        self.vocabulary = vocabulary
        self.unknown = vocabulary[unknownToken]
        self.lowercase = tokenizer["normalizer"]?["lowercase"] != .bool(false)
        dimension = columns
        matrix = values
        id = "model2vec:" + name + ":\(columns)"
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

    /// BERT's accent stripping: canonical decomposition (NFD), then combining marks dropped.
    /// The decomposition is the standard library's own (the `_Unicode` SPI its string comparison
    /// and Regex use): Foundation's `decomposedStringWithCanonicalMapping` would pull ICU into the guest.
    static func stripAccents(_ text: String) -> String {
        var scalars = String.UnicodeScalarView()
        for scalar in text._nfd where scalar.properties.generalCategory != .nonspacingMark {
            scalars.append(scalar)
        }
        return String(scalars)
    }

    /// Largest model accepted (rows × columns values): 64 Mi values, 256 MiB as Float32.
    static let maxValues = 64 << 20

    /// The first tensor of a safetensors file: (rows, columns, float32 values).
    static func readSafetensors(_ whole: Data, path: String) throws(MemoryError) -> (Int, Int, [Float]) {
        let data = Data(whole)  // indices from 0
        guard data.count >= 8 else { throw .serialization("\(path) is too short to be a safetensors file") }
        let rawLength = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * $1.offset) }
        guard rawLength > 0, rawLength <= UInt64(data.count - 8) else {
            throw .serialization(
                "\(path) has an invalid safetensors header length (\(rawLength) bytes in a \(data.count)-byte file)")
        }
        let headerLength = Int(rawLength)
        let header: JSONValue
        do {
            header = try JSONValue(parsing: Data(data[8..<(8 + headerLength)]))
        } catch {
            throw .serialization("\(path) has an invalid safetensors header: \(error)")
        }
        guard
            let (name, tensor) = header.objectValue?.sorted(by: { $0.key < $1.key }).first(where: {
                $0.key != "__metadata__"
            })
        else { throw .serialization("\(path) has no tensor") }
        guard let shapeItems = tensor["shape"]?.arrayValue, shapeItems.count == 2,
            let rows = shapeItems[0].intValue, let columns = shapeItems[1].intValue, rows > 0, columns > 0
        else { throw .serialization("\(path): tensor `\(name)` is not a 2-dimensional tensor of positive shape") }
        let (count, overflow) = rows.multipliedReportingOverflow(by: columns)
        guard !overflow, count <= maxValues else {
            throw .serialization("\(path): tensor `\(name)` of shape [\(rows), \(columns)] is too large")
        }
        guard let dtype = tensor["dtype"]?.stringValue else {
            throw .serialization("\(path): tensor `\(name)` has no dtype")
        }
        let width = dtype == "F32" ? 4 : dtype == "F16" ? 2 : 0
        guard width > 0 else {
            throw .serialization("\(path): tensor `\(name)` has dtype \(dtype); F32 or F16 is supported")
        }
        guard let offsetItems = tensor["data_offsets"]?.arrayValue, offsetItems.count == 2,
            let first = offsetItems[0].intValue, let last = offsetItems[1].intValue,
            first >= 0, first <= last, last <= data.count - 8 - headerLength
        else {
            throw .serialization("\(path): tensor `\(name)` has data_offsets outside the file")
        }
        let start = 8 + headerLength + first
        let end = 8 + headerLength + last
        guard end - start == count * width else {
            throw .serialization(
                "\(path): tensor `\(name)` data (\(end - start) bytes) does not match its shape [\(rows), \(columns)] of \(dtype)"
            )
        }
        var values = [Float](repeating: 0, count: count)
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
        guard values.allSatisfy(\.isFinite) else {
            throw .serialization("\(path): tensor `\(name)` holds values that are not finite numbers")
        }
        return (rows, columns, values)
    }
}
