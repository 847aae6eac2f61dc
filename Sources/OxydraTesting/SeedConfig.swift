/// The configuration files of the seed README's quick start, verbatim, for tests that need a
/// realistic project layout.
public enum SeedConfig {
    /// `.oxydra/runner.toml`.
    public static let runnerTOML = """
        workspace_root = ".oxydra/workspaces"
        default_tier = "process"

        [guest_images]
        oxydra_vm = "oxydra-vm:latest"
        shell_vm = "shell-vm:latest"

        [users.alice]
        config_path = ".oxydra/users/alice.toml"

        """

    /// `.oxydra/users/alice.toml`.
    public static let aliceTOML = """
        [behavior]
        sandbox_tier = "process"
        shell_enabled = false
        browser_enabled = false

        """
}
