//! logbook's chores, run as `cargo xtask <task>`:
//!
//! - `ci`: everything CI checks, stopping at the first failure, one summary
//!   line per step; the tests run against one throwaway PostgreSQL server
//!   started for the run (or the one `LOGBOOK_TEST_POSTGRES_URL` names);
//! - `bench [ARGS]`: the criterion benchmarks of every crate (extra arguments
//!   go to criterion, e.g. a filter);
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
        Some("bench") => bench(&args[1..]),
        Some("deps") => deps::check().map(|summary| println!("deps: {summary}")),
        _ => {
            eprintln!("usage: cargo xtask <ci | bench [CRITERION ARGS] | deps>");
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
