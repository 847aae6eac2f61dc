import OxydraCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Cleans tool output before it enters the model's context: host paths become virtual paths, and
/// values that look like credentials become `[REDACTED]`.
///
/// 1. Host paths → `/shared`, `/tmp`, `/vault` (longest prefix first; the workspace root itself
///    maps to ``hiddenRoot``).
/// 2. Every secret value the guest holds (provider keys, tokens, credential headers: see
///    `KnownSecrets`), by exact match, whatever its shape or length (≥ 6 characters).
/// 3. Credential keywords (`api_key`, `access_token`, `refresh_token`, `token`, `password`,
///    `secret`, `bearer`, with any prefix such as `x-api-key` or `client_secret`; `apiKey` too):
///    JSON values, `key=value` / `key: value` / `key is value`, quoted values (`api_key = "…"`,
///    `password='…'`, `token: '…'`), `Bearer x`, URL query parameters, and the password of a URL
///    (`https://user:pw@host`).
/// 4. High-entropy tokens: runs of `[A-Za-z0-9+/_-]` of 24–512 characters (plus `=` padding) with
///    Shannon entropy ≥ 3.8 bits per character, at least 8 distinct characters, a letter and a digit
///    or symbol — except hex strings (commit ids, hashes), `note-<uuid>` ids and paths.
public struct OutputScrubber: Sendable {
    public static let redacted = "[REDACTED]"
    /// What the workspace root is shown as (the model never sees host paths).
    public static let hiddenRoot = "/workspace"

    private let pathMappings: [(host: String, virtual: String)]
    /// Exact values to redact, longest first (so a key that contains another is taken whole).
    private let secrets: [String]

    public init(workspace: Workspace?, secrets: [String] = []) {
        self.secrets = Set(secrets.map(\.trimmed).filter { $0.count >= 6 }).sorted {
            $0.count != $1.count ? $0.count > $1.count : $0 < $1
        }
        guard let workspace else {
            pathMappings = []
            return
        }
        var mappings: [(String, String)] = []
        for (host, virtual) in [
            (workspace.shared, "/shared"), (workspace.tmp, "/tmp"), (workspace.vault, "/vault"),
            (workspace.root, Self.hiddenRoot),
        ] {
            mappings.append((host, virtual))
            if let real = Self.realPath(host), real != host { mappings.append((real, virtual)) }
        }
        pathMappings = mappings.filter { $0.0.count > 1 }.sorted { $0.0.count > $1.0.count }
    }

    static func realPath(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard realpath(path, &buffer) != nil else { return nil }
        return String(nulTerminated: buffer)
    }

    public func scrub(_ text: String) -> String {
        var result = text
        for (host, virtual) in pathMappings where Self.mayContain(result, host) && result.contains(host) {
            result = result.replacing(host, with: virtual)
        }
        for secret in secrets where Self.mayContain(result, secret) && result.contains(secret) {
            result = result.replacing(secret, with: Self.redacted)
        }
        // The patterns run only on the lines that can match them (see ``Windows``): Swift's regex
        // engine takes about 2 ms per KiB, half a second for a 256 KiB file read.
        let keywordWindows = Windows.around(result, lines: Windows.mayHoldKeyword, reach: Windows.keywordReach)
        if keywordWindows.contains(where: { String(decoding: $0, as: UTF8.self).firstMatch(of: Self.keyword) != nil }) {
            result = keywordWindows.apply(to: result) { part in
                var part = Self.keepingGroup(Self.jsonSecret, in: part, suffix: "\"")
                part = Self.keepingGroup(Self.quotedAssignment, in: part)
                part = Self.keepingGroup(Self.assignment, in: part)
                return Self.keepingGroup(Self.bearer, in: part)
            }
        }
        result = Windows.around(result, lines: Windows.mayHoldQuery, reach: 0).apply(to: result) {
            Self.keepingGroup(Self.querySecret, in: $0)
        }
        result = Windows.around(result, lines: Windows.mayHoldURLPassword, reach: 0).apply(to: result) {
            Self.keepingGroup(Self.urlPassword, in: $0, suffix: "@")
        }
        return Self.redactHighEntropy(result)
    }

    /// The parts of a text a pattern can match: whole lines that hold what every match of it must
    /// contain, each with the lines that follow within `reach` bytes (a key and its value may be
    /// separated by whitespace, newlines included). Applying a pattern to the windows alone gives
    /// what applying it to the whole text gives for every match whose key and value are less than
    /// `reach` bytes apart: such a match lies inside one window — it contains one of the words
    /// looked for, and every value stops at a line end — and a window starts at a line start, where
    /// `^` and `\b` hold as they do in the whole text. A line with any non-ASCII byte is always
    /// included: case-insensitive matching lets a few non-ASCII characters (the Kelvin sign, the
    /// long s) stand for ASCII letters.
    struct Windows {
        let bytes: [UInt8]
        /// Sorted, disjoint byte ranges, each from a line start to a line end (after its newline).
        let ranges: [Range<Int>]

