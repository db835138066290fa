//! The line layer of keepalived.conf, which runs before words and blocks:
//! comments, `include`, `@id` conditional lines, `$NAME=` definitions and
//! their substitution, and `~SEQ` / `~LST` replication, as keepalived.conf(5)
//! describes them ("ADVANCED CONFIGURATION") for keepalived 2.3.
//!
//! Each physical line is read the way keepalived reads it:
//! 1. comments (`#`, `!`) are cut outside double quotes, `\#` and `\!` keep
//!    the character, leading and trailing blanks go;
//! 2. a line `@ID rest` keeps `rest` when `ID` is the config id, `@^ID rest`
//!    when it is not; otherwise the line is dropped (only that line: a block
//!    that it opens is not skipped, see [`Preprocessor`]);
//! 3. `$NAME=value` defines `NAME` (a value ending in `\` continues on the
//!    next lines, up to a line without `\` or an empty or comment line);
//! 4. `~SEQ(var, start, step, end)`, `~SEQx(...)` and `~LST(var, a, b, ...)`
//!    run the rest of the line once per value, with `$var` defined;
//! 5. `$NAME` (before a blank, `,`, `)` or the line end) and `${NAME}` are
//!    replaced by the value of `NAME`, again and again while the result
//!    holds a `$`, and steps 2 to 5 run again on the result; a multi-line
//!    value must end its line, and its further lines follow as lines of
//!    their own;
//! 6. a line `include PATTERN` (or `includer`, `includem`, `includew`,
//!    `includeb`, `includea`) is replaced by the lines of the files that
//!    match, and `include_check` sets what an include must find.
//!
//! Every character of the result keeps the [`Location`] where it was
//! written; characters of a definition's value say where `$NAME` was
//! substituted ([`Via::Definition`]), and replicated lines which round they
//! are ([`Via::Sequence`]).
//!
//! # Where hav differs from keepalived, on purpose
//!
//! Errors where keepalived reads on and its own errors follow (or, worse,
//! none do):
//! - an undefined `${NAME}` outside double quotes: keepalived leaves it in
//!   place and then reads its braces as a block; `$NAME` without braces is
//!   left in place as keepalived leaves it (scripts use `$1`, `$HOME`);
//! - `${NAME params}` for a definition that takes none, and `$NAME(a,b)=`:
//!   keepalived has no parameterised definitions of its own (only `_RANDOM`
//!   and `_ENV` take parameters);
//! - a line kept inside a block whose conditional opening line was dropped:
//!   keepalived drops that one line and reads the block's contents at the
//!   outer level;
//! - include loops (keepalived opens files until it runs out), definitions
//!   that use themselves (keepalived loops), more than [`MAX_ROUNDS`] values
//!   in one `~SEQ`, more than [`MAX_LINES`] lines in all;
//! - a `~SEQ` number that is empty (`~SEQ(N,,3)`, keepalived reads 0) and a
//!   `~SEQ`/`~LST` variable that no reference could name (`1N`).
//!
//! Readings keepalived does not have:
//! - quotes around a whole include pattern are removed, with a warning
//!   (keepalived looks for a file name with quotes in it);
//! - `include_check` is taken wherever it stands (keepalived: in
//!   `global_defs`) and is not passed on to the sections;
//! - the files that a `~SEQ` of includes names are read in order (keepalived
//!   opens them all first and reads the last one first), as are the lines of a
//!   multi-line value that includes a file (keepalived reads the rest of the
//!   value first);
//! - a multi-line definition ends at the end of its file;
//! - lines may be longer than keepalived's 1024 bytes;
//! - after a `{` or `}` in mid-line, the rest of the line is not a new line:
//!   `@ID`, `$NAME=` and `~SEQ` count only at the start of a line (keepalived
//!   splits the line at the brace and reads the rest as a line of its own);
//! - the blanks are those of Unicode, not only space and tab (with a warning
//!   for the others; web pages bring U+00A0).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::{ConfigError, Location, Via, Warning};
use super::glob;

/// How deep `include` may nest before the loader gives up.
pub const MAX_INCLUDE_DEPTH: usize = 32;

/// The most values one `~SEQ` or `~LST` may produce.
pub const MAX_ROUNDS: u64 = 1 << 20;

/// The most logical lines a configuration may expand to.
pub const MAX_LINES: u64 = 1 << 24;

/// How deep definitions and sequences may nest in one another.
const MAX_NESTING: usize = 64;

/// The most substitutions in one line, and its longest expansion: beyond
/// them a definition is taken to use itself.
const MAX_SUBSTITUTIONS: usize = 10_000;
const MAX_LINE_CHARS: usize = 1 << 20;

/// What an `include` must find for the configuration to be valid
/// (keepalived's `include_check` and the `include` variants); a check that
/// is not asked for makes the same finding a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct IncludeCheck(u8);

impl IncludeCheck {
    /// Nothing is checked (plain `include`).
    pub const NONE: IncludeCheck = IncludeCheck(0);
    /// Every match must be a readable regular file that is not executable.
    pub const READABLE: IncludeCheck = IncludeCheck(1);
    /// A pattern without wildcards must name an existing file.
    pub const MATCH: IncludeCheck = IncludeCheck(2);
    /// A pattern with wildcards must match at least one file.
    pub const WILDCARD_MATCH: IncludeCheck = IncludeCheck(4);
    /// Every alternative of a `{a,b}` pattern must name an existing file.
    pub const BRACE_MATCH: IncludeCheck = IncludeCheck(8);
    /// All of them (`includea`, `include_check` without options, `-e`).
    pub const ALL: IncludeCheck = IncludeCheck(15);

    /// Whether every check of `other` is in `self`.
    pub fn contains(self, other: IncludeCheck) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    /// The checks of both.
    #[must_use]
    pub fn with(self, other: IncludeCheck) -> IncludeCheck {
        IncludeCheck(self.0 | other.0)
    }

    /// The checks of `self` without those of `other`.
    #[must_use]
    pub fn without(self, other: IncludeCheck) -> IncludeCheck {
        IncludeCheck(self.0 & !other.0)
    }
}

/// How the configuration language is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// What `@ID` lines are compared with, and the value of `${_INSTANCE}`
    /// (keepalived's `-i` / `--config-id`).
    pub config_id: String,
    /// The include checks in force at the start of the root file
    /// (keepalived's `-e` / `--all-config` sets [`IncludeCheck::ALL`]).
    pub include_check: IncludeCheck,
}

impl Default for Options {
    /// keepalived's defaults: the config id is the host name up to its first
    /// dot, and nothing is checked.
    fn default() -> Self {
        Options { config_id: default_config_id(), include_check: IncludeCheck::NONE }
    }
}

impl Options {
    /// The defaults with `config_id`.
    pub fn with_config_id(config_id: impl Into<String>) -> Self {
        Options { config_id: config_id.into(), include_check: IncludeCheck::NONE }
    }
}

/// keepalived's default config id: the node name (uname(2)) up to its first dot.
pub fn default_config_id() -> String {
    let name = nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default();
    name.split('.').next().unwrap_or_default().to_string()
}

/// Blanks: ASCII space and tab, and also the other Unicode spaces (U+00A0
/// from web pages, U+3000, a BOM), which hav reads as a space and warns
/// about.
pub(crate) fn is_space(c: char) -> bool {
    c.is_whitespace() || c == '\u{feff}' || c == '\u{200b}'
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// A line of text with the location of each character.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Text {
    /// The characters.
    pub chars: Vec<char>,
    /// Where each character was written (same length as `chars`).
    pub locs: Vec<Location>,
}

impl Text {
    fn physical(raw: &str, file: &Arc<Path>, line: u32, via: &Option<Arc<Via>>) -> Text {
        let chars: Vec<char> = raw.chars().collect();
        let locs = (0..chars.len())
            .map(|i| Location::new(file.clone(), line, u32::try_from(i + 1).unwrap_or(u32::MAX)).with_via(via.clone()))
            .collect();
        Text { chars, locs }
    }

