// Oxydra benchmarks. Build and run in release:
//
//     swift run -c release oxydra-benchmarks [sse|provider|runtime|memory|guest|shell|container|micro_vm|json|tui|sessions|budget|approval|web|telegram|scrub|all]
//
// Each benchmark prints absolute figures and a ratio against a floor measured in the same run
// on the same data, because absolute times on a shared machine are noise.

import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import OxydraConfig
import OxydraCore
import OxydraMemory
import OxydraProviders
import OxydraRuntime
import OxydraTesting
import OxydraTools

let clock = ContinuousClock()

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted[sorted.count / 2]
}

/// `min/median/max` of at least five samples, each scaled and rounded to two decimals.
func spread(_ values: [Double], scale: Double = 1) -> String {
    precondition(values.count >= 5, "a figure needs at least five samples, got \(values.count)")
    let sorted = values.sorted()
    return [sorted.first!, sorted[sorted.count / 2], sorted.last!].map { String(format2: $0 * scale) }.joined(
        separator: "/")
}

/// SSE parse throughput against a plain newline scan of the same bytes (the floor: any parser must
/// at least look at every byte).
func benchmarkSSE() throws {
    var text = ""
    var index = 0
    while text.utf8.count < 64 << 20 {
        text +=
            #"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"word \#(index) é "},"finish_reason":null}]}"#
        text += "\n\n"
        index += 1
    }
    let bytes = Array(text.utf8)
    let piece = 16 * 1024
    var parseTimes: [Double] = []
    var scanTimes: [Double] = []
    var events = 0
    var lines = 0
    for _ in 0..<5 {
        let start = clock.now
        var parser = SSEParser()
        events = 0
        try bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let end = min(offset + piece, raw.count)
                events += try parser.feed(UnsafeRawBufferPointer(rebasing: raw[offset..<end])).count
                offset = end
            }
        }
        events += try parser.finish().count
        parseTimes.append(seconds(clock.now - start))

        let scanStart = clock.now
        lines = 0
        bytes.withUnsafeBufferPointer { buffer in
            for byte in buffer where byte == 0x0A { lines += 1 }
        }
        scanTimes.append(seconds(clock.now - scanStart))
    }
    let megabytes = Double(bytes.count) / 1_048_576
    let parse = median(parseTimes)
    let scan = median(scanTimes)
    print(
        "sse: \(events) events, \(String(format2: megabytes)) MB; parse min/median/max \(spread(parseTimes, scale: 1000)) ms "
            + "(\(String(format2: megabytes / parse)) MB/s); newline scan floor \(spread(scanTimes, scale: 1000)) ms "
            + "(\(String(format2: megabytes / scan)) MB/s); ratio of medians \(String(format2: parse / scan))x (\(lines) lines)"
    )
}

/// A 200-chunk streamed reply consumed through OpenAIChatProvider (with retries) vs. a raw
/// AsyncHTTPClient read of the same response from the same server.
func benchmarkProvider() async throws {
    let server = try await ScriptedModelServer.start()
    let reply = ScriptedReply.text(String(repeating: "token ", count: 200))
    var config = AgentConfig()
    config.providers.registry["openai"]?.baseURL = server.baseURL
    let provider = try ProviderFactory.selected(config, catalog: .builtIn, environment: ["OPENAI_API_KEY": "k"])
    let request = ModelRequest(model: "gpt-4o-mini", messages: [.user("Hi")])
    let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
    let rawBody = #"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}],"stream":true}"#

    func viaProvider() async throws -> Double {
        server.enqueue(reply)
        let start = clock.now
        var deltas = 0
        for try await event in provider.stream(request) {
            if case .textDelta = event { deltas += 1 }
        }
        precondition(deltas == 200, "expected 200 deltas, got \(deltas)")
        return seconds(clock.now - start)
    }

    func raw() async throws -> Double {
        server.enqueue(reply)
        let start = clock.now
        var httpRequest = HTTPClientRequest(url: server.baseURL + "/v1/chat/completions")
        httpRequest.method = .POST
        httpRequest.headers.add(name: "Content-Type", value: "application/json")
        httpRequest.body = .bytes(ByteBuffer(string: rawBody))
        let response = try await client.execute(httpRequest, timeout: .seconds(30))
        var bytes = 0
        for try await chunk in response.body { bytes += chunk.readableBytes }
        precondition(bytes > 0)
        return seconds(clock.now - start)
    }

    for _ in 0..<20 {
        _ = try await viaProvider()
        _ = try await raw()
    }
    var providerTimes: [Double] = []
    var rawTimes: [Double] = []
    for _ in 0..<200 {
        providerTimes.append(try await viaProvider())
        rawTimes.append(try await raw())
    }
    let ours = median(providerTimes)
    let floor = median(rawTimes)
    print(
        "provider: 200-chunk stream min/median/max of 200 \(spread(providerTimes, scale: 1000)) ms via "
            + "OpenAIChatProvider+ReliableProvider, \(spread(rawTimes, scale: 1000)) ms raw AsyncHTTPClient read; "
            + "ratio of medians \(String(format2: ours / floor))x")
    try await client.shutdown()
    try await server.shutdown()
}