        static let keywordReach = 256

        static func around(_ text: String, lines include: (ArraySlice<UInt8>) -> Bool, reach: Int) -> Windows {
            let bytes = Array(text.utf8)
            var ranges: [Range<Int>] = []
            var start = 0
            while start < bytes.count {
                let end = lineEnd(bytes, from: start)
                if include(bytes[start..<end]) {
                    let upper =
                        reach > 0 && end < bytes.count ? lineEnd(bytes, from: min(end + reach, bytes.count - 1)) : end
                    if let last = ranges.last, last.upperBound >= start {
                        ranges[ranges.count - 1] = last.lowerBound..<max(last.upperBound, upper)
                    } else {
                        ranges.append(start..<upper)
                    }
                }
                start = end
            }
            return Windows(bytes: bytes, ranges: ranges)
        }

        /// The index after the newline that ends the line holding `index` (or the text's end).
        static func lineEnd(_ bytes: [UInt8], from index: Int) -> Int {
            var end = index
            while end < bytes.count && bytes[end] != 0x0A { end += 1 }
            return min(end + 1, bytes.count)
        }

        func contains(where predicate: (ArraySlice<UInt8>) -> Bool) -> Bool {
            ranges.contains { predicate(bytes[$0]) }
        }

        /// `text` with `transform` applied to each window; `text` itself when nothing changed.
        func apply(to text: String, _ transform: (String) -> String) -> String {
            guard !ranges.isEmpty else { return text }
            var output: [UInt8] = []
            var changed = false
            var copied = 0
            for range in ranges {
                let part = String(decoding: bytes[range], as: UTF8.self)
                let transformed = transform(part)
                guard transformed != part else { continue }
                if !changed { output.reserveCapacity(bytes.count + 64) }
                changed = true
                output.append(contentsOf: bytes[copied..<range.lowerBound])
                output.append(contentsOf: transformed.utf8)
                copied = range.upperBound
            }
            guard changed else { return text }
            output.append(contentsOf: bytes[copied...])
            return String(decoding: output, as: UTF8.self)
        }

        /// Every credential keyword holds one of these (ASCII, any case); `basic` for `Basic x`.
        static let keywordStems: [[UInt8]] = ["key", "token", "passw", "secret", "bearer", "basic"].map {
            Array($0.utf8)
        }

        static func mayHoldKeyword(_ line: ArraySlice<UInt8>) -> Bool {
            var index = line.startIndex
            while index < line.endIndex {
                let byte = line[index]
                if byte >= 0x80 { return true }
                let lower = byte | 0x20
                for stem in keywordStems where stem[0] == lower && index + stem.count <= line.endIndex {
                    if (0..<stem.count).allSatisfy({ line[index + $0] | 0x20 == stem[$0] }) { return true }
                }
                index += 1
            }
            return false
        }

        /// `?name=` or `&name=`.
        static func mayHoldQuery(_ line: ArraySlice<UInt8>) -> Bool {
            line.contains(UInt8(ascii: "=")) && (line.contains(UInt8(ascii: "?")) || line.contains(UInt8(ascii: "&")))
        }

        /// `scheme://user:password@host`.
        static func mayHoldURLPassword(_ line: ArraySlice<UInt8>) -> Bool {
            line.contains(UInt8(ascii: "@")) && line.firstRange(of: "://".utf8) != nil
        }
    }

    /// False only when `text` cannot contain `needle`: an ASCII needle absent from the bytes
    /// (`memchr` for its first byte, then `memcmp`) is absent from the characters too.
    /// `String.contains` compares characters, grapheme by grapheme, hundreds of times slower.
    /// A non-ASCII needle is not decided here.
    static func mayContain(_ text: String, _ needle: String) -> Bool {
        guard needle.utf8.allSatisfy({ $0 < 0x80 }), !needle.isEmpty else { return true }
        var text = text
        var needle = needle
        return text.withUTF8 { haystack in
            needle.withUTF8 { needle in
                guard let base = haystack.baseAddress, let wanted = needle.baseAddress, let first = needle.first,
                    haystack.count >= needle.count
                else { return false }
                var offset = 0
                let last = haystack.count - needle.count
                while offset <= last {
                    guard let found = memchr(base + offset, Int32(first), last - offset + 1) else { return false }
                    let position = UnsafeRawPointer(base).distance(to: UnsafeRawPointer(found))
                    if memcmp(base + position, wanted, needle.count) == 0 { return true }
                    offset = position + 1
                }
                return false
            }
        }
    }

    // MARK: Keyword pass

    /// Replaces every match of `regex` with its first capture group + `[REDACTED]` + `suffix`.
    static func keepingGroup(_ regex: Regex<AnyRegexOutput>, in text: String, suffix: String = "") -> String {
        text.replacing(
            regex,
            with: { (match: Regex<AnyRegexOutput>.Match) -> String in
                String(match.output[1].substring ?? "") + redacted + suffix
            })
    }

