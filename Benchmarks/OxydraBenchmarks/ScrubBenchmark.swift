import OxydraTools

/// What the output scrubber costs per tool result — every tool output passes through it before the
/// model sees it — on a large output (256 KiB of source, logs and configuration, a few secrets in
/// it) and on a small one (a short file, what most calls return), against the floor of copying the
/// same text once byte by byte (any scrubber reads every byte and writes a new text).
func benchmarkScrub() {
    let lines = [
        "    let configuration = try Configuration.load(from: path) // reads the layered TOML",
        "2026-12-03T17:10:10.147Z info oxydra.gateway: turn completed ms=4 provider_calls=1 session=2b10039c",
        #"{"name": "build", "status": "ok", "duration_ms": 8123, "artifacts": ["/shared/out/app.tar.gz"]}"#,
        "export PATH=/usr/local/bin:$PATH  # set by the installer",
        "commit 3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39 Merge branch 'main' of github.com:example/app",
        "    if response.status == .ok { return try decoder.decode(Reply.self, from: response.body) }",
    ]
    var large = ""
    var index = 0
    while large.utf8.count < 256 * 1024 {
        large += lines[index % lines.count] + "\n"
        if index % 500 == 250 { large += "api_key = \"sk-live-\(index)Zq8wN3vP0xT7yR2mK5bH9cJ4\"\n" }
        index += 1
    }
    let small = "Buy milk.\nCall the plumber on Tuesday.\n"
    let scrubber = OutputScrubber(workspace: nil, secrets: ["hunter2-hunter2"])

    func timed(_ text: String, rounds: Int, _ body: (String) -> Int) -> [Double] {
        (0..<7).map { _ in
            let start = clock.now
            var sink = 0
            for _ in 0..<rounds { sink &+= body(text) }
            precondition(sink != 42)
            return seconds(clock.now - start) / Double(rounds)
        }
    }
    let copy: (String) -> Int = { text in
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        for byte in text.utf8 { bytes.append(byte) }
        return String(decoding: bytes, as: UTF8.self).utf8.count
    }
    let scrub: (String) -> Int = { scrubber.scrub($0).utf8.count }
    let largeScrub = timed(large, rounds: 3, scrub)
    let largeFloor = timed(large, rounds: 3, copy)
    let smallScrub = timed(small, rounds: 2_000, scrub)
    let smallFloor = timed(small, rounds: 2_000, copy)
    print(
        "scrub: 256 KiB tool output min/median/max \(spread(largeScrub, scale: 1000)) ms "
            + "(copy floor \(spread(largeFloor, scale: 1000)) ms, ratio \(String(format2: median(largeScrub) / median(largeFloor)))x); "
            + "40-byte output \(spread(smallScrub, scale: 1e6)) µs "
            + "(copy floor \(spread(smallFloor, scale: 1e6)) µs, ratio \(String(format2: median(smallScrub) / median(smallFloor)))x)"
    )
}
