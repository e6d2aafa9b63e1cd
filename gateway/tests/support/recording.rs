//! A handler that leaves one line per call in a file, so a test knows which requests
//! reached a worker, and what the worker was told, from the worker's side.

use std::path::{Path, PathBuf};

/// A Python handler that appends `line` (a Python expression of `event`) to the file its
/// `CALLS` env names, one line per call, then answers 200 `ok`.
pub fn recording_py(line: &str) -> String {
    format!(
        "def handler(event):\n    with open(event[\"env\"][\"CALLS\"], \"a\") as f:\n        \
         f.write({line} + \"\\n\")\n    return {{\"status\": 200, \"body\": \"ok\"}}\n"
    )
}

/// The file recording handlers append to, in a folder of its own (a test may keep its
/// config files there too).
pub struct Calls {
    dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl Calls {
    pub fn new() -> Calls {
        let dir = super::tempdir();
        let path = dir.path().join("calls.log");
        Calls { dir, path }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What a handler's `CALLS` env is set to.
    pub fn env_value(&self) -> &str {
        self.path.to_str().unwrap()
    }

    /// Every line recorded so far.
    pub fn lines(&self) -> Vec<String> {
        lines(&self.path)
    }
}

/// The lines of a file handlers append to; none before the first call.
pub fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}
