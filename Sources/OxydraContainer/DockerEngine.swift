import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import OxydraCore
import OxydraSandbox

#if canImport(Glibc)
    import Glibc
#endif

/// A failure talking to the container engine, worded for the person who has to fix it.
public enum DockerError: Error, CustomStringConvertible, Sendable, Equatable {
    /// No socket at the path.
    case noSocket(path: String)
    /// The socket exists but this user may not use it.
    case permissionDenied(path: String)
    /// Nothing accepts connections on the socket (the daemon is down).
    case daemonDown(path: String, detail: String)
    /// The engine answered with an error status.
    case api(status: Int, message: String, request: String)
    /// Anything else on the way (timeouts, broken connections, unreadable answers).
    case transport(String)
    /// Assembling an image's root filesystem failed.
    case build(String)

    public var description: String {
        switch self {
        case .noSocket(let path):
            "no Docker or Podman API socket at \(path): install Docker (`sudo apt-get install docker.io`) and start it "
                + "(`sudo systemctl start docker`, or `sudo dockerd`), or point DOCKER_HOST at another socket "
                + "(Podman: `systemctl --user start podman.socket`, DOCKER_HOST=unix://$XDG_RUNTIME_DIR/podman/podman.sock)"
        case .permissionDenied(let path):
            "permission denied on the container engine's socket \(path): add your user to the `docker` group "
                + "(`sudo usermod -aG docker $USER`, then log in again), or use rootless Podman's socket"
        case .daemonDown(let path, let detail):
            "the container engine is not running: nothing accepts connections on \(path) (\(detail)); start it "
                + "(`sudo systemctl start docker`, or `sudo dockerd`)"
        case .api(let status, let message, let request):
            "the container engine refused \(request) (HTTP \(status)): \(message)"
        case .transport(let message):
            "talking to the container engine failed: \(message)"
        case .build(let message):
            "building the image failed: \(message)"
        }
    }
}

/// A client of the Docker Engine HTTP API over its Unix socket (Podman's socket speaks the same
/// API). Only the calls Oxydra needs: ping, version, image import/inspect/remove, and the container
/// life cycle (create, start, wait, stop, remove, inspect, list by label, logs). No `docker` CLI.
public struct DockerEngine: Sendable {
    /// The API version requested; Docker 20.10+ and Podman 3+ serve it.
    public static let apiVersion = "v1.41"

    public let socketPath: String
    let client: HTTPClient

    public init(socketPath: String, client: HTTPClient = .shared) {
        self.socketPath = socketPath
        self.client = client
    }

    /// `$DOCKER_HOST` when it names a Unix socket (`unix:///path`), else `/var/run/docker.sock`.
    public static func socketPath(environment: [String: String]) -> String {
        if let host = environment["DOCKER_HOST"], host.hasPrefix("unix://") {
            return String(host.dropFirst("unix://".count))
        }
        return "/var/run/docker.sock"
    }

    // MARK: Engine

    /// "OK" when the engine answers.
    public func ping() async throws(DockerError) -> String {
        String(buffer: try await call(.GET, "/_ping"))
    }

    /// The engine's version document (`Version`, `ApiVersion`, `Os`, …).
    public func version() async throws(DockerError) -> JSONValue {
        try await json(.GET, "/version")
    }

    // MARK: Images

    /// Imports a root filesystem tarball as `repository:tag` (`POST /images/create?fromSrc=-`),
    /// with Dockerfile-style `changes` (`CMD`, `USER`, `ENV`, `LABEL`, `WORKDIR`, `ENTRYPOINT`).
    /// Returns the image id.
    public func importImage(tarball path: String, repository: String, tag: String, changes: [String] = [])
        async throws(DockerError) -> String
    {
        var query = [("fromSrc", "-"), ("repo", repository), ("tag", tag)]
        query += changes.map { ("changes", $0) }
        let size = FileReader.size(path)
        guard size >= 0 else { throw .transport("cannot read the image tarball \(path)") }
        let body = HTTPClientRequest.Body.stream(FileReader(path: path), length: .known(Int64(size)))
        let answer = try await call(
            .POST, "/images/create", query: query, body: body, contentType: "application/x-tar",
            timeout: .seconds(600))
        // The answer is a stream of JSON progress documents; an error arrives as `{"error": …}`.
        for line in String(buffer: answer).split(whereSeparator: \.isNewline) {
            guard let document = try? JSONValue(parsing: String(line)) else { continue }
            if let error = document["error"]?.stringValue {
                throw .api(status: 200, message: error, request: "importing \(repository):\(tag)")
            }
        }
        guard let image = try await inspectImage("\(repository):\(tag)"), let id = image["Id"]?.stringValue else {
            throw .transport("the engine accepted the import of \(repository):\(tag) but does not know the image")
        }
        return id
    }

