import Foundation
import OxydraCore
import OxydraTesting
import Testing

@testable import OxydraMemory

/// Files we did not write — a model directory, the vectors in a database — are parsed with
/// raw-pointer reads. Damaged or hostile inputs must be errors or be left out, never a crash or an
/// out-of-bounds read. Seeded, so a failure replays; `OXYDRA_FUZZ_CASES` runs more.
@Suite("Hostile model and vector files")
struct HostileFileFuzzTests {
    static let cases = Int(ProcessInfo.processInfo.environment["OXYDRA_FUZZ_CASES"] ?? "") ?? 3000

    typealias Generator = SeededGenerator

    /// A valid tiny model: (tokenizer.json, model.safetensors).
    static func model(rows: Int = 6, columns: Int = 4, dtype: String = "F32", header: String? = nil) -> (Data, Data) {
        let tokens = ["[UNK]", "cat", "dog", "##s", "run", "car"]
        let vocab = Dictionary(
            uniqueKeysWithValues: tokens.prefix(rows).enumerated().map { ($1, JSONValue.integer($0)) })
        let tokenizer: JSONValue = ["model": ["type": "WordPiece", "unk_token": "[UNK]", "vocab": .object(vocab)]]
        let width = dtype == "F16" ? 2 : 4
        var payload = Data()
        for index in 0..<(rows * columns) {
            let value = Float(index % 7) / 7 - 0.4
            if width == 4 {
                withUnsafeBytes(of: value.bitPattern.littleEndian) { payload.append(contentsOf: $0) }
            } else {
                withUnsafeBytes(of: Float16(value).bitPattern.littleEndian) { payload.append(contentsOf: $0) }
            }
        }
        let text =
            header
            ?? #"{"__metadata__":{"format":"pt"},"embeddings":{"dtype":"\#(dtype)","shape":[\#(rows),\#(columns)],"data_offsets":[0,\#(payload.count)]}}"#
        var file = Data()
        withUnsafeBytes(of: UInt64(text.utf8.count).littleEndian) { file.append(contentsOf: $0) }
        file.append(Data(text.utf8))
        file.append(payload)
        return (Data(tokenizer.compactText.utf8), file)
    }

    static func load(_ tokenizer: Data, _ weights: Data) throws(MemoryError) -> Model2VecEmbedder {
        try Model2VecEmbedder(
            tokenizer: tokenizer, tokenizerPath: "tokenizer.json", weights: weights, weightsPath: "model.safetensors",
            name: "fuzz")
    }

