import OxydraCore

/// `web_fetch` and `web_search`.
public enum WebTools {
    public static func all(client: WebClient, search: WebSearchConfig, environment: [String: String]) -> [any Tool] {
        [WebFetch(client: client), WebSearch(client: client, config: search, environment: environment)]
    }
}

/// `web_fetch {url, output_format?, max_body_chars?}`.
struct WebFetch: TypedTool {
    struct Arguments: Decodable, Sendable {
        var url: String
        var outputFormat: String?
        var maxBodyChars: Int?
        enum CodingKeys: String, CodingKey {
            case url
            case outputFormat = "output_format"
            case maxBodyChars = "max_body_chars"
        }
    }

    static let defaultBodyChars = 12000
    let client: WebClient
    var safety: SafetyTier { .sideEffecting }
    /// A host not fetched before in the session asks; once allowed, the session's later fetches
    /// from it do not.
    func risk(of arguments: JSONValue) -> ToolRisk {
        let raw = arguments["url"]?.stringValue ?? ""
        guard let host = URLComponents(string: raw)?.host?.lowercased(), !host.isEmpty else {
            return ToolRisk(
                level: .medium, reason: "fetches `\(raw.prefix(200))`",
                kinds: [ToolRisk.Kind(key: "url=" + raw, label: "`\(raw.prefix(80))`")])
        }
        return ToolRisk(
            level: .medium, reason: "fetches from \(host), new in this session",
            kinds: [ToolRisk.Kind(key: "host:" + host, label: "fetches from \(host)")], rememberedForSession: true)
    }
    var timeout: Duration { .seconds(30) }
    var declaration: ToolDeclaration {
        ToolDeclaration(
            name: "web_fetch",
            description: "Fetch an http(s) URL. HTML is turned into readable text; JSON and text are returned as is. "
                + "Private and local addresses are blocked.",
            parameters: Schema.object(
                [
                    "url": Schema.string("The http:// or https:// URL", minLength: 1),
                    "output_format": Schema.string(
                        "auto (default): readable text for HTML; text: always text; raw: the body unchanged; "
                            + "metadata_only: status and headers only",
                        enum: ["auto", "text", "raw", "metadata_only"]),
                    "max_body_chars": Schema.integer(
                        "Most characters of body to return (default 12000)", minimum: 100, maximum: 50000),
                ], required: ["url"]))
    }

    func run(_ arguments: Arguments, context: ToolContext) async throws -> ToolOutput {
        guard let url = URL(string: arguments.url.trimmed), url.host != nil else {
            throw ToolError.invalidArguments(tool: "web_fetch", message: "`\(arguments.url)` is not an absolute URL")
        }
        let format = arguments.outputFormat ?? "auto"
        let response = try await client.get(
            url, accept: "text/html,application/xhtml+xml,application/json,text/plain;q=0.9,*/*;q=0.8",
            tool: "web_fetch")
        let contentType = response.header("Content-Type")?.lowercased()
        var result: [String: JSONValue] = [
            "url": .string(response.url.absoluteString), "status": .integer(response.status),
            "output_format": .string(format), "content_length": .integer(response.body.count),
        ]
        if let contentType { result["content_type"] = .string(contentType) }
        guard (200..<300).contains(response.status) else {
            let preview = String(decoding: response.body.prefix(256), as: UTF8.self)
            throw ToolError.executionFailed(
                tool: "web_fetch",
                message: "web fetch returned status \(response.status) for \(url.absoluteString): \(preview)")
        }
        if format == "metadata_only" { return ToolOutput(JSONValue.object(result).prettyText) }
        let type = contentType ?? ""
        let isText =
            type.isEmpty || type.hasPrefix("text/") || type.contains("json") || type.contains("xml")
            || type.contains("javascript")
        if !isText {
            if format == "text" {
                throw ToolError.executionFailed(
                    tool: "web_fetch", message: "\(url.absoluteString) is \(type), not text")
            }
            if format == "auto" {
                result["note"] = "binary content omitted to reduce token usage"
                return ToolOutput(JSONValue.object(result).prettyText)
            }
        }
        var body = String(decoding: response.body, as: UTF8.self)
        if format != "raw" && (type.contains("html") || (type.isEmpty && body.lowercased().contains("<html"))) {
            let converted = HTMLText.convert(body)
            body = converted.text
            if let title = converted.title { result["title"] = .string(title) }
        }
        let limit = arguments.maxBodyChars ?? Self.defaultBodyChars
        if body.count > limit || response.truncated {
            body = String(body.prefix(limit))
            result["truncated"] = true
        }
        result["body"] = .string(body)
        return ToolOutput(JSONValue.object(result).prettyText)
    }
}

/// `web_search {query, count?, freshness?}` through DuckDuckGo, SearXNG or Google.
struct WebSearch: TypedTool {
    struct Arguments: Decodable, Sendable {
        var query: String
        var count: Int?
        var freshness: String?
    }