    /// The image's inspect document, or nil when there is no such image.
    public func inspectImage(_ reference: String) async throws(DockerError) -> JSONValue? {
        try await optionalJSON(.GET, "/images/\(Self.escape(reference))/json")
    }

    /// Adds the name `repository:tag` to an image.
    public func tagImage(_ image: String, repository: String, tag: String) async throws(DockerError) {
        _ = try await call(
            .POST, "/images/\(Self.escape(image))/tag", query: [("repo", repository), ("tag", tag)])
    }

    public func removeImage(_ reference: String, force: Bool = false) async throws(DockerError) {
        _ = try await call(.DELETE, "/images/\(Self.escape(reference))", query: [("force", force ? "1" : "0")])
    }

    // MARK: Containers

    /// Creates a container named `name` from an API `ContainerConfig` document (with its
    /// `HostConfig`); returns its id.
    public func createContainer(name: String, spec: JSONValue) async throws(DockerError) -> String {
        let answer = try await json(.POST, "/containers/create", query: [("name", name)], json: spec)
        guard let id = answer["Id"]?.stringValue else {
            throw .transport("the engine created \(name) but returned no id")
        }
        return id
    }

    public func startContainer(_ id: String) async throws(DockerError) {
        _ = try await call(.POST, "/containers/\(Self.escape(id))/start")
    }

    /// Asks the container to stop (SIGTERM), killing it after `graceSeconds`.
    public func stopContainer(_ id: String, graceSeconds: Int = 10) async throws(DockerError) {
        _ = try await call(
            .POST, "/containers/\(Self.escape(id))/stop", query: [("t", String(graceSeconds))],
            timeout: .seconds(Int64(graceSeconds) + 30))
    }

    public func removeContainer(_ id: String, force: Bool = false) async throws(DockerError) {
        _ = try await call(.DELETE, "/containers/\(Self.escape(id))", query: [("force", force ? "1" : "0")])
    }

    /// Waits until the container exits; its exit status.
    public func waitContainer(_ id: String, timeout: Duration = .seconds(120)) async throws(DockerError) -> Int {
        let answer = try await json(.POST, "/containers/\(Self.escape(id))/wait", timeout: timeout)
        guard let status = answer["StatusCode"]?.intValue else {
            throw .transport("the engine's wait answer has no StatusCode: \(answer.compactText)")
        }
        return status
    }

    /// The container's inspect document, or nil when there is no such container.
    public func inspectContainer(_ id: String) async throws(DockerError) -> JSONValue? {
        try await optionalJSON(.GET, "/containers/\(Self.escape(id))/json")
    }

    /// Containers carrying every one of `labels` (running and stopped).
    public func listContainers(labels: [String: String]) async throws(DockerError) -> [JSONValue] {
        let filters: JSONValue = [
            "label": .array(labels.sorted { $0.key < $1.key }.map { .string("\($0.key)=\($0.value)") })
        ]
        let answer = try await json(
            .GET, "/containers/json", query: [("all", "1"), ("filters", filters.compactText)])
        return answer.arrayValue ?? []
    }

    /// The container's output so far (the last `tail` lines of each stream when given).
    public func logs(_ id: String, tail: Int? = nil) async throws(DockerError) -> (stdout: String, stderr: String) {
        let answer = try await call(
            .GET, "/containers/\(Self.escape(id))/logs",
            query: [("stdout", "1"), ("stderr", "1"), ("tail", tail.map(String.init) ?? "all")])
        return Self.demultiplex(answer)
    }

    /// One line of a container's output.
    public struct LogLine: Sendable, Hashable {
        /// `stdout` or `stderr`.
        public var stream: String
        /// The engine's RFC 3339 timestamp (nanoseconds), usable as the next call's `since`.
        public var timestamp: String
        public var text: String
    }

    /// The container's output as lines in the order written, with their timestamps: the last
    /// `tail` lines, or those after `since` (a timestamp from an earlier line).
    public func logLines(_ id: String, tail: Int? = nil, since: String? = nil) async throws(DockerError) -> [LogLine] {
        var query = [("stdout", "1"), ("stderr", "1"), ("timestamps", "1"), ("tail", tail.map(String.init) ?? "all")]
        if let since { query.append(("since", Self.unixTime(since) ?? since)) }
        let answer = try await call(.GET, "/containers/\(Self.escape(id))/logs", query: query)
        var lines: [LogLine] = []
        for (stream, payload) in Self.frames(answer) {
            for raw in String(decoding: payload, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true)
            {
                let parts = raw.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
                let line = LogLine(
                    stream: stream == 2 ? "stderr" : "stdout", timestamp: String(parts[0]),
                    text: parts.count > 1 ? String(parts[1]) : "")
                // `since` is inclusive: drop the lines an earlier call returned.
                if let since, line.timestamp <= since { continue }
                lines.append(line)
            }
        }
        return lines
    }

