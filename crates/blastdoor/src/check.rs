//! `blastdoor check`: compile the config exactly as `serve` would.

use std::path::Path;
use std::process::ExitCode;

pub fn run(path: &Path) -> ExitCode {
    match blastdoor_config::load(path) {
        Ok(config) => {
            println!(
                "{}: ok ({} services)",
                path.display(),
                config.services.len()
            );
            ExitCode::SUCCESS
        }
        Err(diags) => {
            for d in diags.iter() {
                eprintln!("{d}");
            }
            let n = diags.len();
            eprintln!("{n} problem{} found", if n == 1 { "" } else { "s" });
            ExitCode::FAILURE
        }
    }
}
