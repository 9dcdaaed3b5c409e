//! `blastdoor audit`: the admin actions log, newest first (the same data as
//! `/v1/audit`).

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use blastdoor_store::{AuditStore, now_ms};

pub fn command(config_path: &Path, since: Option<Duration>, limit: u32) -> Result<()> {
    crate::store::with_store(config_path, async |_, store| {
        let from = since.map_or(0, |d| {
            now_ms().saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        });
        let entries = store.list_audit(from, limit).await?;
        println!(
            "{:<24} {:<16} {:<14} {:<30} OUTCOME",
            "TIME", "ACTOR", "ACTION", "TARGET"
        );
        for e in entries {
            let at =
                std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(e.at).unwrap_or(0));
            let when = humantime::format_rfc3339_seconds(at);
            println!(
                "{:<24} {:<16} {:<14} {:<30} {}",
                when, e.actor, e.action, e.target, e.outcome
            );
        }
        Ok(())
    })
}
