import OxydraCore
import OxydraTools

/// `memory_search`, `memory_save`, `memory_update`, `memory_delete`, `scratchpad_read`,
/// `scratchpad_write`, `scratchpad_clear` — registered when `memory.enabled = true`.
public enum MemoryTools {
    public static func all(store: SQLiteMemoryStore) -> [any Tool] {
        [
            MemorySearch(store: store), MemorySave(store: store), MemoryUpdate(store: store),
            MemoryDelete(store: store),
            ScratchpadRead(store: store), ScratchpadWrite(store: store), ScratchpadClear(store: store),
        ]
    }

    static func session(_ context: ToolContext, tool: String) throws(ToolError) -> SessionID {
        guard let session = context.session else { throw .executionFailed(tool: tool, message: "no session is active") }
        return session
    }

    static func iso(_ date: Date) -> JSONValue { .string(Timestamp.rfc3339(date)) }

    static let tagsSchema = Schema.array(
        "Tags (at most 16, each 1–64 characters)", items: Schema.string("a tag", minLength: 1, maxLength: 64),
        maxItems: 16)
}

struct MemorySearch: TypedTool {
    struct Arguments: Decodable, Sendable {
        var query: String
        var topK: Int?
        var includeConversation: Bool?
        var tags: [String]?
        enum CodingKeys: String, CodingKey {
            case query, tags
            case topK = "top_k"
            case includeConversation = "include_conversation"
        }
    }

    let store: SQLiteMemoryStore
    var safety: SafetyTier { .readOnly }
    var timeout: Duration { .seconds(15) }
    var declaration: ToolDeclaration {
        ToolDeclaration(
            name: "memory_search",
            description:
                "Search the user's saved notes (and, with include_conversation, this conversation) by meaning and keywords.",
            parameters: Schema.object(
                [
                    "query": Schema.string("What to look for", minLength: 1),
                    "top_k": Schema.integer("Number of results (default 5)", minimum: 1, maximum: 20),
                    "include_conversation": Schema.boolean("Also search this session's messages"),
                    "tags": MemoryTools.tagsSchema,
                ], required: ["query"]))
    }

    func run(_ arguments: Arguments, context: ToolContext) async throws -> ToolOutput {
        let limit = arguments.topK ?? 5
        let tags = SQLiteMemoryStore.normalizeTags(arguments.tags ?? [])
        var scopes = [store.notesScope]
        if arguments.includeConversation == true, let session = context.session { scopes.append(session.rawValue) }
        let hits = try await store.retrieve(arguments.query, scopes: scopes, limit: tags.isEmpty ? limit : limit * 4)
        var results: [JSONValue] = []
        var seenNotes: Set<String> = []
        for hit in hits where results.count < limit {
            if let noteID = hit.noteID {
                guard !seenNotes.contains(noteID), let note = try await store.note(noteID) else { continue }
                if !tags.allSatisfy(note.tags.contains) { continue }
                seenNotes.insert(noteID)
                results.append([
                    "note_id": .string(noteID), "text": .string(note.content),
                    "score": .number((hit.score * 1000).rounded() / 1000),
                    "source": "user_memory", "tags": .array(note.tags.map(JSONValue.string)),
                    "created_at": MemoryTools.iso(note.createdAt),
                    "updated_at": MemoryTools.iso(note.updatedAt),
                ])
            } else if tags.isEmpty {
                results.append([
                    "note_id": "", "text": .string(hit.text), "score": .number((hit.score * 1000).rounded() / 1000),
                    "source": "conversation", "tags": [], "sequence": hit.sequence.map { .integer($0) } ?? .null,
                ])
            }
        }
        return ToolOutput(JSONValue.array(results).prettyText)
    }
}

struct MemorySave: TypedTool {
    struct Arguments: Decodable, Sendable {
        var content: String
        var tags: [String]?
    }
    let store: SQLiteMemoryStore
    var safety: SafetyTier { .sideEffecting }
    var timeout: Duration { .seconds(10) }
    var declaration: ToolDeclaration {
        ToolDeclaration(
            name: "memory_save", description: "Save a durable fact or preference for the user, shared by all sessions.",
            parameters: Schema.object(
                [
                    "content": Schema.string("What to remember", minLength: 1, maxLength: 8000),
                    "tags": MemoryTools.tagsSchema,
                ],
                required: ["content"]))
    }
    func run(_ arguments: Arguments, context: ToolContext) async throws -> ToolOutput {
        let note = try await store.saveNote(arguments.content, tags: arguments.tags ?? [])
        return ToolOutput(
            JSONValue.object(["note_id": .string(note.id), "message": "Note saved successfully."]).prettyText)
    }
}

