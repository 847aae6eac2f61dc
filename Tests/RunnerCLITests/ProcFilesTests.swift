import Foundation
import Synchronization
import Testing

@testable import OxydraSandbox

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct ProcFilesTests {
    @Test func procFilesAreReadWhole() throws {
        // Well past the first page the kernel hands out: every mapping of maps has its smaps entry.
        let maps = try #require(ProcFiles.read("/proc/self/maps"))
        let smaps = try #require(ProcFiles.read("/proc/self/smaps"))
        #expect(smaps.utf8.count > 16384)
        // (Threads may map stacks between the two reads, so the counts are compared loosely.)
        let mappings = maps.split(separator: "\n").count
        let entries = smaps.split(separator: "\n").count { $0.hasPrefix("VmFlags:") }
        #expect(mappings > 30 && abs(entries - mappings) < 8, "\(entries) smaps entries, \(mappings) mappings")
        #expect(ProcFiles.read("/proc/self/no-such-file") == nil)
    }
}
