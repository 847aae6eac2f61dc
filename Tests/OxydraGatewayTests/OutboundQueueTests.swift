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

    /// Runs of deltas of one turn become one frame with their text in order; a delta of another
    /// turn or any other frame ends a run; nothing else is touched or reordered.
    @Test func runsOfDeltasOfATurnAreMergedInOrder() {
        let a = Self.header("a")
        let b = Self.header("b")
        let frames: [ServerFrame] = [
            .turnStarted(a), .assistantDelta(a, delta: "He"), .assistantDelta(a, delta: "llo"),
            .assistantDelta(a, delta: " 🎉"), .assistantDelta(b, delta: "x"), .assistantDelta(a, delta: "!"),
            .turnProgress(a, ProgressInfo(kind: "k", message: "m", turn: 1, maxTurns: 2)),
            .assistantDelta(a, delta: "y"), .assistantDelta(a, delta: "z"),
        ]
        #expect(
            OutboundQueue.coalesce(frames) == [
                .turnStarted(a), .assistantDelta(a, delta: "Hello 🎉"), .assistantDelta(b, delta: "x"),
                .assistantDelta(a, delta: "!"),
                .turnProgress(a, ProgressInfo(kind: "k", message: "m", turn: 1, maxTurns: 2)),
                .assistantDelta(a, delta: "yz"),
            ])
        #expect(OutboundQueue.coalesce([.assistantDelta(a, delta: "1")]) == [.assistantDelta(a, delta: "1")])
        #expect(OutboundQueue.coalesce([]) == [])
    }

    /// Whatever the split, the text a client reads back is the text that was streamed.
    @Test func mergingKeepsTheText() {
        let a = Self.header("a")
        let pieces = ["a", "é", "\n", "漢字", "\"", "🎉", ""]
        for _ in 0..<500 {
            let deltas = (0..<Int.random(in: 1...30)).map { _ in pieces.randomElement()! }
            let merged = OutboundQueue.coalesce(deltas.map { .assistantDelta(a, delta: $0) })
            #expect(merged.count == 1)
            #expect(merged.first == .assistantDelta(a, delta: deltas.joined()))
        }
    }
}