struct MemoryUpdate: TypedTool {
    struct Arguments: Decodable, Sendable {
        var noteID: String
        var content: String
        var tags: [String]?
        enum CodingKeys: String, CodingKey {
            case content, tags
            case noteID = "note_id"
        }
    }
    let store: SQLiteMemoryStore
    var safety: SafetyTier { .sideEffecting }
    var timeout: Duration { .seconds(10) }
    var declaration: ToolDeclaration {
        ToolDeclaration(
            name: "memory_update",
            description: "Replace the content (and tags) of a saved note; it keeps its id and creation time.",
            parameters: Schema.object(
                [
                    "note_id": Schema.string("The note's id (note-…)", minLength: 1),
                    "content": Schema.string("New content", minLength: 1, maxLength: 8000),
                    "tags": MemoryTools.tagsSchema,
                ], required: ["note_id", "content"]))
    }
    func run(_ arguments: Arguments, context: ToolContext) async throws -> ToolOutput {
        guard try await store.note(arguments.noteID) != nil else {
            throw ToolError.executionFailed(tool: "memory_update", message: "note `\(arguments.noteID)` not found")
        }
        let note = try await store.updateNote(arguments.noteID, content: arguments.content, tags: arguments.tags ?? [])
        return ToolOutput(
            JSONValue.object(["note_id": .string(note.id), "message": "Note updated successfully."]).prettyText)
    }
}

struct MemoryDelete: TypedTool {
    struct Arguments: Decodable, Sendable {
        var noteID: String
        enum CodingKeys: String, CodingKey { case noteID = "note_id" }
    }
    let store: SQLiteMemoryStore
    var safety: SafetyTier { .sideEffecting }
    var timeout: Duration { .seconds(10) }
    var declaration: ToolDeclaration {
        ToolDeclaration(
            name: "memory_delete", description: "Delete a saved note.",
            parameters: Schema.object(
                ["note_id": Schema.string("The note's id (note-…)", minLength: 1)], required: ["note_id"]))
    }
    func run(_ arguments: Arguments, context: ToolContext) async throws -> ToolOutput {
        guard try await store.note(arguments.noteID) != nil else {
            throw ToolError.executionFailed(tool: "memory_delete", message: "note `\(arguments.noteID)` not found")
        }
        try await store.deleteNote(arguments.noteID)
        return ToolOutput(
            JSONValue.object(["note_id": .string(arguments.noteID), "message": "Note deleted successfully."]).prettyText
        )
    }
}

struct NoArguments: Decodable, Sendable {}

struct ScratchpadRead: TypedTool {
    let store: SQLiteMemoryStore
    var safety: SafetyTier { .readOnly }
    var timeout: Duration { .seconds(10) }
    var declaration: ToolDeclaration {
        ToolDeclaration(
            name: "scratchpad_read",
            description: "Read this session's scratchpad (your working notes for a multi-step task).",
            parameters: Schema.object([:]))
    }
    func run(_ arguments: NoArguments, context: ToolContext) async throws -> ToolOutput {
        let session = try MemoryTools.session(context, tool: "scratchpad_read")
        let (items, updatedAt) = try await store.scratchpad(of: session)
        return ToolOutput(
            JSONValue.object([
                "session_id": .string(session.rawValue), "items": .array(items.map(JSONValue.string)),
                "updated_at": updatedAt.map(MemoryTools.iso) ?? .null, "item_count": .integer(items.count),
            ]).prettyText)
    }
}

struct ScratchpadWrite: TypedTool {
    struct Arguments: Decodable, Sendable { var items: [String] }
    let store: SQLiteMemoryStore
    var safety: SafetyTier { .sideEffecting }
    var timeout: Duration { .seconds(10) }
    var declaration: ToolDeclaration {
        ToolDeclaration(
            name: "scratchpad_write",
            description:
                "Replace this session's scratchpad with up to 32 short items (plan, progress, open questions).",
            parameters: Schema.object(
                [
                    "items": Schema.array(
                        "The new items, replacing all previous ones",
                        items: Schema.string(
                            "one item", minLength: 1, maxLength: SQLiteMemoryStore.scratchpadItemLength),
                        minItems: 1, maxItems: SQLiteMemoryStore.scratchpadItems)
                ], required: ["items"]))
    }
    func run(_ arguments: Arguments, context: ToolContext) async throws -> ToolOutput {
        let session = try MemoryTools.session(context, tool: "scratchpad_write")
        let items = arguments.items.map(\.trimmed).filter { !$0.isEmpty }
        guard !items.isEmpty else {
            throw ToolError.invalidArguments(
                tool: "scratchpad_write", message: "items must contain at least one non-blank item")
        }
        let changed = try await store.writeScratchpad(items, of: session)
        return ToolOutput(
            JSONValue.object([
                "updated": .bool(changed), "item_count": .integer(items.count),
                "message": .string(changed ? "Scratchpad updated." : "Scratchpad unchanged."),
            ]).prettyText)
    }
}

struct ScratchpadClear: TypedTool {
    let store: SQLiteMemoryStore
    var safety: SafetyTier { .sideEffecting }
    var timeout: Duration { .seconds(10) }
    var declaration: ToolDeclaration {
        ToolDeclaration(
            name: "scratchpad_clear", description: "Empty this session's scratchpad.", parameters: Schema.object([:]))
    }
    func run(_ arguments: NoArguments, context: ToolContext) async throws -> ToolOutput {
        let session = try MemoryTools.session(context, tool: "scratchpad_clear")
        let changed = try await store.writeScratchpad(nil, of: session)
        return ToolOutput(
            JSONValue.object([
                "cleared": .bool(changed),
                "message": .string(changed ? "Scratchpad cleared successfully." : "Scratchpad was already empty."),
            ]).prettyText)
    }
}
