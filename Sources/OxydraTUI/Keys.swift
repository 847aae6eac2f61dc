/// A key press decoded from terminal input.
public enum Key: Sendable, Hashable {
    case character(Character)
    case enter
    /// Alt-Enter or Ctrl-J: a newline in the input.
    case newline
    case backspace, delete, left, right, up, down, home, end, pageUp, pageDown, escape, tab
    /// Alt-↑ / Alt-↓: move the focus between tool calls.
    case altUp, altDown
    case control(Character)
    /// Pasted text (bracketed paste), inserted as-is.
    case paste(String)
}

/// Turns terminal bytes into keys. Escape sequences split across reads are kept until complete.
public struct KeyDecoder: Sendable {
    private var pending: [UInt8] = []
    private var pasting: [UInt8]?

    public init() {}

    public mutating func decode(_ bytes: some Sequence<UInt8>) -> [Key] {
        pending.append(contentsOf: bytes)
        var keys: [Key] = []
        var index = 0
        let input = pending
        func take(_ count: Int) { index += count }
        while index < input.count {
            if var paste = pasting {
                // Inside a bracketed paste: everything until ESC [ 2 0 1 ~ is text.
                let end: [UInt8] = [0x1B, 0x5B, 0x32, 0x30, 0x31, 0x7E]
                if input.count - index >= end.count, Array(input[index..<index + end.count]) == end {
                    keys.append(.paste(String(decoding: paste, as: UTF8.self)))
                    pasting = nil
                    take(end.count)
                    continue
                }
                if input.count - index < end.count, Array(end.prefix(input.count - index)) == Array(input[index...]) {
                    break
                }
                paste.append(input[index])
                pasting = paste
                take(1)
                continue
            }
            let byte = input[index]
            switch byte {
            case 0x1B:
                guard index + 1 < input.count else {
                    keys.append(.escape)
                    take(1)
                    continue
                }
                let next = input[index + 1]
                if next == 0x5B || next == 0x4F {
                    // CSI or SS3: parameters then a final byte in 0x40...0x7E.
                    var end = index + 2
                    while end < input.count, !(0x40...0x7E).contains(input[end]) { end += 1 }
                    guard end < input.count else {
                        pending = Array(input[index...])
                        return keys
                    }
                    let parameters = String(decoding: input[(index + 2)..<end], as: UTF8.self)
                    if next == 0x5B && parameters == "200" && input[end] == 0x7E {
                        pasting = []
                    } else if let key = Self.sequence(final: input[end], parameters: parameters) {
                        keys.append(key)
                    }
                    take(end - index + 1)
                } else if next == 0x0D || next == 0x0A {
                    keys.append(.newline)
                    take(2)
                } else {
                    keys.append(.escape)
                    take(1)
                }
            case 0x0D:
                keys.append(.enter)
                take(1)
            case 0x0A:
                keys.append(.newline)
                take(1)
            case 0x09:
                keys.append(.tab)
                take(1)
            case 0x7F, 0x08:
                keys.append(.backspace)
                take(1)
            case 0x00..<0x20:
                keys.append(.control(Character(Unicode.Scalar(byte + 0x60))))
                take(1)
            default:
                let length = Self.utf8Length(byte)
                guard index + length <= input.count else {
                    pending = Array(input[index...])
                    return keys
                }
                let text = String(decoding: input[index..<index + length], as: UTF8.self)
                for character in text { keys.append(.character(character)) }
                take(length)
            }
        }
        pending = []
        return keys
    }

    private static func sequence(final: UInt8, parameters: String) -> Key? {
        switch (final, parameters) {
        case (0x41, "1;3"): .altUp
        case (0x42, "1;3"): .altDown
        // Shift-Enter where the terminal reports it (xterm modifyOtherKeys, the kitty protocol).
        case (0x7E, "27;2;13"), (0x75, "13;2"): .newline
        case (0x41, _): .up
        case (0x42, _): .down
        case (0x43, _): .right
        case (0x44, _): .left
        case (0x48, _): .home
        case (0x46, _): .end
        case (0x7E, "1"), (0x7E, "7"): .home
        case (0x7E, "4"), (0x7E, "8"): .end
        case (0x7E, "3"): .delete
        case (0x7E, "5"): .pageUp
        case (0x7E, "6"): .pageDown
        default: nil
        }
    }

    private static func utf8Length(_ lead: UInt8) -> Int {
        switch lead {
        case 0xC0...0xDF: 2
        case 0xE0...0xEF: 3
        case 0xF0...0xF7: 4
        default: 1
        }
    }
}
