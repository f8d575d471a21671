//! What every aggregate's commands share on the command line: execute a
//! domain command and report the new state in one line, or show the state
//! (now or at a past version) as aligned fields or JSON.

use anyhow::{Context, bail};
use logbook::Repository;
use logbook_domain::Aggregate;
use logbook_ports::Stores;

use super::ShowArgs;

/// How an aggregate presents itself on the command line.
pub trait Presented: Aggregate {
    /// The noun users type and read: `account`, `ship`, `user`.
    const NOUN: &'static str;

    /// Named fields, in display order; values as JSON so `--json` and the
    /// aligned text agree.
    fn fields(&self) -> Vec<(&'static str, serde_json::Value)>;
}

/// Executes `command` on `id` and prints the state it leads to.
pub async fn execute<A: Presented>(
    stores: &Stores,
    id: &str,
    command: A::Command,
) -> anyhow::Result<()> {
    execute_quietly::<A>(stores, id, command)
        .await
        .map(|summary| println!("{summary}"))
}

/// Creates aggregate `id` with `command` and prints only the id, for scripts
/// (`id=$(logbook ship register "Pacific Explorer")`).
pub async fn create<A: Presented>(
    stores: &Stores,
    id: &str,
    command: A::Command,
) -> anyhow::Result<()> {
    execute_quietly::<A>(stores, id, command)
        .await
        .map(|_| println!("{id}"))
}

async fn execute_quietly<A: Presented>(
    stores: &Stores,
    id: &str,
    command: A::Command,
) -> anyhow::Result<String> {
    let repository = Repository::<A>::new(stores);
    let done = repository
        .execute(id, &command)
        .await
        .with_context(|| format!("{} {id}", A::NOUN))?;
    let fields: Vec<String> = done
        .state
        .fields()
        .into_iter()
        .map(|(name, value)| format!("{name} {}", plain(&value)))
        .collect();
    Ok(format!(
        "{} {id}: {}, version {}",
        A::NOUN,
        fields.join(", "),
        done.version
    ))
}

/// Prints the state of `args.id`: now, just after a version, or as of a time.
pub async fn show<A: Presented>(stores: &Stores, args: &ShowArgs) -> anyhow::Result<()> {
    let (id, json) = (args.id.as_str(), args.json);
    let repository = Repository::<A>::new(stores);
    let loaded = match (args.at_version, args.at) {
        (Some(version), _) => repository.load_at_version(id, version).await,
        (None, Some(at)) => repository.load_at_time(id, at).await,
        (None, None) => repository.load(id).await,
    }
    .with_context(|| format!("{} {id}", A::NOUN))?;
    if loaded.version == 0 {
        match (args.at_version, args.at) {
            (None, None) => bail!("{} {id} does not exist", A::NOUN),
            _ => bail!("{} {id} did not exist yet at that point", A::NOUN),
        }
    }
    let mut fields = vec![(A::NOUN, serde_json::Value::from(id))];
    fields.extend(loaded.state.fields());
    fields.push(("version", loaded.version.into()));
    if json {
        let object: serde_json::Map<String, serde_json::Value> = fields
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect();
        println!("{}", serde_json::Value::Object(object));
    } else {
        let width = fields.iter().map(|(name, _)| name.len()).max().unwrap_or(0) + 1;
        for (name, value) in fields {
            println!("{:<width$} {}", format!("{name}:"), plain(&value));
        }
    }
    Ok(())
}

/// A JSON value as a person reads it: strings without quotes.
fn plain(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Deletes `id` (a tombstone; its events stay in the global log).
pub async fn delete<A: Presented>(stores: &Stores, id: &str) -> anyhow::Result<()> {
    let version = Repository::<A>::new(stores)
        .delete(id)
        .await
        .with_context(|| format!("{} {id}", A::NOUN))?;
    println!(
        "{} {id} deleted (tombstone at version {version}; its events stay in the global log)",
        A::NOUN
    );
    Ok(())
}
