//! The documentation's shape, checked as the test command's `docs` suite:
//! the README is the front door (at most 250 lines), `docs/` holds at most 19
//! topic pages of at most 400 lines each, every relative link (and its
//! `#anchor`) resolves, the generated tables match the code, every benchmark
//! table sits between its markers with the line saying when and where it was
//! measured, no page carries an issue number, and scripts/ stays at most
//! 12 files and 1,200 lines of at most 120 characters. Caps that cannot be
//! met by widening lines: a page of at most 24,000 characters, a table row
//! of at most 300. (The configuration keys'
//! and the environment variables' tables are checked by the unit tests
//! beside their one list in the code: `src/secrets/config/tests.rs`,
//! `src/secrets/transport/vars.rs`.)

use st_secrets::error::st_result;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

const README_MAX_LINES: usize = 250;
// One page per topic, each provider its own (the conventions' list); a new topic (long runs,
// the leak guard, the job token) is a new page, a new detail is not.
const MAX_PAGES: usize = 19;

const PAGE_MAX_LINES: usize = 400;
const PAGE_MAX_CHARS: usize = 24_000;
const ROW_MAX_CHARS: usize = 300;
const SCRIPT_LINE_MAX_CHARS: usize = 120;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every page of docs/, as (path, text).
fn documents() -> Vec<(PathBuf, String)> {
    let mut out = vec![(root().join("README.md"), String::new())];
    let mut pages: Vec<PathBuf> = fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    out.extend(pages.into_iter().map(|p| (p, String::new())));
    for (p, text) in &mut out {
        *text = fs::read_to_string(&*p).unwrap();
    }
    out
}

/// The lines of `text` outside fenced code blocks.
fn prose(text: &str) -> Vec<&str> {
    let mut fenced = false;
    text.lines()
        .filter(|l| {
            if l.trim_start().starts_with("```") {
                fenced = !fenced;
                return false;
            }
            !fenced
        })
        .collect()
}

/// GitHub's anchor for a heading: lower case, punctuation but `-` and `_`
/// dropped, spaces as `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    prose(text)
        .iter()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| slug(l.trim_start_matches('#')))
        .collect()
}

/// The targets of the inline links `](target)` in the prose of `text`.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in prose(text) {
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            if let Some(end) = rest.find(')') {
                out.push(rest[..end].to_string());
                rest = &rest[end..];
            }
        }
    }
    out
}

/// What is wrong with the links of the document at `path`.
fn broken_links(path: &Path, text: &str) -> Vec<String> {
    let mut wrong = Vec::new();
    for target in links(text) {
        if target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        let (file, anchor) = target.split_once('#').unwrap_or((&target, ""));
        let (dest, dest_text) = if file.is_empty() {
            (path.to_path_buf(), text.to_string())
        } else {
            let dest = path.parent().unwrap().join(file);
            match fs::read_to_string(&dest) {
                Ok(t) => (dest, t),
                Err(_) if dest.is_dir() => (dest, String::new()),
                Err(_) => {
                    wrong.push(format!("{}: no file {target}", path.display()));
                    continue;
                }
            }
        };
        if !anchor.is_empty() && !anchors(&dest_text).contains(anchor) {
            wrong.push(format!(
                "{}: {target}: {} has no heading #{anchor}",
                path.display(),
                dest.display()
            ));
        }
    }
    wrong
}

#[test]
fn the_readme_and_the_pages_keep_their_size() {
    let docs = documents();
    let readme = docs[0].1.lines().count();
    assert!(
        readme <= README_MAX_LINES,
        "README.md has {readme} lines (at most {README_MAX_LINES}): topic text belongs on a docs/ page"
    );
    let pages = &docs[1..];
    assert!(
        pages.len() <= MAX_PAGES,
        "docs/ has {} pages (at most {MAX_PAGES})",
        pages.len()
    );
    for (p, text) in pages {
        let n = text.lines().count();
        assert!(
            n <= PAGE_MAX_LINES,
            "{} has {n} lines (at most {PAGE_MAX_LINES})",
            p.display()
        );
        assert!(
            text.starts_with("# "),
            "{} does not start with its title",
            p.display()
        );
        let chars = text.chars().count();
        assert!(
            chars <= PAGE_MAX_CHARS,
            "{} has {chars} characters (at most {PAGE_MAX_CHARS}): cut, do not merge pages",
            p.display()
        );
    }
    let wide: Vec<String> = docs
        .iter()
        .flat_map(|(p, text)| {
            prose(text)
                .into_iter()
                .filter(|l| l.starts_with('|') && l.chars().count() > ROW_MAX_CHARS)
                .map(move |l| {
                    format!(
                        "{}: {}...",
                        p.display(),
                        l.chars().take(60).collect::<String>()
                    )
                })
        })
        .collect();
    assert!(
        wide.is_empty(),
        "table rows over {ROW_MAX_CHARS} characters:\n{}",
        wide.join("\n")
    );
}