    nonisolated(unsafe) static let keyword = try! Regex(
        #"(?i)(api[_-]?key|access[_-]?token|refresh[_-]?token|token|password|passwd|bearer|secret)"#)
    /// `"client_secret": "value"` → the key and opening quote are kept.
    nonisolated(unsafe) static let jsonSecret = try! Regex(
        #"(?i)("[A-Za-z0-9_-]*(?:api[_-]?key|access[_-]?token|refresh[_-]?token|token|password|secret)"\s*:\s*")[^"\n]+""#
    )
    /// `API_KEY=value`, `password: value`, `token is value` — a key at the start of a line or after
    /// whitespace or punctuation (not inside a path such as `/etc/password-policy`).
    nonisolated(unsafe) static let assignment = try! Regex(
        #"(?im)((?:^|[\s"'{(,;&?])[A-Za-z0-9_-]*(?:api[_-]?key|access[_-]?token|refresh[_-]?token|token|password|passwd|secret)\s*(?:[:=]\s*|\sis\s+))(?!\[REDACTED\])[^\s,;"'&]+"#
    )
    /// `api_key = "value"`, `password='value'`, `token: 'value'`, `apiKey: "value"` (TOML, YAML,
    /// shell, JavaScript): the key, the operator and the opening quote are kept.
    nonisolated(unsafe) static let quotedAssignment = try! Regex(
        #"(?im)((?:^|[\s"'{(,;&?])[A-Za-z0-9_-]*(?:api[_-]?key|access[_-]?token|refresh[_-]?token|token|password|passwd|secret)["']?\s*[:=]\s*["'])(?!\[REDACTED\])[^"'\n]+"#
    )
    /// `scheme://user:password@host`: the password goes.
    nonisolated(unsafe) static let urlPassword = try! Regex(
        #"(?i)(\b[a-z][a-z0-9+.-]*://[^\s/:@"']+:)(?!\[REDACTED\])[^\s/@"']+(?=@)@"#
    )
    nonisolated(unsafe) static let bearer = try! Regex(#"(?i)(\b(?:bearer|basic)\s+)(?!\[REDACTED\])[^\s,;"'&]+"#)
    nonisolated(unsafe) static let querySecret = try! Regex(
        #"(?i)([?&](?:api[_-]?key|apikey|access_token|token|password|key|secret|sig|signature|x-amz-signature)=)[^&\s"'#]+"#
    )

    // MARK: Entropy pass

    static func isTokenCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "+"), UInt8(ascii: "/"), UInt8(ascii: "_"), UInt8(ascii: "-"):
            true
        default: false
        }
    }

    static func redactHighEntropy(_ text: String) -> String {
        let bytes = Array(text.utf8)
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var index = 0
        var changed = false
        while index < bytes.count {
            guard isTokenCharacter(bytes[index]) else {
                output.append(bytes[index])
                index += 1
                continue
            }
            var end = index
            while end < bytes.count && isTokenCharacter(bytes[end]) { end += 1 }
            var padded = end
            while padded < bytes.count && padded - end < 2 && bytes[padded] == UInt8(ascii: "=") { padded += 1 }
            let token = bytes[index..<padded]
            if looksSecret(token, precededBy: index > 0 ? bytes[index - 1] : nil) {
                output.append(contentsOf: Array(redacted.utf8))
                changed = true
            } else {
                output.append(contentsOf: token)
            }
            index = padded
        }
        return changed ? String(decoding: output, as: UTF8.self) : text
    }

    static func looksSecret(_ token: ArraySlice<UInt8>, precededBy previous: UInt8?) -> Bool {
        guard (24...512).contains(token.count) else { return false }
        let core = token.prefix { $0 != UInt8(ascii: "=") }
        // Hex (commit ids, digests) is not a credential format we redact.
        if core.allSatisfy({ isHex($0) }) { return false }
        // Paths (`/a/b/c`) and note ids.
        if core.first == UInt8(ascii: "/") && core.filter({ $0 == UInt8(ascii: "/") }).count >= 3 { return false }
        if previous == UInt8(ascii: "/") || previous == UInt8(ascii: ".") { return false }
        let text = String(decoding: core, as: UTF8.self)
        if text.hasPrefix("note-") { return false }
        let hasLetter = core.contains {
            (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0)
        }
        let hasDigitOrSymbol = token.contains {
            !((UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0)
                || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0))
        }
        guard hasLetter && hasDigitOrSymbol else { return false }
        // Token characters are ASCII: a count per byte value below 128, on the stack.
        return withUnsafeTemporaryAllocation(of: Int.self, capacity: 128) { counts in
            counts.initialize(repeating: 0)
            for byte in core { counts[Int(byte & 0x7F)] += 1 }
            guard counts.lazy.filter({ $0 > 0 }).count >= 8 else { return false }
            let total = Double(core.count)
            let entropy = counts.reduce(0.0) { sum, count in
                guard count > 0 else { return sum }
                let p = Double(count) / total
                return sum - p * log2(p)
            }
            return entropy >= 3.8
        }
    }

    static func isHex(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
            || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(byte)
    }
}
