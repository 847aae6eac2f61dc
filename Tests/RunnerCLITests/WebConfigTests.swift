import Foundation
import OxydraCore
import OxydraTesting
import Testing

#if canImport(Glibc)
    import Glibc
#endif
#if canImport(CDispatch)
    import CDispatch
#endif

/// The configuration forms' API over loopback: files, schema, checked saves that keep comments,
/// write-only secrets, new users and the first-run provider set-up.
@Suite("Web app configuration", .serialized)
struct WebConfigTests {
    static let commentedAgent = """
        # My agent — comments stay
        [selection]
        provider = "local"   # the scripted server
        model = "scripted-model"

        [runtime]
        max_turns = 8 # fewer loops

        """

    func agent(_ server: ScriptedModelServer) -> String {
        Self.commentedAgent + """

            [providers.registry.local]
            provider_type = "openai"
            base_url = "\(server.baseURL)"
            skip_catalog_validation = true

            """
    }

    private func post(_ web: WebFixture, _ path: String, _ body: JSONValue) throws -> LoopbackHTTP.Response {
        try web.request(
            "POST", path, headers: ["Authorization": "Bearer \(web.token)", "Content-Type": "application/json"],
            body: JSONWriter.text(body))
    }

    private func get(_ web: WebFixture, _ path: String) throws -> LoopbackHTTP.Response {
        try web.request("GET", path, headers: ["Authorization": "Bearer \(web.token)"])
    }

    private func file(_ web: WebFixture, _ relative: String) throws -> String {
        try String(contentsOfFile: web.guest.project.root + "/" + relative, encoding: .utf8)
    }

    @Test func filesAreFormsWithSchemaValuesAndSources() async throws {
        let web = try await WebFixture.start(startGuest: false)
        defer { Teardown.run { await web.stop() } }
        try web.guest.project.directory.write(agent(web.guest.server), to: ".oxydra/agent.toml")
        let list = try get(web, "/api/v1/config")
        let ids = list.jsonBody?["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []
        #expect(
            ids == ["runner", "user/alice", "agent/project/agent.toml", "agent/project/providers.toml"], "\(list.body)")

        let agent = try get(web, "/api/v1/config/file?id=agent/project/agent.toml")
        #expect(agent.status == 200, "\(agent.body)")
        let data = try #require(agent.jsonBody?["data"])
        #expect(data["values"]?["runtime.max_turns"]?["value"] == 8)
        #expect(data["effective"]?["runtime.max_turns"]?["source"] == "./.oxydra/agent.toml")
        // Every key of the schema, with its default.
        let runtime = data["schema"]?["keys"]?.arrayValue?.first { $0["key"] == "runtime" }
        let maxTurns = runtime?["shape"]?["keys"]?.arrayValue?.first { $0["key"] == "max_turns" }
        #expect(
            maxTurns?["shape"]?["type"] == "integer" && maxTurns?["default"] == 100, "\(String(describing: maxTurns))")
        let approval = data["schema"]?["keys"]?.arrayValue?.first { $0["key"] == "tools" }?["shape"]?["keys"]?
            .arrayValue?
            .first { $0["key"] == "approval" }?["shape"]?["keys"]?.arrayValue?.first { $0["key"] == "mode" }
        #expect(approval?["shape"]?["options"] == ["off", "risky", "all"], "\(String(describing: approval))")

