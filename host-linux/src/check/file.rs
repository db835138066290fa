//! FILE_CHECK: the number in a `vrrp_track_file`'s file, times the weight (the checker's, else the
//! track file's), adjusts the real server's weight; a result below 0 is down. With weight 0, a
//! non-zero value is down and 0 is up. A missing or unreadable file is down; text that is not a
//! number counts as 0. The file is read at every `delay_loop`.

use super::{ProbeError, Verdict};
use crate::config::check::FileCheck;
use crate::config::TrackFileDef;

/// A FILE_CHECK resolved against its `vrrp_track_file`.
#[derive(Debug)]
pub(crate) struct FileProbe {
    name: String,
    path: Option<String>,
    weight: i64,
}

impl FileProbe {
    pub(crate) fn new(f: &FileCheck, def: Option<&TrackFileDef>) -> FileProbe {
        let (w, reverse) = match (f.weight, def) {
            (Some(w), _) => (w, f.reverse),
            (None, Some(d)) => (d.weight, d.reverse),
            (None, None) => (1, false),
        };
        let w = i64::from(w);
        FileProbe { name: f.track_file.clone(), path: def.map(|d| d.file.clone()), weight: if reverse { -w } else { w } }
    }

    pub(super) async fn check(&self) -> Result<Verdict, ProbeError> {
        let Some(path) = &self.path else {
            return Err(format!("track file '{}' is not defined", self.name).into());
        };
        let text = tokio::fs::read_to_string(path).await.map_err(|e| ProbeError::io(path, e))?;
        let value: i64 = text.split_whitespace().next().and_then(|t| t.parse().ok()).unwrap_or(0);
        if self.weight == 0 {
            return if value == 0 { Ok(Verdict::Up) } else { Err(format!("{path}: value {value}").into()) };
        }
        let delta = value.saturating_mul(self.weight);
        Ok(Verdict::Delta(delta))
    }
}
