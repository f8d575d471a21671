//! logbook's chores, run as `cargo xtask <task>`:
//!
//! - `ci`: everything CI checks, stopping at the first failure, one summary
//!   line per step; the tests run against one throwaway PostgreSQL server
//!   started for the run (or the one `LOGBOOK_TEST_POSTGRES_URL` names);
//! - `bench [ARGS]`: the criterion benchmarks of every crate (extra arguments
//!   go to criterion, e.g. a filter);
//! - `bench --compare`: logbook's side of each comparison row run beside its
//!   raw baseline in one sitting (short measurements), then one line per row
//!   with both medians and the ratio;
//! - `deps`: only the dependency-direction check.
//!
//! Deliberately light: std::process and cargo's own JSON, no build scripts.

mod deps;

use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, Result, bail};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("bench") if args.get(1).map(String::as_str) == Some("--compare") => compare(),
        Some("bench") => bench(&args[1..]),
        Some("deps") => deps::check().map(|summary| println!("deps: {summary}")),
        _ => {
            eprintln!("usage: cargo xtask <ci | bench [--compare | CRITERION ARGS] | deps>");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// One step of `ci`: a cargo invocation, or an in-process check.
enum Step {
    Cargo(
        &'static [&'static str],
        &'static [(&'static str, &'static str)],
    ),
    Deps,
}

const CI: &[(&str, Step)] = &[
    ("fmt", Step::Cargo(&["fmt", "--all", "--", "--check"], &[])),
    ("deps", Step::Deps),
    (
        "clippy",
        Step::Cargo(
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--",
                "-D",
                "warnings",
            ],
            &[],
        ),
    ),
    (
        "test",
        Step::Cargo(&["test", "--workspace", "--all-features"], &[]),
    ),
    (
        "doc",
        Step::Cargo(
            &["doc", "--workspace", "--no-deps", "--all-features"],
            &[("RUSTDOCFLAGS", "-D warnings")],
        ),
    ),
    (
        "benches",
        Step::Cargo(&["check", "--workspace", "--benches"], &[]),
    ),
];

/// The PostgreSQL server the tests of this run use: the one named by
/// `LOGBOOK_TEST_POSTGRES_URL`, or a throwaway one started now (stopped
/// and removed when the run ends). Fails in one line when neither can be
/// had: the PostgreSQL tests are never skipped.
fn test_postgres() -> Result<(String, Option<logbook_test_postgres::TestServer>)> {
    if let Ok(url) = std::env::var(logbook_test_postgres::URL_VARIABLE)
        && !url.is_empty()
    {
        return Ok((url, None));
    }
    let server = logbook_test_postgres::TestServer::start()
        .context("cannot start a PostgreSQL server for the tests")?;
    Ok((server.url(), Some(server)))
}

