//! The layout rules of the library (`src/`) and the tool (`cli/src/`): no
//! module imports from a module that imports it, and every import is one the
//! module map of the crate root (`src/lib.rs`, `cli/src/lib.rs`) states in
//! its `imports` column, which names no import the code does not make.
//!
//! Each file under `src/` is one module; an edge A -> B is a
//! path in A that names something of B: `crate::b::...`, `super::...`,
//! `self::...`, or a `use` of a child module. `mod` declarations are not
//! imports, and a file's inline `mod tests { ... }` (at its end, by the house
//! style) is left out, so test modules may import what they test. A path
//! through the crate root's re-exports (`crate::Error`) is followed to the
//! module that defines the item.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

/// `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`; `src/lib.rs` is the root, "".
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts.join("::")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs")
            && path.file_name().unwrap() != "main.rs"
        {
            out.push(path);
        }
    }
}

/// The code of a file without comments and without its trailing inline
/// `mod tests { ... }`.
fn code(text: &str) -> String {
    let mut out = String::new();
    let mut in_block = false;
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("mod tests {") {
            break;
        }
        if in_block {
            if t.contains("*/") {
                in_block = false;
            }
            continue;
        }
        if t.starts_with("/*") {
            in_block = !t.contains("*/");
            continue;
        }
        if t.starts_with("//") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every path of `code` that starts with `crate::`, `super::` or `self::`,
/// expanded over `{...}` groups, as segment lists (first segment included).
fn paths(code: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let bytes: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let starts_word = i == 0 || !is_ident(bytes[i - 1]);
        if starts_word && bytes[i].is_ascii_alphabetic() {
            let start = i;
            while i < bytes.len() && is_ident(bytes[i]) {
                i += 1;
            }
            let word: String = bytes[start..i].iter().collect();
            if matches!(word.as_str(), "crate" | "super" | "self")
                && bytes.get(i..i + 2) == Some(&[':', ':'])
            {
                let (mut list, end) = path_tail(&bytes, i + 2, vec![word]);
                found.append(&mut list);
                i = end;
            }
        } else {
            i += 1;
        }
    }
    found
}

/// Parses the rest of a path after `prefix::`, expanding groups.
fn path_tail(c: &[char], mut i: usize, prefix: Vec<String>) -> (Vec<Vec<String>>, usize) {
    let skip_ws = |i: &mut usize| {
        while *i < c.len() && c[*i].is_whitespace() {
            *i += 1;
        }
    };
    skip_ws(&mut i);
    if c.get(i) == Some(&'{') {
        let mut all = Vec::new();
        i += 1;
        loop {
            skip_ws(&mut i);
            match c.get(i) {
                Some('}') => return (all, i + 1),
                Some(',') => i += 1,
                None => return (all, i),
                _ => {
                    let (mut list, end) = path_tail(c, i, prefix.clone());
                    all.append(&mut list);
                    i = end;
                }
            }
        }
    }
    let mut segs = prefix;
    loop {
        let start = i;
        while i < c.len() && is_ident(c[i]) {
            i += 1;
        }
        if i == start {
            break;
        }
        segs.push(c[start..i].iter().collect());
        if c.get(i..i + 2) == Some(&[':', ':']) {
            i += 2;
            skip_ws(&mut i);
            if c.get(i) == Some(&'{') {
                return path_tail(c, i, segs);
            }
        } else {
            break;
        }
    }
    (vec![segs], i)
}

/// The module a path names something of: the longest module prefix.
/// (`self::` and `super::` are relative to the file's module, whether it is
/// `a/b.rs` or `a/b/mod.rs`.)
fn target(modules: &BTreeSet<String>, from: &str, segs: &[String]) -> String {
    let mut base: Vec<String> = if from.is_empty() {
        vec![]
    } else {
        from.split("::").map(str::to_owned).collect()
    };
    let mut rest = &segs[1..];
    match segs[0].as_str() {
        "crate" => base.clear(),
        "self" => {}
        "super" => {
            base.pop();
            while rest.first().map(String::as_str) == Some("super") {
                base.pop();
                rest = &rest[1..];
            }
        }
        _ => unreachable!("paths() yields crate::, self:: and super:: paths only"),
    }
    let mut best = base.join("::");
    let mut cur = base;
    for s in rest {
        cur.push(s.clone());
        let name = cur.join("::");
        if modules.contains(&name) {
            best = name;
        } else {
            break;
        }
    }
    best
}