    /// Text whose every character is at `at` (a value that was not written
    /// anywhere: a sequence value, `${_PWD}`...).
    fn anchored(s: &str, at: &Location) -> Text {
        let chars: Vec<char> = s.chars().collect();
        let locs = vec![at.clone(); chars.len()];
        Text { chars, locs }
    }

    /// Whether the line has no characters.
    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    fn len(&self) -> usize {
        self.chars.len()
    }

    fn starts_with(&self, s: &str) -> bool {
        s.chars().enumerate().all(|(i, c)| self.chars.get(i) == Some(&c))
    }

    fn find(&self, c: char, from: usize) -> Option<usize> {
        self.chars.iter().skip(from).position(|&x| x == c).map(|p| p + from)
    }

    fn slice(&self, from: usize, to: usize) -> Text {
        Text { chars: self.chars[from..to].to_vec(), locs: self.locs[from..to].to_vec() }
    }

    fn string(&self, from: usize, to: usize) -> String {
        self.chars[from..to].iter().collect()
    }

    fn splice(&mut self, from: usize, to: usize, with: Text) {
        self.chars.splice(from..to, with.chars);
        self.locs.splice(from..to, with.locs);
    }

    fn skip_blanks(&self, mut i: usize) -> usize {
        while i < self.len() && is_space(self.chars[i]) {
            i += 1;
        }
        i
    }

    fn trim_end(mut self) -> Text {
        while self.chars.last().is_some_and(|&c| is_space(c)) {
            self.chars.pop();
            self.locs.pop();
        }
        self
    }

    /// The location of character `i`, or of the last one past the end.
    fn loc(&self, i: usize) -> Location {
        match self.locs.get(i).or(self.locs.last()) {
            Some(l) => l.clone(),
            None => Location::new(Arc::from(Path::new("")), 0, 0),
        }
    }

    /// Every character's `via` passed through `f`, once per distinct `via`.
    fn map_via(&mut self, f: impl Fn(Option<Arc<Via>>) -> Arc<Via>) {
        let mut seen: Vec<(Option<*const Via>, Arc<Via>)> = Vec::new();
        for loc in &mut self.locs {
            let key = loc.via.as_ref().map(Arc::as_ptr);
            let new = match seen.iter().find(|(k, _)| *k == key) {
                Some((_, v)) => v.clone(),
                None => {
                    let v = f(loc.via.clone());
                    seen.push((key, v.clone()));
                    v
                }
            };
            loc.via = Some(new);
        }
    }
}

impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.chars.iter().try_for_each(|c| std::fmt::Write::write_char(f, *c))
    }
}

/// Removes a comment, the escaping of `#` and `!`, and leading and trailing
/// blanks, as keepalived does with each line before anything else.
///
/// A comment starts at `#` or `!` outside double quotes and runs to the end
/// of the line. `\#` and `\!` outside quotes are the characters themselves;
/// any other `\` keeps the character after it (so `\"` neither opens nor
/// closes a quote). A `\` that ends the line (after the comment too, as in
/// keepalived 2.3) is kept as the last character: it continues a definition.
/// A double quote that is not closed is an error.
pub(crate) fn decomment(text: &Text) -> Result<Text, ConfigError> {
    let mut out = Text::default();
    let mut quote: Option<usize> = None;
    let mut continued = None;
    let mut comment = None;
    let mut i = text.skip_blanks(0);
    while i < text.len() {
        let c = text.chars[i];
        match c {
            '\\' if i + 1 == text.len() => {
                continued = Some(i);
                break;
            }
            '\\' => {
                let n = text.chars[i + 1];
                if quote.is_none() && (n == '#' || n == '!') {
                    out.chars.push(n);
                    out.locs.push(text.locs[i + 1].clone());
                } else {
                    out.chars.extend([c, n]);
                    out.locs.extend([text.locs[i].clone(), text.locs[i + 1].clone()]);
                }
                i += 2;
                continue;
            }
            '"' => quote = if quote.is_some() { None } else { Some(i) },
            '#' | '!' if quote.is_none() => {
                comment = Some(i);
                break;
            }
            _ => {}
        }
        out.chars.push(c);
        out.locs.push(text.locs[i].clone());
        i += 1;
    }
    if let Some(q) = quote {
        return Err(ConfigError::invalid(&text.locs[q], "unterminated quoted string"));
    }
    if let Some(mut j) = comment {
        // keepalived 2.3 still sees a final backslash after a comment.
        while j < text.len() {
            if text.chars[j] == '\\' {
                if j + 1 == text.len() {
                    continued = Some(j);
                }
                j += 2;
            } else {
                j += 1;
            }
        }
    }
    let mut out = out.trim_end();
    if let Some(at) = continued {
        out.chars.push('\\');
        out.locs.push(text.locs[at].clone());
    }
    Ok(out)
}

/// A definition's value.
#[derive(Debug, Clone)]
enum Def {
    /// One line of text, written where the definition was.
    Line(Text),
    /// A multi-line value (`$NAME= \`): it may only end a line.
    Lines(Vec<Text>),
    /// A value that was not written anywhere (a `~SEQ`/`~LST` variable):
    /// its characters take the location of the reference.
    Anchored(String),
}

/// A `$NAME` or `${NAME params}` reference found in a line.
#[derive(Debug)]
struct Reference {
    name: String,
    braces: bool,
    params: Vec<String>,
    /// One past the reference's last character.
    end: usize,
}

/// Reads a reference whose `$` is at `dollar`: `$NAME` must be followed by a
/// blank, `,`, `)` or the line end; `${NAME}` may be followed by anything and
/// may carry parameters, words of letters, digits and `_` (`${_RANDOM 1 9}`).
fn reference(t: &Text, dollar: usize) -> Option<Reference> {
    let c = &t.chars;
    let braces = c.get(dollar + 1) == Some(&'{');
    let start = dollar + 1 + usize::from(braces);
    if !c.get(start).copied().is_some_and(is_name_start) {
        return None;
    }
    let mut p = start;
    while p < c.len() && is_name_char(c[p]) {
        p += 1;
    }
    let name: String = c[start..p].iter().collect();
    if !braces {
        return match c.get(p) {
            None | Some(' ' | '\t' | ',' | ')') => Some(Reference { name, braces, params: Vec::new(), end: p }),
            _ => None,
        };
    }
    let mut params = Vec::new();
    let mut cur = String::new();
    let mut trailing_blank = false;
    while p < c.len() && (c[p] == ' ' || c[p] == '\t' || is_name_char(c[p])) {
        if c[p] == ' ' || c[p] == '\t' {
            if !cur.is_empty() {
                params.push(std::mem::take(&mut cur));
            }
            trailing_blank = true;
        } else {
            cur.push(c[p]);
            trailing_blank = false;
        }
        p += 1;
    }
    if !cur.is_empty() {
        params.push(cur);
    }
    // keepalived does not take "${NAME p }" (a blank before the brace) as a
    // reference.
    if c.get(p) != Some(&'}') || (trailing_blank && !params.is_empty()) {
        return None;
    }
    Some(Reference { name, braces, params, end: p + 1 })
}

/// How many steps (includes, substitutions, sequence rounds) led to `at`.
fn via_depth(at: &Location) -> usize {
    let mut n = 0;
    let mut next = at.via.as_deref();
    while let Some(v) = next {
        n += 1;
        next = match v {
            Via::Include(l) | Via::Definition { at: l, .. } | Via::Sequence { at: l, .. } => l.via.as_deref(),
        };
    }
    n
}

/// Whether character `i` of the line is inside double quotes.
fn in_quotes(t: &Text, i: usize) -> bool {
    let mut quote = false;
    let mut k = 0;
    while k < i {
        match t.chars[k] {
            '\\' => k += 1,
            '"' => quote = !quote,
            _ => {}
        }
        k += 1;
    }
    quote
}

