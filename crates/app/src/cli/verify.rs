//! `logbook verify`: walk a store and report its events, streams (and for a
//! file store its segments) and the first corruption found; exit 1 when
//! there is one. Nothing is written: a file store is checked without its
//! write lock and a torn tail is reported, not cut.

use anyhow::bail;
use logbook::StoreUrl;
use logbook::verify::walk;

pub async fn run(url: &StoreUrl) -> anyhow::Result<()> {
    let stores = match url {
        StoreUrl::File(dir) => {
            if !dir.is_dir() {
                bail!("no file store at {}", dir.display());
            }
            let walked = dir.clone();
            let report =
                tokio::task::spawn_blocking(move || logbook_adapters_file::verify(&walked))
                    .await??;
            println!("{report}");
            if let Some(corruption) = &report.corruption {
                bail!("store {url} is corrupt: {corruption}");
            }
            logbook_adapters_file::FileStore::open_read_only(dir)?.stores()
        }
        StoreUrl::Sqlite(path) if !path.is_file() => {
            bail!("no SQLite database at {}", path.display())
        }
        _ => url.open()?,
    };
    let report = walk(&*stores.events).await?;
    println!("{report}");
    match report.problem {
        Some(problem) => bail!("store {url} breaks the log's rules: {problem}"),
        None => {
            println!("store {url} verified");
            Ok(())
        }
    }
}
