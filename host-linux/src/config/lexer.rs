//! Splits the logical lines that [`preprocess`](super::preprocess) produces
//! into words and braces.
//!
//! The rules are those keepalived applies to a line of a script keyword
//! (keepalived.conf(5), "Quoted strings"), for every keyword:
//! - blanks separate words (any Unicode space does; the preprocessor warns
//!   about the non-ASCII ones);
//! - `{` and `}` outside quotes are tokens of their own even when glued to a
//!   word (`80{`, `1.2.3.4}`), and end the statement before them;
//! - `"..."` and `'...'` quote: the quotes go, what is between them stays,
//!   blanks, braces and `#` included, and a quoted part may be glued to the
//!   rest of a word (`abc"d e"` is the one word `abcd e`); a `'` that no
//!   later `'` closes is an ordinary character (`it's`), an unclosed `"` is
//!   an error;
//! - `\` and the character after it are kept as written, inside quotes and
//!   out, and that character neither quotes nor separates (`\"`, `a\ b`): a
//!   script's command is split and its escapes decoded later, by
//!   [`split_command`](super::value::split_command), exactly once;
//! - comments are already gone (`\#` and `\!` were the characters `#` and `!`).
//!
//! Each token keeps the [`Location`] of its first character, which the
//! preprocessor traced through includes and substitutions.

use super::error::{ConfigError, Location};
use super::preprocess::{is_space, Text};

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A word without quotes: a keyword or a value.
    Word,
    /// A word that had quotes in it; the text has them removed.
    Quoted,
    /// `{`.
    Open,
    /// `}`.
    Close,
    /// The end of a line that held at least one token.
    Newline,
}

/// One token and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The kind of token.
    pub kind: TokenKind,
    /// The text (quotes removed, escapes kept; empty for newlines).
    pub text: String,
    /// Where its first character (the opening quote of a quoted word) was
    /// written.
    pub loc: Location,
}

/// Whether a `q` at `from` or later closes a quote (a `\` hides the
/// character after it).
fn closes(chars: &[char], from: usize, q: char) -> bool {
    let mut i = from;
    while i < chars.len() {
        if chars[i] == '\\' {
            i += 2;
        } else if chars[i] == q {
            return true;
        } else {
            i += 1;
        }
    }
    false
}

/// Appends the tokens of one logical line, and a [`TokenKind::Newline`]
/// when it had any, to `out`.
///
/// Fails only on a `"` that nothing closes.
pub fn lex_line(line: &Text, out: &mut Vec<Token>) -> Result<(), ConfigError> {
    let chars = &line.chars;
    let before = out.len();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if is_space(c) {
            i += 1;
            continue;
        }
        if c == '{' || c == '}' {
            let kind = if c == '{' { TokenKind::Open } else { TokenKind::Close };
            out.push(Token { kind, text: c.to_string(), loc: line.locs[i].clone() });
            i += 1;
            continue;
        }
        let start = i;
        let mut text = String::new();
        let mut quoted = false;
        while i < chars.len() {
            let c = chars[i];
            if is_space(c) || c == '{' || c == '}' {
                break;
            }
            if c == '\\' {
                text.push(c);
                if let Some(&n) = chars.get(i + 1) {
                    text.push(n);
                }
                i += 2;
                continue;
            }
            if c == '"' || (c == '\'' && closes(chars, i + 1, '\'')) {
                quoted = true;
                let open = i;
                i += 1;
                loop {
                    let Some(&q) = chars.get(i) else {
                        return Err(ConfigError::invalid(&line.locs[open], "unterminated quoted string"));
                    };
                    if q == '\\' {
                        text.push(q);
                        if let Some(&n) = chars.get(i + 1) {
                            text.push(n);
                        }
                        i += 2;
                        continue;
                    }
                    i += 1;
                    if q == c {
                        break;
                    }
                    text.push(q);
                }
                continue;
            }
            text.push(c);
            i += 1;
        }
        let kind = if quoted { TokenKind::Quoted } else { TokenKind::Word };
        out.push(Token { kind, text, loc: line.locs[start].clone() });
    }
    if out.len() > before {
        let loc = line.locs.last().cloned().unwrap_or_else(|| out[before].loc.clone());
        out.push(Token { kind: TokenKind::Newline, text: String::new(), loc });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::sync::Arc;

    fn line(s: &str) -> Text {
        let file: Arc<Path> = Arc::from(Path::new("t.conf"));
        Text {
            chars: s.chars().collect(),
            locs: (1..=s.chars().count()).map(|c| Location::new(file.clone(), 1, u32::try_from(c).unwrap_or(0))).collect(),
        }
    }

    fn lex(s: &str) -> Result<Vec<Token>, ConfigError> {
        let mut out = Vec::new();
        lex_line(&line(s), &mut out)?;
        Ok(out)
    }

    fn kinds_texts(s: &str) -> Vec<(TokenKind, String)> {
        lex(s).expect("lexes").into_iter().map(|t| (t.kind, t.text)).collect()
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
    fn test_quoted_word_keeps_hash_spaces_and_escapes() {
        let t = lex("notify \"/bin/x.sh a#b \\\"q\\\" {}\" root").expect("lexes");
        assert_eq!(t[1].kind, TokenKind::Quoted);
        assert_eq!(t[1].text, "/bin/x.sh a#b \\\"q\\\" {}");
        assert_eq!(t[1].loc.col, 8);
        assert_eq!(t[2].text, "root");
        assert_eq!(t.len(), 4);
    }

    #[test]
    fn test_single_quotes_and_glued_quotes() {
        assert_eq!(kinds_texts("a 'b c' d")[1], (TokenKind::Quoted, "b c".into()));
        assert_eq!(kinds_texts("abc\"d e\"f")[0], (TokenKind::Quoted, "abcd ef".into()));
        assert_eq!(kinds_texts("it's")[0], (TokenKind::Word, "it's".into()));
        assert_eq!(kinds_texts("\"\"")[0], (TokenKind::Quoted, String::new()));
        assert_eq!(kinds_texts("'a\"b'")[0], (TokenKind::Quoted, "a\"b".into()));
    }

    #[test]
    fn test_backslash_keeps_the_next_character() {
        assert_eq!(kinds_texts("a\\ b \\\"c")[..2], [(TokenKind::Word, "a\\ b".into()), (TokenKind::Word, "\\\"c".into())]);
    }

    #[test]
    fn test_unterminated_quote() {
        let e = lex("  script \"/bin/x").expect_err("must fail");
        assert_eq!((e.location().line, e.location().col), (1, 10));
    }

    #[test]
    fn test_nbsp_separates() {
        let t = kinds_texts("state\u{a0}MASTER");
        assert_eq!(t[0].1, "state");
        assert_eq!(t[1].1, "MASTER");
    }

    #[test]
    fn test_columns_count_characters() {
        let t = lex("中 x").expect("lexes");
        assert_eq!(t[1].loc.col, 3);
    }
}
