import HTTPTypes
import Hummingbird
import OxydraConfig
import OxydraCore
import OxydraProviders
import OxydraRunner

/// The configuration part of the API: files as forms (schema, values, sources, problems), checked
/// saves, new users, and the first-run provider set-up.
///
/// - `GET /api/v1/config` — the editable files.
/// - `GET /api/v1/config/file?id=…` — one file: schema, its own values (secrets only as "set"),
///   the effective value and source of every agent key, problems, and a `revision`.
/// - `POST /api/v1/config/file` `{id, revision, changes: [{path: [...], value}], dry_run}` — values
///   are JSON (`null` removes the key; `{"toml": "…"}` is a TOML value for lists of tables and the
///   like; `"********"` keeps a secret). 422 with `fields` when the loaders find problems.
/// - `POST /api/v1/config/users` `{user_id}` — registers a user and creates their file.
/// - `GET /api/v1/onboarding`, `POST /api/v1/onboarding/test|save` — see ``WebOnboarding``.
struct WebConfigAPI: Sendable {
    let settings: WebServer.Settings

    var editing: ConfigEditing { ConfigEditing(context: settings.context) }

    func documents() -> JSONValue {
        .array(
            editing.documents().map { document in
                var entry: [String: JSONValue] = [
                    "id": .string(document.id), "kind": .string(document.kind.rawValue),
                    "title": .string(document.title), "path": .string(document.displayPath),
                    "exists": .bool(document.exists),
                ]
                if let user = document.user { entry["user"] = .string(user) }
                return .object(entry)
            })
    }

    func document(_ id: String) throws -> ConfigDocument {
        guard let document = editing.document(id) else {
            throw HTTPError(.notFound, message: "no configuration file `\(id)`")
        }
        return document
    }

    /// `GET /api/v1/config/file?id=…`.
    func read(_ id: String) throws -> Response {
        let document = try document(id)
        let schema = document.schema
        let text: String
        let tree: ConfigNode
        do {
            text = try editing.text(of: document)
            tree = try TOMLDocument.parse(text, source: .file(document.displayPath))
        } catch {
            throw HTTPError(.unprocessableContent, message: "\(error)")
        }
        var values: [String: JSONValue] = [:]
        var unknown: [JSONValue] = []
        Self.flatten(tree, shape: schema, path: []) { path, node, known in
            guard known else {
                unknown.append(.array(path.map(JSONValue.string)))
                return
            }
            values[ConfigPath.render(path)] = Self.entry(path: path, node: node, schema: schema, source: nil)
        }
        var effective: [String: JSONValue] = [:]
        let problems: [ConfigIssue]
        if document.kind == .agent {
            let loaded = editing.effectiveAgent()
            Self.flatten(loaded.tree, shape: schema, path: []) { path, node, known in
                guard known else { return }
                effective[ConfigPath.render(path)] = Self.entry(
                    path: path, node: node, schema: schema, source: node.source.description)
            }
            // This file's problems only: another layer's belong to that layer's form.
            problems = loaded.issues.filter { $0.location == .file(document.displayPath) || $0.location == nil }
        } else {
            problems = editing.issues(of: document)
        }
        return WebAPI.reply([
            "id": .string(document.id), "kind": .string(document.kind.rawValue), "title": .string(document.title),
            "path": .string(document.displayPath), "exists": .bool(document.exists),
            "revision": .string(ConfigEditing.revision(of: text)), "schema": Self.json(schema),
            "values": .object(values), "effective": .object(effective), "unknown": .array(unknown),
            "issues": .array(problems.map(Self.json)),
        ])
    }

