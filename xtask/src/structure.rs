//! The rules of the code's structure, checked by reading the sources:
//!
//! * no crate has an import cycle between its modules (`use crate::…` and
//!   `crate::…` paths, followed through re-exports; test modules left
//!   out), beyond the cycles listed as known, which may only go away;
//! * the command line stands on leaf modules: `args`, `print` and
//!   `progress` import nothing from the crate, `io` only those, and no
//!   command module imports another;
//! * no file lists model kinds except the registry and each kind's own
//!   module: a file outside them names at most one kind in a string
//!   literal (tests, examples and comments aside).
//!
//! They run as tests (`cargo test -p xtask`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The `.rs` files under `dir`, recursively.
pub fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The module path of `file` in the crate whose sources are in `src`
/// (`cmd::demo` for `src/cmd/demo.rs`, `` for `lib.rs`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap_or(file).with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("lib" | "main" | "mod")
    ) {
        parts.pop();
    }
    parts.join("::")
}

/// `text` without comments and without its `#[cfg(test)]` module (which
/// the rules do not cover).
fn code_of(text: &str) -> String {
    let end = text.find("#[cfg(test)]").unwrap_or(text.len());
    text[..end]
        .lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths that follow `crate::` in `code`, with `{a, b::c}` groups
/// expanded one level.
fn crate_paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().last();
        rest = &rest[i + "crate::".len()..];
        // `because_crate::` is not `crate::`.
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let segments = |p: &str| -> Vec<String> {
            p.split("::")
                .map(|s| s.trim().to_string())
                .take_while(|s| !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_'))
                .collect()
        };
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for p in group[..end].split(',') {
                out.push(segments(p.trim()));
            }
        } else {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            out.push(segments(&rest[..end]));
        }
    }
    out
}

/// The items each module re-exports (`pub use a::{B, C as D};`): for
/// (module, name) the module the item comes from.
fn reexports(modules: &BTreeMap<String, String>) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for (m, code) in modules {
        for stmt in code.split(';') {
            let Some(rest) = stmt.trim().strip_prefix("pub use ") else {
                continue;
            };
            let rest = rest
                .trim_start_matches("crate::")
                .trim_start_matches("self::");
            let (base, names): (&str, Vec<&str>) = match rest.find("::{") {
                Some(i) => (
                    &rest[..i],
                    rest[i + 3..].trim_end_matches('}').split(',').collect(),
                ),
                None => match rest.rfind("::") {
                    Some(i) => (&rest[..i], vec![&rest[i + 2..]]),
                    None => continue,
                },
            };
            let nested = if m.is_empty() {
                base.to_string()
            } else {
                format!("{m}::{base}")
            };
            let source = if modules.contains_key(&nested) {
                nested
            } else if modules.contains_key(base) {
                base.to_string()
            } else {
                continue;
            };
            for n in names {
                let name = n.split(" as ").last().unwrap_or(n).trim();
                if !name.is_empty() {
                    out.insert((m.clone(), name.to_string()), source.clone());
                }
            }
        }
    }
    out
}

/// Which modules of the crate in `src` each module uses. A path through a
/// re-export (`crate::Model`, re-exported by the crate root from `model`)
/// counts as a use of the module the item comes from.
pub fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeMap<String, String> = rust_files(src)
        .iter()
        .map(|f| {
            let code = code_of(&std::fs::read_to_string(f).unwrap_or_default());
            (module_of(src, f), code)
        })
        .collect();
    let reexported = reexports(&modules);
    let mut graph = BTreeMap::new();
    for (m, code) in &modules {
        let mut uses = BTreeSet::new();
        for path in crate_paths(code) {
            // The longest module that the path starts with, followed
            // through a re-export of the next name.
            let k = (0..=path.len())
                .rev()
                .find(|&k| modules.contains_key(&path[..k].join("::")))
                .unwrap_or(0);
            let mut target = path[..k].join("::");
            if let Some(source) = path
                .get(k)
                .and_then(|name| reexported.get(&(target.clone(), name.clone())))
            {
                target = source.clone();
            }
            if !target.is_empty() {
                let t = target;
                // A module using its own parent's items (re-exports in
                // `mod.rs`) or itself is no edge between files.
                if &t != m && !m.starts_with(&format!("{t}::")) {
                    uses.insert(t);
                }
            }
        }
        graph.insert(m.clone(), uses);
    }
    graph
}

