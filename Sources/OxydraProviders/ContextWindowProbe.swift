import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import OxydraCore

/// Asks a local model server how long its context window is, for models no catalog lists: a
/// budget that assumes 128k tokens on a server started with `-c 4096` overflows on the first long
/// prompt. Tried in order, each with a short timeout; the first answer wins:
/// - llama.cpp `GET /props` → `default_generation_settings.n_ctx` (or `n_ctx`);
/// - vLLM (and other OpenAI-compatible servers) `GET /v1/models` → the model's `max_model_len`;
/// - Ollama `POST /api/show {"model"}` → `model_info.<arch>.context_length`, or `num_ctx` in
///   `parameters` when the model file sets one.
public enum ContextWindowProbe {
    public struct Found: Sendable, Hashable {
        public var tokens: Int
        /// What answered, for logs (`llama.cpp /props`).
        public var source: String

        public init(tokens: Int, source: String) {
            self.tokens = tokens
            self.source = source
        }
    }

    /// `root`: the server's base URL without the API version (``ProviderEntry/normalizedBaseURL(for:)``).
    public static func discover(
        root: String, model: String, headers: [(String, String)] = [], timeout: Duration = .milliseconds(1500)
    )
        async -> Found?
    {
        if let props = await json(.GET, root + "/props", headers: headers, timeout: timeout) {
            let settings = props["default_generation_settings"]
            if let tokens = (settings?["n_ctx"] ?? props["n_ctx"])?.intValue, tokens > 0 {
                return Found(tokens: tokens, source: "llama.cpp /props")
            }
        }
        if let models = await json(.GET, root + "/v1/models", headers: headers, timeout: timeout),
            let entry = models["data"]?.arrayValue?.first(where: { $0["id"]?.stringValue == model }),
            let tokens = entry["max_model_len"]?.intValue, tokens > 0
        {
            return Found(tokens: tokens, source: "/v1/models max_model_len")
        }
        if let show = await json(
            .POST, root + "/api/show", body: ["model": .string(model)], headers: headers, timeout: timeout)
        {
            if let parameters = show["parameters"]?.stringValue,
                let line = parameters.split(separator: "\n").first(where: { $0.hasPrefix("num_ctx") }),
                let tokens = line.split(separator: " ", omittingEmptySubsequences: true).last.flatMap({ Int($0) }),
                tokens > 0
            {
                return Found(tokens: tokens, source: "Ollama num_ctx")
            }
            if let info = show["model_info"]?.objectValue,
                let tokens = info.first(where: { $0.key.hasSuffix(".context_length") })?.value.intValue, tokens > 0
            {
                return Found(tokens: tokens, source: "Ollama context_length")
            }
        }
        return nil
    }

    private static func json(
        _ method: HTTPMethod, _ url: String, body: JSONValue? = nil, headers: [(String, String)], timeout: Duration
    ) async -> JSONValue? {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.replaceOrAdd(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body.compactText))
        }
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: TimeAmount(timeout))
            guard response.status == .ok else { return nil }
            let buffer = try await response.body.collect(upTo: 1 << 20)
            return try JSONParser.parse(String(buffer: buffer))
        } catch {
            return nil
        }
    }
}
