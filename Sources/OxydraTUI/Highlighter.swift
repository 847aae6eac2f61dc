/// A small syntax highlighter for fenced code blocks: keywords, strings, comments, numbers and
/// type names of common languages, one line at a time (a block comment or a triple-quoted string
/// carries over to the next line). Unknown languages are shown plain.
struct Highlighter: Sendable {
    struct Language: Sendable {
        var keywords: Set<String>
        var lineComments: [String] = []
        var blockComment: (open: String, close: String)?
        var quotes: Set<Character> = ["\"", "'"]
        var tripleQuotes = false
        /// Capitalised identifiers are types (most C-family languages, Swift, Rust, Python classes).
        var capitalizedTypes = true
        /// `$NAME` and `${NAME}` are variables (shells).
        var dollarVariables = false
        /// Lines starting with `+`, `-` or `@@` (a diff).
        var isDiff = false
    }

    /// What a line leaves open for the next one.
    enum Carry: Hashable, Sendable {
        case none
        case blockComment
        case tripleString(Character)
    }

    static let keyword = TextStyle(color: 35)
    static let string = TextStyle(color: 32)
    static let comment = TextStyle(italic: true, color: 90)
    static let number = TextStyle(color: 33)
    static let type = TextStyle(color: 36)
    static let variable = TextStyle(color: 36)

    let language: Language?
    var carry = Carry.none

    init(language name: String) { language = Self.language(named: name) }