    @Test func namedDamageIsReportedPrecisely() throws {
        let (tokenizer, weights) = Self.model()
        _ = try Self.load(tokenizer, weights)
        func message(_ tokenizer: Data, _ weights: Data) -> String {
            do {
                _ = try Self.load(tokenizer, weights)
                return "loaded"
            } catch {
                return "\(error)"
            }
        }
        var hugeLength = Data(weights)
        hugeLength.replaceSubrange(0..<8, with: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F])
        #expect(message(tokenizer, hugeLength).contains("invalid safetensors header length"))
        let cases: [(String, String)] = [
            (#"{"e":{"dtype":"F32","shape":[6,4],"data_offsets":[96,0]}}"#, "data_offsets outside the file"),
            (#"{"e":{"dtype":"F32","shape":[6,4],"data_offsets":[-4,92]}}"#, "data_offsets outside the file"),
            (#"{"e":{"dtype":"F32","shape":[6,4],"data_offsets":[0,100000]}}"#, "data_offsets outside the file"),
            (#"{"e":{"dtype":"F32","shape":[-6,-4],"data_offsets":[0,96]}}"#, "positive shape"),
            (#"{"e":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,96]}}"#, "too large"),
            (#"{"e":{"dtype":"F32","shape":[6,5],"data_offsets":[0,96]}}"#, "does not match its shape"),
            (#"{"e":{"dtype":"I8","shape":[6,4],"data_offsets":[0,96]}}"#, "F32 or F16 is supported"),
            (#"{"e":{"dtype":"F32","shape":[6],"data_offsets":[0,96]}}"#, "2-dimensional"),
            (#"{"e":{"shape":[6,4],"data_offsets":[0,96]}}"#, "has no dtype"),
            (#"{"__metadata__":{}}"#, "has no tensor"),
        ]
        for (header, expected) in cases {
            let (_, damaged) = Self.model(header: header)
            #expect(message(tokenizer, damaged).contains(expected), "\(header): \(message(tokenizer, damaged))")
        }
        // A token id past the matrix would read outside it.
        let (_, small) = Self.model(rows: 3)
        #expect(message(tokenizer, small).contains("outside the 3 rows"), "\(message(tokenizer, small))")
        let negative: JSONValue = ["model": ["vocab": ["cat": -1]]]
        #expect(message(Data(negative.compactText.utf8), weights).contains("has id -1"))
        // Not-a-number weights.
        var poisoned = Data(weights)
        poisoned.replaceSubrange((poisoned.count - 4)..<poisoned.count, with: [0x00, 0x00, 0xC0, 0x7F])
        #expect(message(tokenizer, poisoned).contains("not finite"))
    }

    /// Thousands of mutations of a valid model (byte flips, truncation, extension, header rewrites):
    /// each loads and embeds, or fails with a `MemoryError` — the process survives every one.
    @Test func mutatedModelsNeverCrash() throws {
        var random = Generator(seed: 0x0DDB_A11)
        let (tokenizer, weights) = Self.model()
        let (tokenizer16, weights16) = Self.model(dtype: "F16")
        var loaded = 0
        for _ in 0..<Self.cases {
            let useHalf = random.below(4) == 0
            var bytes = [UInt8](useHalf ? weights16 : weights)
            var vocab = [UInt8](useHalf ? tokenizer16 : tokenizer)
            for _ in 0..<(1 + random.below(4)) {
                switch random.below(6) {
                case 0 where !bytes.isEmpty: bytes[random.below(bytes.count)] = UInt8(truncatingIfNeeded: random.next())
                case 1: bytes = Array(bytes.prefix(random.below(bytes.count + 1)))
                case 2: bytes += (0..<random.below(64)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                case 3 where bytes.count >= 8:
                    // Header length: small, huge, or off by a little.
                    let length = random.pick([0, 1, 7, bytes.count, bytes.count - 8, Int.max >> 1, random.below(200)])
                    withUnsafeBytes(of: UInt64(truncatingIfNeeded: length).littleEndian) {
                        bytes.replaceSubrange(0..<8, with: $0)
                    }
                case 4 where !vocab.isEmpty:
                    vocab[random.below(vocab.count)] = random.pick(Array("0123456789-[]{}\":,".utf8))
                default:
                    // A plausible header with hostile numbers.
                    let rows = random.pick([-1, 0, 1, 6, 7, 1 << 40])
                    let columns = random.pick([-3, 0, 1, 4, 1 << 31])
                    let first = random.pick([-8, 0, 4, 96, 1 << 40])
                    let last = random.pick([0, 48, 96, 100, 1 << 40])
                    let dtype = random.pick(["F32", "F16", "BF16", ""])
                    bytes = [UInt8](
                        Self.model(
                            header:
                                #"{"t":{"dtype":"\#(dtype)","shape":[\#(rows),\#(columns)],"data_offsets":[\#(first),\#(last)]}}"#
                        ).1)
                }
            }
            do {
                let model = try Self.load(Data(vocab), Data(bytes))
                let vector = model.embed("cats run, dogs car!")
                #expect(vector.count == model.dimension)
                loaded += 1
            } catch {
                #expect(!"\(error)".isEmpty)
            }
        }
        #expect(loaded > 0, "no mutation loaded: the generator is not exercising the embedding path")
    }

    /// Vector blobs of any length and content: wrong lengths and non-finite values are left out,
    /// the rest are scored, and scoring never reads past a row.
    @Test func damagedVectorBlobsAreLeftOut() {
        var random = Generator(seed: 0xB10B)
        let dimension = 8
        for _ in 0..<Self.cases {
            var vectors = ScopeVectors(dimension: dimension)
            var expectedRows = 0
            for rowid in 0..<Int64(1 + random.below(6)) {
                let length = random.pick([
                    0, 3, 4 * dimension - 1, 4 * dimension, 4 * dimension, 4 * dimension + 4, 400,
                ])
                let blob = Data((0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) })
                guard let vector = VectorBlob.decode(blob, dimension: dimension) else {
                    // Refused only for a wrong length or a value that is not a finite number.
                    let finite =
                        blob.count == 4 * dimension
                        && stride(from: 0, to: blob.count, by: 4).allSatisfy {
                            Float(bitPattern: blob[$0..<($0 + 4)].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
                                .isFinite
                        }
                    #expect(!finite, "a valid blob of \(length) bytes was refused")
                    continue
                }
                #expect(vector.count == dimension && vector.allSatisfy(\.isFinite))
                let added = vectors.append(rowid: rowid, vector: vector)
                #expect(added)
                expectedRows += 1
            }
            let short = vectors.append(rowid: 99, vector: [1, 2, 3])
            let poisoned = vectors.append(rowid: 99, vector: [Float](repeating: .nan, count: dimension))
            #expect(!short && !poisoned)
            let query = (0..<dimension).map { _ in Float(random.below(100)) / 100 }
            #expect(vectors.scores(query).count == expectedRows)
            #expect(vectors.scores([1, 2]).allSatisfy { $0 == 0 })
        }
    }
}
