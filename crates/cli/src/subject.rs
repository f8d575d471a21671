//! `logbook subject ...`: data subjects' keys and the master key that seals
//! them (see docs/personal-data.md).

use clap::Subcommand;
use logbook::personal::MasterKey;

/// Subcommands of `logbook subject`.
#[derive(Debug, Subcommand)]
pub enum SubjectCommand {
    /// Print a fresh random master key (64 hex digits) for a key file or
    /// LOGBOOK_MASTER_KEY; keep it secret and back it up apart from the store.
    NewMasterKey,
}

pub async fn run(command: SubjectCommand) -> anyhow::Result<()> {
    match command {
        SubjectCommand::NewMasterKey => {
            let key = MasterKey::generate();
            if crate::output::json() {
                crate::output::json_line(&serde_json::json!({ "master_key": key.to_hex() }));
            } else {
                say!("{}", key.to_hex());
            }
            Ok(())
        }
    }
}
