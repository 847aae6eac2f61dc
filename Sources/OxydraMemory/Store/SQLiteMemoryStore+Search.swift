import OxydraCore

/// Hybrid retrieval: FTS5 keyword ranking (bm25) and cosine similarity of vectors, each
/// min-max normalised over the candidates and combined with the configured weights.
extension SQLiteMemoryStore {
    public func search(_ query: String, in session: SessionID, limit: Int) async throws(MemoryError) -> [MemoryHit] {
        try await retrieve(query, scopes: [session.rawValue, notesScope], limit: limit).map {
            MemoryHit(chunkID: $0.chunkID, text: $0.text, score: $0.score, sequence: $0.sequence)
        }
    }

    /// The best chunks for `query` in `scopes` (session ids and/or ``notesScope``), at most `limit`.
    /// Ties are broken by recency.
    public func retrieve(_ query: String, scopes: [String], limit: Int, weights: RetrievalSettings? = nil)
        async throws(MemoryError) -> [RetrievedChunk]
    {
        let text = query.trimmed
        guard !text.isEmpty, limit > 0, indexing else { return [] }
        let settings = weights ?? retrieval
        let candidates = max(limit * 4, 20)
        let vector = embedder.embed(text)

        var loaded: [ScopeVectors] = []
        if settings.vectorWeight > 0 { for scope in scopes { loaded.append(try await vectors(for: scope)) } }
        // The keyword query runs on a database reader while the vectors are scored here.
        async let keywordRows = keywordCandidates(
            text, scopes: scopes, limit: candidates, enabled: settings.keywordWeight > 0)
        var vectorScores: [Int64: Double] = [:]
        if settings.vectorWeight > 0 {
            var ranked: [(Int64, Float)] = []
            for scope in loaded { ranked += scope.top(vector, count: candidates) }
            ranked.sort { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 > $1.0 }
            for (rowid, score) in ranked.prefix(candidates) { vectorScores[rowid] = Double(score) }
        }
        var keywordScores: [Int64: Double] = [:]
        let keywordResult: [(Int64, Double)]
        do {
            keywordResult = try await keywordRows
        } catch let error as MemoryError {
            throw error
        } catch {
            throw .query("\(error)")
        }
        for (rowid, score) in keywordResult { keywordScores[rowid] = score }

        // Every candidate gets its true vector score, so keyword-only hits are not penalised for
        // missing from the vector shortlist.
        let union = Set(vectorScores.keys).union(keywordScores.keys)
        if settings.vectorWeight > 0 {
            for rowid in union where vectorScores[rowid] == nil {
                for scope in loaded {
                    if let index = scope.rowids.firstIndex(of: rowid) {
                        let dimension = vector.count
                        var sum: Float = 0
                        for column in 0..<dimension {
                            sum += vector[column] * Float(scope.values[index * dimension + column])
                        }
                        vectorScores[rowid] = Double(sum * scope.scales[index])
                        break
                    }
                }
            }
        }
        return try await finish(
            union: union, vectorScores: vectorScores, keywordScores: keywordScores, settings: settings, limit: limit)
    }

    /// FTS5 candidates as (rowid, −bm25).
    private func keywordCandidates(_ text: String, scopes: [String], limit: Int, enabled: Bool)
        async throws(MemoryError) -> [(Int64, Double)]
    {
        guard enabled, let match = Self.ftsQuery(text) else { return [] }
        let placeholders = scopes.map { _ in "?" }.joined(separator: ", ")
        return try await read { db in
            try db.rows(
                """
                SELECT chunks.id, bm25(chunks_fts) FROM chunks_fts JOIN chunks ON chunks.id = chunks_fts.rowid
                WHERE chunks_fts MATCH ? AND chunks.scope IN (\(placeholders)) ORDER BY bm25(chunks_fts) LIMIT ?
                """, [match] + scopes + [limit] as [any SQLiteBindable]
            )
            .map { row throws -> (Int64, Double) in (try row[0], -(try row[1] as Double)) }
        }
    }

    private func finish(
        union: Set<Int64>, vectorScores: [Int64: Double], keywordScores: [Int64: Double], settings: RetrievalSettings,
        limit: Int
    ) async throws(MemoryError) -> [RetrievedChunk] {
        let normalizedVector = Self.minMax(vectorScores, over: union)
        let normalizedKeyword = Self.minMax(keywordScores, over: union)
        let ranked = union.map { rowid in
            (
                rowid,
                settings.vectorWeight * (normalizedVector[rowid] ?? 0) + settings.keywordWeight
                    * (normalizedKeyword[rowid] ?? 0)
            )
        }
        .sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 > $1.0 }
        .prefix(limit)

