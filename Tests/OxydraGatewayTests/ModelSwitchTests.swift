import Foundation
import OxydraCore
import OxydraMemory
import OxydraRuntime
import OxydraTesting
import Testing

@testable import OxydraGateway

@Suite("Switching a session's model", .serialized)
struct ModelSwitchTests {
    @Test func aSessionSwitchesModelKeepsItAcrossARestartAndComesBack() async throws {
        let fixture = try await GatewayFixture.start(switching: true)
        let (client, session) = try await fixture.connected()
        client.send(.listModels(requestID: "l"))
        guard case .modelList(_, let current, let models) = try await client.next(isType("model_list")) else {
            Issue.record("no model_list")
            return
        }
        #expect(current.provider == "openai" && current.model == "gpt-4o-mini" && current.contextWindow == 128_000)
        #expect(models.map(\.model) == ["gpt-4o-mini", "gpt-4o"])

        client.send(.setModel(requestID: "m", provider: nil, model: "gpt-4o"))
        guard case .modelChanged(_, let ref, let info) = try await client.next(isType("model_changed")) else {
            Issue.record("no model_changed")
            return
        }
        #expect(ref.sessionID == session && info.model == "gpt-4o" && info.images)
        fixture.server.enqueue(.text("from 4o"))
        client.send(turn("t1", "hi"))
        try await client.next(isType("turn_completed"))
        #expect(fixture.server.requests.last?.json?["model"] == "gpt-4o")

        client.send(.setModel(requestID: "bad", provider: nil, model: "gpt-99"))
        guard case .error(let failure) = try await client.next(isType("error")) else {
            Issue.record("no error for an unknown model")
            return
        }
        #expect(failure.code == .notFound)
        #expect(failure.message.contains("no configured provider offers model `gpt-99`"), "\(failure.message)")
        client.send(.setModel(requestID: "p", provider: "nope", model: "gpt-4o"))
        guard case .error(let unknown) = try await client.next(isType("error")) else {
            Issue.record("no error for an unknown provider")
            return
        }
        #expect(unknown.message.contains("cannot switch to `gpt-4o` on `nope`"), "\(unknown.message)")

        // The choice is the session's: it survives a guest restart.
        client.close()
        await fixture.stop(everything: false)
        let again = try await GatewayFixture.start(
            reusing: (fixture.server, fixture.directory), switching: true)
        defer { Teardown.run { await again.stop() } }
        let (second, _) = try await again.connected(session: session.rawValue)
        again.server.enqueue(.text("still 4o"))
        second.send(turn("t2", "again"))
        try await second.next(isType("turn_completed"))
        #expect(again.server.requests.last?.json?["model"] == "gpt-4o")

        // `provider/model` back to the guest's own.
        second.send(.setModel(requestID: "back", provider: nil, model: "openai/gpt-4o-mini"))
        guard case .modelChanged(_, _, let back) = try await second.next(isType("model_changed")) else {
            Issue.record("no model_changed")
            return
        }
        #expect(back.model == "gpt-4o-mini")
        #expect(try await again.store.sessionModel(of: session) == nil)
        again.server.enqueue(.text("mini"))
        second.send(turn("t3", "and now"))
        try await second.next(isType("turn_completed"))
        #expect(again.server.requests.last?.json?["model"] == "gpt-4o-mini")
    }

    @Test func aGuestWithOneModelSaysSo() async throws {
        let fixture = try await GatewayFixture.start()
        defer { Teardown.run { await fixture.stop() } }
        let (client, _) = try await fixture.connected()
        client.send(.setModel(requestID: "m", provider: nil, model: "gpt-4o"))
        guard case .error(let info) = try await client.next(isType("error")) else {
            Issue.record("no error")
            return
        }
        #expect(info.message == "this guest has one model (openai/gpt-4o-mini)")
    }
}

@Suite("Spending limits through the gateway", .serialized)
struct BudgetGatewayTests {
    /// The worst case of a gpt-4o-mini call (16,384 output tokens at $0.60/M ≈ $0.0098) does not
    /// fit a $0.005 day: refused before any request, saying which limit and when it resets.
    @Test func aCallThatCannotBeReservedIsRefusedBeforeAnyRequest() async throws {
        let fixture = try await GatewayFixture.start(budget: BudgetConfig(dailyUSD: 0.005, monthlyUSD: nil))
        defer { Teardown.run { await fixture.stop() } }
        let (client, _) = try await fixture.connected()
        client.send(turn("t1", "hi"))
        guard case .error(let info) = try await client.next(isType("error")) else {
            Issue.record("no error frame")
            return
        }
        #expect(info.code == .turnFailed)
        #expect(
            info.message.contains("budget.daily_usd ($0.0050) would be exceeded: $0.0000 spent today"),
            "\(info.message)")
        #expect(info.message.contains("it resets at "))
        #expect(fixture.server.requests.isEmpty)
    }

    /// Within the limit every call is recorded at the provider's reported usage, priced exactly.
    @Test func callsAreRecordedAtTheReportedUsage() async throws {
        let fixture = try await GatewayFixture.start(budget: BudgetConfig(dailyUSD: 1, monthlyUSD: nil))
        defer { Teardown.run { await fixture.stop() } }
        fixture.server.enqueue(.text("fine"))
        let (client, session) = try await fixture.connected()
        client.send(turn("t1", "hi"))
        try await client.next(isType("turn_completed"))
        let records = try await fixture.store.usageRecords(since: .distantPast)
        #expect(records.count == 1)
        // 11 prompt and 7 completion tokens (as the scripted server reports) of gpt-4o-mini.
        #expect(records.first?.usage == Usage(promptTokens: 11, completionTokens: 7))
        #expect(records.first?.costNanodollars == Int64(11 * 150 + 7 * 600))
        #expect(records.first?.session == session && records.first?.model == "gpt-4o-mini")
    }
}