/// The built-in definitions (keepalived.conf(5), "Pre-defined definitions");
/// `_ENV` is from keepalived 2.4.
const BUILTINS: &[&str] = &["_PWD", "_INSTANCE", "_RANDOM", "_ENV", "_HASH", "_BANG"];

/// Counts the `{` and `}` outside double quotes: opened minus closed.
fn brace_balance(t: &Text) -> i64 {
    let mut quote = false;
    let mut n = 0i64;
    let mut k = 0;
    while k < t.len() {
        match t.chars[k] {
            '\\' => k += 1,
            '"' => quote = !quote,
            '{' if !quote => n += 1,
            '}' if !quote => n -= 1,
            _ => {}
        }
        k += 1;
    }
    n
}

/// A conditional line that was dropped and left a block open.
#[derive(Debug)]
struct DroppedBlock {
    /// Where the `@` was.
    at: Location,
    /// The dropped line, for the message.
    line: String,
    /// The condition (`@other`, `@^main`).
    condition: String,
    /// Braces it left open, less those later dropped lines closed.
    open: i64,
}

/// An `include` variant and its pattern.
struct IncludeLine {
    checks: IncludeCheck,
    pattern: Text,
}

/// Whether the line is an `include` directive (keepalived: the word
/// `include`, or `include` and one of `r m w b a`, then a blank).
fn include_line(t: &Text) -> Option<IncludeLine> {
    if !t.starts_with("include") {
        return None;
    }
    let (checks, rest) = match t.chars.get(7) {
        Some(&c) if is_space(c) => (IncludeCheck::NONE, 8),
        Some(&v) if t.chars.get(8).copied().is_some_and(is_space) => {
            let checks = match v {
                'r' => IncludeCheck::READABLE,
                'm' => IncludeCheck::READABLE.with(IncludeCheck::MATCH),
                'w' => IncludeCheck::READABLE.with(IncludeCheck::MATCH).with(IncludeCheck::WILDCARD_MATCH),
                'b' => IncludeCheck::READABLE.with(IncludeCheck::BRACE_MATCH),
                'a' => IncludeCheck::ALL,
                _ => return None,
            };
            (checks, 9)
        }
        _ => return None,
    };
    let from = t.skip_blanks(rest);
    let pattern = t.slice(from, t.len()).trim_end();
    if pattern.is_empty() {
        return None;
    }
    Some(IncludeLine { checks, pattern })
}

/// A file being read.
#[derive(Debug)]
struct Frame {
    /// The file as named (the root file as given, an include as resolved).
    file: Arc<Path>,
    /// Its canonical path, for include loops.
    canonical: PathBuf,
    /// The directory `${_PWD}` names: absolute.
    pwd: String,
    /// The include checks in force in this file.
    checks: IncludeCheck,
}

/// A multi-line definition being collected.
#[derive(Debug)]
struct Collecting {
    name: String,
    lines: Vec<Text>,
}

/// Where an emitted line comes from: the physical line that was being read
/// when it was produced (for `# from FILE:LINE` markers).
pub type Home = Location;

/// Runs the line layer over a configuration and hands each resulting line,
/// with the physical line it came from, to a sink.
///
/// A conditional line that is dropped drops only itself, as in keepalived;
/// when it opened a block, a line kept inside that block is an error here
/// (keepalived reads such lines at the outer level, and its own errors
/// follow), which names the conditional line.
pub struct Preprocessor<'s> {
    opts: Options,
    defs: HashMap<String, Def>,
    files: Vec<Frame>,
    /// Warnings met so far.
    pub warnings: Vec<Warning>,
    sink: &'s mut dyn FnMut(Text, &Home) -> Result<(), ConfigError>,
    reading: Location,
    dropped: Option<DroppedBlock>,
    dropped_line: Option<(Location, String)>,
    lines: u64,
    rng: u64,
}

impl<'s> Preprocessor<'s> {
    /// A preprocessor that hands its lines to `sink`.
    pub fn new(opts: Options, sink: &'s mut dyn FnMut(Text, &Home) -> Result<(), ConfigError>) -> Self {
        use std::hash::{BuildHasher, Hasher};
        let rng = std::collections::hash_map::RandomState::new().build_hasher().finish() | 1;
        Preprocessor {
            opts,
            defs: HashMap::new(),
            files: Vec::new(),
            warnings: Vec::new(),
            sink,
            reading: Location::new(Arc::from(Path::new("")), 0, 0),
            dropped: None,
            dropped_line: None,
            lines: 0,
            rng,
        }
    }

    fn warn(&mut self, at: &Location, message: impl Into<String>) {
        self.warnings.push(Warning { location: at.clone(), message: message.into() });
    }

