//! What every aggregate's commands share on the command line: execute a
//! domain command and report the new state in one line, or show the state
//! (now or at a past version) as aligned fields or JSON.

use anyhow::Context;
use logbook::Repository;
use logbook::registry::{At, ExecError, RegisteredAggregate, Registration};
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

/// Executes `command` on `id` and prints the state it leads to: one line,
/// or with `--json` the object `show --json` prints.
pub async fn execute<A: Presented>(
    stores: &Stores,
    id: &str,
    command: A::Command,
) -> anyhow::Result<()> {
    run::<A>(stores, id, command, false).await
}

/// Creates aggregate `id` with `command` and prints only the id, for scripts
/// (`id=$(logbook ship register "Pacific Explorer")`); with `--json`, the
/// object `show --json` prints.
pub async fn create<A: Presented>(
    stores: &Stores,
    id: &str,
    command: A::Command,
) -> anyhow::Result<()> {
    run::<A>(stores, id, command, true).await
}

async fn run<A: Presented>(
    stores: &Stores,
    id: &str,
    command: A::Command,
    only_the_id: bool,
) -> anyhow::Result<()> {
    let (state, version) = execute_quietly::<A>(stores, id, command).await?;
    if crate::output::json() {
        crate::output::json_line(&state_object(id, &state, version));
    } else if only_the_id {
        say!("{id}");
    } else {
        let fields: Vec<String> = state
            .fields()
            .into_iter()
            .map(|(name, value)| format!("{name} {}", plain(&value)))
            .collect();
        say!("{} {id}: {}, version {version}", A::NOUN, fields.join(", "));
    }
    Ok(())
}

async fn execute_quietly<A: Presented>(
    stores: &Stores,
    id: &str,
    command: A::Command,
) -> anyhow::Result<(A, u64)> {
    let done = Repository::<A>::new(stores)
        .execute(id, &command)
        .await
        .with_context(|| format!("{} {}", A::NOUN, id.escape_debug()))?;
    Ok((done.state, done.version))
}

/// The JSON object of an aggregate's state: its noun and id, its fields, its
/// version.
fn state_object<A: Presented>(id: &str, state: &A, version: u64) -> serde_json::Value {
    let mut object = serde_json::Map::new();
    object.insert(A::NOUN.to_owned(), id.into());
    for (name, value) in state.fields() {
        object.insert(name.to_owned(), value);
    }
    object.insert("version".to_owned(), version.into());
    serde_json::Value::Object(object)
}

/// Prints the state of `args.id`: now, just after a version, or as of a time.
/// The registry's rules decide what exists when (a version past the stream's
/// end is an error naming the stream's version).
pub async fn show<A>(stores: &Stores, args: &ShowArgs) -> anyhow::Result<()>
where
    A: Presented,
    A::Command: serde::de::DeserializeOwned + serde::Serialize,
{
    let (id, json) = (args.id.as_str(), crate::output::json());
    let at = match (args.at_version, args.at) {
        (Some(version), _) => At::Version(version),
        (None, Some(time)) => At::Time(time),
        (None, None) => At::Latest,
    };
    let shown = Registration::<A>::default()
        .state(stores, id, at)
        .await
        .map_err(|error| match error {
            // "BankAccount acc_001 does not exist" in the aggregate's own
            // noun: "account acc_001 does not exist".
            ExecError::NotFound {
                at_a_past_point, ..
            } => anyhow::anyhow!(
                "{} {id} {}",
                A::NOUN,
                if at_a_past_point {
                    "did not exist yet at that point"
                } else {
                    "does not exist"
                }
            ),
            other => other.into(),
        })?;
    let state: A = serde_json::from_value(shown.state)?;
    if json {
        crate::output::json_line(&state_object(id, &state, shown.version));
    } else {
        let mut fields = vec![(A::NOUN, serde_json::Value::from(id))];
        fields.extend(state.fields());
        fields.push(("version", shown.version.into()));
        let width = fields.iter().map(|(name, _)| name.len()).max().unwrap_or(0) + 1;
        for (name, value) in fields {
            say!("{:<width$} {}", format!("{name}:"), plain(&value));
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
        .with_context(|| format!("{} {}", A::NOUN, id.escape_debug()))?;
    if crate::output::json() {
        crate::output::json_line(&serde_json::json!({
            A::NOUN: id,
            "deleted": true,
            "tombstone_version": version,
        }));
    } else {
        say!(
            "{} {id} deleted (tombstone at version {version}; its events stay in the global log)",
            A::NOUN
        );
    }
    Ok(())
}
