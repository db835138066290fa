//! Builds the syntax tree of a keepalived.conf: statements with arguments and
//! optional `{ ... }` blocks, with `include` directives expanded in place.
//!
//! A statement is a keyword followed by its arguments up to the end of the
//! line, a `{` or a `}`. A block's `{` may also start the next line. An
//! included file must be balanced on its own; its statements are spliced
//! where the `include` stood, at the same nesting level.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::{ConfigError, Location, Warning};
use super::lexer::{self, Token, TokenKind};

/// How deep `include` may nest before the loader gives up.
pub const MAX_INCLUDE_DEPTH: usize = 32;

/// One argument of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    /// The text, without quotes.
    pub text: String,
    /// Whether it was written as a double-quoted string.
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
    /// Canonical paths of the files being read, outermost first.
    stack: Vec<PathBuf>,
    /// Warnings met while reading.
    pub warnings: Vec<Warning>,
}

impl Loader {
    /// A loader with no files open.
    pub fn new() -> Self {
        Loader::default()
    }

    /// Reads, lexes and parses `path` (and whatever it includes).
    /// `from` is the include directive that named it, `None` for the root file.
    pub fn load_file(&mut self, path: &Path, from: Option<&Location>) -> Result<Vec<Node>, ConfigError> {
        let file: Arc<Path> = Arc::from(path);
        let at = from.cloned().unwrap_or_else(|| Location::file(file.clone()));
        if self.stack.len() >= MAX_INCLUDE_DEPTH {
            return Err(ConfigError::IncludeDepth { at, limit: MAX_INCLUDE_DEPTH });
        }
        let io_err = |source| ConfigError::Io { at: at.clone(), path: path.to_path_buf(), source };
        let canonical = std::fs::canonicalize(path).map_err(io_err)?;
        if let Some(pos) = self.stack.iter().position(|p| *p == canonical) {
            let mut chain: Vec<String> = self.stack[pos..].iter().map(|p| p.display().to_string()).collect();
            chain.push(canonical.display().to_string());
            return Err(ConfigError::IncludeCycle { at, chain: chain.join(" -> ") });
        }
        let bytes = std::fs::read(path).map_err(io_err)?;
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                self.warnings.push(Warning {
                    location: Location::file(file.clone()),
                    message: "file is not valid UTF-8; invalid bytes were replaced".into(),
                });
                String::from_utf8_lossy(e.as_bytes()).into_owned()
            }
        };
        self.stack.push(canonical);
        let result = self.load_str(file, &text);
        self.stack.pop();
        result
    }

    /// Lexes and parses `text` as the contents of `file`. Relative includes
    /// resolve against the directory of `file`.
    pub fn load_str(&mut self, file: Arc<Path>, text: &str) -> Result<Vec<Node>, ConfigError> {
        let lexed = lexer::lex(text).map_err(|e| {
            ConfigError::Invalid { at: Location::new(file.clone(), e.line, e.col), message: e.message }
        })?;
        if let Some(first) = lexed.odd_spaces.first() {
            let mut lines: Vec<u32> = lexed.odd_spaces.iter().map(|s| s.line).collect();
            lines.dedup();
            let name = if first.ch == '\u{a0}' { "non-breaking space (U+00A0)".to_string() } else { format!("non-ASCII space (U+{:04X})", first.ch as u32) };
            self.warnings.push(Warning {
                location: Location::new(file.clone(), first.line, first.col),
                message: format!(
                    "{name} treated as a plain space on {} line(s) of this file, first here (text copied from a web page?)",
                    lines.len()
                ),
            });
        }
        let mut parser = Parser { tokens: &lexed.tokens, pos: 0, file, loader: self };
        parser.block(None)
    }
}

struct Parser<'a> {
    tokens: &'a [Token],
    pos: usize,
    file: Arc<Path>,
    loader: &'a mut Loader,
}

fn is_include(keyword: &str) -> bool {
    matches!(keyword, "include" | "includer" | "includem" | "includew" | "includeb" | "includea")
}

