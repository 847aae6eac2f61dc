import OxydraCore

/// The two guest images of the container tier, built on this host without any image registry:
/// `oxydra-vm` (the runtime: the binary, its shared libraries, CA certificates, time zones and a
/// passwd file — nothing else) and `shell-vm` (the shell sidecar: a Debian minbase root made by
/// `mmdebstrap` with the tools the default shell allow list names, plus `shell-daemon`).
///
/// Each image is tagged with the Oxydra version and with the configured reference (`latest`), and
/// labelled with the hash of its inputs (`oxydra.content_hash`): a rebuild with unchanged inputs is
/// skipped, and `runner images list` / `runner start` can tell an image built from other binaries.
public enum GuestImageBuilder {
    public enum Role: String, Sendable, CaseIterable {
        case runtime
        case sidecar

        /// The executable the image carries.
        public var executable: String { self == .runtime ? "oxydra-vm" : "shell-daemon" }
    }

    /// What a build did.
    public struct Report: Sendable, Hashable {
        public var role: Role
        public var reference: String
        public var id: String
        public var contentHash: String
        /// True when an image with the same inputs existed and nothing was built.
        public var reused: Bool
        public var sizeBytes: Int
    }

    /// The Debian release and mirror the sidecar is assembled from.
    public static let debianSuite = "bookworm"
    public static let debianMirror = "http://deb.debian.org/debian"

    /// The sidecar's packages: what the default shell allow list runs, and git/python3/jq/curl.
    public static let sidecarPackages = [
        "bash", "ca-certificates", "coreutils", "curl", "dash", "diffutils", "findutils", "gawk", "git", "grep",
        "gzip", "jq", "less", "patch", "procps", "python3", "sed", "tar", "xz-utils",
    ]

    /// Labels every guest image carries.
    public static let roleLabel = "oxydra.guest_role"
    public static let hashLabel = "oxydra.content_hash"
    public static let versionLabel = "oxydra.version"

    /// `repository:tag` split at the last colon after the last slash (`localhost:5000/x:1` works).
    public static func split(_ reference: String) -> (repository: String, tag: String) {
        let slash = reference.lastIndex(of: "/") ?? reference.startIndex
        guard let colon = reference[slash...].lastIndex(of: ":") else { return (reference, "latest") }
        return (String(reference[..<colon]), String(reference[reference.index(after: colon)...]))
    }

    /// The hash of everything an image is built from: the executable's bytes and the recipe.
    public static func contentHash(_ role: Role, executable: String) async throws(DockerError) -> String {
        let digest = try await ImageTree.run("/usr/bin/sha256sum", [executable])
        let recipe =
            role == .runtime
            ? "runtime-2" : "sidecar-2 \(debianSuite) \(sidecarPackages.joined(separator: ","))"
        return String(digest.prefix(64)) + "-" + String(StableHash.fnv1a(recipe.utf8), radix: 16)
    }

    /// Builds (or reuses) the image for `role` from `executable` and tags it `version` and
    /// `reference`'s tag. `progress` gets one line per step.
    public static func build(
        _ role: Role, executable: String, reference: String, version: String, engine: DockerEngine,
        workDirectory: String, progress: @Sendable (String) -> Void
    ) async throws(DockerError) -> Report {
        let (repository, tag) = split(reference)
        let hash = try await contentHash(role, executable: executable)
        if let existing = try await engine.inspectImage("\(repository):\(version)"),
            existing["Config"]?["Labels"]?[hashLabel]?.stringValue == hash, let id = existing["Id"]?.stringValue
        {
            progress("\(repository):\(version) is up to date (same inputs); tagging \(repository):\(tag)")
            try await engine.tagImage(id, repository: repository, tag: tag)
            return Report(
                role: role, reference: "\(repository):\(tag)", id: id, contentHash: hash, reused: true,
                sizeBytes: existing["Size"]?.intValue ?? 0)
        }
        // The images this build replaces, removed once nothing names them any more.
        var replaced: Set<String> = []
        for name in ["\(repository):\(version)", "\(repository):\(tag)"] {
            if let old = try await engine.inspectImage(name), old["Config"]?["Labels"]?[roleLabel] != nil,
                let id = old["Id"]?.stringValue
            {
                replaced.insert(id)
            }
        }
        let root = workDirectory + "/" + role.rawValue
        let tarball = workDirectory + "/" + role.rawValue + ".tar"
        let labels = [
            "LABEL \(roleLabel)=\(role.rawValue)", "LABEL \(hashLabel)=\(hash)", "LABEL \(versionLabel)=\(version)",
        ]
        var changes: [String]
        switch role {
        case .runtime:
            progress("assembling the \(repository) tree (\(executable) and its libraries)")
            try await runtimeTree(executable: executable, root: root)
            try await ImageTree(root: root).pack(to: tarball)
            changes = [
                "ENTRYPOINT [\"/usr/local/bin/oxydra-vm\"]", "USER 1000:1000", "WORKDIR /",
                "ENV PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 TZ=UTC",
            ]
        case .sidecar:
            progress(
                "assembling the \(repository) tree with mmdebstrap (\(debianSuite) minbase + "
                    + "\(sidecarPackages.count) packages; needs \(debianMirror))")
            try await sidecarTarball(executable: executable, staging: root, tarball: tarball)
            changes = [
                "ENTRYPOINT [\"/usr/local/bin/shell-daemon\"]", "USER 1000:1000", "WORKDIR /shared",
                "ENV PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 TZ=UTC",
            ]
        }
        changes += labels
        progress("importing \(repository):\(version) (\(FileReader.size(tarball) / 1_048_576) MiB)")
        let id = try await engine.importImage(
            tarball: tarball, repository: repository, tag: version, changes: changes)
        try await engine.tagImage(id, repository: repository, tag: tag)
        let size = try await engine.inspectImage(id)?["Size"]?.intValue ?? 0
        for old in replaced where old != id {
            // Only an image no tag and no container uses goes (the engine refuses the others).
            if try await engine.inspectImage(old)?["RepoTags"]?.arrayValue?.isEmpty ?? false {
                try? await engine.removeImage(old)
            }
        }
        return Report(
            role: role, reference: "\(repository):\(tag)", id: id, contentHash: hash, reused: false, sizeBytes: size)
    }

