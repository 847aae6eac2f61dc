/// FNV-1a, 64-bit: a hash that is the same in every process and on every platform (Swift's
/// `Hasher` is seeded per process), for values that are stored or compared across runs.
public enum StableHash {
    public static func fnv1a(_ bytes: some Sequence<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return hash
    }
}
