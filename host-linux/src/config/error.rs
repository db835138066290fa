//! Locations, errors and warnings of the configuration loader.
//!
//! Every error and every warning carries a [`Location`] and displays as
//! `FILE:LINE:COL: message`, the form editors and `grep -n` understand.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A position in a configuration file: 1-based line and column (columns count
/// characters, not bytes). Line 0 means "the file as a whole".
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    /// The file, as it was named to the loader (the root file) or as the
    /// include directive resolved it.
    pub file: Arc<Path>,
    /// 1-based line number; 0 when the location is the whole file.
    pub line: u32,
    /// 1-based column, in characters.
    pub col: u32,
}

impl Location {
    /// A location at `line:col` of `file`.
    pub fn new(file: Arc<Path>, line: u32, col: u32) -> Self {
        Location { file, line, col }
    }

    /// A location naming a whole file (displayed without line and column).
    pub fn file(file: Arc<Path>) -> Self {
        Location { file, line: 0, col: 0 }
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
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Why a configuration could not be loaded. Displays as
/// `FILE:LINE:COL: message`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A syntax error, a bad value, a missing value or a failed semantic check.
    #[error("{at}: {message}")]
    Invalid {
        /// Where.
        at: Location,
        /// What, for a human.
        message: String,
    },
    /// A keyword that keepalived does not know in this block either (a typo).
    #[error("{at}: unknown keyword '{keyword}' in {block}{}", did_you_mean(.suggestion))]
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
    #[error("{at}: cannot read '{}': {source}", .path.display())]
    Io {
        /// The include directive, or the root file itself.
        at: Location,
        /// The file that could not be read.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// An `include` that leads back to a file that is already being read.
    #[error("{at}: include cycle: {chain}")]
    IncludeCycle {
        /// The include directive that closes the cycle.
        at: Location,
        /// The files of the cycle, `a -> b -> a`.
        chain: String,
    },
    /// Includes nested deeper than [`MAX_INCLUDE_DEPTH`](super::MAX_INCLUDE_DEPTH).
    #[error("{at}: includes nested deeper than {limit} levels")]
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