    /// `POST /api/v1/config/file`.
    func save(_ body: JSONValue) throws -> Response {
        guard let id = body["id"]?.stringValue else { throw HTTPError(.badRequest, message: "`id` is required") }
        let document = try document(id)
        guard case .array(let items)? = body["changes"] else {
            throw HTTPError(.badRequest, message: "`changes` must be an array of {path, value}")
        }
        var changes: [ConfigChange] = []
        var fieldErrors: [ConfigIssue] = []
        for item in items {
            guard case .array(let segments)? = item["path"], !segments.isEmpty,
                case let path = segments.compactMap(\.stringValue), path.count == segments.count
            else {
                throw HTTPError(.badRequest, message: "every change needs `path`, an array of key names")
            }
            do {
                let value = try Self.configValue(item["value"] ?? .null, shape: document.schema.shape(at: path))
                changes.append(ConfigChange(path: path, value: value))
            } catch let problem as FieldProblem {
                fieldErrors.append(
                    ConfigIssue(
                        path: ConfigPath.render(path), message: "\(ConfigPath.render(path)): \(problem.message)",
                        location: nil))
            }
        }
        guard fieldErrors.isEmpty else { return Self.invalid(fieldErrors, warnings: []) }
        let result: ConfigSaveResult
        do {
            result = try editing.save(
                document, changes: changes, revision: body["revision"]?.stringValue,
                dryRun: body["dry_run"]?.boolValue ?? false)
        } catch {
            let stale = error.issues.contains { $0.message == ConfigEditing.staleRevision }
            throw HTTPError(stale ? .conflict : .unprocessableContent, message: "\(error)")
        }
        guard result.errors.isEmpty else { return Self.invalid(result.errors, warnings: result.warnings) }
        var reply: [String: JSONValue] = [
            "written": .bool(result.written), "changed_fields": .array(result.changedFields.map(JSONValue.string)),
            "warnings": .array(result.warnings.map(Self.json)),
            "revision": .string(ConfigEditing.revision(of: result.text)),
            "restart_required": .bool(result.written && document.kind != .runner),
        ]
        if let backup = result.backupPath { reply["backup_path"] = .string(settings.context.display.render(backup)) }
        return WebAPI.reply(.object(reply))
    }

    /// `POST /api/v1/config/users`.
    func addUser(_ body: JSONValue) throws -> Response {
        guard let id = body["user_id"]?.stringValue else {
            throw HTTPError(.badRequest, message: "`user_id` is required")
        }
        let result: ConfigSaveResult
        do {
            result = try editing.addUser(id)
        } catch {
            throw HTTPError(.unprocessableContent, message: "\(error)")
        }
        guard result.errors.isEmpty else { return Self.invalid(result.errors, warnings: result.warnings) }
        return WebAPI.reply(["user_id": .string(id), "written": .bool(result.written)])
    }

    /// 422 with every problem, each with the key it belongs to.
    static func invalid(_ errors: [ConfigIssue], warnings: [ConfigIssue]) -> Response {
        let body: JSONValue = [
            "error": [
                "code": "invalid_config",
                "message": .string(errors.map(\.description).joined(separator: "\n")),
                "fields": .array(errors.map(json)), "warnings": .array(warnings.map(json)),
            ]
        ]
        return Response(
            status: .unprocessableContent, headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: ResponseBody(byteBuffer: .init(string: JSONWriter.text(body))))
    }

    static func json(_ issue: ConfigIssue) -> JSONValue {
        ["path": .string(issue.path), "message": .string(issue.description)]
    }

    // MARK: values

    struct FieldProblem: Error { let message: String }

    /// A form value as a configuration value for a key of `shape`. Text in a number or boolean field
    /// that is not one stays text, so the loader reports it the way it reports a file's mistakes.
    static func configValue(_ json: JSONValue, shape: ConfigShape?) throws -> ConfigValue? {
        switch json {
        case .null:
            return nil
        case .object(let object) where object.count == 1 && object["toml"] != nil:
            guard let text = object["toml"]?.stringValue else { throw FieldProblem(message: "`toml` must be text") }
            guard let node = TOMLDocument.parseValue(text, source: .builtInDefault) else {
                throw FieldProblem(
                    message: "`\(text)` is not a TOML value (for example [\"a\", \"b\"] or { key = \"value\" })")
            }
            return node.value
        case .string(let text):
            let trimmed = text.trimmed
            switch shape {
            case .integer?: return Int(trimmed).map(ConfigValue.integer) ?? .string(text)
            case .number?: return Double(trimmed).map(ConfigValue.float) ?? .string(text)
            case .boolean?:
                if trimmed == "true" { return .bool(true) }
                if trimmed == "false" { return .bool(false) }
                return .string(text)
            default: return .string(text)
            }
        case .integer(let number):
            if case .number? = shape { return .float(Double(number)) }
            return .integer(number)
        case .number(let number): return .float(number)
        case .bool(let flag): return .bool(flag)
        case .array(let items):
            let item: ConfigShape? = if case .list(let inner)? = shape { inner } else { nil }
            return .array(
                try items.map { element in
                    guard let value = try configValue(element, shape: item) else {
                        throw FieldProblem(message: "a list cannot hold null")
                    }
                    return ConfigNode(value, source: .builtInDefault)
                })
        case .object(let object):
            var entries: [String: ConfigNode] = [:]
            for (key, element) in object {
                guard let value = try configValue(element, shape: shape?.shape(at: [key])) else { continue }
                entries[key] = ConfigNode(value, source: .builtInDefault)
            }
            return .table(entries)
        }
    }

