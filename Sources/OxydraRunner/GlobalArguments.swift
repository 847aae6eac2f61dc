/// `runner --config C --user U status`: the seed and the original accept the global options before
/// the subcommand, where the argument parser only takes a subcommand's options after its name.
/// ``hoisted(_:)`` moves whatever precedes the subcommand to just after it (after the leaf of
/// `config show` or `images build`), so both orders mean the same.
public enum GlobalArguments {
    /// Subcommands, with the nested ones of each group.
    public static let subcommands: [String: [String]] = [
        "start": [], "stop": [], "restart": [], "status": [], "logs": [], "ask": [], "tui": [], "usage": [],
        "audit": ["verify", "show"],
        "supervise": [], "vm-connect": [],
        "config": ["show", "check"], "images": ["build", "list"], "catalog": [], "check-update": [], "web": [],
        "sessions": ["list", "show", "export", "rename", "archive", "unarchive", "delete"],
    ]
    /// Options that may come before a subcommand and take a value.
    static let valued: Set<String> = ["--config", "-c", "--user", "-u", "--set"]

    /// The arguments (without the program name) with the leading options moved after the subcommand.
    /// Without a subcommand (the default `start`) or with `--` in front, they are returned unchanged.
    public static func hoisted(_ arguments: [String]) -> [String] {
        var index = 0
        while index < arguments.count {
            let token = arguments[index]
            if token == "--" { return arguments }
            if let nested = subcommands[token] {
                guard index > 0 else { return arguments }
                var end = index + 1
                if end < arguments.count, nested.contains(arguments[end]) { end += 1 }
                return Array(arguments[index..<end]) + arguments[..<index] + arguments[end...]
            }
            if !token.hasPrefix("-") { return arguments }
            index += valued.contains(token) ? 2 : 1
        }
        return arguments
    }
}
