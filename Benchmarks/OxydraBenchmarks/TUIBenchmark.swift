import OxydraCore
import OxydraTUI

/// The terminal UI's cost per streamed delta: applying an `assistant_delta` frame and drawing the
/// screen (Markdown layout, diff, escape sequences) on a 200-line conversation, against the same
/// stream drawn on an empty conversation (the floor: the work a delta needs whatever came before).
/// Also counts the rows each delta rewrites: a full-screen redraw per delta would show here.
func benchmarkTUI() {
    let ref = SessionRef(userID: "alice", sessionID: "runtime-alice")
    let header = TurnHeader(requestID: "r", session: ref, turn: TurnRef(turnID: "t", state: .running))
    let answer = """
        ## Result
        The build failed because **two** targets link `Foundation` and the *guest* must not.
        Here is what to change:

        ```swift
        import FoundationEssentials
        let value = try JSONParser.parse(text) // no Foundation
        for item in items where item.isEnabled { print(item.name) }
        ```

        | target | links Foundation | fix |
        |--------|:----------------:|-----|
        | oxydra-vm | yes | use FoundationEssentials |
        | shell-daemon | no | — |

        1. Edit `Package.swift`.
        2. Rebuild with `scripts/test.sh`.
        > Note: the check runs in CI as well.
        """
    // Deltas of about three tokens, as providers stream them.
    var deltas: [String] = []
    var piece = ""
    for character in answer {
        piece.append(character)
        if piece.count >= 12 && (character == " " || character == "\n") {
            deltas.append(piece)
            piece = ""
        }
    }
    if !piece.isEmpty { deltas.append(piece) }

    func conversation(turns: Int) -> ChatState {
        var state = ChatState(user: "alice", color: true)
        state.apply(.helloAck(requestID: "h", protocolVersion: 1, session: ref, activeTurn: nil))
        for turn in 0..<turns {
            state.append(.user, "question \(turn): what does the build need?")
            state.append(.assistant, answer)
        }
        state.activeTurn = "t"
        return state
    }

    func run(turns: Int) -> (perDelta: Double, maxRows: Int, fullRedraws: Int, lines: Int) {
        var state = conversation(turns: turns)
        var renderer = Renderer()
        let now = ContinuousClock.now
        _ = renderer.draw(state, columns: 100, rows: 40, now: now)
        var maxRows = 0
        var fullRedraws = 0
        var bytes = 0
        let start = clock.now
        for delta in deltas {
            state.apply(.assistantDelta(header, delta: delta))
            bytes += renderer.draw(state, columns: 100, rows: 40, now: now).utf8.count
            maxRows = max(maxRows, renderer.lastRowsWritten)
            if renderer.lastRowsWritten > 20 { fullRedraws += 1 }
        }
        let elapsed = seconds(clock.now - start)
        precondition(bytes > 0)
        var lines = 0
        for entry in state.entries {
            lines += entry.text.split(separator: "\n", omittingEmptySubsequences: false).count
        }
        return (elapsed / Double(deltas.count), maxRows, fullRedraws, lines)
    }

    var long: [Double] = []
    var empty: [Double] = []
    var worst = 0
    var redraws = 0
    var lines = 0
    for _ in 0..<7 {
        let measured = run(turns: 10)
        long.append(measured.perDelta)
        worst = max(worst, measured.maxRows)
        redraws += measured.fullRedraws
        lines = measured.lines
        empty.append(run(turns: 0).perDelta)
    }
    print(
        "tui: \(deltas.count) deltas of a Markdown answer on a \(lines)-line conversation (100×40): "
            + "min/median/max \(spread(long, scale: 1e6)) µs per delta; on an empty conversation (floor) "
            + "\(spread(empty, scale: 1e6)) µs; ratio of medians \(String(format2: median(long) / median(empty)))x; "
            + "at most \(worst) rows rewritten per delta, \(redraws) full redraws")
}
