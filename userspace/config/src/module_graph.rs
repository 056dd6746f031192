//! No import cycles between the crate's modules: this test reads the sources, builds the graph
//! of `crate::` uses between modules and fails on a cycle (and on a shared piece that uses a
//! role, or a role that uses the whole-file modules).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The modules `lib.rs` declares, but test-only ones.
fn declared(lib: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut test_only = false;
    for l in lib.lines().map(str::trim) {
        let rest = l
            .strip_prefix("pub mod ")
            .or_else(|| l.strip_prefix("mod "));
        if let Some(name) = rest.and_then(|r| r.strip_suffix(';'))
            && !test_only
        {
            out.push(name.to_owned());
        }
        test_only = l == "#[cfg(test)]";
    }
    out
}

/// Item name -> defining module, from `pub use module::{...}` in `lib.rs`.
fn reexports(lib: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = lib;
    while let Some(i) = rest.find("pub use ") {
        rest = &rest[i + "pub use ".len()..];
        let end = rest.find(';').unwrap_or(rest.len());
        let stmt = &rest[..end];
        if let Some((module, items)) = stmt.split_once("::") {
            let items = items.trim_matches(|c: char| c == '{' || c == '}' || c.is_whitespace());
            for item in items.split(',') {
                let item = item.split(" as ").last().unwrap_or("").trim();
                if !item.is_empty() {
                    out.insert(item.to_owned(), module.trim().to_owned());
                }
            }
        }
        rest = &rest[end..];
    }
    out
}

/// The source without comments and without its `#[cfg(test)] mod tests` (tests may use
/// anything).
fn code(src: &str) -> String {
    let src = match src.find("#[cfg(test)]\nmod tests") {
        Some(i) => &src[..i],
        None => src,
    };
    src.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first path segment after each `crate::` (and each name in `crate::{a, b::c}`).
fn crate_refs(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for name in group.split(',') {
                out.push(name.trim().split("::").next().unwrap_or("").to_owned());
            }
        } else {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            out.push(rest[..end].to_owned());
        }
    }
    out.retain(|n| !n.is_empty());
    out
}

/// The crate's module graph: module -> the modules it uses (`crate::m::...`, or an item
/// `lib.rs` re-exports from `m`). Uses of items defined in `lib.rs` itself, of `super::` and of
/// module directories are reported as errors, so nothing escapes the check.
pub(crate) fn graph(src_dir: &Path) -> Result<BTreeMap<String, BTreeSet<String>>, Vec<String>> {
    let lib = std::fs::read_to_string(src_dir.join("lib.rs")).expect("lib.rs");
    let modules = declared(&lib);
    let items = reexports(&lib);
    let mut graph = BTreeMap::new();
    let mut bad = Vec::new();
    for module in &modules {
        let file = src_dir.join(format!("{module}.rs"));
        let Ok(src) = std::fs::read_to_string(&file) else {
            bad.push(format!(
                "{}: not a file (module directories are not read)",
                file.display()
            ));
            continue;
        };
        let code = code(&src);
        if code.contains("super::") {
            bad.push(format!("{module} uses super::"));
        }
        let uses: &mut BTreeSet<String> = graph.entry(module.clone()).or_default();
        for name in crate_refs(&code) {
            match (modules.contains(&name), items.get(&name)) {
                (true, _) => uses.insert(name),
                (false, Some(m)) => uses.insert(m.clone()),
                (false, None) => {
                    bad.push(format!("{module} uses crate::{name}, defined in lib.rs"));
                    continue;
                }
            };
        }
        uses.remove(module);
    }
    if bad.is_empty() { Ok(graph) } else { Err(bad) }
}

/// A cycle in `graph` (`a -> b -> a`), if there is one.
pub(crate) fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        m: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeSet<String>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|s| s == m) {
            let mut c = stack[i..].to_vec();
            c.push(m.to_owned());
            return Some(c);
        }
        if done.contains(m) {
            return None;
        }
        stack.push(m.to_owned());
        for next in graph.get(m).into_iter().flatten() {
            if let Some(c) = visit(next, graph, done, stack) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(m.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|m| visit(m, graph, &mut done, &mut Vec::new()))
}

/// The graph of a crate beside this one (`config`, `tftp`), with no cycle.
fn acyclic(krate: &str) -> BTreeMap<String, BTreeSet<String>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../{krate}/src"));
    let graph = graph(&dir).unwrap_or_else(|bad| panic!("{krate}: {}", bad.join("\n")));
    if let Some(c) = cycle(&graph) {
        panic!("{krate}: module cycle: {}", c.join(" -> "));
    }
    graph
}

/// The sans-IO TFTP core's modules have no cycle either (issue 12 asks it of `config`, `snmp`
/// and `tftp`; the check is here so that there is one of it).
#[test]
fn no_module_cycles_in_tftp() {
    let graph = acyclic("tftp");
    assert!(graph["packet"].contains("options"), "{graph:?}");
}

#[test]
fn no_module_cycles() {
    let graph = acyclic("config");
    // The layering the crate docs describe: shared pieces use no role, roles use no whole-file
    // module.
    for shared in ["bootfile", "error", "glob", "parse", "validator"] {
        for used in &graph[shared] {
            assert!(
                ["bootfile", "error", "glob", "parse"].contains(&used.as_str()),
                "{shared} uses {used}"
            );
        }
    }
    for role in [
        "acs", "dhcp", "files", "http", "mta", "server", "syslog", "tftp", "time",
    ] {
        for top in ["wire", "policy", "describe", "sections", "testing"] {
            assert!(!graph[role].contains(top), "{role} uses {top}");
        }
    }
}

#[test]
fn the_check_sees_a_cycle() {
    let dir = std::env::temp_dir().join(format!("provd-config-modgraph-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("lib.rs"),
        "mod a;\nmod b;\nmod c;\n#[cfg(test)]\nmod tests;\npub use b::{B, C as D};\n",
    )
    .unwrap();
    std::fs::write(dir.join("b.rs"), "use crate::a::A;\npub struct B;\n").unwrap();
    std::fs::write(dir.join("c.rs"), "use crate::{b};\n").unwrap();
    std::fs::write(
        dir.join("a.rs"),
        "// crate::c in a comment is no use\nuse crate::{D};\n",
    )
    .unwrap();
    let graph = graph(&dir).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(graph["c"].iter().collect::<Vec<_>>(), ["b"]);
    assert_eq!(cycle(&graph).unwrap(), ["a", "b", "a"]);
}
