//! `.lightsout/tuning.json`: the defaults promotions have set, per task kind.
//!
//! Only [`Bandit::promotion`](crate::select::Bandit::promotion) decides a promotion; this file
//! remembers it, with the probability it was promoted on. It holds variant names and nothing
//! else: no setting of the holdout, gate, budgets or fence can be written here.

use crate::Error;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

/// One kind's promoted default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Promoted {
    /// The variant now the default.
    pub variant: String,
    /// The variant it replaced.
    pub replaced: String,
    /// Its posterior probability of being best when promoted, in `0..=1`.
    pub p_best: f64,
    /// Its first attempts on the kind when promoted.
    pub first_attempts: u32,
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TuningState {
    /// Task kind → promoted default.
    pub defaults: BTreeMap<String, Promoted>,
}

impl TuningState {
    /// Reads `path`; a missing file is the empty state.
    ///
    /// # Errors
    /// [`Error::Io`] when it cannot be read, [`Error::State`] when it is not a tuning state.
    pub fn load(path: &Path) -> Result<Self, Error> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| Error::State {
                path: path.to_path_buf(),
                message: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(Error::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Writes `path` atomically (a temporary file in the same directory, fsynced, renamed).
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be written.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        let mut bytes = serde_json::to_vec_pretty(self).map_err(|e| io(e.into()))?;
        bytes.push(b'\n');
        tmp.write_all(&bytes).map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(path).map_err(|e| io(e.error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_then_load_and_missing_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/tuning.json");
        assert_eq!(TuningState::load(&p).unwrap(), TuningState::default());
        let mut s = TuningState::default();
        s.defaults.insert(
            "code".into(),
            Promoted {
                variant: "b".into(),
                replaced: "a".into(),
                p_best: 0.97,
                first_attempts: 40,
            },
        );
        s.save(&p).unwrap();
        assert_eq!(TuningState::load(&p).unwrap(), s);
        std::fs::write(&p, r#"{"defaults":{},"budget":{"usd":100}}"#).unwrap();
        assert!(matches!(TuningState::load(&p), Err(Error::State { .. })));
    }
}
