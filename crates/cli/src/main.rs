//! The `logbook` command-line tool as shipped: the seed domains and their
//! read models on every store.

fn main() -> std::process::ExitCode {
    logbook_cli::Logbook::new().with_seed_domains().run()
}
