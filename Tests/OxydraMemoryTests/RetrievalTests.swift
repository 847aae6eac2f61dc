import OxydraCore
import OxydraTesting
import Testing

@testable import OxydraMemory

@Suite("Retrieval")
struct RetrievalTests {
    @Test(arguments: [
        #""unterminated"#, "a* OR b*", "NEAR(foo bar)", "-excluded -", "text:secret", "(((", "\"\"\"", "AND OR NOT",
        "🙂 ***",
        "DROP TABLE chunks; --", "",
    ])
    func hostileQueriesAreJustWords(_ query: String) async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let store = try fixture.open()
        _ = try await store.append(
            [.user("the unterminated string broke the NEAR operator test; text secret excluded")], to: "s")
        let hits = try await store.search(query, in: "s", limit: 3)
        #expect(hits.count <= 1)
        #expect(try await store.restore("s").count == 1)
    }

    @Test func ftsQueryQuotesEveryWord() {
        #expect(SQLiteMemoryStore.ftsQuery(#"say "hi" NEAR(x*) -y"#) == #""say" OR "hi" OR "NEAR" OR "x" OR "y""#)
        #expect(SQLiteMemoryStore.ftsQuery("*** ---") == nil)
    }

    /// A corpus where keyword ranking alone and vector ranking alone each put the wrong chunk
    /// first, and the weighted combination finds the right one.
    @Test func hybridBeatsEitherSideAlone() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let store = try fixture.open()
        // "kafka" is rare (keywords love the short exact match), "consumer" and "lag" are common
        // (vectors, which have no inverse document frequency, love the doc with both).
        let target = "kafka consumer lagging"
        let keywordBait = "kafka"
        let vectorBait = "consumer lag"
        for text in [
            target, "kafka consumers lagging behind", keywordBait, "consumer lag consumer lag dashboard", vectorBait,
            "consumer survey results", "consumer electronics", "consumer prices", "lag in the video call",
            "network lag",
            "lag spikes", "lunch menu for friday", "holiday calendar",
        ] {
            _ = try await store.append([.user(text)], to: "s")
        }
        let query = "kafka consumer lag"
        let keywordOnly = try await store.retrieve(
            query, scopes: ["s"], limit: 3, weights: RetrievalSettings(topK: 3, vectorWeight: 0, keywordWeight: 1))
        let vectorOnly = try await store.retrieve(
            query, scopes: ["s"], limit: 3, weights: RetrievalSettings(topK: 3, vectorWeight: 1, keywordWeight: 0))
        let hybrid = try await store.retrieve(query, scopes: ["s"], limit: 3)
        #expect(keywordOnly.first?.text == keywordBait, "keyword ranking: \(keywordOnly.map(\.text))")
        #expect(vectorOnly.first?.text == vectorBait, "vector ranking: \(vectorOnly.map(\.text))")
        #expect(hybrid.first?.text == target, "hybrid ranking: \(hybrid.map { ($0.text, $0.score) })")
    }

    @Test func tiesAreBrokenByRecencyAndScopesAreRespected() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let store = try fixture.open()
        _ = try await store.append([.user("identical text")], to: "s")
        _ = try await store.append([.user("identical text")], to: "s")
        _ = try await store.append([.user("identical text in another session")], to: "other")
        let hits = try await store.search("identical text", in: "s", limit: 5)
        #expect(hits.map(\.sequence) == [2, 1])
        let note = try await store.saveNote("identical text noted")
        let withNotes = try await store.search("identical text noted", in: "s", limit: 5)
        #expect(withNotes.first?.chunkID.contains(note.id) == true)
        #expect(!withNotes.contains { $0.text.contains("another session") })
    }

    @Test func longMessagesAreChunkedWithOverlap() {
        let text = (0..<300).map { "word\($0)" }.joined(separator: "   \n")
        let chunks = Chunker.chunks(text)
        #expect(chunks.count > 1)
        #expect(chunks.allSatisfy { $0.count <= 640 })
        #expect(!chunks[0].contains("  "))
        #expect(chunks[1].hasPrefix(String(Chunker.normalize(text).dropFirst(640 - 96).prefix(10)).trimmed))
    }

    @Test func changingTheEmbedderReembedsInsteadOfMixing() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        _ = try await fixture.open().append([.user("alpha beta gamma")], to: "s")
        let other = try fixture.open(embedder: ReversedEmbedder())
        let hits = try await other.search("alpha beta gamma", in: "s", limit: 1)
        #expect(hits.count == 1)
        let embedders = try await other.pool.read { db in
            try db.strings("SELECT DISTINCT embedder FROM chunk_vectors")
        }
        #expect(embedders == ["reversed-test"])
    }
}