#[test]
fn every_relative_link_resolves() {
    let wrong: Vec<String> = documents()
        .iter()
        .flat_map(|(p, t)| broken_links(p, t))
        .collect();
    assert!(wrong.is_empty(), "broken links:\n{}", wrong.join("\n"));
}

#[test]
fn every_page_is_linked_from_the_readme() {
    let docs = documents();
    let readme_links = links(&docs[0].1);
    for (p, _) in &docs[1..] {
        let name = format!("docs/{}", p.file_name().unwrap().to_string_lossy());
        assert!(
            readme_links
                .iter()
                .any(|l| l.split('#').next() == Some(&name)),
            "README.md does not link {name}"
        );
    }
}

#[test]
fn the_link_checker_sees_a_missing_file_and_a_missing_anchor() {
    let dir = tempfile::TempDir::new().unwrap();
    let page = dir.path().join("a.md");
    fs::write(dir.path().join("b.md"), "# B\n\n## Some heading: here\n").unwrap();
    let ok = "see [b](b.md#some-heading-here) and [self](#a) and [web](https://x.org/y)\n# A\n";
    assert!(
        broken_links(&page, ok).is_empty(),
        "{:?}",
        broken_links(&page, ok)
    );
    let bad = "[c](c.md) [b](b.md#nowhere) [self](#missing)\n```\n# not a heading\n```\n";
    assert_eq!(
        broken_links(&page, bad).len(),
        3,
        "{:?}",
        broken_links(&page, bad)
    );
}

#[test]
fn the_result_code_table_is_the_enum() {
    const MARK: &str = "<!-- result codes: from st_result in src/error.rs -->\n";
    let page = fs::read_to_string(root().join("docs/c-api.md")).unwrap();
    let at = page
        .find(MARK)
        .expect("docs/c-api.md marks its result codes")
        + MARK.len();
    let end = page[at..].find("\n\n").map_or(page.len(), |e| at + e + 1);
    let mut want = String::from("| code | number | meaning |\n|---|---:|---|\n");
    for r in st_result::ALL {
        want.push_str(&format!(
            "| `{}` | {} | {} |\n",
            r.name(),
            *r as i32,
            r.description()
        ));
    }
    assert!(
        page[at..end] == want,
        "docs/c-api.md's result codes differ from st_result; the table should read:\n{want}"
    );
}

#[test]
fn every_benchmark_table_is_written_with_its_provenance() {
    // Most tables are in docs/benchmarks.md; a few live on their topic's
    // page (the test command's in docs/testing.md, the rotation window's in
    // docs/long-runs.md), each once.
    let page: String = documents()
        .into_iter()
        .filter(|(p, _)| p.starts_with(root().join("docs")))
        .map(|(_, text)| text)
        .collect();
    let script = fs::read_to_string(root().join("scripts/bench.sh")).unwrap();
    // The list may go on over several lines: up to its closing parenthesis.
    let all = script
        .split_once("\nALL=(")
        .and_then(|(_, rest)| rest.split_once(')'))
        .expect("scripts/bench.sh lists its benchmarks")
        .0;
    assert!(all.contains("commands"), "read the whole list: {all}");
    for name in all.split_whitespace() {
        let start = format!("<!-- bench:{name} -->");
        let end = format!("<!-- /bench:{name} -->");
        let a = page
            .find(&start)
            .unwrap_or_else(|| panic!("no page under docs/ has {start}"));
        let b = page
            .find(&end)
            .unwrap_or_else(|| panic!("no page under docs/ has {end}"));
        let block = &page[a..b];
        assert!(
            block.contains("\n_Measured ") && block.contains(", commit "),
            "the {name} table has no provenance line: run scripts/bench.sh {name}"
        );
        assert!(
            block.contains("\n|") || block.contains("\n- "),
            "the {name} table is empty: run scripts/bench.sh {name}"
        );
    }
}

#[test]
fn no_page_carries_an_issue_number() {
    for (p, text) in documents() {
        for (n, line) in prose(&text).iter().enumerate() {
            let lower = line.to_lowercase();
            let words: Vec<&str> = lower.split_whitespace().collect();
            for w in words.windows(2) {
                let numbered = w[1]
                    .trim_matches(|c: char| !c.is_ascii_digit())
                    .parse::<u32>();
                assert!(
                    !(w[0].starts_with("issue")
                        && w[1].starts_with(|c: char| c.is_ascii_digit())
                        && numbered.is_ok()),
                    "{}:{}: an issue number belongs in a commit message: {line}",
                    p.display(),
                    n + 1
                );
            }
        }
    }
}

#[test]
fn scripts_stay_small() {
    // The entry points only: test programs live beside what they test.
    let mut files = 0;
    let mut lines = 0;
    let mut wide = Vec::new();
    for e in fs::read_dir(root().join("scripts")).unwrap() {
        let path = e.unwrap().path();
        let text = fs::read_to_string(&path).unwrap();
        files += 1;
        lines += text.lines().count();
        wide.extend(
            text.lines()
                .enumerate()
                .filter(|(_, l)| l.chars().count() > SCRIPT_LINE_MAX_CHARS)
                .map(|(i, _)| format!("{}:{}", path.display(), i + 1)),
        );
    }
    assert!(files <= 12, "scripts/ has {files} files (at most 12)");
    assert!(lines <= 1200, "scripts/ has {lines} lines (at most 1,200)");
    assert!(
        wide.is_empty(),
        "scripts/ lines over {SCRIPT_LINE_MAX_CHARS} characters: {wide:?}"
    );
}