    /// Reads the file at `path` and everything it includes. `from` is the
    /// include directive that named it (`None` for the root file).
    pub fn read_file(&mut self, path: &Path, from: Option<&Location>) -> Result<(), ConfigError> {
        let file: Arc<Path> = Arc::from(path);
        let at = from.cloned().unwrap_or_else(|| Location::file(file.clone()));
        if self.files.len() >= MAX_INCLUDE_DEPTH {
            return Err(ConfigError::IncludeDepth { at, limit: MAX_INCLUDE_DEPTH });
        }
        let io_err = |source| ConfigError::Io { at: at.clone(), path: path.to_path_buf(), source };
        let canonical = std::fs::canonicalize(path).map_err(io_err)?;
        if let Some(pos) = self.files.iter().position(|f| f.canonical == canonical) {
            let mut chain: Vec<String> = self.files[pos..].iter().map(|f| f.canonical.display().to_string()).collect();
            chain.push(canonical.display().to_string());
            return Err(ConfigError::IncludeCycle { at, chain: chain.join(" -> ") });
        }
        let bytes = std::fs::read(path).map_err(io_err)?;
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                self.warn(&Location::file(file.clone()), "file is not valid UTF-8; invalid bytes were replaced");
                String::from_utf8_lossy(e.as_bytes()).into_owned()
            }
        };
        let via = from.map(|l| Arc::new(Via::Include(l.clone())));
        self.read_as(file, canonical, via, &text)
    }

    /// Reads `text` as the contents of `file` (which need not exist).
    pub fn read_str(&mut self, file: Arc<Path>, text: &str) -> Result<(), ConfigError> {
        let canonical = std::fs::canonicalize(&file).unwrap_or_else(|_| absolute(&file));
        self.read_as(file, canonical, None, text)
    }

    fn read_as(&mut self, file: Arc<Path>, canonical: PathBuf, via: Option<Arc<Via>>, text: &str) -> Result<(), ConfigError> {
        let pwd = canonical.parent().map(|p| p.display().to_string()).unwrap_or_else(|| "/".into());
        let checks = self.files.last().map_or(self.opts.include_check, |f| f.checks);
        self.files.push(Frame { file: file.clone(), canonical, pwd, checks });
        let saved = std::mem::replace(&mut self.reading, Location::new(file.clone(), 0, 0));
        let result = self.read_lines(&file, &via, text);
        self.reading = saved;
        self.files.pop();
        result
    }

    fn read_lines(&mut self, file: &Arc<Path>, via: &Option<Arc<Via>>, text: &str) -> Result<(), ConfigError> {
        let mut collecting: Option<Collecting> = None;
        let mut odd: Option<(Location, char)> = None;
        let mut odd_lines = 0usize;
        for (idx, raw) in text.split('\n').enumerate() {
            let line = u32::try_from(idx + 1).unwrap_or(u32::MAX);
            let raw = raw.trim_end_matches(['\r', '\n']);
            let phys = Text::physical(raw, file, line, via);
            self.reading = Location::new(file.clone(), line, 1).with_via(via.clone());
            if let Some((col, ch)) = odd_space(&phys) {
                odd_lines += 1;
                if odd.is_none() {
                    odd = Some((phys.loc(col), ch));
                }
            }
            if let Some(c) = collecting.as_mut() {
                // An empty line ends a multi-line definition. So does a line
                // that is only a comment or blanks: keepalived's own parser
                // would go on, but its VRRP and checker processes read the
                // copy of the configuration it writes for them, where such a
                // line is empty.
                let t = decomment(&phys)?;
                if t.is_empty() {
                    let done = collecting.take();
                    self.finish(done);
                    continue;
                }
                if t.chars.last() == Some(&'\\') {
                    let body = t.slice(0, t.len() - 1).trim_end();
                    if !body.is_empty() {
                        c.lines.push(body);
                    }
                } else {
                    c.lines.push(t);
                    let done = collecting.take();
                    self.finish(done);
                }
                continue;
            }
            if raw.is_empty() {
                continue;
            }
            let t = decomment(&phys)?;
            if t.is_empty() {
                continue;
            }
            collecting = self.process(t, 0, true)?;
        }
        let done = collecting.take();
        self.finish(done);
        if let Some((at, ch)) = odd {
            let name = if ch == '\u{a0}' { "non-breaking space (U+00A0)".to_string() } else { format!("non-ASCII space (U+{:04X})", ch as u32) };
            self.warn(
                &at,
                format!("{name} treated as a plain space on {odd_lines} line(s) of this file, first here (text copied from a web page?)"),
            );
        }
        Ok(())
    }

    fn finish(&mut self, c: Option<Collecting>) {
        if let Some(c) = c {
            let def = if c.lines.is_empty() { Def::Line(Text::default()) } else { Def::Lines(c.lines) };
            self.defs.insert(c.name, def);
        }
    }

    /// Runs steps 2 to 6 on one line. `file_line` says whether it is a line
    /// of a file (the only place a multi-line definition may start); a
    /// definition that does is returned for the caller to collect.
    fn process(&mut self, mut text: Text, depth: usize, file_line: bool) -> Result<Option<Collecting>, ConfigError> {
        if depth > MAX_NESTING {
            return Err(ConfigError::invalid(
                &text.loc(0),
                format!("definitions and sequences nest deeper than {MAX_NESTING} levels (a definition that uses itself?)"),
            ));
        }
        let mut rests: Vec<Vec<Text>> = Vec::new();
        let mut substituted = false;
        let line = loop {
            if text.is_empty() {
                break None;
            }
            if text.chars[0] == '@' {
                match self.conditional(&text) {
                    Some(kept) => text = kept,
                    None => break None,
                }
                if text.is_empty() {
                    break None;
                }
            }
            if text.chars[0] == '$' {
                if let Some((name, value)) = definition(&text)? {
                    if value.chars.last() == Some(&'\\') {
                        if !file_line || substituted {
                            return Err(ConfigError::invalid(
                                &text.loc(0),
                                format!("a multi-line definition (${name}= ... \\) must be written on lines of its own, not produced by a substitution or a ~SEQ/~LST"),
                            ));
                        }
                        let first = value.slice(0, value.len() - 1).trim_end();
                        let lines = if first.is_empty() { Vec::new() } else { vec![first] };
                        return Ok(Some(Collecting { name, lines }));
                    }
                    self.defs.insert(name, Def::Line(value));
                    break None;
                }
            }
            if text.starts_with("~SEQ") || text.starts_with("~LST") {
                self.replicate(&text, depth)?;
                break None;
            }
            if text.chars[0] == '~' || text.find('$', 0).is_none() {
                break Some(text);
            }
            if !self.substitute(&mut text, &mut rests)? {
                break Some(text);
            }
            substituted = true;
            text = decomment(&text)?;
            if text.is_empty() || !(text.chars[0] == '@' || text.find('$', 0).is_some()) {
                break Some(text);
            }
        };
        if let Some(line) = line.filter(|l| !l.is_empty()) {
            self.emit(line)?;
        }
        // The further lines of multi-line values, the last one substituted
        // first (keepalived keeps them on a stack).
        while let Some(lines) = rests.pop() {
            for l in lines {
                self.process(l, depth + 1, false)?;
            }
        }
        Ok(None)
    }

    /// Applies an `@ID` / `@^ID` condition: the rest of the line when it
    /// holds, `None` when the line is dropped.
    fn conditional(&mut self, text: &Text) -> Option<Text> {
        let negate = text.chars.get(1) == Some(&'^');
        let from = if negate { 2 } else { 1 };
        // keepalived needs a blank after the id; a line without one is dropped.
        let Some(end) = (from..text.len()).find(|&i| is_space(text.chars[i])) else {
            self.note_dropped(text, text.len());
            return None;
        };
        let id = text.string(from, end);
        if (id == self.opts.config_id) == negate {
            self.note_dropped(text, end);
            return None;
        }
        let rest = text.skip_blanks(end);
        Some(text.slice(rest, text.len()))
    }

    /// Remembers a dropped conditional line (`end` is where its condition
    /// ends) for the errors of [`Preprocessor::emit`].
    fn note_dropped(&mut self, text: &Text, end: usize) {
        let open = brace_balance(text);
        let line = text.to_string();
        match self.dropped.as_mut() {
            Some(d) => {
                d.open += open;
                if d.open <= 0 {
                    self.dropped = None;
                }
            }
            None if open > 0 => {
                self.dropped = Some(DroppedBlock { at: text.loc(0), line: line.clone(), condition: text.string(0, end), open });
            }
            None => {}
        }
        self.dropped_line = Some((text.loc(0), text.string(0, end)));
    }

    /// Hands a finished line on, or acts on it when it is an `include` or
    /// `include_check`.
    fn emit(&mut self, text: Text) -> Result<(), ConfigError> {
        if let Some(d) = &self.dropped {
            return Err(ConfigError::invalid(
                &text.loc(0),
                format!(
                    "this line is inside the block opened by '{}' at {}, which was dropped because of '{}': keepalived drops only that line, not its block; put '{}' on every line of the block",
                    d.line, d.at, d.condition, d.condition
                ),
            ));
        }
        if let Some((at, condition)) = self.dropped_line.take() {
            if text.chars[0] == '{' {
                return Err(ConfigError::invalid(
                    &text.loc(0),
                    format!("this '{{' opens a block for the line that '{condition}' dropped at {at}: keepalived drops only that line, not the block; put '{condition}' on every line of the block"),
                ));
            }
        }
        if let Some(inc) = include_line(&text) {
            return self.include(inc);
        }
        if text.starts_with("include_check") && text.chars.get(13).is_none_or(|&c| is_space(c)) {
            return self.include_check(&text);
        }
        if text.chars.last() == Some(&'\\') && text.len() > 1 && text.chars[text.len() - 2] != '\\' {
            self.warn(
                &text.loc(text.len() - 1),
                "a '\\' at the end of a line continues only a $NAME= definition (keepalived.conf(5)); here it is kept as a character",
            );
        }
        self.lines += 1;
        if self.lines > MAX_LINES {
            return Err(ConfigError::invalid(&text.loc(0), format!("the configuration expands to more than {MAX_LINES} lines")));
        }
        let home = self.reading.clone();
        (self.sink)(text, &home)
    }

    /// `include_check [[+|-]read|match|wildcard_match|brace_match]...`: sets
    /// the checks of the includes that follow in this file and the files it
    /// includes. The line is consumed here (keepalived reads it in
    /// global_defs; hav accepts it anywhere).
    fn include_check(&mut self, text: &Text) -> Result<(), ConfigError> {
        let mut words = Vec::new();
        let mut i = text.skip_blanks(13);
        while i < text.len() {
            let start = i;
            while i < text.len() && !is_space(text.chars[i]) {
                i += 1;
            }
            words.push((text.string(start, i), text.loc(start)));
            i = text.skip_blanks(i);
        }
        let Some(frame) = self.files.last_mut() else { return Ok(()) };
        if words.is_empty() {
            frame.checks = IncludeCheck::ALL;
            return Ok(());
        }
        for (n, (word, at)) in words.iter().enumerate() {
            let (op, name) = match word.as_bytes().first() {
                Some(b'+') => (1, &word[1..]),
                Some(b'-') => (-1, &word[1..]),
                _ => (0, word.as_str()),
            };
            if op == 0 && n > 0 {
                return Err(ConfigError::invalid(at, format!("include_check: '{word}' must be '+{word}' or '-{word}' after the first option")));
            }
            let flag = match name {
                "read" | "readable" => IncludeCheck::READABLE,
                "match" => IncludeCheck::MATCH,
                "wildcard_match" => IncludeCheck::WILDCARD_MATCH,
                "brace_match" => IncludeCheck::BRACE_MATCH,
                _ => {
                    return Err(ConfigError::invalid(
                        at,
                        format!("unknown include_check option '{name}' (read, match, wildcard_match, brace_match)"),
                    ))
                }
            };
            frame.checks = match op {
                0 => IncludeCheck::READABLE.with(flag),
                1 => frame.checks.with(flag),
                _ => frame.checks.without(flag),
            };
        }
        Ok(())
    }

    /// Reads the files an `include` names, in order.
    fn include(&mut self, inc: IncludeLine) -> Result<(), ConfigError> {
        let at = inc.pattern.loc(0);
        let mut pattern = inc.pattern.to_string();
        if pattern.len() >= 2 && (pattern.starts_with('"') && pattern.ends_with('"') || pattern.starts_with('\'') && pattern.ends_with('\'')) {
            // keepalived takes the quotes as part of the file name.
            self.warn(&at, "keepalived does not remove quotes around an include pattern (it would look for a name with quotes in it); hav does");
            pattern = pattern[1..pattern.len() - 1].to_string();
        }
        let frame = self.files.last();
        let checks = frame.map_or(self.opts.include_check, |f| f.checks).with(inc.checks);
        let base = frame.and_then(|f| f.file.parent().map(Path::to_path_buf)).unwrap_or_default();
        let target = if Path::new(&pattern).is_absolute() { PathBuf::from(&pattern) } else { base.join(&pattern) };
        let g = glob::glob(&target);
        let shown = target.display().to_string();
        if g.paths.is_empty() {
            if g.missing > 0 {
                let flag = if g.braces { IncludeCheck::BRACE_MATCH } else { IncludeCheck::MATCH };
                if checks.contains(flag) {
                    return Err(ConfigError::Io {
                        at,
                        path: target,
                        source: std::io::Error::new(std::io::ErrorKind::NotFound, "included file not found"),
                    });
                }
                self.warn(&at, format!("include: '{shown}' does not exist; skipped (keepalived only warns; 'includem' or include_check match makes it an error)"));
            } else if g.wildcards && checks.contains(IncludeCheck::WILDCARD_MATCH) {
                return Err(ConfigError::invalid(&at, format!("include: no file matches '{shown}'")));
            }
            return Ok(());
        }
        if g.missing > 0 {
            if checks.contains(IncludeCheck::BRACE_MATCH) {
                return Err(ConfigError::invalid(&at, format!("include: some of the files '{shown}' names do not exist")));
            }
            self.warn(&at, format!("include: some of the files '{shown}' names do not exist; the others are read"));
        }
        for path in g.paths {
            let problem = match std::fs::metadata(&path) {
                Ok(m) if m.is_dir() => Some(format!("'{}' is a directory; skipped", path.display())),
                Ok(m) if !m.is_file() || std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0 => {
                    Some(format!("'{}' is not a regular non-executable file; skipped (as keepalived does)", path.display()))
                }
                Ok(_) => None,
                Err(e) => Some(format!("cannot read '{}': {e}; skipped", path.display())),
            };
            if let Some(p) = problem {
                if checks.contains(IncludeCheck::READABLE) {
                    return Err(ConfigError::invalid(&at, format!("include: {p}")));
                }
                self.warn(&at, format!("include: {p}"));
                continue;
            }
            if let Err(e) = std::fs::File::open(&path) {
                if checks.contains(IncludeCheck::READABLE) {
                    return Err(ConfigError::Io { at, path, source: e });
                }
                self.warn(&at, format!("include: cannot read '{}': {e}; skipped", path.display()));
                continue;
            }
            let saved = self.reading.clone();
            let r = self.read_file(&path, Some(&at));
            self.reading = saved;
            r?;
        }
        Ok(())
    }

    /// Substitutes the references of a line in place, rescanning what was
    /// substituted. Returns whether anything was; the further lines of
    /// multi-line values go to `rests`.
    fn substitute(&mut self, text: &mut Text, rests: &mut Vec<Vec<Text>>) -> Result<bool, ConfigError> {
        let mut cur = 0;
        let mut count = 0usize;
        let mut changed = false;
        while let Some(i) = text.find('$', cur) {
            if i + 1 >= text.len() {
                break;
            }
            let Some(r) = reference(text, i) else {
                self.hint_unsubstituted(text, i);
                cur = i + 1;
                continue;
            };
            let at = text.loc(i);
            if via_depth(&at) > MAX_NESTING {
                return Err(ConfigError::invalid(
                    &at,
                    format!("substituting ${} nests deeper than {MAX_NESTING} levels (a definition that uses itself?)", r.name),
                ));
            }
            let quoted = in_quotes(text, i);
            let def = self.defs.get(&r.name).cloned();
            let anchored = matches!(def, Some(Def::Anchored(_)) | None);
            let value: Vec<Text> = match def {
                Some(_) if !r.params.is_empty() => {
                    if quoted {
                        cur = i + 1;
                        continue;
                    }
                    return Err(ConfigError::invalid(
                        &at,
                        format!("'{}' takes no parameters: keepalived has no parameterised definitions (only ${{_RANDOM MIN MAX}} and ${{_ENV NAME}} take parameters)", r.name),
                    ));
                }
                Some(Def::Line(v)) => vec![v],
                Some(Def::Anchored(s)) => vec![Text::anchored(&s, &at)],
                Some(Def::Lines(ls)) => {
                    if r.end != text.len() {
                        if quoted {
                            cur = i + 1;
                            continue;
                        }
                        return Err(ConfigError::invalid(
                            &at,
                            format!("${} is a multi-line definition: keepalived substitutes it only at the end of a line", r.name),
                        ));
                    }
                    ls
                }
                None if BUILTINS.contains(&r.name.as_str()) => vec![Text::anchored(&self.builtin(&r, &at)?, &at)],
                None => {
                    if r.braces && !quoted {
                        return Err(ConfigError::invalid(
                            &at,
                            format!("'{}' is not defined (keepalived would leave '${{{}}}' in place and read its braces as a block)", r.name, r.name),
                        ));
                    }
                    cur = i + 1;
                    continue;
                }
            };
            let via = Arc::new(Via::Definition { name: r.name.clone(), at: at.clone() });
            let mut lines = value.into_iter().map(|mut t| {
                if !anchored {
                    for l in &mut t.locs {
                        l.via = Some(via.clone());
                    }
                }
                t
            });
            let first = lines.next().unwrap_or_default();
            let rest: Vec<Text> = lines.collect();
            let tilde = first.chars.get(first.skip_blanks(0)) == Some(&'~');
            text.splice(i, r.end, first);
            if !rest.is_empty() {
                rests.push(rest);
            }
            changed = true;
            count += 1;
            if count > MAX_SUBSTITUTIONS || text.len() > MAX_LINE_CHARS {
                return Err(ConfigError::invalid(&at, format!("substituting ${} does not end (a definition that uses itself?)", r.name)));
            }
            // A value starting with '~' is a ~SEQ/~LST: its variable must
            // not be substituted before the sequence runs.
            if tilde {
                break;
            }
            cur = i;
        }
        Ok(changed)
    }

    /// Warns about `$NAME` that names a definition but is not substituted
    /// because of the character after it (`$PREFIX.1`, `"$DIR/x"`).
    fn hint_unsubstituted(&mut self, text: &Text, dollar: usize) {
        let c = &text.chars;
        if c.get(dollar + 1).copied().is_some_and(is_name_start) {
            let mut p = dollar + 1;
            while p < c.len() && is_name_char(c[p]) {
                p += 1;
            }
            let name = text.string(dollar + 1, p);
            if self.defs.contains_key(&name) || BUILTINS.contains(&name.as_str()) {
                let at = text.loc(dollar);
                let message = format!(
                    "${name} is not substituted here: keepalived substitutes $NAME only before a blank, ',', ')' or the line end; write ${{{name}}}"
                );
                // A line is scanned again after each substitution: say it once.
                if !self.warnings.iter().any(|w| w.location == at && w.message == message) {
                    self.warn(&at, message);
                }
            }
        }
    }

    /// The value of a built-in definition.
    fn builtin(&mut self, r: &Reference, at: &Location) -> Result<String, ConfigError> {
        let (min, max) = match r.name.as_str() {
            "_RANDOM" => (0, 2),
            "_ENV" => (1, 1),
            _ => (0, 0),
        };
        if r.params.len() < min || r.params.len() > max {
            let takes = match (min, max) {
                (0, 0) => "no parameters".to_string(),
                (a, b) if a == b => format!("{a} parameter(s)"),
                (a, b) => format!("{a} to {b} parameters"),
            };
            return Err(ConfigError::invalid(at, format!("${{{}}} takes {takes}, {} given", r.name, r.params.len())));
        }
        Ok(match r.name.as_str() {
            "_PWD" => self.files.last().map(|f| f.pwd.clone()).unwrap_or_default(),
            "_INSTANCE" => self.opts.config_id.clone(),
            "_HASH" => "#".into(),
            "_BANG" => "!".into(),
            "_ENV" => std::env::var(&r.params[0]).unwrap_or_default(),
            _ => {
                let mut bounds = [0u64, 32767];
                for (k, p) in r.params.iter().enumerate() {
                    bounds[k] = p.parse().map_err(|_| {
                        ConfigError::invalid(at, format!("${{_RANDOM}} takes numbers only (MIN MAX), got '{p}'"))
                    })?;
                }
                let [lo, hi] = bounds;
                if lo > hi {
                    return Err(ConfigError::invalid(at, format!("${{_RANDOM {lo} {hi}}}: MIN is more than MAX")));
                }
                // xorshift64: ${_RANDOM} needs variety, not quality.
                self.rng ^= self.rng << 13;
                self.rng ^= self.rng >> 7;
                self.rng ^= self.rng << 17;
                (lo + self.rng % (hi - lo + 1)).to_string()
            }
        })
    }

    /// Runs the body of a `~SEQ` / `~LST` line once per value.
    fn replicate(&mut self, text: &Text, depth: usize) -> Result<(), ConfigError> {
        let (Rounds { vars, rounds, body }, what) =
            if text.starts_with("~SEQ") { (self.sequence(text)?, "~SEQ") } else { (list(text)?, "~LST") };
        let at = text.loc(0);
        for round in rounds {
            for (var, value) in vars.iter().zip(&round) {
                self.defs.insert(var.clone(), Def::Anchored(value.clone()));
            }
            let mut t = body.clone();
            let label: Vec<String> = vars.iter().zip(&round).map(|(v, x)| format!("{v}={x}")).collect();
            let label = label.join(" ");
            t.map_via(|prev| {
                Arc::new(Via::Sequence { what: what.to_string(), values: label.clone(), at: at.clone().with_via(prev) })
            });
            self.process(t, depth + 1, false)?;
        }
        Ok(())
    }

    /// Parses `~SEQ(var, [start,] [step,] end) body` / `~SEQx(...)`: the
    /// variable, its values and the body.
    fn sequence(&mut self, text: &Text) -> Result<Rounds, ConfigError> {
        let bad = |i: usize, why: &str| {
            ConfigError::invalid(&text.loc(i), format!("invalid ~SEQ: {why} (~SEQ(var, [start,] [step,] end) line)"))
        };
        let mut p = 4;
        let hex = text.chars.get(p) == Some(&'x');
        if hex {
            p += 1;
        }
        p = text.skip_blanks(p);
        if text.chars.get(p) != Some(&'(') {
            return Err(bad(p, "'(' expected"));
        }
        let open = p;
        p = text.skip_blanks(p + 1);
        let var_start = p;
        while p < text.len() && !matches!(text.chars[p], ',' | ')') && !is_space(text.chars[p]) {
            p += 1;
        }
        let var = text.string(var_start, p);
        check_var(text, var_start, &var, "~SEQ")?;
        p = text.skip_blanks(p);
        if text.chars.get(p) != Some(&',') {
            return Err(bad(p, "',' and the end value expected after the variable"));
        }
        let Some(close) = text.find(')', p) else {
            return Err(bad(open, "')' missing"));
        };
        let nums_at = text.skip_blanks(p + 1);
        // Definitions may give the numbers.
        let mut params = text.slice(p + 1, close + 1);
        let mut rests = Vec::new();
        self.substitute(&mut params, &mut rests)?;
        if !rests.is_empty() {
            return Err(bad(nums_at, "a multi-line definition cannot give its numbers"));
        }
        let mut nums = Vec::new();
        let mut q = 0;
        loop {
            let (n, next) = strtol(&params.chars, q);
            let next = params.skip_blanks(next);
            if next == params.skip_blanks(q) {
                let got: String = params.chars[next..].iter().take_while(|&&c| c != ',' && c != ')').collect();
                return Err(ConfigError::invalid(
                    &params.loc(next),
                    format!("invalid ~SEQ: a number expected, got '{}'", got.trim()),
                ));
            }
            let Some(n) = n else {
                return Err(ConfigError::invalid(&params.loc(q), "invalid ~SEQ: number out of range"));
            };
            nums.push(n);
            match params.chars.get(next) {
                Some(')') => break,
                Some(',') if nums.len() < 3 => q = next + 1,
                _ => {
                    return Err(ConfigError::invalid(
                        &params.loc(next),
                        "invalid ~SEQ: ',' or ')' expected after a number (at most start, step, end)",
                    ))
                }
            }
        }
        let (start, step, end) = match nums[..] {
            [end] => (if end < 0 { -1 } else { 1 }, if end < 1 { -1 } else { 1 }, end),
            [start, end] => (start, if start <= end { 1 } else { -1 }, end),
            [start, step, end] => {
                if step == 0 {
                    return Err(bad(nums_at, "the step is 0"));
                }
                if (start < end && step < 0) || (start > end && step > 0) {
                    return Err(bad(nums_at, &format!("a step of {step} never goes from {start} to {end}")));
                }
                (start, step, end)
            }
            _ => return Err(bad(nums_at, "one to three numbers expected")),
        };
        if hex && (start < 0 || end < 0) {
            return Err(bad(nums_at, "~SEQx takes only numbers that are not negative"));
        }
        let mut values = Vec::new();
        let mut v = start;
        loop {
            if values.len() as u64 >= MAX_ROUNDS {
                return Err(bad(0, &format!("more than {MAX_ROUNDS} values")));
            }
            values.push(if hex { format!("{v:x}") } else { v.to_string() });
            match v.checked_add(step) {
                Some(n) if (step > 0 && n <= end) || (step < 0 && n >= end) => v = n,
                _ => break,
            }
        }
        let body_start = text.skip_blanks(close + 1);
        Ok(Rounds { vars: vec![var], rounds: values.into_iter().map(|v| vec![v]).collect(), body: text.slice(body_start, text.len()) })
    }
}

