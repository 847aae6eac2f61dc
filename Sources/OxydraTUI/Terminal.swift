import OxydraCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The controlling terminal: raw mode, the alternate screen, its size, and unbuffered output.
/// ``restore()`` puts everything back; call it on every exit path.
public final class Terminal: @unchecked Sendable {
    private var original = termios()
    private var active = false
    public let input: Int32 = 0
    public let output: Int32 = 1

    public init() {}

    public var isInteractive: Bool { isatty(input) == 1 && isatty(output) == 1 }

    /// Raw input (no echo, no line buffering, no signals from Ctrl-C), alternate screen, hidden
    /// cursor until a frame is drawn.
    public func enter() throws(TerminalError) {
        guard tcgetattr(input, &original) == 0 else { throw TerminalError("standard input is not a terminal") }
        var raw = original
        raw.c_iflag &= ~tcflag_t(BRKINT | ICRNL | INPCK | ISTRIP | IXON)
        raw.c_oflag &= ~tcflag_t(OPOST)
        raw.c_cflag |= tcflag_t(CS8)
        raw.c_lflag &= ~tcflag_t(ECHO | ICANON | IEXTEN | ISIG)
        withUnsafeMutableBytes(of: &raw.c_cc) { cc in
            cc[Int(VMIN)] = 1
            cc[Int(VTIME)] = 0
        }
        guard tcsetattr(input, TCSAFLUSH, &raw) == 0 else {
            throw TerminalError("cannot switch the terminal to raw mode")
        }
        active = true
        write("\u{1B}[?1049h\u{1B}[H\u{1B}[2J")
    }

    public func restore() {
        guard active else { return }
        active = false
        write("\u{1B}[0m\u{1B}[?25h\u{1B}[?1049l")
        tcsetattr(input, TCSAFLUSH, &original)
    }

    /// Columns and rows; 80×24 when unknown.
    public func size() -> (columns: Int, rows: Int) {
        var size = winsize()
        if ioctl(output, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0, size.ws_row > 0 {
            return (Int(size.ws_col), Int(size.ws_row))
        }
        return (80, 24)
    }

    public func write(_ text: String) {
        StandardStreams.write(text, to: output)
    }
}

public struct TerminalError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
