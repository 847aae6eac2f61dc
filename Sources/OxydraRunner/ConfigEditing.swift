import OxydraConfig
import OxydraCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One configuration file the web app can show and edit.
public struct ConfigDocument: Sendable, Hashable {
    public enum Kind: String, Sendable {
        /// `runner.toml`.
        case runner
        /// A user's own file (`users/<id>.toml`).
        case user
        /// One layer of the agent configuration (`agent.toml` or `providers.toml` in one directory).
        case agent
    }

    /// `runner`, `user/<id>`, `agent/<layer>/<file>` with layer `system`, `home` or `project`.
    public var id: String
    public var kind: Kind
    public var title: String
    /// Absolute.
    public var path: String
    public var displayPath: String
    public var exists: Bool
    /// For `.user`.
    public var user: String?

    /// The keys the file can hold.
    public var schema: ConfigShape {
        switch kind {
        case .runner: RunnerConfig.shape
        case .user: RunnerUserConfig.shape
        case .agent: AgentConfig.shape
        }
    }
}

/// A change to one key: a new value, or nil to remove the key (back to the lower layer or default).
public struct ConfigChange: Sendable, Hashable {
    public var path: [String]
    public var value: ConfigValue?

    public init(path: [String], value: ConfigValue?) {
        self.path = path
        self.value = value
    }
}

/// What a save did, or why it did not.
public struct ConfigSaveResult: Sendable {
    /// Problems that stop the save: in this file, or at a changed key.
    public var errors: [ConfigIssue]
    /// Problems elsewhere (another layer) that the save neither causes nor fixes.
    public var warnings: [ConfigIssue]
    public var changedFields: [String]
    public var backupPath: String?
    /// Whether the file was written (false for a dry run and for refused changes).
    public var written: Bool
    /// The file's text after the change (written or not).
    public var text: String
}

/// Reading and changing configuration files from the web app: the same loaders as the command line
/// check every change before anything is written, the TOML editor keeps comments and layout, the
/// write is atomic and the previous version is kept as a backup.
public struct ConfigEditing: Sendable {
    public let context: RunnerContext
    /// Backups kept per file (`<file>.bak.<UTC time>`).
    public static let backupsKept = 10
    /// The value shown for a secret that is set (and accepted back as "keep it").
    public static let maskedSecret = ConfigRendering.redacted

    public init(context: RunnerContext) { self.context = context }

    var runner: LoadedRunnerConfig { RunnerConfigLoader.load(path: context.configPath, display: context.display) }

    // MARK: documents

    public func documents() -> [ConfigDocument] {
        let display = context.display
        let runner = runner
        var documents = [
            ConfigDocument(
                id: "runner", kind: .runner, title: "runner.toml", path: runner.path, displayPath: runner.displayPath,
                exists: FileManager.default.fileExists(atPath: runner.path), user: nil)
        ]
        for user in runner.config.users.keys.sorted() {
            guard let path = runner.userConfigPath(UserID(user)) else { continue }
            documents.append(
                ConfigDocument(
                    id: "user/\(user)", kind: .user, title: "\(user)'s file", path: path,
                    displayPath: display.render(path), exists: FileManager.default.fileExists(atPath: path),
                    user: user))
        }
        let paths = context.agentLoader.paths
        let layers =
            [("system", paths.systemDirectory)] + (paths.userDirectory.map { [("home", $0)] } ?? [])
            + [("project", paths.projectDirectory)]
        for (layer, directory) in layers {
            for name in AgentConfigLoader.fileNames {
                let path = directory + "/" + name
                let exists = FileManager.default.fileExists(atPath: path)
                // The project's files can always be created; other layers are shown when they exist.
                guard exists || layer == "project" else { continue }
                documents.append(
                    ConfigDocument(
                        id: "agent/\(layer)/\(name)", kind: .agent, title: "\(name) (\(layer))", path: path,
                        displayPath: display.render(path), exists: exists, user: nil))
            }
        }
        return documents
    }

    public func document(_ id: String) -> ConfigDocument? { documents().first { $0.id == id } }

    /// The file's text ("" when it does not exist yet).
    public func text(of document: ConfigDocument) throws(ConfigError) -> String {
        guard FileManager.default.fileExists(atPath: document.path) else { return "" }
        guard let data = FileManager.default.contents(atPath: document.path),
            let text = String(validating: data, as: UTF8.self)
        else {
            throw ConfigError(
                message: "cannot read the file (permissions, or not UTF-8)", location: .file(document.displayPath))
        }
        return text
    }

    /// The refusal of a save whose `revision` no longer matches the file.
    public static let staleRevision =
        "the file changed on disk since it was opened; reload it and make the change again"