    let client: WebClient
    let config: WebSearchConfig
    let environment: [String: String]
    var safety: SafetyTier { .sideEffecting }
    var timeout: Duration { .seconds(30) }
    var declaration: ToolDeclaration {
        ToolDeclaration(
            name: "web_search", description: "Search the web. Returns titles, URLs and snippets.",
            parameters: Schema.object(
                [
                    "query": Schema.string("What to search for", minLength: 1, maxLength: 400),
                    "count": Schema.integer("Number of results (default 5)", minimum: 1, maximum: 10),
                    "freshness": Schema.string(
                        "Only results from the last day/week/month/year", enum: ["day", "week", "month", "year"]),
                ], required: ["query"]))
    }

    func run(_ arguments: Arguments, context: ToolContext) async throws -> ToolOutput {
        let count = arguments.count ?? 5
        let (url, base) = try searchURL(arguments, count: count)
        let response = try await client.get(url, accept: "application/json", tool: "web_search")
        guard (200..<300).contains(response.status) else {
            throw ToolError.executionFailed(
                tool: "web_search", message: "\(config.provider.rawValue) returned status \(response.status)")
        }
        let json: JSONValue
        do {
            json = try JSONValue(parsing: Data(response.body))
        } catch {
            throw ToolError.executionFailed(
                tool: "web_search", message: "\(config.provider.rawValue) sent invalid JSON (\(error))")
        }
        let results = Array(Self.results(json, provider: config.provider).prefix(count))
        let document: JSONValue = [
            "query": .string(arguments.query), "provider": .string(config.provider.rawValue), "base_url": .string(base),
            "result_count": .integer(results.count),
            "results": .array(
                results.map { ["title": .string($0.title), "url": .string($0.url), "snippet": .string($0.snippet)] }),
        ]
        return ToolOutput(document.prettyText)
    }

    func searchURL(_ arguments: Arguments, count: Int) throws(ToolError) -> (URL, String) {
        var components: URLComponents
        let base: String
        switch config.provider {
        case .duckduckgo:
            base = config.baseURL ?? "https://api.duckduckgo.com"
            components = URLComponents(string: base + "/")!
            components.queryItems = [
                .init(name: "q", value: arguments.query), .init(name: "format", value: "json"),
                .init(name: "no_html", value: "1"), .init(name: "skip_disambig", value: "1"),
            ]
        case .searxng:
            guard let configured = config.baseURL else {
                throw .executionFailed(tool: "web_search", message: "tools.web_search.base_url must be set for SearXNG")
            }
            base = configured
            components = URLComponents(string: configured.trimmingSuffix("/") + "/search")!
            components.queryItems = [.init(name: "q", value: arguments.query), .init(name: "format", value: "json")]
            if let freshness = arguments.freshness {
                components.queryItems!.append(.init(name: "time_range", value: freshness))
            }
        case .google:
            guard let key = environment[config.apiKeyEnv], !key.isEmpty, let engine = environment[config.engineIDEnv],
                !engine.isEmpty
            else {
                throw .executionFailed(
                    tool: "web_search",
                    message:
                        "Google search needs the environment variables \(config.apiKeyEnv) and \(config.engineIDEnv)")
            }
            base = config.baseURL ?? "https://www.googleapis.com"
            components = URLComponents(string: base.trimmingSuffix("/") + "/customsearch/v1")!
            components.queryItems = [
                .init(name: "key", value: key), .init(name: "cx", value: engine),
                .init(name: "q", value: arguments.query),
                .init(name: "num", value: String(count)),
            ]
            if let freshness = arguments.freshness {
                components.queryItems!.append(.init(name: "dateRestrict", value: String(freshness.prefix(1)) + "1"))
            }
        }
        guard let url = components.url else {
            throw .invalidArguments(tool: "web_search", message: "cannot build a search URL")
        }
        return (url, base)
    }

    struct Result: Hashable {
        var title: String
        var url: String
        var snippet: String
    }

    static func results(_ json: JSONValue, provider: WebSearchProvider) -> [Result] {
        switch provider {
        case .searxng:
            return (json["results"]?.arrayValue ?? []).compactMap { item in
                guard let url = item["url"]?.stringValue else { return nil }
                return Result(
                    title: item["title"]?.stringValue ?? url, url: url, snippet: item["content"]?.stringValue ?? "")
            }
        case .google:
            return (json["items"]?.arrayValue ?? []).compactMap { item in
                guard let url = item["link"]?.stringValue else { return nil }
                return Result(
                    title: item["title"]?.stringValue ?? url, url: url, snippet: item["snippet"]?.stringValue ?? "")
            }
        case .duckduckgo:
            var results: [Result] = []
            if let text = json["AbstractText"]?.stringValue, !text.isEmpty, let url = json["AbstractURL"]?.stringValue {
                results.append(Result(title: json["Heading"]?.stringValue ?? url, url: url, snippet: text))
            }
            func topics(_ list: [JSONValue]) {
                for topic in list {
                    if let nested = topic["Topics"]?.arrayValue {
                        topics(nested)
                    } else if let url = topic["FirstURL"]?.stringValue, let text = topic["Text"]?.stringValue {
                        results.append(
                            Result(title: String(text.prefix { $0 != "-" }).trimmed, url: url, snippet: text))
                    }
                }
            }
            topics(json["Results"]?.arrayValue ?? [])
            topics(json["RelatedTopics"]?.arrayValue ?? [])
            return results
        }
    }
}
