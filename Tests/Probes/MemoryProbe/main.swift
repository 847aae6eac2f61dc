// A test helper process: appends messages to a memory database one committed transaction at a
// time and prints `committed <sequence>` after each, until it is killed. The crash test SIGKILLs
// it at an arbitrary point and checks that every printed sequence survived. Every fifth turn it
// also creates and titles a session (writes that are not synced on their own) and prints
// `session <id>` once both returned; tool results are appended without a sync of their own.
//
//     oxydra-memory-probe <database path> <session id> [full|normal]

import OxydraCore
import OxydraMemory

#if canImport(Glibc)
    import Glibc
#endif

let arguments = CommandLine.arguments
guard arguments.count == 3 || arguments.count == 4,
    let durability = MemoryDurability(rawValue: arguments.count == 4 ? arguments[3] : "full")
else {
    print("usage: oxydra-memory-probe <database> <session> [full|normal]")
    exit(2)
}
let store = try SQLiteMemoryStore(path: arguments[1], user: "probe", indexing: true, durability: durability)
let session = SessionID(arguments[2])
var turn = 0
while true {
    turn += 1
    let messages: [Message] =
        turn % 3 == 0
        ? [
            .assistant(
                nil,
                toolCalls: [
                    ToolCall(id: "call-\(turn)", name: "file_read", arguments: ["path": .string("/shared/\(turn).txt")])
                ]),
            .toolResult(callID: "call-\(turn)", content: "contents of file \(turn)"),
        ]
        : [.user("message number \(turn) with some text to index")]
    var lines = ""
    if turn % 5 == 1 {
        let created = try await store.createSession(SessionID("s-\(turn)"))
        guard try await store.titleSession(created.id, "title \(turn)") else { exit(3) }
        lines += "session \(created.id)\n"
    }
    // A tool result is written without a sync of its own, as the runtime writes them.
    let stored =
        messages.count == 2
        ? try await store.append([messages[0]], to: session)
            + store.appendWithoutSync([messages[1]], to: session)
        : try await store.append(messages, to: session)
    // write(2) directly: the line must leave the process the moment the commit returns.
    lines += stored.map { "committed \($0.sequence)\n" }.joined()
    _ = lines.utf8CString.withUnsafeBufferPointer { write(1, $0.baseAddress, $0.count - 1) }
}
