//! `logbook verify`: walk a store and report its events, streams (and for a
//! file store its segments) and the first corruption found; exit 1 when
//! there is one. Nothing is written: the library's [`verify_store`] reads a
//! file store without its write lock and reports a torn tail, not cuts it.

use anyhow::bail;
use logbook::StoreUrl;
use logbook::verify::verify_store;

use crate::progress::Reporter;

pub async fn run(url: &StoreUrl) -> anyhow::Result<()> {
    let mut report = Reporter::new("verify", "events");
    let verification = verify_store(url, &mut |p| report.update(p.done, p.total)).await?;
    report.finish();
    if crate::output::json() {
        crate::output::json_line(&serde_json::json!({
            "store": url.to_string(),
            "verified": verification.is_ok(),
            "problem": verification.problem(),
            "corruption": verification.corruption,
            "walk": verification.walk,
        }));
        if let Some(problem) = verification.problem() {
            bail!("store {url} is not sound: {problem}");
        }
        return Ok(());
    }
    if let Some(byte_level) = &verification.byte_level {
        say!("{byte_level}");
    }
    if let Some(corruption) = &verification.corruption {
        bail!("store {url} is corrupt: {corruption}");
    }
    if let Some(walk) = &verification.walk {
        say!("{walk}");
    }
    match verification.problem() {
        Some(problem) => bail!("store {url} breaks the log's rules: {problem}"),
        None => {
            say!("store {url} verified");
            Ok(())
        }
    }
}