/// `code` without the paths of `pub(in path)`, which name where an item
/// is visible, not something used.
fn without_visibility_paths(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find("pub(in ") {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        let end = after.find(')').map_or(after.len(), |e| e + 1);
        out.push_str("pub(crate)");
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// The paths of `code` that start with a plain name (`name::...`, not
/// `a::name::...`, `crate::`, `super::` or `self::`), as `self::` paths.
fn bare_paths(code: &str) -> Vec<Vec<String>> {
    let c: Vec<char> = code.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < c.len() {
        if !(is_ident(c[i]) && (i == 0 || !is_ident(c[i - 1]))) {
            i += 1;
            continue;
        }
        let start = i;
        while i < c.len() && is_ident(c[i]) {
            i += 1;
        }
        let word: String = c[start..i].iter().collect();
        let before = c[..start].iter().rev().find(|ch| !ch.is_whitespace());
        if before != Some(&':')
            && c.get(i..i + 2) == Some(&[':', ':'])
            && !matches!(word.as_str(), "crate" | "super" | "self")
        {
            let (mut list, end) = path_tail(&c, start, vec!["self".to_owned()]);
            found.append(&mut list);
            i = end.max(i);
        }
    }
    found
}

/// The module graph of the crate under `src`, with root re-exports followed.
fn graph(src: &Path) -> Graph {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(src, f)).collect();
    let root_code = code(&fs::read_to_string(src.join("lib.rs")).unwrap());
    // `pub use a::b::{X, Y}` at the root: item name -> defining module.
    let mut reexports: BTreeMap<String, String> = BTreeMap::new();
    for stmt in root_code.split(';') {
        let stmt = stmt.trim();
        if let Some(rest) = stmt.strip_prefix("pub use ") {
            let text = format!("crate::{rest}");
            for segs in paths(&text) {
                let module = target(&modules, "", &segs);
                reexports.insert(segs.last().unwrap().clone(), module);
            }
        }
    }
    let mut g = Graph::new();
    for file in &files {
        let from = module_of(src, file);
        let is_dir = file.file_name().unwrap() == "mod.rs" || from.is_empty();
        let text = without_visibility_paths(&code(&fs::read_to_string(file).unwrap()));
        let mut edges = BTreeSet::new();
        for segs in paths(&text) {
            let mut to = target(&modules, &from, &segs);
            if to.is_empty() && segs[0] == "crate" && segs.len() > 1 {
                if let Some(m) = reexports.get(&segs[1]) {
                    to = m.clone();
                }
            }
            if to != from {
                edges.insert(to);
            }
        }
        // A bare path through a child in a directory module: `child::X`
        // anywhere (`use child::X`, `child::f()`, `pub use child::X`).
        if is_dir {
            for segs in bare_paths(&text) {
                let to = target(&modules, &from, &segs);
                if to != from {
                    edges.insert(to);
                }
            }
        }
        g.insert(from, edges);
    }
    g
}

/// The paths of the crate under `src` that reach an item through the crate
/// root's re-exports (`crate::Error` instead of `crate::error::Error`), as
/// `file: path`. Such a path draws a false arrow from the ground floor back
/// up through `lib.rs`, so every file but `lib.rs` names the defining module.
fn root_reexport_paths(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(src, f)).collect();
    let mut out = Vec::new();
    for file in &files {
        let from = module_of(src, file);
        if from.is_empty() {
            continue;
        }
        let text = code(&fs::read_to_string(file).unwrap());
        for segs in paths(&text) {
            if segs[0] == "crate" && segs.len() > 1 && !modules.contains(&segs[1]) {
                let rel = file.strip_prefix(src).unwrap().display().to_string();
                out.push(format!("{rel}: {}", segs.join("::")));
            }
        }
    }
    out
}

