//! `cargo xtask import-loops DIR...`: fails when a crate's modules import each other in a
//! loop. Reads each `src` tree's `crate::` and `super::` paths (comments and `#[cfg(test)]`
//! modules left out: tests may compare any kernel with any other) and finds the module each
//! path names. A directory module counts with everything in it: a path from `a::x` to `b::y`
//! is an import of `b` by `a` (the siblings under their common parent), and a path to one's
//! own ancestor or descendant is none (Rust's tree already links them). At every level the
//! siblings must form no loop; every strongly connected set of two or more is reported, with
//! the paths behind it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

pub fn import_loops(args: &[String]) -> Result<(), String> {
    if args.is_empty() {
        return Err("usage: cargo xtask import-loops SRC_DIR...".into());
    }
    let mut failed = false;
    for dir in args {
        let modules = read_tree(Path::new(dir))?;
        let paths = edges(&modules);
        let siblings = sibling_edges(&paths);
        let loops = sibling_loops(&siblings);
        let count: usize = paths.values().map(BTreeSet::len).sum();
        println!("{dir}: {} modules, {count} imports between them, {} loops", modules.len(), loops.len());
        for group in loops {
            failed = true;
            println!("  loop: {}", group.join(" <-> "));
            for from in &group {
                for (to, behind) in siblings[from].iter().filter(|(to, _)| group.contains(to)) {
                    for (a, b) in behind {
                        println!("    {from} -> {to}: {a} uses {b}");
                    }
                }
            }
        }
    }
    if failed {
        Err("import loops found (see above)".into())
    } else {
        Ok(())
    }
}

/// Module path (`a::b`, the crate root as `crate`) to its source without comments or test
/// modules.
fn read_tree(root: &Path) -> Result<BTreeMap<String, String>, String> {
    let mut files = BTreeMap::new();
    collect(root, root, &mut files)?;
    let mut modules = BTreeMap::new();
    let mut test_modules = BTreeSet::new();
    for (name, source) in &files {
        let (code, tests) = without_tests(&without_comments(source));
        test_modules.extend(tests.into_iter().map(|child| join(name, &child)));
        modules.insert(name.clone(), code);
    }
    modules.retain(|name, _| !test_modules.iter().any(|t| name == t || name.starts_with(&format!("{t}::"))));
    Ok(modules)
}

fn collect(root: &Path, dir: &Path, files: &mut BTreeMap<String, String>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        if path.is_dir() {
            collect(root, &path, files)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path.strip_prefix(root).unwrap().with_extension("");
            let mut parts: Vec<String> =
                relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
                parts.pop();
            }
            let name = if parts.is_empty() { "crate".to_string() } else { parts.join("::") };
            let source = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            files.insert(name, source);
        }
    }
    Ok(())
}

fn join(parent: &str, child: &str) -> String {
    if parent == "crate" {
        child.to_string()
    } else {
        format!("{parent}::{child}")
    }
}

/// The source with `//` comments removed (string literals are not parsed: a `//` inside one
/// only drops the rest of its line).
fn without_comments(source: &str) -> String {
    source.lines().map(|line| line.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// The code outside `#[cfg(test)]` modules, and the names of those declared in other files.
fn without_tests(code: &str) -> (String, Vec<String>) {
    let mut kept = String::new();
    let mut external = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        kept.push_str(&rest[..at]);
        let after = skip_visibility(skip_attributes(&rest[at + "#[cfg(test)]".len()..]));
        let Some(declaration) = after.strip_prefix("mod ") else {
            rest = after;
            continue;
        };
        let name: String = declaration.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let tail = declaration[name.len()..].trim_start();
        if let Some(tail) = tail.strip_prefix(';') {
            external.push(name);
            rest = tail;
        } else {
            rest = skip_block(tail);
        }
    }
    kept.push_str(rest);
    (kept, external)
}

/// `code` after leading whitespace and attributes (`#[...]`, without nested brackets).
fn skip_attributes(mut code: &str) -> &str {
    loop {
        code = code.trim_start();
        match code.strip_prefix("#[").and_then(|rest| rest.find(']').map(|end| &rest[end + 1..])) {
            Some(rest) => code = rest,
            None => return code,
        }
    }
}

/// `code` after a leading `pub`, `pub(crate)`, `pub(super)` or `pub(in path)`.
fn skip_visibility(code: &str) -> &str {
    let Some(rest) = code.strip_prefix("pub") else { return code };
    let rest = rest.trim_start();
    match rest.strip_prefix('(') {
        Some(inner) => inner.find(')').map_or(rest, |end| inner[end + 1..].trim_start()),
        None => rest,
    }
}

/// What follows the `{ ... }` block `code` starts with.
fn skip_block(code: &str) -> &str {
    let mut depth = 0usize;
    for (i, c) in code.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &code[i + 1..];
                }
            }
            _ => {}
        }
    }
    ""
}

