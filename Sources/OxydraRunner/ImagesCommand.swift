import OxydraConfig
import OxydraContainer
import OxydraCore
import OxydraSandbox

#if canImport(Glibc)
    import Glibc
#endif

/// `runner images build|list`: the container tier's guest images, built on this host from the
/// binaries beside `runner` (see ``GuestImageBuilder``) and imported through the Docker Engine API.
public enum ImagesCommand {
    /// Builds (or reuses, when their inputs are unchanged) the images named in `[guest_images]`.
    public static func build(
        _ context: RunnerContext, only: GuestImageBuilder.Role?, json: Bool,
        progress: @escaping @Sendable (String) -> Void
    ) async -> CommandOutput {
        let images: OxydraCore.GuestImages
        switch guestImages(context) {
        case .success(let configured): images = configured
        case .failure(let output): return output
        }
        let engine = ContainerGuest.engine(context)
        let work: TemporaryWorkDirectory
        do {
            work = try TemporaryWorkDirectory()
        } catch {
            return .error("cannot create a work directory for the image build: \(error)")
        }
        defer { work.remove() }
        var reports: [GuestImageBuilder.Report] = []
        for role in GuestImageBuilder.Role.allCases where only == nil || only == role {
            guard let executable = executable(for: role, context) else {
                return .error(
                    "cannot find the \(role.executable) executable (looked beside runner, at $\(variable(for: role)) "
                        + "and on PATH); build it first (`swift build -c release`)")
            }
            do {
                reports.append(
                    try await GuestImageBuilder.build(
                        role, executable: executable, reference: images.reference(role),
                        version: OxydraVersion.current, engine: engine, workDirectory: work.path, progress: progress))
            } catch {
                return .error(error.description)
            }
        }
        if json {
            let array = JSONValue.array(
                reports.map { report in
                    [
                        "role": .string(report.role.rawValue), "reference": .string(report.reference),
                        "id": .string(report.id), "content_hash": .string(report.contentHash),
                        "reused": .bool(report.reused), "size_bytes": .integer(report.sizeBytes),
                    ]
                })
            return CommandOutput(standardOutput: array.prettyText + "\n")
        }
        let lines = reports.map { report in
            "\(report.role.rawValue) \(report.reference) \(report.id.prefix(19)) "
                + "\(report.sizeBytes / 1_048_576) MiB\(report.reused ? " (unchanged, reused)" : "")"
        }
        return CommandOutput(standardOutput: lines.joined(separator: "\n") + "\n")
    }

    /// What is installed for each role and whether it was built from this build's binaries.
    public static func list(_ context: RunnerContext, json: Bool) async -> CommandOutput {
        let images: OxydraCore.GuestImages
        switch guestImages(context) {
        case .success(let configured): images = configured
        case .failure(let output): return output
        }
        let engine = ContainerGuest.engine(context)
        var rows: [JSONValue] = []
        var lines: [String] = []
        for role in GuestImageBuilder.Role.allCases {
            let reference = images.reference(role)
            let image: JSONValue?
            do {
                image = try await engine.inspectImage(reference)
            } catch {
                return .error(error.description)
            }
            let labels = image?["Config"]?["Labels"]
            let hash = labels?[GuestImageBuilder.hashLabel]?.stringValue
            var current: String?
            if let executable = executable(for: role, context) {
                current = try? await GuestImageBuilder.contentHash(role, executable: executable)
            }
            let state: String =
                image == nil
                ? "missing"
                : hash == nil ? "foreign" : current == nil ? "unknown" : hash == current ? "current" : "stale"
            rows.append([
                "role": .string(role.rawValue), "reference": .string(reference), "state": .string(state),
                "id": image?["Id"] ?? .null, "version": labels?[GuestImageBuilder.versionLabel] ?? .null,
                "size_bytes": image?["Size"] ?? .null,
            ])
            lines.append(
                "\(role.rawValue) \(reference) \(state)"
                    + (image.map {
                        " \($0["Id"]?.stringValue?.prefix(19) ?? "") version=\(labels?[GuestImageBuilder.versionLabel]?.stringValue ?? "?")"
                    } ?? "")
            )
        }
        if json { return CommandOutput(standardOutput: JSONValue.array(rows).prettyText + "\n") }
        let hint =
            rows.contains { $0["state"]?.stringValue != "current" }
            ? "build or refresh them with `runner images build`\n" : ""
        return CommandOutput(standardOutput: lines.joined(separator: "\n") + "\n", standardError: hint)
    }

    /// `[guest_images]` of the runner config; its problems (a missing file included) are the error.
    static func guestImages(_ context: RunnerContext) -> Result<OxydraCore.GuestImages, CommandOutput> {
        let runner = RunnerConfigLoader.load(path: context.configPath, display: context.display)
        guard runner.issues.isEmpty else {
            return .failure(.error(runner.issues.map(\.description).joined(separator: "\n")))
        }
        return .success(runner.config.guestImages)
    }

    static func variable(for role: GuestImageBuilder.Role) -> String {
        role == .runtime ? "OXYDRA_VM_PROCESS_EXECUTABLE" : "OXYDRA_SHELL_DAEMON_EXECUTABLE"
    }

    static func executable(for role: GuestImageBuilder.Role, _ context: RunnerContext) -> String? {
        ExecutableLocator.find(role.executable, variable: variable(for: role), environment: context.environment).map {
            FilePaths.absolute($0, relativeTo: context.workingDirectory)
        }
    }
}

/// A private directory under $TMPDIR for one build, removed afterwards.
struct TemporaryWorkDirectory {
    let path: String

    init() throws {
        var template = Array(
            ((ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp") + "/oxydra-images-XXXXXX").utf8CString)
        guard let created = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw DockerError.build("mkdtemp failed: errno \(errno)")
        }
        path = String(cString: created)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}
