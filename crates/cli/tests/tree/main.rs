//! The tree keeps the shape docs/ARCHITECTURE.md draws (issue 18): no
//! import circle between the files of a crate, no source file over 600
//! lines, a bench of at most 5,000 lines of source, and benches that read
//! the ledger as a user would, without the store crate.
//!
//! An import is any path a file names into another file of its crate:
//! `use crate::a::B`, `super::b::c()`, `self::x`, or a child module's name
//! (`payments::create` in the file that declares `mod payments;`). A path
//! through a re-export (`crate::Config` where lib.rs says `pub use
//! config::Config`) counts as naming the file that defines it. The check
//! reads the sources as text; comments, strings and char literals are
//! skipped. Run it alone with `cargo test -p reroute --test tree`.

mod imports;
mod source;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use imports::{Crate, ModPath, circles, rust_files, shown};
use source::{code_only, named_paths};

const MAX_LINES: usize = 600;
/// The speed benches' source (`crates/bench/src`, issue 18). The benches
/// that start routers to kill them (crash, chaos) are `crates/faults`.
const MAX_BENCH_LINES: usize = 5_000;

/// This checkout, or the one `REROUTE_TREE` names (to check another).
fn root() -> PathBuf {
    std::env::var_os("REROUTE_TREE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

fn crates() -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = fs::read_dir(root().join("crates"))
        .expect("crates/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("Cargo.toml").is_file())
        .collect();
    all.sort();
    all
}

#[test]
fn no_file_imports_a_file_that_imports_it_back() {
    let mut problems = Vec::new();
    for dir in crates() {
        let krate = Crate::read(&dir);
        let graph = krate.imports();
        for group in circles(&graph) {
            let members: BTreeSet<&ModPath> = group.iter().collect();
            let mut lines = vec![format!(
                "{}: a circle of {} files:",
                krate.name,
                group.len()
            )];
            for m in &members {
                let into: Vec<String> = graph[*m]
                    .iter()
                    .filter(|t| members.contains(t))
                    .map(shown)
                    .collect();
                lines.push(format!("  {} imports {}", shown(m), into.join(", ")));
            }
            problems.push(lines.join("\n"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_checker_sees_a_circle_through_super_a_child_and_a_reexport() {
    let mut krate = Crate {
        name: "t".into(),
        files: BTreeMap::new(),
        code: BTreeMap::new(),
        reexports: BTreeMap::new(),
    };
    let sources = [
        (vec![], "mod api; mod state; pub use state::Shared;"),
        (vec!["api"], "mod payments; fn r() { payments::create(); }"),
        (
            vec!["api", "payments"],
            "use super::Helper; fn f(s: crate::Shared) {}",
        ),
        (
            vec!["state"],
            "// use crate::api::X;\nconst S: &str = \"crate::api::Y\"; fn g() { crate::api::payments::create(); }",
        ),
    ];
    for (module, text) in sources {
        let module: ModPath = module.into_iter().map(String::from).collect();
        krate.files.insert(module.clone(), PathBuf::new());
        krate.code.insert(module, code_only(text));
    }
    krate.reexports.insert(
        vec![],
        BTreeMap::from([("Shared".to_owned(), vec!["state".to_owned()])]),
    );
    let graph = krate.imports();
    let module = |s: &str| -> ModPath { s.split("::").map(String::from).collect() };
    assert_eq!(
        graph[&module("api::payments")],
        BTreeSet::from([module("api"), module("state")])
    );
    assert_eq!(
        graph[&module("state")],
        BTreeSet::from([module("api::payments")]),
        "comments and strings are not imports"
    );
    assert_eq!(
        graph[&module("api")],
        BTreeSet::from([module("api::payments")])
    );
    let found = circles(&graph);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].len(), 3, "api, api::payments and state: {found:?}");

    // An inline test module's `super` is its own file.
    let inline = named_paths(&code_only(
        "fn a() {} mod tests { use super::*; fn t() { super::a(); } }",
    ));
    assert!(
        inline
            .iter()
            .all(|(inside, _)| inside == &vec!["tests".to_owned()]),
        "{inline:?}"
    );
    let g = Crate {
        files: BTreeMap::from([(vec![], PathBuf::new())]),
        ..krate
    };
    assert_eq!(
        g.resolve(&vec![], &["tests".into()], &["super".into(), "a".into()]),
        Vec::<String>::new()
    );
}

#[test]
fn no_source_file_is_over_600_lines() {
    let mut long = Vec::new();
    for dir in crates() {
        let mut files = Vec::new();
        rust_files(&dir, &mut files);
        for file in files {
            let lines = fs::read_to_string(&file).expect("source").lines().count();
            if lines > MAX_LINES {
                long.push(format!("{} has {lines} lines", file.display()));
            }
        }
    }
    assert!(
        long.is_empty(),
        "over {MAX_LINES} lines:\n{}",
        long.join("\n")
    );
}

#[test]
fn the_bench_stays_small_and_no_bench_reads_the_store_crate() {
    let mut files = Vec::new();
    rust_files(&root().join("crates/bench/src"), &mut files);
    let lines: usize = files
        .iter()
        .map(|f| fs::read_to_string(f).expect("source").lines().count())
        .sum();
    assert!(
        lines <= MAX_BENCH_LINES,
        "crates/bench/src has {lines} lines"
    );
    for bench in ["crates/bench", "crates/faults"] {
        let manifest =
            fs::read_to_string(root().join(bench).join("Cargo.toml")).expect("Cargo.toml");
        let dependencies = manifest
            .split("[dev-dependencies]")
            .next()
            .expect("the [dependencies] part");
        assert!(
            !dependencies.contains("reroute-store"),
            "{bench} depends on reroute-store"
        );
    }
}

/// Every source file has its row in docs/ARCHITECTURE.md's module tables,
/// under its crate's heading, and every row names a file that exists.
#[test]
fn every_module_has_its_line_in_the_architecture() {
    let doc = fs::read_to_string(root().join("docs/ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let modules = &doc[doc.find("## Modules").expect("a Modules section")..];
    let mut problems = Vec::new();
    for dir in crates() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let heading = format!("### `crates/{name}`");
        let Some(start) = modules.find(&heading) else {
            problems.push(format!("no heading {heading}"));
            continue;
        };
        let section = &modules[start + heading.len()..];
        let section = &section[..section.find("\n#").unwrap_or(section.len())];
        let src = dir.join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let files: BTreeSet<String> = files
            .iter()
            .map(|f| f.strip_prefix(&src).unwrap().to_string_lossy().into_owned())
            .collect();
        let rows: BTreeSet<String> = section
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split_once("` |").map(|(file, _)| file.to_owned()))
            .filter(|file| file != "src/")
            .collect();
        for missing in files.difference(&rows) {
            problems.push(format!("crates/{name}/src/{missing} has no row"));
        }
        for stale in rows.difference(&files) {
            problems.push(format!(
                "a row names crates/{name}/src/{stale}, which is gone"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "docs/ARCHITECTURE.md, ## Modules:\n{}",
        problems.join("\n")
    );
}
