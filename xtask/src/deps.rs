//! The dependency rule, read from `cargo metadata`: dependencies point
//! inward only (domain <- ports <- adapters <- library <- front ends).
//! Runs as `cargo xtask deps`, as a step of `cargo xtask ci`, and as a test
//! of this crate, so plain `cargo test` enforces it too.

use std::collections::{HashMap, HashSet, VecDeque};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// Every direct dependency the pure domain may have.
const DOMAIN_MAY_USE: &[&str] = &["serde", "serde_json", "uuid", "chrono", "thiserror"];

/// Storage backends' client crates: only adapters may reach them.
const BACKENDS: &[&str] = &[
    "rusqlite",
    "tokio-postgres",
    "deadpool-postgres",
    "postgres",
];

/// Crates that belong in binaries and front ends, never in the library.
const FRONT_END_ONLY: &[&str] = &[
    "clap",
    "anyhow",
    "indicatif",
    "tracing-subscriber",
    "axum",
    "hyper",
];

/// Where a workspace crate sits in the hexagon, read from its name, so a new
/// adapter (`logbook-adapters-*`) or front end is covered without editing
/// this file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ring {
    Domain,
    Ports,
    Adapter,
    Library,
    FrontEnd,
    /// xtask, examples: outside the rule.
    Tooling,
}

fn ring(package: &str) -> Ring {
    match package {
        "logbook-domain" => Ring::Domain,
        "logbook-ports" => Ring::Ports,
        "logbook" => Ring::Library,
        name if name.starts_with("logbook-adapters-") => Ring::Adapter,
        name if name.starts_with("logbook-") => Ring::FrontEnd,
        _ => Ring::Tooling,
    }
}

/// Checks every workspace crate against the rule, reading `cargo metadata`
/// with every feature on; the error names each offending path, e.g.
/// `logbook-domain -> foo -> tokio`.
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
    let summary = check_metadata(&metadata)?;
    check_lean_library()?;
    Ok(format!(
        "{summary}; the library without default features has no backend or front-end crate"
    ))
}

/// A memory-only dependent (`logbook` with `default-features = false`)
/// builds none of the durable adapters' backends nor any front-end crate.
fn check_lean_library() -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "logbook",
            "--no-default-features",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .output()
        .context("cannot run cargo tree")?;
    if !output.status.success() {
        bail!(
            "cargo tree failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let tree = String::from_utf8_lossy(&output.stdout);
    let found: Vec<&str> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| BACKENDS.contains(name) || FRONT_END_ONLY.contains(name))
        .collect();
    if !found.is_empty() {
        bail!(
            "logbook without default features still builds {}",
            found.join(", ")
        );
    }
    Ok(())
}