/// The cycles of `g`, each as the list of modules along it.
fn cycles(g: &Graph) -> Vec<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        g: &Graph,
        n: &str,
        marks: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
        out: &mut Vec<Vec<String>>,
    ) {
        marks.insert(n.to_owned(), Mark::Open);
        stack.push(n.to_owned());
        for m in g.get(n).into_iter().flatten() {
            match marks.get(m).copied().unwrap_or(Mark::New) {
                Mark::Open => {
                    let at = stack.iter().position(|s| s == m).unwrap();
                    let mut cycle = stack[at..].to_vec();
                    cycle.push(m.clone());
                    out.push(cycle);
                }
                Mark::New => visit(g, m, marks, stack, out),
                Mark::Done => {}
            }
        }
        stack.pop();
        marks.insert(n.to_owned(), Mark::Done);
    }
    let mut marks = BTreeMap::new();
    let mut out = Vec::new();
    for n in g.keys() {
        if marks.get(n).copied().unwrap_or(Mark::New) == Mark::New {
            visit(g, n, &mut marks, &mut Vec::new(), &mut out);
        }
    }
    out
}

fn show(cycle: &[String]) -> String {
    cycle
        .iter()
        .map(|m| if m.is_empty() { "crate" } else { m })
        .collect::<Vec<_>>()
        .join(" -> ")
}

/// The module map of a crate root: each row's module (`(root)` is "") and
/// the modules its `imports` column names.
fn module_map(root: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut map = BTreeMap::new();
    for line in root.lines() {
        let Some(row) = line.trim().strip_prefix("//! |") else {
            continue;
        };
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        if cells.len() < 3 || cells[0] == "module" || cells[0].starts_with("---") {
            continue;
        }
        let name = match cells[0] {
            "(root)" => String::new(),
            c => c.trim_matches('`').to_owned(),
        };
        let imports = cells[2]
            .split(',')
            .map(|c| c.trim().trim_matches('`').to_owned())
            .filter(|c| !c.is_empty() && c != "nothing")
            .collect();
        map.insert(name, imports);
    }
    map
}

/// The row of `module` in the map: the longest row name that is `module`
/// or a parent of it (the root row is the root file alone).
fn row_of<'m>(map: &'m BTreeMap<String, BTreeSet<String>>, module: &str) -> Option<&'m String> {
    map.keys()
        .filter(|name| {
            if name.is_empty() {
                module.is_empty()
            } else {
                module == name.as_str() || module.starts_with(&format!("{name}::"))
            }
        })
        .max_by_key(|name| name.len())
}

/// What breaks the map's layering: an import its row does not name, a row
/// naming an import the code does not make, a module without a row.
fn map_violations(g: &Graph, map: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let exempt = |m: &str| m == "fuzz_api" || m == "tests" || m.ends_with("::tests");
    let mut used: BTreeMap<&String, BTreeSet<&String>> = BTreeMap::new();
    let mut out = Vec::new();
    for (from, tos) in g {
        if exempt(from) {
            continue;
        }
        let Some(row) = row_of(map, from) else {
            out.push(format!("module {from} has no row in the module map"));
            continue;
        };
        used.entry(row).or_default();
        for to in tos {
            let Some(target) = row_of(map, to) else {
                continue;
            };
            if target == row {
                continue;
            }
            if map[row].contains(target) {
                used.entry(row).or_default().insert(target);
            } else {
                let show = |m: &str| {
                    if m.is_empty() {
                        "(root)".to_owned()
                    } else {
                        m.to_owned()
                    }
                };
                out.push(format!(
                    "{} imports {} ({}), which its row `{}` does not name",
                    show(from),
                    show(to),
                    show(target),
                    show(row)
                ));
            }
        }
    }
    for (row, imports) in map {
        let made = used.get(row).cloned().unwrap_or_default();
        for i in imports {
            if !made.contains(i) {
                out.push(format!(
                    "the row `{}` names `{i}`, which it does not import",
                    if row.is_empty() { "(root)" } else { row }
                ));
            }
        }
    }
    out
}