extension String {
    init(format2 value: Double) {
        let rounded = (value * 100).rounded() / 100
        self = "\(rounded)"
    }
}

/// A runtime configured like the guest's: built-in tools on the workspace at `root`, their system
/// prompt, `store`.
func builtInRuntime(provider: any ModelProvider, config: AgentConfig, root: String, store: any MemoryStore) throws
    -> AgentRuntime
{
    let registry = BuiltInTools.registry(workspace: Workspace(root: root), config: config, environment: [:])
    return AgentRuntime(
        provider: provider, tools: registry, model: try ModelSelection.resolve(config, catalog: .builtIn),
        settings: RuntimeSettings(config.runtime),
        systemPrompt: SystemPrompt.build(
            tools: registry.declarations, memoryEnabled: false, shellAvailable: false, operatorText: nil),
        store: store)
}

/// Runtime overhead per turn: a plain turn through AgentRuntime vs the provider alone on the same
/// script, and the extra time of one tool round trip (a second provider call plus `file_list`).
func benchmarkRuntime() async throws {
    let server = try await ScriptedModelServer.start()
    let directory = try TemporaryDirectory(prefix: "oxydra-bench")
    let root = try directory.createDirectory("ws/u")
    for name in ["shared", "tmp", "vault", ".oxydra"] { _ = try directory.createDirectory("ws/u/\(name)") }
    var config = AgentConfig()
    config.providers.registry["openai"]?.baseURL = server.baseURL
    let provider = try ProviderFactory.selected(config, catalog: .builtIn, environment: ["OPENAI_API_KEY": "k"])
    let runtime = try builtInRuntime(provider: provider, config: config, root: root, store: EphemeralMemoryStore())
    let text = ScriptedReply.text(String(repeating: "token ", count: 50))
    let toolCall = ScriptedReply.toolCalls([
        ScriptedToolCall(id: "c1", name: "file_list", arguments: #"{"path":"/shared"}"#)
    ])

    func providerAlone(_ reply: ScriptedReply) async throws -> Double {
        server.enqueue(reply)
        let request = ModelRequest(
            model: "gpt-4o-mini", messages: [.system("x"), .user("Hi")], tools: runtime.tools.declarations)
        let start = clock.now
        _ = try await provider.stream(request).collect(provider: provider.id)
        return seconds(clock.now - start)
    }
    func plainTurn(_ index: Int) async throws -> Double {
        server.enqueue(text)
        let start = clock.now
        _ = try await runtime.run(session: SessionID("b\(index)"), history: [], input: .user("Hi"))
        return seconds(clock.now - start)
    }
    func toolTurn(_ index: Int) async throws -> Double {
        server.enqueue([toolCall, text])
        let start = clock.now
        _ = try await runtime.run(session: SessionID("t\(index)"), history: [], input: .user("Hi"))
        return seconds(clock.now - start)
    }
    for index in 0..<20 {
        _ = try await providerAlone(text)
        _ = try await plainTurn(index)
        _ = try await toolTurn(index)
    }
    var alone: [Double] = []
    var aloneTool: [Double] = []
    var plain: [Double] = []
    var tool: [Double] = []
    for index in 0..<150 {
        alone.append(try await providerAlone(text))
        aloneTool.append(try await providerAlone(toolCall))
        plain.append(try await plainTurn(index + 100))
        tool.append(try await toolTurn(index + 100))
    }
    let providerTime = median(alone)
    let plainTime = median(plain)
    let extra = median(tool) - plainTime - median(aloneTool)
    print(
        "runtime: plain turn min/median/max of 150 \(spread(plain, scale: 1000)) ms vs provider alone "
            + "\(spread(alone, scale: 1000)) ms; ratio of medians \(String(format2: plainTime / providerTime))x; "
            + "one tool round trip adds \(String(format2: extra * 1000)) ms beyond its provider call (turn with a tool "
            + "\(spread(tool, scale: 1000)) ms)")
    try await server.shutdown()
    directory.remove()
}

/// Memory: durable append latency, hybrid search latency at 10k and 100k chunks next to FTS-only
/// on the same corpus, and the resident size of the loaded vectors.
func benchmarkMemory() async throws {
    let directory = try TemporaryDirectory(prefix: "oxydra-bench-memory")
    defer { directory.remove() }
    func percentile(_ values: [Double], _ p: Double) -> Double {
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
    }

    /// 1,000 one-message appends to a new database with `durability`, each timed.
    func appends(_ name: String, durability: MemoryDurability) async throws -> [Double] {
        let store = try SQLiteMemoryStore(
            path: directory.path + "/\(name).db", user: "bench", durability: durability)
        var times: [Double] = []
        for index in 0..<1000 {
            let start = clock.now
            _ = try await store.append(
                [.user("message \(index) about the quarterly report and the kafka consumer lag")], to: "s")
            times.append(seconds(clock.now - start))
        }
        return times
    }
    let appendTimes = try await appends("append", durability: .full)
    // The floor: the same durable commit of one row, by hand on a bare connection (same pragmas).
    let floorDatabase = try SQLiteConnection(path: directory.path + "/floor.db")
    try floorDatabase.executeScript(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; CREATE TABLE events (id INTEGER PRIMARY KEY, payload TEXT)"
    )
    var floorTimes: [Double] = []
    for index in 0..<1000 {
        let start = clock.now
        try floorDatabase.executeScript("BEGIN IMMEDIATE")
        try floorDatabase.execute(
            "INSERT INTO events (payload) VALUES (?)",
            ["message \(index) about the quarterly report and the kafka consumer lag"])
        try floorDatabase.executeScript("COMMIT")
        floorTimes.append(seconds(clock.now - start))
    }
    print(
        "memory: durable append (synchronous=FULL, indexed) min/median/max of 1000 \(spread(appendTimes, scale: 1000)) ms, "
            + "p99 \(String(format2: percentile(appendTimes, 0.99) * 1000)) ms; floor (one row committed by hand, same "
            + "pragmas) \(spread(floorTimes, scale: 1000)) ms; ratio of medians "
            + "\(String(format2: median(appendTimes) / median(floorTimes)))x")

    // memory.durability = "normal": the same appends without an fsync per commit.
    let normalTimes = try await appends("append-normal", durability: .normal)
    print(
        "memory: append with durability = \"normal\" min/median/max of 1000 \(spread(normalTimes, scale: 1000)) ms, "
            + "p99 \(String(format2: percentile(normalTimes, 0.99) * 1000)) ms; \"full\" costs "
            + "\(String(format2: median(appendTimes) / median(normalTimes)))x that (median)")

    let vocabulary = (0..<5000).map { "term\($0)" }
    var generator = SystemRandomNumberGenerator()
    for size in [10_000, 100_000] {
        let store = try SQLiteMemoryStore(path: directory.path + "/search-\(size).db", user: "bench")
        // Bulk-load a synthetic corpus straight through the store's own insert path.
        let embedder = store.embedder
        var batch: [(String, [Float])] = []
        for index in 0..<size {
            let words = (0..<40).map { _ in vocabulary[Int.random(in: 0..<vocabulary.count, using: &generator)] }
            let text = "chunk \(index) " + words.joined(separator: " ")
            batch.append((text, embedder.embed(text)))
            if batch.count == 5000 || index == size - 1 {
                let rows = batch
                let base = index - rows.count + 1
                try await store.pool.write { db in
                    for (offset, row) in rows.enumerated() {
                        _ = try SQLiteMemoryStore.insertChunk(
                            db, chunkID: "chunk:s:\(base + offset):0", scope: "s", source: "user_message",
                            sequence: base + offset + 1,
                            noteID: nil, text: row.0, vector: row.1, embedder: embedder.id,
                            dimension: embedder.dimension, now: 0)
                    }
                }
                batch.removeAll(keepingCapacity: true)
            }
        }
        _ = try await store.retrieve("warm up", scopes: ["s"], limit: 8)
        var hybrid: [Double] = []
        var keyword: [Double] = []
        for _ in 0..<100 {
            let query = (0..<4).map { _ in vocabulary[Int.random(in: 0..<vocabulary.count, using: &generator)] }.joined(
                separator: " ")
            var start = clock.now
            _ = try await store.retrieve(query, scopes: ["s"], limit: 8)
            hybrid.append(seconds(clock.now - start))
            start = clock.now
            _ = try await store.retrieve(
                query, scopes: ["s"], limit: 8, weights: RetrievalSettings(topK: 8, vectorWeight: 0, keywordWeight: 1))
            keyword.append(seconds(clock.now - start))
        }
        print(
            "memory: \(size) chunks: hybrid min/median/max of 100 \(spread(hybrid, scale: 1000)) ms, p99 "
                + "\(String(format2: percentile(hybrid, 0.99) * 1000)) ms; FTS-only \(spread(keyword, scale: 1000)) ms, "
                + "p99 \(String(format2: percentile(keyword, 0.99) * 1000)) ms; ratio of medians \(String(format2: median(hybrid) / median(keyword)))x; "
                + "vectors resident \(String(format2: Double(store.vectorIndexBytes) / 1_048_576)) MiB")
    }
}

let which = CommandLine.arguments.dropFirst().first ?? "all"
if which == "memory" || which == "all" { try await benchmarkMemory() }
if which == "runtime" || which == "all" { try await benchmarkRuntime() }
if which == "sse" || which == "all" { try benchmarkSSE() }
if which == "provider" || which == "all" { try await benchmarkProvider() }
if which == "guest" || which == "all" { try await benchmarkGuest() }
if which == "shell" || which == "all" { try await benchmarkShell() }
if which == "container" || which == "all" { try await benchmarkContainer() }
if which == "micro_vm" || which == "all" { try await benchmarkMicroVM() }

/// The hand-written JSON parser must earn its place: reading the fields of a streamed OpenAI chunk
/// with `JSONParser` against `JSONDecoder` into a `Decodable` struct of exactly those fields (the
/// floor: what the standard library would cost), in the same run on the same bytes.
func benchmarkJSON() throws {
    struct Chunk: Decodable {
        struct Choice: Decodable {
            struct Delta: Decodable {
                var content: String?
            }
            var index: Int
            var delta: Delta
            var finish_reason: String?
        }
        var id: String
        var choices: [Choice]
    }
    let payload =
        #"{"id":"chatcmpl-scripted","object":"chat.completion.chunk","created":1733000000,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":"token "},"logprobs":null,"finish_reason":null}]}"#
    let data = Data(payload.utf8)
    let count = 20000
    var parser: [Double] = []
    var decoder: [Double] = []
    var checksum = 0
    let jsonDecoder = JSONDecoder()
    for _ in 0..<7 {
        var start = clock.now
        for _ in 0..<count {
            let value = try JSONParser.parse(payload)
            if value["choices"]?.arrayValue?.first?["delta"]?["content"]?.stringValue == "token " { checksum += 1 }
        }
        parser.append(seconds(clock.now - start) / Double(count) * 1e6)
        start = clock.now
        for _ in 0..<count {
            let chunk = try jsonDecoder.decode(Chunk.self, from: data)
            if chunk.choices.first?.delta.content == "token " { checksum += 1 }
        }
        decoder.append(seconds(clock.now - start) / Double(count) * 1e6)
    }
    precondition(checksum == 2 * 7 * count)
    print(
        "json: a streamed chunk read with JSONParser min/median/max \(spread(parser)) µs vs JSONDecoder into a "
            + "Decodable \(spread(decoder)) µs; ratio of medians \(String(format2: median(parser) / median(decoder)))x "
            + "(below 1: the parser is faster)")
}
if which == "json" || which == "all" { try benchmarkJSON() }
if which == "tui" || which == "all" { benchmarkTUI() }
if which == "sessions" || which == "all" { try await benchmarkSessions() }
if which == "budget" || which == "all" { try await benchmarkBudget() }
if which == "approval" || which == "all" { try benchmarkApproval() }
if which == "web" || which == "all" { try await benchmarkWeb() }
if which == "telegram" || which == "all" { try await benchmarkTelegram() }
if which == "scrub" || which == "all" { benchmarkScrub() }