/// A second embedder with a different id, to check re-embedding.
struct ReversedEmbedder: Embedder {
    let id = "reversed-test"
    let dimension = 256
    func embed(_ text: String) -> [Float] { HashingEmbedder().embed(String(text.reversed())) }
}

@Suite("Embedders")
struct EmbedderTests {
    func cosine(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }

    @Test func hashingIsDeterministicAndLexical() {
        let first = HashingEmbedder().embed("Deploy the payment service")
        #expect(first == HashingEmbedder().embed("Deploy the payment service"))
        #expect(abs(cosine(first, first) - 1) < 1e-5)
        let variant = HashingEmbedder().embed("deployment of the payments service")
        let unrelated = HashingEmbedder().embed("grandma's apple pie recipe")
        #expect(cosine(first, variant) > 0.4)
        #expect(cosine(first, variant) > cosine(first, unrelated) + 0.25)
        #expect(HashingEmbedder().embed("").allSatisfy { $0 == 0 })
        // The published FNV-1a 64 of "oxydra": the embedding does not depend on the process.
        #expect(StableHash.fnv1a("oxydra".utf8) == 0xf7fb_d950_781e_6112)
    }

    /// A tiny model2vec model written in the real file formats: the loader tokenises with
    /// WordPiece and averages the token rows.
    @Test func model2vecLoadsAndEmbeds() throws {
        let directory = try TemporaryDirectory(prefix: "oxydra-m2v")
        defer { directory.remove() }
        let vocab = ["[PAD]": 0, "[UNK]": 1, "cat": 2, "dog": 3, "##s": 4, "run": 5, "car": 6]
        let tokenizer: JSONValue = [
            "normalizer": ["type": "BertNormalizer", "lowercase": true],
            "model": ["type": "WordPiece", "unk_token": "[UNK]", "vocab": .object(vocab.mapValues { .integer($0) })],
        ]
        try directory.write(tokenizer.compactText, to: "potion-test/tokenizer.json")
        let rows: [[Float]] = [
            [0, 0, 0], [0, 0, 1], [1, 0, 0], [0.9, 0.1, 0], [0, 0.2, 0], [0, 1, 0], [0.1, 0.9, 0],
        ]
        var payload = Data()
        for value in rows.flatMap({ $0 }) {
            withUnsafeBytes(of: value.bitPattern.littleEndian) { payload.append(contentsOf: $0) }
        }
        let header = #"{"embeddings":{"dtype":"F32","shape":[7,3],"data_offsets":[0,\#(payload.count)]}}"#
        var file = Data()
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { file.append(contentsOf: $0) }
        file.append(Data(header.utf8))
        file.append(payload)
        #expect(
            FileManager.default.createFile(atPath: directory.path + "/potion-test/model.safetensors", contents: file))

        let model = try Model2VecEmbedder(directory: directory.path + "/potion-test")
        #expect(model.dimension == 3 && model.id == "model2vec:potion-test:3")
        #expect(model.tokens("Cats RUN!") == [2, 4, 5, 1])
        let cats = model.embed("cats")
        let dogs = model.embed("dogs")
        let cars = model.embed("cars")
        #expect(cosine(cats, dogs) > cosine(cats, cars))
        #expect(cats == model.embed("cats"))

        #expect(throws: MemoryError.self) { try Model2VecEmbedder(directory: directory.path + "/missing") }
        try directory.write("{}", to: "broken/tokenizer.json")
        try directory.write("x", to: "broken/model.safetensors")
        #expect {
            try Model2VecEmbedder(directory: directory.path + "/broken")
        } throws: { error in
            "\(error)".contains("tokenizer.json has no model.vocab")
        }
    }
}