    /// A short fingerprint of the text, so a save can tell the file changed on disk since it was read.
    public static func revision(of text: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x100_0000_01b3
        }
        return String(hash, radix: 16)
    }

    /// Every problem the loaders find with the file as it is (or as `text` would make it).
    public func issues(of document: ConfigDocument, text: String? = nil) -> [ConfigIssue] {
        switch document.kind {
        case .runner:
            return RunnerConfigLoader.load(path: context.configPath, display: context.display, text: text).issues
        case .user:
            guard let user = document.user else { return [] }
            return RunnerConfigLoader.loadUser(UserID(user), of: runner, display: context.display, text: text).issues
        case .agent:
            var loader = context.agentLoader
            if let text { loader.replacements[document.path] = text }
            return loader.load().issues
        }
    }

    /// The merged agent configuration (every layer) with each value's source.
    public func effectiveAgent() -> LoadedAgentConfig { context.agentLoader.load() }

    // MARK: saving

    /// Applies `changes` to the file, checks the result with the loaders and — unless `dryRun` or
    /// there are errors — writes it atomically, keeping the previous version as a backup.
    /// `revision` (from ``revision(of:)``) refuses a save over a file changed since it was read.
    public func save(
        _ document: ConfigDocument, changes: [ConfigChange], revision: String?, dryRun: Bool
    ) throws(ConfigError) -> ConfigSaveResult {
        try save([(document, changes, revision)], dryRun: dryRun)[0]
    }

    /// Several agent layers changed together (a provider's key in `providers.toml` and its
    /// selection in `agent.toml`): checked as one configuration, written only when all are valid.
    public func save(
        _ requests: [(document: ConfigDocument, changes: [ConfigChange], revision: String?)], dryRun: Bool
    ) throws(ConfigError) -> [ConfigSaveResult] {
        var plans: [Plan] = []
        for request in requests {
            plans.append(try plan(request.document, changes: request.changes, revision: request.revision))
        }
        var results: [ConfigSaveResult] = []
        for plan in plans {
            let document = plan.document
            let source = ConfigSource.file(document.displayPath)
            var errors: [ConfigIssue] = []
            var warnings: [ConfigIssue] = []
            for issue in problems(plan, with: plans) {
                let here = issue.location == source || document.kind != .agent
                let touched = plan.changed.contains {
                    issue.path == $0 || issue.path.hasPrefix($0 + ".") || issue.path.hasPrefix($0 + "[")
                }
                if here || touched { errors.append(issue) } else { warnings.append(issue) }
            }
            results.append(
                ConfigSaveResult(
                    errors: errors, warnings: warnings, changedFields: plan.changed, backupPath: nil, written: false,
                    text: plan.after))
        }
        guard results.allSatisfy(\.errors.isEmpty), !dryRun else { return results }
        for (index, plan) in plans.enumerated() where !plan.edits.isEmpty {
            // A file that now holds a secret is made readable by its owner only.
            let holdsSecret = plan.changes.contains { $0.value != nil && plan.document.schema.isSecret(at: $0.path) }
            results[index].backupPath = try store(
                plan.after, to: plan.document, previous: plan.document.exists ? plan.before : nil,
                ownerOnly: holdsSecret)
            results[index].written = true
        }
        return results
    }

    struct Plan {
        var document: ConfigDocument
        var changes: [ConfigChange]
        var edits: [TOMLEditor.Edit]
        var changed: [String]
        var before: String
        var after: String
    }

    func plan(_ document: ConfigDocument, changes: [ConfigChange], revision: String?) throws(ConfigError) -> Plan {
        let before = try text(of: document)
        if let revision, revision != Self.revision(of: before) {
            throw ConfigError(message: Self.staleRevision, location: .file(document.displayPath))
        }
        let source = ConfigSource.file(document.displayPath)
        let current = try TOMLDocument.parse(before, source: source)
        var edits: [TOMLEditor.Edit] = []
        var changed: [String] = []
        for change in changes where !change.path.isEmpty {
            let path = change.path
            if var value = change.value {
                value = keepingMaskedSecrets(value, existing: current.node(at: path))
                if let old = current.node(at: path),
                    TOMLEditor.plain(old) == TOMLEditor.plain(ConfigNode(value, source: source))
                {
                    continue
                }
                edits.append(.set(path, value))
            } else {
                guard current.node(at: path) != nil else { continue }
                edits.append(.remove(path))
            }
            changed.append(ConfigPath.render(path))
        }
        var editor = TOMLEditor(text: before, source: source)
        try editor.apply(edits)
        return Plan(
            document: document, changes: changes, edits: edits, changed: changed, before: before, after: editor.text)
    }

    /// The loaders' problems with `plan`'s file as it would be (agent layers with every planned text).
    func problems(_ plan: Plan, with plans: [Plan]) -> [ConfigIssue] {
        guard plan.document.kind == .agent else {
            return issues(of: plan.document, text: plan.edits.isEmpty ? nil : plan.after)
        }
        var loader = context.agentLoader
        for other in plans where other.document.kind == .agent && !other.edits.isEmpty {
            loader.replacements[other.document.path] = other.after
        }
        return loader.load().issues
    }

    /// Secrets come back from the page as `"********"` when the user left them alone: keep the
    /// file's value there (also inside tables, for `extra_headers`).
    func keepingMaskedSecrets(_ value: ConfigValue, existing: ConfigNode?) -> ConfigValue {
        switch value {
        case .string(Self.maskedSecret):
            if let existing { return existing.value }
            return value
        case .table(var entries):
            guard case .table(let old)? = existing?.value else { return value }
            for (key, node) in entries {
                entries[key] = ConfigNode(keepingMaskedSecrets(node.value, existing: old[key]), source: node.source)
            }
            return .table(entries)
        default:
            return value
        }
    }

    /// Writes through a temporary file and `rename`, keeping the mode of the old file (0600 for a
    /// new file, and with `ownerOnly`). Returns the backup's path.
    func store(_ text: String, to document: ConfigDocument, previous: String?, ownerOnly: Bool = false)
        throws(ConfigError) -> String?
    {
        let location = ConfigSource.file(document.displayPath)
        // A file that is a symbolic link (a dotfiles checkout) is updated where it really is.
        var document = document
        if let resolved = realpath(document.path, nil) {
            document.path = String(cString: resolved)
            free(resolved)
        }
        let directory = FilePaths.parent(document.path)
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw ConfigError(message: "cannot create \(directory): \(error)", location: location)
        }
        var mode: mode_t = 0o600
        var info = stat()
        if !ownerOnly, stat(document.path, &info) == 0 { mode = info.st_mode & 0o7777 }
        var backup: String?
        if let previous {
            // `20261203T053140.123Z`: sorts by time, no characters a shell would trip on.
            let stamp = Timestamp.rfc3339(Date(), milliseconds: true).filter { $0 != "-" && $0 != ":" }
            let path = "\(document.path).bak.\(stamp)"
            guard Self.writeFile(previous, to: path, mode: mode) else {
                throw ConfigError(message: "cannot write the backup \(path): \(Self.errnoText())", location: location)
            }
            backup = path
            pruneBackups(of: document.path)
        }
        let temporary = "\(document.path).tmp.\(getpid())"
        guard Self.writeFile(text, to: temporary, mode: mode) else {
            unlink(temporary)
            throw ConfigError(message: "cannot write \(temporary): \(Self.errnoText())", location: location)
        }
        guard rename(temporary, document.path) == 0 else {
            let reason = Self.errnoText()
            unlink(temporary)
            throw ConfigError(message: "cannot replace the file: \(reason)", location: location)
        }
        return backup
    }

    /// Writes and fsyncs; false on any failure.
    static func writeFile(_ text: String, to path: String, mode: mode_t) -> Bool {
        unlink(path)
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        fchmod(descriptor, mode)
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return false
            }
            written += count
        }
        return fsync(descriptor) == 0
    }

    func pruneBackups(of path: String) {
        let directory = FilePaths.parent(path)
        let prefix = FilePaths.lastComponent(path) + ".bak."
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        let backups = names.filter { $0.hasPrefix(prefix) }.sorted()
        for name in backups.dropLast(Self.backupsKept) { unlink(directory + "/" + name) }
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }

    // MARK: users

    /// Registers `id` in `runner.toml` (`[users.<id>] config_path = "users/<id>.toml"`, relative to
    /// the runner config's directory) and creates that file when it does not exist.
    public func addUser(_ id: String) throws(ConfigError) -> ConfigSaveResult {
        let user: UserID
        do {
            user = try UserID.validated(id)
        } catch {
            throw ConfigError(path: "users", message: "\(error)", location: nil)
        }
        let runner = runner
        guard runner.config.users[user.rawValue] == nil else {
            throw ConfigError(path: "users", message: "user `\(user)` is already registered", location: nil)
        }
        guard let document = document("runner") else {
            throw ConfigError(message: "no runner config", location: nil)
        }
        let relative = "users/\(user.rawValue).toml"
        let userFile = FilePaths.absolute(relative, relativeTo: FilePaths.parent(runner.path))
        var created = false
        if !FileManager.default.fileExists(atPath: userFile) {
            let file = ConfigDocument(
                id: "user/\(user)", kind: .user, title: "", path: userFile,
                displayPath: context.display.render(userFile), exists: false, user: user.rawValue)
            _ = try store("config_version = \"1.0.0\"\n", to: file, previous: nil)
            created = true
        }
        let result = try save(
            document, changes: [ConfigChange(path: ["users", user.rawValue, "config_path"], value: .string(relative))],
            revision: nil, dryRun: false)
        if !result.written && created { unlink(userFile) }
        return result
    }
}
