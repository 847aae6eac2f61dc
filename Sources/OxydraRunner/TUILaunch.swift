import OxydraCore
import OxydraSandbox

#if canImport(Glibc)
    import Glibc
#endif

/// `runner --tui` / `runner tui`: connect-only. Finds the running guest's gateway (else
/// `NoRunningGuest`) and replaces the runner with `oxydra-tui`.
public enum TUILaunch {
    public static func exec(_ context: RunnerContext, session: String?) -> CommandOutput {
        let endpoint: GatewayEndpoint
        do {
            endpoint = try GatewayEndpoint.locate(context)
        } catch {
            return error
        }
        guard
            let executable = ExecutableLocator.find(
                "oxydra-tui", variable: "OXYDRA_TUI_EXECUTABLE", environment: context.environment)
        else {
            return .error(
                "cannot find the oxydra-tui executable (looked at $OXYDRA_TUI_EXECUTABLE, beside runner, and on PATH)")
        }
        var arguments = [
            executable, "--gateway-endpoint", endpoint.url, "--user", endpoint.user.rawValue, "--endpoint-file",
            endpoint.marker,
        ]
        if let session { arguments += ["--session", session] }
        arguments += ["--token-file", endpoint.tokenFile]
        let environment = context.environment.map { "\($0.key)=\($0.value)" }
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup($0) } + [nil]
        execve(executable, argv, envp)
        return .error("cannot run \(executable): \(String(cString: strerror(errno)))")
    }
}
