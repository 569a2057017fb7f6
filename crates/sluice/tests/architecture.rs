//! The crate layout holds: dependencies between workspace crates point
//! down the layers below, and no crate has an import cycle between its
//! top-level modules. A new crate, or a dependency that points up or
//! sideways, fails here until `LAYERS` (and `docs/design.md`) say where it
//! belongs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every workspace crate and its layer. A crate may depend only on crates
/// in lower layers: binary → http/broker → coordinator → replica →
/// metadata → log/metrics → records → protocol.
const LAYERS: &[(&str, u8)] = &[
    ("sluice-protocol", 0),
    // SASL mechanisms (SCRAM, PLAIN): pure state machines, no sluice crate.
    ("sluice-auth", 0),
    // Schema registry core (issue 16): parse and compare schemas, no I/O.
    ("sluice-schema", 0),
    ("sluice-records", 1),
    ("sluice-metrics", 1),
    ("sluice-runtime", 2),
    ("sluice-log", 2),
    ("sluice-client", 2),
    ("sluice-metadata", 3),
    ("sluice-replica", 4),
    ("sluice-quorum", 4),
    ("sluice-coordinator", 5),
    // Schema registry storage (issue 16): the `_schemas` topic.
    ("sluice-registry", 5),
    ("sluice-broker", 6),
    ("sluice-http", 7),
    ("sluice", 8),
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/sluice sits two levels below the workspace root")
        .to_owned()
}

/// Every crate directory under `crates/`.
fn crate_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(workspace_root().join("crates"))
        .expect("crates/")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.join("Cargo.toml").is_file())
        .collect();
    dirs.sort();
    dirs
}

/// The package name and the `sluice*` crates in `[dependencies]` (not dev
/// or build dependencies) of one manifest.
fn manifest_deps(manifest: &str) -> (String, BTreeSet<String>) {
    let mut name = String::new();
    let mut deps = BTreeSet::new();
    let mut section = String::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line.to_owned();
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if section == "[package]" && key == "name" {
            name = value.trim().trim_matches('"').to_owned();
        }
        if section == "[dependencies]" && key.starts_with("sluice") {
            let dep = key.split('.').next().unwrap_or(key);
            deps.insert(dep.to_owned());
        }
    }
    (name, deps)
}

#[test]
fn crate_dependencies_point_down_the_layers() {
    let layers: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
    let mut seen = BTreeSet::new();
    let mut violations = Vec::new();
    for dir in crate_dirs() {
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).expect("manifest");
        let (name, deps) = manifest_deps(&manifest);
        let Some(&layer) = layers.get(name.as_str()) else {
            violations.push(format!("{name} has no layer in LAYERS"));
            continue;
        };
        seen.insert(name.clone());
        for dep in deps {
            match layers.get(dep.as_str()) {
                Some(&below) if below < layer => {}
                Some(&other) => violations.push(format!(
                    "{name} (layer {layer}) depends on {dep} (layer {other})"
                )),
                None => violations.push(format!("{name} depends on {dep}, which has no layer")),
            }
        }
    }
    assert!(violations.is_empty(), "{violations:#?}");
    assert_eq!(
        seen.len(),
        LAYERS.len(),
        "a crate in LAYERS is gone: {seen:?}"
    );
}

/// Production source of a file: everything before its first `#[cfg(test)]`
/// item, without line comments (doc links are not imports).
fn production_source(text: &str) -> String {
    text.lines()
        .take_while(|l| !l.trim_start().starts_with("#[cfg(test)]"))
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Identifiers at the start of each path in `crate::…` / `crate::{…}`.
fn crate_paths(source: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = source;
    while let Some(at) = rest.find(prefix) {
        let preceded_by_ident = rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_');
        rest = &rest[at + prefix.len()..];
        if preceded_by_ident {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if depth == 0 {
                    break;
                }
                if depth == 1 && c == ',' {
                    out.insert(first_ident(&item));
                    item.clear();
                } else {
                    item.push(c);
                }
            }
            out.insert(first_ident(&item));
        } else {
            out.insert(first_ident(rest));
        }
    }
    out.remove("");
    out
}

fn first_ident(s: &str) -> String {
    s.trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// Top-level module graph of one crate: module → modules it uses.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files = Vec::new();
    let mut stack = vec![src.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("src dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let roots = ["lib", "main"];
    for file in files {
        let rel = file.strip_prefix(src).expect("under src");
        let parts: Vec<String> = rel
            .with_extension("")
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let top = parts[0].clone();
        if roots.contains(&top.as_str()) {
            continue;
        }
        // `super::` in a top-level module file (`a.rs`, `a/mod.rs`) is the
        // crate root; deeper, it stays inside the same top-level module.
        let top_level_file = parts.len() == 1 || (parts.len() == 2 && parts[1] == "mod");
        let text = production_source(&std::fs::read_to_string(&file).expect("source"));
        let mut used = crate_paths(&text, "crate::");
        if top_level_file {
            used.extend(crate_paths(&text, "super::"));
        }
        let entry = graph.entry(top.clone()).or_default();
        for m in used {
            let is_module =
                src.join(format!("{m}.rs")).is_file() || src.join(&m).join("mod.rs").is_file();
            if m != top && is_module {
                entry.insert(m);
            }
        }
    }
    graph
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        let graph = s.graph;
        for w in graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.found
}

#[test]
fn no_crate_has_an_import_cycle_between_its_modules() {
    let mut found = Vec::new();
    for dir in crate_dirs() {
        let graph = module_graph(&dir.join("src"));
        for cycle in cycles(&graph) {
            found.push(format!("{}: {}", dir.display(), cycle.join(" <-> ")));
        }
    }
    assert!(found.is_empty(), "import cycles: {found:#?}");
}

#[test]
fn the_cycle_finder_finds_a_cycle_and_the_path_parser_reads_groups() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(cycles(&graph), vec![vec!["a", "b", "c"]]);
    let used = crate_paths(
        "use crate::x::Y;\nuse crate::{p::Q, r, s::{T, U}};\nlet v = my_crate::z;",
        "crate::",
    );
    assert_eq!(
        used,
        ["p", "r", "s", "x"]
            .into_iter()
            .map(str::to_owned)
            .collect()
    );
}
