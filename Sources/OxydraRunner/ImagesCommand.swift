import OxydraConfig
import OxydraContainer
import OxydraCore
import OxydraMicroVM
import OxydraSandbox

#if canImport(Glibc)
    import Glibc
#endif

/// `runner images build|list`: the container tier's guest images, built on this host from the
/// binaries beside `runner` (see ``GuestImageBuilder``) and imported through the Docker Engine API.
public enum ImagesCommand {
    /// Builds (or reuses, when their inputs are unchanged) the images named in `[guest_images]`.
    public static func build(
        _ context: RunnerContext, only: GuestImageBuilder.Role?, tier: SandboxTier? = nil, json: Bool,
        progress: @escaping @Sendable (String) -> Void
    ) async -> CommandOutput {
        let runner: LoadedRunnerConfig
        switch runnerConfig(context) {
        case .success(let loaded): runner = loaded
        case .failure(let output): return output
        }
        let tiers = tier.map { [$0] } ?? usedTiers(runner, context: context)
        var rows: [JSONValue] = []
        var lines: [String] = []
        if tiers.contains(.container) {
            let output = await buildContainerImages(
                context, images: runner.config.guestImages, only: only, progress: progress)
            guard case .success(let reports) = output else {
                if case .failure(let error) = output { return error }
                return .error("the container images were not built")
            }
            rows += reports.map { report in
                [
                    "role": .string(report.role.rawValue), "reference": .string(report.reference),
                    "id": .string(report.id), "content_hash": .string(report.contentHash),
                    "reused": .bool(report.reused), "size_bytes": .integer(report.sizeBytes),
                ]
            }
            lines += reports.map { report in
                "\(report.role.rawValue) \(report.reference) \(report.id.prefix(19)) "
                    + "\(report.sizeBytes / 1_048_576) MiB\(report.reused ? " (unchanged, reused)" : "")"
            }
        }
        if tiers.contains(.microVM) {
            let directory = runner.microVMImageDirectory
            let built: (MicroVMImageSet, reused: Bool)
            do throws(CommandOutput) {
                built = try await buildMicroVM(context, runner: runner, withShell: only != .runtime, progress: progress)
            } catch {
                return error
            }
            let (set, reused) = built
            rows.append([
                "role": "micro_vm", "reference": .string(directory), "id": .string(set.contentHash),
                "content_hash": .string(set.contentHash), "reused": .bool(reused),
                "size_bytes": .integer(set.rootDiskBytes),
                "kernel": .string(set.kernelRelease), "shell": .bool(set.shell),
            ])
            lines.append(
                "micro_vm \(directory) \(set.contentHash) \(set.rootDiskBytes / 1_048_576) MiB kernel=\(set.kernelRelease) "
                    + "shell=\(set.shell)\(reused ? " (unchanged, reused)" : "")")
        }
        if json { return CommandOutput(standardOutput: JSONValue.array(rows).prettyText + "\n") }
        return CommandOutput(standardOutput: lines.joined(separator: "\n") + "\n")
    }

    /// The tiers the configuration uses (`default_tier` and the users' `behavior.sandbox_tier`)
    /// that have images; the container tier when only the process tier is used.
    static func usedTiers(_ runner: LoadedRunnerConfig, context: RunnerContext) -> [SandboxTier] {
        var tiers: Set<SandboxTier> = [runner.config.defaultTier]
        for id in runner.config.users.keys {
            if let tier = RunnerConfigLoader.loadUser(UserID(id), of: runner, display: context.display).config.behavior
                .sandboxTier
            {
                tiers.insert(tier)
            }
        }
        let built = [SandboxTier.container, .microVM].filter(tiers.contains)
        return built.isEmpty ? [.container] : built
    }

    /// The micro VM root disk and initramfs in `[guest_images] micro_vm_dir`.
    static func buildMicroVM(
        _ context: RunnerContext, runner: LoadedRunnerConfig, withShell: Bool,
        progress: @escaping @Sendable (String) -> Void
    ) async throws(CommandOutput) -> (MicroVMImageSet, reused: Bool) {
        guard let oxydraVM = executable(for: .runtime, context) else {
            throw .error(
                "cannot find the oxydra-vm executable (looked beside runner, at $OXYDRA_VM_PROCESS_EXECUTABLE and on "
                    + "PATH); build it first (`swift build -c release`)")
        }
        var shellDaemon: String?
        if withShell {
            shellDaemon = executable(for: .sidecar, context)
            if shellDaemon == nil {
                progress("shell-daemon was not found: the micro VM gets no shell (build it and run this again)")
            }
        }
        let kernel = try MicroVMGuest.kernel(runner)
        let busybox = try MicroVMGuest.busybox()
        do {
            return try await MicroVMImageSet.build(
                .init(
                    oxydraVM: oxydraVM, shellDaemon: shellDaemon, busybox: busybox, kernel: kernel,
                    version: OxydraVersion.current), directory: runner.microVMImageDirectory, progress: progress)
        } catch {
            throw .error(error.description)
        }
    }