/// What a `~SEQ` / `~LST` runs: its variables, their values round by round,
/// and the rest of the line.
struct Rounds {
    vars: Vec<String>,
    rounds: Vec<Vec<String>>,
    body: Text,
}

/// The variable of a `~SEQ`/`~LST` must be a definition name.
fn check_var(text: &Text, at: usize, var: &str, what: &str) -> Result<(), ConfigError> {
    let mut chars = var.chars();
    if !chars.next().is_some_and(is_name_start) || !chars.all(is_name_char) {
        return Err(ConfigError::invalid(
            &text.loc(at),
            format!("invalid {what}: '{var}' is not a variable name (letters, digits and '_', not starting with a digit)"),
        ));
    }
    Ok(())
}

/// Reads a number as strtol(3) with base 0 does (blanks, a sign, `0x` hex,
/// `0` octal, decimal): its value (`None` when out of range) and where it
/// stopped; no digits at all stop where it started.
fn strtol(c: &[char], from: usize) -> (Option<i64>, usize) {
    let mut p = from;
    while p < c.len() && is_space(c[p]) {
        p += 1;
    }
    let neg = c.get(p) == Some(&'-');
    if matches!(c.get(p), Some('-' | '+')) {
        p += 1;
    }
    let (radix, digits_from) = if c.get(p) == Some(&'0') && matches!(c.get(p + 1), Some('x' | 'X')) && c.get(p + 2).is_some_and(char::is_ascii_hexdigit) {
        (16, p + 2)
    } else if c.get(p) == Some(&'0') {
        (8, p)
    } else {
        (10, p)
    };
    let mut q = digits_from;
    let mut value: Option<i64> = Some(0);
    while let Some(d) = c.get(q).and_then(|ch| ch.to_digit(radix)) {
        value = value.and_then(|v| v.checked_mul(i64::from(radix))).and_then(|v| v.checked_add(i64::from(d)));
        q += 1;
    }
    if q == digits_from {
        return (Some(0), from);
    }
    (value.map(|v| if neg { -v } else { v }), q)
}