/// Every Debian package the scripts install (`ST_PACKAGES` in
/// scripts/lib.sh, as `CHECK:PACKAGE` pairs) is named in the install page's
/// table of what the two commands install.
#[test]
fn every_package_the_scripts_install_is_in_the_install_table() {
    let lib = fs::read_to_string(root().join("scripts/lib.sh")).unwrap();
    let start = lib
        .find("declare -A ST_PACKAGES=(")
        .expect("scripts/lib.sh declares ST_PACKAGES");
    let end = start + lib[start..].find("\n)\n").expect("ST_PACKAGES ends");
    let page = fs::read_to_string(root().join("docs/install-and-release.md")).unwrap();
    let table_start = page.find("## What the two commands install").unwrap();
    let table = &page[table_start..table_start + page[table_start..].find("\n## Install").unwrap()];
    let mut packages: BTreeSet<&str> = BTreeSet::new();
    for word in lib[start..end].split(|c: char| c.is_whitespace() || c == '"') {
        if let Some((_, package)) = word.split_once(':') {
            if !package.is_empty() && !package.starts_with('$') {
                packages.insert(package);
            }
        }
    }
    assert!(packages.len() > 20, "read the packages: {packages:?}");
    let missing: Vec<_> = packages
        .iter()
        .filter(|p| !table.contains(&format!("`{p}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "packages the scripts install that the table does not name: {missing:?}"
    );
    assert!(
        !lib.contains("apt-get install -y -qq \""),
        "apt-get installs without --no-install-recommends"
    );
}

/// The cost table (docs/testing.md, written by `scripts/bench.sh commands`)
/// records a passing run of every suite the test command runs, within what
/// the README promises (minutes fresh and again, GB in the checkout and in
/// HOME). Skipped inside the benchmark that writes it.
#[test]
fn the_cost_table_is_a_passing_run_of_every_suite_within_the_readmes_figures() {
    if std::env::var_os("ST_BENCH_COMMANDS").is_some() {
        // Inside the run that measures it (benches/commands/run.sh): the
        // table read is the one being replaced.
        eprintln!("skipped: the cost table is being measured");
        return;
    }
    let page = fs::read_to_string(root().join("docs/testing.md")).unwrap();
    let a = page.find("<!-- bench:commands -->").unwrap();
    let block = &page[a..a + page[a..].find("<!-- /bench:commands -->").unwrap()];
    assert!(
        !block.contains("failed"),
        "the cost table records a failed run: run scripts/bench.sh commands"
    );
    let script = fs::read_to_string(root().join("scripts/test-all.sh")).unwrap();
    let list = &script[script.find("\nSUITES=(").expect("test-all.sh lists SUITES")..];
    let suites: Vec<&str> = list[..list.find("\n)\n").unwrap()]
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix('"')?
                .split_once('|')
                .map(|(name, _)| name)
        })
        .filter(|name| *name != "tsan") // run only when named
        .collect();
    assert!(suites.len() > 15, "read the suites: {suites:?}");
    for s in suites.iter().chain(&["leftovers"]) {
        assert!(
            block.contains(&format!("| `{s}` |")),
            "the cost table has no row for {s}"
        );
    }
    let row = |from: &str| -> Vec<f64> {
        let line = block
            .lines()
            .find(|l| l.starts_with(&format!("| 2 | {from} |")))
            .unwrap_or_else(|| panic!("no command 2 row '{from}'"));
        line.split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter_map(|w| w.parse::<f64>().ok())
            .collect()
    };
    let (fresh, again) = (row("fresh clone, fresh HOME"), row("again"));
    let readme = fs::read_to_string(root().join("README.md"))
        .unwrap()
        .replace('\n', " ");
    let promised = |before: &str, after: &str| -> f64 {
        let at = readme
            .find(after)
            .unwrap_or_else(|| panic!("the README says '{after}'"));
        let head = &readme[..at];
        let number = head[head.rfind(before).unwrap_or(0)..]
            .split(|c: char| !c.is_ascii_digit())
            .find(|w| !w.is_empty())
            .unwrap();
        number.parse().unwrap()
    };
    // fresh: [2, minutes, GB checkout, GB HOME]; again: [2, minutes, GB, GB].
    assert!(
        fresh[1] <= promised("under ", " minutes on a fresh"),
        "fresh: {fresh:?}"
    );
    assert!(
        again[1] <= promised("under ", " when run again"),
        "again: {again:?}"
    );
    assert!(
        fresh[2] <= promised("about ", " GB in the checkout"),
        "checkout: {fresh:?}"
    );
    assert!(
        again[3] <= promised("plus ", " GB of tools"),
        "HOME: {again:?}"
    );
}
