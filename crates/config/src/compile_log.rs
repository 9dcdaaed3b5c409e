//! `[log]`: where the access log goes (and how a file of it rotates), and
//! the level of diagnostic logs.

use super::Cx;
use crate::model::{AccessLog, Log, LogFile, Rotation};
use crate::raw::{RawLog, S};

impl Cx<'_> {
    pub(super) fn log(&mut self, raw: &RawLog) -> Log {
        let access = match &raw.access {
            None => AccessLog::Stdout,
            Some(v) => match self.string(v).as_deref() {
                Some("off") => AccessLog::Off,
                Some("stdout") | None => AccessLog::Stdout,
                Some("stderr") => AccessLog::Stderr,
                Some(_) => AccessLog::File(self.log_file(v, raw)),
            },
        };
        if !matches!(access, AccessLog::File(_)) {
            for (set, what) in [
                (raw.access_rotation.as_ref().map(S::span), "access_rotation"),
                (
                    raw.access_max_files.as_ref().map(S::span),
                    "access_max_files",
                ),
            ] {
                if let Some(span) = set {
                    self.error(
                        span,
                        format!("{what} needs a file access log (access = \"path\")"),
                    );
                }
            }
        }
        let level = raw
            .level
            .as_ref()
            .and_then(|v| self.string(v))
            .unwrap_or_else(|| "info".into());
        Log { access, level }
    }

    fn log_file(&mut self, path: &S<String>, raw: &RawLog) -> LogFile {
        let rotation = match &raw.access_rotation {
            None => Rotation::Never,
            Some(v) => match self.string(v).as_deref() {
                Some("never") | None => Rotation::Never,
                Some("minutely") => Rotation::Minutely,
                Some("hourly") => Rotation::Hourly,
                Some("daily") => Rotation::Daily,
                Some(other) => {
                    self.error(
                        v.span(),
                        format!("access_rotation must be never, minutely, hourly or daily (got {other:?})"),
                    );
                    Rotation::Never
                }
            },
        };
        let max_files = raw
            .access_max_files
            .is_some()
            .then(|| self.int(&raw.access_max_files, 7, 1..100_001, "access_max_files") as usize);
        if let Some(v) = &raw.access_max_files
            && rotation == Rotation::Never
        {
            self.error(v.span(), "access_max_files needs access_rotation");
        }
        LogFile {
            path: self.file_path(path),
            rotation,
            max_files,
        }
    }
}
