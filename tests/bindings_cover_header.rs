//! Every function of `include/st_secrets.h` is called by the Go and the Node
//! binding, or listed with a reason in that binding's `header-exclusions.txt`.
//! (The Python binding is left out: it is being replaced by an extension over
//! the Rust API, which does not go through the header.)

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `text` without its `/* ... */` comments.
fn strip_block_comments(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        rest = rest[start..]
            .find("*/")
            .map_or("", |end| &rest[start + end + 2..]);
    }
    out + rest
}

/// The functions a C header declares (comments removed first).
fn header_functions(header: &str) -> BTreeSet<String> {
    let code = strip_block_comments(header);
    // Preprocessor lines and the `extern "C" {` / `}` of C++ are not declarations.
    let code: String = code
        .lines()
        .filter(|l| {
            let t = l.trim();
            !(t.starts_with('#') || t.starts_with("extern \"C\"") || t == "}")
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let mut names = BTreeSet::new();
    for stmt in code.split(';') {
        let stmt = stmt.trim();
        if stmt.starts_with("typedef") || stmt.contains('{') || stmt.contains('}') {
            continue;
        }
        if let Some(paren) = stmt.find('(') {
            let head = &stmt[..paren];
            let name: String = head
                .chars()
                .rev()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            if name.starts_with("st_") {
                names.insert(name);
            }
        }
    }
    names
}

/// `name: reason` lines; `#` starts a comment line.
fn exclusions(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, reason) = l.split_once(':').unwrap_or((l, ""));
            (name.trim().to_owned(), reason.trim().to_owned())
        })
        .collect()
}

/// How a binding's code uses a C function.
#[derive(Clone, Copy)]
enum Use {
    /// `name(`: a call from Go through cgo, or from a C shim in the cgo
    /// preamble (inside `/* */`, so only `//` comments are ignored).
    Call,
    /// `C.name` not followed by more of a name: a call or a reference (Node
    /// passes `C.st_cache_free` as a finalizer); comments are ignored.
    Reference,
}

/// Whether `code` uses `name` the way `how` says.
fn uses(code: &str, name: &str, how: Use) -> bool {
    let code = match how {
        Use::Call => code.to_owned(),
        Use::Reference => strip_block_comments(code),
    };
    code.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .any(|l| {
            let mut from = 0;
            while let Some(i) = l[from..].find(name) {
                let at = from + i;
                let before = &l[..at];
                let after = &l[at + name.len()..];
                let word_start = !before
                    .chars()
                    .last()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
                let word_end = !after
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
                let used = match how {
                    Use::Call => word_start && after.starts_with('('),
                    Use::Reference => before.ends_with("C.") && word_end,
                };
                if used {
                    return true;
                }
                from = at + name.len();
            }
            false
        })
}

/// What is wrong with one binding's coverage of the header.
fn problems(
    header: &BTreeSet<String>,
    code: &str,
    how: Use,
    excluded: &[(String, String)],
) -> Vec<String> {
    let mut out = Vec::new();
    for (name, reason) in excluded {
        if !header.contains(name) {
            out.push(format!("{name} is excluded but not in the header"));
        } else if uses(code, name, how) {
            out.push(format!("{name} is excluded but the binding calls it"));
        }
        if reason.is_empty() {
            out.push(format!("{name} is excluded without a reason"));
        }
    }
    for name in header {
        if !uses(code, name, how) && !excluded.iter().any(|(n, _)| n == name) {
            out.push(format!(
                "{name} is in the header but neither called nor in header-exclusions.txt"
            ));
        }
    }
    out
}

fn read_sources(dir: &Path, keep: impl Fn(&Path) -> bool) -> String {
    let mut code = String::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() && keep(&path) {
            code.push_str(&fs::read_to_string(&path).unwrap());
            code.push('\n');
        }
    }
    code
}

fn check(binding: &str, code: &str, how: Use) {
    let header =
        header_functions(&fs::read_to_string(root().join("include/st_secrets.h")).unwrap());
    assert!(header.len() >= 59, "read {} header functions", header.len());
    let list = root()
        .join("bindings")
        .join(binding)
        .join("header-exclusions.txt");
    let excluded = exclusions(&fs::read_to_string(&list).unwrap());
    let found = problems(&header, code, how, &excluded);
    assert!(
        found.is_empty(),
        "bindings/{binding}:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_go_binding_covers_the_header() {
    let code = read_sources(&root().join("bindings/go"), |p| {
        let name = p.file_name().unwrap().to_string_lossy();
        name.ends_with(".go") && !name.ends_with("_test.go")
    });
    check("go", &code, Use::Call);
}

#[test]
fn the_node_binding_covers_the_header() {
    // The package's own modules: index.js and lib/ (not signatures.js, the
    // declarations, which name every function whether bound or not).
    let node = root().join("bindings/node");
    let js = |p: &Path| p.extension().is_some_and(|e| e == "js");
    let code = read_sources(&node, |p| js(p) && !p.ends_with("signatures.js"))
        + &read_sources(&node.join("lib"), js);
    check("node", &code, Use::Reference);
}

#[test]
fn a_function_added_to_the_header_and_not_bound_fails() {
    let header = fs::read_to_string(root().join("include/st_secrets.h")).unwrap();
    let grown = header.replace(
        "void st_crypto_reset(void);",
        "void st_crypto_reset(void);\n\n/** New. */\nst_result st_brand_new(const char *x,\n    st_error **err);",
    );
    let names = header_functions(&grown);
    assert!(
        names.contains("st_brand_new"),
        "the parser reads a multi-line declaration"
    );
    let code = "C.st_crypto_reset()\nst_other(x)\n// st_brand_new(x)\n/* C.st_brand_new */";
    let found = problems(&names, code, Use::Reference, &[]);
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("st_brand_new is in the header")),
        "{found:?}"
    );
    // A stale or reasonless exclusion fails too.
    let found = problems(
        &names,
        code,
        Use::Call,
        &[
            ("st_crypto_reset".into(), "".into()),
            ("st_gone".into(), "x".into()),
        ],
    );
    assert!(found
        .iter()
        .any(|p| p.contains("st_crypto_reset is excluded but the binding calls it")));
    assert!(found.iter().any(|p| p.contains("without a reason")));
    assert!(found
        .iter()
        .any(|p| p.contains("st_gone is excluded but not in the header")));
}
