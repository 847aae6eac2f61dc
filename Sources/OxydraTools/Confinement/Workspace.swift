import OxydraCore

/// The host directories behind the agent's virtual paths.
///
/// The model sees `/shared` (read-write, persistent), `/tmp` (read-write scratch) and `/vault`
/// (read-only; file contents leave it only through `vault_copyto`). Host paths never reach the
/// model: tool output is scrubbed back to virtual paths.
public struct Workspace: Sendable, Hashable {
    /// `<workspace>/<user>`; its `.oxydra/` holds internal state no tool may touch.
    public var root: String
    public var shared: String
    public var tmp: String
    public var vault: String

    public init(root: String, shared: String? = nil, tmp: String? = nil, vault: String? = nil) {
        self.root = root
        self.shared = shared ?? root + "/shared"
        self.tmp = tmp ?? root + "/tmp"
        self.vault = vault ?? root + "/vault"
    }

    /// `<root>/.oxydra`: memory database, audit log, operator files.
    public var internalDirectory: String { root + "/.oxydra" }

    public func hostDirectory(of root: VirtualRoot) -> String {
        switch root {
        case .shared: shared
        case .tmp: tmp
        case .vault: vault
        }
    }
}

/// One of the directories the model can name.
public enum VirtualRoot: String, Sendable, CaseIterable {
    case shared, tmp, vault

    public var path: String { "/" + rawValue }
    public var isWritable: Bool { self != .vault }
}

/// A virtual path split into its root and the path beneath it (no leading `/`; `""` is the root).
public struct VirtualPath: Sendable, Hashable, CustomStringConvertible {
    public var root: VirtualRoot
    public var relative: String

    public var description: String { relative.isEmpty ? root.path : root.path + "/" + relative }

    /// The last component, or the root's name.
    public var name: String { relative.split(separator: "/").last.map(String.init) ?? root.rawValue }

    public func appending(_ component: String) -> VirtualPath {
        VirtualPath(root: root, relative: relative.isEmpty ? component : relative + "/" + component)
    }
}
