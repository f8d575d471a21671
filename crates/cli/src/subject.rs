//! `logbook subject ...`: data subjects' keys and the master key that seals
//! them (see docs/personal-data.md).

use std::path::PathBuf;
use std::sync::Arc;

use clap::Subcommand;
use logbook::StoreUrl;
use logbook::personal::{Keyring, MasterKey, shred_subject};
use logbook_domain::SubjectId;

/// Subcommands of `logbook subject`.
#[derive(Debug, Subcommand)]
pub enum SubjectCommand {
    /// Destroy a subject's key: their personal fields read as "[shredded]"
    /// from now on; records SubjectShredded (no master key needed).
    Shred {
        /// The subject, e.g. user-<wallet id>.
        subject: SubjectId,
    },
    /// Seal every subject key with a new master key (the current one must
    /// be configured); safe to run again.
    RotateMasterKey {
        /// File holding the new master key (from `subject new-master-key`).
        #[arg(long, value_name = "PATH")]
        new_key_file: PathBuf,
    },
    /// Print a fresh random master key (64 hex digits) for a key file or
    /// LOGBOOK_MASTER_KEY; keep it secret and back it up apart from the store.
    NewMasterKey,
}

pub async fn run(url: &StoreUrl, command: SubjectCommand) -> anyhow::Result<()> {
    match command {
        SubjectCommand::NewMasterKey => {
            let key = MasterKey::generate();
            if crate::output::json() {
                crate::output::json_line(&serde_json::json!({ "master_key": key.to_hex() }));
            } else {
                say!("{}", key.to_hex());
            }
        }
        SubjectCommand::Shred { subject } => {
            let stores = url.open()?;
            let done = shred_subject(&stores, &subject).await?;
            if crate::output::json() {
                crate::output::json_line(&serde_json::json!({
                    "subject": done.subject,
                    "already_shredded": done.already,
                    "position": done.position,
                }));
            } else if done.already {
                say!("subject {subject} was shredded already");
            } else {
                say!("subject {subject} shredded: its personal data reads as \"[shredded]\"");
            }
        }
        SubjectCommand::RotateMasterKey { new_key_file } => {
            let new = MasterKey::from_file(&new_key_file)?;
            let stores = url.open()?;
            let keyring = Keyring::for_process(Arc::clone(&stores.subject_keys));
            let rotation = keyring.rotate_master_key(&new).await?;
            if crate::output::json() {
                crate::output::json_line(&serde_json::json!({
                    "rewrapped": rotation.rewrapped,
                    "already_new": rotation.already_new,
                    "shredded": rotation.shredded,
                }));
            } else {
                say!(
                    "{} keys sealed with the new master key ({} were already, {} shredded); configure it, then destroy the old one",
                    rotation.rewrapped,
                    rotation.already_new,
                    rotation.shredded
                );
            }
        }
    }
    Ok(())
}
