import OxydraCore
import Testing

@testable import OxydraGateway

/// The frames a client gets when it reads slower than the model streams.
@Suite("Outbound queue")
struct OutboundQueueTests {
    static func header(_ turn: String) -> TurnHeader {
        TurnHeader(
            requestID: "r-" + turn, session: SessionRef(userID: "alice", sessionID: "s"),
            turn: TurnRef(turnID: TurnID(turn), state: .running))
    }

    /// What the writer takes after `frames` were pushed.
    static func taken(_ frames: [ServerFrame], limit: Int = 1_000) async -> [ServerFrame]? {
        let queue = OutboundQueue(limit: limit)
        for frame in frames { _ = queue.push(frame) }
        queue.close()
        return await queue.take()
    }

    /// Runs of deltas of one turn become one frame with their text in order; a delta of another
    /// turn or any other frame ends a run; nothing else is touched or reordered.
    @Test func runsOfDeltasOfATurnAreMergedInOrder() async {
        let a = Self.header("a")
        let b = Self.header("b")
        let progress = ServerFrame.turnProgress(a, ProgressInfo(kind: "k", message: "m", turn: 1, maxTurns: 2))
        let frames: [ServerFrame] = [
            .turnStarted(a), .assistantDelta(a, delta: "He"), .assistantDelta(a, delta: "llo"),
            .assistantDelta(a, delta: " 🎉"), .assistantDelta(b, delta: "x"), .assistantDelta(a, delta: "!"), progress,
            .assistantDelta(a, delta: "y"), .assistantDelta(a, delta: "z"),
        ]
        #expect(
            await Self.taken(frames) == [
                .turnStarted(a), .assistantDelta(a, delta: "Hello 🎉"), .assistantDelta(b, delta: "x"),
                .assistantDelta(a, delta: "!"), progress, .assistantDelta(a, delta: "yz"),
            ])
        #expect(await Self.taken([.assistantDelta(a, delta: "1")]) == [.assistantDelta(a, delta: "1")])
        #expect(await Self.taken([]) == nil)
    }

    /// Whatever the split, the text a client reads back is the text that was streamed; frames taken
    /// in between are not merged with what comes after.
    @Test func mergingKeepsTheText() async {
        let a = Self.header("a")
        let pieces = ["a", "é", "\n", "漢字", "\"", "🎉", ""]
        for _ in 0..<300 {
            let deltas = (0..<Int.random(in: 1...30)).map { _ in pieces.randomElement()! }
            #expect(
                await Self.taken(deltas.map { .assistantDelta(a, delta: $0) }) == [
                    .assistantDelta(a, delta: deltas.joined())
                ])
        }
        let queue = OutboundQueue(limit: 100)
        _ = queue.push(.assistantDelta(a, delta: "one"))
        #expect(await queue.take() == [.assistantDelta(a, delta: "one")])
        _ = queue.push(.assistantDelta(a, delta: "two"))
        _ = queue.push(.assistantDelta(a, delta: "three"))
        #expect(await queue.take() == [.assistantDelta(a, delta: "twothree")])
    }

    /// A client that stops reading: every pushed frame counts toward the limit, merged deltas too
    /// (the merged text cannot grow without bound); past it the queue closes as lagging and the
    /// writer drains what was queued.
    @Test func aClientThatStopsReadingIsLagging() async {
        let a = Self.header("a")
        let queue = OutboundQueue(limit: 3)
        #expect(queue.push(.assistantDelta(a, delta: "1")))
        #expect(queue.push(.assistantDelta(a, delta: "2")))
        #expect(queue.push(.assistantDelta(a, delta: "3")))
        #expect(!queue.push(.assistantDelta(a, delta: "4")))
        #expect(queue.isLagging)
        #expect(!queue.push(.turnStarted(a)))
        #expect(await queue.take() == [.assistantDelta(a, delta: "123")])
        #expect(await queue.take() == nil)
        // Taking resets the count.
        let reading = OutboundQueue(limit: 2)
        for index in 0..<10 {
            #expect(reading.push(.assistantDelta(a, delta: "\(index)")))
            #expect(await reading.take() == [.assistantDelta(a, delta: "\(index)")])
        }
        #expect(!reading.isLagging)
    }
}
