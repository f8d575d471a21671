//! `logbook verify`: walk a store and report its events, streams (and for a
//! file store its segments) and the first corruption found; exit 1 when
//! there is one. Nothing is written: the library's [`verify_store`] reads a
//! file store without its write lock and reports a torn tail, not cuts it.

use anyhow::bail;
use logbook::StoreUrl;
use logbook::verify::verify_store;

pub async fn run(url: &StoreUrl) -> anyhow::Result<()> {
    let verification = verify_store(url).await?;
    if let Some(byte_level) = &verification.byte_level {
        println!("{byte_level}");
    }
    if let Some(corruption) = &verification.corruption {
        bail!("store {url} is corrupt: {corruption}");
    }
    if let Some(walk) = &verification.walk {
        println!("{walk}");
    }
    match verification.problem() {
        Some(problem) => bail!("store {url} breaks the log's rules: {problem}"),
        None => {
            println!("store {url} verified");
            Ok(())
        }
    }
}
