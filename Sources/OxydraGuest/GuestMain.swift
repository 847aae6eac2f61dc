import OxydraCore

#if canImport(Glibc)
    import Glibc
#endif

/// The whole guest, for `oxydra-vm`'s thin `main`, the container and micro_vm tiers and tests.
///
/// Start-up runs in two phases. The first is single-threaded (this thread): read the bootstrap
/// envelope, load the configuration, the catalog and the operator prompt, start the shell sandbox,
/// then (process tier) confine the process with Landlock — Landlock only covers threads created
/// afterwards. The second phase builds the provider, memory, tools and gateway, and serves until
/// SIGTERM or `shutdown_user`.
public enum GuestMain {
    /// Runs the guest to the end; returns the process exit code.
    public static func run(
        user: UserID, workspaceRoot: String, bootstrap: PreparedGuest.BootstrapSource, gatewayBind: String?,
        gatewayAdvertise: String? = nil, overrides: [String]
    ) -> Int32 {
        // Everything the guest and its shell sandbox create is private to the user.
        umask(0o077)
        let prepared: PreparedGuest
        do {
            prepared = try PreparedGuest.load(
                user: user, workspaceRoot: workspaceRoot, bootstrap: bootstrap, gatewayBind: gatewayBind,
                gatewayAdvertise: gatewayAdvertise, overrides: overrides)
        } catch {
            StandardStreams.write("oxydra-vm error: \(error)\n", to: 2)
            return 1
        }
        return BlockingBridge.run { await Guest(prepared).run() }
    }
}
