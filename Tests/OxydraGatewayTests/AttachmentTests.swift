import Foundation
import OxydraCore
import OxydraTesting
import Testing

@testable import OxydraGateway

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Attachments", .serialized)
struct AttachmentTests {
    static let png = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 1, 2, 3])

    static func turn(_ id: String, _ prompt: String, _ files: [ClientFrame.FileAttachment]) -> ClientFrame {
        .sendTurn(ClientFrame.SendTurn(requestID: "r-\(id)", turnID: TurnID(id), prompt: prompt, attachments: files))
    }

    /// An image reaches the model as an image and the inbox; a text file only the inbox, named in
    /// the prompt; names are made safe and never overwrite.
    @Test func filesLandInTheInboxAndImagesReachTheModel() async throws {
        let fixture = try await GatewayFixture.start()
        defer { Teardown.run { await fixture.stop() } }
        let shared = fixture.directory.path + "/shared"
        try "old".write(toFile: shared + "/../keep.txt", atomically: true, encoding: .utf8)
        fixture.server.enqueue(.text("seen"))
        let (client, _) = try await fixture.connected()
        client.send(
            Self.turn(
                "t1", "what is in these?",
                [
                    .init(name: "cat.png", mimeType: "image/png", data: Self.png),
                    .init(name: "../../keep.txt", mimeType: "text/plain", data: Data("notes\n".utf8)),
                ]))
        guard case .turnCompleted = try await client.next(isType("turn_completed")) else {
            Issue.record("the turn did not complete")
            return
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: shared + "/inbox/cat.png")) == Self.png)
        #expect(try String(contentsOfFile: shared + "/inbox/keep.txt", encoding: .utf8) == "notes\n")
        #expect(try String(contentsOfFile: fixture.directory.path + "/keep.txt", encoding: .utf8) == "old")
        let body = try JSONValue(parsing: String(decoding: fixture.server.requests.last!.body, as: UTF8.self))
        let user = try #require(body["messages"]?.arrayValue?.last)
        let parts = try #require(user["content"]?.arrayValue)
        let text = parts.first?["text"]?.stringValue ?? ""
        #expect(text.hasPrefix("what is in these?\n\n[Attached files: /shared/inbox/cat.png (image/png, 11 bytes; "))
        #expect(text.contains("/shared/inbox/keep.txt (text/plain, 6 bytes)]"), "\(text)")
        #expect(
            parts.last?["image_url"]?["url"]?.stringValue == "data:image/png;base64,"
                + Self.png.base64EncodedString())

        // The same name again: a new file beside it.
        fixture.server.enqueue(.text("again"))
        client.send(
            Self.turn("t2", "once more", [.init(name: "keep.txt", mimeType: "text/plain", data: Data("2".utf8))]))
        try await client.next(isType("turn_completed"))
        #expect(try String(contentsOfFile: shared + "/inbox/keep-2.txt", encoding: .utf8) == "2")
        #expect(try String(contentsOfFile: shared + "/inbox/keep.txt", encoding: .utf8) == "notes\n")
    }

    /// The agent can write in /shared: an inbox it replaced with a link to elsewhere is refused by
    /// the kernel (O_NOFOLLOW), the turn fails saying so and nothing is written there.
    @Test func aPlantedSymlinkIsNotFollowed() async throws {
        let fixture = try await GatewayFixture.start()
        defer { Teardown.run { await fixture.stop() } }
        let outside = try fixture.directory.createDirectory("outside")
        #expect(symlink(outside, fixture.directory.path + "/shared/inbox") == 0)
        let (client, _) = try await fixture.connected()
        client.send(Self.turn("t1", "hi", [.init(name: "a.txt", mimeType: "text/plain", data: Data("x".utf8))]))
        guard case .error(let info) = try await client.next(isType("error")) else {
            Issue.record("no error frame")
            return
        }
        #expect(info.code == .turnFailed)
        #expect(info.message.contains("cannot open /shared/inbox"), "\(info.message)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside).isEmpty)
        #expect(fixture.server.requests.isEmpty)
    }

    @Test func namesAreMadeSafe() {
        #expect(Inbox.safeName("../../etc/passwd") == "passwd")
        #expect(Inbox.safeName("C:\\Users\\me\\report.pdf") == "report.pdf")
        #expect(Inbox.safeName(".bashrc") == "bashrc")
        #expect(Inbox.safeName("a b?*.txt") == "a b__.txt")
        #expect(Inbox.safeName("\u{1B}[2J") == "_[2J")
        #expect(Inbox.safeName("..") == "attachment")
        let long = Inbox.safeName(String(repeating: "x", count: 300) + ".tar.gz")
        #expect(long.count == 100 && long.hasSuffix(".gz"))
    }
}