/// Parses `~LST(var, a, b, ...) body` and `~LST({v1, v2}, {a1, a2}, ...)`:
/// the variables, the value sets (missing values are empty) and the body.
fn list(text: &Text) -> Result<Rounds, ConfigError> {
    let bad = |i: usize, why: &str| ConfigError::invalid(&text.loc(i), format!("invalid ~LST: {why}"));
    let c = &text.chars;
    let blanks = |mut i: usize| {
        while i < c.len() && (c[i] == ' ' || c[i] == '\t') {
            i += 1;
        }
        i
    };
    let mut p = blanks(4);
    if c.get(p) != Some(&'(') {
        return Err(bad(p, "'(' expected"));
    }
    p = blanks(p + 1);
    let braced = c.get(p) == Some(&'{');
    if braced {
        p = blanks(p + 1);
    }
    let mut vars = Vec::new();
    loop {
        let start = p;
        while p < c.len() && !matches!(c[p], ' ' | '\t' | ',' | '}' | ')') {
            p += 1;
        }
        let var = text.string(start, p);
        check_var(text, start, &var, "~LST")?;
        vars.push(var);
        p = blanks(p);
        match c.get(p) {
            Some('}') if braced => {
                p = blanks(p + 1);
                break;
            }
            Some(',') if !braced => break,
            Some(',') => p = blanks(p + 1),
            _ => return Err(bad(p, if braced { "',' or '}' expected among the variables" } else { "',' expected after the variable" })),
        }
    }
    if c.get(p) != Some(&',') {
        return Err(bad(p, "',' and values expected after the variables"));
    }
    p = blanks(p + 1);
    let mut sets = Vec::new();
    loop {
        let set_start = p;
        let braced = c.get(p) == Some(&'{');
        if braced {
            p = blanks(p + 1);
        }
        let mut set = Vec::new();
        loop {
            let start = p;
            while p < c.len() && !matches!(c[p], ' ' | '\t' | ',' | '}' | ')') {
                p += 1;
            }
            set.push(text.string(start, p));
            p = blanks(p);
            match c.get(p) {
                Some('}') if braced => {
                    p = blanks(p + 1);
                    break;
                }
                Some(',' | ')') if !braced => break,
                Some(',') if braced => p = blanks(p + 1),
                _ => return Err(bad(p, if braced { "',' or '}' expected in a {...} set of values" } else { "',' or ')' expected after a value" })),
            }
        }
        if set.len() > vars.len() {
            return Err(bad(set_start, &format!("{} values for {} variable(s)", set.len(), vars.len())));
        }
        set.resize(vars.len(), String::new());
        sets.push(set);
        if sets.len() as u64 > MAX_ROUNDS {
            return Err(bad(0, &format!("more than {MAX_ROUNDS} values")));
        }
        match c.get(p) {
            Some(')') => break,
            Some(',') => p = blanks(p + 1),
            _ => return Err(bad(p, "',' or ')' expected after a set of values")),
        }
    }
    let body = text.skip_blanks(p + 1);
    Ok(Rounds { vars, rounds: sets, body: text.slice(body, text.len()) })
}

