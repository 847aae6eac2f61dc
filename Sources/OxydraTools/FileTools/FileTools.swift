import OxydraCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The file tools, all confined to the workspace by ``PathConfinement``.
public enum FileTools {
    /// A change to a file: none under `/tmp` (scratch), medium anywhere else. A grant covers the
    /// file's directory (`/shared/notes` covers `/shared/notes/a.md`, not `/shared/other`).
    static func writeRisk(_ arguments: JSONValue, verb: String) -> ToolRisk {
        let raw = arguments["path"]?.stringValue?.trimmed ?? ""
        let absolute = raw.hasPrefix("/") ? raw : "/shared/" + raw
        let parts = absolute.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
        let escapes = parts.contains("..")
        if !escapes, parts.first == "tmp" { return .none }
        let directory = escapes ? absolute : "/" + parts.dropLast().joined(separator: "/")
        let key = escapes ? "file=" + absolute : "file:" + directory
        return ToolRisk(
            level: .medium, reason: "\(verb) \(absolute)",
            kinds: [
                ToolRisk.Kind(key: key, label: escapes ? "changes to `\(absolute)`" : "file changes in \(directory)")
            ])
    }

    /// `file_read`, `file_search`, `file_list`, `file_write`, `file_edit`, `file_delete`, `vault_copyto`.
    public static func all(confinement: PathConfinement, audit: AuditLog) -> [any Tool] {
        [
            FileRead(confinement: confinement), FileSearch(confinement: confinement),
            FileList(confinement: confinement),
            FileWrite(confinement: confinement), FileEdit(confinement: confinement),
            FileDelete(confinement: confinement),
            VaultCopyTo(confinement: confinement, audit: audit),
        ]
    }

    /// Largest file the read and edit tools load (the model sees at most 16 KiB of output anyway).
    static let readLimit = 8 << 20

    static func text(_ bytes: [UInt8], path: VirtualPath, tool: String) throws(ToolError) -> String {
        if bytes.prefix(8192).contains(0) {
            throw .executionFailed(
                tool: tool, message: "\(path) is a binary file (\(bytes.count) bytes); it is not shown")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw .executionFailed(tool: tool, message: "\(path) is not UTF-8 text (\(bytes.count) bytes)")
        }
        return text
    }
}

public struct PathArgument: Decodable, Sendable {
    public var path: String
}

/// `file_read {path}`: a text file's contents.
struct FileRead: TypedTool {
    let confinement: PathConfinement
    var safety: SafetyTier { .readOnly }
    var timeout: Duration { .seconds(10) }
    var declaration: ToolDeclaration {
        ToolDeclaration(
            name: "file_read", description: "Read a UTF-8 text file from /shared or /tmp.",
            parameters: Schema.object(
                ["path": Schema.string("File path, e.g. /shared/notes.txt", minLength: 1)], required: ["path"]))
    }

    func run(_ arguments: PathArgument, context: ToolContext) async throws -> ToolOutput {
        let path = try confinement.virtualPath(arguments.path, tool: "file_read")
        if path.root == .vault {
            throw ToolError.blocked(
                tool: "file_read", reason: "VaultRequiresCopy",
                detail: "files in /vault are read through vault_copyto, which copies them to /shared or /tmp")
        }
        let bytes = try confinement.readFile(path, limit: FileTools.readLimit, tool: "file_read")
        return ToolOutput(try FileTools.text(bytes, path: path, tool: "file_read"))
    }
}

/// `file_list {path?}`: names in a directory, directories suffixed `/`.
struct FileList: TypedTool {
    struct Arguments: Decodable, Sendable { var path: String? }
    let confinement: PathConfinement
    var safety: SafetyTier { .readOnly }
    var timeout: Duration { .seconds(10) }
    var declaration: ToolDeclaration {
        ToolDeclaration(
            name: "file_list", description: "List a directory (default /shared). Directories end with /.",
            parameters: Schema.object(["path": Schema.string("Directory, e.g. /shared or /vault", minLength: 1)]))
    }

    func run(_ arguments: Arguments, context: ToolContext) async throws -> ToolOutput {
        let path = try confinement.virtualPath(arguments.path ?? "/shared", tool: "file_list")
        let entries = try confinement.list(path, tool: "file_list").filter { !$0.name.hasPrefix(".oxydra") }
        if entries.isEmpty { return ToolOutput("no entries found") }
        return ToolOutput(entries.map { $0.isDirectory ? $0.name + "/" : $0.name }.joined(separator: "\n"))
    }
}

/// `file_search {path, query}`: `path:line:text` for every line containing `query`, recursively.
struct FileSearch: TypedTool {
    struct Arguments: Decodable, Sendable {
        var path: String
        var query: String
    }
    static let maxMatches = 200
    static let maxFiles = 5000
    let confinement: PathConfinement
    var safety: SafetyTier { .readOnly }
    var timeout: Duration { .seconds(20) }
    var declaration: ToolDeclaration {
        ToolDeclaration(
            name: "file_search",
            description: "Find lines containing a text (case-sensitive) in a file or, recursively, a directory. "
                + "Returns path:line:text, at most 200 matches.",
            parameters: Schema.object(
                [
                    "path": Schema.string("File or directory to search, e.g. /shared", minLength: 1),
                    "query": Schema.string("Text to find", minLength: 1),
                ], required: ["path", "query"]))
    }