/// Module to the modules its paths name.
fn edges(modules: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let resolve = |path: &[&str]| {
        (1..=path.len()).rev().map(|n| path[..n].join("::")).find(|name| modules.contains_key(name))
    };
    let related =
        |a: &str, b: &str| a == b || a.starts_with(&format!("{b}::")) || b.starts_with(&format!("{a}::"));
    let mut edges = BTreeMap::new();
    for (name, code) in modules {
        let mut targets = BTreeSet::new();
        let own: Vec<&str> = if name == "crate" { vec![] } else { name.split("::").collect() };
        for (at, _) in code.match_indices("crate::").chain(code.match_indices("super::")) {
            if code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let path: Vec<&str> = code[at..]
                .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .next()
                .unwrap_or("")
                .split("::")
                .filter(|s| !s.is_empty())
                .collect();
            let (base, rest) = match path.first() {
                Some(&"crate") => (Vec::new(), &path[1..]),
                _ => {
                    let ups = path.iter().take_while(|s| **s == "super").count();
                    (own[..own.len().saturating_sub(ups)].to_vec(), &path[ups..])
                }
            };
            let full: Vec<&str> = base.iter().chain(rest).copied().collect();
            if let Some(target) = resolve(&full) {
                if !related(name, &target) {
                    targets.insert(target);
                }
            }
        }
        edges.insert(name.clone(), targets);
    }
    edges
}

/// Module to the siblings it imports, each with the `(from, to)` paths behind the import.
type SiblingEdges = BTreeMap<String, BTreeMap<String, Vec<(String, String)>>>;

/// Each import `a::x -> b::y` as an import between the siblings under their common parent
/// (`a -> b`), with the imports behind each.
fn sibling_edges(edges: &BTreeMap<String, BTreeSet<String>>) -> SiblingEdges {
    let mut siblings: SiblingEdges = edges.keys().map(|m| (m.clone(), BTreeMap::new())).collect();
    for (from, targets) in edges {
        for to in targets {
            let (a, b): (Vec<&str>, Vec<&str>) = (from.split("::").collect(), to.split("::").collect());
            let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
            if common == a.len() || common == b.len() {
                continue;
            }
            let (x, y) = (a[..=common].join("::"), b[..=common].join("::"));
            siblings.entry(x).or_default().entry(y).or_default().push((from.clone(), to.clone()));
        }
    }
    for targets in siblings.clone().into_values() {
        for to in targets.into_keys() {
            siblings.entry(to).or_default();
        }
    }
    siblings
}

/// The loops among sibling modules (each a sorted group of two or more).
fn sibling_loops(siblings: &SiblingEdges) -> Vec<Vec<String>> {
    let graph: BTreeMap<String, BTreeSet<String>> =
        siblings.iter().map(|(from, to)| (from.clone(), to.keys().cloned().collect())).collect();
    strongly_connected(&graph)
}

/// Tarjan's strongly connected components of two or more modules.
fn strongly_connected(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        groups: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in &s.edges[v] {
            if !s.index.contains_key(w.as_str()) {
                visit(s, w);
                let low = s.low[v].min(s.low[w.as_str()]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w.as_str()) {
                let low = s.low[v].min(s.index[w.as_str()]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut group = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                group.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if group.len() > 1 {
                group.sort();
                s.groups.push(group);
            }
        }
    }
    let mut state = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        groups: Vec::new(),
    };
    for v in edges.keys() {
        if !state.index.contains_key(v.as_str()) {
            visit(&mut state, v);
        }
    }
    state.groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loops(m: &BTreeMap<String, String>) -> Vec<Vec<String>> {
        sibling_loops(&sibling_edges(&edges(m)))
    }

    fn modules(files: &[(&str, &str)]) -> BTreeMap<String, String> {
        files.iter().map(|(n, s)| (n.to_string(), without_tests(&without_comments(s)).0)).collect()
    }

    #[test]
    fn finds_a_loop_through_crate_and_super_paths() {
        let m = modules(&[
            ("crate", "mod a; mod b;"),
            ("a", "use crate::b::thing;"),
            ("b", "mod c;"),
            ("b::c", "fn f() { super::super::a::g() }"),
        ]);
        // `b::c` is part of `b`, which `a` imports: a loop between `a` and `b`.
        assert_eq!(loops(&m), vec![vec!["a".to_string(), "b".to_string()]]);
    }

    #[test]
    fn ignores_tests_comments_and_parents() {
        let m = modules(&[
            ("crate", "mod a; mod b;"),
            ("a", "use crate::b::x; // crate::b\n#[cfg(test)]\nmod tests { use crate::a::y; }"),
            ("b", "use super::a::x;\n#[cfg(test)]\nmod tests { use crate::a::y; }"),
            ("b::inner", "use super::z;"),
        ]);
        let e = edges(&m);
        assert_eq!(e["a"], BTreeSet::from(["b".to_string()]));
        assert_eq!(e["b"], BTreeSet::from(["a".to_string()]));
        assert!(e["b::inner"].is_empty(), "a child using its parent is no loop");
        assert_eq!(loops(&m).len(), 1);
        for tests in [
            "#[cfg(test)]\nmod tests { use crate::a::y; }",
            "#[cfg(test)]\n#[allow(unused)]\npub(super) mod tests { use crate::a::y; }",
        ] {
            let m = modules(&[("a", "use crate::b::x;"), ("b", tests)]);
            assert!(loops(&m).is_empty(), "{tests}");
        }
    }
}
