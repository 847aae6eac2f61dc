/// Text from the model and from tools is untrusted: written raw to a terminal, an escape sequence
/// could rewrite the screen, the window title or the clipboard (OSC 52). Every front end that
/// prints it to a terminal passes it through here first.
public enum TerminalText {
    /// Removes terminal control sequences (CSI `ESC [ … final`, OSC/DCS/APC/PM/SOS strings up to
    /// BEL or `ESC \`, and two-character escapes) and control characters (C0 other than newline and
    /// tab, DEL, C1). Tabs become `tab` (four spaces by default); newlines stay.
    public static func sanitize(_ text: String, tab: String = "    ") -> String {
        var filter = Filter(tab: tab)
        return filter.feed(text)
    }

    /// The same for text that arrives in pieces (streamed deltas): a sequence split across two
    /// pieces is still removed whole, instead of its second half being shown as text.
    public struct Filter: Sendable {
        enum State: Sendable {
            case text
            /// After ESC.
            case escape
            /// Inside `ESC [`, until a final byte.
            case controlSequence
            /// Inside an OSC/DCS/APC/PM/SOS string; `afterEscape` after its ESC (maybe `ESC \`).
            case string(afterEscape: Bool)
        }

        var state = State.text
        let tab: String

        public init(tab: String = "    ") { self.tab = tab }

        public mutating func feed(_ text: String) -> String {
            if case .text = state,
                !text.unicodeScalars.contains(where: {
                    ($0.value < 0x20 && $0.value != 0x0A) || (0x7F..<0xA0).contains($0.value)
                })
            {
                return text
            }
            var out = ""
            out.reserveCapacity(text.utf8.count)
            for scalar in text.unicodeScalars {
                switch state {
                case .text:
                    switch scalar.value {
                    case 0x0A: out.unicodeScalars.append(scalar)
                    case 0x09: out += tab
                    case 0x1B: state = .escape
                    case 0x9B: state = .controlSequence
                    case 0x9D, 0x90, 0x9E, 0x9F, 0x98: state = .string(afterEscape: false)
                    case 0x00..<0x20, 0x7F, 0x80..<0xA0: continue
                    default: out.unicodeScalars.append(scalar)
                    }
                case .escape:
                    switch scalar {
                    case "[": state = .controlSequence
                    case "]", "P", "_", "^", "X": state = .string(afterEscape: false)
                    default: state = .text  // a two-character escape: both dropped
                    }
                case .controlSequence:
                    if (0x40...0x7E).contains(scalar.value) { state = .text }
                case .string(let afterEscape):
                    if scalar.value == 0x07 || (afterEscape && scalar == "\\") || scalar.value == 0x9C {
                        state = .text
                    } else {
                        state = .string(afterEscape: scalar.value == 0x1B)
                    }
                }
            }
            return out
        }
    }
}
