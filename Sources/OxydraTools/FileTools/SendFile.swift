import OxydraCore

/// `send_file {path, caption?}`: sends a file from `/shared` or `/tmp` to the chat the session is
/// talking in (Telegram). Registered only when the user's guest runs a chat channel.
public struct SendFile: TypedTool {
    public struct Arguments: Decodable, Sendable {
        var path: String
        var caption: String?
    }

    /// Telegram's bots send documents of at most 50 MB.
    public static let limit = 50 << 20
    let confinement: PathConfinement
    let sender: any ChannelFileSender

    public init(workspace: Workspace, sender: any ChannelFileSender) {
        confinement = PathConfinement(workspace: workspace)
        self.sender = sender
    }

    public var safety: SafetyTier { .sideEffecting }
    public var timeout: Duration { .seconds(120) }
    /// A file leaves the workspace (to the user's own chat): asked in `risky` mode.
    public func risk(of arguments: JSONValue) -> ToolRisk {
        ToolRisk(
            level: .medium, reason: "sends \(arguments["path"]?.stringValue ?? "a file") to your chat",
            kinds: [ToolRisk.Kind(key: "send_file", label: "files sent to your chat")])
    }

    public var declaration: ToolDeclaration {
        ToolDeclaration(
            name: "send_file",
            description: "Send a file from /shared or /tmp to the user's chat (Telegram) as a document.",
            parameters: Schema.object(
                [
                    "path": Schema.string("File under /shared or /tmp, e.g. /shared/report.pdf", minLength: 1),
                    "caption": Schema.string("A short caption shown with the file", maxLength: 1024),
                ], required: ["path"]))
    }

    public func run(_ arguments: Arguments, context: ToolContext) async throws -> ToolOutput {
        let path = try confinement.virtualPath(arguments.path, tool: "send_file")
        guard path.root == .shared || path.root == .tmp else {
            throw ToolError.blocked(
                tool: "send_file", reason: "PathOutsideAllowedRoots",
                detail: "send_file sends files from /shared or /tmp only; copy vault files out with vault_copyto")
        }
        guard let session = context.session else {
            throw ToolError.executionFailed(tool: "send_file", message: "no session to send the file to")
        }
        let bytes = try confinement.readFile(path, limit: Self.limit, tool: "send_file")
        let name = path.relative.split(separator: "/").last.map(String.init) ?? "file"
        switch await sender.sendFile(
            session: session, name: name, mimeType: Self.mimeType(of: name), data: bytes, caption: arguments.caption)
        {
        case .success(let sent): return ToolOutput(sent)
        case .failure(let error): throw ToolError.executionFailed(tool: "send_file", message: error.description)
        }
    }

    static func mimeType(of name: String) -> String {
        let lowered = name.lowercased()
        let known: [(String, String)] = [
            (".pdf", "application/pdf"), (".png", "image/png"), (".jpg", "image/jpeg"), (".jpeg", "image/jpeg"),
            (".txt", "text/plain"), (".md", "text/markdown"), (".csv", "text/csv"), (".json", "application/json"),
            (".zip", "application/zip"), (".html", "text/html"),
        ]
        return known.first { lowered.hasSuffix($0.0) }?.1 ?? "application/octet-stream"
    }
}
