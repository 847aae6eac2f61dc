import OxydraCore
import OxydraProviders
import OxydraTesting
import Testing

/// The context window of an unlisted local model, asked from the server the way llama.cpp, vLLM
/// and Ollama publish it.
@Suite("Context window discovery")
struct ContextWindowProbeTests {
    @Test func llamaCppProps() async throws {
        let server = try await ScriptedModelServer.start()
        defer { Teardown.run { try? await server.shutdown() } }
        server.route(
            "/props",
            .raw(#"{"default_generation_settings":{"n_ctx":4096,"temperature":0.8}}"#, contentType: "application/json"))
        let found = await ContextWindowProbe.discover(root: server.baseURL, model: "gemma")
        #expect(found == .init(tokens: 4096, source: "llama.cpp /props"))
        #expect(server.requests.isEmpty)
    }

    @Test func vllmModels() async throws {
        let server = try await ScriptedModelServer.start()
        defer { Teardown.run { try? await server.shutdown() } }
        server.route(
            "/v1/models",
            .raw(
                #"{"object":"list","data":[{"id":"other","max_model_len":1},{"id":"qwen","max_model_len":32768}]}"#,
                contentType: "application/json"))
        #expect(await ContextWindowProbe.discover(root: server.baseURL, model: "qwen")?.tokens == 32768)
        #expect(await ContextWindowProbe.discover(root: server.baseURL, model: "missing") == nil)
    }

    @Test func ollamaShow() async throws {
        let server = try await ScriptedModelServer.start()
        defer { Teardown.run { try? await server.shutdown() } }
        server.route(
            "/api/show",
            .raw(
                #"{"model_info":{"general.architecture":"qwen3","qwen3.context_length":40960}}"#,
                contentType: "application/json"))
        #expect(await ContextWindowProbe.discover(root: server.baseURL, model: "qwen3:8b")?.tokens == 40960)
        server.route(
            "/api/show",
            .raw(
                #"{"parameters":"temperature 0.7\nnum_ctx 8192","model_info":{"qwen3.context_length":40960}}"#,
                contentType: "application/json"))
        #expect(await ContextWindowProbe.discover(root: server.baseURL, model: "qwen3:8b")?.tokens == 8192)
        #expect(server.routeRequests.last?.method == "POST")
    }

    @Test func nothingAnswersNothingFound() async {
        #expect(await ContextWindowProbe.discover(root: "http://127.0.0.1:1", model: "x") == nil)
    }
}
