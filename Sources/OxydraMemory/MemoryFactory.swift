import OxydraCore

/// Opens the memory store for a user's guest from `[memory]`.
public enum MemoryFactory {
    /// The SQLite store at `memory.db_path` (relative to `workspaceRoot`), indexing only when
    /// `memory.enabled`. `memory.remote_url` is refused with an error that says it is not supported yet.
    public static func open(_ config: MemoryConfig, workspaceRoot: String, user: UserID) throws(MemoryError)
        -> SQLiteMemoryStore
    {
        if let remote = config.remoteURL?.trimmed, !remote.isEmpty {
            throw .unsupported(
                "memory.remote_url is set, but a remote memory store is not supported yet; remove memory.remote_url to use the "
                    + "local database at \(config.dbPath)")
        }
        let path = config.dbPath.hasPrefix("/") ? config.dbPath : workspaceRoot + "/" + config.dbPath
        let embedder: any Embedder
        switch config.embedder {
        case .hashing:
            embedder = HashingEmbedder()
        case .model2vec:
            guard let directory = config.model2vecPath else {
                throw .unsupported("memory.embedder = \"model2vec\" needs memory.model2vec_path")
            }
            embedder = try Model2VecEmbedder(
                directory: directory.hasPrefix("/") ? directory : workspaceRoot + "/" + directory)
        }
        return try SQLiteMemoryStore(
            path: path, user: user, embedder: embedder, indexing: config.enabled,
            retrieval: RetrievalSettings(config.retrieval), durability: config.durability)
    }
}