    static func buildContainerImages(
        _ context: RunnerContext, images: OxydraCore.GuestImages, only: GuestImageBuilder.Role?,
        progress: @escaping @Sendable (String) -> Void
    ) async -> Result<[GuestImageBuilder.Report], CommandOutput> {
        let engine = ContainerGuest.engine(context)
        let work: TemporaryWorkDirectory
        do {
            work = try TemporaryWorkDirectory()
        } catch {
            return .failure(.error("cannot create a work directory for the image build: \(error)"))
        }
        defer { work.remove() }
        var reports: [GuestImageBuilder.Report] = []
        for role in GuestImageBuilder.Role.allCases where only == nil || only == role {
            guard let executable = executable(for: role, context) else {
                return .failure(
                    .error(
                        "cannot find the \(role.executable) executable (looked beside runner, at $\(variable(for: role)) "
                            + "and on PATH); build it first (`swift build -c release`)"))
            }
            do {
                reports.append(
                    try await GuestImageBuilder.build(
                        role, executable: executable, reference: images.reference(role),
                        version: OxydraVersion.current, engine: engine, workDirectory: work.path, progress: progress))
            } catch {
                return .failure(.error(error.description))
            }
        }
        return .success(reports)
    }

    /// What is installed for each role and whether it was built from this build's binaries.
    public static func list(_ context: RunnerContext, json: Bool) async -> CommandOutput {
        let runner: LoadedRunnerConfig
        switch runnerConfig(context) {
        case .success(let loaded): runner = loaded
        case .failure(let output): return output
        }
        let images = runner.config.guestImages
        let tiers = usedTiers(runner, context: context)
        let engine = ContainerGuest.engine(context)
        var rows: [JSONValue] = []
        var lines: [String] = []
        for role in GuestImageBuilder.Role.allCases where tiers.contains(.container) {
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
        if tiers.contains(.microVM) {
            let directory = runner.microVMImageDirectory
            let set = MicroVMImageSet.read(directory)
            var current: String?
            if let oxydraVM = executable(for: .runtime, context), let kernel = try? MicroVMGuest.kernel(runner),
                let busybox = try? MicroVMGuest.busybox()
            {
                current = try? await MicroVMImageSet.contentHash(
                    .init(
                        oxydraVM: oxydraVM, shellDaemon: set?.shell == false ? nil : executable(for: .sidecar, context),
                        busybox: busybox, kernel: kernel, version: OxydraVersion.current))
            }
            let state =
                set == nil ? "missing" : current == nil ? "unknown" : set?.contentHash == current ? "current" : "stale"
            rows.append([
                "role": "micro_vm", "reference": .string(directory), "state": .string(state),
                "id": set.map { .string($0.contentHash) } ?? .null, "version": set.map { .string($0.version) } ?? .null,
                "size_bytes": set.map { .integer($0.rootDiskBytes) } ?? .null,
            ])
            lines.append(
                "micro_vm \(directory) \(state)"
                    + (set.map {
                        " \($0.contentHash) version=\($0.version) kernel=\($0.kernelRelease) shell=\($0.shell)"
                    }
                        ?? ""))
        }
        if json { return CommandOutput(standardOutput: JSONValue.array(rows).prettyText + "\n") }
        let hint =
            rows.contains { $0["state"]?.stringValue != "current" }
            ? "build or refresh them with `runner images build`\n" : ""
        return CommandOutput(standardOutput: lines.joined(separator: "\n") + "\n", standardError: hint)
    }

    /// The runner config; its problems (a missing file included) are the error.
    static func runnerConfig(_ context: RunnerContext) -> Result<LoadedRunnerConfig, CommandOutput> {
        let runner = RunnerConfigLoader.load(path: context.configPath, display: context.display)
        guard runner.issues.isEmpty else {
            return .failure(.error(runner.issues.map(\.description).joined(separator: "\n")))
        }
        return .success(runner)
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
