import Hummingbird
import Logging
import OxydraConfig
import OxydraCore
import OxydraRunner
import ServiceLifecycle
import UnixSignals

/// `runner web [--bind ADDR] [--insecure]`: serves the page until SIGINT/SIGTERM.
public enum WebCommand {
    /// Checks `[web]` and the options; the server's settings, or the error to print.
    public static func settings(
        _ context: RunnerContext, bind: String?, insecure: Bool, runnerExecutable: String
    ) -> Result<(WebServer.Settings, generatedToken: Bool), CommandOutput> {
        let loaded = RunnerConfigLoader.load(path: context.configPath, display: context.display)
        if !loaded.issues.isEmpty { return .failure(.error(loaded.issues.map(\.description).joined(separator: "\n"))) }
        let web = loaded.config.web
        guard web.enabled else {
            return .failure(
                .error("web.enabled = false in \(context.display.render(context.configPath)); set it to true"))
        }
        let parsed = GatewayBind.parse(bind ?? web.bind)
        guard let address = parsed.bind else {
            return .failure(.error("--bind \(bind ?? web.bind): \(parsed.problem ?? "not host:port")"))
        }
        var token: String?
        var generated = false
        switch web.authMode {
        case .disabled:
            guard address.isLoopback else {
                return .failure(
                    .error(
                        "web.auth_mode = \"disabled\" is only allowed on a loopback bind; \(address.host) is reachable "
                            + "from other machines: use auth_mode = \"token\""))
            }
        case .token:
            if let name = web.authTokenEnv {
                guard let value = context.environment[name], value.utf8.count >= 16 else {
                    return .failure(
                        .error(
                            "web.auth_token_env names \(name), which is unset or shorter than 16 characters; "
                                + "export it (e.g. `export \(name)=$(openssl rand -hex 32)`)"))
                }
                token = value
            } else {
                token = GatewayProtocol.newToken()
                generated = true
            }
        }
        return .success(
            (
                WebServer.Settings(
                    bind: address, token: token, runnerExecutable: runnerExecutable, context: context,
                    insecure: insecure), generated
            ))
    }

    public static func run(_ context: RunnerContext, bind: String?, insecure: Bool, runnerExecutable: String) async
        -> Int32
    {
        let settings: WebServer.Settings
        let generated: Bool
        switch Self.settings(context, bind: bind, insecure: insecure, runnerExecutable: runnerExecutable) {
        case .success(let value): (settings, generated) = value
        case .failure(let output): output.emitAndExit()
        }
        var logger = Logger(label: "oxydra.web")
        logger.logLevel = .warning
        let server = WebServer(settings: settings, logger: logger)
        let application = server.application { port in
            let host = settings.bind.host.contains(":") ? "[\(settings.bind.host)]" : settings.bind.host
            var lines = "web_url=http://\(host):\(port)/\n"
            if generated, let token = settings.token {
                // The fragment never reaches a server log; the page logs in with it and drops it.
                lines += "web_login=http://\(host):\(port)/#token=\(token)\n"
            }
            StandardStreams.write(lines, to: 1)
        }
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [.init(service: application, serviceName: "web")],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
            return 0
        } catch {
            StandardStreams.write("runner error: the web server stopped: \(error)\n", to: 2)
            return 1
        }
    }
}