    /// `2026-12-02T21:08:59.123456789Z` → `1796245739.123456789` (the form `since` accepts).
    static func unixTime(_ timestamp: String) -> String? {
        let parts = timestamp.split(separator: ".", maxSplits: 1)
        let fields = parts.first?.split(whereSeparator: { "-T:Z".contains($0) }).compactMap { Int32($0) } ?? []
        guard fields.count == 6 else { return nil }
        var time = tm()
        time.tm_year = fields[0] - 1900
        time.tm_mon = fields[1] - 1
        time.tm_mday = fields[2]
        time.tm_hour = fields[3]
        time.tm_min = fields[4]
        time.tm_sec = fields[5]
        let epoch = timegm(&time)
        let fraction = parts.count > 1 ? parts[1].prefix { $0.isNumber } : ""
        return "\(epoch)" + (fraction.isEmpty ? "" : ".\(fraction)")
    }

    /// The frames of a multiplexed stream (stream 1 = stdout, 2 = stderr); a TTY stream is one frame.
    static func frames(_ buffer: ByteBuffer) -> [(UInt8, [UInt8])] {
        var buffer = buffer
        var frames: [(UInt8, [UInt8])] = []
        while buffer.readableBytes >= 8 {
            let kind = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) ?? 0
            let padding = buffer.getBytes(at: buffer.readerIndex + 1, length: 3) ?? []
            guard kind <= 2, padding == [0, 0, 0] else {
                return frames + [(1, buffer.readBytes(length: buffer.readableBytes) ?? [])]
            }
            buffer.moveReaderIndex(forwardBy: 4)
            let length = Int(buffer.readInteger(endianness: .big, as: UInt32.self) ?? 0)
            guard let payload = buffer.readBytes(length: min(length, buffer.readableBytes)) else { break }
            frames.append((kind, payload))
        }
        return frames
    }

    // MARK: Networks

    /// Creates a bridge network (or returns the id of the one already named so).
    public func ensureNetwork(name: String, labels: [String: String]) async throws(DockerError) -> String {
        if let existing = try await optionalJSON(.GET, "/networks/\(Self.escape(name))"),
            let id = existing["Id"]?.stringValue
        {
            return id
        }
        let answer = try await json(
            .POST, "/networks/create",
            json: [
                "Name": .string(name), "Driver": "bridge", "CheckDuplicate": true,
                "Labels": .object(labels.mapValues(JSONValue.string)),
            ])
        guard let id = answer["Id"]?.stringValue else {
            throw .transport("the engine created \(name) but returned no id")
        }
        return id
    }

    /// The network's inspect document (`Containers` lists what is attached), or nil.
    public func inspectNetwork(_ name: String) async throws(DockerError) -> JSONValue? {
        try await optionalJSON(.GET, "/networks/\(Self.escape(name))")
    }

    /// Networks carrying every one of `labels`.
    public func listNetworks(labels: [String: String]) async throws(DockerError) -> [JSONValue] {
        let filters: JSONValue = [
            "label": .array(labels.sorted { $0.key < $1.key }.map { .string("\($0.key)=\($0.value)") })
        ]
        return try await json(.GET, "/networks", query: [("filters", filters.compactText)]).arrayValue ?? []
    }

    /// Splits the engine's multiplexed log stream (8-byte frame headers: stream, 0, 0, 0, big-endian
    /// length) into standard output and standard error. A container with a TTY sends plain text.
    static func demultiplex(_ buffer: ByteBuffer) -> (stdout: String, stderr: String) {
        var out: [UInt8] = []
        var err: [UInt8] = []
        for (kind, payload) in frames(buffer) {
            if kind == 2 { err += payload } else { out += payload }
        }
        return (String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    // MARK: Transport

    static func escape(_ segment: String) -> String {
        var escaped = ""
        for byte in segment.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                UInt8(ascii: "~"), UInt8(ascii: ":"):
                escaped.append(Character(Unicode.Scalar(byte)))
            default:
                escaped +=
                    "%" + String(byte >> 4, radix: 16, uppercase: true)
                    + String(byte & 0xF, radix: 16, uppercase: true)
            }
        }
        return escaped
    }

    private func json(
        _ method: HTTPMethod, _ path: String, query: [(String, String)] = [], json body: JSONValue? = nil,
        timeout: Duration = .seconds(60)
    ) async throws(DockerError) -> JSONValue {
        let answer = try await call(
            method, path, query: query, body: body.map { .bytes(ByteBuffer(string: $0.compactText)) },
            contentType: body == nil ? nil : "application/json", timeout: timeout)
        do {
            return try JSONValue(parsing: String(buffer: answer))
        } catch {
            throw .transport("\(method) \(path) answered with invalid JSON: \(error)")
        }
    }

    private func optionalJSON(_ method: HTTPMethod, _ path: String) async throws(DockerError) -> JSONValue? {
        do {
            return try await json(method, path)
        } catch .api(404, _, _) {
            return nil
        }
    }

    /// One request; a status ≥ 300 becomes ``DockerError/api(status:message:request:)`` with the
    /// engine's own `message`.
    func call(
        _ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: HTTPClientRequest.Body? = nil,
        contentType: String? = nil, timeout: Duration = .seconds(60)
    ) async throws(DockerError) -> ByteBuffer {
        try checkSocket()
        var uri = "/" + Self.apiVersion + path
        if !query.isEmpty {
            uri += "?" + query.map { Self.escape($0.0) + "=" + Self.escape($0.1) }.joined(separator: "&")
        }
        guard let url = URL(httpURLWithSocketPath: socketPath, uri: uri) else {
            throw .transport("cannot form a request URL for the socket \(socketPath)")
        }
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = method
        request.headers.add(name: "Host", value: "docker")
        if let contentType { request.headers.add(name: "Content-Type", value: contentType) }
        if let body { request.body = body }
        let label = "\(method) \(path)"
        do {
            let response = try await client.execute(request, timeout: .init(timeout))
            let buffer = try await response.body.collect(upTo: 256 << 20)
            guard response.status.code < 300 else {
                let text = String(buffer: buffer)
                let message = (try? JSONValue(parsing: text))?["message"]?.stringValue ?? text.trimmed
                throw DockerError.api(status: Int(response.status.code), message: message, request: label)
            }
            return buffer
        } catch let error as DockerError {
            throw error
        } catch {
            throw .transport("\(label): \(error)")
        }
    }

    /// Names the socket problem before connecting (a connection error would only say "failed").
    private func checkSocket() throws(DockerError) {
        var info = stat()
        guard stat(socketPath, &info) == 0 else {
            if errno == EACCES { throw .permissionDenied(path: socketPath) }
            throw .noSocket(path: socketPath)
        }
        guard (info.st_mode & S_IFMT) == S_IFSOCK else { throw .noSocket(path: socketPath) }
        if access(socketPath, R_OK | W_OK) != 0 { throw .permissionDenied(path: socketPath) }
        // A socket left by a dead daemon refuses at once here, where the HTTP client's pool would
        // keep retrying until the request's deadline.
        do {
            close(try UnixSocket.connect(to: socketPath))
        } catch {
            switch error.errorNumber {
            case EACCES, EPERM: throw .permissionDenied(path: socketPath)
            case ECONNREFUSED: throw .daemonDown(path: socketPath, detail: "connection refused")
            case 0: throw .transport(error.description)
            default: throw .daemonDown(path: socketPath, detail: String(cString: strerror(error.errorNumber)))
            }
        }
    }
}

/// A file read in 1 MiB pieces as an async sequence of buffers (the image import body).
struct FileReader: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let path: String

    static func size(_ path: String) -> Int {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_size) : -1
    }

    func makeAsyncIterator() -> Iterator { Iterator(path: path) }

    final class Iterator: AsyncIteratorProtocol {
        private var descriptor: Int32
        init(path: String) { descriptor = open(path, O_RDONLY | O_CLOEXEC) }
        deinit { if descriptor >= 0 { close(descriptor) } }

        func next() async throws -> ByteBuffer? {
            guard descriptor >= 0 else { throw DockerError.transport("cannot open the image tarball") }
            var buffer = ByteBufferAllocator().buffer(capacity: 1 << 20)
            var failed = false
            let count = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 1 << 20) { raw in
                let result = read(descriptor, raw.baseAddress, raw.count)
                failed = result < 0
                return Swift.max(0, result)
            }
            if failed { throw DockerError.build("reading the image tarball failed: errno \(errno)") }
            return count == 0 ? nil : buffer
        }
    }
}