/// Checks one crate: its sources under `dir/src`, its map in `lib.rs`.
fn check_crate(dir: &Path, min_modules: usize) {
    let src = dir.join("src");
    let g = graph(&src);
    assert!(
        g.len() >= min_modules,
        "the graph was read: {} modules",
        g.len()
    );
    let found: Vec<String> = cycles(&g).iter().map(|c| show(c)).collect();
    assert!(found.is_empty(), "import cycles:\n{}", found.join("\n"));
    let map = module_map(&fs::read_to_string(src.join("lib.rs")).unwrap());
    assert!(
        map.len() > 5,
        "the module map of {} was read",
        src.display()
    );
    let wrong = map_violations(&g, &map);
    assert!(
        wrong.is_empty(),
        "{} does not match its module map:\n{}",
        src.display(),
        wrong.join("\n")
    );
    let through_root = root_reexport_paths(&src);
    assert!(
        through_root.is_empty(),
        "paths through the crate root's re-exports (name the defining module):\n{}",
        through_root.join("\n")
    );
}

#[test]
fn the_checker_sees_a_path_through_the_crate_root() {
    let dir = tempfile::TempDir::new().unwrap();
    let src = dir.path();
    let write = |p: &str, s: &str| fs::write(src.join(p), s).unwrap();
    write("lib.rs", "mod a;\nmod b;\npub use a::A;\n");
    write("a.rs", "pub struct A;\n");
    write("b.rs", "use crate::a::A;\n");
    assert!(root_reexport_paths(src).is_empty());
    write("b.rs", "fn f() -> crate::A { todo!() }\n");
    assert_eq!(root_reexport_paths(src), vec!["b.rs: crate::A".to_owned()]);
}

#[test]
fn the_library_follows_its_module_map() {
    check_crate(Path::new(env!("CARGO_MANIFEST_DIR")), 20);
}

#[test]
fn the_tool_follows_its_module_map() {
    check_crate(&Path::new(env!("CARGO_MANIFEST_DIR")).join("cli"), 10);
}

#[test]
fn the_map_checker_sees_an_import_the_map_does_not_state() {
    let dir = tempfile::TempDir::new().unwrap();
    let src = dir.path();
    let write = |p: &str, s: &str| fs::write(src.join(p), s).unwrap();
    write(
        "lib.rs",
        "//! | module | what | imports |\n//! |---|---|---|\n//! | `a` | x | nothing |\n\
         //! | `b` | y | `a` |\n//! | (root) | z | nothing |\nmod a;\nmod b;\n",
    );
    write("a.rs", "pub struct A;\n");
    write("b.rs", "use crate::a::A;\n");
    let map = module_map(&fs::read_to_string(src.join("lib.rs")).unwrap());
    assert!(map_violations(&graph(src), &map).is_empty());
    write("a.rs", "use crate::b;\npub struct A;\n");
    write("b.rs", "pub struct B;\n");
    let wrong = map_violations(&graph(src), &map);
    assert!(
        wrong.iter().any(|w| w.starts_with("a imports b"))
            && wrong.iter().any(|w| w.contains("`b` names `a`")),
        "{wrong:?}"
    );
}

#[test]
fn the_checker_sees_a_cycle() {
    // The check must be able to fail: a planted two-module cycle, a cycle
    // through a `{...}` group, one through a root re-export, and ones
    // through a directory module's bare paths.
    let dir = tempfile::TempDir::new().unwrap();
    let src = dir.path();
    let write = |p: &str, s: &str| {
        let path = src.join(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, s).unwrap();
    };
    write("lib.rs", "mod a;\nmod b;\nmod c;\npub use c::Thing;\n");
    write("a.rs", "use crate::b::X;\n");
    write("b.rs", "use crate::{a::Y, c};\n");
    write("c.rs", "// use crate::a;\npub struct Thing;\n");
    let g = graph(src);
    let found: Vec<String> = cycles(&g).iter().map(|c| show(c)).collect();
    assert_eq!(found, vec!["a -> b -> a".to_owned()], "{g:?}");

    write("c.rs", "use crate::Thing as T;\nuse super::b;\n");
    write("b.rs", "use crate::Thing;\n");
    let found: Vec<String> = cycles(&graph(src)).iter().map(|c| show(c)).collect();
    assert!(found.iter().any(|c| c.contains("b -> c")), "{found:?}");

    write("d/mod.rs", "mod e;\npub use e::E;\n");
    write("d/e.rs", "use super::D;\npub struct E;\n");
    let found: Vec<String> = cycles(&graph(src)).iter().map(|c| show(c)).collect();
    assert!(found.contains(&"d -> d::e -> d".to_owned()), "{found:?}");

    // A directory module's bare path through its child, outside a `use`
    // (`f::g()`, a field's type), and one through a grandchild; a
    // visibility path (`pub(in crate::h)`) is no import.
    write("lib.rs", "mod f;\nmod h;\n");
    write(
        "f/mod.rs",
        "mod g;\npub struct F(g::G);\nfn run() { g::go(); }\n",
    );
    write("f/g.rs", "use super::F;\npub struct G;\npub fn go() {}\n");
    write(
        "h/mod.rs",
        "mod i;\nfn run() { i::j::go(); }\nstatic K: i::K = i::K;\n",
    );
    write(
        "h/i/mod.rs",
        "pub(in crate::h) mod j;\npub(in crate::h) struct K;\n",
    );
    write("h/i/j.rs", "use crate::h::run;\npub fn go() {}\n");
    let found: Vec<String> = cycles(&graph(src)).iter().map(|c| show(c)).collect();
    assert!(found.contains(&"f -> f::g -> f".to_owned()), "{found:?}");
    assert!(found.contains(&"h -> h::i::j -> h".to_owned()), "{found:?}");
    assert!(!found.contains(&"h -> h::i -> h".to_owned()), "{found:?}");
}

