//! Builds the syntax tree of a keepalived.conf: statements with arguments and
//! optional `{ ... }` blocks.
//!
//! The text comes from [`preprocess`](super::preprocess) (includes inlined,
//! conditional lines resolved, definitions substituted, sequences
//! replicated) through the [`lexer`]. A statement is a keyword
//! followed by its arguments up to the end of the line, a `{` or a `}`. A
//! block's `{` may also start the next line. As in keepalived, an included
//! file's lines are read in place of the `include`, so a block may open in
//! one file and close in another.

use std::path::Path;
use std::sync::Arc;

use super::error::{ConfigError, Location, Warning};
use super::lexer::{self, Token, TokenKind};
pub use super::preprocess::MAX_INCLUDE_DEPTH;
use super::preprocess::{Home, Options, Preprocessor, Text};

/// One argument of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    /// The text, without quotes (backslash escapes kept as written).
    pub text: String,
    /// Whether it had quotes (`"..."` or `'...'`) in it.
    pub quoted: bool,
    /// Where it starts.
    pub loc: Location,
}

/// One statement: `keyword arg... [{ children }]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The keyword, as written.
    pub keyword: String,
    /// Where the keyword starts.
    pub loc: Location,
    /// The arguments on the same line.
    pub args: Vec<Arg>,
    /// The statements of the block, when the statement has one.
    pub block: Option<Vec<Node>>,
}

/// Reads files, follows includes and keeps the warnings met on the way.
#[derive(Debug, Default)]
pub struct Loader {
    /// How the language is read (config id, include checks).
    pub options: Options,
    /// Warnings met while reading.
    pub warnings: Vec<Warning>,
}

impl Loader {
    /// A loader with keepalived's default options.
    pub fn new() -> Self {
        Loader::default()
    }

    /// A loader with `options`.
    pub fn with_options(options: Options) -> Self {
        Loader { options, warnings: Vec::new() }
    }

    /// Reads, lexes and parses `path` (and whatever it includes).
    /// `from` is the include directive that named it, `None` for the root file.
    pub fn load_file(&mut self, path: &Path, from: Option<&Location>) -> Result<Vec<Node>, ConfigError> {
        self.load(|pre| pre.read_file(path, from))
    }

    /// Lexes and parses `text` as the contents of `file`. Relative includes
    /// resolve against the directory of `file`.
    pub fn load_str(&mut self, file: Arc<Path>, text: &str) -> Result<Vec<Node>, ConfigError> {
        self.load(|pre| pre.read_str(file, text))
    }

    fn load(&mut self, read: impl FnOnce(&mut Preprocessor<'_>) -> Result<(), ConfigError>) -> Result<Vec<Node>, ConfigError> {
        let mut tokens = Vec::new();
        let mut sink = |line: Text, _: &Home| lexer::lex_line(&line, &mut tokens);
        let mut pre = Preprocessor::new(self.options.clone(), &mut sink);
        let read = read(&mut pre);
        self.warnings.append(&mut pre.warnings);
        drop(pre);
        read?;
        let mut parser = Parser { tokens: &tokens, pos: 0 };
        parser.block(None)
    }
}

struct Parser<'a> {
    tokens: &'a [Token],
    pos: usize,
}

impl Parser<'_> {
    fn loc(&self, t: &Token) -> Location {
        t.loc.clone()
    }

    /// Parses statements until the `}` matching `open` (or the end of the
    /// file at top level, `open == None`).
    fn block(&mut self, open: Option<&Location>) -> Result<Vec<Node>, ConfigError> {
        let mut nodes: Vec<Node> = Vec::new();
        // Whether the last statement ended at a line end, so a `{` starting the
        // next line may still open its block.
        let mut last_open_to_block = false;
        while let Some(tok) = self.tokens.get(self.pos) {
            match tok.kind {
                TokenKind::Newline => {
                    self.pos += 1;
                }
                TokenKind::Close => {
                    self.pos += 1;
                    return match open {
                        Some(_) => Ok(nodes),
                        None => Err(ConfigError::invalid(&self.loc(tok), "unbalanced '}': no block is open here")),
                    };
                }
                TokenKind::Open => {
                    let at = self.loc(tok);
                    match nodes.last_mut() {
                        Some(last) if last_open_to_block && last.block.is_none() => {
                            self.pos += 1;
                            last.block = Some(self.block(Some(&at))?);
                            last_open_to_block = false;
                        }
                        _ => return Err(ConfigError::invalid(&at, "'{' without a keyword before it")),
                    }
                }
                TokenKind::Word | TokenKind::Quoted => {
                    let node = self.statement()?;
                    last_open_to_block = node.block.is_none();
                    nodes.push(node);
                }
            }
        }
        match open {
            None => Ok(nodes),
            Some(at) => Err(ConfigError::invalid(at, "unbalanced '{': this block is never closed")),
        }
    }

    fn statement(&mut self) -> Result<Node, ConfigError> {
        let first = &self.tokens[self.pos];
        let mut node = Node { keyword: first.text.clone(), loc: self.loc(first), args: Vec::new(), block: None };
        self.pos += 1;
        while let Some(tok) = self.tokens.get(self.pos) {
            match tok.kind {
                TokenKind::Word | TokenKind::Quoted => {
                    node.args.push(Arg { text: tok.text.clone(), quoted: tok.kind == TokenKind::Quoted, loc: self.loc(tok) });
                    self.pos += 1;
                }
                TokenKind::Open => {
                    let at = self.loc(tok);
                    self.pos += 1;
                    node.block = Some(self.block(Some(&at))?);
                    break;
                }
                TokenKind::Close | TokenKind::Newline => break,
            }
        }
        Ok(node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Result<Vec<Node>, ConfigError> {
        Loader::with_options(Options::with_config_id("t")).load_str(Arc::from(Path::new("t.conf")), src)
    }

    #[test]
    fn test_block_on_same_and_next_line() {
        let nodes = parse("a 1 {\n b 2\n}\nc\n{\n d\n}\n").expect("parses");
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[0].keyword, "a");
        assert_eq!(nodes[0].args[0].text, "1");
        let a = nodes[0].block.as_ref().expect("block");
        assert_eq!(a[0].keyword, "b");
        let c = nodes[1].block.as_ref().expect("block");
        assert_eq!(c[0].keyword, "d");
        assert_eq!((c[0].loc.line, c[0].loc.col), (6, 2));
    }

    #[test]
    fn test_one_line_block_and_glued_close() {
        let nodes = parse("v { 1.1.1.1 2.2.2.2}\nw 80{ x }").expect("parses");
        let v = nodes[0].block.as_ref().expect("block");
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].keyword, "1.1.1.1");
        assert_eq!(v[0].args[0].text, "2.2.2.2");
        assert_eq!(nodes[1].args[0].text, "80");
        assert_eq!(nodes[1].block.as_ref().expect("block")[0].keyword, "x");
    }

    #[test]
    fn test_unbalanced_braces() {
        let e = parse("a {\n b {\n }\n").expect_err("unclosed");
        assert_eq!(e.to_string(), "t.conf:1:3: unbalanced '{': this block is never closed");
        let e = parse("a\n}\n").expect_err("extra close");
        assert_eq!(e.to_string(), "t.conf:2:1: unbalanced '}': no block is open here");
        let e = parse("{\n").expect_err("open without keyword");
        assert_eq!(e.location().line, 1);
    }

    #[test]
    fn test_brace_on_next_line_needs_statement_ending_at_line_end() {
        // `a { }` already has its block; a second `{` is an error.
        assert!(parse("a { }\n{ }").is_err());
    }
}
