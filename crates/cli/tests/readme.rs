//! The README's command-line examples, run as written (on whatever day the
//! test runs) in a fresh directory with the `logbook` binary on the PATH.
//! A line whose comment says `error:` must fail; `follow` must keep running
//! until it is stopped; every other line must succeed.

use std::path::Path;
use std::process::Command;

/// The shell blocks of the README's "The command line" section.
fn command_line_blocks(readme: &str) -> Vec<String> {
    let section = readme
        .split("## The command line")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("the README has a command-line section");
    section
        .split("```sh\n")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .map(str::to_owned)
        .collect()
}

/// One bash line per README line: checked as its comment promises.
fn script(blocks: &[String]) -> String {
    let mut script =
        String::from("set -u\nfail() { echo \"README line failed: $1\" >&2; exit 1; }\n");
    for line in blocks.iter().flat_map(|b| b.lines()) {
        let code = line.split(" # ").next().unwrap_or("").trim();
        if code.is_empty() || code.starts_with('#') {
            continue;
        }
        let quoted = code.replace('\'', r"'\''");
        if code.contains("logbook follow") {
            script.push_str(&format!(
                "timeout 2 {code}; [ $? -eq 124 ] || fail '{quoted} (did not keep following)'\n"
            ));
        } else if line.contains("# error:") {
            script.push_str(&format!(
                "if {code} 2>/dev/null; then fail '{quoted} (should fail)'; fi\n"
            ));
        } else {
            script.push_str(&format!("{code} >/dev/null || fail '{quoted}'\n"));
        }
    }
    script
}

#[test]
fn the_readme_command_line_examples_work_as_written_today() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let blocks = command_line_blocks(&readme);
    assert!(
        blocks.len() >= 4,
        "the examples are found: {}",
        blocks.len()
    );
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new("crates/cli/tests/fixtures/ship_events.json");
    std::fs::create_dir_all(dir.path().join(fixture.parent().unwrap())).unwrap();
    std::fs::copy(root.join(fixture), dir.path().join(fixture)).unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_logbook"))
        .parent()
        .unwrap()
        .to_owned();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(script(&blocks))
        .current_dir(dir.path())
        .env("PATH", path)
        .env_remove("LOGBOOK_STORE")
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
}