    /// The runtime image's tree (also the base of the micro VM root disk).
    public static func runtimeTree(executable: String, root: String) async throws(DockerError) {
        let tree = try ImageTree(root: root)
        try await tree.copyLibraries(of: executable)
        try tree.copy(executable, to: "/usr/local/bin/oxydra-vm")
        try await tree.strip("/usr/local/bin/oxydra-vm")
        try tree.copy("/etc/ssl/certs/ca-certificates.crt")
        try await tree.copyDirectory("/usr/share/zoneinfo")
        try tree.write(
            "root:x:0:0:root:/root:/usr/sbin/nologin\noxydra:x:1000:1000:oxydra:/tmp:/usr/sbin/nologin\n"
                + "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n", to: "/etc/passwd")
        try tree.write("root:x:0:\noxydra:x:1000:\nnogroup:x:65534:\n", to: "/etc/group")
        try tree.write("passwd: files\ngroup: files\nhosts: files dns\n", to: "/etc/nsswitch.conf")
        for directory in ["/tmp", "/shared", "/vault", "/ipc", "/run/oxydra", "/workspace"] {
            try tree.directory(directory, mode: directory == "/tmp" ? 0o1777 : 0o755)
        }
    }

    /// The sidecar's Debian root (``sidecarPackages`` and `extraPackages`) with `shell-daemon`, as a
    /// tarball (also the base of the micro VM root disk).
    public static func sidecarTarball(
        executable: String, staging: String, tarball: String, extraPackages: [String] = []
    ) async throws(DockerError) {
        // shell-daemon and the libraries Debian does not ship (the Swift runtime), staged for copy-in.
        let tree = try ImageTree(root: staging)
        try tree.copy(executable, to: "/usr/local/bin/shell-daemon")
        try await tree.strip("/usr/local/bin/shell-daemon")
        var hooks = ["mkdir -p \"$1/usr/local/bin\" \"$1/shared\"", "chmod 1777 \"$1/shared\""]
        hooks.append("copy-in \(staging)/usr/local/bin/shell-daemon /usr/local/bin")
        for library in try await ImageTree.sharedLibraries(of: executable) where !isDebianLibrary(library) {
            let directory = String(library[..<library.lastIndex(of: "/")!])
            try tree.copy(ImageTree.resolved(library), to: library)
            hooks.append("mkdir -p \"$1\(directory)\"")
            hooks.append("copy-in \(staging)\(library) \(directory)")
        }
        hooks.append("rm -rf \"$1\"/var/cache/apt/archives/*.deb \"$1\"/var/lib/apt/lists/*")
        _ = try await ImageTree.run(
            "/usr/bin/mmdebstrap",
            ["--quiet", "--variant=minbase", "--include=" + (sidecarPackages + extraPackages).joined(separator: ",")]
                + hooks.map { "--customize-hook=" + $0 } + [debianSuite, tarball, debianMirror])
    }

    /// Libraries the Debian root already has (same release as the build host's).
    static func isDebianLibrary(_ path: String) -> Bool {
        ["/lib/", "/lib64/", "/usr/lib/x86_64-linux-gnu/", "/usr/lib/aarch64-linux-gnu/", "/lib/x86_64-linux-gnu/"]
            .contains { path.hasPrefix($0) }
    }
}
