import Foundation
import Synchronization
import Testing

@testable import OxydraSandbox

#if canImport(Glibc)
    import Glibc
#endif

@Suite(.serialized) struct CodePagesTests {
    @Test func onlyCleanReadOnlyFileMappingsAreChosen() {
        let smaps = """
            55d0a0000000-55d0a1000000 r-xp 00000000 fe:00 123 /opt/oxydra/oxydra-vm
            Size:              16384 kB
            Rss:                9000 kB
            Anonymous:             0 kB
            Swap:                  0 kB
            Locked:                0 kB
            VmFlags: rd ex mr mw me
            55d0a1000000-55d0a1100000 r--p 01000000 fe:00 123 /opt/oxydra/oxydra-vm
            Rss:                 700 kB
            Anonymous:           696 kB
            Swap:                  0 kB
            55d0a1100000-55d0a1200000 rw-p 01100000 fe:00 123 /opt/oxydra/oxydra-vm
            Rss:                 900 kB
            Anonymous:             0 kB
            7f0000000000-7f0000100000 r--p 00000000 fe:00 77 /usr/lib/libicudata.so
            Rss:                 128 kB
            Anonymous:             0 kB
            Swap:                  0 kB
            7f0000100000-7f0000200000 r--p 00000000 fe:00 78 /usr/lib/libswapped.so
            Rss:                  64 kB
            Anonymous:             0 kB
            Swap:                  8 kB
            7f0000200000-7f0000300000 r-xp 00000000 fe:00 79 /usr/lib/liblocked.so
            Rss:                  64 kB
            Anonymous:             0 kB
            Swap:                  0 kB
            Locked:               64 kB
            7f0000300000-7f0000400000 r--p 00000000 00:00 0 
            Rss:                   4 kB
            Anonymous:             4 kB
            7f0000400000-7f0000500000 r-xp 00000000 fe:00 80 /usr/lib/libcold.so
            Rss:                   0 kB
            Anonymous:             0 kB
            7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0                          [vdso]
            Rss:                   8 kB
            Anonymous:             0 kB
            """
        #expect(
            CodePages.parse(smaps) == [
                .init(start: 0x55d0_a000_0000, end: 0x55d0_a100_0000, residentKiB: 9000),
                .init(start: 0x7f00_0000_0000, end: 0x7f00_0010_0000, residentKiB: 128),
            ])
        #expect(CodePages.parse("") == [])
    }

    @Test func idleReleaseIsDueOnceAfterAQuietIntervalFollowingTurns() {
        var idle = CodePages.IdleRelease()
        // (finished turns, running turns) at each tick → due?
        let ticks: [(Int, Int, Bool, String)] = [
            (0, 0, false, "no turns since start-up's own release"),
            (3, 0, false, "turns finished during this interval"),
            (3, 0, true, "a quiet interval after turns"),
            (3, 0, false, "already released"),
            (3, 1, false, "a turn is running"),
            (4, 0, false, "a turn finished during this interval"),
            (4, 1, false, "a long turn is still running"),
            (4, 0, true, "quiet again"),
        ]
        for (finished, active, due, why) in ticks {
            let result = idle.check(finishedTurns: finished, activeTurns: active)
            #expect(result == due, "\(why)")
        }
    }

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

    @Test func releasingShrinksResidentFilePagesAndTheProcessCarriesOn() throws {
        func residentFileKiB() -> Int {
            let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
            let line = status.split(separator: "\n").first { $0.hasPrefix("RssFile:") } ?? ""
            return Int(line.split(separator: " ").dropFirst().first ?? "") ?? -1
        }
        let before = residentFileKiB()
        let released = CodePages.release()
        let after = residentFileKiB()
        #expect(released.mappings > 0)
        #expect(released.kibibytes > 1024, "a test process has megabytes of code resident")
        #expect(after < before - 1024, "RssFile \(before) KiB → \(after) KiB")
        // Everything it dropped comes back on use: code runs, Foundation encodes, a child runs.
        let encoded = try JSONEncoder().encode(["released": released.kibibytes])
        #expect(try JSONDecoder().decode([String: Int].self, from: encoded)["released"] == released.kibibytes)
        #expect(CodePages.parse(String(repeating: "x", count: 10)).isEmpty)
        #expect(try runTrue() == 0)
    }

    @Test func releasingWhileOtherThreadsWorkLosesNothing() async throws {
        // One thread releases over and over while tasks encode, decode, hash, sort and spawn: every
        // result must still be exact (relocated data and heap are never touched by the release).
        let stop = Shared(false)
        let releases = Shared(0)
        let finished = DispatchSemaphore(value: 0)
        let releaser = Thread {
            while !stop.value.withLock({ $0 }) {
                CodePages.release()
                releases.value.withLock { $0 += 1 }
                usleep(2000)
            }
            finished.signal()
        }
        releaser.start()
        defer {
            stop.value.withLock { $0 = true }
            finished.wait()
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<4 {
                group.addTask {
                    // At least 300 rounds, and until the releaser has run ten times meanwhile.
                    var round = 0
                    while round < 300 || releases.value.withLock({ $0 }) < 10 {
                        round += 1
                        let values = (0..<64).map { "w\(worker)-r\(round)-\($0)" }
                        let data = try JSONEncoder().encode(values)
                        let back = try JSONDecoder().decode([String].self, from: data)
                        guard back == values, Set(back).count == 64, back.sorted() == values.sorted() else {
                            throw TestFailure("round \(round) of worker \(worker) came back different")
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        for _ in 0..<5 { #expect(try runTrue() == 0) }
        #expect(releases.value.withLock { $0 } >= 10, "the releaser ran while the workers did")
    }

    private final class Shared<Value: Sendable>: Sendable {
        let value: Mutex<Value>
        init(_ initial: Value) { value = Mutex(initial) }
    }

    private struct TestFailure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// Spawns `/bin/true` and returns its exit status.
    private func runTrue() throws -> Int32 {
        let pid = try ProcessSpawner.spawn(
            "/bin/true", arguments: ["true"], environment: [],
            options: .init(standardInput: 0, standardOutput: 1, standardError: 2))
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0, errno == EINTR {}
        return status
    }
}