    func run(_ arguments: Arguments, context: ToolContext) async throws -> ToolOutput {
        let root = try confinement.virtualPath(arguments.path, tool: "file_search")
        if root.root == .vault {
            throw ToolError.blocked(
                tool: "file_search", reason: "VaultRequiresCopy",
                detail: "copy files out of /vault with vault_copyto first")
        }
        var matches: [String] = []
        var filesSeen = 0
        var pending = [root]
        while let path = pending.popLast(), matches.count < Self.maxMatches, filesSeen < Self.maxFiles {
            try Task.checkCancellation()
            if let entries = try? confinement.list(path, tool: "file_search") {
                for entry in entries.reversed() where !entry.isSymlink && !entry.name.hasPrefix(".oxydra") {
                    pending.append(path.appending(entry.name))
                }
                continue
            }
            filesSeen += 1
            guard let bytes = try? confinement.readFile(path, limit: FileTools.readLimit, tool: "file_search"),
                let text = try? FileTools.text(bytes, path: path, tool: "file_search")
            else { continue }
            var lineNumber = 0
            for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
                lineNumber += 1
                if line.contains(arguments.query) {
                    matches.append("\(path):\(lineNumber):\(line.prefix(400))")
                    if matches.count >= Self.maxMatches { break }
                }
            }
        }
        return ToolOutput(matches.isEmpty ? "no matches found" : matches.joined(separator: "\n"))
    }
}

/// `file_write {path, content}`: creates or replaces a file (parents are created).
struct FileWrite: TypedTool {
    struct Arguments: Decodable, Sendable {
        var path: String
        var content: String
    }
    let confinement: PathConfinement
    var safety: SafetyTier { .sideEffecting }
    func risk(of arguments: JSONValue) -> ToolRisk { FileTools.writeRisk(arguments, verb: "writes") }
    var timeout: Duration { .seconds(15) }
    var declaration: ToolDeclaration {
        ToolDeclaration(
            name: "file_write",
            description: "Create or replace a text file in /shared or /tmp (parent directories are created).",
            parameters: Schema.object(
                [
                    "path": Schema.string("File path, e.g. /shared/report.md", minLength: 1),
                    "content": Schema.string("The whole new content"),
                ],
                required: ["path", "content"]))
    }

    func run(_ arguments: Arguments, context: ToolContext) async throws -> ToolOutput {
        let path = try confinement.virtualPath(arguments.path, tool: "file_write")
        let bytes = Array(arguments.content.utf8)
        try confinement.writeFile(path, bytes: bytes, tool: "file_write")
        return ToolOutput("wrote \(bytes.count) bytes to \(path)")
    }
}

/// `file_edit {path, old_text, new_text}`: replaces exactly one occurrence.
struct FileEdit: TypedTool {
    struct Arguments: Decodable, Sendable {
        var path: String
        var oldText: String
        var newText: String
        enum CodingKeys: String, CodingKey {
            case path
            case oldText = "old_text"
            case newText = "new_text"
        }
    }
    let confinement: PathConfinement
    var safety: SafetyTier { .sideEffecting }
    func risk(of arguments: JSONValue) -> ToolRisk { FileTools.writeRisk(arguments, verb: "edits") }
    var timeout: Duration { .seconds(15) }
    var declaration: ToolDeclaration {
        ToolDeclaration(
            name: "file_edit",
            description:
                "Replace one exact occurrence of old_text with new_text in a text file. old_text must match exactly once.",
            parameters: Schema.object(
                [
                    "path": Schema.string("File path", minLength: 1),
                    "old_text": Schema.string("Exact text to replace (must occur exactly once)", minLength: 1),
                    "new_text": Schema.string("Replacement text"),
                ], required: ["path", "old_text", "new_text"]))
    }

    func run(_ arguments: Arguments, context: ToolContext) async throws -> ToolOutput {
        let path = try confinement.virtualPath(arguments.path, tool: "file_edit")
        try confinement.check(path, access: .write, tool: "file_edit")
        let text = try FileTools.text(
            try confinement.readFile(path, limit: FileTools.readLimit, tool: "file_edit"), path: path, tool: "file_edit"
        )
        let ranges = text.ranges(of: arguments.oldText)
        guard ranges.count == 1 else {
            if ranges.isEmpty {
                throw ToolError.executionFailed(tool: "file_edit", message: "old_text was not found in \(path)")
            }
            let lines = ranges.prefix(5).map { range in text[..<range.lowerBound].filter { $0 == "\n" }.count + 1 }
            throw ToolError.executionFailed(
                tool: "file_edit",
                message:
                    "old_text matched \(ranges.count) locations in \(path) (lines \(lines.map(String.init).joined(separator: ", "))"
                    + "\(ranges.count > 5 ? ", …" : "")); include more surrounding text so it matches once")
        }
        var updated = text
        updated.replaceSubrange(ranges[0], with: arguments.newText)
        try confinement.writeFile(path, bytes: Array(updated.utf8), tool: "file_edit")
        return ToolOutput("updated \(path)")
    }
}

/// `file_delete {path}`: a file, a link, or a directory tree.
struct FileDelete: TypedTool {
    let confinement: PathConfinement
    var safety: SafetyTier { .sideEffecting }
    func risk(of arguments: JSONValue) -> ToolRisk { FileTools.writeRisk(arguments, verb: "deletes") }
    var timeout: Duration { .seconds(15) }
    var declaration: ToolDeclaration {
        ToolDeclaration(
            name: "file_delete", description: "Delete a file, or a directory and everything in it, in /shared or /tmp.",
            parameters: Schema.object(["path": Schema.string("Path to delete", minLength: 1)], required: ["path"]))
    }

    func run(_ arguments: PathArgument, context: ToolContext) async throws -> ToolOutput {
        let path = try confinement.virtualPath(arguments.path, tool: "file_delete")
        let wasDirectory = try confinement.delete(path, tool: "file_delete")
        return ToolOutput(wasDirectory ? "deleted directory \(path)" : "deleted file \(path)")
    }
}