/// The sources of the bindings' own languages under `dir` (Go, JavaScript,
/// Python), without installed packages, tests and generated files.
fn binding_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if !matches!(
                name.as_str(),
                "node_modules" | "test" | "tests" | "prebuilds"
            ) {
                binding_files(&path, out);
            }
        } else if ["go", "js", "mjs", "py"]
            .iter()
            .any(|e| path.extension().is_some_and(|x| x == *e))
            && !name.ends_with("_test.go")
        {
            out.push(path);
        }
    }
}

#[test]
fn no_source_file_outgrows_700_lines() {
    // Test files (`tests.rs`, `tests/`) excepted: a module past this size
    // is split by concern, as cache/ and store/ are. The bindings' Go,
    // JavaScript and Python count too, and the Slurm plugin's C.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "cli/src", "bindings/python/src"] {
        rust_files(&root.join(dir), &mut files);
    }
    let before = files.len();
    binding_files(&root.join("bindings"), &mut files);
    assert!(files.len() > before + 10, "the bindings' sources were read");
    // The Slurm plugin's C.
    let plugin = fs::read_dir(root.join("slurm")).unwrap();
    files.extend(
        plugin
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "c" || x == "h")),
    );
    let big: Vec<String> = files
        .iter()
        .filter(|f| {
            f.file_name().unwrap() != "tests.rs"
                && !f.components().any(|c| c.as_os_str() == "tests")
        })
        .filter_map(|f| {
            let n = fs::read_to_string(f).unwrap().lines().count();
            (n > 700).then(|| format!("{} ({n} lines)", f.display()))
        })
        .collect();
    assert!(files.len() > 40, "the sources were read");
    assert!(
        big.is_empty(),
        "source files over 700 lines:\n{}",
        big.join("\n")
    );
}

/// The Rust files under `dir` whose module is also a folder beside them
/// (`x.rs` next to `x/`): a module with children is `x/mod.rs`, so a
/// module's files are found in one place.
fn split_modules(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(dir, &mut files);
    files
        .iter()
        .filter(|f| f.file_name().unwrap() != "mod.rs" && f.with_extension("").is_dir())
        .map(|f| f.display().to_string())
        .collect()
}

#[test]
fn a_module_with_children_is_a_folder_with_mod_rs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    for dir in ["src", "cli/src", "bindings/python/src"] {
        found.extend(split_modules(&root.join(dir)));
    }
    assert!(
        found.is_empty(),
        "x.rs beside x/ (move it to x/mod.rs):\n{}",
        found.join("\n")
    );
    // The check must be able to fail.
    let dir = tempfile::TempDir::new().unwrap();
    fs::create_dir(dir.path().join("a")).unwrap();
    fs::write(dir.path().join("a.rs"), "mod tests;\n").unwrap();
    fs::write(dir.path().join("a/tests.rs"), "\n").unwrap();
    assert_eq!(split_modules(dir.path()).len(), 1);
}