fn ci() -> Result<()> {
    let started = Instant::now();
    let (postgres_url, _server) = test_postgres()?;
    println!("ci: postgres {postgres_url}");
    let postgres_env = [(logbook_test_postgres::URL_VARIABLE, postgres_url.as_str())];
    for (name, step) in CI {
        let step_started = Instant::now();
        let outcome = match step {
            Step::Cargo(args, env) => {
                let env: Vec<(&str, &str)> = env.iter().copied().chain(postgres_env).collect();
                cargo(args, &env).map(|()| format!("cargo {}", args.join(" ")))
            }
            Step::Deps => deps::check(),
        };
        let seconds = step_started.elapsed().as_secs_f64();
        match outcome {
            Ok(summary) => println!("ci: {name:<8} ok      {seconds:>6.1}s  {summary}"),
            Err(error) => {
                println!("ci: {name:<8} FAILED  {seconds:>6.1}s");
                return Err(error.context(format!("ci step `{name}` failed")));
            }
        }
    }
    println!(
        "ci: all {} steps passed in {:.0}s",
        CI.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn bench(extra: &[String]) -> Result<()> {
    let mut args = vec!["bench", "--workspace", "--"];
    args.extend(extra.iter().map(String::as_str));
    cargo(&args, &[])
}

/// One comparison row: a benchmark of logbook and its raw baseline, both in
/// the same criterion group and doing the same work per iteration.
struct Comparison {
    /// What the row compares.
    work: &'static str,
    /// The package and bench target that hold both.
    package: &'static str,
    bench: &'static str,
    /// Criterion's group and the two benchmark ids in it.
    group: &'static str,
    logbook: &'static str,
    raw: &'static str,
}

const COMPARISONS: &[Comparison] = &[
    Comparison {
        work: "memory: many small aggregates (open + 9 deposits each), against one-event store appends",
        package: "logbook",
        bench: "command_cost",
        group: "repository/many_small_aggregates",
        logbook: "memory/open_and_9_deposits",
        raw: "memory/raw_store_appends",
    },
    Comparison {
        work: "SQLite: one event per commit (FULL), against raw rusqlite",
        package: "logbook-adapters-sqlite",
        bench: "sqlite_store",
        group: "sqlite/append_one",
        logbook: "full_1_appender",
        raw: "full_raw_rusqlite_1_per_commit",
    },
    Comparison {
        work: "SQLite: one event per commit (NORMAL), against raw rusqlite",
        package: "logbook-adapters-sqlite",
        bench: "sqlite_store",
        group: "sqlite/append_one",
        logbook: "normal_1_appender",
        raw: "normal_raw_rusqlite_1_per_commit",
    },
    Comparison {
        work: "SQLite: batches of 1,000, against raw rusqlite",
        package: "logbook-adapters-sqlite",
        bench: "sqlite_store",
        group: "sqlite/append_batch",
        logbook: "batch_1000",
        raw: "raw_rusqlite_1000",
    },
    Comparison {
        work: "file: batches of 100 (Never), against a bare framed log",
        package: "logbook-adapters-file",
        bench: "file_store",
        group: "file/append_batch_100",
        logbook: "never",
        raw: "bare_framed_log",
    },
];

/// Runs each comparison's pair alone (one bench target at a time, short
/// measurements), then prints both medians and raw / logbook: above 1,
/// logbook is faster than its baseline.
fn compare() -> Result<()> {
    let mut lines = Vec::new();
    for row in COMPARISONS {
        let filter = format!("^{}/({}|{})$", row.group, row.logbook, row.raw);
        cargo(
            &[
                "bench",
                "-p",
                row.package,
                "--bench",
                row.bench,
                "--",
                "--warm-up-time",
                "1",
                "--measurement-time",
                "3",
                &filter,
            ],
            &[],
        )?;
        let logbook = median_ns(row.group, row.logbook)?;
        let raw = median_ns(row.group, row.raw)?;
        lines.push(format!(
            "{}: logbook {:.1} µs, raw {:.1} µs per iteration, ratio {:.2}×",
            row.work,
            logbook / 1e3,
            raw / 1e3,
            raw / logbook
        ));
    }
    println!("compare (raw time / logbook time per iteration; above 1: logbook faster):");
    for line in lines {
        println!("  {line}");
    }
    Ok(())
}

/// The median time per iteration, in nanoseconds, of criterion's latest run
/// of `group`/`id`.
fn median_ns(group: &str, id: &str) -> Result<f64> {
    let dir = |name: &str| name.replace('/', "_");
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace.join("target"), std::path::PathBuf::from);
    let path = target
        .join("criterion")
        .join(dir(group))
        .join(dir(id))
        .join("new")
        .join("estimates.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("no estimates at {}", path.display()))?;
    let estimates: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    estimates["median"]["point_estimate"]
        .as_f64()
        .with_context(|| format!("{} has no median", path.display()))
}

fn cargo(args: &[&str], env: &[(&str, &str)]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(&cargo)
        .args(args)
        .envs(env.iter().copied())
        .status()
        .with_context(|| format!("cannot run {cargo}"))?;
    if !status.success() {
        bail!("`cargo {}` exited with {status}", args.join(" "));
    }
    Ok(())
}
