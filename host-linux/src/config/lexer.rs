//! Splits keepalived.conf text into tokens.
//!
//! The rules, from keepalived.conf(5) and from configs seen in the wild:
//! - `#` and `!` start a comment that runs to the end of the line, anywhere
//!   outside a double-quoted string;
//! - `{` and `}` are tokens of their own even when glued to a word (`80{`,
//!   `1.2.3.4}`);
//! - a double-quoted string is one token; `\"` and `\\` escape inside it;
//! - any Unicode whitespace separates tokens. Non-ASCII whitespace (U+00A0
//!   from web pages, U+3000, a BOM) is recorded so the loader can warn.
//! - line ends matter to the parser (a statement ends at the end of its line),
//!   so the lexer emits [`TokenKind::Newline`].

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A bare word: a keyword or a value.
    Word,
    /// A double-quoted string; the token text has the quotes removed.
    Quoted,
    /// `{`.
    Open,
    /// `}`.
    Close,
    /// The end of a line that held at least one token.
    Newline,
}

/// One token with its 1-based position (columns count characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The kind of token.
    pub kind: TokenKind,
    /// The text (unquoted for [`TokenKind::Quoted`]; empty for newlines).
    pub text: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column of the first character (the opening quote for quoted strings).
    pub col: u32,
}

/// A non-ASCII whitespace character that was treated as a space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OddSpace {
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub col: u32,
    /// The character.
    pub ch: char,
}

/// The result of lexing one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lexed {
    /// The tokens, in order.
    pub tokens: Vec<Token>,
    /// Every non-ASCII whitespace character met outside quotes.
    pub odd_spaces: Vec<OddSpace>,
}

/// A lexing error: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexError {
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub col: u32,
    /// What went wrong.
    pub message: String,
}

fn is_space(c: char) -> bool {
    c.is_whitespace() || c == '\u{feff}' || c == '\u{200b}'
}

fn ends_word(c: char) -> bool {
    is_space(c) || matches!(c, '{' | '}' | '"' | '#' | '!')
}

/// Lexes a whole file.
///
/// Fails only on an unterminated quoted string.
pub fn lex(src: &str) -> Result<Lexed, LexError> {
    let mut out = Lexed::default();
    for (idx, raw_line) in src.lines().enumerate() {
        let line = u32::try_from(idx + 1).unwrap_or(u32::MAX);
        let chars: Vec<char> = raw_line.chars().collect();
        let before = out.tokens.len();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let col = u32::try_from(i + 1).unwrap_or(u32::MAX);
            if is_space(c) {
                if !c.is_ascii() {
                    out.odd_spaces.push(OddSpace { line, col, ch: c });
                }
                i += 1;
            } else if c == '#' || c == '!' {
                break;
            } else if c == '{' || c == '}' {
                let kind = if c == '{' { TokenKind::Open } else { TokenKind::Close };
                out.tokens.push(Token { kind, text: c.to_string(), line, col });
                i += 1;
            } else if c == '"' {
                let mut text = String::new();
                let mut j = i + 1;
                let mut closed = false;
                while j < chars.len() {
                    match chars[j] {
                        '"' => {
                            closed = true;
                            break;
                        }
                        '\\' if j + 1 < chars.len() && matches!(chars[j + 1], '"' | '\\') => {
                            text.push(chars[j + 1]);
                            j += 2;
                        }
                        other => {
                            text.push(other);
                            j += 1;
                        }
                    }
                }
                if !closed {
                    return Err(LexError { line, col, message: "unterminated quoted string".into() });
                }
                out.tokens.push(Token { kind: TokenKind::Quoted, text, line, col });
                i = j + 1;
            } else {
                let start = i;
                while i < chars.len() && !ends_word(chars[i]) {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                out.tokens.push(Token { kind: TokenKind::Word, text, line, col });
            }
        }
        if out.tokens.len() > before {
            out.tokens.push(Token { kind: TokenKind::Newline, text: String::new(), line, col: 0 });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds_texts(src: &str) -> Vec<(TokenKind, String)> {
        lex(src).expect("lexes").tokens.into_iter().map(|t| (t.kind, t.text)).collect()
    }

    #[test]
    fn test_comments_after_values() {
        let toks = kinds_texts("priority 100 #BACKUP上改成90\n! whole line\nstate MASTER ! bang");
        let words: Vec<&str> = toks
            .iter()
            .filter(|(k, _)| *k == TokenKind::Word)
            .map(|(_, t)| t.as_str())
            .collect();
        assert_eq!(words, ["priority", "100", "state", "MASTER"]);
        assert_eq!(toks.iter().filter(|(k, _)| *k == TokenKind::Newline).count(), 2);
    }

    #[test]
    fn test_glued_braces() {
        let toks = kinds_texts("virtual_server 1.2.3.4 80{ x}");
        assert_eq!(
            toks,
            vec![
                (TokenKind::Word, "virtual_server".into()),
                (TokenKind::Word, "1.2.3.4".into()),
                (TokenKind::Word, "80".into()),
                (TokenKind::Open, "{".into()),
                (TokenKind::Word, "x".into()),
                (TokenKind::Close, "}".into()),
                (TokenKind::Newline, String::new()),
            ]
        );
    }

    #[test]
    fn test_quoted_string_keeps_hash_and_spaces() {
        let l = lex("notify \"/bin/x.sh a#b \\\"q\\\"\" # c").expect("lexes");
        assert_eq!(l.tokens[1].kind, TokenKind::Quoted);
        assert_eq!(l.tokens[1].text, "/bin/x.sh a#b \"q\"");
        assert_eq!(l.tokens[1].col, 8);
        assert_eq!(l.tokens.len(), 3);
    }

    #[test]
    fn test_unterminated_quote() {
        let e = lex("a\n  script \"/bin/x").expect_err("must fail");
        assert_eq!((e.line, e.col), (2, 10));
    }

    #[test]
    fn test_nbsp_is_whitespace_and_recorded() {
        let l = lex("\u{a0}\u{a0} state\u{a0}MASTER\r\n").expect("lexes");
        assert_eq!(l.tokens[0].text, "state");
        assert_eq!(l.tokens[0].col, 4);
        assert_eq!(l.tokens[1].text, "MASTER");
        assert_eq!(l.odd_spaces.len(), 3);
        assert_eq!((l.odd_spaces[0].line, l.odd_spaces[0].col), (1, 1));
    }

    #[test]
    fn test_columns_count_characters() {
        let l = lex("# 中文\n中 x").expect("lexes");
        assert_eq!(l.tokens[1].text, "x");
        assert_eq!((l.tokens[1].line, l.tokens[1].col), (2, 3));
    }
}