    // swift-format-ignore
    static func language(named raw: String) -> Language? {
        let cFamily: Set<String> = [
            "if", "else", "for", "while", "do", "switch", "case", "default", "break", "continue", "return", "goto",
            "struct", "union", "enum", "typedef", "static", "const", "void", "int", "char", "float", "double", "long",
            "short", "unsigned", "signed", "sizeof", "include", "define", "class", "public", "private", "protected",
            "new", "delete", "this", "namespace", "template", "typename", "virtual", "override", "true", "false",
            "nullptr", "NULL", "null", "try", "catch", "throw", "throws", "final", "extends", "implements", "import",
            "package", "interface", "boolean", "auto", "bool", "using", "fun", "val", "var", "object", "when", "is",
            "in", "string", "async", "await", "let",
        ]
        switch raw.lowercased() {
        case "swift":
            return Language(keywords: [
                "func", "let", "var", "if", "else", "guard", "return", "for", "in", "while", "repeat", "switch", "case",
                "default", "break", "continue", "struct", "class", "enum", "protocol", "extension", "import", "public",
                "private", "fileprivate", "internal", "static", "final", "init", "deinit", "self", "Self", "throws",
                "throw", "try", "catch", "do", "async", "await", "actor", "some", "any", "where", "true", "false", "nil",
                "inout", "mutating", "typealias", "associatedtype", "defer", "is", "as", "override", "lazy", "weak",
                "nonisolated", "sending", "consuming", "borrowing",
            ], lineComments: ["//"], blockComment: ("/*", "*/"), quotes: ["\""], tripleQuotes: true)
        case "python", "py", "python3":
            return Language(keywords: [
                "def", "class", "return", "if", "elif", "else", "for", "while", "in", "not", "and", "or", "is", "import",
                "from", "as", "with", "try", "except", "finally", "raise", "pass", "break", "continue", "lambda", "yield",
                "global", "nonlocal", "assert", "del", "True", "False", "None", "async", "await", "match", "case", "self",
            ], lineComments: ["#"], tripleQuotes: true)
        case "javascript", "js", "typescript", "ts", "jsx", "tsx", "mjs":
            return Language(keywords: [
                "function", "const", "let", "var", "if", "else", "for", "while", "do", "return", "switch", "case",
                "default", "break", "continue", "class", "extends", "new", "this", "super", "import", "export", "from",
                "as", "async", "await", "try", "catch", "finally", "throw", "typeof", "instanceof", "in", "of", "true",
                "false", "null", "undefined", "interface", "type", "enum", "implements", "public", "private",
                "readonly", "static", "yield", "void", "delete",
            ], lineComments: ["//"], blockComment: ("/*", "*/"), quotes: ["\"", "'", "`"])
        case "rust", "rs":
            return Language(keywords: [
                "fn", "let", "mut", "if", "else", "match", "for", "in", "while", "loop", "return", "break", "continue",
                "struct", "enum", "impl", "trait", "pub", "use", "mod", "crate", "self", "Self", "super", "const",
                "static", "as", "where", "async", "await", "move", "ref", "dyn", "unsafe", "type", "true", "false",
                "Some", "None", "Ok", "Err",
            ], lineComments: ["//"], blockComment: ("/*", "*/"), quotes: ["\""])
        case "go", "golang":
            return Language(keywords: [
                "func", "var", "const", "type", "struct", "interface", "map", "chan", "if", "else", "for", "range",
                "switch", "case", "default", "break", "continue", "return", "go", "defer", "select", "package", "import",
                "true", "false", "nil", "fallthrough", "goto",
            ], lineComments: ["//"], blockComment: ("/*", "*/"), quotes: ["\"", "'", "`"], capitalizedTypes: false)
        case "c", "h", "cpp", "c++", "cc", "hpp", "java", "kotlin", "kt", "cs", "csharp", "c#", "objc", "scala", "dart":
            return Language(keywords: cFamily, lineComments: ["//"], blockComment: ("/*", "*/"))
        case "sh", "bash", "shell", "zsh", "console", "shellsession", "fish":
            return Language(keywords: [
                "if", "then", "else", "elif", "fi", "for", "in", "do", "done", "while", "until", "case", "esac",
                "function", "return", "export", "local", "readonly", "set", "unset", "exit", "source", "echo", "cd",
                "sudo",
            ], lineComments: ["#"], capitalizedTypes: false, dollarVariables: true)
        case "json", "jsonc", "json5":
            return Language(
                keywords: ["true", "false", "null"], lineComments: ["//"], quotes: ["\""], capitalizedTypes: false)
        case "toml", "ini", "cfg", "conf":
            return Language(keywords: ["true", "false"], lineComments: ["#", ";"], capitalizedTypes: false)
        case "yaml", "yml":
            return Language(
                keywords: ["true", "false", "null", "yes", "no", "on", "off"], lineComments: ["#"],
                capitalizedTypes: false)
        case "sql", "postgresql", "sqlite", "mysql":
            let words = [
                "select", "from", "where", "insert", "into", "values", "update", "set", "delete", "create", "table",
                "index", "drop", "alter", "join", "left", "right", "inner", "outer", "on", "group", "by", "order",
                "limit", "offset", "and", "or", "not", "null", "primary", "key", "references", "as", "distinct",
                "having", "union", "all", "begin", "commit", "rollback", "with", "returning", "integer", "text",
                "real", "blob", "is", "in", "exists", "case", "when", "then", "else", "end",
            ]
            return Language(
                keywords: Set(words + words.map { $0.uppercased() }), lineComments: ["--"],
                blockComment: ("/*", "*/"), quotes: ["'", "\""], capitalizedTypes: false)
        case "ruby", "rb":
            return Language(keywords: [
                "def", "end", "class", "module", "if", "elsif", "else", "unless", "while", "until", "for", "in", "do",
                "return", "yield", "begin", "rescue", "ensure", "raise", "require", "self", "nil", "true", "false",
                "and", "or", "not", "then", "case", "when", "attr_accessor", "lambda",
            ], lineComments: ["#"])
        case "diff", "patch":
            return Language(keywords: [], capitalizedTypes: false, isDiff: true)
        default:
            return nil
        }
    }