/// Reads `$NAME=value` (no blank before `=`; blanks after it skipped).
/// `None` when the line is not a definition; an error when it looks like
/// one that keepalived does not have.
fn definition(text: &Text) -> Result<Option<(String, Text)>, ConfigError> {
    let c = &text.chars;
    if !c.get(1).copied().is_some_and(is_name_start) {
        return Ok(None);
    }
    let mut p = 2;
    while p < c.len() && is_name_char(c[p]) {
        p += 1;
    }
    let name = text.string(1, p);
    match c.get(p) {
        Some('=') => {
            let v = text.skip_blanks(p + 1);
            Ok(Some((name, text.slice(v, text.len()))))
        }
        Some('(') => {
            let close = text.find(')', p);
            if close.and_then(|k| c.get(k + 1)) == Some(&'=') {
                return Err(ConfigError::invalid(
                    &text.loc(0),
                    format!("'${name}(...)=' is not a definition: keepalived has no parameterised definitions (only the built-in ${{_RANDOM MIN MAX}} and ${{_ENV NAME}} take parameters), and would read this line as a keyword"),
                ));
            }
            Ok(None)
        }
        Some(&b) if is_space(b) => {
            let q = text.skip_blanks(p);
            if c.get(q) == Some(&'=') {
                return Err(ConfigError::invalid(
                    &text.loc(p),
                    format!("'${name} =' is not a definition: keepalived allows no blank before '=' (write '${name}=...')"),
                ));
            }
            Ok(None)
        }
        _ => Ok(None),
    }
}

/// The first non-ASCII blank outside double quotes and before a comment.
fn odd_space(t: &Text) -> Option<(usize, char)> {
    let mut quote = false;
    let mut k = 0;
    while k < t.len() {
        match t.chars[k] {
            '\\' => k += 1,
            '"' => quote = !quote,
            '#' | '!' if !quote => return None,
            c if !quote && !c.is_ascii() && is_space(c) => return Some((k, c)),
            _ => {}
        }
        k += 1;
    }
    None
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().map(|d| d.join(p)).unwrap_or_else(|_| p.to_path_buf())
    }
}

/// The configuration at `path` after the line layer: conditional lines
/// resolved, definitions substituted, sequences replicated and includes
/// inlined, each run of lines preceded by `# from FILE:LINE` naming the line
/// it came from. Blocks are indented by their depth. `#` and `!` that are
/// values are written `\#` and `\!`, so the text reads back the same.
pub fn expand(path: &Path, opts: Options) -> Result<String, ConfigError> {
    let mut out = String::new();
    let mut last: Option<(Arc<Path>, u32)> = None;
    let mut depth: usize = 0;
    let mut sink = |t: Text, home: &Home| -> Result<(), ConfigError> {
        let same_file = last.as_ref().is_some_and(|(f, _)| **f == *home.file);
        let follows = same_file && last.as_ref().is_some_and(|(_, l)| *l == home.line || *l + 1 == home.line);
        if !follows {
            out.push_str(&format!("# from {}:{}\n", home.file.display(), home.line));
        }
        last = Some((home.file.clone(), home.line));
        let line = escape_comments(&t);
        let closes = line.starts_with('}');
        let indent = if closes { depth.saturating_sub(1) } else { depth };
        out.push_str(&"    ".repeat(indent));
        out.push_str(&line);
        out.push('\n');
        depth = usize::try_from((i64::try_from(depth).unwrap_or(0) + brace_balance(&t)).max(0)).unwrap_or(0);
        Ok(())
    };
    {
        let mut pre = Preprocessor::new(opts, &mut sink);
        pre.read_file(path, None)?;
    }
    Ok(out)
}