    /// Calls `visit` for every value the form shows as one field: scalars, lists, and tables that
    /// are not sections (header maps). `known` is false for keys the schema does not have.
    static func flatten(
        _ node: ConfigNode, shape: ConfigShape?, path: [String],
        visit: ([String], ConfigNode, _ known: Bool) -> Void
    ) {
        guard let shape else {
            visit(path, node, false)
            return
        }
        switch (shape, node.value) {
        case (.section, .table(let entries)):
            for key in entries.keys.sorted() {
                flatten(entries[key]!, shape: shape.key(key)?.shape, path: path + [key], visit: visit)
            }
        case (.map(let value), .table(let entries)) where Self.isTable(value):
            for key in entries.keys.sorted() {
                flatten(entries[key]!, shape: value, path: path + [key], visit: visit)
            }
        default:
            visit(path, node, true)
        }
    }

    static func isTable(_ shape: ConfigShape) -> Bool {
        switch shape {
        case .section, .map: true
        default: false
        }
    }

    /// `{path, value}` for one field; secrets as `{secret: true, set: true}` with no value, and
    /// credential-like headers inside tables as `"********"`.
    static func entry(path: [String], node: ConfigNode, schema: ConfigShape, source: String?) -> JSONValue {
        var entry: [String: JSONValue] = ["path": .array(path.map(JSONValue.string))]
        if schema.isSecret(at: path) || node.isSecret {
            entry["secret"] = true
            entry["set"] = true
        } else {
            entry["value"] = masked(node, path: path)
        }
        if let source { entry["source"] = .string(source) }
        return .object(entry)
    }

    static func masked(_ node: ConfigNode, path: [String]) -> JSONValue {
        if case .table(let entries) = node.value {
            var object: [String: JSONValue] = [:]
            for (key, child) in entries {
                let sensitive = path.last == "extra_headers" && HeaderMap.isSensitive(key)
                object[key] = sensitive ? .string(ConfigEditing.maskedSecret) : masked(child, path: path + [key])
            }
            return .object(object)
        }
        return ConfigRendering.json(node)
    }

    /// The schema for the page: `{type, keys|item|value|options}`; keys carry `secret`, `required`,
    /// `default`.
    static func json(_ shape: ConfigShape) -> JSONValue {
        switch shape {
        case .string: return ["type": "string"]
        case .integer: return ["type": "integer"]
        case .number: return ["type": "number"]
        case .boolean: return ["type": "boolean"]
        case .version: return ["type": "version"]
        case .choice(let options): return ["type": "choice", "options": .array(options.map(JSONValue.string))]
        case .list(let item): return ["type": "list", "item": json(item)]
        case .map(let value): return ["type": "map", "value": json(value)]
        case .section(let keys):
            return [
                "type": "section",
                "keys": .array(
                    keys.map { key in
                        var entry: [String: JSONValue] = [
                            "key": .string(key.key), "shape": json(key.shape), "secret": .bool(key.isSecret),
                            "required": .bool(key.isRequired),
                        ]
                        if let value = key.defaultValue, !key.isSecret {
                            entry["default"] = ConfigRendering.json(value)
                        }
                        return .object(entry)
                    }),
            ]
        }
    }
}
