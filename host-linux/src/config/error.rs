//! Locations, errors and warnings of the configuration loader.
//!
//! Every error and every warning carries a [`Location`] and displays as
//! `FILE:LINE:COL: message`, the form editors and `grep -n` understand.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A position in a configuration file: 1-based line and column (columns count
/// characters, not bytes). Line 0 means "the file as a whole".
///
/// Text that reached the parser through an `include`, a `$NAME` definition or
/// a `~SEQ`/`~LST` line also says how ([`Location::via`]); a location
/// displays as `FILE:LINE:COL` alone, and errors and warnings add the way
/// there after their message (see [`Location::trail`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    /// The file, as it was named to the loader (the root file) or as the
    /// include directive resolved it.
    pub file: Arc<Path>,
    /// 1-based line number; 0 when the location is the whole file.
    pub line: u32,
    /// 1-based column, in characters.
    pub col: u32,
    /// How the text here came to be read, when not as a plain line of the
    /// root file.
    pub via: Option<Arc<Via>>,
}

/// How text came to be read: the last step (the nearest `include`,
/// definition or sequence); the step's own location carries the one before.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Via {
    /// The file was read for the `include` at this location.
    Include(Location),
    /// The text is part of the value of `$name`, substituted at `at`.
    Definition {
        /// The definition's name.
        name: String,
        /// Where `$name` was substituted.
        at: Location,
    },
    /// The line was replicated by a `~SEQ` or `~LST`; this is the round
    /// with `values`.
    Sequence {
        /// `~SEQ` or `~LST`.
        what: String,
        /// The variables and their values in this round (`N=3`, `A=1 B=2`).
        values: String,
        /// Where the `~SEQ` / `~LST` is.
        at: Location,
    },
}

impl Location {
    /// A location at `line:col` of `file`.
    pub fn new(file: Arc<Path>, line: u32, col: u32) -> Self {
        Location { file, line, col, via: None }
    }

    /// A location naming a whole file (displayed without line and column).
    pub fn file(file: Arc<Path>) -> Self {
        Location { file, line: 0, col: 0, via: None }
    }

    /// This location, reached by `via`.
    pub fn with_via(mut self, via: Option<Arc<Via>>) -> Self {
        self.via = via;
        self
    }

    /// The way to this location, for a human: empty for a plain line of the
    /// root file, else ` (in $NAME substituted at FILE:LINE:COL, in a file
    /// included from FILE:LINE:COL)`, nearest step first.
    pub fn trail(&self) -> String {
        let mut steps = Vec::new();
        let mut next = self.via.as_deref();
        while let Some(via) = next {
            // A chain of includes deeper than MAX_INCLUDE_DEPTH cannot be
            // built, and definitions nest no deeper than their expansion
            // limit; the bound only keeps a message readable.
            if steps.len() == 8 {
                steps.push("...".to_string());
                break;
            }
            match via {
                Via::Include(at) => {
                    steps.push(format!("in a file included from {at}"));
                    next = at.via.as_deref();
                }
                Via::Definition { name, at } => {
                    steps.push(format!("in ${name} substituted at {at}"));
                    next = at.via.as_deref();
                }
                Via::Sequence { what, values, at } => {
                    steps.push(format!("with {values} from the {what} at {at}"));
                    next = at.via.as_deref();
                }
            }
        }
        if steps.is_empty() {
            String::new()
        } else {
            format!(" ({})", steps.join(", "))
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file.display())
        } else {
            write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
        }
    }
}

/// A problem that does not stop the configuration from loading: an accepted
/// keyword hav does not act on, a value that was adjusted, a non-breaking
/// space. Displays as `FILE:LINE:COL: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Where the problem is.
    pub location: Location,
    /// What the problem is, for a human.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}{}", self.location, self.message, self.location.trail())
    }
}

/// Why a configuration could not be loaded. Displays as
/// `FILE:LINE:COL: message`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A syntax error, a bad value, a missing value or a failed semantic check.
    #[error("{at}: {message}{}", .at.trail())]
    Invalid {
        /// Where.
        at: Location,
        /// What, for a human.
        message: String,
    },
    /// A keyword that keepalived does not know in this block either (a typo).
    #[error("{at}: unknown keyword '{keyword}' in {block}{}{}", did_you_mean(.suggestion), .at.trail())]
    UnknownKeyword {
        /// Where the keyword starts.
        at: Location,
        /// The keyword as written.
        keyword: String,
        /// The enclosing block (`vrrp_instance`, `global_defs`, `top level`...).
        block: String,
        /// The closest known keyword, when one is close enough.
        suggestion: Option<String>,
    },
    /// A file could not be read (the root file, or an `include`).
    #[error("{at}: cannot read '{}': {source}{}", .path.display(), .at.trail())]
    Io {
        /// The include directive, or the root file itself.
        at: Location,
        /// The file that could not be read.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// An `include` that leads back to a file that is already being read.
    #[error("{at}: include cycle: {chain}{}", .at.trail())]
    IncludeCycle {
        /// The include directive that closes the cycle.
        at: Location,
        /// The files of the cycle, `a -> b -> a`.
        chain: String,
    },
    /// Includes nested deeper than [`MAX_INCLUDE_DEPTH`](super::MAX_INCLUDE_DEPTH).
    #[error("{at}: includes nested deeper than {limit} levels{}", .at.trail())]
    IncludeDepth {
        /// The include directive that went one level too deep.
        at: Location,
        /// The limit.
        limit: usize,
    },
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean '{s}'?)"),
        None => String::new(),
    }
}

impl ConfigError {
    /// A located error with a free-form message.
    pub fn invalid(at: &Location, message: impl Into<String>) -> Self {
        ConfigError::Invalid { at: at.clone(), message: message.into() }
    }

    /// Where the error is.
    pub fn location(&self) -> &Location {
        match self {
            ConfigError::Invalid { at, .. }
            | ConfigError::UnknownKeyword { at, .. }
            | ConfigError::Io { at, .. }
            | ConfigError::IncludeCycle { at, .. }
            | ConfigError::IncludeDepth { at, .. } => at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(line: u32, col: u32) -> Location {
        Location::new(Arc::from(Path::new("keepalived.conf")), line, col)
    }

    #[test]
    fn test_display_unknown_keyword() {
        let e = ConfigError::UnknownKeyword {
            at: loc(12, 5),
            keyword: "priorty".into(),
            block: "vrrp_instance".into(),
            suggestion: Some("priority".into()),
        };
        assert_eq!(
            e.to_string(),
            "keepalived.conf:12:5: unknown keyword 'priorty' in vrrp_instance (did you mean 'priority'?)"
        );
    }

    #[test]
    fn test_display_whole_file_and_warning() {
        let w = Warning { location: Location::file(Arc::from(Path::new("a.conf"))), message: "m".into() };
        assert_eq!(w.to_string(), "a.conf: m");
        let w = Warning { location: loc(3, 1), message: "x".into() };
        assert_eq!(w.to_string(), "keepalived.conf:3:1: x");
    }
}