    /// The line's spans, carrying open comments and strings to the next line.
    mutating func highlight(_ line: String) -> [Span] {
        guard let language else { return [Span(line)] }
        if language.isDiff {
            if line.hasPrefix("+") { return [Span(line, TextStyle(color: 32))] }
            if line.hasPrefix("-") { return [Span(line, TextStyle(color: 31))] }
            if line.hasPrefix("@@") { return [Span(line, TextStyle(color: 36))] }
            return [Span(line)]
        }
        let characters = Array(line)
        var out: [Span] = []
        func emit(_ text: some StringProtocol, _ style: TextStyle) { out.append(text, style) }
        func matches(_ token: String, at index: Int) -> Bool {
            var position = index
            for character in token {
                guard position < characters.count, characters[position] == character else { return false }
                position += 1
            }
            return true
        }
        func find(_ token: String, from index: Int) -> Int? {
            var position = index
            while position < characters.count {
                if characters[position] == "\\" {
                    position += 2
                    continue
                }
                if matches(token, at: position) { return position }
                position += 1
            }
            return nil
        }
        var index = 0
        switch carry {
        case .none: break
        case .blockComment:
            let close = language.blockComment?.close ?? "*/"
            if let end = find(close, from: 0) {
                index = end + close.count
                carry = .none
            } else {
                index = characters.count
            }
            emit(String(characters[0..<index]), Self.comment)
        case .tripleString(let quote):
            let close = String(repeating: quote, count: 3)
            if let end = find(close, from: 0) {
                index = end + 3
                carry = .none
            } else {
                index = characters.count
            }
            emit(String(characters[0..<index]), Self.string)
        }
        func isWord(_ character: Character) -> Bool { character.isLetter || character.isNumber || character == "_" }
        while index < characters.count {
            let character = characters[index]
            if let comment = language.lineComments.first(where: { matches($0, at: index) }),
                comment != "#" || !language.dollarVariables || index == 0 || characters[index - 1].isWhitespace
            {
                emit(String(characters[index...]), Self.comment)
                return out
            }
            if let block = language.blockComment, matches(block.open, at: index) {
                if let end = find(block.close, from: index + block.open.count) {
                    emit(String(characters[index..<(end + block.close.count)]), Self.comment)
                    index = end + block.close.count
                } else {
                    emit(String(characters[index...]), Self.comment)
                    carry = .blockComment
                    return out
                }
                continue
            }
            if language.quotes.contains(character) {
                let triple = String(repeating: character, count: 3)
                if language.tripleQuotes, matches(triple, at: index) {
                    if let end = find(triple, from: index + 3) {
                        emit(String(characters[index..<(end + 3)]), Self.string)
                        index = end + 3
                    } else {
                        emit(String(characters[index...]), Self.string)
                        carry = .tripleString(character)
                        return out
                    }
                    continue
                }
                let end = find(String(character), from: index + 1).map { $0 + 1 } ?? characters.count
                emit(String(characters[index..<end]), Self.string)
                index = end
                continue
            }
            if language.dollarVariables, character == "$", index + 1 < characters.count {
                var end = index + 1
                if characters[end] == "{" {
                    end = (characters[end...].firstIndex(of: "}") ?? characters.count - 1) + 1
                } else {
                    while end < characters.count, isWord(characters[end]) { end += 1 }
                }
                emit(String(characters[index..<max(end, index + 1)]), Self.variable)
                index = max(end, index + 1)
                continue
            }
            if character.isNumber, index == 0 || !isWord(characters[index - 1]) {
                var end = index
                while end < characters.count, isWord(characters[end]) || characters[end] == "." { end += 1 }
                emit(String(characters[index..<end]), Self.number)
                index = end
                continue
            }
            if character.isLetter || character == "_" {
                var end = index
                while end < characters.count, isWord(characters[end]) { end += 1 }
                let word = String(characters[index..<end])
                if language.keywords.contains(word) {
                    emit(word, Self.keyword)
                } else if language.capitalizedTypes, character.isUppercase {
                    emit(word, Self.type)
                } else {
                    emit(word, .plain)
                }
                index = end
                continue
            }
            emit(String(character), .plain)
            index += 1
        }
        return out
    }
}
