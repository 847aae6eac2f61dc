import Dispatch
import OxydraCore
import Subprocess
import Synchronization

#if canImport(System)
    import System
#else
    import SystemPackage
#endif

/// The result of running a product executable to completion.
public struct ProcessResult: Sendable {
    public var exitCode: Int32
    public var standardOutput: String
    public var standardError: String
}

/// Runs the package's own executables (`runner`, `oxydra-vm`, ...) as real child processes.
public enum ChildProcess {
    /// The directory holding the built products: `OXYDRA_BIN_DIR` if set, else the directory of the
    /// running test bundle (SwiftPM puts tests and executables side by side in `.build/<config>/`).
    public static var productsDirectory: String {
        if let override = ProcessInfo.processInfo.environment["OXYDRA_BIN_DIR"], !override.isEmpty {
            return override
        }
        var path = CommandLine.arguments[0]
        if !path.hasPrefix("/") { path = FileManager.default.currentDirectoryPath + "/" + path }
        var directory = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        // On macOS the bundle is `<dir>/X.xctest/Contents/MacOS/X`.
        while directory.contains(".xctest") { directory = String(directory[..<directory.lastIndex(of: "/")!]) }
        return directory
    }

    public static func path(of product: String) -> String { productsDirectory + "/" + product }

    /// Runs `product` with `arguments` in `workingDirectory` with exactly `environment` (nothing is
    /// inherited, so host configuration cannot leak into tests), and collects its output.
    public static func run(
        _ product: String, _ arguments: [String], environment: [String: String], workingDirectory: String,
        outputLimit: Int = 4 << 20
    ) async throws -> ProcessResult {
        let executable = path(of: product)
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw TestSupportError("\(executable) is not built; run `swift build` first or set OXYDRA_BIN_DIR")
        }
        return try await runTool(
            executable, arguments, environment: environment, workingDirectory: workingDirectory,
            outputLimit: outputLimit)
    }
}

extension ChildProcess {
    /// Runs a system tool (absolute path) with a minimal environment (or exactly `environment`)
    /// and collects its output.
    public static func runTool(
        _ path: String, _ arguments: [String], environment: [String: String]? = nil, workingDirectory: String? = nil,
        outputLimit: Int = 1 << 20
    ) async throws -> ProcessResult {
        var env: [Environment.Key: String] = [:]
        for (key, value) in environment ?? ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"] {
            env[Environment.Key(stringLiteral: key)] = value
        }
        let result = try await Subprocess.run(
            .path(FilePath(path)), arguments: Arguments(arguments), environment: .custom(env),
            workingDirectory: workingDirectory.map { FilePath($0) }, output: .string(limit: outputLimit),
            error: .string(limit: outputLimit))
        let code: Int32
        switch result.terminationStatus {
        case .exited(let status): code = Int32(status)
        case .signaled(let signal): code = 128 + Int32(signal)
        }
        return ProcessResult(
            exitCode: code, standardOutput: result.standardOutput, standardError: result.standardError)
    }

    /// The same, blocking (for `defer` clean-ups that must finish).
    public static func runToolSynchronously(_ path: String, _ arguments: [String]) -> ProcessResult? {
        let done = DispatchSemaphore(value: 0)
        let box = Mutex<ProcessResult?>(nil)
        Task.detached {
            let result = try? await runTool(path, arguments)
            box.withLock { $0 = result }
            done.signal()
        }
        done.wait()
        return box.withLock { $0 }
    }
}

extension ChildProcess {
    /// A running product: its output lines as they arrive, and a way to signal it.
    public struct Running: Sendable {
        public let processIdentifier: Int32
        let signal: @Sendable (Int32) -> Void

        /// Sends `signal` (e.g. `SIGKILL`) to the process.
        public func send(_ signal: Int32) { self.signal(signal) }
    }

    /// Starts `product` and calls `body` with the running process and its standard output lines;
    /// returns `body`'s result and the exit code once the process has ended.
    public static func launch<T: Sendable>(
        _ product: String, _ arguments: [String], environment: [String: String], workingDirectory: String,
        body: @escaping @Sendable (Running, AsyncThrowingStream<String, any Error>) async throws -> T
    ) async throws -> (result: T, exitCode: Int32) {
        let executable = path(of: product)
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw TestSupportError("\(executable) is not built; run `swift build` first or set OXYDRA_BIN_DIR")
        }
        var env: [Environment.Key: String] = [:]
        for (key, value) in environment { env[Environment.Key(stringLiteral: key)] = value }
        let configuration = Configuration(
            executable: .path(FilePath(executable)), arguments: Arguments(arguments), environment: .custom(env),
            workingDirectory: FilePath(workingDirectory))
        let outcome = try await Subprocess.run(configuration, input: .none, output: .sequence, error: .discarded) {
            execution in
            let pid = execution.processIdentifier.value
            let running = Running(processIdentifier: pid) { signal in
                try? execution.send(signal: Signal(rawValue: signal))
            }
            let (lines, continuation) = AsyncThrowingStream<String, any Error>.makeStream()
            async let result = body(running, lines)
            do {
                for try await line in execution.standardOutput.strings() { continuation.yield(line) }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
            return try await result
        }
        let code: Int32
        switch outcome.terminationStatus {
        case .exited(let status): code = Int32(status)
        case .signaled(let signal): code = 128 + Int32(signal)
        }
        return (outcome.closureResult, code)
    }
}