/// The cycles of `graph`: its strongly connected components of more than
/// one module.
pub fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Modules that reach each other are in one cycle.
    let reach = |from: &String| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.clone()];
        while let Some(m) = stack.pop() {
            for n in graph.get(&m).into_iter().flatten() {
                if seen.insert(n.clone()) {
                    stack.push(n.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> =
        graph.keys().map(|m| (m, reach(m))).collect();
    let mut out: Vec<Vec<String>> = Vec::new();
    let mut placed = BTreeSet::new();
    for m in graph.keys() {
        if placed.contains(m) || !reaches[m].contains(m) {
            continue;
        }
        let comp: Vec<String> = graph
            .keys()
            .filter(|n| reaches[m].contains(*n) && reaches[*n].contains(m))
            .cloned()
            .collect();
        placed.extend(comp.iter().cloned());
        out.push(comp);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crates() -> Vec<PathBuf> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates");
        let mut out: Vec<PathBuf> = std::fs::read_dir(&root)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("src").is_dir())
            .collect();
        out.sort();
        assert!(out.len() >= 10, "{out:?}");
        out
    }

    #[test]
    fn the_checker_finds_a_cycle_and_expands_groups() {
        let code = "use crate::{a, b::C};\nfn f() { crate::c::d(); because_crate::x(); }";
        let paths = crate_paths(code);
        assert_eq!(paths, [vec!["a"], vec!["b", "C"], vec!["c", "d"]]);
        let mut g = BTreeMap::new();
        g.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
        g.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
        g.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
        g.insert("d".to_string(), BTreeSet::from(["a".to_string()]));
        assert_eq!(cycles(&g), [vec!["a", "b", "c"]]);
        g.get_mut("c").unwrap().clear();
        assert!(cycles(&g).is_empty());
    }

    /// Crates whose modules still import each other, with the modules:
    /// the list may only shrink (a crate that becomes free of cycles must
    /// leave it, and no crate may join it).
    const KNOWN_CYCLES: [(&str, &[&str]); 1] = [
        // The registry lists the built-in kinds, each kind implements the
        // registry's `ModelKind`, and `Model` and `Entry` refer to each
        // other.
        (
            "because-models",
            &[
                "als",
                "bpr",
                "ease",
                "knn",
                "mf",
                "model",
                "popularity",
                "registry",
                "svd",
                "userknn",
            ],
        ),
    ];

    #[test]
    fn no_crate_has_an_import_cycle_beyond_the_known_ones() {
        let mut seen = BTreeMap::new();
        for krate in crates() {
            let graph = module_graph(&krate.join("src"));
            let name = krate.file_name().unwrap().to_string_lossy().into_owned();
            let found: Vec<String> = cycles(&graph).concat();
            if !found.is_empty() {
                seen.insert(name, found);
            }
        }
        let known: BTreeMap<String, Vec<String>> = KNOWN_CYCLES
            .iter()
            .map(|(c, m)| (c.to_string(), m.iter().map(|s| s.to_string()).collect()))
            .collect();
        assert_eq!(
            seen, known,
            "modules that import each other, by crate (update KNOWN_CYCLES only when a cycle is gone)"
        );
    }

    #[test]
    fn the_command_line_stands_on_leaf_modules() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/because-cli/src");
        let g = module_graph(&src);
        for leaf in ["args", "print", "progress"] {
            assert!(g[leaf].is_empty(), "{leaf} uses {:?}", g[leaf]);
        }
        let leaves = BTreeSet::from(["args".to_string(), "print".into(), "progress".into()]);
        assert!(g["io"].is_subset(&leaves), "io uses {:?}", g["io"]);
        let commands: Vec<&String> = g.keys().filter(|m| m.starts_with("cmd::")).collect();
        assert!(commands.len() >= 8, "{commands:?}");
        for c in commands {
            let other: Vec<&String> = g[c].iter().filter(|m| m.starts_with("cmd")).collect();
            assert!(other.is_empty(), "{c} uses the commands {other:?}");
        }
    }

    /// Registered kinds, as the registry names them.
    const KINDS: [&str; 13] = [
        "pop", "itemknn", "userknn", "ease", "svd", "als", "bpr", "mf", "item2vec", "gru4rec",
        "sasrec", "twotower", "hybrid",
    ];

    /// The files that may name several kinds, and why.
    const EXEMPT: [(&str, &str); 3] = [
        ("because-models/src/registry.rs", "the registry itself"),
        (
            "because/_models.py",
            "implicit's classes (ALS, BPR...) each name the kind they wrap; their defaults, \
             documentation and the kind-to-class map come from the registry, and the package \
             refuses to import if a class names a kind the registry lacks",
        ),
        (
            "because/__init__.py",
            "`als` and `bpr` are implicit's module names (`because.als`), not kinds",
        ),
    ];

    #[test]
    fn no_file_lists_model_kinds_outside_the_registry() {
        let mut files: Vec<PathBuf> = Vec::new();
        for krate in crates() {
            files.extend(rust_files(&krate.join("src")));
            let python = krate.join("python");
            if python.is_dir() {
                let mut stack = vec![python];
                while let Some(d) = stack.pop() {
                    for e in std::fs::read_dir(&d).unwrap().flatten() {
                        let p = e.path();
                        if p.is_dir() {
                            stack.push(p);
                        } else if p.extension().is_some_and(|x| x == "py") {
                            files.push(p);
                        }
                    }
                }
            }
        }
        let mut offenders = Vec::new();
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap();
            let code: String = if f.extension().is_some_and(|x| x == "py") {
                text.lines()
                    .map(|l| l.split('#').next().unwrap_or(""))
                    .collect::<Vec<_>>()
                    .join("\n")
            } else {
                code_of(&text)
            };
            let named: Vec<&str> = KINDS
                .iter()
                .copied()
                .filter(|k| code.contains(&format!("\"{k}\"")) || code.contains(&format!("'{k}'")))
                .collect();
            // A kind's module names itself; only the registry lists kinds.
            let allowed = EXEMPT.iter().any(|(path, _)| f.ends_with(path));
            if named.len() > 1 && !allowed {
                offenders.push(format!("{}: {named:?}", f.display()));
            }
        }
        assert!(
            offenders.is_empty(),
            "kind lists outside the registry: {offenders:#?}"
        );
    }
}