        let unknown = try get(web, "/api/v1/config/file?id=agent/elsewhere/agent.toml")
        #expect(unknown.status == 404)
    }

    @Test func aTypoIsRefusedNextToItsFieldAndTheFixIsSavedWithCommentsKept() async throws {
        let web = try await WebFixture.start(startGuest: false)
        defer { Teardown.run { await web.stop() } }
        try web.guest.project.directory.write(agent(web.guest.server), to: ".oxydra/agent.toml")
        let id = "agent/project/agent.toml"
        let opened = try get(web, "/api/v1/config/file?id=\(id)")
        let revision = try #require(opened.jsonBody?["data"]?["revision"]?.stringValue)
        let before = try file(web, ".oxydra/agent.toml")

        let typo = try post(
            web, "/api/v1/config/file",
            [
                "id": .string(id), "revision": .string(revision),
                "changes": [["path": ["runtime", "max_turns"], "value": "1o"]],
            ])
        #expect(typo.status == 422, "\(typo.body)")
        let field = typo.jsonBody?["error"]?["fields"]?.arrayValue?.first
        #expect(field?["path"] == "runtime.max_turns")
        #expect(field?["message"]?.stringValue?.contains("must be an integer") == true, "\(typo.body)")
        let provider = try post(
            web, "/api/v1/config/file",
            ["id": .string(id), "changes": [["path": ["selection", "provider"], "value": "locl"]]])
        #expect(provider.status == 422)
        #expect(
            provider.jsonBody?["error"]?["fields"]?.arrayValue?.first?["path"] == "selection.provider",
            "\(provider.body)")
        #expect(try file(web, ".oxydra/agent.toml") == before, "a refused change writes nothing")

        let fixed = try post(
            web, "/api/v1/config/file",
            [
                "id": .string(id), "revision": .string(revision),
                "changes": [
                    ["path": ["runtime", "max_turns"], "value": "12"],
                    ["path": ["tools", "approval", "mode"], "value": "all"],
                ],
            ])
        #expect(fixed.status == 200, "\(fixed.body)")
        #expect(fixed.jsonBody?["data"]?["changed_fields"] == ["runtime.max_turns", "tools.approval.mode"])
        let after = try file(web, ".oxydra/agent.toml")
        #expect(
            after.contains("# My agent — comments stay\n[selection]\nprovider = \"local\"   # the scripted server\n"))
        #expect(after.contains("max_turns = 12 # fewer loops\n"), "\(after)")
        #expect(after.hasSuffix("[tools.approval]\nmode = \"all\"\n"), "\(after)")
        let backup = try #require(fixed.jsonBody?["data"]?["backup_path"]?.stringValue)
        #expect(try file(web, String(backup.dropFirst(2))) == before)
        let check = try await web.guest.project.run(["config", "check"])
        #expect(check.exitCode == 0, "\(check.standardError)")

        // The revision the page had is stale now: a second save over it is refused.
        let stale = try post(
            web, "/api/v1/config/file",
            [
                "id": .string(id), "revision": .string(revision),
                "changes": [["path": ["runtime", "max_turns"], "value": 3]],
            ])
        #expect(stale.status == 409, "\(stale.body)")
        // Removing a key puts the default back.
        let removed = try post(
            web, "/api/v1/config/file",
            ["id": .string(id), "changes": [["path": ["runtime", "max_turns"], "value": nil]]])
        let withoutKey = try file(web, ".oxydra/agent.toml")
        #expect(removed.status == 200 && !withoutKey.contains("max_turns"), "\(removed.body)")
    }

    @Test func aSymlinkedFileIsUpdatedAtItsTarget() async throws {
        let web = try await WebFixture.start(startGuest: false)
        defer { Teardown.run { await web.stop() } }
        let root = web.guest.project.root
        try web.guest.project.directory.write(agent(web.guest.server), to: "dotfiles/agent.toml")
        unlink(root + "/.oxydra/agent.toml")
        #expect(symlink(root + "/dotfiles/agent.toml", root + "/.oxydra/agent.toml") == 0)
        let saved = try post(
            web, "/api/v1/config/file",
            ["id": "agent/project/agent.toml", "changes": [["path": ["runtime", "max_turns"], "value": 9]]])
        #expect(saved.status == 200, "\(saved.body)")
        var info = stat()
        #expect(lstat(root + "/.oxydra/agent.toml", &info) == 0 && (info.st_mode & S_IFMT) == S_IFLNK)
        #expect(try file(web, "dotfiles/agent.toml").contains("max_turns = 9 # fewer loops"))
    }

    @Test func secretsAreWriteOnly() async throws {
        let web = try await WebFixture.start(startGuest: false)
        defer { Teardown.run { await web.stop() } }
        try web.guest.project.directory.write(agent(web.guest.server), to: ".oxydra/agent.toml")
        try web.guest.project.directory.write(
            "[providers.registry.local]\napi_key = \"sk-first-secret\"\nextra_headers = { Authorization = \"Bearer hdr-secret\", X-Team = \"blue\" }\n",
            to: ".oxydra/providers.toml")
        let id = "agent/project/providers.toml"
        let opened = try get(web, "/api/v1/config/file?id=\(id)")
        #expect(opened.status == 200)
        #expect(!opened.body.contains("sk-first-secret") && !opened.body.contains("hdr-secret"), "\(opened.body)")
        let values = opened.jsonBody?["data"]?["values"]
        #expect(values?["providers.registry.local.api_key"]?["secret"] == true)
        #expect(values?["providers.registry.local.api_key"]?["value"] == nil)
        #expect(values?["providers.registry.local.extra_headers"]?["value"]?["Authorization"] == "********")
        let effective = try get(web, "/api/v1/config/file?id=agent/project/agent.toml")
        #expect(!effective.body.contains("sk-first-secret") && !effective.body.contains("hdr-secret"))

        // Sending the mask back keeps the value; a header table edited around a masked value keeps it.
        let kept = try post(
            web, "/api/v1/config/file",
            [
                "id": .string(id),
                "changes": [
                    ["path": ["providers", "registry", "local", "api_key"], "value": "********"],
                    [
                        "path": ["providers", "registry", "local", "extra_headers"],
                        "value": ["toml": #"{ Authorization = "********", X-Team = "red" }"#],
                    ],
                ],
            ])
        #expect(kept.status == 200, "\(kept.body)")
        #expect(kept.jsonBody?["data"]?["changed_fields"] == ["providers.registry.local.extra_headers"])
        var text = try file(web, ".oxydra/providers.toml")
        #expect(text.contains("sk-first-secret") && text.contains("Bearer hdr-secret") && text.contains("\"red\""))

        let replaced = try post(
            web, "/api/v1/config/file",
            [
                "id": .string(id),
                "changes": [["path": ["providers", "registry", "local", "api_key"], "value": "sk-new"]],
            ])
        #expect(replaced.status == 200 && !replaced.body.contains("sk-new"))
        text = try file(web, ".oxydra/providers.toml")
        #expect(text.contains("api_key = \"sk-new\""))
        var info = stat()
        #expect(stat(web.guest.project.root + "/.oxydra/providers.toml", &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600, "a file holding a key is readable by its owner only")
    }

    @Test func aStateChangeFromAnotherSiteIsRefused() async throws {
        let web = try await WebFixture.start(startGuest: false)
        defer { Teardown.run { await web.stop() } }
        let login = try web.request(
            "POST", "/api/v1/login", headers: ["Content-Type": "application/json", "Origin": web.origin],
            body: #"{"token":"\#(web.token)"}"#)
        let cookie = String(try #require(login.header("Set-Cookie")).split(separator: ";")[0])
        let body = #"{"id":"runner","changes":[{"path":["default_tier"],"value":"container"}]}"#
        let before = try file(web, ".oxydra/runner.toml")
        for origin in [nil, "http://evil.example"] {
            var headers = ["Cookie": cookie, "Content-Type": "application/json"]
            headers["Origin"] = origin
            let response = try web.request("POST", "/api/v1/config/file", headers: headers, body: body)
            #expect(response.status == 403)
        }
        #expect(try file(web, ".oxydra/runner.toml") == before)
    }

    @Test func addingAUserRegistersItAndCreatesItsFile() async throws {
        let web = try await WebFixture.start(startGuest: false)
        defer { Teardown.run { await web.stop() } }
        let added = try post(web, "/api/v1/config/users", ["user_id": "bob"])
        #expect(added.status == 200, "\(added.body)")
        #expect(try file(web, ".oxydra/runner.toml").contains("[users.bob]\nconfig_path = \"users/bob.toml\""))
        #expect(try file(web, ".oxydra/users/bob.toml") == "config_version = \"1.0.0\"\n")
        let meta = try get(web, "/api/v1/meta")
        #expect(meta.jsonBody?["data"]?["users"] == ["alice", "bob"])
        #expect(try await web.guest.project.run(["config", "check"]).exitCode == 0)
        let again = try post(web, "/api/v1/config/users", ["user_id": "bob"])
        #expect(again.status == 422 && again.body.contains("already registered"))
        let traversal = try post(web, "/api/v1/config/users", ["user_id": "../evil"])
        #expect(traversal.status == 422)
        #expect(!FileManager.default.fileExists(atPath: web.guest.project.root + "/.oxydra/evil.toml"))
    }

    @Test func onboardingSaysHowTestsTheProviderAndSaves() async throws {
        let web = try await WebFixture.start(
            startGuest: false, agent: "[selection]\nprovider = \"openai\"\nmodel = \"gpt-4o-mini\"\n")
        defer { Teardown.run { await web.stop() } }
        let server = web.guest.server
        let status = try get(web, "/api/v1/onboarding")
        #expect(status.jsonBody?["data"]?["needs_setup"] == true, "\(status.body)")
        #expect(status.jsonBody?["data"]?["message"]?.stringValue?.contains("OPENAI_API_KEY") == true)
        #expect(status.jsonBody?["data"]?["message"]?.stringValue?.contains("OpenAI-compatible") == true)

        let choice: JSONValue = [
            "kind": "openai_compatible", "base_url": .string(server.baseURL), "model": "scripted-model",
            "api_key": "sk-local-key",
        ]
        server.enqueue(.status(401, message: "invalid api key"))
        let refused = try post(web, "/api/v1/onboarding/test", choice)
        #expect(refused.jsonBody?["data"]?["ok"] == false, "\(refused.body)")
        #expect(refused.jsonBody?["data"]?["message"]?.stringValue?.contains("401") == true, "\(refused.body)")
        #expect(!refused.body.contains("sk-local-key"))
        server.enqueue(.text("OK"))
        let tested = try post(web, "/api/v1/onboarding/test", choice)
        #expect(tested.jsonBody?["data"]?["ok"] == true, "\(tested.body)")
        #expect(tested.jsonBody?["data"]?["reply"] == "OK")
        #expect(server.requests.last?.header("Authorization") == "Bearer sk-local-key")

        let saved = try post(web, "/api/v1/onboarding/save", choice)
        #expect(saved.status == 200, "\(saved.body)")
        let providers = try file(web, ".oxydra/providers.toml")
        #expect(providers.contains("[providers.registry.local]") && providers.contains("api_key = \"sk-local-key\""))
        #expect(try file(web, ".oxydra/agent.toml").contains("provider = \"local\"\nmodel = \"scripted-model\""))
        let after = try get(web, "/api/v1/onboarding")
        #expect(after.jsonBody?["data"]?["needs_setup"] == false, "\(after.body)")
        let check = try await web.guest.project.run(["config", "check"])
        #expect(check.exitCode == 0, "\(check.standardError)")
    }
}