        let ids = ranked.map(\.0)
        guard !ids.isEmpty else { return [] }
        let rows = try await read { db in
            try db.rows(
                "SELECT id, chunk_id, text, source, note_id, sequence FROM chunks WHERE id IN (\(ids.map { _ in "?" }.joined(separator: ", ")))",
                ids
            )
            .map { row throws -> (Int64, String, String, String, String?, Int?) in
                (try row[0], try row[1], try row[2], try row[3], try row[4], try row[5])
            }
        }
        let byID = Dictionary(rows.map { ($0.0, $0) }, uniquingKeysWith: { first, _ in first })
        return ranked.compactMap { rowid, score in
            guard let row = byID[rowid] else { return nil }
            return RetrievedChunk(
                chunkID: row.1, text: row.2, score: score, vectorScore: vectorScores[rowid] ?? 0,
                keywordScore: keywordScores[rowid] ?? 0,
                source: row.3, noteID: row.4, sequence: row.5)
        }
    }

    /// Each side scaled to [0, 1] over the candidates; a side with no spread counts 1 for its hits.
    static func minMax(_ scores: [Int64: Double], over candidates: Set<Int64>) -> [Int64: Double] {
        let values = candidates.compactMap { scores[$0] }
        guard let low = values.min(), let high = values.max() else { return [:] }
        let range = high - low
        var result: [Int64: Double] = [:]
        for rowid in candidates {
            guard let score = scores[rowid] else { continue }
            result[rowid] = range <= 1e-9 ? 1 : (score - low) / range
        }
        return result
    }

    /// An FTS5 query that cannot be misread as syntax: each word of the text quoted, OR-ed.
    /// Quotes, `*`, `NEAR`, `-`, parentheses and column filters in user text are just words.
    static func ftsQuery(_ text: String) -> String? {
        let words = text.split { !($0.isLetter || $0.isNumber) }.prefix(32).map {
            "\"\($0.replacing("\"", with: "\"\""))\""
        }
        return words.isEmpty ? nil : words.joined(separator: " OR ")
    }

    /// The scope's vectors, loaded on first use; chunks embedded by another embedder (or not at
    /// all) are re-embedded and stored first, so vectors of different embedders never mix.
    func vectors(for scope: String) async throws(MemoryError) -> ScopeVectors {
        if let loaded = vectors.scope(scope) { return loaded }
        let embedderID = embedder.id
        let stale: [(Int64, String)] = try await read { db in
            try db.rows(
                """
                SELECT chunks.id, chunks.text FROM chunks LEFT JOIN chunk_vectors ON chunk_vectors.chunk_rowid = chunks.id
                WHERE chunks.scope = ? AND (chunk_vectors.embedder IS NULL OR chunk_vectors.embedder != ?)
                """, [scope, embedderID]
            ).map { row throws in (try row[0], try row[1]) }
        }
        if !stale.isEmpty {
            let refreshed = stale.map { ($0.0, embedder.embed($0.1)) }
            let dimension = embedder.dimension
            try await write { db in
                for (rowid, vector) in refreshed {
                    try db.execute(
                        """
                        INSERT INTO chunk_vectors (chunk_rowid, embedder, dimension, vector) VALUES (?, ?, ?, ?)
                        ON CONFLICT(chunk_rowid) DO UPDATE SET embedder = excluded.embedder, dimension = excluded.dimension, vector = excluded.vector
                        """, [rowid, embedderID, dimension, VectorBlob.encode(vector)])
                }
            }
        }
        let expected = embedder.dimension
        let loaded: ScopeVectors = try await read { db in
            var result = ScopeVectors(dimension: expected)
            try db.run(
                """
                SELECT chunk_vectors.chunk_rowid, chunk_vectors.vector FROM chunk_vectors JOIN chunks ON chunks.id = chunk_vectors.chunk_rowid
                WHERE chunks.scope = ? AND chunk_vectors.embedder = ? ORDER BY chunks.id
                """, [scope, embedderID]
            ) { row throws(SQLiteError) in
                // A blob of the wrong length or with non-finite values (a damaged or hand-edited
                // database) is left out of the vector side; full-text search still finds its chunk.
                guard let vector = VectorBlob.decode(try row[1], dimension: expected) else { return }
                result.append(rowid: try row[0], vector: vector)
            }
            return result
        }
        vectors.set(scope, loaded)
        return loaded
    }

    /// Re-embeds every chunk with the current embedder (after changing embedders).
    public func reembedAll() async throws(MemoryError) {
        let scopes: [String] = try await read { db in try db.strings("SELECT DISTINCT scope FROM chunks")
        }
        for scope in scopes {
            vectors.invalidate(scope)
            _ = try await vectors(for: scope)
        }
    }

    /// Bytes held by loaded vectors (for the memory benchmark).
    public var vectorIndexBytes: Int { vectors.residentBytes }
}