impl Parser<'_> {
    fn loc(&self, t: &Token) -> Location {
        Location::new(self.file.clone(), t.line, t.col)
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
                    let node = self.statement(open)?;
                    if is_include(&node.keyword) && !node.args.is_empty() && node.block.is_none() {
                        let included = self.include(&node)?;
                        nodes.extend(included);
                        last_open_to_block = false;
                    } else {
                        last_open_to_block = node.block.is_none();
                        nodes.push(node);
                    }
                }
            }
        }
        match open {
            None => Ok(nodes),
            Some(at) => Err(ConfigError::invalid(at, "unbalanced '{': this block is never closed")),
        }
    }

    fn statement(&mut self, _open: Option<&Location>) -> Result<Node, ConfigError> {
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

    fn include(&mut self, node: &Node) -> Result<Vec<Node>, ConfigError> {
        let pattern = node.args.iter().map(|a| a.text.as_str()).collect::<Vec<_>>().join(" ");
        let base = self.file.parent().map(Path::to_path_buf).unwrap_or_default();
        let target = if Path::new(&pattern).is_absolute() { PathBuf::from(&pattern) } else { base.join(&pattern) };
        let at = node.args.first().map(|a| a.loc.clone()).unwrap_or_else(|| node.loc.clone());
        if !has_glob_meta(&pattern) {
            if !target.exists() {
                return Err(ConfigError::Io {
                    at,
                    path: target,
                    source: std::io::Error::new(std::io::ErrorKind::NotFound, "included file not found"),
                });
            }
            return self.loader.load_file(&target, Some(&at));
        }
        let matches = expand_glob(&target);
        if matches.is_empty() {
            self.loader.warnings.push(Warning {
                location: at,
                message: format!("include pattern '{}' matched no files", target.display()),
            });
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for path in matches {
            out.extend(self.loader.load_file(&path, Some(&at))?);
        }
        Ok(out)
    }
}

fn has_glob_meta(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Expands a path whose components may hold `*`, `?` and `[...]` patterns,
/// into the matching existing paths, sorted. Hidden files match only when the
/// pattern component itself starts with a dot, as with the shell.
pub fn expand_glob(pattern: &Path) -> Vec<PathBuf> {
    let mut current: Vec<PathBuf> = vec![PathBuf::new()];
    for comp in pattern.components() {
        let text = comp.as_os_str().to_string_lossy();
        let mut next = Vec::new();
        if !has_glob_meta(&text) {
            for p in &current {
                next.push(p.join(comp.as_os_str()));
            }
        } else {
            let pat: Vec<char> = text.chars().collect();
            for dir in &current {
                let read_from = if dir.as_os_str().is_empty() { Path::new(".") } else { dir.as_path() };
                let Ok(entries) = std::fs::read_dir(read_from) else { continue };
                let mut names: Vec<String> =
                    entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
                names.sort();
                for name in names {
                    if name.starts_with('.') && !text.starts_with('.') {
                        continue;
                    }
                    let chars: Vec<char> = name.chars().collect();
                    if glob_match(&pat, &chars) {
                        next.push(dir.join(&name));
                    }
                }
            }
        }
        current = next;
    }
    current.retain(|p| p.is_file());
    current.sort();
    current
}

/// Matches one path component against a shell pattern (`*`, `?`, `[abc]`,
/// `[a-z]`, `[!x]`).
fn glob_match(pat: &[char], name: &[char]) -> bool {
    match pat.first() {
        None => name.is_empty(),
        Some('*') => (0..=name.len()).any(|i| glob_match(&pat[1..], &name[i..])),
        Some('?') => !name.is_empty() && glob_match(&pat[1..], &name[1..]),
        Some('[') => {
            let Some(&c) = name.first() else { return false };
            let mut i = 1;
            let negate = matches!(pat.get(1), Some('!') | Some('^'));
            if negate {
                i += 1;
            }
            let mut matched = false;
            let mut first = true;
            while i < pat.len() && (first || pat[i] != ']') {
                first = false;
                if i + 2 < pat.len() && pat[i + 1] == '-' && pat[i + 2] != ']' {
                    if pat[i] <= c && c <= pat[i + 2] {
                        matched = true;
                    }
                    i += 3;
                } else {
                    if pat[i] == c {
                        matched = true;
                    }
                    i += 1;
                }
            }
            if i >= pat.len() {
                // No closing bracket: treat '[' literally.
                return c == '[' && glob_match(&pat[1..], &name[1..]);
            }
            matched != negate && glob_match(&pat[i + 1..], &name[1..])
        }
        Some(&p) => name.first() == Some(&p) && glob_match(&pat[1..], &name[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Result<Vec<Node>, ConfigError> {
        Loader::new().load_str(Arc::from(Path::new("t.conf")), src)
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

    #[test]
    fn test_glob_match() {
        let m = |p: &str, n: &str| glob_match(&p.chars().collect::<Vec<_>>(), &n.chars().collect::<Vec<_>>());
        assert!(m("*.conf", "a.conf"));
        assert!(!m("*.conf", "a.conf~"));
        assert!(m("vi_?.conf", "vi_1.conf"));
        assert!(m("[a-c]x", "bx"));
        assert!(!m("[!a-c]x", "bx"));
        assert!(m("*", ""));
    }
}
