import OxydraCore

/// An initramfs as the kernel unpacks it: a `newc` cpio archive (uncompressed, which every kernel
/// accepts), built in memory from directories, files and symbolic links.
public struct Initramfs: Sendable {
    public enum Entry: Sendable, Hashable {
        case directory(String, mode: UInt32 = 0o755)
        case file(String, [UInt8], mode: UInt32 = 0o644)
        case symlink(String, target: String)
    }

    public private(set) var entries: [Entry] = []

    public init() {}

    /// Adds an entry; parent directories are added first when missing.
    public mutating func add(_ entry: Entry) {
        let path: String
        switch entry {
        case .directory(let name, _), .file(let name, _, _), .symlink(let name, _): path = name
        }
        var parent = ""
        for component in path.split(separator: "/").dropLast() {
            parent += (parent.isEmpty ? "" : "/") + component
            if !entries.contains(where: { if case .directory(parent, _) = $0 { true } else { false } }) {
                entries.append(.directory(parent))
            }
        }
        entries.append(entry)
    }

    /// The archive: a header per entry (`070701`, 13 eight-digit hex fields), the name, the data,
    /// each padded to 4 bytes; `TRAILER!!!` at the end.
    public var archive: [UInt8] {
        var out: [UInt8] = []
        var inode: UInt32 = 1
        func append(_ name: String, mode: UInt32, data: [UInt8]) {
            let nameBytes = Array(name.utf8) + [0]
            let fields: [UInt32] = [
                inode, mode, 0, 0, 1, 0, UInt32(data.count), 0, 0, 0, 0, UInt32(nameBytes.count), 0,
            ]
            inode += 1
            out += Array("070701".utf8)
            for field in fields {
                let hex = String(field, radix: 16, uppercase: true)
                out += Array((String(repeating: "0", count: 8 - hex.count) + hex).utf8)
            }
            out += nameBytes
            while out.count % 4 != 0 { out.append(0) }
            out += data
            while out.count % 4 != 0 { out.append(0) }
        }
        for entry in entries {
            switch entry {
            case .directory(let name, let mode): append(name, mode: 0o040000 | mode, data: [])
            case .file(let name, let data, let mode): append(name, mode: 0o100000 | mode, data: data)
            case .symlink(let name, let target): append(name, mode: 0o120777, data: Array(target.utf8))
            }
        }
        append("TRAILER!!!", mode: 0, data: [])
        return out
    }
}