/// The rule over parsed `cargo metadata` output.
fn check_metadata(metadata: &Value) -> Result<String> {
    let graph = Graph::from_metadata(metadata)?;
    let members: Vec<(&String, &str, Ring)> = graph
        .workspace_members()
        .map(|id| (id, graph.name(id), ring(graph.name(id))))
        .collect();
    let in_ring = |wanted: &[Ring]| -> Vec<&str> {
        members
            .iter()
            .filter(|(_, _, r)| wanted.contains(r))
            .map(|(_, name, _)| *name)
            .collect()
    };
    let mut violations = Vec::new();
    let mut checked = 0;
    for (id, name, ring) in &members {
        // What this crate must never reach, directly or through others.
        let mut banned: Vec<&str> = match ring {
            Ring::Domain => in_ring(&[Ring::Ports, Ring::Adapter, Ring::Library, Ring::FrontEnd]),
            Ring::Ports => in_ring(&[Ring::Adapter, Ring::Library, Ring::FrontEnd]),
            Ring::Adapter => in_ring(&[Ring::Adapter, Ring::Library, Ring::FrontEnd]),
            Ring::Library => in_ring(&[Ring::FrontEnd]),
            Ring::FrontEnd | Ring::Tooling => Vec::new(),
        };
        match ring {
            Ring::Domain => banned.extend(["tokio", "async-trait"]),
            Ring::Library => banned.extend(FRONT_END_ONLY),
            _ => {}
        }
        if matches!(ring, Ring::Domain | Ring::Ports) {
            banned.extend(BACKENDS);
        }
        if *ring != Ring::Tooling {
            checked += 1;
        }
        for path in graph.paths_to(id, |n| banned.contains(&n) && n != *name) {
            violations.push(path.join(" -> "));
        }
        // A front end reaches storage through the library, never an adapter
        // directly.
        if *ring == Ring::FrontEnd {
            for dep in graph.normal_deps.get(id.as_str()).into_iter().flatten() {
                if self::ring(graph.name(dep)) == Ring::Adapter {
                    violations.push(format!(
                        "{name} -> {} (a front end reaches adapters through the logbook library)",
                        graph.name(dep)
                    ));
                }
            }
        }
        // The domain's own dependencies are an allow-list, not a deny-list.
        if *ring == Ring::Domain {
            for dep in graph.normal_deps.get(id.as_str()).into_iter().flatten() {
                let dep = graph.name(dep);
                if !DOMAIN_MAY_USE.contains(&dep) {
                    violations.push(format!(
                        "{name} -> {dep} (the domain may use only {})",
                        DOMAIN_MAY_USE.join(", ")
                    ));
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A `cargo metadata`-shaped graph of packages `a -> b` edges.
    fn metadata(members: &[&str], edges: &[(&str, &str)]) -> Value {
        let mut names: Vec<&str> = members.to_vec();
        for (from, to) in edges {
            for n in [from, to] {
                if !names.contains(n) {
                    names.push(n);
                }
            }
        }
        let packages: Vec<Value> = names
            .iter()
            .map(|n| serde_json::json!({"id": format!("{n} 0.1"), "name": n}))
            .collect();
        let nodes: Vec<Value> = names
            .iter()
            .map(|n| {
                let deps: Vec<Value> = edges
                    .iter()
                    .filter(|(from, _)| from == n)
                    .map(|(_, to)| {
                        serde_json::json!({"pkg": format!("{to} 0.1"), "dep_kinds": [{"kind": null}]})
                    })
                    .collect();
                serde_json::json!({"id": format!("{n} 0.1"), "deps": deps})
            })
            .collect();
        let members: Vec<Value> = members.iter().map(|n| format!("{n} 0.1").into()).collect();
        serde_json::json!({"packages": packages, "resolve": {"nodes": nodes}, "workspace_members": members})
    }

    const MEMBERS: &[&str] = &[
        "logbook-domain",
        "logbook-ports",
        "logbook-adapters-memory",
        "logbook-adapters-sqlite",
        "logbook-adapters-newstore",
        "logbook",
        "logbook-cli",
    ];

    const INWARD: &[(&str, &str)] = &[
        ("logbook-domain", "serde"),
        ("logbook-ports", "logbook-domain"),
        ("logbook-adapters-memory", "logbook-ports"),
        ("logbook-adapters-sqlite", "logbook-ports"),
        ("logbook-adapters-sqlite", "rusqlite"),
        ("logbook-adapters-newstore", "logbook-ports"),
        ("logbook", "logbook-adapters-sqlite"),
        ("logbook", "logbook-adapters-newstore"),
        ("logbook-cli", "logbook"),
        ("logbook-cli", "clap"),
    ];

    fn offending(extra: (&str, &str)) -> String {
        let mut edges = INWARD.to_vec();
        edges.push(extra);
        check_metadata(&metadata(MEMBERS, &edges))
            .expect_err("the rule must refuse the edge")
            .to_string()
    }

    #[test]
    fn the_workspace_depends_inward_only() {
        let summary = check().expect("the workspace keeps the dependency rule");
        assert!(summary.contains("depend inward only"), "{summary}");
    }

    #[test]
    fn an_inward_graph_passes() {
        assert!(check_metadata(&metadata(MEMBERS, INWARD)).is_ok());
    }

    #[test]
    fn an_adapter_reaching_another_adapter_read_from_the_workspace_is_named() {
        let error = offending(("logbook-adapters-newstore", "logbook-adapters-sqlite"));
        assert!(
            error.contains("logbook-adapters-newstore -> logbook-adapters-sqlite"),
            "{error}"
        );
    }

    #[test]
    fn the_library_may_not_reach_command_line_crates() {
        let error = offending(("logbook", "tracing-subscriber"));
        assert!(error.contains("logbook -> tracing-subscriber"), "{error}");
    }

    #[test]
    fn the_domain_keeps_to_its_allow_list_and_ports_to_no_backend() {
        assert!(offending(("logbook-domain", "tokio")).contains("logbook-domain -> tokio"));
        let error = offending(("logbook-ports", "rusqlite"));
        assert!(error.contains("logbook-ports -> rusqlite"), "{error}");
    }

    #[test]
    fn a_front_end_names_no_adapter_directly() {
        let error = offending(("logbook-cli", "logbook-adapters-sqlite"));
        assert!(
            error.contains("logbook-cli -> logbook-adapters-sqlite (a front end"),
            "{error}"
        );
    }
}
