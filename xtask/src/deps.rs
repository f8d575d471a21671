//! The dependency rule, read from `cargo metadata`: dependencies point
//! inward only (domain <- ports <- adapters <- app).

use std::collections::{HashMap, HashSet, VecDeque};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// Every direct dependency the pure domain may have.
const DOMAIN_MAY_USE: &[&str] = &["serde", "serde_json", "uuid", "chrono", "thiserror"];

/// What a crate must never reach through its normal (non-dev, non-build)
/// dependencies, directly or not.
fn forbidden(package: &str) -> Option<&'static [&'static str]> {
    const ADAPTERS_AND_APP: &[&str] = &[
        "logbook",
        "logbook-adapters-memory",
        "logbook-adapters-sqlite",
        "logbook-adapters-file",
        "logbook-adapters-postgres",
        "logbook-test-postgres",
    ];
    match package {
        "logbook-domain" => Some(&[
            "tokio",
            "rusqlite",
            "tokio-postgres",
            "async-trait",
            "logbook-ports",
            "logbook",
            "logbook-adapters-memory",
            "logbook-adapters-sqlite",
            "logbook-adapters-file",
        ]),
        "logbook-ports" => Some(&[
            "rusqlite",
            "tokio-postgres",
            "logbook",
            "logbook-adapters-memory",
            "logbook-adapters-sqlite",
            "logbook-adapters-file",
            "logbook-adapters-postgres",
        ]),
        "logbook-adapters-memory"
        | "logbook-adapters-sqlite"
        | "logbook-adapters-file"
        | "logbook-adapters-postgres" => Some(ADAPTERS_AND_APP),
        // The throwaway test server is a development tool only.
        "logbook" | "logbook-cli" => Some(&["logbook-test-postgres"]),
        _ => None,
    }
}

/// Checks every workspace crate against the rule; the error names each
/// offending path, e.g. `logbook-domain -> foo -> tokio`.
pub fn check() -> Result<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--all-features"])
        .output()
        .context("cannot run cargo metadata")?;
    if !output.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let metadata: Value =
        serde_json::from_slice(&output.stdout).context("cargo metadata is not JSON")?;
    let graph = Graph::from_metadata(&metadata)?;
    let mut violations = Vec::new();
    let mut checked = 0;
    for member in graph.workspace_members() {
        let name = graph.name(member);
        let Some(banned) = forbidden(name) else {
            continue;
        };
        checked += 1;
        for path in graph.paths_to(member, |n| banned.contains(&n) && n != name) {
            violations.push(path.join(" -> "));
        }
    }
    // The domain's own dependencies are an allow-list, not a deny-list.
    for member in graph.workspace_members() {
        if graph.name(member) != "logbook-domain" {
            continue;
        }
        for dep in graph.normal_deps.get(member.as_str()).into_iter().flatten() {
            let name = graph.name(dep);
            if !DOMAIN_MAY_USE.contains(&name) {
                violations.push(format!(
                    "logbook-domain -> {name} (the domain may use only {})",
                    DOMAIN_MAY_USE.join(", ")
                ));
            }
        }
    }
    if !violations.is_empty() {
        bail!(
            "dependencies must point inward; offending edges:\n  {}",
            violations.join("\n  ")
        );
    }
    Ok(format!("{checked} crates depend inward only"))
}

struct Graph {
    names: HashMap<String, String>,
    normal_deps: HashMap<String, Vec<String>>,
    members: Vec<String>,
}

impl Graph {
    fn from_metadata(metadata: &Value) -> Result<Self> {
        let names = metadata["packages"]
            .as_array()
            .context("metadata has no packages")?
            .iter()
            .filter_map(|p| Some((p["id"].as_str()?.to_owned(), p["name"].as_str()?.to_owned())))
            .collect();
        let mut normal_deps = HashMap::new();
        for node in metadata["resolve"]["nodes"]
            .as_array()
            .context("metadata has no resolve graph")?
        {
            let id = node["id"].as_str().context("node without id")?.to_owned();
            let deps = node["deps"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|dep| {
                    dep["dep_kinds"]
                        .as_array()
                        .is_some_and(|kinds| kinds.iter().any(|k| k["kind"].is_null()))
                })
                .filter_map(|dep| dep["pkg"].as_str().map(str::to_owned))
                .collect();
            normal_deps.insert(id, deps);
        }
        let members = metadata["workspace_members"]
            .as_array()
            .context("metadata has no workspace members")?
            .iter()
            .filter_map(|m| m.as_str().map(str::to_owned))
            .collect();
        Ok(Self {
            names,
            normal_deps,
            members,
        })
    }

    fn workspace_members(&self) -> impl Iterator<Item = &String> {
        self.members.iter()
    }

    fn name<'a>(&'a self, id: &'a str) -> &'a str {
        self.names.get(id).map_or(id, String::as_str)
    }

    /// The shortest path from `from` to each package matching `is_banned`.
    fn paths_to(&self, from: &str, is_banned: impl Fn(&str) -> bool) -> Vec<Vec<String>> {
        let mut parent: HashMap<&str, &str> = HashMap::new();
        let mut seen: HashSet<&str> = HashSet::from([from]);
        let mut queue = VecDeque::from([from]);
        let mut found = Vec::new();
        while let Some(node) = queue.pop_front() {
            for dep in self.normal_deps.get(node).into_iter().flatten() {
                if !seen.insert(dep) {
                    continue;
                }
                parent.insert(dep, node);
                if is_banned(self.name(dep)) {
                    let mut path = vec![self.name(dep).to_owned()];
                    let mut at: &str = dep;
                    while let Some(&up) = parent.get(at) {
                        path.push(self.name(up).to_owned());
                        at = up;
                    }
                    path.reverse();
                    found.push(path);
                } else {
                    queue.push_back(dep);
                }
            }
        }
        found
    }
}
