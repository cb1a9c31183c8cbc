//! A crate's source files as modules, and which file imports which: the
//! graph the circle check walks.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::source::{code_only, expand_use, named_paths};

/// A module's path inside its crate: `[]` for lib.rs/main.rs, `["api",
/// "payments"]` for src/api/payments.rs.
pub type ModPath = Vec<String>;

pub fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module a file under `src` is, or `None` for a binary under src/bin.
pub fn module_of(src: &Path, file: &Path) -> Option<ModPath> {
    let rel = file.strip_prefix(src).ok()?.with_extension("");
    let mut parts: ModPath = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.first().is_some_and(|p| p == "bin") {
        return None;
    }
    if parts
        .last()
        .is_some_and(|p| p == "mod" || p == "lib" || p == "main")
    {
        parts.pop();
    }
    Some(parts)
}

/// One crate's files as modules, what each declares and re-exports.
pub struct Crate {
    pub name: String,
    pub files: BTreeMap<ModPath, PathBuf>,
    pub code: BTreeMap<ModPath, String>,
    /// `pub use x::y::Name` in a module: Name → x::y::Name, resolved.
    pub reexports: BTreeMap<ModPath, BTreeMap<String, ModPath>>,
}

impl Crate {
    pub fn read(dir: &Path) -> Crate {
        let src = dir.join("src");
        let mut paths = Vec::new();
        rust_files(&src, &mut paths);
        let mut files = BTreeMap::new();
        let mut code = BTreeMap::new();
        for path in paths {
            if let Some(module) = module_of(&src, &path) {
                let text = fs::read_to_string(&path).expect("source file");
                code.insert(module.clone(), code_only(&text));
                files.insert(module, path);
            }
        }
        let mut krate = Crate {
            name: dir.file_name().unwrap().to_string_lossy().into_owned(),
            files,
            code,
            reexports: BTreeMap::new(),
        };
        let mut reexports = BTreeMap::new();
        for (module, code) in &krate.code {
            let mut names = BTreeMap::new();
            for (at, _) in code.match_indices(" use ") {
                let before = code[..at].trim_end();
                if !(before.ends_with("pub") || before.ends_with("pub(crate)")) {
                    continue;
                }
                let tree = &code[at + 5..];
                let tree = &tree[..tree.find(';').unwrap_or(tree.len())];
                for path in expand_use(tree) {
                    let name = path.last().cloned().unwrap_or_default();
                    names.insert(name, krate.resolve(module, &[], &path));
                }
            }
            reexports.insert(module.clone(), names);
        }
        krate.reexports = reexports;
        krate
    }

    /// The file a path named in `module` (inside its inline modules
    /// `inline`) leads to, as far as it names files.
    pub fn resolve(&self, module: &ModPath, inline: &[String], path: &[String]) -> ModPath {
        let here: ModPath = module.iter().chain(inline).cloned().collect();
        let (mut at, rest): (ModPath, &[String]) = match path[0].as_str() {
            "crate" => (vec![], &path[1..]),
            "super" | "self" => (here.clone(), path),
            first => {
                let child: ModPath = module.iter().cloned().chain([first.to_owned()]).collect();
                if inline.is_empty() && self.files.contains_key(&child) {
                    (module.clone(), path)
                } else {
                    return module.clone();
                }
            }
        };
        for segment in rest {
            match segment.as_str() {
                "super" => {
                    at.pop();
                }
                "self" => {}
                name => {
                    let next: ModPath = at.iter().cloned().chain([name.to_owned()]).collect();
                    if self.files.contains_key(&next) || inline_prefix(&here, &next) {
                        at = next;
                    } else {
                        let file = self.file_of(&at);
                        if let Some(target) = self.reexports.get(&file).and_then(|r| r.get(name))
                            && *target != file
                        {
                            return target.clone();
                        }
                        break;
                    }
                }
            }
        }
        self.file_of(&at)
    }

    /// The longest prefix of `path` that is a file.
    fn file_of(&self, path: &ModPath) -> ModPath {
        let mut path = path.clone();
        while !self.files.contains_key(&path) && !path.is_empty() {
            path.pop();
        }
        path
    }

    /// Which files each file imports.
    pub fn imports(&self) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
        let mut graph = BTreeMap::new();
        for (module, code) in &self.code {
            let mut targets = BTreeSet::new();
            for (inline, path) in named_paths(code) {
                let target = self.resolve(module, &inline, &path);
                if target != *module {
                    targets.insert(target);
                }
            }
            graph.insert(module.clone(), targets);
        }
        graph
    }
}

fn inline_prefix(here: &ModPath, next: &ModPath) -> bool {
    next.len() <= here.len() && here[..next.len()] == next[..]
}

/// The groups of files that import each other around a circle (Tarjan).
pub fn circles(graph: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Vec<Vec<ModPath>> {
    struct Walk<'g> {
        graph: &'g BTreeMap<ModPath, BTreeSet<ModPath>>,
        index: BTreeMap<&'g ModPath, usize>,
        low: BTreeMap<&'g ModPath, usize>,
        stack: Vec<&'g ModPath>,
        found: Vec<Vec<ModPath>>,
    }
    impl<'g> Walk<'g> {
        fn visit(&mut self, v: &'g ModPath) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            for w in self.graph.get(v).into_iter().flatten() {
                if !self.graph.contains_key(w) {
                    continue;
                }
                if !self.index.contains_key(w) {
                    self.visit(w);
                    self.low.insert(v, self.low[v].min(self.low[w]));
                } else if self.stack.contains(&w) {
                    self.low.insert(v, self.low[v].min(self.index[w]));
                }
            }
            if self.low[v] == self.index[v] {
                let mut group = Vec::new();
                while let Some(w) = self.stack.pop() {
                    group.push(w.clone());
                    if w == v {
                        break;
                    }
                }
                if group.len() > 1 {
                    self.found.push(group);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v) {
            walk.visit(v);
        }
    }
    walk.found
}

pub fn shown(module: &ModPath) -> String {
    if module.is_empty() {
        "(crate root)".into()
    } else {
        module.join("::")
    }
}