/// The line with `#` and `!` outside double quotes escaped.
fn escape_comments(t: &Text) -> String {
    let mut s = String::with_capacity(t.len());
    let mut quote = false;
    let mut k = 0;
    while k < t.len() {
        let c = t.chars[k];
        match c {
            '\\' => {
                s.push(c);
                if let Some(&n) = t.chars.get(k + 1) {
                    s.push(n);
                }
                k += 2;
                continue;
            }
            '"' => quote = !quote,
            '#' | '!' if !quote => s.push('\\'),
            _ => {}
        }
        s.push(c);
        k += 1;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: &str, src: &str) -> Result<Vec<String>, ConfigError> {
        let mut lines = Vec::new();
        let mut sink = |t: Text, _: &Home| {
            lines.push(t.to_string());
            Ok(())
        };
        let mut p = Preprocessor::new(Options::with_config_id(id), &mut sink);
        p.read_str(Arc::from(Path::new("p.conf")), src)?;
        drop(p);
        Ok(lines)
    }

    fn text(s: &str) -> Text {
        Text::physical(s, &Arc::from(Path::new("t.conf")), 1, &None)
    }

    #[test]
    fn test_decomment() {
        let d = |s: &str| decomment(&text(s)).expect("decomments").to_string();
        assert_eq!(d("  a b # c"), "a b");
        assert_eq!(d("a \"#x\" ! c"), "a \"#x\"");
        assert_eq!(d("a\\#b \\!"), "a#b !");
        assert_eq!(d("x \\"), "x\\");
        assert_eq!(d("x \\\\"), "x \\\\");
        assert_eq!(d("x # c \\"), "x\\");
        assert_eq!(d("\"a\\\"b\""), "\"a\\\"b\"");
        let e = decomment(&text("a \"b")).expect_err("open quote");
        assert_eq!((e.location().line, e.location().col), (1, 3));
    }

    #[test]
    fn test_reference() {
        let r = |s: &str| reference(&text(s), 0).map(|r| (r.name, r.params, r.end));
        assert_eq!(r("$A b"), Some(("A".into(), vec![], 2)));
        assert_eq!(r("$A,"), Some(("A".into(), vec![], 2)));
        assert_eq!(r("$A.b"), None);
        assert_eq!(r("${A}.b"), Some(("A".into(), vec![], 4)));
        assert_eq!(r("${_RANDOM 1 9}x"), Some(("_RANDOM".into(), vec!["1".into(), "9".into()], 14)));
        assert_eq!(r("${A 1 }"), None);
        assert_eq!(r("$1"), None);
    }

    #[test]
    fn test_strtol() {
        let s = |x: &str| strtol(&x.chars().collect::<Vec<_>>(), 0);
        assert_eq!(s(" 12,"), (Some(12), 3));
        assert_eq!(s("0x1f)"), (Some(31), 4));
        assert_eq!(s("010"), (Some(8), 3));
        assert_eq!(s("-3"), (Some(-3), 2));
        assert_eq!(s("a"), (Some(0), 0));
    }

    #[test]
    fn test_sequences_follow_keepalived() {
        let l = run("x", "~SEQ(N, 3) a$N\n~SEQ(K, 0) k$K\n~SEQ(J, -2) j$J\n~SEQ(I, 5, 2, 9) i$I\n~SEQx(H, 9, 2, 0xc) h$H\n")
            .expect("expands");
        assert_eq!(l, ["a1", "a2", "a3", "k1", "k0", "j-1", "j-2", "i5", "i7", "i9", "h9", "hb"]);
        let l = run("x", "~LST({A,B}, {1,2},{3}) ${A}_${B}\n~LST(C, x, y) ~SEQ(D,2) ${C}$D\n").expect("expands");
        assert_eq!(l, ["1_2", "3_", "x1", "x2", "y1", "y2"]);
    }

    #[test]
    fn test_definitions_are_substituted_when_used() {
        let l = run("x", "$B=10.2.${SUB}\n$SUB=0\n${B}.1\n$SUB=10\n${B}.1\n$E=\n[$E ]\n").expect("expands");
        assert_eq!(l, ["10.2.0.1", "10.2.10.1", "[ ]"]);
    }

    #[test]
    fn test_conditional_from_a_definition() {
        assert_eq!(run("main", "$IF=@main\n$IF a\n").expect("expands"), ["a"]);
        assert!(run("other", "$IF=@main\n$IF a\n").expect("expands").is_empty());
    }

    #[test]
    fn test_builtins() {
        let path = std::env::var("PATH").unwrap_or_default();
        assert_eq!(run("n1", "x ${_ENV PATH}\n").expect("expands"), [format!("x {path}")]);
        assert_eq!(run("n1", "${_INSTANCE} \"${_HASH}${_BANG}\" ${_HASH}\n").expect("expands"), ["n1 \"#!\""]);
        let r: u32 = run("n1", "${_RANDOM}\n").expect("expands")[0].parse().expect("a number");
        assert!(r <= 32767);
        // A definition of the same name replaces a built-in.
        assert_eq!(run("n1", "$_INSTANCE=mine\n${_INSTANCE}\n").expect("expands"), ["mine"]);
    }

    #[test]
    fn test_value_starting_with_tilde_is_a_sequence() {
        // The sequence variable is not substituted before the ~SEQ runs.
        assert_eq!(run("x", "$S=~SEQ(N, 2)\n$S a$N\n").expect("expands"), ["a1", "a2"]);
    }

    #[test]
    fn test_multi_line_value_ends_its_line_only() {
        let src = "$M= \\\na \\\nb\n\n$M x\n";
        let e = run("x", src).expect_err("mid-line");
        assert!(e.to_string().contains("$M is a multi-line definition"), "{e}");
        assert_eq!(run("x", "$M= \\\na \\\nb\n\npre $M\n").expect("expands"), ["pre a", "b"]);
    }

    #[test]
    fn test_odd_input_never_panics() {
        let samples = [
            "$", "$ ", "${", "${}", "${A", "$A=", "$A=\\", "$A(=", "$A()", "$A)=", "~", "~SEQ", "~SEQ(", "~SEQ()", "~SEQ(N",
            "~SEQ(N,", "~SEQ(N,)", "~SEQx(N,0x)", "~SEQ(N, 9223372036854775807) x", "~SEQ(N, -9223372036854775808, 1)",
            "~SEQ(N, 1, -9223372036854775807, -9223372036854775807)", "~LST", "~LST(", "~LST({", "~LST({A", "~LST({A}",
            "~LST({A},", "~LST({A},{", "~LST(A,)", "~LST(A,{})", "@", "@^", "@ ", "@^ x", "\\", "\"", "'", "include",
            "include ", "include {", "include {a,{b}", "include_check", "include_check +", "include_check -match x",
            "$A=$B\n$B=$A\n$A", "$M= \\\n$M\n\n$M", "\u{a0}$A\u{a0}=1",
        ];
        for s in samples {
            let _ = run("x", s);
        }
    }

    #[test]
    fn test_self_reference_is_an_error() {
        let e = run("x", "$A=$A\n$A\n").expect_err("loops");
        assert!(e.to_string().contains("(a definition that uses itself?)"), "{e}");
    }
}
